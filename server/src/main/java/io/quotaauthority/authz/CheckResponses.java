package io.quotaauthority.authz;

import com.google.rpc.Code;
import com.google.rpc.Status;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.auth.v3.DeniedHttpResponse;
import io.envoyproxy.envoy.type.v3.HttpStatus;
import io.envoyproxy.envoy.type.v3.StatusCode;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.PeriodBudget;
import io.quotaauthority.keys.SpendWindows;
import io.quotaauthority.keys.Verdict;
import io.quotaauthority.provider.Endpoints;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderError;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Every CheckResponse Check sends. Denials are built once at start, one per provider and verdict
 * (and one per provider and refused endpoint row), because they never vary, and so are encoded once
 * ({@link CheckAnswer}); an allow carries the key id and is built per key snapshot.
 *
 * <p>A denial is always a successful RPC whose CheckResponse.status says no: a gRPC error would
 * make Envoy answer status_on_error with no body.
 */
public final class CheckResponses {

  private static final Map<Provider, Map<Verdict, CheckAnswer>> DENIALS = buildDenials();

  /**
   * For a request no provider claims (see ProviderClassifier): a plain
   * {"error":{"code","message"}}.
   */
  private static final Map<Verdict, CheckAnswer> GENERIC_DENIALS = buildDenials(null);

  /**
   * The endpoint_not_metered denial of each refusing row of Endpoints (by row index), then provider
   * (by ordinal, the last slot for no provider); null for rows that refuse nothing.
   */
  private static final CheckAnswer[][] NOT_METERED = buildEndpointDenials();

  private CheckResponses() {}

  /**
   * The 403 endpoint_not_metered for a key with a quota on this endpoint, naming it; built at
   * start.
   *
   * @param endpoint a row that refuses limited keys ({@link Endpoints.Row#refusesLimitedKeys()})
   */
  public static CheckAnswer endpointDenial(Provider provider, Endpoints.Row endpoint) {
    CheckAnswer[] byProvider = NOT_METERED[endpoint.index()];
    if (byProvider == null) {
      // Never for a refusing row: the catch-all is the safe answer should a caller get this wrong.
      byProvider = NOT_METERED[Endpoints.ANY_OTHER.index()];
    }
    return byProvider[provider == null ? byProvider.length - 1 : provider.ordinal()];
  }

  /**
   * The 429 for a key that spent its periodic budget (README "Key policies"), naming the period and
   * when it resets, with retry-after in whole seconds until then (at least 1). Built per refusal:
   * it depends on the key and the time.
   *
   * @param period the key's budget, active, with its current period's end
   * @param quota the per-period budget, USD
   */
  public static CheckResponse periodDenial(
      Provider provider, PeriodBudget period, BigDecimal quota, Instant now) {
    // Whole seconds, rounded up: a client that waits this long finds the new period begun.
    long seconds = secondsUntil(now, period.endsAt());
    String resets =
        period.endsAt().atZone(period.zone()).toOffsetDateTime().toString()
            + " ("
            + period.zoneName()
            + ")";
    ProviderError error =
        new ProviderError(
            429,
            "RESOURCE_EXHAUSTED",
            "period_budget_exceeded",
            "This API key has used its "
                + period.kind().wireName()
                + " budget of "
                + Money.format(quota)
                + " USD for this "
                + period.kind().unit()
                + "; it resets at "
                + resets
                + ".",
            "insufficient_quota",
            "rate_limit_error",
            (int) Math.min(Integer.MAX_VALUE, seconds));
    return tooManyRequests(
        provider, error, seconds, GatewayHeaders.BUDGET_RESETS_AT, period.endsAt().toString());
  }

  /** Whole seconds from now until then, rounded up and at least 1: retry-after's figure. */
  private static long secondsUntil(Instant now, Instant then) {
    long millis = Duration.between(now, then).toMillis();
    return Math.max(1, (millis + 999) / 1000);
  }

  /**
   * A 429 in the provider's shape with retry-after in whole seconds and one more header naming what
   * was exhausted (the period's end, the window, the rate limit).
   */
  private static CheckResponse tooManyRequests(
      Provider provider, ProviderError error, long seconds, String name, String value) {
    CheckResponse denied =
        denied(
            Code.RESOURCE_EXHAUSTED,
            error.code(),
            StatusCode.TooManyRequests,
            error.body(provider));
    return denied.toBuilder()
        .setDeniedResponse(
            denied.getDeniedResponse().toBuilder()
                .addHeaders(
                    header(
                        "retry-after",
                        Long.toString(seconds),
                        HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD))
                .addHeaders(
                    header(
                        name,
                        value,
                        HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD)))
        .build();
  }

