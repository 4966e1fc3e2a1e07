package io.quotaauthority.store;

import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyLookup;
import io.quotaauthority.keys.KeyPolicies;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.PeriodBudget;
import io.quotaauthority.keys.RateLimits;
import io.quotaauthority.keys.SpendWindows;
import io.quotaauthority.keys.UsageWindows;
import java.math.BigDecimal;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Consumer;
import org.postgresql.PGConnection;

/**
 * api_keys and key_audit. Statements take a Connection so callers compose them in one transaction.
 */
public final class KeyRepository implements KeyLookup {
  /** The channel every change is announced on (see {@link KeyChange} and KeyChangeListener). */
  public static final String CHANGE_CHANNEL = "quota_key_changes";

  static final String COLUMNS =
      """
      id, name, key_hash, key_prefix, status, quota, quota_used, expires_at, created_at, updated_at,
      deleted_at, version, leased, max_concurrent_requests, slots_leased, hold_usd_per_request,
      hold_expiry, ip_allow, ip_deny, model_allow, budget_period, budget_reset_minute,
      budget_time_zone, period_started_at, period_ends_at, window_5h_usd, window_1d_usd,
      window_7d_usd, window_30d_usd, spent_usd, requests_per_minute, tokens_per_minute,
      tokens_used""";

  private static final String INSERT =
      """
      INSERT INTO api_keys (name, key_hash, key_prefix, quota, expires_at, max_concurrent_requests,
                            hold_usd_per_request, hold_expiry, ip_allow, ip_deny, model_allow,
                            budget_period, budget_reset_minute, budget_time_zone, period_started_at,
                            period_ends_at, window_5h_usd, window_1d_usd, window_7d_usd,
                            window_30d_usd, requests_per_minute, tokens_per_minute)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      RETURNING %s"""
          .formatted(COLUMNS);

  private static final String SELECT_LIVE_FOR_UPDATE =
      """
      SELECT %s
        FROM api_keys WHERE id = ? AND deleted_at IS NULL FOR UPDATE"""
          .formatted(COLUMNS);

  private static final String SELECT_LIVE =
      """
      SELECT %s
        FROM api_keys WHERE id = ? AND deleted_at IS NULL"""
          .formatted(COLUMNS);

  private static final String SELECT_BY_HASH =
      """
      SELECT %s
        FROM api_keys WHERE key_hash = ?"""
          .formatted(COLUMNS);

  private static final String SELECT_BY_IDS =
      """
      SELECT %s
        FROM api_keys WHERE id = ANY (?)"""
          .formatted(COLUMNS);

  /**
   * The bulk refresh's query: it sends a chunk of cached ids with the version cached for each and
   * gets back only the rows whose version is another (deleted or not; every change of a row bumps
   * its version). An unchanged key then costs PostgreSQL one index lookup and this server two
   * numbers sent, where reading every row back cost the listener's thread half the server's CPU
   * under ingest with a million keys cached (bench/RESULTS.md, profile of usage ingest). The cached
   * columns are renamed so the row's own are unambiguous.
   */
  private static final String SELECT_CHANGED =
      """
      SELECT %s
        FROM unnest(?::bigint[], ?::bigint[]) AS c(cached_id, cached_version)
        JOIN api_keys ON id = cached_id
       WHERE version <> cached_version"""
          .formatted(COLUMNS);

  /**
   * Every live key's hash, for the in-memory set, a page after a given hash at a time. In key_hash
   * order (the unique index gives it cheaply), so the set is built already sorted.
   */
  private static final String SELECT_LIVE_HASHES =
      """
      SELECT key_hash FROM api_keys
       WHERE deleted_at IS NULL AND key_hash > ?
       ORDER BY key_hash LIMIT ?""";

  /**
   * Hashes per page of {@link #streamLiveHashes}: about 0.5 MB, a few ms of PostgreSQL's time.
   *
   * <p>Both bulk reads go a page per statement, never one query streaming the table: a statement
   * holds its snapshot for as long as it runs, and while it does PostgreSQL can prune no dead row
   * version newer than it, in any table. A million keys streamed in one query held it for 14-30 s,
   * so every instance's charges meanwhile found their pages full and stopped being HOT updates (58%
   * HOT in the bench's ingest beside an instance filling its cache, 99% without).
   */
  static final int HASH_PAGE = 10_000;

