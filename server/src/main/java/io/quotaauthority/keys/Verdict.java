package io.quotaauthority.keys;

/** Every answer Check can give, in the order the decision tries them. */
public enum Verdict {
  /** No key in the request: 401 api_key_required. */
  MISSING_KEY,
  /** Not a key we know, or a deleted one: 401 invalid_api_key. */
  UNKNOWN_KEY,
  /** 401 api_key_disabled. */
  DISABLED,
  /** expires_at ≤ now: 403 api_key_expired (also when exhausted). */
  EXPIRED,
  /**
   * The client's address is on the key's IP deny-list, or off its allow-list (or Envoy sent none
   * Check could read, for a key with a list): 403 ip_not_allowed.
   */
  IP_NOT_ALLOWED,
  /** quota > 0 and used (committed + pending) ≥ quota: 429 insufficient_quota. */
  EXHAUSTED,
  /**
   * A key with a periodic budget has spent its quota_usd in the current period: 429
   * period_budget_exceeded, naming the period, with retry-after until it resets.
   */
  PERIOD_EXHAUSTED,
  /**
   * A key with a rolling spending window has spent its limit within it (committed and pending
   * usage): 429 window_limit_exceeded, naming the window, with retry-after until enough of the
   * window's usage has aged out.
   */
  WINDOW_EXCEEDED,
  /**
   * A key with a quota or a model allow-list asked for an endpoint the gateway cannot meter
   * (provider.Endpoints), so whose cost or model it cannot see: 403 endpoint_not_metered. Keys
   * without either are never refused for it.
   */
  NOT_METERED,
  /**
   * A key with a rate limit reached it: requests per minute across every instance, or tokens
   * reported in the last minute: 429 rate_limit_exceeded with retry-after. Last of the key checks:
   * a request permit is taken only once everything else admits the request.
   */
  RATE_LIMITED,
  /** The store could not be asked in time about an uncached key: 503 quota_service_unavailable. */
  UNAVAILABLE,
  /** Let the request through. */
  ALLOW
}
