package io.quotaauthority.keys;

import java.math.BigDecimal;
import java.time.Instant;

/**
 * One API key as stored: what the admin API reads and writes.
 *
 * @param quota USD; zero means unlimited
 * @param expiresAt null means never
 * @param deletedAt null unless soft-deleted
 * @param version bumped by every change, admin or usage; newer state always wins in caches
 * @param maxConcurrentRequests most metered requests in flight at once across every instance; zero
 *     means no cap. Part of the row and its version (an admin change bumps it), so caches carry it
 * @param holdUsdPerRequest USD Check holds per request for a usage-stream reporter (a key with a
 *     quota only); zero means none. Part of the row and its version, like the cap
 * @param holdExpiry what such a hold never settled does at its expiry
 * @param policies the key's IP and model lists ({@link KeyPolicies#NONE} when unset); part of the
 *     row and its version like the cap
 */
public record KeyRecord(
    long id,
    String name,
    KeyHash keyHash,
    String keyPrefix,
    StoredStatus status,
    BigDecimal quota,
    BigDecimal quotaUsed,
    Instant expiresAt,
    Instant createdAt,
    Instant updatedAt,
    Instant deletedAt,
    long version,
    BigDecimal leased,
    int maxConcurrentRequests,
    int slotsLeased,
    BigDecimal holdUsdPerRequest,
    HoldExpiry holdExpiry,
    KeyPolicies policies,
    BigDecimal spentUsd,
    long tokensUsed) {

  /** The most max_concurrent_requests can be: the CHECK on api_keys (V6). */
  public static final int MAX_CONCURRENT_REQUESTS = 1_000_000;

  /**
   * What a usage-stream reporter's hold (README, "Holds for usage-stream reporters") that was never
   * settled does at its expiry.
   */
  public enum HoldExpiry {
    /** Its amount is charged: the request went upstream and was never reported. The default. */
    CHARGE,
    /** It is given back: for reporters that take holds for requests that may never be sent. */
    RELEASE
  }

  /**
   * @param leased USD of the quota leased to instances for holds (api_keys.leased); not part of the
   *     row's version: Check never reads it
   * @param slotsLeased concurrency slots leased to instances (api_keys.slots_leased, the sum of
   *     key_slot_leases.slots); like {@code leased}, not part of the row's version: only the admin
   *     API shows it
   */
  public KeyRecord {
    leased = leased == null ? BigDecimal.ZERO : leased;
    holdUsdPerRequest = holdUsdPerRequest == null ? BigDecimal.ZERO : holdUsdPerRequest;
    holdExpiry = holdExpiry == null ? HoldExpiry.CHARGE : holdExpiry;
    policies = policies == null ? KeyPolicies.NONE : policies;
    spentUsd = spentUsd == null ? BigDecimal.ZERO : spentUsd;
  }

  /**
   * A row with only its lifetime columns: nothing leased, no concurrency cap, no reporter hold, no
   * policy, nothing spent (tests and simple rows; {@link #withPolicies} adds policies).
   */
  public KeyRecord(
      long id,
      String name,
      KeyHash keyHash,
      String keyPrefix,
      StoredStatus status,
      BigDecimal quota,
      BigDecimal quotaUsed,
      Instant expiresAt,
      Instant createdAt,
      Instant updatedAt,
      Instant deletedAt,
      long version) {
    this(
        id,
        name,
        keyHash,
        keyPrefix,
        status,
        quota,
        quotaUsed,
        expiresAt,
        createdAt,
        updatedAt,
        deletedAt,
        version,
        BigDecimal.ZERO,
        0,
        0,
        BigDecimal.ZERO,
        HoldExpiry.CHARGE,
        KeyPolicies.NONE,
        BigDecimal.ZERO,
        0);
  }

  /** This row with {@code p} as its policies, every other column the same. */
  public KeyRecord withPolicies(KeyPolicies p) {
    return new KeyRecord(
        id,
        name,
        keyHash,
        keyPrefix,
        status,
        quota,
        quotaUsed,
        expiresAt,
        createdAt,
        updatedAt,
        deletedAt,
        version,
        leased,
        maxConcurrentRequests,
        slotsLeased,
        holdUsdPerRequest,
        holdExpiry,
        p,
        spentUsd,
        tokensUsed);
  }

  /** The status column: the only two a key can be set to. */
  public enum StoredStatus {
    ACTIVE,
    DISABLED
  }

  public boolean deleted() {
    return deletedAt != null;
  }

  /** The status as shown to admins, with EXPIRED and QUOTA_EXHAUSTED computed at {@code now}. */
  public ShownStatus shownStatus(Instant now) {
    if (status == StoredStatus.DISABLED) {
      return ShownStatus.DISABLED;
    }
    if (expiresAt != null && !expiresAt.isAfter(now)) {
      return ShownStatus.EXPIRED;
    }
    if (quota.signum() > 0 && quotaUsed.compareTo(quota) >= 0) {
      return ShownStatus.QUOTA_EXHAUSTED;
    }
    return ShownStatus.ACTIVE;
  }

  public enum ShownStatus {
    ACTIVE,
    DISABLED,
    EXPIRED,
    QUOTA_EXHAUSTED
  }
}
