package io.quotaauthority.keys;

import io.quotaauthority.provider.Endpoints;
import java.math.BigDecimal;

/** The pure admission rule: first match wins, in the order of {@link Verdict}. */
public final class KeyDecision {
  private KeyDecision() {}

  private static final long[] NO_SPEND = new long[SpendWindows.Window.values().length];

  /**
   * @param state the key's snapshot, or null when no key by that hash exists
   * @param pending usage accepted on this instance but not yet committed (zero if none)
   * @param nowMicros the current time in microseconds since the epoch
   */
  public static Verdict decide(KeyState state, BigDecimal pending, long nowMicros) {
    if (state == null || state.deleted()) {
      return Verdict.UNKNOWN_KEY;
    }
    if (state.disabled()) {
      return Verdict.DISABLED;
    }
    // Expiry is checked before quota: a key both expired and exhausted answers 403.
    if (state.expiresAtMicros() <= nowMicros) {
      return Verdict.EXPIRED;
    }
    if (state.exhausted() || (pending.signum() > 0 && state.exhaustedWith(pending))) {
      return Verdict.EXHAUSTED;
    }
    return Verdict.ALLOW;
  }

  /**
   * As {@link #decide(KeyState, BigDecimal, long)}, then the endpoint: a key with a quota may only
   * spend where the gateway can see what it spends. Key problems come first, so that an expired key
   * hears that it expired, not that the endpoint is refused.
   *
   * @param endpoint the request's row of {@link Endpoints}
   */
  public static Verdict decide(
      KeyState state, BigDecimal pending, long nowMicros, Endpoints.Row endpoint) {
    return decide(state, pending, nowMicros, endpoint, null);
  }

  /**
   * The whole order (README "How a request is decided"): unknown, disabled, expired, the client's
   * address, quota, then the endpoint. The address comes after the key's own state, so that a key
   * that is disabled says so wherever it is used from, and before any spending figure, so that a
   * caller outside the key's networks learns nothing about its budget.
   *
   * @param address the client's address ({@link IpRanges#address}), null when unknown; read only
   *     for a key with an IP list
   */
  public static Verdict decide(
      KeyState state, BigDecimal pending, long nowMicros, Endpoints.Row endpoint, byte[] address) {
    return decide(state, pending, nowMicros, endpoint, address, null);
  }

  /**
   * The whole order with the spending windows: after the quota (or the period's budget), each of
   * the key's windows shortest first; then the endpoint. A window is a spending figure like the
   * quota, so it comes after the address; an exhausted quota is named before a full window, since
   * waiting for the window would not help.
   *
   * @param windowSpent per window (by ordinal) the usage committed in it, in units of {@link
   *     Money#UNIT}, from {@link UsageWindows.Track#spent}; null when the key has no window (or is
   *     not tracked yet, then only pending usage counts)
   */
  public static Verdict decide(
      KeyState state,
      BigDecimal pending,
      long nowMicros,
      Endpoints.Row endpoint,
      byte[] address,
      long[] windowSpent) {
    if (state == null || state.deleted()) {
      return Verdict.UNKNOWN_KEY;
    }
    if (state.disabled()) {
      return Verdict.DISABLED;
    }
    if (state.expiresAtMicros() <= nowMicros) {
      return Verdict.EXPIRED;
    }
    if (!state.policies().admitsAddress(address)) {
      return Verdict.IP_NOT_ALLOWED;
    }
    Verdict verdict;
    if (state.limited() && state.policies().period().active()) {
      // A periodic budget: quota_used is the period's. Once the period is over in memory, its
      // usage no longer counts, even before the row has been rolled over to the next one.
      boolean spent = state.exhausted() || (pending.signum() > 0 && state.exhaustedWith(pending));
      verdict = spent && !state.periodOver(nowMicros) ? Verdict.PERIOD_EXHAUSTED : Verdict.ALLOW;
    } else {
      verdict = decide(state, pending, nowMicros);
    }
    SpendWindows windows = state.policies().windows();
    if (verdict == Verdict.ALLOW
        && windows.active()
        && windows.exceeded(windowSpent == null ? NO_SPEND : windowSpent, pending) != null) {
      return Verdict.WINDOW_EXCEEDED;
    }
    if (verdict == Verdict.ALLOW
        && (state.limited() || state.policies().restrictsModels() || windows.active())
        && endpoint.refusesLimitedKeys()) {
      return Verdict.NOT_METERED;
    }
    return verdict;
  }
}
