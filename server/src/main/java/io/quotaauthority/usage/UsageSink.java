package io.quotaauthority.usage;

import java.util.concurrent.CompletionStage;

/**
 * Where charges go: the usage stream and Envoy metering both hand reports to one sink, so both are
 * charged exactly once through the same durable path.
 */
public interface UsageSink {
  /**
   * Queues a report for the next group commit. The stage completes once the report is committed
   * (ACCEPTED), found to be a repeat (DUPLICATE) or a reuse of its id (CONFLICT), or refused
   * (REJECTED: for what it says, or, when {@link UsageOutcome#retryable()}, for an internal
   * reason). While the database cannot be reached the sink keeps trying; the caller just waits.
   *
   * <p>It completes exceptionally in two cases only; in both the report was not acknowledged and
   * may be offered again with the same id (a report that was charged after all is then a DUPLICATE,
   * never a second charge):
   *
   * <ul>
   *   <li>{@link Overloaded}, at once: the queue is full and the report was not taken. Hold it and
   *       offer it again shortly ({@link HeldReports}).
   *   <li>{@link ShuttingDown}: the sink closed before the report was committed (or, when the
   *       database was unavailable until the shutdown deadline, before its commit was confirmed).
   *       Do not acknowledge it; the reporter resends it to another instance.
   * </ul>
   */
  CompletionStage<UsageOutcome> submit(UsageReport report);

  /**
   * {@link #submit(UsageReport)} for a report admitted on a hold against this instance's budget
   * lease: its charge draws off that lease in the same transaction ({@link
   * UsageLedger#commitGroup(java.util.List, java.util.Map)}), and the outcome says how much in
   * {@link UsageOutcome#leaseDrawn}. The hold stays the caller's: it releases it once the outcome
   * is final (also when the stage fails: with zero).
   *
   * @param held the hold, or null for none
   */
  default CompletionStage<UsageOutcome> submit(UsageReport report, UsageLedger.HeldBy held) {
    if (held != null) {
      throw new UnsupportedOperationException("this sink does not settle holds");
    }
    return submit(report);
  }

  /** The queue is full: the report was not taken; offer it again shortly. */
  final class Overloaded extends RuntimeException {
    public Overloaded() {
      // No stack trace: this is flow control, raised at full speed under load.
      super("usage queue full", null, false, false);
    }
  }

  /** The sink is closing: the report was not committed. */
  final class ShuttingDown extends RuntimeException {
    public ShuttingDown(String message) {
      super(message, null, false, false);
    }
  }

  /** Whether a submit failed because the queue was full (the failure may arrive wrapped). */
  static boolean overloaded(Throwable error) {
    return error instanceof Overloaded || (error != null && error.getCause() instanceof Overloaded);
  }
}
