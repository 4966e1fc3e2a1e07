package io.quotaauthority.usage;

import io.quotaauthority.keys.KeyRecord;
import java.math.BigDecimal;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where committed usage lives (PostgreSQL, in production): the port {@link UsageBatcher} commits
 * through. {@code store.UsageRepository} implements it, as {@code store.KeyRepository} implements
 * {@code keys.KeyLookup}; the usage core never sees SQL.
 */
public interface UsageLedger {
  /**
   * Charges a group, or one piece of a group being split, in one transaction: reports for missing
   * or deleted keys are skipped, repeats of a report_id insert nothing (and are told apart from
   * conflicts: same report_id, another key_id or cost), a report that would carry its key's
   * quota_used past what NUMERIC(20,8) holds is skipped (in {@code overflowed}), and each key's
   * quota_used grows by exactly the sum of what was really inserted.
   *
   * @param reports at most one report per report_id, in the order they are charged
   * @throws Failure when the transaction failed; nothing of this group was charged
   */
  Committed commitGroup(List<UsageReport> reports);

  /**
   * {@link #commitGroup(List)}, where some reports were admitted on a hold against their instance's
   * budget lease ({@link BudgetLeases}): in the same transaction as its charge, each such report
   * that is really inserted draws min(cost, hold, what is left of the lease) off that lease and off
   * its key's leased total, so quota_used + leased never counts the charge twice. A repeat
   * (DUPLICATE), a refused report or one of a missing key draws nothing. Reports without a hold are
   * charged exactly as by {@link #commitGroup(List)}.
   *
   * @param holds report id → the hold it was admitted on; reports not named hold nothing
   */
  default Committed commitGroup(List<UsageReport> reports, Map<String, HeldBy> holds) {
    if (holds.isEmpty()) {
      return commitGroup(reports);
    }
    throw new UnsupportedOperationException("this ledger does not settle holds");
  }

  /**
   * {@link #commitGroup(List, Map)}, again, for a group an earlier call may have committed: each
   * token in {@code earlierAttempts} came from a {@link Failure#attempt()} of this group (the
   * connection was lost after COMMIT was sent, so nobody knows whether it applied). Reports the
   * insert skips because one of those attempts charged them are named in {@link
   * Committed#recovered()}: charged once, by this group, and so ACCEPTED, not DUPLICATE (the
   * reporter never heard the first answer). A ledger that never hands out attempt tokens ignores
   * them.
   */
  default Committed commitGroup(
      List<UsageReport> reports, Map<String, HeldBy> holds, Set<Long> earlierAttempts) {
    return commitGroup(reports, holds);
  }

  /**
   * The hold a report was admitted on: which instance's lease of the report's key, and how much;
   * for a reporter hold (README, "Holds for usage-stream reporters") also its id, which the ledger
   * keeps with the charge so that a hold is settled at most once (a second report naming it inserts
   * nothing: {@link Committed#holdSettled}).
   *
   * @param instanceId whose lease the charge draws on, or null to draw on none (a reporter hold
   *     past its expiry: its holder has released it or is about to)
   * @param holdId null for a metering hold
   */
  record HeldBy(String instanceId, BigDecimal amount, String holdId) {
    /** A metering hold: no id. */
    public HeldBy(String instanceId, BigDecimal amount) {
      this(instanceId, amount, null);
    }
  }

  /**
   * The reporter holds among {@code holdIds} that a committed charge settled, each with that
   * charge's cost: one query for all of them (a holder asks for its outstanding holds about once a
   * second, see {@link ReporterHolds}).
   */
  default Map<String, BigDecimal> settledHolds(java.util.Collection<String> holdIds) {
    throw new UnsupportedOperationException("this ledger does not settle reporter holds");
  }

