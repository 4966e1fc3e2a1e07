package io.quotaauthority.keys;

import java.math.BigDecimal;
import java.time.Instant;

/**
 * What Check needs to know about one key, as of one row version: an immutable snapshot held in the
 * cache, one per key, so it is kept small (no name, no timestamps but the expiry).
 */
public final class KeyState {
  /** expiresAtMicros of a key that never expires. */
  public static final long NEVER = Long.MAX_VALUE;

  private final long id;
  private final long version;
  private final long expiresAtMicros;
  private final boolean deleted;
  private final boolean disabled;
  private final boolean exhausted;
  private final BigDecimal quota;
  private final BigDecimal quotaUsed;

  /** max_concurrent_requests; 0 for no cap. */
  private final Limits limits;

  /**
   * The settings most keys leave unset, in one object that such keys share ({@link Limits#NONE}):
   * each field of their own would grow every cached key (README "Cache memory"; the target is 300 B
   * per key).
   *
   * @param maxConcurrentRequests max_concurrent_requests; 0 for no cap
   * @param holdPerRequest hold_usd_per_request; the shared zero for none
   * @param chargeHoldAtExpiry hold_expiry = charge
   * @param policies IP and model lists, periodic budget; {@link KeyPolicies#NONE} when unset
   */
  private record Limits(
      int maxConcurrentRequests,
      BigDecimal holdPerRequest,
      boolean chargeHoldAtExpiry,
      KeyPolicies policies) {
    static final Limits NONE = new Limits(0, BigDecimal.ZERO, true, KeyPolicies.NONE);

    static Limits of(
        int maxConcurrentRequests,
        BigDecimal holdPerRequest,
        boolean chargeHoldAtExpiry,
        KeyPolicies policies) {
      Limits l =
          new Limits(
              maxConcurrentRequests,
              holdPerRequest.signum() == 0 ? BigDecimal.ZERO : compact(holdPerRequest),
              chargeHoldAtExpiry,
              policies == null ? KeyPolicies.NONE : policies);
      return l.maxConcurrentRequests == 0
              && l.holdPerRequest.signum() == 0
              && l.chargeHoldAtExpiry
              && l.policies.equals(KeyPolicies.NONE)
          ? NONE
          : l;
    }
  }

  public KeyState(
      long id,
      long version,
      boolean deleted,
      boolean disabled,
      BigDecimal quota,
      BigDecimal quotaUsed,
      long expiresAtMicros) {
    this(id, version, deleted, disabled, quota, quotaUsed, expiresAtMicros, 0);
  }

  /**
   * @param maxConcurrentRequests the key's concurrency cap, 0 for none
   */
  public KeyState(
      long id,
      long version,
      boolean deleted,
      boolean disabled,
      BigDecimal quota,
      BigDecimal quotaUsed,
      long expiresAtMicros,
      int maxConcurrentRequests) {
    this(
        id,
        version,
        deleted,
        disabled,
        quota,
        quotaUsed,
        expiresAtMicros,
        maxConcurrentRequests,
        BigDecimal.ZERO,
        true,
        KeyPolicies.NONE);
  }

  /**
   * @param policies the key's IP and model lists
   */
  public KeyState(
      long id,
      long version,
      boolean deleted,
      boolean disabled,
      BigDecimal quota,
      BigDecimal quotaUsed,
      long expiresAtMicros,
      int maxConcurrentRequests,
      KeyPolicies policies) {
    this(
        id,
        version,
        deleted,
        disabled,
        quota,
        quotaUsed,
        expiresAtMicros,
        maxConcurrentRequests,
        BigDecimal.ZERO,
        true,
        policies);
  }

