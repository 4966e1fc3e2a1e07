package io.quotaauthority.store;

import io.quotaauthority.usage.RateStore;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;

/** key_rate_grants: request permits granted to instances (README "Rate limits"). */
public final class RateRepository implements RateStore {
  /** Serializes the grants of one key (a lock of its own, not the key row charges lock). */
  private static final String LOCK =
      """
      SELECT pg_advisory_xact_lock(1902, ?::int)""";

  /** Grants whose span comes within 60 s of [first, last]: their end and permits. */
  private static final String NEAR =
      """
      SELECT end_second, granted FROM key_rate_grants
       WHERE key_id = ? AND end_second >= ? AND start_second <= ?
       ORDER BY end_second""";

  private static final String INSERT =
      """
      INSERT INTO key_rate_grants (key_id, start_second, end_second, granted) VALUES (?, ?, ?, ?)
      ON CONFLICT (key_id, start_second, end_second)
      DO UPDATE SET granted = key_rate_grants.granted + excluded.granted""";

  private static final String PRUNE =
      """
      DELETE FROM key_rate_grants WHERE key_id = ? AND end_second < ?""";

  /** Every key of a batch locked, in key order (two batches cannot deadlock). */
  private static final String LOCK_ALL =
      """
      SELECT pg_advisory_xact_lock(1902, k) FROM (SELECT DISTINCT unnest(?::int[]) AS k) AS l
       ORDER BY k""";

  private static final String NEAR_ALL =
      """
      SELECT key_id, start_second, end_second, granted FROM key_rate_grants
       WHERE key_id = ANY (?) AND end_second >= ? AND start_second <= ?""";

  private static final String INSERT_ALL =
      """
      INSERT INTO key_rate_grants (key_id, start_second, end_second, granted)
      SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::int[])
      ON CONFLICT (key_id, start_second, end_second)
      DO UPDATE SET granted = key_rate_grants.granted + excluded.granted""";

  private static final String PRUNE_ALL =
      """
      DELETE FROM key_rate_grants WHERE key_id = ANY (?) AND end_second < ?""";

  private final Transactions tx;

  public RateRepository(Transactions tx) {
    this.tx = tx;
  }

  private static int lockId(long keyId) {
    return (int) (keyId ^ (keyId >>> 32));
  }

  /**
   * The asks of many keys in one transaction of four statements: each key decided as {@link #grant}
   * decides it, on the grants near its own seconds.
   */
  @Override
  public List<Grant> grantAll(List<Ask> asks) {
    if (asks.size() == 1) {
      Ask a = asks.get(0);
      return List.of(grant(a.keyId(), a.rpm(), a.first(), a.last(), a.wanted()));
    }
    return tx.inTransaction(
        c -> {
          Object[] ids = new Object[asks.size()];
          Object[] locks = new Object[asks.size()];
          long lo = Long.MAX_VALUE;
          long hi = Long.MIN_VALUE;
          for (int i = 0; i < asks.size(); i++) {
            ids[i] = asks.get(i).keyId();
            locks[i] = lockId(asks.get(i).keyId());
            lo = Math.min(lo, asks.get(i).first() - 60);
            hi = Math.max(hi, asks.get(i).last() + 60);
          }
          try (PreparedStatement ps = c.prepareStatement(LOCK_ALL)) {
            ps.setArray(1, c.createArrayOf("int", locks));
            ps.executeQuery().close();
          }
          java.util.Map<Long, List<long[]>> near = new java.util.HashMap<>();
          try (PreparedStatement ps = c.prepareStatement(NEAR_ALL)) {
            ps.setArray(1, c.createArrayOf("bigint", ids));
            ps.setLong(2, lo);
            ps.setLong(3, hi);
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                near.computeIfAbsent(rs.getLong(1), k -> new ArrayList<>())
                    .add(new long[] {rs.getLong(2), rs.getLong(3), rs.getInt(4)});
              }
            }
          }
          List<Grant> out = new ArrayList<>(asks.size());
          List<Object> insKey = new ArrayList<>();
          List<Object> insFirst = new ArrayList<>();
          List<Object> insLast = new ArrayList<>();
          List<Object> insGranted = new ArrayList<>();
          for (Ask a : asks) {
            List<long[]> rows = new ArrayList<>();
            long used = 0;
            for (long[] g : near.getOrDefault(a.keyId(), List.of())) {
              if (g[1] >= a.first() - 60 && g[0] <= a.last() + 60) {
                rows.add(new long[] {g[1], g[2]});
                used += g[2];
              }
            }
            int granted = (int) Math.max(0, Math.min(a.wanted(), a.rpm() - used));
            if (granted == 0) {
              out.add(new Grant(0, retryAt(rows, used, a.rpm(), a.first(), a.last())));
              continue;
            }
            out.add(new Grant(granted, 0));
            insKey.add(a.keyId());
            insFirst.add(a.first());
            insLast.add(a.last());
            insGranted.add(granted);
          }
          if (!insKey.isEmpty()) {
            try (PreparedStatement ps = c.prepareStatement(INSERT_ALL)) {
              ps.setArray(1, c.createArrayOf("bigint", insKey.toArray()));
              ps.setArray(2, c.createArrayOf("bigint", insFirst.toArray()));
              ps.setArray(3, c.createArrayOf("bigint", insLast.toArray()));
              ps.setArray(4, c.createArrayOf("int", insGranted.toArray()));
              ps.executeUpdate();
            }
            try (PreparedStatement ps = c.prepareStatement(PRUNE_ALL)) {
              ps.setArray(1, c.createArrayOf("bigint", ids));
              ps.setLong(2, lo - 60);
              ps.executeUpdate();
            }
          }
          return out;
        });
  }

  /** The first second a permit fits again, given the grants near (end, granted) sorted here. */
  static long retryAt(List<long[]> rows, long used, int rpm, long first, long last) {
    rows.sort((x, y) -> Long.compare(x[0], y[0]));
    long left = used;
    for (long[] g : rows) {
      left -= g[1];
      if (left < rpm) {
        return Math.max(first + 1, g[0] + 61);
      }
    }
    return last + 61;
  }

  @Override
  public Grant grant(long keyId, int rpm, long first, long last, int wanted) {
    return tx.inTransaction(
        c -> {
          try (PreparedStatement ps = c.prepareStatement(LOCK)) {
            ps.setInt(1, lockId(keyId));
            ps.execute();
          }
          List<long[]> near = new ArrayList<>();
          long used = 0;
          try (PreparedStatement ps = c.prepareStatement(NEAR)) {
            ps.setLong(1, keyId);
            ps.setLong(2, first - 60);
            ps.setLong(3, last + 60);
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                near.add(new long[] {rs.getLong(1), rs.getInt(2)});
                used += rs.getInt(2);
              }
            }
          }
          int granted = (int) Math.max(0, Math.min(wanted, rpm - used));
          if (granted == 0) {
            // The first second from which, the oldest grants having left every 61 s span that
            // holds it, a permit fits again.
            return new Grant(0, retryAt(near, used, rpm, first, last));
          }
          try (PreparedStatement ps = c.prepareStatement(INSERT)) {
            ps.setLong(1, keyId);
            ps.setLong(2, first);
            ps.setLong(3, last);
            ps.setInt(4, granted);
            ps.executeUpdate();
          }
          try (PreparedStatement ps = c.prepareStatement(PRUNE)) {
            ps.setLong(1, keyId);
            ps.setLong(2, first - 120);
            ps.executeUpdate();
          }
          return new Grant(granted, 0);
        });
  }
}
