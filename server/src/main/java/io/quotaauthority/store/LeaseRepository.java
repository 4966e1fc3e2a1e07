package io.quotaauthority.store;

import io.quotaauthority.usage.LeaseStore;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * key_leases and api_keys.leased: slices of keys' budgets leased to instances (README, "Budget
 * leases"). Every change to a lease's amount changes its key's leased total by the same amount in
 * the same transaction, so leased is always the sum of the key's leases. Locks are taken key row
 * first, lease row second, as {@link UsageRepository#commitGroup} does, so the two cannot deadlock.
 * Expiry is set on the database's clock; leased is not part of the key's row version (a lease
 * changes nothing a Check reads, so no NOTIFY and no version bump).
 */
public final class LeaseRepository implements LeaseStore {
  /**
   * What is leased: a key's budget (USD, V5) or its concurrency slots (V6). Each names its lease
   * table and column, the key's total of its leases, when the key is limited at all and what it has
   * left; the statements below are the same for both.
   */
  public enum Resource {
    BUDGET("key_leases", "amount", "leased", "quota > 0", "quota - quota_used - leased"),
    SLOTS(
        "key_slot_leases",
        "slots",
        "slots_leased",
        "max_concurrent_requests > 0",
        "max_concurrent_requests - slots_leased");

    final String table;
    final String column;
    final String keyTotal;
    final String limited;
    final String remaining;

    Resource(String table, String column, String keyTotal, String limited, String remaining) {
      this.table = table;
      this.column = column;
      this.keyTotal = keyTotal;
      this.limited = limited;
      this.remaining = remaining;
    }

    /** A statement template with its names filled in. */
    String sql(String template) {
      return template
          .replace("{table}", table)
          .replace("{column}", column)
          .replace("{keyTotal}", keyTotal)
          .replace("{limited}", limited)
          .replace("{remaining}", remaining);
    }
  }

  /**
   * The grant: one conditional update. Under READ COMMITTED a second grant waiting for the row's
   * lock re-checks the WHERE clause on the row the first one left, so both cannot pass on the same
   * budget. (Slots are integers: the numeric parameter is cast on assignment.)
   */
  private static final String GRANT =
      """
      UPDATE api_keys SET {keyTotal} = {keyTotal} + ?
       WHERE id = ? AND deleted_at IS NULL AND {limited} AND {remaining} >= ?
      RETURNING greatest({remaining}, 0)""";

  /** Adds to the instance's lease (or starts it) and extends it; never shortens an expiry. */
  private static final String UPSERT_LEASE =
      """
      INSERT INTO {table} (key_id, instance_id, {column}, expires_at)
      VALUES (?, ?, ?, now() + ? * interval '1 millisecond')
      ON CONFLICT (key_id, instance_id) DO UPDATE
         SET {column} = {table}.{column} + EXCLUDED.{column},
             expires_at = greatest({table}.expires_at, EXCLUDED.expires_at)
      RETURNING {column}""";

  /** Why a grant was refused: what is left of a live key, and whether it is limited at all. */
  private static final String REMAINING =
      """
      SELECT {limited}, greatest({remaining}, 0)
        FROM api_keys WHERE id = ? AND deleted_at IS NULL""";

  /** Deleted keys too: the lease of a key deleted meanwhile must still go back. */
  private static final String LOCK_KEY =
      """
      SELECT id FROM api_keys WHERE id = ? FOR UPDATE""";

  private static final String LEASE =
      """
      SELECT {column} FROM {table} WHERE key_id = ? AND instance_id = ?""";

  private static final String LEASE_FOR_UPDATE =
      """
      SELECT {column} FROM {table} WHERE key_id = ? AND instance_id = ? FOR UPDATE""";

  private static final String SHRINK_LEASE =
      """
      UPDATE {table} SET {column} = {column} - ? WHERE key_id = ? AND instance_id = ?""";

  private static final String DELETE_LEASE =
      """
      DELETE FROM {table} WHERE key_id = ? AND instance_id = ?""";

  private static final String UNLEASE_KEY =
      """
      UPDATE api_keys SET {keyTotal} = {keyTotal} - ? WHERE id = ?""";

  private static final String RENEW =
      """
      UPDATE {table} SET expires_at = greatest(expires_at, now() + ? * interval '1 millisecond')
       WHERE instance_id = ?
      RETURNING key_id, {column}""";

  /**
   * The keys with an expired lease, locked; SKIP LOCKED so that a second reaper passes over keys
   * the first one holds (and a key a usage group is charging waits for the next round).
   */
  private static final String LOCK_KEYS_WITH_EXPIRED =
      """
      SELECT id FROM api_keys
       WHERE id IN (SELECT key_id FROM {table} WHERE expires_at <= ?)
       ORDER BY id
         FOR UPDATE SKIP LOCKED""";

  /**
   * A fresh snapshot (READ COMMITTED): a lease another reaper gave back or its instance renewed
   * since is not deleted, so only what is deleted here goes back to the key.
   */
  private static final String DELETE_EXPIRED =
      """
      DELETE FROM {table} WHERE key_id = ANY (?) AND expires_at <= ?
      RETURNING key_id, {column}""";

  private static final String UNLEASE_KEYS =
      """
      UPDATE api_keys k SET {keyTotal} = k.{keyTotal} - v.amount
        FROM unnest(?::bigint[], ?::numeric[]) AS v(id, amount)
       WHERE k.id = v.id""";

  /** UNLEASE_KEYS for budget leases: what a usage group's draws take off the keys' leased. */
  private static final String BUDGET_UNLEASE_KEYS = Resource.BUDGET.sql(UNLEASE_KEYS);

  /** The leases a usage group's held reports draw on, locked (their keys are already locked). */
  private static final String LOCK_HELD_LEASES =
      """
      SELECT l.key_id, l.instance_id, l.amount
        FROM key_leases l
        JOIN unnest(?::bigint[], ?::text[]) AS v(key_id, instance_id) USING (key_id, instance_id)
       ORDER BY l.key_id, l.instance_id
         FOR UPDATE OF l""";

  private static final String DRAW_LEASES =
      """
      UPDATE key_leases l SET amount = l.amount - v.amount
        FROM unnest(?::bigint[], ?::text[], ?::numeric[]) AS v(key_id, instance_id, amount)
       WHERE l.key_id = v.key_id AND l.instance_id = v.instance_id""";

  private final Transactions tx;
  private final String grant;
  private final String upsertLease;
  private final String remaining;
  private final String lease;
  private final String leaseForUpdate;
  private final String shrinkLease;
  private final String deleteLease;
  private final String unleaseKey;
  private final String renew;
  private final String lockKeysWithExpired;
  private final String deleteExpired;
  private final String unleaseKeys;

  /** Leases of keys' budgets. */
  public LeaseRepository(Transactions tx) {
    this(tx, Resource.BUDGET);
  }

  /** Leases of {@code resource}: keys' budgets or their concurrency slots. */
  public LeaseRepository(Transactions tx, Resource resource) {
    this.tx = tx;
    // Filled in once: the statements are constant for the life of the repository.
    this.grant = resource.sql(GRANT);
    this.upsertLease = resource.sql(UPSERT_LEASE);
    this.remaining = resource.sql(REMAINING);
    this.lease = resource.sql(LEASE);
    this.leaseForUpdate = resource.sql(LEASE_FOR_UPDATE);
    this.shrinkLease = resource.sql(SHRINK_LEASE);
    this.deleteLease = resource.sql(DELETE_LEASE);
    this.unleaseKey = resource.sql(UNLEASE_KEY);
    this.renew = resource.sql(RENEW);
    this.lockKeysWithExpired = resource.sql(LOCK_KEYS_WITH_EXPIRED);
    this.deleteExpired = resource.sql(DELETE_EXPIRED);
    this.unleaseKeys = resource.sql(UNLEASE_KEYS);
  }

  @Override
  public Grant take(long keyId, String instanceId, BigDecimal slice, Duration ttl) {
    if (slice.signum() <= 0) {
      throw new IllegalArgumentException("slice must be positive, was " + slice.toPlainString());
    }
    return tx.inTransaction(
        c -> {
          BigDecimal remaining = grant(c, keyId, slice);
          if (remaining == null) {
            return refused(c, keyId, instanceId);
          }
          try (PreparedStatement ps = c.prepareStatement(upsertLease)) {
            ps.setLong(1, keyId);
            ps.setString(2, instanceId);
            ps.setBigDecimal(3, slice);
            ps.setLong(4, ttl.toMillis());
            try (ResultSet rs = ps.executeQuery()) {
              rs.next();
              return new Grant(Grant.Outcome.GRANTED, remaining, rs.getBigDecimal(1));
            }
          }
        });
  }

  /** The key's remaining after the grant, or null when it was not granted. */
  private BigDecimal grant(Connection c, long keyId, BigDecimal slice) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(grant)) {
      ps.setBigDecimal(1, slice);
      ps.setLong(2, keyId);
      ps.setBigDecimal(3, slice);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? rs.getBigDecimal(1) : null;
      }
    }
  }

  private Grant refused(Connection c, long keyId, String instanceId) throws SQLException {
    BigDecimal lease = leaseAmount(c, keyId, instanceId, false);
    lease = lease == null ? BigDecimal.ZERO : lease;
    try (PreparedStatement ps = c.prepareStatement(remaining)) {
      ps.setLong(1, keyId);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          return new Grant(Grant.Outcome.NO_KEY, BigDecimal.ZERO, lease);
        }
        return rs.getBoolean(1)
            ? new Grant(Grant.Outcome.TOO_LITTLE, rs.getBigDecimal(2), lease)
            : new Grant(Grant.Outcome.UNLIMITED, BigDecimal.ZERO, lease);
      }
    }
  }

  private BigDecimal leaseAmount(Connection c, long keyId, String instanceId, boolean forUpdate)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(forUpdate ? leaseForUpdate : lease)) {
      ps.setLong(1, keyId);
      ps.setString(2, instanceId);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? rs.getBigDecimal(1) : null;
      }
    }
  }

  @Override
  public BigDecimal giveBack(long keyId, String instanceId, BigDecimal amount) {
    if (amount.signum() <= 0) {
      return BigDecimal.ZERO;
    }
    return tx.inTransaction(
        c -> {
          // Key row first, as every other writer of leased does.
          try (PreparedStatement ps = c.prepareStatement(LOCK_KEY)) {
            ps.setLong(1, keyId);
            ps.executeQuery().close();
          }
          BigDecimal lease = leaseAmount(c, keyId, instanceId, true);
          if (lease == null) {
            return BigDecimal.ZERO;
          }
          BigDecimal given = lease.min(amount);
          if (given.compareTo(lease) == 0) {
            // Nothing left: the row goes, so an instance's leases are only those it still has.
            try (PreparedStatement ps = c.prepareStatement(deleteLease)) {
              ps.setLong(1, keyId);
              ps.setString(2, instanceId);
              ps.executeUpdate();
            }
          } else {
            try (PreparedStatement ps = c.prepareStatement(shrinkLease)) {
              ps.setBigDecimal(1, given);
              ps.setLong(2, keyId);
              ps.setString(3, instanceId);
              ps.executeUpdate();
            }
          }
          try (PreparedStatement ps = c.prepareStatement(unleaseKey)) {
            ps.setBigDecimal(1, given);
            ps.setLong(2, keyId);
            ps.executeUpdate();
          }
          return given;
        });
  }

  @Override
  public Map<Long, BigDecimal> renew(String instanceId, Duration ttl) {
    return tx.inTransaction(
        c -> {
          Map<Long, BigDecimal> leases = new LinkedHashMap<>();
          try (PreparedStatement ps = c.prepareStatement(renew)) {
            ps.setLong(1, ttl.toMillis());
            ps.setString(2, instanceId);
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                leases.put(rs.getLong(1), rs.getBigDecimal(2));
              }
            }
          }
          return leases;
        });
  }

  @Override
  public int reapExpired(Instant now) {
    OffsetDateTime at = OffsetDateTime.ofInstant(now, ZoneOffset.UTC);
    return tx.inTransaction(
        c -> {
          List<Long> keys = new ArrayList<>();
          try (PreparedStatement ps = c.prepareStatement(lockKeysWithExpired)) {
            ps.setObject(1, at);
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                keys.add(rs.getLong(1));
              }
            }
          }
          if (keys.isEmpty()) {
            return 0;
          }
          Map<Long, BigDecimal> back = new HashMap<>();
          int reaped = 0;
          try (PreparedStatement ps = c.prepareStatement(deleteExpired)) {
            ps.setArray(1, c.createArrayOf("bigint", keys.toArray()));
            ps.setObject(2, at);
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                back.merge(rs.getLong(1), rs.getBigDecimal(2), BigDecimal::add);
                reaped++;
              }
            }
          }
          if (!back.isEmpty()) {
            try (PreparedStatement ps = c.prepareStatement(unleaseKeys)) {
              ps.setArray(1, c.createArrayOf("bigint", back.keySet().toArray()));
              ps.setArray(2, c.createArrayOf("numeric", back.values().toArray()));
              ps.executeUpdate();
            }
          }
          return reaped;
        });
  }

  /** A charged report that was admitted on a hold: what it may draw off which lease. */
  record Draw(String reportId, long keyId, String instanceId, BigDecimal cost, BigDecimal hold) {}

  private record LeaseId(long keyId, String instanceId) {}

  /**
   * Draws each charged report's share off the lease it was held on, in the caller's transaction,
   * whose key rows must already be locked (UsageRepository#commitGroup does): min(cost, hold, what
   * is left of the lease), in report order, off the lease and off the key's leased total. A lease
   * reaped or given back meanwhile gives nothing: its budget went back to the key already.
   *
   * @return report id → what it drew (zero included)
   */
  static Map<String, BigDecimal> drawHeld(Connection c, List<Draw> draws) throws SQLException {
    if (draws.isEmpty()) {
      return Map.of();
    }
    Map<LeaseId, BigDecimal> left = new HashMap<>();
    List<Object> keyIds = new ArrayList<>();
    List<Object> instances = new ArrayList<>();
    for (Draw d : draws) {
      keyIds.add(d.keyId());
      instances.add(d.instanceId());
    }
    try (PreparedStatement ps = c.prepareStatement(LOCK_HELD_LEASES)) {
      ps.setArray(1, c.createArrayOf("bigint", keyIds.toArray()));
      ps.setArray(2, c.createArrayOf("text", instances.toArray()));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          left.put(new LeaseId(rs.getLong(1), rs.getString(2)), rs.getBigDecimal(3));
        }
      }
    }
    Map<String, BigDecimal> drawn = new LinkedHashMap<>();
    Map<LeaseId, BigDecimal> perLease = new LinkedHashMap<>();
    Map<Long, BigDecimal> perKey = new LinkedHashMap<>();
    for (Draw d : draws) {
      LeaseId id = new LeaseId(d.keyId(), d.instanceId());
      BigDecimal available = left.getOrDefault(id, BigDecimal.ZERO);
      // What the hold reserved and the charge used; an overrun past the hold is the estimate's
      // error, charged to quota_used but never taken from budget other holds stand on.
      BigDecimal share = d.cost().min(d.hold()).min(available);
      drawn.put(d.reportId(), share);
      if (share.signum() > 0) {
        left.put(id, available.subtract(share));
        perLease.merge(id, share, BigDecimal::add);
        perKey.merge(d.keyId(), share, BigDecimal::add);
      }
    }
    if (perLease.isEmpty()) {
      return drawn;
    }
    List<Object> leaseKeys = new ArrayList<>();
    List<Object> leaseInstances = new ArrayList<>();
    for (LeaseId id : perLease.keySet()) {
      leaseKeys.add(id.keyId());
      leaseInstances.add(id.instanceId());
    }
    try (PreparedStatement ps = c.prepareStatement(DRAW_LEASES)) {
      ps.setArray(1, c.createArrayOf("bigint", leaseKeys.toArray()));
      ps.setArray(2, c.createArrayOf("text", leaseInstances.toArray()));
      ps.setArray(3, c.createArrayOf("numeric", perLease.values().toArray()));
      ps.executeUpdate();
    }
    try (PreparedStatement ps = c.prepareStatement(BUDGET_UNLEASE_KEYS)) {
      ps.setArray(1, c.createArrayOf("bigint", perKey.keySet().toArray()));
      ps.setArray(2, c.createArrayOf("numeric", perKey.values().toArray()));
      ps.executeUpdate();
    }
    return drawn;
  }
}
