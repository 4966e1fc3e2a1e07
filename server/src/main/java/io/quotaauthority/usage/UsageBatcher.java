package io.quotaauthority.usage;

import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.PendingUsage;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Group commit for usage from every stream: a committer thread takes what is queued (up to {@code
 * maxGroup} reports, waiting at most {@code maxDelay} after the first) and charges it in one
 * transaction, then answers each report. A report counts in this instance's Check from the moment
 * it is queued ({@link PendingUsage#add}) until its group is settled.
 *
 * <p>With more than one committer, groups are committed side by side but gathered and answered in
 * turn: one committer at a time gathers (so a group fills as it would with one committer) and takes
 * a ticket; while its transaction runs, the next committer gathers the next group and sends it (its
 * insert runs beside the first's; its lock of the keys waits for the first at the first key both
 * charge, keys being locked in id order), and the group before is answered. So the JVM's work and
 * PostgreSQL's overlap and both cores work, while answers still go out in the order the reports
 * were taken (a stream's answers keep its order). Each report is in exactly one group.
 *
 * <p>While the database is away a group is retried with backoff and nobody is answered: nothing is
 * acknowledged that is not committed, and the bounded queue pushes back on the streams.
 *
 * <p>One bad report never voids the others: reports are validated before they are queued ({@link
 * UsageValidation#check}), a report that would carry its key's quota_used past what NUMERIC(20,8)
 * holds is refused inside the transaction, and a group that fails for any other reason is split
 * ({@link GroupBisection}) until only the reports that fail alone are REJECTED.
 */
public final class UsageBatcher implements UsageSink, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(UsageBatcher.class);
  static final long MAX_BACKOFF_MILLIS = 2_000;

  /**
   * @param held the hold the report was admitted on, or null
   */
  private record Pending(
      UsageReport report, UsageLedger.HeldBy held, CompletableFuture<UsageOutcome> outcome) {}

  private final UsageLedger ledger;
  private final KeyCache cache;
  private final PendingUsage pendingUsage;
  private final BlockingQueue<Pending> queue;
  private final int maxGroup;
  private final long maxDelayNanos;
  private final CommitRecorder recorder;
  private final List<Thread> committers;

  /** Held by the one committer gathering a group (and taking its ticket). */
  private final ReentrantLock gathering = new ReentrantLock();

  /** The next group's ticket (under {@link #gathering}). */
  private long nextTicket;

  /** The last ticket whose group was answered (guarded by {@link #turns}). */
  private long answeredTicket = -1;

  private final Object turns = new Object();
  private volatile boolean stopping;

  /** Set by {@link #flush()}: commit each group at once (read by the committer threads). */
  private volatile boolean flushing;

  /** How often a group being gathered checks for a flush. */
  private static final long FLUSH_CHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(5);

  /** Told of each committed group (metrics). */
  public interface CommitRecorder {
    CommitRecorder NONE = (size, nanos, outcomes) -> {};

    void committed(int groupSize, long elapsedNanos, List<UsageOutcome> outcomes);
  }

  public UsageBatcher(
      UsageLedger ledger,
      KeyCache cache,
      PendingUsage pendingUsage,
      int maxGroup,
      Duration maxDelay,
      int queueCapacity,
      CommitRecorder recorder) {
    this(ledger, cache, pendingUsage, maxGroup, maxDelay, queueCapacity, recorder, 1);
  }

  /**
   * @param committers groups committed at once (QUOTA_USAGE_COMMITTERS), each by its own thread
   */
  public UsageBatcher(
      UsageLedger ledger,
      KeyCache cache,
      PendingUsage pendingUsage,
      int maxGroup,
      Duration maxDelay,
      int queueCapacity,
      CommitRecorder recorder,
      int committers) {
    if (committers < 1) {
      throw new IllegalArgumentException("committers must be at least 1, got " + committers);
    }
    this.ledger = ledger;
    this.cache = cache;
    this.pendingUsage = pendingUsage;
    this.maxGroup = maxGroup;
    this.maxDelayNanos = maxDelay.toNanos();
    this.queue = new ArrayBlockingQueue<>(queueCapacity);
    this.recorder = recorder;
    List<Thread> threads = new ArrayList<>(committers);
    for (int i = 0; i < committers; i++) {
      Thread t =
          new Thread(this::run, committers == 1 ? "usage-committer" : "usage-committer-" + i);
      t.setDaemon(true);
      threads.add(t);
    }
    this.committers = List.copyOf(threads);
  }

  /**
   * Starts the committer threads (never the constructor's job: a start that fails later must not
   * leave a thread behind). Reports submitted before this wait in the queue.
   */
  public UsageBatcher start() {
    for (Thread t : committers) {
      t.start();
    }
    return this;
  }

  private boolean anyCommitterAlive() {
    for (Thread t : committers) {
      if (t.isAlive()) {
        return true;
      }
    }
    return false;
  }

  /**
   * Queues a report. The stage is REJECTED at once (naming the field) for a report that breaks
   * {@link UsageValidation#check}; it fails at once with {@link UsageSink.Overloaded} when the
   * queue is full (the report was not taken), and with {@link UsageSink.ShuttingDown} after close
   * began.
   */
  @Override
  public CompletionStage<UsageOutcome> submit(UsageReport report) {
    return submit(report, null);
  }

  @Override
  public CompletionStage<UsageOutcome> submit(UsageReport report, UsageLedger.HeldBy held) {
    CompletableFuture<UsageOutcome> outcome = new CompletableFuture<>();
    if (stopping) {
      outcome.completeExceptionally(new ShuttingDown("shutting down"));
      return outcome;
    }
    try {
      // The last gate before a group: a report PostgreSQL would refuse never joins one.
      UsageValidation.check(report);
    } catch (IllegalArgumentException e) {
      outcome.complete(UsageOutcome.rejected(e.getMessage()));
      return outcome;
    }
    // Counted before it is queued so that no Check can slip between the two.
    pendingUsage.add(report.keyId(), report.cost());
    if (!queue.offer(new Pending(report, held, outcome))) {
      pendingUsage.settle(report.keyId(), report.cost());
      outcome.completeExceptionally(new Overloaded());
    } else if (stopping && !anyCommitterAlive()) {
      // close() began after the check above and its last drain may have run before this offer:
      // nobody would take the report, so it is answered here (and settled) like the others.
      failQueued("shut down before commit");
    }
    return outcome;
  }

  /**
   * From now on every group is committed as soon as it is taken, without waiting for it to fill
   * (shutdown: what was queued is committed and answered while the streams are still open).
   */
  public void flush() {
    flushing = true;
  }

  /** Reports queued and not yet answered. */
  public int queued() {
    return queue.size();
  }

  /**
   * Waits until every group with an earlier ticket was answered. Not interruptible: each ticket's
   * holder finishes its turn whatever happens to it ({@link #run}'s finally), so the wait ends.
   */
  private void awaitTurn(long ticket) {
    boolean interrupted = false;
    synchronized (turns) {
      while (answeredTicket < ticket - 1) {
        try {
          turns.wait();
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  /** This ticket's group is answered: the next may be. Waits for its turn first. */
  private void finishTurn(long ticket) {
    awaitTurn(ticket);
    synchronized (turns) {
      answeredTicket = ticket;
      turns.notifyAll();
    }
  }

  /** Gathers one group, or returns -1 with nothing gathered (queue empty for 100 ms). */
  private long gather(List<Pending> group) throws InterruptedException {
    gathering.lockInterruptibly();
    try {
      Pending first = queue.poll(100, TimeUnit.MILLISECONDS);
      if (first == null) {
        return -1;
      }
      group.add(first);
      long deadline = System.nanoTime() + maxDelayNanos;
      while (group.size() < maxGroup) {
        // Take what is already there without waiting; wait only while the group is small.
        if (queue.drainTo(group, maxGroup - group.size()) == 0) {
          long left = deadline - System.nanoTime();
          if (left <= 0 || flushing) {
            break;
          }
          // In slices, so that a flush (shutdown) commits at once instead of after a long
          // QUOTA_USAGE_COMMIT_INTERVAL: the drain must not wait out the interval.
          Pending next = queue.poll(Math.min(left, FLUSH_CHECK_NANOS), TimeUnit.NANOSECONDS);
          if (next != null) {
            group.add(next);
          }
        }
      }
      return nextTicket++;
    } finally {
      gathering.unlock();
    }
  }

  private void run() {
    List<Pending> group = new ArrayList<>(maxGroup);
    while (true) {
      long ticket = -1;
      try {
        ticket = gather(group);
        if (ticket < 0) {
          if (stopping) {
            return;
          }
          continue;
        }
        commit(group, ticket);
      } catch (InterruptedException e) {
        if (ticket >= 0) {
          awaitTurn(ticket);
        }
        if (stopping) {
          // close() gave up waiting for the database: the group's reports were not acknowledged
          // (and, but for pieces of a split group, not committed). Answered so that no caller
          // waits forever; a resend under the same id is charged once (or is a DUPLICATE).
          for (Pending p : group) {
            if (!p.outcome().isDone()) {
              pendingUsage.settle(p.report().keyId(), p.report().cost());
              p.outcome()
                  .completeExceptionally(
                      new ShuttingDown("shut down while the database was unavailable"));
            }
          }
          return;
        }
      } catch (RuntimeException e) {
        // A bug outside the commit (the commit's own failures are split and answered per report):
        // reports not yet answered are refused as internal, so metering sends them again.
        log.error(
            "usage group failed; its unanswered reports are answered REJECTED and not charged", e);
        if (ticket >= 0) {
          awaitTurn(ticket);
        }
        fail(group, UsageOutcome.rejectedInternal("internal error; not charged, retry the report"));
      } finally {
        if (ticket >= 0) {
          finishTurn(ticket);
        }
        group.clear();
      }
    }
  }

  /**
   * Commits one piece of a group, waiting out with backoff a ledger that cannot take it at all
   * ({@link UsageLedger.Failure.Kind#UNAVAILABLE}: no report causes that, so splitting would only
   * multiply the load; nobody is answered meanwhile); any other failure is thrown, for {@link
   * GroupBisection} to split on.
   */
  private UsageLedger.Committed commitWhileUnavailable(
      List<UsageReport> piece, Map<String, UsageLedger.HeldBy> holds, Set<Long> attempts)
      throws InterruptedException {
    // Only the holds of this piece's reports: a split piece settles only what it charges.
    Map<String, UsageLedger.HeldBy> held = holds;
    if (!holds.isEmpty() && holds.size() > piece.size()) {
      held = new HashMap<>();
      for (UsageReport r : piece) {
        UsageLedger.HeldBy h = holds.get(r.reportId());
        if (h != null) {
          held.put(r.reportId(), h);
        }
      }
    }
    long backoff = 10;
    while (true) {
      try {
        return ledger.commitGroup(piece, held, attempts);
      } catch (UsageLedger.Failure e) {
        if (e.attempt() != null) {
          // It wrote, so it may have committed (the connection can die after COMMIT was sent):
          // the retry is told, and answers ACCEPTED for what this attempt charged.
          attempts.add(e.attempt());
        }
        if (e.kind() != UsageLedger.Failure.Kind.UNAVAILABLE) {
          throw e;
        }
        log.warn(
            "database unavailable ({}); holding {} usage reports and retrying in {} ms{}",
            e.code() == null ? "unreachable" : e.code(),
            piece.size(),
            backoff,
            e.attempt() == null
                ? ""
                : " (the lost attempt may have committed; the retry charges" + " nothing twice)");
        Thread.sleep(backoff);
        backoff = Math.min(MAX_BACKOFF_MILLIS, backoff * 2);
      }
    }
  }

  /**
   * Commits a group and answers it in its turn ({@code ticket}): the database work overlaps the
   * answering of the group before.
   */
  private void commit(List<Pending> group, long ticket) throws InterruptedException {
    long start = System.nanoTime();
    // One report per report_id goes to the database; repeats inside the group follow its fate.
    Map<String, Pending> firsts = new LinkedHashMap<>();
    for (Pending p : group) {
      firsts.putIfAbsent(p.report().reportId(), p);
    }
    List<UsageReport> reports = new ArrayList<>(firsts.size());
    Map<String, UsageLedger.HeldBy> holds = new HashMap<>();
    for (Pending p : firsts.values()) {
      reports.add(p.report());
      if (p.held() != null) {
        holds.put(p.report().reportId(), p.held());
      }
    }
    // Whole group in one transaction; split only if that fails, so one bad report fails alone.
    // Attempts whose outcome is unknown are remembered for the whole group: a piece retried after
    // a split still knows what the whole group's lost attempt charged.
    Set<Long> attempts = new HashSet<>();
    List<GroupBisection.Piece<UsageReport, UsageLedger.Committed>> pieces =
        GroupBisection.commit(reports, piece -> commitWhileUnavailable(piece, holds, attempts));
    if (pieces.size() > 1) {
      log.warn(
          "usage group of {} reports failed; split into {} pieces, {} report(s) refused alone",
          reports.size(),
          pieces.size(),
          pieces.stream().filter(GroupBisection.Piece::failed).count());
    }

    awaitTurn(ticket);
    // The key rows after the charge go into the cache before the pending amounts leave it, so a
    // Check in between may count a report twice (refusing early) but never not at all. Pieces
    // committed in order: a later piece's row is the newer one.
    for (GroupBisection.Piece<UsageReport, UsageLedger.Committed> piece : pieces) {
      if (!piece.failed()) {
        for (KeyRecord row : piece.committed().charged()) {
          cache.refresh(row);
        }
      }
    }
    Map<String, UsageOutcome> byReport = new HashMap<>();
    for (GroupBisection.Piece<UsageReport, UsageLedger.Committed> piece : pieces) {
      if (piece.failed()) {
        UsageReport r = piece.reports().get(0);
        UsageOutcome outcome = failureOutcome(piece.failure());
        // The report id and the database's own words (they hold no key material) for the operator;
        // the reporter gets only the reason.
        log.warn(
            "usage report {} for key {} refused alone: {}",
            r.reportId(),
            r.keyId(),
            outcome.message(),
            piece.failure());
        byReport.put(r.reportId(), outcome);
      } else {
        outcomes(piece.reports(), piece.committed(), byReport);
        for (Map.Entry<String, BigDecimal> d : piece.committed().leaseDrawn().entrySet()) {
          byReport.computeIfPresent(d.getKey(), (id, o) -> o.drawing(d.getValue()));
        }
        // A report the lost attempt charged drew on its lease then, by an amount that answer
        // carried; min(cost, hold) is what it drew unless the lease ran short.
        for (UsageReport r : piece.reports()) {
          UsageLedger.HeldBy h = holds.get(r.reportId());
          if (h != null && piece.committed().recovered().contains(r.reportId())) {
            byReport.computeIfPresent(r.reportId(), (id, o) -> o.drawing(r.cost().min(h.amount())));
          }
        }
      }
    }

    List<UsageOutcome> outcomes = new ArrayList<>(group.size());
    for (Pending p : group) {
      UsageReport r = p.report();
      UsageOutcome first = byReport.get(r.reportId());
      UsageOutcome outcome;
      Pending firstCopy = firsts.get(r.reportId());
      String differs = firstCopy == p ? null : firstCopy.report().differingFields(r);
      if (firstCopy == p || first.result() == UsageOutcome.Result.REJECTED) {
        outcome = first;
      } else if (differs != null) {
        // The group's first copy of this id is the one the database saw; another key or cost
        // under the same id is not a repeat of it.
        outcome = UsageOutcome.conflict("report_id already charged with a different " + differs);
      } else {
        // A repeat inside the group: charged (or not) once, with its first copy.
        outcome = new UsageOutcome(UsageOutcome.Result.DUPLICATE, "", first.quotaUsed());
      }
      outcomes.add(outcome);
      answer(p, outcome);
    }
    recorder.committed(group.size(), System.nanoTime() - start, outcomes);
  }

  /** What each report of one committed piece became, in the order the piece was charged. */
  private static void outcomes(
      List<UsageReport> piece, UsageLedger.Committed committed, Map<String, UsageOutcome> into) {
    Map<Long, BigDecimal> running = new HashMap<>(committed.usedBefore());
    for (UsageReport r : piece) {
      UsageOutcome outcome;
      if (!committed.usedBefore().containsKey(r.keyId())) {
        outcome = UsageOutcome.rejected("key_id: no key with id " + r.keyId());
      } else if (committed.overflowed().contains(r.reportId())) {
        outcome = UsageOutcome.rejected(OVERFLOW);
      } else if (committed.inserted().contains(r.reportId())) {
        // The key's total right after this report, in the order the piece was charged.
        BigDecimal after = running.merge(r.keyId(), r.cost(), BigDecimal::add);
        outcome = new UsageOutcome(UsageOutcome.Result.ACCEPTED, "", after);
      } else if (committed.recovered().contains(r.reportId())) {
        // Charged by this group's own attempt whose answer was lost: the reporter never heard it,
        // so this is its ACCEPTED (with the key's total as this attempt found it).
        outcome = new UsageOutcome(UsageOutcome.Result.ACCEPTED, "", running.get(r.keyId()));
      } else if (committed.holdSettled().contains(r.reportId())) {
        outcome = UsageOutcome.conflict(HOLD_SETTLED);
      } else {
        // Skipped by ON CONFLICT: charged before. A repeat only if it names the same key and cost.
        UsageReport before = committed.earlier().get(r.reportId());
        String differs = before == null ? null : before.differingFields(r);
        outcome =
            differs != null
                ? UsageOutcome.conflict("report_id already charged with a different " + differs)
                : new UsageOutcome(UsageOutcome.Result.DUPLICATE, "", running.get(r.keyId()));
      }
      into.put(r.reportId(), outcome);
    }
  }

  static final String HOLD_SETTLED =
      "hold_id: another charge already settled this hold (a report under another report_id, or"
          + " the hold's own charge at its expiry); not charged";

  static final String OVERFLOW =
      "cost_usd: this charge would carry the key's quota_used past "
          + Money.MAX.toPlainString()
          + " USD, the most NUMERIC(20,8) holds; not charged (reset the"
          + " key's quota usage first)";

  /**
   * The answer to a report the ledger refused alone. The reason is named by the ledger's code only
   * (the database's message may quote the row). Bad data and broken constraints are about the
   * report and would recur; anything else is internal, and the report may be sent again.
   */
  static UsageOutcome failureOutcome(RuntimeException e) {
    if (!(e instanceof UsageLedger.Failure f)) {
      return UsageOutcome.rejectedInternal("internal error; not charged, retry the report");
    }
    String code = f.code() == null ? "" : " (" + f.code() + ")";
    return switch (f.kind()) {
      case BAD_DATA ->
          UsageOutcome.rejected("the database refused this report's data" + code + "; not charged");
      case CONSTRAINT ->
          UsageOutcome.rejected("the report breaks a ledger constraint" + code + "; not charged");
      case UNAVAILABLE, INTERNAL ->
          UsageOutcome.rejectedInternal(
              "internal error" + code + "; not charged, retry the report");
    };
  }

  /** Settles and answers a report, once. */
  private void answer(Pending p, UsageOutcome outcome) {
    if (!p.outcome().isDone()) {
      pendingUsage.settle(p.report().keyId(), p.report().cost());
      p.outcome().complete(outcome);
    }
  }

  private void fail(List<Pending> group, UsageOutcome outcome) {
    for (Pending p : group) {
      answer(p, outcome);
    }
  }

  /**
   * Stops taking reports, commits what is queued (waiting for the database at most until the
   * deadline), then stops the committer. Reports still unanswered then were never acknowledged.
   */
  public void close(Duration timeout) {
    flushing = true;
    stopping = true;
    try {
      long deadline = System.nanoTime() + timeout.toNanos();
      for (Thread t : committers) {
        long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
        if (left > 0) {
          t.join(left);
        }
      }
      for (Thread t : committers) {
        if (t.isAlive()) {
          t.interrupt();
        }
      }
      for (Thread t : committers) {
        t.join(1_000);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    failQueued("shut down before commit");
  }

  /** Answers (and settles) every report still queued: nobody will commit them any more. */
  private void failQueued(String why) {
    List<Pending> left = new ArrayList<>();
    queue.drainTo(left);
    for (Pending p : left) {
      pendingUsage.settle(p.report().keyId(), p.report().cost());
      p.outcome().completeExceptionally(new ShuttingDown(why));
    }
  }

  @Override
  public void close() {
    close(Duration.ofSeconds(10));
  }
}
