package io.quotaauthority.usage;

import java.util.concurrent.CompletionStage;

/**
 * Where charges go: the usage stream and Envoy metering both hand reports to one sink, so both are
 * charged exactly once through the same durable path.
 */
public interface UsageSink {
  /**
   * Queues a report for the next group commit. The stage completes once the report is committed
   * (ACCEPTED), found to be a repeat (DUPLICATE) or refused (REJECTED: for what it says, or, when
   * {@link UsageOutcome#retryable()}, for an internal reason); it completes exceptionally
   * only if the database could not be reached, in which case nothing was charged and the caller may
   * retry with the same report id.
   */
  CompletionStage<UsageOutcome> submit(UsageReport report);
}
