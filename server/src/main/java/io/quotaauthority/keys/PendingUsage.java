package io.quotaauthority.keys;

import java.math.BigDecimal;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Usage this instance has accepted and not yet committed, per key: the usage path adds a report's
 * cost when it is queued and takes it out once the report is settled (committed, refused or dropped
 * at shutdown); Check adds it to the key's cached quota_used, so that a key cannot be admitted
 * again on spend that is only waiting for its group commit.
 *
 * <p>Thread-safe; read on every Check of a limited key, so the empty case costs no lookup.
 */
public final class PendingUsage {
  private final ConcurrentHashMap<Long, BigDecimal> pending = new ConcurrentHashMap<>();

  /** Usage of this key accepted here and not yet committed; zero when none. */
  public BigDecimal of(long keyId) {
    if (pending.isEmpty()) {
      // The common case on the Check path: no map lookup, no boxing.
      return BigDecimal.ZERO;
    }
    BigDecimal p = pending.get(keyId);
    return p == null ? BigDecimal.ZERO : p;
  }

  /** A report of this key was queued. */
  public void add(long keyId, BigDecimal amount) {
    if (amount.signum() != 0) {
      pending.merge(keyId, amount, BigDecimal::add);
    }
  }

  /** Takes settled (committed or refused) usage out of the pending sum. */
  public void settle(long keyId, BigDecimal amount) {
    if (amount.signum() != 0) {
      pending.computeIfPresent(
          keyId,
          (id, p) -> {
            BigDecimal left = p.subtract(amount);
            // Never below zero, and gone when nothing is left: the map stays as small as what
            // waits.
            return left.signum() <= 0 ? null : left;
          });
    }
  }
}
