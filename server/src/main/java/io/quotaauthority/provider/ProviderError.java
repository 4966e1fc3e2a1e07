package io.quotaauthority.provider;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * An error the gateway answers in place of a provider (Check's denials, metering's refusals),
 * rendered in the provider's own error shape so that its SDKs raise a readable error.
 *
 * @param http the HTTP status
 * @param grpcStatus the google.rpc code name Gemini puts in {@code error.status}
 * @param code our machine-readable code ({@code insufficient_quota}, {@code model_not_priced})
 * @param message one sentence for a human
 * @param openAiType OpenAI's {@code error.type}
 * @param anthropicType Anthropic's {@code error.type}
 * @param retryAfterSeconds the retry-after header's value, or 0 for none
 */
public record ProviderError(
    int http,
    String grpcStatus,
    String code,
    String message,
    String openAiType,
    String anthropicType,
    int retryAfterSeconds) {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** An error without a retry-after. */
  public ProviderError(
      int http,
      String grpcStatus,
      String code,
      String message,
      String openAiType,
      String anthropicType) {
    this(http, grpcStatus, code, message, openAiType, anthropicType, 0);
  }

  /**
   * A key at its max_concurrent_requests: every slot is taken by a request in flight, on this
   * instance or another (README "Holds"). Retry after a second: a slot frees when a response ends.
   *
   * @param cap the key's max_concurrent_requests
   */
  public static ProviderError concurrencyLimitExceeded(int cap) {
    return new ProviderError(
        429,
        "RESOURCE_EXHAUSTED",
        "concurrency_limit_exceeded",
        "This key allows at most "
            + cap
            + " requests in flight at once, and that many are running. Retry when one ends.",
        "rate_limit_error",
        "rate_limit_error",
        1);
  }

  /**
   * A key with a quota asked for a model the price table cannot price: it would be charged nothing,
   * so it is refused before the provider is called (README "Metering from Envoy").
   */
  public static ProviderError modelNotPriced(String model) {
    return new ProviderError(
        403,
        "PERMISSION_DENIED",
        "model_not_priced",
        "The model '"
            + model
            + "' has no price in this gateway's price table, so keys with a"
            + " quota cannot use it. Ask the operator to price it.",
        "invalid_request_error",
        "permission_error");
  }

  /**
   * A key with a model allow-list asked for a model outside it, or sent a request whose model could
   * not be read (README "Key policies"): refused before the provider is called.
   *
   * @param model the model the request named, or null when none could be read
   */
  public static ProviderError modelNotAllowed(String model) {
    String shown = model == null ? null : shownModel(model);
    return new ProviderError(
        403,
        "PERMISSION_DENIED",
        "model_not_allowed",
        shown == null
            ? "This API key may only use the models on its allow-list, and the request names no"
                + " model this gateway can read."
            : "This API key may not use the model '" + shown + "'.",
        "invalid_request_error",
        "permission_error");
  }

  /** A client's model name as an error repeats it: visible ASCII, at most 128 characters. */
  private static String shownModel(String model) {
    String cut = model.length() > 128 ? model.substring(0, 128) + "..." : model;
    return cut.replaceAll("[^\\x20-\\x7e]", "?");
  }

  /**
   * A key with a quota sent a request whose model could not be read (a body that is not JSON, too
   * deep, or names no model): it could not be priced, so it is refused like an unpriced model.
   *
   * @param why what kept the model from being read ("the request body is not JSON")
   */
  public static ProviderError modelNotNamed(String why) {
    return new ProviderError(
        403,
        "PERMISSION_DENIED",
        "model_not_priced",
        "The request names no model this gateway can read ("
            + why
            + "), so keys with a quota"
            + " cannot send it.",
        "invalid_request_error",
        "permission_error");
  }

  /**
   * A key with a quota asked for an endpoint whose cost the gateway cannot meter: refused before
   * the provider is called (README "Endpoints").
   *
   * @param what the endpoint, as the operator's table names it ("the Batch API")
   */
  public static ProviderError endpointNotMetered(String what) {
    return new ProviderError(
        403,
        "PERMISSION_DENIED",
        "endpoint_not_metered",
        "This gateway cannot meter " + what + ", so keys with a quota cannot use it.",
        "invalid_request_error",
        "permission_error");
  }

  /**
   * A key with a quota could not take a hold of the request's maximum cost: what remains of its
   * budget (quota less what is charged and what other requests hold) is less (README "Holds").
   *
   * @param maxCost the request's maximum cost, USD, plain
   * @param remaining what remains of the key's budget as this instance sees it, USD, plain
   */
  public static ProviderError holdRefused(String maxCost, String remaining) {
    return new ProviderError(
        429,
        "RESOURCE_EXHAUSTED",
        "insufficient_quota",
        "This request may cost up to "
            + maxCost
            + " USD; "
            + remaining
            + " USD of the key's quota remains. Lower max_tokens or shorten the request.",
        "insufficient_quota",
        "rate_limit_error");
  }

  /**
   * Check could not take a key's per-request hold for a usage-stream reporter (README "Holds for
   * usage-stream reporters"): what remains of its budget is less than the hold.
   *
   * @param hold the key's hold_usd_per_request, USD, plain
   * @param remaining what remains of the key's budget as this instance sees it, USD, plain
   */
  public static ProviderError checkHoldRefused(String hold, String remaining) {
    return new ProviderError(
        429,
        "RESOURCE_EXHAUSTED",
        "insufficient_quota",
        "Each request of this key holds "
            + hold
            + " USD of its quota until its usage is reported; "
            + remaining
            + " USD of the key's quota remains.",
        "insufficient_quota",
        "rate_limit_error");
  }

  /**
   * A key with a quota could not be given a hold because its budget could not be leased (the
   * database is unreachable and this instance's lease is spent): refused, never admitted unheld.
   */
  public static ProviderError holdUnavailable() {
    return new ProviderError(
        503,
        "UNAVAILABLE",
        "quota_unavailable",
        "The gateway cannot reserve this key's quota right now; retry shortly.",
        "server_error",
        "overloaded_error");
  }

  /**
   * The body for this provider; for a null provider (no provider claims the request) a plain {@code
   * {"error":{"code","message"}}}. Jackson escapes the message, which may name a model the client
   * chose.
   */
  public String body(Provider p) {
    ObjectNode root = JSON.createObjectNode();
    if (p == null) {
      ObjectNode e = root.putObject("error");
      e.put("code", code);
      e.put("message", message);
      return root.toString();
    }
    switch (p) {
      case OPENAI -> {
        ObjectNode e = root.putObject("error");
        e.put("message", message);
        e.put("type", openAiType);
        e.putNull("param");
        e.put("code", code);
      }
      case ANTHROPIC -> {
        root.put("type", "error");
        ObjectNode e = root.putObject("error");
        e.put("type", anthropicType);
        e.put("message", message + " (" + code + ")");
      }
      case GEMINI -> {
        ObjectNode e = root.putObject("error");
        e.put("code", http);
        e.put("message", message + " (" + code + ")");
        e.put("status", grpcStatus);
      }
    }
    return root.toString();
  }
}