  /**
   * The 429 for a key that spent a rolling window's limit (README "Key policies"), naming the
   * window, with retry-after in whole seconds (rounded up, at least 1) until enough of the window's
   * usage has aged out for a request to be admitted again, and x-quota-window naming it. Built per
   * refusal.
   *
   * @param admitsAt when the window's spend falls below its limit
   */
  public static CheckResponse windowDenial(
      Provider provider,
      SpendWindows.Window window,
      BigDecimal limit,
      Instant admitsAt,
      Instant now) {
    long seconds = secondsUntil(now, admitsAt);
    ProviderError error =
        new ProviderError(
            429,
            "RESOURCE_EXHAUSTED",
            "window_limit_exceeded",
            "This API key has spent its limit of "
                + Money.format(limit)
                + " USD in a rolling "
                + window.label()
                + " window; enough of that usage ages out at "
                + admitsAt
                + ".",
            "insufficient_quota",
            "rate_limit_error",
            (int) Math.min(Integer.MAX_VALUE, seconds));
    return tooManyRequests(provider, error, seconds, GatewayHeaders.WINDOW, window.label());
  }

  /**
   * The 429 for a key at its rate limit (README "Key policies"): requests per minute across every
   * instance, or tokens reported in the last minute; retry-after in whole seconds until a request
   * can be admitted again, x-quota-ratelimit naming which. OpenAI's error type is "requests" or
   * "tokens", as OpenAI's own rate-limit errors say.
   */
  public static CheckResponse rateDenial(
      Provider provider, boolean requests, long limit, Instant retryAt, Instant now) {
    long seconds = secondsUntil(now, retryAt);
    String what = requests ? "requests" : "tokens";
    ProviderError error =
        new ProviderError(
            429,
            "RESOURCE_EXHAUSTED",
            "rate_limit_exceeded",
            "This API key has reached its rate limit of "
                + limit
                + " "
                + what
                + " per minute; retry after "
                + seconds
                + " s.",
            what,
            "rate_limit_error",
            (int) Math.min(Integer.MAX_VALUE, seconds));
    return tooManyRequests(provider, error, seconds, GatewayHeaders.RATE_LIMITED, what);
  }

  /** The denial for this verdict, shaped for this provider (null: the plain shape). */
  public static CheckAnswer denial(Provider provider, Verdict verdict) {
    return (provider == null ? GENERIC_DENIALS : DENIALS.get(provider)).get(verdict);
  }

  /**
   * Lets the request through: sets x-quota-key-id and x-quota-key-limited upstream (overwriting
   * whatever the client sent; metering reads them, Envoy removes them before the provider), strips
   * the client's key headers (and ?key= when it came from there) and any x-quota-admitted it sent,
   * puts key_id in dynamic metadata and, for keys with a quota, x-quota-remaining-usd on the
   * response.
   *
   * @param remaining USD left, or null for an unlimited key
   */
  public static CheckResponse allow(String keyId, BigDecimal remaining, boolean stripQueryKey) {
    return allow(keyId, remaining, stripQueryKey, 0);
  }

  /**
   * As above, and for a key with a concurrency cap x-quota-key-concurrency upstream (metering takes
   * a slot for it); for a key without, any the client sent is removed.
   *
   * @param maxConcurrentRequests the key's cap, 0 for none
   */
  public static CheckResponse allow(
      String keyId, BigDecimal remaining, boolean stripQueryKey, int maxConcurrentRequests) {
    return allow(keyId, remaining, stripQueryKey, maxConcurrentRequests, null);
  }

  /**
   * As above, and for a key with a model allow-list x-quota-key-models upstream (metering refuses a
   * request for a model outside it); for a key without, any the client sent is removed.
   *
   * @param models the allow-list as {@link io.quotaauthority.keys.ModelAllowList#header()}, or null
   */
  public static CheckResponse allow(
      String keyId,
      BigDecimal remaining,
      boolean stripQueryKey,
      int maxConcurrentRequests,
      String models) {
    return allow(keyId, remaining, stripQueryKey, maxConcurrentRequests, models, null);
  }

  /**
   * As above, and for a key with a periodic budget x-quota-budget-resets-at on the response.
   *
   * @param resetsAt when the key's budget period ends (RFC 3339), or null
   */
  public static CheckResponse allow(
      String keyId,
      BigDecimal remaining,
      boolean stripQueryKey,
      int maxConcurrentRequests,
      String models,
      String resetsAt) {
    try {
      return CheckResponse.parseFrom(
          AllowEncoding.encode(
              keyId,
              remaining == null ? null : Money.format(remaining),
              stripQueryKey,
              maxConcurrentRequests > 0 ? Integer.toString(maxConcurrentRequests) : null,
              models,
              resetsAt,
              null));
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new IllegalStateException("AllowEncoding wrote bytes that do not parse", e);
    }
  }

  /** A denial built from a provider-shaped error (a per-request message), for this provider. */
  public static CheckResponse refusal(Provider provider, ProviderError error) {
    Code grpc = Code.valueOf(error.grpcStatus());
    StatusCode http = StatusCode.forNumber(error.http());
    return denied(
        grpc, error.code(), http == null ? StatusCode.Forbidden : http, error.body(provider));
  }

  private static HeaderValueOption header(
      String name, String value, HeaderValueOption.HeaderAppendAction action) {
    // Envoy's ext_authz reads HeaderValue.value (not raw_value) from a CheckResponse.
    return HeaderValueOption.newBuilder()
        .setHeader(HeaderValue.newBuilder().setKey(name).setValue(value))
        .setAppendAction(action)
        .build();
  }

