package io.quotaauthority.usage;

import io.quotaauthority.threads.DaemonThreads;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Holds that Check takes for usage-stream reporters (README, "Holds for usage-stream reporters"): a
 * key with hold_usd_per_request is admitted only on a hold of that amount on this instance's budget
 * lease ({@link BudgetLeases}, so the same invariant bounds it), named by a signed id ({@link
 * HoldIds}) that the allow response carries upstream. A usage report naming the id settles the hold
 * on whichever instance receives it: its charge draws on this instance's lease in the charge's own
 * transaction, and the ledger keeps the id so that a hold is settled at most once.
 *
 * <p>This instance learns of a settlement at once when the report came to it ({@link
 * #settledHere}), and otherwise by asking the ledger for its outstanding holds about once a second
 * ({@link #maintain}): one statement per round, not per request. A hold not settled by its expiry
 * is then charged its amount (the key's hold_expiry = charge, the default: the request went
 * upstream and was never reported) or released.
 *
 * <p>Expiry is kept apart from settlement by {@link #SETTLE_MARGIN}: a report is charged on the
 * hold only while its expiry is more than the margin ahead, and the holder expires a hold only the
 * margin after its expiry, so a settlement drawing on the lease has committed before the holder
 * decides the hold was never settled (clocks within the margin, a commit not stalled longer).
 */
public final class ReporterHolds {
  private static final Logger log = LoggerFactory.getLogger(ReporterHolds.class);

  /** See the class comment: the gap between the last settlement on a hold and its expiry. */
  public static final Duration SETTLE_MARGIN = Duration.ofSeconds(10);

  /** What became of holds, for metrics. */
  public enum Event {
    /** Check admitted a request on a hold. */
    TAKEN,
    /** Check refused a request: too little of the key's budget left for the hold. */
    REFUSED,
    /** A usage report settled a hold of this instance. */
    SETTLED,
    /** A hold never settled was charged its amount at its expiry. */
    EXPIRED_CHARGED,
    /** A hold never settled was given back at its expiry. */
    EXPIRED_RELEASED,
    /** Taken, but Check's answer could not carry it (the caller gave up): given back at once. */
    ABANDONED
  }

  /** One hold this instance issued, until it is settled, expired or abandoned. */
  private record Issued(
      BudgetLeases.Hold hold, HoldIds.Parsed id, boolean chargeAtExpiry, Instant issuedAt) {}

  private final BudgetLeases leases;
  private final HoldIds ids;
  private final UsageLedger ledger;
  private final UsageSink sink;
  private final Duration ttl;
  private final Clock clock;
  private final java.util.function.Consumer<Event> recorder;
  private final ConcurrentHashMap<String, Issued> issued = new ConcurrentHashMap<>();

  /** Expiry charges submitted and not yet answered: a round never submits one twice at once. */
  private final ConcurrentHashMap<String, Boolean> charging = new ConcurrentHashMap<>();

  private ScheduledExecutorService rounds;

  /**
   * @param ttl how long a hold waits for its report before it expires
   * @param recorder told of every {@link Event}
   */
  public ReporterHolds(
      BudgetLeases leases,
      HoldIds ids,
      UsageLedger ledger,
      UsageSink sink,
      Duration ttl,
      Clock clock,
      java.util.function.Consumer<Event> recorder) {
    if (ttl.compareTo(SETTLE_MARGIN.multipliedBy(3)) < 0) {
      throw new IllegalArgumentException(
          "reporter hold ttl must be at least " + SETTLE_MARGIN.multipliedBy(3));
    }
    this.leases = leases;
    this.ids = ids;
    this.ledger = ledger;
    this.sink = sink;
    this.ttl = ttl;
    this.clock = clock;
    this.recorder = recorder;
  }

  /**
   * A hold of {@code amount} on the key's budget for one request: its id, or empty when too little
   * of the budget is left. Completes at once while this instance's lease covers it, else on a lease
   * asker's thread ({@link BudgetLeases#holdSoon}); fails with {@link
   * BudgetLeases.StoreUnavailable} when the lease store cannot be asked. A caller that cannot
   * deliver the id must {@link #abandon} it.
   */
  public CompletableFuture<Optional<String>> hold(
      long keyId, BigDecimal amount, boolean chargeAtExpiry) {
    return leases
        .holdSoon(keyId, amount)
        .thenApply(
            held -> {
              if (held.isEmpty()) {
                recorder.accept(Event.REFUSED);
                return Optional.empty();
              }
              Instant now = clock.instant();
              HoldIds.Parsed id = ids.issue(keyId, leases.instanceId(), amount, now.plus(ttl));
              issued.put(id.id(), new Issued(held.get(), id, chargeAtExpiry, now));
              recorder.accept(Event.TAKEN);
              return Optional.of(id.id());
            });
  }

  /** The id was never handed out (Check's caller gave up first): the hold goes back at once. */
  public void abandon(String holdId) {
    Issued i = issued.remove(holdId);
    if (i != null) {
      leases.release(i.hold(), BigDecimal.ZERO);
      recorder.accept(Event.ABANDONED);
    }
  }

  /**
   * What a usage report naming {@code holdId} for {@code keyId} settles: the lease its charge draws
   * on and at most how much, with the id the ledger keeps. A hold within {@link #SETTLE_MARGIN} of
   * its expiry, or past it, draws on no lease (its holder is about to decide it was never settled),
   * though the ledger still keeps the id, so it is settled once.
   *
   * @throws IllegalArgumentException naming hold_id when no instance of this cluster issued it, or
   *     it is another key's
   */
  public UsageLedger.HeldBy settlement(String holdId, long keyId) {
    HoldIds.Parsed p = ids.parse(holdId);
    if (p.keyId() != keyId) {
      throw new IllegalArgumentException("hold_id was issued for another key, not key_id " + keyId);
    }
    boolean inTime = clock.instant().plus(SETTLE_MARGIN).isBefore(p.expiresAt());
    return new UsageLedger.HeldBy(inTime ? p.instanceId() : null, p.amount(), holdId);
  }

  /**
   * A report naming {@code holdId} got its final outcome on this instance: a hold of this instance
   * that it charged is released with what the charge drew (a report refused or repeated leaves the
   * hold for the report's retry, or for the ledger's answer in the next round).
   */
  public void settledHere(String holdId, UsageOutcome outcome) {
    if (outcome.result() != UsageOutcome.Result.ACCEPTED) {
      return;
    }
    Issued i = issued.remove(holdId);
    if (i != null) {
      leases.release(i.hold(), outcome.leaseDrawn());
      recorder.accept(Event.SETTLED);
    }
  }

  /**
   * One round: the holds the ledger says were settled elsewhere are released (with the charge's
   * cost up to the hold as drawn: at most what the charge took off the lease, so this instance
   * never counts more lease than the store has), then holds past their expiry and the margin are
   * charged or released. A ledger failure is logged; the next round asks again.
   */
  public void maintain() {
    if (issued.isEmpty()) {
      return;
    }
    List<String> outstanding = new ArrayList<>(issued.keySet());
    Map<String, BigDecimal> settled;
    try {
      settled = ledger.settledHolds(outstanding);
    } catch (RuntimeException e) {
      log.warn("reporter holds: the ledger could not be asked ({}); next round", e.toString());
      return;
    }
    for (Map.Entry<String, BigDecimal> s : settled.entrySet()) {
      Issued i = issued.remove(s.getKey());
      if (i != null) {
        leases.release(i.hold(), s.getValue().min(i.hold().amount()));
        recorder.accept(Event.SETTLED);
      }
    }
    Instant due = clock.instant().minus(SETTLE_MARGIN);
    for (String id : outstanding) {
      Issued i = issued.get(id);
      if (i == null || settled.containsKey(id) || !i.id().expiresAt().isBefore(due)) {
        continue;
      }
      if (!i.chargeAtExpiry()) {
        if (issued.remove(id, i)) {
          leases.release(i.hold(), BigDecimal.ZERO);
          recorder.accept(Event.EXPIRED_RELEASED);
        }
      } else if (charging.putIfAbsent(id, Boolean.TRUE) == null) {
        chargeAtExpiry(i);
      }
    }
  }

  /**
   * Charges a hold never settled its amount, on its own lease, under a report id derived from the
   * hold's (a retry is a DUPLICATE) and with the hold id (a real report racing it settles the hold
   * at most once between them). Marked estimated in the ledger: no reporter counted it.
   */
  private void chargeAtExpiry(Issued i) {
    String holdId = i.id().id();
    UsageReport report =
        new UsageReport(
            HoldIds.expiryReportId(holdId),
            i.hold().keyId(),
            i.hold().amount(),
            "",
            "",
            0,
            0,
            0,
            0,
            i.issuedAt(),
            null,
            true);
    UsageLedger.HeldBy by = new UsageLedger.HeldBy(leases.instanceId(), i.hold().amount(), holdId);
    CompletableFuture<UsageOutcome> outcome;
    try {
      outcome = sink.submit(report, by).toCompletableFuture();
    } catch (RuntimeException e) {
      charging.remove(holdId);
      return;
    }
    outcome.whenComplete(
        (o, error) -> {
          charging.remove(holdId);
          if (error != null || (o.result() == UsageOutcome.Result.REJECTED && o.retryable())) {
            // Not taken, or refused for an internal reason: the next round tries again.
            return;
          }
          if (!issued.remove(holdId, i)) {
            return;
          }
          // ACCEPTED drew what it says. A DUPLICATE (an earlier attempt committed) or a CONFLICT
          // (a real report settled it meanwhile) drew at most the hold: counting all of it as drawn
          // keeps this instance's lease at or below the store's. A key deleted meanwhile drew
          // nothing.
          BigDecimal drawn =
              switch (o.result()) {
                case ACCEPTED -> o.leaseDrawn();
                case DUPLICATE, CONFLICT -> i.hold().amount();
                case REJECTED -> BigDecimal.ZERO;
              };
          leases.release(i.hold(), drawn);
          recorder.accept(Event.EXPIRED_CHARGED);
        });
  }

  /** What this instance knows remains of the key's budget for a new hold (a refusal's message). */
  public BigDecimal available(long keyId) {
    return leases.available(keyId);
  }

  /** Holds issued here and not yet settled, expired or abandoned. */
  public int outstanding() {
    return issued.size();
  }

  /**
   * Runs {@link #maintain} every {@code every} on a daemon thread of its own, until {@link #close}.
   */
  public synchronized ReporterHolds start(Duration every) {
    if (rounds == null) {
      rounds = DaemonThreads.scheduler("reporter-holds");
      long millis = Math.max(1, every.toMillis());
      rounds.scheduleWithFixedDelay(this::safeMaintain, millis, millis, TimeUnit.MILLISECONDS);
    }
    return this;
  }

  private void safeMaintain() {
    try {
      maintain();
    } catch (RuntimeException e) {
      // A scheduled task that throws is never run again.
      log.error("reporter holds round failed", e);
    }
  }

  /**
   * Stops the rounds. Holds still outstanding keep their part of the lease until it lapses at its
   * expiry (QUOTA_LEASE_TTL), since a report may still settle them on another instance.
   */
  public synchronized void close() {
    if (rounds != null) {
      rounds.shutdownNow();
      rounds = null;
    }
  }
}
