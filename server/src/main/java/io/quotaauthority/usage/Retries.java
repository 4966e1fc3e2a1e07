package io.quotaauthority.usage;

import io.quotaauthority.threads.DaemonThreads;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Delayed work of the usage path (a stream's held reports, metering's charge retries), on one
 * scheduler the composition root owns and drains at shutdown: what is due by the deadline runs at
 * its time, what would wait longer runs once right then, while the batcher is still open, instead
 * of being dropped with the scheduler. After that, {@link #schedule} refuses.
 *
 * <p>A plain executor cannot do this: a ScheduledThreadPoolExecutor cancels, not runs, the tasks
 * its shutdownNow hands back.
 */
public final class Retries implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Retries.class);
  private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

  private final ScheduledExecutorService scheduler;
  private final Set<Task> waiting = ConcurrentHashMap.newKeySet();
  private volatile boolean closed;

  /** One daemon thread, started on the first schedule (never by the constructor). */
  public Retries(String threadName) {
    this.scheduler = Executors.newSingleThreadScheduledExecutor(DaemonThreads.numbered(threadName));
  }

  /** A task that runs once: at its time, or at the drain, whichever comes first. */
  private final class Task implements Runnable {
    private final Runnable work;
    private final AtomicBoolean started = new AtomicBoolean();
    private volatile ScheduledFuture<?> future;

    Task(Runnable work) {
      this.work = work;
    }

    @Override
    public void run() {
      if (started.compareAndSet(false, true)) {
        waiting.remove(this);
        work.run();
      }
    }
  }

  /**
   * Runs {@code work} after the delay.
   *
   * @throws RejectedExecutionException once the drain has begun its last pass
   */
  public void schedule(Runnable work, long delay, TimeUnit unit) {
    Task task = new Task(work);
    // The check and the add under one lock with the drain's last pass: a task either is in
    // `waiting` when the drain copies it (and runs), or is refused; never scheduled and lost.
    synchronized (this) {
      if (closed) {
        throw new RejectedExecutionException("shutting down");
      }
      waiting.add(task);
    }
    try {
      task.future = scheduler.schedule(task, delay, unit);
    } catch (RejectedExecutionException e) {
      waiting.remove(task);
      throw e;
    }
  }

  /** Tasks scheduled and not yet started (tests, and the drain). */
  public int waiting() {
    return waiting.size();
  }

  /**
   * Shutdown: lets scheduled work run at its time until the deadline, then runs what still waits
   * once, on this thread, and stops the scheduler. Work that asks to be scheduled again after that
   * is refused ({@link RejectedExecutionException}; UsageCharger counts such a charge lost).
   */
  public void drain(long deadlineNanos) {
    try {
      while (!waiting.isEmpty() && System.nanoTime() < deadlineNanos) {
        TimeUnit.NANOSECONDS.sleep(
            Math.min(POLL_NANOS, Math.max(1, deadlineNanos - System.nanoTime())));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    List<Task> last;
    synchronized (this) {
      closed = true;
      last = List.copyOf(waiting);
    }
    for (Task task : last) {
      ScheduledFuture<?> f = task.future;
      if (f != null) {
        f.cancel(false);
      }
      try {
        task.run();
      } catch (RuntimeException e) {
        log.warn("delayed usage work failed at shutdown: {}", e.toString());
      }
    }
    scheduler.shutdownNow();
  }

  /** Stops at once, running nothing (a start that failed before anything was scheduled). */
  @Override
  public void close() {
    closed = true;
    scheduler.shutdownNow();
  }
}
