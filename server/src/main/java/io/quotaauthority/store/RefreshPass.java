package io.quotaauthority.store;

import java.util.List;

/**
 * The bulk refresh's schedule (KeyChangeListener): each pass checks every cached key once per
 * interval (its version against the row's, reading back only the changed), a chunk at a time, the
 * chunks spread evenly over the interval. The listener's one thread answers notifications between
 * chunks, so a change waits for at most one chunk's query, never a whole pass: a million cached
 * keys are 200 chunks, one every 25 ms at the default 5 s, where 200 queries back to back once held
 * every notification for seconds. PostgreSQL sees a steady trickle instead of a burst. A cache of
 * one chunk or less is read once per interval, as before. Plain arithmetic on {@code
 * System.nanoTime()} values, tested as a table.
 */
final class RefreshPass<T> {
  private final long intervalNanos;
  private final long keysPerSecond;
  private final int chunk;

  /** This pass's length: the interval, or longer when the keys per second allowed say so. */
  private long passNanos;

  private List<T> ids = List.of();
  private int done;
  private long passStart;
  private int passes;
  private long next;

  /**
   * The first pass is due one interval after {@code now}; a pass checks at most {@code
   * keysPerSecond} keys a second on average, so a cache larger than that × the interval is passed
   * over more slowly.
   */
  RefreshPass(long intervalNanos, long keysPerSecond, int chunk, long now) {
    if (intervalNanos <= 0 || keysPerSecond <= 0 || chunk <= 0) {
      throw new IllegalArgumentException("interval, keys per second and chunk must be positive");
    }
    this.intervalNanos = intervalNanos;
    this.keysPerSecond = keysPerSecond;
    this.passNanos = intervalNanos;
    this.chunk = chunk;
    this.next = now + intervalNanos;
  }

  /** When the next chunk (or the next pass) is due. */
  long nextDue() {
    return next;
  }

  boolean due(long now) {
    return now - next >= 0;
  }

  /** True when no pass is under way: the next chunk due starts a new one ({@link #start}). */
  boolean betweenPasses() {
    return done >= ids.size();
  }

  /**
   * Begins a pass over {@code cached} (read by the caller now; the pass keeps its own copy);
   * returns its number, from 1.
   */
  int start(List<T> cached, long now) {
    ids = List.copyOf(cached);
    done = 0;
    passStart = now;
    // A million keys at 20,000 a second: 50 s, whatever the interval says.
    // (At most 2^31 keys: the product stays below 2^63.)
    passNanos = Math.max(intervalNanos, ids.size() * 1_000_000_000L / keysPerSecond);
    return ++passes;
  }

  /**
   * A chunk's query ran from {@code startedAt} to {@code now}: the next chunk is due no sooner than
   * that long after it. The refresh then takes at most half the listener's thread and half a
   * backend however far it falls behind (the pass takes longer than the interval instead), and the
   * notifications keep the other half.
   */
  void ran(long startedAt, long now) {
    long after = now + (now - startedAt);
    if (after - next > 0) {
      next = after;
    }
  }

  /** The pass's next chunk; {@link #nextDue} then says when the one after it is due. */
  List<T> take() {
    int to = Math.min(ids.size(), done + chunk);
    List<T> out = ids.subList(done, to);
    done = to;
    if (done >= ids.size()) {
      // Each pass starts one pass length after the last one started; late if the pass overran.
      next = passStart + passNanos;
    } else {
      long chunks = (ids.size() + (long) chunk - 1) / chunk;
      // Chunk k of n is due k/n of the way through the interval (done is k whole chunks here).
      long k = done / chunk;
      // passNanos x k / chunks, split so the product cannot overflow (the remainder's is small).
      next = passStart + passNanos / chunks * k + passNanos % chunks * k / chunks;
    }
    return out;
  }
}
