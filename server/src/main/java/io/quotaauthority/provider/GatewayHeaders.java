package io.quotaauthority.provider;

/**
 * The headers Check adds to an allowed request for the metering processor behind it, in one place
 * so that the writer (authz) and the reader (metering) cannot drift. Envoy's route configuration
 * removes both before the request leaves for a provider (envoy.yaml, request_headers_to_remove).
 */
public final class GatewayHeaders {
  /** The key's id, decimal. Check overwrites whatever the client sent. */
  public static final String KEY_ID = "x-quota-key-id";

  /**
   * {@code "true"} when the key has a quota, {@code "false"} when it is unlimited. Check always
   * writes it, overwriting the client's; the reader treats anything but {@code "false"} as limited,
   * so a missing or forged value can only make metering stricter.
   */
  public static final String KEY_LIMITED = "x-quota-key-limited";

  /**
   * The key's max_concurrent_requests, decimal, for a key with a concurrency cap; Check removes any
   * the client sent, and writes it only for a capped key. Metering takes a slot for it.
   */
  public static final String KEY_CONCURRENCY = "x-quota-key-concurrency";

  /**
   * A key's model allow-list, entries joined by ',', for a key that has one (README "Key
   * policies"); Check removes any the client sent. Metering refuses a request for a model outside
   * it at the request body, and admits (marks) such a key's requests only there, so the fail-closed
   * stage refuses one whose metering failed.
   */
  public static final String KEY_MODELS = "x-quota-key-models";

  /**
   * Set by metering on a request it admitted (README "Holds"); Check removes any the client sent.
   * Envoy's fail-closed stage after ext_proc refuses a request of a key with a quota that lacks it,
   * and the routes remove it before the provider.
   */
  public static final String ADMITTED = "x-quota-admitted";

  /**
   * The id of the hold Check took for a usage-stream reporter (README "Holds for usage-stream
   * reporters"), on the request upstream, for a key with hold_usd_per_request; the reporter names
   * it in its usage report. Check removes any the client sent.
   */
  public static final String HOLD_ID = "x-quota-hold-id";

  /**
   * On an allowed response and on a period_budget_exceeded denial, for a key with a periodic
   * budget: when its current period ends (RFC 3339, UTC), README "Key policies".
   */
  public static final String BUDGET_RESETS_AT = "x-quota-budget-resets-at";

  /** On the response, for keys with a quota: USD left when Check admitted the request. */
  public static final String REMAINING_USD = "x-quota-remaining-usd";

  /** On an allowed response of a key with requests_per_minute: the limit. */
  public static final String RATE_LIMIT_REQUESTS = "x-quota-ratelimit-limit-requests";

  /** On an allowed response of a key with tokens_per_minute: the limit. */
  public static final String RATE_LIMIT_TOKENS = "x-quota-ratelimit-limit-tokens";

  /** On an allowed response of a key with tokens_per_minute: tokens left of the last minute's. */
  public static final String RATE_REMAINING_TOKENS = "x-quota-ratelimit-remaining-tokens";

  /** On a rate_limit_exceeded refusal: which limit, requests or tokens. */
  public static final String RATE_LIMITED = "x-quota-ratelimit";

  /** On a window_limit_exceeded refusal: the window that is full (5h, 1d, 7d, 30d). */
  public static final String WINDOW = "x-quota-window";

  /** On an allowed response: USD left in a key's spending window (README "Key policies"). */
  public static String windowRemaining(String window) {
    return "x-quota-window-" + window + "-remaining-usd";
  }

  /** On an allowed response: when the oldest usage counted in a key's window ages out. */
  public static String windowResetsAt(String window) {
    return "x-quota-window-" + window + "-resets-at";
  }

  private GatewayHeaders() {}

  /** Whether a {@link #KEY_LIMITED} value (null when absent) means the key has a quota. */
  public static boolean limited(String value) {
    return !"false".equals(value);
  }
}
