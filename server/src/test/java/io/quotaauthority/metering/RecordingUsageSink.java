package io.quotaauthority.metering;

import io.quotaauthority.usage.UsageOutcome;
import io.quotaauthority.usage.UsageReport;
import io.quotaauthority.usage.UsageSink;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Stands in for the usage pipeline: records every submission and answers like it would, ACCEPTED
 * the first time a report id is seen and DUPLICATE after. Can be told to fail the next submissions
 * as if the database were unreachable, or to refuse them for an internal reason.
 */
final class RecordingUsageSink implements UsageSink {
  private final List<UsageReport> submitted = new ArrayList<>();
  private final List<UsageReport> charged = new ArrayList<>();
  private final Set<String> ids = new HashSet<>();
  private int failuresLeft;
  private int refusalsLeft;

  @Override
  public synchronized CompletionStage<UsageOutcome> submit(UsageReport report) {
    submitted.add(report);
    notifyAll();
    if (failuresLeft > 0) {
      failuresLeft--;
      return CompletableFuture.failedFuture(new IllegalStateException("database unreachable"));
    }
    if (refusalsLeft > 0) {
      refusalsLeft--;
      // As UsageBatcher answers a report the database failed on alone for an internal reason.
      return CompletableFuture.completedFuture(
          UsageOutcome.rejectedInternal(
              "internal error (SQLSTATE 57014); not charged, retry the report"));
    }
    if (!ids.add(report.reportId())) {
      return CompletableFuture.completedFuture(
          new UsageOutcome(UsageOutcome.Result.DUPLICATE, "", BigDecimal.ZERO));
    }
    charged.add(report);
    return CompletableFuture.completedFuture(
        new UsageOutcome(UsageOutcome.Result.ACCEPTED, "", report.cost()));
  }

  synchronized void failNext(int n) {
    failuresLeft = n;
  }

  /** The next n submissions are answered REJECTED for an internal reason (retryable). */
  synchronized void refuseNext(int n) {
    refusalsLeft = n;
  }

  /** Every submission, in order, retries and duplicates included. */
  synchronized List<UsageReport> submitted() {
    return List.copyOf(submitted);
  }

  /** The reports that were charged (first submission of each id). */
  synchronized List<UsageReport> charged() {
    return List.copyOf(charged);
  }

  /** Waits until at least n submissions arrived, or the timeout passed. */
  synchronized List<UsageReport> awaitSubmitted(int n, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (submitted.size() < n) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        break;
      }
      wait(Math.max(1, left / 1_000_000));
    }
    return List.copyOf(submitted);
  }
}
