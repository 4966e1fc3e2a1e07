package io.quotaauthority.keys;

import java.math.BigDecimal;

/** The pure admission rule: first match wins, in the order of {@link Verdict}. */
public final class KeyDecision {
  private KeyDecision() {}

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
}
