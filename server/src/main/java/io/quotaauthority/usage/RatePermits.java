package io.quotaauthority.usage;

import java.time.Clock;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;

/**
 * Requests per minute across every instance (README "Key policies", "Rate limits"). An instance
 * admits a key's request on a permit it was granted by PostgreSQL ({@link RateStore}), usable only
 * during the seconds it was granted for; a grant is made only while the permits usable in any 61
 * consecutive seconds stay within the key's rpm. So no 60 s span of admissions, across all
 * instances, holds more than rpm requests (given instance clocks that agree); what an instance was
 * granted and did not use is lost (admissions fall short of rpm, never above it).
 *
 * <p>A Check takes a permit in memory while this instance holds one for the current second; else it
 * waits for one grant (shared by the key's concurrent Checks here, on the store's executor, never
 * the Check's thread). A refusal is remembered until the second the store said a permit can be
 * granted again, so a refused key costs no query until then: permits only free up with time.
 */
public final class RatePermits {
  /** The answer for one request. */
  public record Answer(boolean admitted, long retryAtMillis) {
    static final Answer ADMIT = new Answer(true, 0);
  }

  private static final CompletableFuture<Answer> ADMITTED =
      CompletableFuture.completedFuture(Answer.ADMIT);

  private final ConcurrentHashMap<Long, Lease> leases = new ConcurrentHashMap<>();
  private final RateStore store;
  private final Executor executor;
  private final Clock clock;

  public RatePermits(RateStore store, Executor executor, Clock clock) {
    this.store = store;
    this.executor = executor;
    this.clock = clock;
  }

  /**
   * How many seconds a grant spans and how many permits it asks for: a second and one permit for
   * small limits (exact to the request), longer and more for large ones so that a busy key costs a
   * grant every few seconds per instance, not one per request.
   */
  static int spanSeconds(int rpm) {
    return rpm >= 600_000 ? 30 : rpm >= 6_000 ? 5 : 1;
  }

  static int wanted(int rpm) {
    // A tenth of what the span allows: the rest stays for the other instances.
    return Math.max(1, (int) ((long) rpm * spanSeconds(rpm) / 600));
  }

  /** One key's permits on this instance. */
  private static final class Lease {
    long first;
    long last = -1;
    int left;

    /** A grant that arrived while this one still held permits: used once this one is done. */
    long nextFirst;

    long nextLast = -1;
    int nextLeft;
    long refusedUntilMillis;
    CompletableFuture<Answer> asking;
  }

  /** Admits or refuses one request of the key; completes at once while permits are held here. */
  public CompletableFuture<Answer> acquire(long keyId, int rpm) {
    return acquire(keyId, rpm, 8);
  }

  private CompletableFuture<Answer> acquire(long keyId, int rpm, int tries) {
    long now = clock.millis();
    long second = Math.floorDiv(now, 1000);
    Lease lease = leases.computeIfAbsent(keyId, id -> new Lease());
    CompletableFuture<Answer> waitFor;
    Runnable start = null;
    synchronized (lease) {
      if ((lease.left <= 0 || second > lease.last)
          && lease.nextLeft > 0
          && second >= lease.nextFirst
          && second <= lease.nextLast) {
        lease.first = lease.nextFirst;
        lease.last = lease.nextLast;
        lease.left = lease.nextLeft;
        lease.nextLeft = 0;
        lease.nextLast = -1;
      }
      if (second >= lease.first && second <= lease.last && lease.left > 0) {
        lease.left--;
        if (wanted(rpm) > 1
            && lease.asking == null
            && lease.nextLeft == 0
            && (second == lease.last || lease.left < wanted(rpm) / 4)) {
          // A large limit: the next grant is asked for before this one runs out, so the key's
          // Checks do not wait for it (it is kept until this one is done).
          CompletableFuture<Answer> ask = new CompletableFuture<>();
          lease.asking = ask;
          long next = second == lease.last ? second + 1 : second;
          long last = next + spanSeconds(rpm) - 1;
          start = () -> enqueue(new Pending(keyId, rpm, lease, next, last, ask));
        }
        if (start != null) {
          Runnable prefetch = start;
          // Outside the key's lock would be tidier; the queue's offer never blocks.
          prefetch.run();
        }
        return ADMITTED;
      }
      if (now < lease.refusedUntilMillis) {
        return CompletableFuture.completedFuture(new Answer(false, lease.refusedUntilMillis));
      }
      if (lease.asking == null) {
        long first = second;
        long last = second + spanSeconds(rpm) - 1;
        CompletableFuture<Answer> ask = new CompletableFuture<>();
        lease.asking = ask;
        start = () -> enqueue(new Pending(keyId, rpm, lease, first, last, ask));
      }
      waitFor = lease.asking;
    }
    if (start != null) {
      start.run();
    }
    if (tries <= 0) {
      return waitFor.thenApply(a -> a.admitted() ? new Answer(false, now + 1000) : a);
    }
    return waitFor.thenCompose(a -> a.admitted() ? acquire(keyId, rpm, tries - 1) : waitFor);
  }

