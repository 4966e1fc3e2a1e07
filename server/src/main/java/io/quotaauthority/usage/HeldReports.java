package io.quotaauthority.usage;

import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;

/**
 * One usage stream's backpressure: the reports a full sink refused ({@link UsageSink.Overloaded}),
 * kept in arrival order and offered again shortly. While any are held, newer reports queue behind
 * them, so a stream's reports reach the sink in the order they came; and one retry task runs per
 * stream, not one per report, so a full queue never becomes a busy loop. The stream stops asking
 * HTTP/2 for more reports meanwhile (its window is not refilled until reports are answered), so
 * what is held is bounded by that window.
 *
 * <p>Free of gRPC: the stream gives it how to offer a report and how to tell it is closed.
 */
final class HeldReports<T> {
  private final Retries scheduler;
  private final long retryMillis;

  /** Hands a report to the sink; false when the sink refused it at once (it was not taken). */
  private final Predicate<T> offer;

  /** True once the stream is closed: what is held is dropped (never acknowledged, so resent). */
  private final BooleanSupplier closed;

  private final ArrayDeque<T> held = new ArrayDeque<>();
  private boolean retrying;

  HeldReports(Retries scheduler, long retryMillis, Predicate<T> offer, BooleanSupplier closed) {
    this.scheduler = scheduler;
    this.retryMillis = retryMillis;
    this.offer = offer;
    this.closed = closed;
  }

  /** A new report: offered now, or held behind those already waiting. */
  void take(T report) {
    synchronized (this) {
      if (retrying) {
        held.addLast(report);
        return;
      }
    }
    // Outside the lock: the sink may complete the report on this thread.
    if (!offer.test(report)) {
      hold(report);
    }
  }

  /** A report the sink refused (at once, or later for a sink that answers asynchronously). */
  synchronized void hold(T report) {
    if (closed.getAsBoolean()) {
      return;
    }
    held.addLast(report);
    if (!retrying) {
      retrying = true;
      scheduler.schedule(this::retry, retryMillis, TimeUnit.MILLISECONDS);
    }
  }

  /** How many reports wait (tests, and the stream's own checks). */
  synchronized int size() {
    return held.size();
  }

  /**
   * Offers the held reports, oldest first, until the sink refuses one; then tries again shortly.
   */
  private void retry() {
    while (true) {
      T next;
      synchronized (this) {
        next = closed.getAsBoolean() ? null : held.peekFirst();
        if (next == null) {
          held.clear();
          retrying = false;
          return;
        }
      }
      if (!offer.test(next)) {
        scheduler.schedule(this::retry, retryMillis, TimeUnit.MILLISECONDS);
        return;
      }
      synchronized (this) {
        held.pollFirst();
      }
    }
  }
}
