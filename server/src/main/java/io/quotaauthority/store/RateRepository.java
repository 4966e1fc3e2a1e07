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

  private final Transactions tx;

  public RateRepository(Transactions tx) {
    this.tx = tx;
  }

  @Override
  public Grant grant(long keyId, int rpm, long first, long last, int wanted) {
    return tx.inTransaction(
        c -> {
          try (PreparedStatement ps = c.prepareStatement(LOCK)) {
            ps.setInt(1, (int) (keyId ^ (keyId >>> 32)));
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
            long left = used;
            long retryAt = last + 61;
            for (long[] g : near) {
              left -= g[1];
              if (left < rpm) {
                retryAt = Math.max(first + 1, g[0] + 61);
                break;
              }
            }
            return new Grant(0, retryAt);
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
