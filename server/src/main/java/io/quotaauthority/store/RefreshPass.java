package io.quotaauthority.store;

import java.util.List;

/**
 * The bulk refresh's schedule (KeyChangeListener): each pass re-reads every cached key once per
 * interval, a chunk at a time, the chunks spread evenly over the interval. The listener's one
 * thread answers notifications between chunks, so a change waits for at most one chunk's query,
 * never a whole pass: a million cached keys are 200 chunks, one every 25 ms at the default 5 s,
 * where 200 queries back to back once held every notification for seconds. PostgreSQL sees a steady
 * trickle instead of a burst. A cache of one chunk or less is read once per interval, as before.
 * Plain arithmetic on {@code System.nanoTime()} values, tested as a table.
 */
final class RefreshPass {
  private final long intervalNanos;
  private final int chunk;
  private List<Long> ids = List.of();
  private int done;
  private long passStart;
  private int passes;
  private long next;

  /** The first pass is due one interval after {@code now}. */
  RefreshPass(long intervalNanos, int chunk, long now) {
    if (intervalNanos <= 0 || chunk <= 0) {
      throw new IllegalArgumentException("interval and chunk must be positive");
    }
    this.intervalNanos = intervalNanos;
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

  /** Begins a pass over {@code cachedIds} (read by the caller now); returns its number, from 1. */
  int start(List<Long> cachedIds, long now) {
    ids = List.copyOf(cachedIds);
    done = 0;
    passStart = now;
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
  List<Long> take() {
    int to = Math.min(ids.size(), done + chunk);
    List<Long> out = ids.subList(done, to);
    done = to;
    if (done >= ids.size()) {
      // Each pass starts one interval after the last one started; late if the pass overran.
      next = passStart + intervalNanos;
    } else {
      long chunks = (ids.size() + (long) chunk - 1) / chunk;
      // Chunk k of n is due k/n of the way through the interval (done is k whole chunks here).
      next = passStart + intervalNanos * (done / chunk) / chunks;
    }
    return out;
  }
}