  /** One key's ask waiting for the next batch. */
  private record Pending(
      long keyId, int rpm, Lease lease, long first, long last, CompletableFuture<Answer> ask) {}

  /** Asks of every key, granted in batches: one transaction for all the keys waiting. */
  private final java.util.concurrent.ConcurrentLinkedQueue<Pending> queue =
      new java.util.concurrent.ConcurrentLinkedQueue<>();

  private final java.util.concurrent.atomic.AtomicInteger draining =
      new java.util.concurrent.atomic.AtomicInteger();

  /** Asks granted per transaction at most. */
  static final int BATCH = 512;

  private void enqueue(Pending p) {
    queue.add(p);
    // At most two drainers (the executor's threads); each takes what is queued when it runs.
    if (draining.get() < 2) {
      draining.incrementAndGet();
      try {
        executor.execute(this::drain);
      } catch (RuntimeException rejected) {
        draining.decrementAndGet();
        fail(p, rejected);
      }
    }
  }

  private void drain() {
    try {
      while (true) {
        java.util.List<Pending> batch = new java.util.ArrayList<>();
        java.util.Set<Long> keys = new java.util.HashSet<>();
        Pending p;
        while (batch.size() < BATCH && (p = queue.poll()) != null) {
          if (keys.add(p.keyId())) {
            batch.add(p);
          } else {
            // One ask per key per batch: a second waits for the next.
            queue.add(p);
            break;
          }
        }
        if (batch.isEmpty()) {
          return;
        }
        grant(batch);
      }
    } finally {
      draining.decrementAndGet();
      if (!queue.isEmpty() && draining.get() < 2) {
        draining.incrementAndGet();
        try {
          executor.execute(this::drain);
        } catch (RuntimeException rejected) {
          draining.decrementAndGet();
        }
      }
    }
  }

  private void grant(java.util.List<Pending> batch) {
    java.util.List<RateStore.Ask> asks = new java.util.ArrayList<>(batch.size());
    for (Pending p : batch) {
      asks.add(new RateStore.Ask(p.keyId(), p.rpm(), p.first(), p.last(), wanted(p.rpm())));
    }
    java.util.List<RateStore.Grant> grants;
    try {
      grants = store.grantAll(asks);
    } catch (RuntimeException e) {
      for (Pending p : batch) {
        fail(p, e);
      }
      return;
    }
    for (int i = 0; i < batch.size(); i++) {
      granted(batch.get(i), grants.get(i));
    }
  }

  private void fail(Pending p, RuntimeException e) {
    synchronized (p.lease()) {
      p.lease().asking = null;
    }
    p.ask().completeExceptionally(e);
  }

  private void granted(Pending p, RateStore.Grant g) {
    Lease lease = p.lease();
    synchronized (lease) {
      lease.asking = null;
      if (g.granted() > 0) {
        if (lease.left > 0 && Math.floorDiv(clock.millis(), 1000) <= lease.last) {
          // Asked for ahead while this one still holds permits: kept for when it runs out.
          lease.nextFirst = p.first();
          lease.nextLast = p.last();
          lease.nextLeft = g.granted();
        } else {
          lease.first = p.first();
          lease.last = p.last();
          lease.left = g.granted();
        }
      } else {
        lease.refusedUntilMillis = g.retryAtSecond() * 1000;
      }
    }
    // Granted: every waiter takes its own permit (acquire again); refused: all are refused.
    p.ask().complete(g.granted() > 0 ? Answer.ADMIT : new Answer(false, g.retryAtSecond() * 1000));
  }

  /** Forgets a key's permits (its limit changed or it was removed). */
  public void forget(long keyId) {
    leases.remove(keyId);
  }
}
