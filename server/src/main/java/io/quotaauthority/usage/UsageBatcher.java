package io.quotaauthority.usage;

import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.store.StoreUnavailableException;
import io.quotaauthority.store.UsageRepository;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Group commit for usage from every stream: one thread takes what is queued (up to
 * {@code maxGroup} reports, waiting at most {@code maxDelay} after the first) and charges it in one
 * transaction, then answers each report. A report counts in this instance's Check from the moment
 * it is queued ({@link KeyCache#addPending}) until its group is settled.
 *
 * <p>While the database is away a group is retried with backoff and nobody is answered: nothing is
 * acknowledged that is not committed, and the bounded queue pushes back on the streams.
 */
public final class UsageBatcher implements UsageSink, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(UsageBatcher.class);
  static final long MAX_BACKOFF_MILLIS = 2_000;

  /** The queue is full: the caller should hold the report and try again shortly. */
  public static final class Overloaded extends RuntimeException {
    Overloaded() {
      super("usage queue full", null, false, false);
    }
  }

  private record Pending(UsageReport report, CompletableFuture<UsageOutcome> outcome) {}

  private final UsageRepository repository;
  private final KeyCache cache;
  private final BlockingQueue<Pending> queue;
  private final int maxGroup;
  private final long maxDelayNanos;
  private final CommitRecorder recorder;
  private final Thread committer;
  private volatile boolean stopping;

  /** Told of each committed group (metrics). */
  public interface CommitRecorder {
    CommitRecorder NONE = (size, nanos, outcomes) -> {};

    void committed(int groupSize, long elapsedNanos, List<UsageOutcome> outcomes);
  }

  public UsageBatcher(UsageRepository repository, KeyCache cache, int maxGroup, Duration maxDelay,
      int queueCapacity, CommitRecorder recorder) {
    this.repository = repository;
    this.cache = cache;
    this.maxGroup = maxGroup;
    this.maxDelayNanos = maxDelay.toNanos();
    this.queue = new ArrayBlockingQueue<>(queueCapacity);
    this.recorder = recorder;
    this.committer = new Thread(this::run, "usage-committer");
    this.committer.setDaemon(true);
    this.committer.start();
  }

  /**
   * Queues a report. The stage fails at once with {@link Overloaded} when the queue is full (the
   * report was not taken), and with IllegalStateException after close began.
   */
  @Override
  public CompletionStage<UsageOutcome> submit(UsageReport report) {
    CompletableFuture<UsageOutcome> outcome = new CompletableFuture<>();
    if (stopping) {
      outcome.completeExceptionally(new IllegalStateException("shutting down"));
      return outcome;
    }
    // Counted before it is queued so that no Check can slip between the two.
    cache.addPending(report.keyId(), report.cost());
    if (!queue.offer(new Pending(report, outcome))) {
      cache.settlePending(report.keyId(), report.cost());
      outcome.completeExceptionally(new Overloaded());
    }
    return outcome;
  }

  /** Reports queued and not yet answered. */
  public int queued() {
    return queue.size();
  }

  private void run() {
    List<Pending> group = new ArrayList<>(maxGroup);
    while (true) {
      try {
        Pending first = queue.poll(100, TimeUnit.MILLISECONDS);
        if (first == null) {
          if (stopping) {
            return;
          }
          continue;
        }
        group.add(first);
        long deadline = System.nanoTime() + maxDelayNanos;
        while (group.size() < maxGroup) {
          // Take what is already there without waiting; wait only while the group is small.
          if (queue.drainTo(group, maxGroup - group.size()) == 0) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
              break;
            }
            Pending next = queue.poll(left, TimeUnit.NANOSECONDS);
            if (next == null) {
              break;
            }
            group.add(next);
          }
        }
        commitWithRetry(group);
      } catch (InterruptedException e) {
        if (stopping) {
          return;
        }
      } catch (RuntimeException e) {
        log.error("usage group failed; its reports are answered REJECTED and not charged", e);
        fail(group, "internal error; not charged, retry the report");
      } finally {
        group.clear();
      }
    }
  }

  private void commitWithRetry(List<Pending> group) throws InterruptedException {
    long backoff = 10;
    while (true) {
      try {
        commit(group);
        return;
      } catch (StoreUnavailableException e) {
        log.warn("database unavailable; holding {} usage reports and retrying in {} ms", group.size(), backoff);
        Thread.sleep(backoff);
        backoff = Math.min(MAX_BACKOFF_MILLIS, backoff * 2);
      }
    }
  }

  private void commit(List<Pending> group) {
    long start = System.nanoTime();
    // One report per report_id goes to the database; repeats inside the group follow its fate.
    Map<String, Pending> firsts = new LinkedHashMap<>();
    for (Pending p : group) {
      firsts.putIfAbsent(p.report().reportId(), p);
    }
    List<UsageReport> reports = new ArrayList<>(firsts.size());
    for (Pending p : firsts.values()) {
      reports.add(p.report());
    }
    UsageRepository.Committed committed = repository.commitGroup(reports);

    // The key rows after the charge go into the cache before the pending amounts leave it, so a
    // Check in between may count a report twice (refusing early) but never not at all.
    for (KeyRecord row : committed.charged()) {
      cache.refresh(row);
    }
    Map<Long, BigDecimal> running = new HashMap<>(committed.usedBefore());
    List<UsageOutcome> outcomes = new ArrayList<>(group.size());
    Map<String, UsageOutcome> byReport = new HashMap<>();
    for (Pending p : group) {
      UsageReport r = p.report();
      UsageOutcome outcome;
      UsageOutcome earlier = byReport.get(r.reportId());
      // What this report id stands for: the charge made before this group, or else the group's
      // first report of that id (the one the database saw). Another key or cost is a CONFLICT.
      UsageReport before = committed.earlier().get(r.reportId());
      String differs = UsageRepository.differingFields(
          before != null ? before : firsts.get(r.reportId()).report(), r);
      if (earlier != null && earlier.result() == UsageOutcome.Result.REJECTED) {
        outcome = earlier;
      } else if (earlier == null && !committed.usedBefore().containsKey(r.keyId())) {
        outcome = UsageOutcome.rejected("key_id: no key with id " + r.keyId());
      } else if (differs != null) {
        outcome = UsageOutcome.conflict("report_id already charged with a different " + differs);
      } else if (earlier != null) {
        outcome = new UsageOutcome(UsageOutcome.Result.DUPLICATE, "", running.get(r.keyId()));
      } else if (committed.inserted().contains(r.reportId())) {
        // The key's total right after this report, in the order the group was charged.
        BigDecimal after = running.merge(r.keyId(), r.cost(), BigDecimal::add);
        outcome = new UsageOutcome(UsageOutcome.Result.ACCEPTED, "", after);
      } else {
        outcome = new UsageOutcome(UsageOutcome.Result.DUPLICATE, "", running.get(r.keyId()));
      }
      byReport.putIfAbsent(r.reportId(), outcome);
      cache.settlePending(r.keyId(), r.cost());
      outcomes.add(outcome);
      p.outcome().complete(outcome);
    }
    recorder.committed(group.size(), System.nanoTime() - start, outcomes);
  }

  private void fail(List<Pending> group, String message) {
    for (Pending p : group) {
      cache.settlePending(p.report().keyId(), p.report().cost());
      p.outcome().complete(UsageOutcome.rejected(message));
    }
  }

  /**
   * Stops taking reports, commits what is queued (waiting for the database at most until the
   * deadline), then stops the committer. Reports still unanswered then were never acknowledged.
   */
  public void close(Duration timeout) {
    stopping = true;
    try {
      committer.join(timeout.toMillis());
      if (committer.isAlive()) {
        committer.interrupt();
        committer.join(1_000);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    List<Pending> left = new ArrayList<>();
    queue.drainTo(left);
    for (Pending p : left) {
      cache.settlePending(p.report().keyId(), p.report().cost());
      p.outcome().completeExceptionally(new IllegalStateException("shut down before commit"));
    }
  }

  @Override
  public void close() {
    close(Duration.ofSeconds(10));
  }
}
