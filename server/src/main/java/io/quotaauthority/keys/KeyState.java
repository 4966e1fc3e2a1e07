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
  /**
   * Built on first use by Check, then reused while this snapshot lives; the cache replaces the
   * whole snapshot on any change, so it can never go stale. A benign race may build it twice.
   */
  private Object allowResponse;

  public KeyState(long id, long version, boolean deleted, boolean disabled, BigDecimal quota,
      BigDecimal quotaUsed, long expiresAtMicros) {
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
    return new KeyState(r.id(), r.version(), r.deleted(),
        r.status() == KeyRecord.StoredStatus.DISABLED, r.quota(), r.quotaUsed(),
        r.expiresAt() == null ? NEVER : toMicros(r.expiresAt()));
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

  public BigDecimal quota() {
    return quota;
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

  public Object allowResponse() {
    return allowResponse;
  }

  public void allowResponse(Object response) {
    this.allowResponse = response;
  }
}