  /**
   * The group's outcome: which reports were charged, the keys' rows after, which keys are live
   * (their quota_used before), which reports were refused because they would carry their key's
   * quota_used past the column's maximum, and what was charged before under the report ids the
   * insert skipped (report id → that charge; only its key id and cost are filled in), so a repeat
   * can be told apart from a conflict; and what each held report drew off its lease (report id →
   * amount; only reports charged on a hold, see {@link #commitGroup(List, Map)}); which of the
   * skipped report ids an earlier attempt of this same group charged ({@code recovered}, see {@link
   * #commitGroup(List, Map, Set)}; they are in {@code earlier} too); and which reports were not
   * charged because another charge had already settled the reporter hold they name.
   */
  record Committed(
      Set<String> inserted,
      Map<Long, BigDecimal> usedBefore,
      List<KeyRecord> charged,
      Set<String> overflowed,
      Map<String, UsageReport> earlier,
      Map<String, BigDecimal> leaseDrawn,
      Set<String> recovered,
      Set<String> holdSettled) {

    /** No reporter hold already settled. */
    public Committed(
        Set<String> inserted,
        Map<Long, BigDecimal> usedBefore,
        List<KeyRecord> charged,
        Set<String> overflowed,
        Map<String, UsageReport> earlier,
        Map<String, BigDecimal> leaseDrawn,
        Set<String> recovered) {
      this(inserted, usedBefore, charged, overflowed, earlier, leaseDrawn, recovered, Set.of());
    }

    /** Nothing recovered from an earlier attempt. */
    public Committed(
        Set<String> inserted,
        Map<Long, BigDecimal> usedBefore,
        List<KeyRecord> charged,
        Set<String> overflowed,
        Map<String, UsageReport> earlier,
        Map<String, BigDecimal> leaseDrawn) {
      this(inserted, usedBefore, charged, overflowed, earlier, leaseDrawn, Set.of());
    }

    /** A group without holds: nothing drawn off any lease. */
    public Committed(
        Set<String> inserted,
        Map<Long, BigDecimal> usedBefore,
        List<KeyRecord> charged,
        Set<String> overflowed,
        Map<String, UsageReport> earlier) {
      this(inserted, usedBefore, charged, overflowed, earlier, Map.of());
    }
  }

  /**
   * A commit that failed, classified by the ledger (which knows its database's error codes). The
   * message never holds the database's own words, which may quote a row.
   */
  final class Failure extends RuntimeException {
    /** What kind of failure, and so what the batcher does about it. */
    public enum Kind {
      /**
       * The ledger cannot take writes at all (unreachable, out of disk, memory or connections): no
       * report causes it, so splitting the group would only multiply the load. Wait, retry.
       */
      UNAVAILABLE,
      /** The data of a report was refused (it would be refused again): reject it. */
      BAD_DATA,
      /** A report breaks a ledger constraint (it would again): reject it. */
      CONSTRAINT,
      /**
       * Anything else (a timeout, a serialization failure, a bug): the report may be sent again.
       */
      INTERNAL
    }

    private final Kind kind;
    private final String code;
    private final Long attempt;

    /**
     * @param code the database's error code for the operator and the reporter ("SQLSTATE 22021"),
     *     or null when there is none
     */
    public Failure(Kind kind, String code, Throwable cause) {
      this(kind, code, cause, null);
    }

    /**
     * @param attempt a token naming this attempt, when it got as far as writing (so it may have
     *     committed if the failure came after COMMIT was sent), else null; handed back to {@link
     *     #commitGroup(List, Map, Set)} when the group is retried
     */
    public Failure(Kind kind, String code, Throwable cause, Long attempt) {
      super(kind + (code == null ? "" : " (" + code + ")"), cause);
      this.kind = kind;
      this.code = code;
      this.attempt = attempt;
    }

    /** The attempt's token, or null: it wrote nothing, so it cannot have charged anything. */
    public Long attempt() {
      return attempt;
    }

    public Kind kind() {
      return kind;
    }

    /** The database's error code, or null. */
    public String code() {
      return code;
    }
  }
}
