package io.quotaauthority.usage;

import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;

/**
 * Where keys' budgets are leased from (PostgreSQL, in production): the port {@link BudgetLeases}
 * takes slices through. {@code store.LeaseRepository} implements it; every call is one transaction.
 * A lease is one per (key, instance); the key's {@code leased} total is the sum of its leases.
 */
public interface LeaseStore {
  /**
   * Adds {@code slice} to this instance's lease of the key and extends it to now + ttl, if and only
   * if the key is live, limited (quota > 0) and {@code quota - quota_used - leased >= slice}: one
   * conditional update, so no two instances can lease the same budget.
   */
  Grant take(long keyId, String instanceId, BigDecimal slice, Duration ttl);

  /**
   * Takes up to {@code amount} off this instance's lease of the key and gives it back to the key;
   * returns what was given back (less than asked when the lease was smaller or gone). A lease left
   * at zero is deleted.
   */
  BigDecimal giveBack(long keyId, String instanceId, BigDecimal amount);

  /**
   * Extends every lease of this instance to now + ttl; returns them (key id → amount), so the
   * instance learns which were reaped or shrunk while it was away.
   */
  Map<Long, BigDecimal> renew(String instanceId, Duration ttl);

  /**
   * Gives every lease that expired at or before {@code now} back to its key; returns how many. Safe
   * when several instances run it at once: each lease is given back once.
   */
  int reapExpired(Instant now);

  /**
   * What a take answered.
   *
   * @param outcome whether the slice was leased, and if not why
   * @param remaining quota - quota_used - leased after the call (zero for an unlimited or missing
   *     key); never negative
   * @param lease this instance's lease of the key after the call
   */
  record Grant(Outcome outcome, BigDecimal remaining, BigDecimal lease) {
    public enum Outcome {
      /** The slice was added to the lease. */
      GRANTED,
      /** Less than the slice is left: nothing was leased. */
      TOO_LITTLE,
      /** The key has no quota (0 means unlimited): nothing to lease, nothing to bound. */
      UNLIMITED,
      /** No live key with that id. */
      NO_KEY
    }

    public boolean granted() {
      return outcome == Outcome.GRANTED;
    }
  }
}
