package io.quotaauthority.usage;

import io.quotaauthority.keys.Money;
import io.quotaauthority.threads.DaemonThreads;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One instance's holds on keys' budgets, admitted at memory speed against slices of each key's
 * remaining budget leased from the {@link LeaseStore} (README, "Budget leases").
 *
 * <p><b>Invariant</b>: for every key at every instant, quota_used + Σ leases ≤ quota whenever a
 * lease was last granted, and each instance's Σ holds ≤ its lease; so the costs of admitted
 * requests whose actual cost is within their estimate never exceed the quota.
 *
 * <p>Slice policy: a hold that does not fit what is free of this instance's lease (lease − holds)
 * asks for {@code max(need, min(maxSlice, remaining / (2 × instancesHint)))}, where need is what
 * the hold lacks and remaining the key's budget not used nor leased as last seen (before it is
 * seen, just the need, so the first instance to ask never takes a small key's whole budget): far
 * from the edge one round trip covers many holds; near it the slice shrinks to exactly the hold's
 * need, one exact hold per request, so the bound is exact at the edge. Leases expire after {@code
 * ttl} unless renewed ({@link #maintain}); a lease this instance cannot renew in time is no longer
 * admitted on (it may have been reaped), and one idle for {@code idleAfter} with no holds is given
 * back.
 *
 * <p>Call it only for limited keys (quota > 0): an unlimited key gets an unbacked hold after a
 * round trip. Release a hold once the request is settled: after its charge committed (with what the
 * charge drew off the lease, {@link UsageLedger.Committed#leaseDrawn}), or with zero when it ended
 * without usage. Thread-safe; one key's holds are admitted one at a time.
 */
public final class BudgetLeases {
  private static final Logger log = LoggerFactory.getLogger(BudgetLeases.class);

  /**
   * Leases expire at or before now − this when reaped: tolerates this much skew between the
   * reaper's clock and the database's, which sets expires_at.
   */
  static final Duration REAP_GRACE = Duration.ofSeconds(5);

  /** How many times one hold asks the store for a slice (the remaining may move in between). */
  private static final int MAX_ASKS = 3;

  /** Told of every lease round trip's outcome (metrics); called outside the store's transaction. */
  public interface Recorder {
    Recorder NONE =
        new Recorder() {
          @Override
          public void taken(BigDecimal slice) {}

          @Override
          public void refused() {}

          @Override
          public void returned(BigDecimal amount) {}

          @Override
          public void reaped(int leases) {}
        };

    /** A slice was leased. */
    void taken(BigDecimal slice);

    /** An ask found too little left (the hold was then refused or asked again, smaller). */
    void refused();

    /** Leased budget went back to its key from this instance (idle, shutdown). */
    void returned(BigDecimal amount);

    /** Expired leases (of instances that died or lost the database) were given back. */
    void reaped(int leases);
  }

  /** A hold admitted on a key's budget: released exactly once. */
  public record Hold(long keyId, BigDecimal amount, boolean backed) {}

  /** One key's lease on this instance: guarded by its own monitor. */
  private static final class Lease {
    BigDecimal amount = BigDecimal.ZERO;
    BigDecimal held = BigDecimal.ZERO;

    /** The key's remaining (not used, not leased) at the last answer; null before the first. */
    BigDecimal remaining;

    /** When the store gave {@link #remaining} (our clock, after the answer). */
    Instant remainingSeen = Instant.MIN;

    /** The number of this lease's last grant ({@link #grants}); 0 before the first. */
    long grant;

    /** Before this instant the lease is certainly not expired (our clock, before the ask). */
    Instant validUntil = Instant.MIN;

    Instant lastUsed;

    Lease(Instant now) {
      lastUsed = now;
    }

    /** Given back and removed from the map: a holder that still has it must look again. */
    boolean retired;
  }

  private final LeaseStore store;
  private final String instanceId;
  private final BigDecimal maxSlice;
  private final int instancesHint;
  private final Duration ttl;
  private final Duration idleAfter;
  private final Clock clock;
  private final Recorder recorder;

  /** Decimals of what is leased: 8 for USD, 0 for concurrency slots. */
  private final int scale;

  /**
   * Whether a release gives the free part of the lease back at once while the key's remaining is
   * scarce (below instancesHint units as last seen): for concurrency slots, where a slot another
   * instance keeps idle would refuse a request on a key below its cap.
   */
  private final boolean returnWhenScarce;

  private final ConcurrentHashMap<Long, Lease> leases = new ConcurrentHashMap<>();
  private volatile Instant lastRenew = Instant.MIN;

  /** Grants made by this instance, numbered in order (see {@link #maintain}). */
  private final AtomicLong grants = new AtomicLong();

  /**
   * After a failed ask, asks fail at once until then: with the database away, a hold beyond the
   * lease is refused in microseconds instead of each waiting out a connection timeout on the
   * metering executor.
   */
  private volatile Instant storeDownUntil = Instant.MIN;

  /**
   * How long the store's answer that less than a hold's need remains refuses such holds without
   * asking again.
   */
  static final Duration REMAINING_FRESH = Duration.ofMillis(100);

  /** How long a failed ask keeps later asks from trying the store again. */
  static final Duration STORE_BACKOFF = Duration.ofSeconds(1);

  /** The lease store could not be asked (recently failed, or failed now): no hold was taken. */
  public static final class StoreUnavailable extends RuntimeException {
    StoreUnavailable(String message, Throwable cause) {
      super(message, cause, false, false);
    }
  }

  private ScheduledExecutorService maintainer;

  /**
   * Where holds that need a round trip to the store wait for it ({@link #holdSoon}), so that the
   * caller's thread (metering's CPU-sized executor) never does: a few threads, a bounded queue.
   * Null before {@link #start} and after {@link #close}: then such holds are asked inline.
   */
  private volatile ThreadPoolExecutor askers;

  /** Threads that ask the store for slices at once (each holds at most one pool connection). */
  static final int ASKERS = 4;

  /** Holds waiting for an asker; one more is refused at once as the store being unavailable. */
  static final int ASK_QUEUE = 1024;

  /**
   * @param instanceId this instance's name in key_leases, unique among live instances
   * @param maxSlice the most one ask leases
   * @param instancesHint about how many instances share a key: a slice is at most remaining / (2 ×
   *     this), so the others still find budget to lease
   * @param ttl how long a lease lives unless renewed: what a crash costs (leased budget idle)
   * @param idleAfter a lease with no holds for this long is given back
   */
  public BudgetLeases(
      LeaseStore store,
      String instanceId,
      BigDecimal maxSlice,
      int instancesHint,
      Duration ttl,
      Duration idleAfter,
      Clock clock) {
    this(store, instanceId, maxSlice, instancesHint, ttl, idleAfter, clock, Recorder.NONE);
  }

  /** As above, telling {@code recorder} of each lease taken, refused, returned and reaped. */
  public BudgetLeases(
      LeaseStore store,
      String instanceId,
      BigDecimal maxSlice,
      int instancesHint,
      Duration ttl,
      Duration idleAfter,
      Clock clock,
      Recorder recorder) {
    this(
        store,
        instanceId,
        maxSlice,
        instancesHint,
        ttl,
        idleAfter,
        clock,
        recorder,
        Money.SCALE,
        false);
  }

  /**
   * Leases of concurrency slots (whole numbers; one hold per request in flight), given back at
   * release while the key's free slots are scarce, so a cap is not refused while slots sit idle on
   * another instance.
   */
  public static BudgetLeases slots(
      LeaseStore store,
      String instanceId,
      int maxSlice,
      int instancesHint,
      Duration ttl,
      Duration idleAfter,
      Clock clock,
      Recorder recorder) {
    return new BudgetLeases(
        store,
        instanceId,
        BigDecimal.valueOf(maxSlice),
        instancesHint,
        ttl,
        idleAfter,
        clock,
        recorder,
        0,
        true);
  }

  private BudgetLeases(
      LeaseStore store,
      String instanceId,
      BigDecimal maxSlice,
      int instancesHint,
      Duration ttl,
      Duration idleAfter,
      Clock clock,
      Recorder recorder,
      int scale,
      boolean returnWhenScarce) {
    this.recorder = recorder;
    this.scale = scale;
    this.returnWhenScarce = returnWhenScarce;
    if (maxSlice.signum() <= 0 || instancesHint < 1 || ttl.isNegative() || ttl.isZero()) {
      throw new IllegalArgumentException("maxSlice, instancesHint and ttl must be positive");
    }
    this.store = store;
    this.instanceId = instanceId;
    this.maxSlice = maxSlice;
    this.instancesHint = instancesHint;
    this.ttl = ttl;
    this.idleAfter = idleAfter;
    this.clock = clock;
  }

  /**
   * A hold of {@code estimate} on the key's budget, or empty when the key's budget (not used, not
   * leased elsewhere) cannot cover it. Costs no round trip while this instance's lease covers it.
   *
   * @throws StoreUnavailable when the hold needs more lease and the store cannot be asked (then for
   *     {@link #STORE_BACKOFF} after each failure every such hold fails at once)
   */
  public Optional<Hold> tryHold(long keyId, BigDecimal estimate) {
    return hold(keyId, estimate, true);
  }

  /**
   * {@link #tryHold}; with {@code mayAsk} false, null instead of a round trip to the store (the
   * caller then asks on an asker thread).
   */
  private Optional<Hold> hold(long keyId, BigDecimal estimate, boolean mayAsk) {
    if (estimate.signum() < 0) {
      throw new IllegalArgumentException("estimate must not be negative");
    }
    while (true) {
      Lease l = leases.computeIfAbsent(keyId, id -> new Lease(clock.instant()));
      synchronized (l) {
        if (l.retired) {
          // Given back and dropped from the map between our lookup and our lock: take the new one.
          continue;
        }
        return hold(keyId, estimate, l, mayAsk);
      }
    }
  }

  /**
   * {@link #tryHold}, without ever blocking the caller on the store: a hold this instance's lease
   * covers completes at once (the common case, far from the key's limit); one that needs a slice
   * completes on an asker thread once the store answered, or fails with {@link StoreUnavailable}
   * when the askers' queue is full. The caller must not hold a lock the completion needs.
   */
  public CompletableFuture<Optional<Hold>> holdSoon(long keyId, BigDecimal estimate) {
    Optional<Hold> now;
    try {
      // Held on the lease, or refused on the store's fresh answer or its recent failure, at once.
      now = hold(keyId, estimate, false);
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
    if (now != null) {
      return CompletableFuture.completedFuture(now);
    }
    ThreadPoolExecutor ask = askers;
    if (ask == null) {
      try {
        return CompletableFuture.completedFuture(tryHold(keyId, estimate));
      } catch (RuntimeException e) {
        return CompletableFuture.failedFuture(e);
      }
    }
    try {
      return CompletableFuture.supplyAsync(() -> tryHold(keyId, estimate), ask);
    } catch (RejectedExecutionException e) {
      return CompletableFuture.failedFuture(
          new StoreUnavailable("too many holds waiting for the lease store", e));
    }
  }

  /**
   * {@link #tryHold} on the key's lease, whose monitor the caller holds; null where it would ask
   * the store and {@code mayAsk} is false.
   */
  private Optional<Hold> hold(long keyId, BigDecimal estimate, Lease l, boolean mayAsk) {
    Instant now = clock.instant();
    l.lastUsed = now;
    if (!now.isBefore(l.validUntil)) {
      // Possibly reaped already: nothing of it may be admitted on until the store says so again.
      l.amount = BigDecimal.ZERO;
    }
    for (int ask = 0; ; ask++) {
      BigDecimal free = l.amount.subtract(l.held);
      if (free.compareTo(estimate) >= 0) {
        l.held = l.held.add(estimate);
        return Optional.of(new Hold(keyId, estimate, true));
      }
      if (ask == MAX_ASKS) {
        return Optional.empty();
      }
      // Holds already out over a lease that lapsed count too: they may still be charged against it.
      BigDecimal need = estimate.subtract(free);
      Instant asked = clock.instant();
      if (l.remaining != null
          && l.remaining.compareTo(need) < 0
          && asked.isBefore(l.remainingSeen.plus(REMAINING_FRESH))) {
        // The store said a moment ago that less than the need is left: refused without asking
        // again, so a key at its edge does not cost a round trip (on the metering lane) per
        // request. The remaining grows only when a lease goes back (idle, reaped) or the quota
        // is raised; a hold refused meanwhile is refused at most this long too early.
        return Optional.empty();
      }
      if (asked.isBefore(storeDownUntil)) {
        throw new StoreUnavailable("lease store unavailable (recent failure)", null);
      }
      if (!mayAsk) {
        return null;
      }
      BigDecimal slice = slice(need, l.remaining);
      LeaseStore.Grant g;
      try {
        g = store.take(keyId, instanceId, slice, ttl);
      } catch (RuntimeException e) {
        storeDownUntil = clock.instant().plus(STORE_BACKOFF);
        throw new StoreUnavailable("lease store unavailable: " + e.getClass().getSimpleName(), e);
      }
      storeDownUntil = Instant.MIN;
      l.remaining = g.remaining();
      l.remainingSeen = clock.instant();
      switch (g.outcome()) {
        case GRANTED -> {
          recorder.taken(slice);
          // Numbered, so a renewal that read the store before this grant does not undo it.
          l.grant = grants.incrementAndGet();
          // With no hold out, the store's amount is exact (it heals what we lost count of). With
          // holds out, a charge may have drawn on the store's lease before its hold is released
          // here: taking the store's amount would subtract that draw twice, so add the slice.
          l.amount = l.held.signum() == 0 ? g.lease() : l.amount.add(slice);
          // Our clock before the ask: the store set its expiry later than that.
          l.validUntil = asked.plus(ttl);
        }
        case UNLIMITED -> {
          return Optional.of(new Hold(keyId, estimate, false));
        }
        case NO_KEY -> {
          return Optional.empty();
        }
        case TOO_LITTLE -> {
          recorder.refused();
          if (g.remaining().compareTo(need) < 0) {
            return Optional.empty();
          }
          // The remaining moved since we last saw it (a guess too big): ask again, sized to it.
        }
      }
    }
  }

  /**
   * What to ask for when a hold lacks {@code need}: max(need, min(maxSlice, remaining / (2 ×
   * instancesHint))), to the cent's hundred-millionth, rounded down; just the need before the key's
   * remaining is known.
   */
  BigDecimal slice(BigDecimal need, BigDecimal remaining) {
    if (remaining == null) {
      // Not maxSlice: with a key whose remaining is maxSlice or less, the first instance to ask
      // would lease all of it and the others refuse every request (429, "0 USD remains") until it
      // goes idle. The need is at most any share, and the answer says the remaining for the next.
      return need.max(BigDecimal.ONE.movePointLeft(scale));
    }
    BigDecimal share =
        remaining.divide(BigDecimal.valueOf(2L * instancesHint), scale, RoundingMode.DOWN);
    return need.max(maxSlice.min(share)).max(BigDecimal.ONE.movePointLeft(scale));
  }

  /**
   * Settles a hold: its amount leaves this instance's holds, and what its charge drew off the lease
   * (the ledger's {@link UsageLedger.Committed#leaseDrawn} for its report, at most the hold; zero
   * when the request ended without usage) leaves the lease, as it left the store's in the charge's
   * transaction. The rest of the hold is free for the next hold. Call once per hold.
   */
  public void release(Hold hold, BigDecimal drawn) {
    if (!hold.backed()) {
      return;
    }
    Lease l = leases.get(hold.keyId());
    if (l == null) {
      return;
    }
    synchronized (l) {
      l.held = l.held.subtract(hold.amount()).max(BigDecimal.ZERO);
      l.amount = l.amount.subtract(drawn.min(hold.amount())).max(BigDecimal.ZERO);
      l.lastUsed = clock.instant();
      if (returnWhenScarce
          && l.remaining != null
          && l.remaining.compareTo(BigDecimal.valueOf(instancesHint)) < 0) {
        giveBackFree(hold.keyId(), l);
      }
    }
  }

  /** Gives what this instance's lease has beyond its holds back to the key, now. */
  private void giveBackFree(long keyId, Lease l) {
    BigDecimal free = l.amount.subtract(l.held);
    if (free.signum() <= 0) {
      return;
    }
    try {
      BigDecimal back = store.giveBack(keyId, instanceId, free);
      l.amount = l.amount.subtract(back).max(BigDecimal.ZERO);
      if (l.remaining != null) {
        // What went back is the key's again: a hold here may ask for it at once, rather than be
        // refused on the store's last answer (REMAINING_FRESH) that did not count it yet.
        l.remaining = l.remaining.add(back);
      }
      if (back.signum() > 0) {
        recorder.returned(back);
      }
    } catch (RuntimeException e) {
      // Kept, then: it goes back when idle, or lapses at its expiry.
      log.debug("lease of key {} not given back: {}", keyId, e.toString());
    }
  }

  /**
   * The background round, every ttl / 4 or so: renews this instance's leases once a third of the
   * ttl has passed (a lease the store no longer has, reaped while this instance was away, drops to
   * zero and is not admitted on again), gives back leases idle with no holds, and reaps every
   * instance's expired leases. A store failure is logged; the leases then lapse by themselves at
   * their validity.
   *
   * <p>A lease the store still has keeps the amount counted here: the stored amount, read before
   * this instance applies it, may lack a slice granted meanwhile, and lacks the draws of charges
   * whose holds are not released yet (each release takes its draw off here): shrinking to it
   * counted those twice and left that budget unusable until the lease went idle.
   */
  public void maintain() {
    Instant now = clock.instant();
    try {
      if (!leases.isEmpty() && !now.isBefore(lastRenew.plus(ttl.dividedBy(3)))) {
        // Grants numbered after this were made after the renewal could read the store.
        long grantsSeen = grants.get();
        Map<Long, BigDecimal> stored = store.renew(instanceId, ttl);
        lastRenew = now;
        for (Map.Entry<Long, Lease> e : leases.entrySet()) {
          Lease l = e.getValue();
          synchronized (l) {
            BigDecimal there = stored.get(e.getKey());
            if (there == null) {
              // Gone from the store (reaped): nothing of it is admitted on, unless a grant made
              // since the renewal read the store (a new row) is what this lease now counts.
              if (l.grant <= grantsSeen) {
                l.amount = BigDecimal.ZERO;
              }
            } else if (there.signum() > 0) {
              l.validUntil = now.plus(ttl);
            }
          }
        }
      }
      for (Map.Entry<Long, Lease> e : leases.entrySet()) {
        Lease l = e.getValue();
        synchronized (l) {
          if (l.held.signum() == 0 && !now.isBefore(l.lastUsed.plus(idleAfter))) {
            giveBackAll(e.getKey(), l);
            l.retired = true;
            leases.remove(e.getKey(), l);
          }
        }
      }
      int reaped = store.reapExpired(now.minus(REAP_GRACE));
      if (reaped > 0) {
        recorder.reaped(reaped);
      }
    } catch (RuntimeException e) {
      log.warn("budget lease maintenance failed; leases lapse at their expiry", e);
    }
  }

  /**
   * Runs {@link #maintain} every {@code every} on a daemon thread of its own (never the
   * constructor's job, as with UsageBatcher). Stopped by {@link #close}.
   */
  public synchronized BudgetLeases start(Duration every) {
    if (maintainer == null) {
      maintainer = DaemonThreads.scheduler("budget-leases");
      long millis = Math.max(1, every.toMillis());
      maintainer.scheduleWithFixedDelay(this::maintain, millis, millis, TimeUnit.MILLISECONDS);
      askers =
          new ThreadPoolExecutor(
              ASKERS,
              ASKERS,
              30,
              TimeUnit.SECONDS,
              new ArrayBlockingQueue<>(ASK_QUEUE),
              DaemonThreads.numbered("lease-asker"));
      askers.allowCoreThreadTimeOut(true);
    }
    return this;
  }

  /** Stops the background round and gives back every lease with no holds. */
  public synchronized void close() {
    if (maintainer != null) {
      maintainer.shutdownNow();
      maintainer = null;
    }
    ThreadPoolExecutor ask = askers;
    askers = null;
    if (ask != null) {
      // A hold still waiting is answered by the store or fails: either way its request ends.
      ask.shutdown();
      try {
        ask.awaitTermination(2, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    giveBackIdle();
  }

  /**
   * Gives every lease with no holds back to its key (shutdown, after the usage queue drained).
   * Leases with holds still out lapse at their expiry.
   */
  public void giveBackIdle() {
    for (Map.Entry<Long, Lease> e : leases.entrySet()) {
      Lease l = e.getValue();
      synchronized (l) {
        if (l.held.signum() == 0) {
          try {
            giveBackAll(e.getKey(), l);
          } catch (RuntimeException failure) {
            // The database is away: the lease goes back at its expiry instead, reaped by any
            // instance. Shutdown goes on.
            log.warn(
                "lease of key {} not given back ({}); it lapses at its expiry",
                e.getKey(),
                failure.toString());
          }
        }
      }
    }
  }

  /**
   * The whole stored lease goes back, not just what this instance counts: a charge refused or
   * repeated drew nothing off the store, and this heals the difference.
   */
  private void giveBackAll(long keyId, Lease l) {
    BigDecimal back = store.giveBack(keyId, instanceId, Money.MAX);
    if (back.signum() > 0) {
      recorder.returned(back);
    }
    l.amount = BigDecimal.ZERO;
    l.validUntil = Instant.MIN;
  }

  /** This instance's name in the lease tables. */
  public String instanceId() {
    return instanceId;
  }

  /** The ledger's view of a hold: whose lease its charge draws on, and at most how much. */
  public UsageLedger.HeldBy heldBy(Hold hold) {
    return hold.backed() ? new UsageLedger.HeldBy(instanceId, hold.amount()) : null;
  }

  /**
   * What this instance knows remains of the key's budget for a new hold: its lease less its holds,
   * plus what the store said was neither used nor leased at its last answer (the refusal's
   * message).
   */
  public BigDecimal available(long keyId) {
    Lease l = leases.get(keyId);
    if (l == null) {
      return BigDecimal.ZERO;
    }
    synchronized (l) {
      BigDecimal free =
          clock.instant().isBefore(l.validUntil) ? l.amount.subtract(l.held) : BigDecimal.ZERO;
      return free.max(BigDecimal.ZERO).add(l.remaining == null ? BigDecimal.ZERO : l.remaining);
    }
  }

  /** This instance's lease of the key as it counts it, and what it holds (tests, metrics). */
  public BigDecimal[] leaseAndHeld(long keyId) {
    Lease l = leases.get(keyId);
    if (l == null) {
      return new BigDecimal[] {BigDecimal.ZERO, BigDecimal.ZERO};
    }
    synchronized (l) {
      return new BigDecimal[] {l.amount, l.held};
    }
  }
}