  /** Keys per page of {@link #streamLiveKeys}, oldest first: a few MB. */
  static final int KEY_PAGE = 5_000;

  private static final String SELECT_PAGE =
      """
      SELECT %s
        FROM api_keys WHERE deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?"""
          .formatted(COLUMNS);

  private static final String UPDATE_FIELDS =
      """
      UPDATE api_keys
         SET name = ?, quota = ?, expires_at = ?, status = ?, max_concurrent_requests = ?,
             hold_usd_per_request = ?, hold_expiry = ?, updated_at = now(), version = version + 1
       WHERE id = ?
      RETURNING %s"""
          .formatted(COLUMNS);

  /** The access lists alone (README "Key policies"): a change of the row like any other. */
  private static final String UPDATE_POLICIES =
      """
      UPDATE api_keys
         SET ip_allow = ?, ip_deny = ?, model_allow = ?, budget_period = ?, budget_reset_minute = ?,
             budget_time_zone = ?, period_started_at = ?, period_ends_at = ?, window_5h_usd = ?,
             window_1d_usd = ?, window_7d_usd = ?, window_30d_usd = ?, requests_per_minute = ?,
             tokens_per_minute = ?, updated_at = now(), version = version + 1
       WHERE id = ?
      RETURNING %s"""
          .formatted(COLUMNS);

  private static final String RESET_QUOTA =
      """
      UPDATE api_keys SET quota_used = 0, updated_at = now(), version = version + 1
       WHERE id = ?
      RETURNING %s"""
          .formatted(COLUMNS);

  private static final String SOFT_DELETE =
      """
      UPDATE api_keys SET deleted_at = now(), updated_at = now(), version = version + 1
       WHERE id = ?
      RETURNING %s"""
          .formatted(COLUMNS);

  /**
   * A windowed key's lifetime spend and, in the same statement (so the same snapshot), its usage by
   * the minute it was charged in, since a given instant: by usage_events_key_received_id_idx, at
   * most the span of the key's longest window.
   */
  private static final String USAGE_HISTORY =
      """
      SELECT NULL::bigint AS minute, spent_usd AS usd, tokens_used AS tokens
        FROM api_keys WHERE id = ?
      UNION ALL
      SELECT floor((?::bigint + extract(epoch FROM received_at - now()) * 1000) / 60000)::bigint,
             sum(cost), sum(input_tokens + output_tokens)::bigint
        FROM usage_events
       WHERE key_id = ? AND received_at >= now() - make_interval(mins => ?)
       GROUP BY 1""";

  private static final String INSERT_AUDIT =
      """
      INSERT INTO key_audit (key_id, action, old_value, new_value, actor)
      VALUES (?, ?, ?::jsonb, ?::jsonb, ?)""";

  private static final String NOTIFY =
      """
      SELECT pg_notify(?, ?)""";

  private final Transactions tx;

  public KeyRepository(Transactions tx) {
    this.tx = tx;
  }

  /** A new key without a concurrency cap. */
  public KeyRecord insert(
      Connection c, String name, KeyHash hash, String prefix, BigDecimal quota, Instant expiresAt)
      throws SQLException {
    return insert(
        c, name, hash, prefix, quota, expiresAt, 0, BigDecimal.ZERO, KeyRecord.HoldExpiry.CHARGE);
  }

  /**
   * @param maxConcurrentRequests 0..{@link KeyRecord#MAX_CONCURRENT_REQUESTS}, 0 for no cap
   * @param holdPerRequest USD Check holds per request for usage-stream reporters, 0 for none
   */
  public KeyRecord insert(
      Connection c,
      String name,
      KeyHash hash,
      String prefix,
      BigDecimal quota,
      Instant expiresAt,
      int maxConcurrentRequests,
      BigDecimal holdPerRequest,
      KeyRecord.HoldExpiry holdExpiry)
      throws SQLException {
    return insert(
        c,
        name,
        hash,
        prefix,
        quota,
        expiresAt,
        maxConcurrentRequests,
        holdPerRequest,
        holdExpiry,
        KeyPolicies.NONE);
  }

