package io.quotaauthority.usage;

import java.math.BigDecimal;

/**
 * What became of one usage report.
 *
 * @param quotaUsed the key's committed total after the report; null when rejected or conflicting
 * @param message why, when rejected or conflicting; empty otherwise
 * @param retryable a REJECTED report refused for an internal reason (the database failed on it for
 *     a reason other than its content): sending it again with the same report id may charge it.
 *     False for every other outcome, and for a rejection that would be repeated.
 * @param leaseDrawn what the charge drew off its instance's budget lease, for a report submitted on
 *     a hold ({@link UsageSink#submit(UsageReport, UsageLedger.HeldBy)}): at most the hold, zero
 *     for every report that was not inserted and for reports without a hold. The holder passes it
 *     to {@link BudgetLeases#release}.
 */
public record UsageOutcome(
    Result result, String message, BigDecimal quotaUsed, boolean retryable, BigDecimal leaseDrawn) {

  public enum Result {
    /** Charged and committed. */
    ACCEPTED,
    /** This report id was charged before; nothing changed. */
    DUPLICATE,
    /** Not charged; the message says why. */
    REJECTED,
    /**
     * This report id was charged before with another key id or cost; nothing changed. The message
     * names the differing field(s).
     */
    CONFLICT
  }

  public UsageOutcome {
    leaseDrawn = leaseDrawn == null ? BigDecimal.ZERO : leaseDrawn;
  }

  public UsageOutcome(Result result, String message, BigDecimal quotaUsed, boolean retryable) {
    this(result, message, quotaUsed, retryable, BigDecimal.ZERO);
  }

  public UsageOutcome(Result result, String message, BigDecimal quotaUsed) {
    this(result, message, quotaUsed, false);
  }

  /** This outcome, with what its charge drew off its hold's lease. */
  UsageOutcome drawing(BigDecimal drawn) {
    return new UsageOutcome(result, message, quotaUsed, retryable, drawn);
  }

  /** Refused for what the report says: sending it again is refused again. */
  public static UsageOutcome rejected(String message) {
    return new UsageOutcome(Result.REJECTED, message, null, false);
  }

  /** Refused for an internal reason: not charged, and the same report may be sent again. */
  public static UsageOutcome rejectedInternal(String message) {
    return new UsageOutcome(Result.REJECTED, message, null, true);
  }

  public static UsageOutcome conflict(String message) {
    return new UsageOutcome(Result.CONFLICT, message, null, false);
  }
}
