package io.quotaauthority.usage;

import java.math.BigDecimal;

/**
 * What became of one usage report.
 *
 * @param quotaUsed the key's committed total after the report; null when rejected
 * @param message why, when rejected; empty otherwise
 */
public record UsageOutcome(Result result, String message, BigDecimal quotaUsed) {

  public enum Result {
    /** Charged and committed. */
    ACCEPTED,
    /** This report id was charged before; nothing changed. */
    DUPLICATE,
    /** Not charged; the message says why. */
    REJECTED
  }

  public static UsageOutcome rejected(String message) {
    return new UsageOutcome(Result.REJECTED, message, null);
  }
}