  /** The wire-level facts of each denial. */
  enum Denial {
    MISSING_KEY(
        Verdict.MISSING_KEY,
        Code.UNAUTHENTICATED,
        StatusCode.Unauthorized,
        401,
        "api_key_required",
        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."),
    UNKNOWN_KEY(
        Verdict.UNKNOWN_KEY,
        Code.UNAUTHENTICATED,
        StatusCode.Unauthorized,
        401,
        "invalid_api_key",
        "Incorrect API key provided."),
    DISABLED(
        Verdict.DISABLED,
        Code.UNAUTHENTICATED,
        StatusCode.Unauthorized,
        401,
        "api_key_disabled",
        "This API key has been disabled."),
    EXPIRED(
        Verdict.EXPIRED,
        Code.PERMISSION_DENIED,
        StatusCode.Forbidden,
        403,
        "api_key_expired",
        "This API key has expired."),
    IP_NOT_ALLOWED(
        Verdict.IP_NOT_ALLOWED,
        Code.PERMISSION_DENIED,
        StatusCode.Forbidden,
        403,
        "ip_not_allowed",
        "This API key may not be used from this client address."),
    EXHAUSTED(
        Verdict.EXHAUSTED,
        Code.RESOURCE_EXHAUSTED,
        StatusCode.TooManyRequests,
        429,
        "insufficient_quota",
        "This API key has used up its quota."),
    UNAVAILABLE(
        Verdict.UNAVAILABLE,
        Code.UNAVAILABLE,
        StatusCode.ServiceUnavailable,
        503,
        "quota_service_unavailable",
        "The quota service is temporarily unavailable. Please retry.");

    final Verdict verdict;
    final Code grpcCode;
    final StatusCode httpCode;
    final int http;
    final String code;
    final String message;

    Denial(
        Verdict verdict,
        Code grpcCode,
        StatusCode httpCode,
        int http,
        String code,
        String message) {
      this.verdict = verdict;
      this.grpcCode = grpcCode;
      this.httpCode = httpCode;
      this.http = http;
      this.code = code;
      this.message = message;
    }
  }

  private static Map<Provider, Map<Verdict, CheckAnswer>> buildDenials() {
    Map<Provider, Map<Verdict, CheckAnswer>> all = new EnumMap<>(Provider.class);
    for (Provider p : Provider.values()) {
      all.put(p, buildDenials(p));
    }
    return all;
  }

  private static Map<Verdict, CheckAnswer> buildDenials(Provider p) {
    Map<Verdict, CheckAnswer> byVerdict = new EnumMap<>(Verdict.class);
    for (Denial d : Denial.values()) {
      byVerdict.put(d.verdict, CheckAnswer.of(denied(d.grpcCode, d.code, d.httpCode, body(p, d))));
    }
    return byVerdict;
  }

  /** A denial as Envoy needs it: a successful RPC whose status says no, with a JSON body. */
  private static CheckResponse denied(
      Code grpcCode, String code, StatusCode httpCode, String body) {
    return CheckResponse.newBuilder()
        .setStatus(Status.newBuilder().setCode(grpcCode.getNumber()).setMessage(code))
        .setDeniedResponse(
            DeniedHttpResponse.newBuilder()
                .setStatus(HttpStatus.newBuilder().setCode(httpCode))
                .addHeaders(
                    header(
                        "content-type",
                        "application/json",
                        HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD))
                .setBody(body))
        .build();
  }

  private static CheckAnswer[][] buildEndpointDenials() {
    List<Endpoints.Row> rows = Endpoints.rows();
    CheckAnswer[][] all = new CheckAnswer[rows.size()][];
    for (Endpoints.Row row : rows) {
      if (!row.refusesLimitedKeys()) {
        continue;
      }
      ProviderError error = ProviderError.endpointNotMetered(row.what());
      CheckAnswer[] byProvider = new CheckAnswer[Provider.values().length + 1];
      for (int i = 0; i < byProvider.length; i++) {
        Provider p = i < Provider.values().length ? Provider.values()[i] : null;
        byProvider[i] =
            CheckAnswer.of(
                denied(Code.PERMISSION_DENIED, error.code(), StatusCode.Forbidden, error.body(p)));
      }
      all[row.index()] = byProvider;
    }
    return all;
  }

  /** The error body in the provider's own shape (see {@link ProviderError#body}). */
  static String body(Provider p, Denial d) {
    return new ProviderError(
            d.http, d.grpcCode.name(), d.code, d.message, openAiType(d), anthropicType(d))
        .body(p);
  }

  private static String openAiType(Denial d) {
    return switch (d) {
      case EXHAUSTED -> "insufficient_quota";
      case UNAVAILABLE -> "server_error";
      default -> "invalid_request_error";
    };
  }

  private static String anthropicType(Denial d) {
    return switch (d) {
      case MISSING_KEY, UNKNOWN_KEY, DISABLED -> "authentication_error";
      case EXPIRED, IP_NOT_ALLOWED -> "permission_error";
      case EXHAUSTED -> "rate_limit_error";
      case UNAVAILABLE -> "api_error";
    };
  }
}