  /**
   * @param holdPerRequest USD Check holds per request for a usage-stream reporter; zero for none
   * @param chargeHoldAtExpiry whether such a hold never settled is charged at its expiry (else
   *     released)
   * @param policies the key's IP and model lists
   */
  public KeyState(
      long id,
      long version,
      boolean deleted,
      boolean disabled,
      BigDecimal quota,
      BigDecimal quotaUsed,
      long expiresAtMicros,
      int maxConcurrentRequests,
      BigDecimal holdPerRequest,
      boolean chargeHoldAtExpiry,
      KeyPolicies policies) {
    this.limits = Limits.of(maxConcurrentRequests, holdPerRequest, chargeHoldAtExpiry, policies);
    this.id = id;
    this.version = version;
    this.deleted = deleted;
    this.disabled = disabled;
    // Most keys have used nothing: share one zero rather than keep a BigDecimal per key.
    this.quota = quota.signum() == 0 ? BigDecimal.ZERO : compact(quota);
    this.quotaUsed = quotaUsed.signum() == 0 ? BigDecimal.ZERO : compact(quotaUsed);
    this.expiresAtMicros = expiresAtMicros;
    this.exhausted = quota.signum() > 0 && quotaUsed.compareTo(quota) >= 0;
  }

  /**
   * The same amount held in a BigDecimal's inline long rather than beside a BigInteger: the JDBC
   * driver builds NUMERICs with a BigInteger (about 80 bytes more per amount), and the cache holds
   * two amounts per key. Every NUMERIC(20,8) below 10^10 fits; larger ones are kept as they are.
   */
  static BigDecimal compact(BigDecimal amount) {
    if (amount.precision() > 18) {
      return amount;
    }
    return BigDecimal.valueOf(amount.unscaledValue().longValue(), amount.scale());
  }

  public static KeyState of(KeyRecord r) {
    return new KeyState(
        r.id(),
        r.version(),
        r.deleted(),
        r.status() == KeyRecord.StoredStatus.DISABLED,
        r.quota(),
        r.quotaUsed(),
        r.expiresAt() == null ? NEVER : toMicros(r.expiresAt()),
        r.maxConcurrentRequests(),
        r.holdUsdPerRequest(),
        r.holdExpiry() == KeyRecord.HoldExpiry.CHARGE,
        r.policies());
  }

  public static long toMicros(Instant t) {
    return Math.addExact(Math.multiplyExact(t.getEpochSecond(), 1_000_000L), t.getNano() / 1_000);
  }

  public long id() {
    return id;
  }

  public long version() {
    return version;
  }

  public boolean deleted() {
    return deleted;
  }

  public boolean disabled() {
    return disabled;
  }

  /** Committed usage alone has reached the quota. */
  public boolean exhausted() {
    return exhausted;
  }

  public boolean limited() {
    return quota.signum() > 0;
  }

  /** The key's max_concurrent_requests; 0 when it has no cap. */
  public int maxConcurrentRequests() {
    return limits.maxConcurrentRequests();
  }

  /**
   * USD Check holds per request for a usage-stream reporter; zero for none. Only a limited key's
   * hold is taken (an unlimited key has no budget to hold against).
   */
  public BigDecimal holdPerRequest() {
    return limits.holdPerRequest();
  }

  /** Whether Check takes a reporter hold for this key's requests. */
  public boolean holdsAtCheck() {
    return limits.holdPerRequest().signum() > 0 && limited();
  }

  /** Whether such a hold never settled is charged at its expiry (else released). */
  public boolean chargeHoldAtExpiry() {
    return limits.chargeHoldAtExpiry();
  }

  public BigDecimal quota() {
    return quota;
  }

  /** The key's IP and model lists and its periodic budget. */
  public KeyPolicies policies() {
    return limits.policies();
  }

  /**
   * Whether the key's current budget period, as its row says, has ended at {@code nowMicros}: its
   * quota_used then belongs to the period before (the row is rolled over within a second).
   */
  public boolean periodOver(long nowMicros) {
    PeriodBudget p = limits.policies().period();
    return p.active() && p.endsAt() != null && toMicros(p.endsAt()) <= nowMicros;
  }

  public BigDecimal quotaUsed() {
    return quotaUsed;
  }

  public long expiresAtMicros() {
    return expiresAtMicros;
  }

  /** Usage not yet committed, added to what is, reaches the quota. */
  public boolean exhaustedWith(BigDecimal pending) {
    return exhausted || (quota.signum() > 0 && quotaUsed.add(pending).compareTo(quota) >= 0);
  }

  /** USD left; never below zero. Only meaningful for limited keys. */
  public BigDecimal remaining(BigDecimal pending) {
    BigDecimal left = quota.subtract(quotaUsed).subtract(pending);
    return left.signum() < 0 ? BigDecimal.ZERO : left;
  }
}
