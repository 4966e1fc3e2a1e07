package io.quotaauthority.usage;

import io.quotaauthority.keys.Money;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
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
        return hold(keyId, estimate, l);
      }
    }
  }

  /** {@link #tryHold} on the key's lease, whose monitor the caller holds. */
  private Optional<Hold> hold(long keyId, BigDecimal estimate, Lease l) {
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
      return need.max(Money.UNIT);
    }
    BigDecimal share =
        remaining.divide(BigDecimal.valueOf(2L * instancesHint), Money.SCALE, RoundingMode.DOWN);
    return need.max(maxSlice.min(share)).max(Money.UNIT);
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
      store.reapExpired(now.minus(REAP_GRACE));
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
      maintainer =
          Executors.newSingleThreadScheduledExecutor(
              r -> {
                Thread t = new Thread(r, "budget-leases");
                t.setDaemon(true);
                return t;
              });
      long millis = Math.max(1, every.toMillis());
      maintainer.scheduleWithFixedDelay(this::maintain, millis, millis, TimeUnit.MILLISECONDS);
    }
    return this;
  }

  /** Stops the background round and gives back every lease with no holds. */
  public synchronized void close() {
    if (maintainer != null) {
      maintainer.shutdownNow();
      maintainer = null;
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
          giveBackAll(e.getKey(), l);
        }
      }
    }
  }

  /**
   * The whole stored lease goes back, not just what this instance counts: a charge refused or
   * repeated drew nothing off the store, and this heals the difference.
   */
  private void giveBackAll(long keyId, Lease l) {
    store.giveBack(keyId, instanceId, Money.MAX);
    l.amount = BigDecimal.ZERO;
    l.validUntil = Instant.MIN;
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
