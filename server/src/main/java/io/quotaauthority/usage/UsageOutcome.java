package io.quotaauthority.usage;

import java.math.BigDecimal;

/**
 * What became of one usage report.
 *
 * @param quotaUsed the key's committed total after the report; null when rejected or conflicting
 * @param message why, when rejected or conflicting; empty otherwise
 */
public record UsageOutcome(Result result, String message, BigDecimal quotaUsed) {

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

  public static UsageOutcome rejected(String message) {
    return new UsageOutcome(Result.REJECTED, message, null);
  }

  public static UsageOutcome conflict(String message) {
    return new UsageOutcome(Result.CONFLICT, message, null);
  }
}
