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
    return rpm >= 6_000 ? 5 : 1;
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
      if (second >= lease.first && second <= lease.last && lease.left > 0) {
        lease.left--;
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
        start = () -> ask(keyId, rpm, lease, first, last, ask);
      }
      waitFor = lease.asking;
    }
    if (start != null) {
      try {
        executor.execute(start);
      } catch (RuntimeException rejected) {
        synchronized (lease) {
          lease.asking = null;
        }
        waitFor.completeExceptionally(rejected);
      }
    }
    if (tries <= 0) {
      return waitFor.thenApply(a -> a.admitted() ? new Answer(false, now + 1000) : a);
    }
    return waitFor.thenCompose(a -> a.admitted() ? acquire(keyId, rpm, tries - 1) : waitFor);
  }

  private void ask(
      long keyId, int rpm, Lease lease, long first, long last, CompletableFuture<Answer> ask) {
    try {
      RateStore.Grant g = store.grant(keyId, rpm, first, last, wanted(rpm));
      synchronized (lease) {
        lease.asking = null;
        if (g.granted() > 0) {
          lease.first = first;
          lease.last = last;
          lease.left = g.granted();
        } else {
          lease.refusedUntilMillis = g.retryAtSecond() * 1000;
        }
      }
      // Granted: every waiter takes its own permit (acquire again); refused: all are refused.
      ask.complete(g.granted() > 0 ? Answer.ADMIT : new Answer(false, g.retryAtSecond() * 1000));
    } catch (RuntimeException e) {
      synchronized (lease) {
        lease.asking = null;
      }
      ask.completeExceptionally(e);
    }
  }

  /** Forgets a key's permits (its limit changed or it was removed). */
  public void forget(long keyId) {
    leases.remove(keyId);
  }
}
