package io.quotaauthority.store;

import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.PeriodBudget;
import io.quotaauthority.threads.DaemonThreads;
import java.math.BigDecimal;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Rolls keys with a periodic budget over to their next period (README "Key policies"), and reads
 * the ended periods back. A key is rolled over in the transaction that first needs it: the charge
 * of its next usage (UsageRepository, so a charge after the boundary counts in the new period) or,
 * for a key nobody uses, the sweep every instance runs every second (so GetKey, Check and the
 * budget leases see the new period without traffic). Both lock the key row, and the rollover
 * re-checks the row's period end under the lock, so two instances never roll one period twice.
 */
public final class BudgetPeriods implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(BudgetPeriods.class);

  /** Keys rolled over per sweep transaction; more wait for the next sweep. */
  static final int SWEEP_BATCH = 500;

  private static final String SELECT_DUE =
      """
      SELECT id FROM api_keys
       WHERE budget_period <> 'none' AND deleted_at IS NULL AND period_ends_at <= ?
       ORDER BY period_ends_at LIMIT ?
         FOR UPDATE SKIP LOCKED""";

  private static final String SELECT_LOCKED_DUE =
      """
      SELECT %s
        FROM api_keys
       WHERE id = ANY (?) AND budget_period <> 'none' AND period_ends_at <= ?"""
          .formatted(KeyRepository.COLUMNS);

  private static final String INSERT_ENDED =
      """
      INSERT INTO key_budget_periods (key_id, period, time_zone, started_at, ended_at, budget, used)
      VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (key_id, started_at) DO NOTHING""";

  private static final String ROLL_OVER =
      """
      UPDATE api_keys
         SET quota_used = 0, period_started_at = ?, period_ends_at = ?, updated_at = now(),
             version = version + 1
       WHERE id = ?
      RETURNING %s"""
          .formatted(KeyRepository.COLUMNS);

  private static final String SELECT_ENDED =
      """
      SELECT id, key_id, period, time_zone, started_at, ended_at, budget, used
        FROM key_budget_periods WHERE key_id = ? AND id < ? ORDER BY id DESC LIMIT ?""";

  /** One ended budget period of a key, as kept. */
  public record Ended(
      long id,
      long keyId,
      String period,
      String timeZone,
      Instant startedAt,
      Instant endedAt,
      BigDecimal budget,
      BigDecimal used) {}

  private final Transactions tx;
  private final Clock clock;
  private ScheduledExecutorService sweeper;

  public BudgetPeriods(Transactions tx, Clock clock) {
    this.tx = tx;
    this.clock = clock;
  }

  /**
   * Rolls over those of {@code lockedIds} (rows the caller's transaction holds locked) whose period
   * ended by {@code now}: the ended period's spend goes into key_budget_periods, quota_used back to
   * 0, the period bounds on to the period holding {@code now}. Returns the new rows; the caller
   * announces them (or charges them, which announces them).
   */
  public static List<KeyRecord> rollOver(Connection c, Collection<Long> lockedIds, Instant now)
      throws SQLException {
    if (lockedIds.isEmpty()) {
      return List.of();
    }
    List<KeyRecord> due = new ArrayList<>();
    Array ids = c.createArrayOf("bigint", lockedIds.toArray());
    try (PreparedStatement ps = c.prepareStatement(SELECT_LOCKED_DUE)) {
      ps.setArray(1, ids);
      KeyRepository.setInstant(ps, 2, now);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          due.add(KeyRepository.read(rs));
        }
      }
    } finally {
      ids.free();
    }
    List<KeyRecord> rolled = new ArrayList<>(due.size());
    for (KeyRecord r : due) {
      PeriodBudget p = r.policies().period();
      try (PreparedStatement ps = c.prepareStatement(INSERT_ENDED)) {
        ps.setLong(1, r.id());
        ps.setString(2, p.kind().wireName());
        ps.setString(3, p.zoneName());
        KeyRepository.setInstant(ps, 4, p.startedAt());
        KeyRepository.setInstant(ps, 5, p.endsAt());
        ps.setBigDecimal(6, r.quota());
        ps.setBigDecimal(7, r.quotaUsed());
        ps.executeUpdate();
      }
      PeriodBudget next = p.rolledTo(now);
      try (PreparedStatement ps = c.prepareStatement(ROLL_OVER)) {
        KeyRepository.setInstant(ps, 1, next.startedAt());
        KeyRepository.setInstant(ps, 2, next.endsAt());
        ps.setLong(3, r.id());
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          rolled.add(KeyRepository.read(rs));
        }
      }
    }
    return rolled;
  }

  /** One sweep: rolls over keys whose period ended, announcing each; returns the new rows. */
  public List<KeyRecord> sweep() {
    Instant now = clock.instant();
    return tx.inTransaction(
        c -> {
          List<Long> ids = new ArrayList<>();
          try (PreparedStatement ps = c.prepareStatement(SELECT_DUE)) {
            KeyRepository.setInstant(ps, 1, now);
            ps.setInt(2, SWEEP_BATCH);
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                ids.add(rs.getLong(1));
              }
            }
          }
          List<KeyRecord> rolled = rollOver(c, ids, now);
          for (KeyRecord r : rolled) {
            KeyRepository.notifyChange(c, r);
          }
          return rolled;
        });
  }

  /** Sweeps every {@code every} on its own thread, handing each rolled row to {@code apply}. */
  public synchronized void start(Duration every, Consumer<KeyRecord> apply) {
    sweeper = DaemonThreads.scheduler("budget-periods");
    sweeper.scheduleWithFixedDelay(
        () -> {
          try {
            sweep().forEach(apply);
          } catch (RuntimeException e) {
            // The database away: the next sweep tries again; Check meanwhile treats an ended
            // period as over in memory.
            log.debug("budget period sweep failed: {}", e.toString());
          }
        },
        every.toMillis(),
        every.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  @Override
  public synchronized void close() {
    if (sweeper != null) {
      sweeper.shutdownNow();
    }
  }

  /** The key's ended periods, newest first, with ids below {@code beforeId}. */
  public List<Ended> page(long keyId, long beforeId, int limit) {
    return tx.inTransaction(
        c -> {
          List<Ended> out = new ArrayList<>();
          try (PreparedStatement ps = c.prepareStatement(SELECT_ENDED)) {
            ps.setLong(1, keyId);
            ps.setLong(2, beforeId);
            ps.setInt(3, limit);
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.add(
                    new Ended(
                        rs.getLong(1),
                        rs.getLong(2),
                        rs.getString(3),
                        rs.getString(4),
                        KeyRepository.instant(rs, "started_at"),
                        KeyRepository.instant(rs, "ended_at"),
                        rs.getBigDecimal(7),
                        rs.getBigDecimal(8)));
              }
            }
          }
          return out;
        });
  }
}