  /** A new key without reporter holds. */
  public KeyRecord insert(
      Connection c,
      String name,
      KeyHash hash,
      String prefix,
      BigDecimal quota,
      Instant expiresAt,
      int maxConcurrentRequests,
      KeyPolicies policies)
      throws SQLException {
    return insert(
        c,
        name,
        hash,
        prefix,
        quota,
        expiresAt,
        maxConcurrentRequests,
        BigDecimal.ZERO,
        KeyRecord.HoldExpiry.CHARGE,
        policies);
  }

  /**
   * @param policies the key's access lists, already validated
   */
  public KeyRecord insert(
      Connection c,
      String name,
      KeyHash hash,
      String prefix,
      BigDecimal quota,
      Instant expiresAt,
      int maxConcurrentRequests,
      BigDecimal holdPerRequest,
      KeyRecord.HoldExpiry holdExpiry,
      KeyPolicies policies)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(INSERT)) {
      ps.setString(1, name);
      ps.setBytes(2, hash.toBytes());
      ps.setString(3, prefix);
      ps.setBigDecimal(4, quota);
      setInstant(ps, 5, expiresAt);
      ps.setInt(6, maxConcurrentRequests);
      ps.setBigDecimal(7, holdPerRequest);
      ps.setString(8, holdExpiry.name().toLowerCase(Locale.ROOT));
      setPolicies(c, ps, 9, policies);
      return single(ps).orElseThrow();
    }
  }

  /** The live key, locked for the rest of the transaction. */
  public Optional<KeyRecord> lockLive(Connection c, long id) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(SELECT_LIVE_FOR_UPDATE)) {
      ps.setLong(1, id);
      return single(ps);
    }
  }

  public Optional<KeyRecord> findLive(Connection c, long id) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(SELECT_LIVE)) {
      ps.setLong(1, id);
      return single(ps);
    }
  }

  public List<KeyRecord> page(Connection c, long afterId, int limit) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(SELECT_PAGE)) {
      ps.setLong(1, afterId);
      ps.setInt(2, limit);
      return all(ps);
    }
  }

  public KeyRecord updateFields(
      Connection c,
      long id,
      String name,
      BigDecimal quota,
      Instant expiresAt,
      KeyRecord.StoredStatus status,
      int maxConcurrentRequests,
      BigDecimal holdPerRequest,
      KeyRecord.HoldExpiry holdExpiry)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(UPDATE_FIELDS)) {
      ps.setString(1, name);
      ps.setBigDecimal(2, quota);
      setInstant(ps, 3, expiresAt);
      ps.setString(4, status.name().toLowerCase(Locale.ROOT));
      ps.setInt(5, maxConcurrentRequests);
      ps.setBigDecimal(6, holdPerRequest);
      ps.setString(7, holdExpiry.name().toLowerCase(Locale.ROOT));
      ps.setLong(8, id);
      return single(ps).orElseThrow();
    }
  }

  /** Replaces the key's access lists (validated by the caller), bumping its version. */
  public KeyRecord updatePolicies(Connection c, long id, KeyPolicies policies) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(UPDATE_POLICIES)) {
      setPolicies(c, ps, 1, policies);
      ps.setLong(POLICY_PARAMETERS + 1, id);
      return single(ps).orElseThrow();
    }
  }

  /** How many parameters {@link #setPolicies} binds. */
  static final int POLICY_PARAMETERS = 14;

  /**
   * ip_allow, ip_deny, model_allow, budget_period, budget_reset_minute, budget_time_zone,
   * period_started_at, period_ends_at, window_5h_usd, window_1d_usd, window_7d_usd, window_30d_usd:
   * {@link #POLICY_PARAMETERS} parameters from {@code first}.
   */
  private static void setPolicies(Connection c, PreparedStatement ps, int first, KeyPolicies p)
      throws SQLException {
    ps.setArray(first, c.createArrayOf("text", p.ipAllow().entries().toArray()));
    ps.setArray(first + 1, c.createArrayOf("text", p.ipDeny().entries().toArray()));
    ps.setArray(first + 2, c.createArrayOf("text", p.modelAllow().entries().toArray()));
    PeriodBudget period = p.period();
    ps.setString(first + 3, period.kind().wireName());
    ps.setInt(first + 4, period.active() ? period.resetMinute() : 0);
    ps.setString(first + 5, period.active() ? period.zoneName() : "UTC");
    setInstant(ps, first + 6, period.active() ? period.startedAt() : null);
    setInstant(ps, first + 7, period.active() ? period.endsAt() : null);
    int i = first + 8;
    for (SpendWindows.Window w : SpendWindows.Window.values()) {
      ps.setBigDecimal(i++, p.windows().stored(w));
    }
    ps.setInt(i++, p.rates().requestsPerMinute());
    ps.setLong(i, p.rates().tokensPerMinute());
  }

  /** The spending window columns of a row. */
  static SpendWindows windows(ResultSet rs) throws SQLException {
    return SpendWindows.of(
        rs.getBigDecimal("window_5h_usd"),
        rs.getBigDecimal("window_1d_usd"),
        rs.getBigDecimal("window_7d_usd"),
        rs.getBigDecimal("window_30d_usd"));
  }

  /** The periodic budget columns of a row; a stored zone Java does not know reads as UTC. */
  static PeriodBudget period(ResultSet rs) throws SQLException {
    PeriodBudget.Kind kind =
        PeriodBudget.Kind.valueOf(rs.getString("budget_period").toUpperCase(Locale.ROOT));
    if (kind == PeriodBudget.Kind.NONE) {
      return PeriodBudget.NONE;
    }
    ZoneId zone;
    try {
      zone = PeriodBudget.parseZone("budget_time_zone", rs.getString("budget_time_zone"));
    } catch (IllegalArgumentException e) {
      zone = ZoneOffset.UTC;
    }
    return new PeriodBudget(
        kind,
        rs.getInt("budget_reset_minute"),
        zone,
        instant(rs, "period_started_at"),
        instant(rs, "period_ends_at"));
  }

  private static List<String> texts(ResultSet rs, String column) throws SQLException {
    Array a = rs.getArray(column);
    if (a == null) {
      return List.of();
    }
    try {
      Object[] values = (Object[]) a.getArray();
      List<String> out = new ArrayList<>(values.length);
      for (Object v : values) {
        if (v != null) {
          out.add((String) v);
        }
      }
      return out;
    } finally {
      a.free();
    }
  }

  public KeyRecord resetQuota(Connection c, long id) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(RESET_QUOTA)) {
      ps.setLong(1, id);
      return single(ps).orElseThrow();
    }
  }

  public KeyRecord softDelete(Connection c, long id) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(SOFT_DELETE)) {
      ps.setLong(1, id);
      return single(ps).orElseThrow();
    }
  }

  public void audit(
      Connection c, long keyId, String action, String oldJson, String newJson, String actor)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(INSERT_AUDIT)) {
      ps.setLong(1, keyId);
      ps.setString(2, action);
      ps.setString(3, oldJson);
      ps.setString(4, newJson);
      ps.setString(5, actor);
      ps.executeUpdate();
    }
  }

  /** Tells every instance (at commit) that this key changed to this version. */
  public static void notifyChange(Connection c, KeyRecord row) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(NOTIFY)) {
      ps.setString(1, CHANGE_CHANNEL);
      ps.setString(2, KeyChange.payload(row, System.currentTimeMillis()));
      ps.execute();
    }
  }

  /** {@link UsageWindows.History}: the key's lifetime spend and minute sums, or null if gone. */
  public UsageWindows.Read usageHistory(long keyId, long nowMillis, int lastMinutes) {
    return tx.inTransaction(
        c -> {
          try (PreparedStatement ps = c.prepareStatement(USAGE_HISTORY)) {
            ps.setLong(1, keyId);
            ps.setLong(2, nowMillis);
            ps.setLong(3, keyId);
            ps.setInt(4, lastMinutes);
            BigDecimal spent = null;
            long tokens = 0;
            List<long[]> rows = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                long minute = rs.getLong(1);
                if (rs.wasNull()) {
                  spent = rs.getBigDecimal(2);
                  tokens = rs.getLong(3);
                } else {
                  rows.add(
                      new long[] {minute, UsageWindows.units(rs.getBigDecimal(2)), rs.getLong(3)});
                }
              }
            }
            if (spent == null) {
              return null;
            }
            rows.sort((x, y) -> Long.compare(x[0], y[0]));
            long[] minutes = new long[rows.size()];
            long[] units = new long[rows.size()];
            long[] tokenCounts = new long[rows.size()];
            for (int i = 0; i < minutes.length; i++) {
              minutes[i] = rows.get(i)[0];
              units[i] = rows.get(i)[1];
              tokenCounts[i] = rows.get(i)[2];
            }
            return new UsageWindows.Read(spent, tokens, minutes, units, tokenCounts);
          }
        });
  }

  @Override
  public Optional<KeyRecord> findByHash(KeyHash hash) {
    return tx.inTransaction(
        c -> {
          try (PreparedStatement ps = c.prepareStatement(SELECT_BY_HASH)) {
            ps.setBytes(1, hash.toBytes());
            return single(ps);
          }
        });
  }

  @Override
  public List<KeyRecord> findByIds(Collection<Long> ids) {
    if (ids.isEmpty()) {
      return List.of();
    }
    return tx.inTransaction(c -> findByIds(c, ids));
  }

  /** The rows with these ids, deleted or not, on the caller's connection (the listener's own). */
  public List<KeyRecord> findByIds(Connection c, Collection<Long> ids) throws SQLException {
    if (ids.isEmpty()) {
      return List.of();
    }
    Array array = c.createArrayOf("bigint", ids.toArray());
    try (PreparedStatement ps = c.prepareStatement(SELECT_BY_IDS)) {
      ps.setArray(1, array);
      return all(ps);
    } finally {
      array.free();
    }
  }

  /**
   * The rows among {@code ids} whose version is not the one at the same index of {@code versions}
   * (see {@link #SELECT_CHANGED}), on the caller's connection (the listener's own).
   */
  public List<KeyRecord> findChanged(Connection c, long[] ids, long[] versions)
      throws SQLException {
    if (ids.length != versions.length) {
      throw new IllegalArgumentException("one version per id");
    }
    if (ids.length == 0) {
      return List.of();
    }
    // pgjdbc's own createArrayOf takes primitive arrays: no Long boxed per key.
    PGConnection pg = c.unwrap(PGConnection.class);
    Array idArray = pg.createArrayOf("int8", ids);
    Array versionArray = pg.createArrayOf("int8", versions);
    try (PreparedStatement ps = c.prepareStatement(SELECT_CHANGED)) {
      ps.setArray(1, idArray);
      ps.setArray(2, versionArray);
      return all(ps);
    } finally {
      idArray.free();
      versionArray.free();
    }
  }

  /**
   * Hands every live key's 32-byte hash to {@code sink} in key_hash order, a page per statement
   * (see {@link #HASH_PAGE}) on {@code c}, which must be in auto-commit so that each page has a
   * snapshot of its own. A key created or deleted meanwhile may be missed or seen; the listener,
   * LISTENing since before the first page, hears of it either way.
   */
  public void streamLiveHashes(Connection c, Consumer<byte[]> sink) throws SQLException {
    streamLiveHashes(c, HASH_PAGE, sink);
  }

  void streamLiveHashes(Connection c, int pageSize, Consumer<byte[]> sink) throws SQLException {
    byte[] after = new byte[0];
    try (PreparedStatement ps = c.prepareStatement(SELECT_LIVE_HASHES)) {
      while (true) {
        // Every hash sorts after the empty one.
        ps.setBytes(1, after);
        ps.setInt(2, pageSize);
        int n = 0;
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            after = rs.getBytes(1);
            sink.accept(after);
            n++;
          }
        }
        if (n < pageSize) {
          return;
        }
      }
    }
  }

  /**
   * Hands up to {@code limit} live keys, oldest first, to {@code sink}, a page per statement (see
   * {@link #HASH_PAGE} for why, and {@link #streamLiveHashes} for what the caller must be).
   */
  public void streamLiveKeys(Connection c, long limit, Consumer<KeyRecord> sink)
      throws SQLException {
    streamLiveKeys(c, limit, KEY_PAGE, sink);
  }

  void streamLiveKeys(Connection c, long limit, int pageSize, Consumer<KeyRecord> sink)
      throws SQLException {
    long after = 0;
    long left = limit;
    while (left > 0) {
      int asked = (int) Math.min(pageSize, left);
      List<KeyRecord> rows = page(c, after, asked);
      for (KeyRecord row : rows) {
        sink.accept(row);
      }
      if (rows.size() < asked) {
        return;
      }
      left -= rows.size();
      after = rows.get(rows.size() - 1).id();
    }
  }

  private static Optional<KeyRecord> single(PreparedStatement ps) throws SQLException {
    try (ResultSet rs = ps.executeQuery()) {
      return rs.next() ? Optional.of(read(rs)) : Optional.empty();
    }
  }

  private static List<KeyRecord> all(PreparedStatement ps) throws SQLException {
    List<KeyRecord> out = new ArrayList<>();
    try (ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        out.add(read(rs));
      }
    }
    return out;
  }

  static KeyRecord read(ResultSet rs) throws SQLException {
    return new KeyRecord(
        rs.getLong("id"),
        rs.getString("name"),
        KeyHash.of(rs.getBytes("key_hash")),
        rs.getString("key_prefix"),
        KeyRecord.StoredStatus.valueOf(rs.getString("status").toUpperCase(Locale.ROOT)),
        rs.getBigDecimal("quota"),
        rs.getBigDecimal("quota_used"),
        instant(rs, "expires_at"),
        instant(rs, "created_at"),
        instant(rs, "updated_at"),
        instant(rs, "deleted_at"),
        rs.getLong("version"),
        rs.getBigDecimal("leased"),
        rs.getInt("max_concurrent_requests"),
        rs.getInt("slots_leased"),
        rs.getBigDecimal("hold_usd_per_request"),
        KeyRecord.HoldExpiry.valueOf(rs.getString("hold_expiry").toUpperCase(Locale.ROOT)),
        KeyPolicies.stored(
            texts(rs, "ip_allow"),
            texts(rs, "ip_deny"),
            texts(rs, "model_allow"),
            period(rs),
            windows(rs),
            RateLimits.of(rs.getInt("requests_per_minute"), rs.getLong("tokens_per_minute"))),
        rs.getBigDecimal("spent_usd"),
        rs.getLong("tokens_used"));
  }

  static Instant instant(ResultSet rs, String column) throws SQLException {
    OffsetDateTime t = rs.getObject(column, OffsetDateTime.class);
    if (t == null) {
      return null;
    }
    try {
      return t.toInstant();
    } catch (DateTimeException e) {
      // '-infinity' comes back as OffsetDateTime.MIN, below Instant.MIN: keep its meaning (the
      // farthest past) rather than fail the whole read; the admin API shows it clamped.
      return t.getYear() < 0 ? Instant.MIN : Instant.MAX;
    }
  }

  /** timestamptz binds as OffsetDateTime: java.sql.Timestamp would drag in the JVM's time zone. */
  static void setInstant(PreparedStatement ps, int index, Instant value) throws SQLException {
    if (value == null) {
      ps.setNull(index, Types.TIMESTAMP_WITH_TIMEZONE);
    } else {
      ps.setObject(index, OffsetDateTime.ofInstant(value, ZoneOffset.UTC));
    }
  }
}
