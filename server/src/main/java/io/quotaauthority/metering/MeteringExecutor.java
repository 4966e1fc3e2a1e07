package io.quotaauthority.metering;

import io.quotaauthority.threads.DaemonThreads;
import java.util.ArrayDeque;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where ext_proc work runs instead of on gRPC's transport threads: a fixed pool shared by every
 * stream, and one {@link Lane} per stream that runs that stream's tasks one at a time, in the order
 * they were given (a serial queue over the shared pool; a lane occupies at most one pool thread at
 * a time). Body work (parsing a 30 MiB prompt, scanning response chunks) can then take its time
 * without holding up the Checks that share the transport thread of its connection.
 *
 * <p>Bounded: at most {@code maxPending} message tasks wait or run at once across all lanes; {@link
 * Lane#tryExecute} refuses beyond that, and the caller answers the message unread. Closing tasks
 * ({@link Lane#execute}) are never refused: there is at most one per stream and it is cheap, and
 * refusing it would lose a charge.
 */
public final class MeteringExecutor implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(MeteringExecutor.class);

  private final ThreadPoolExecutor pool;
  private final Semaphore pending;
  private final int maxPending;

  /**
   * @param threads pool threads (body parsing is CPU work: about the number of cores)
   * @param maxPending message tasks that may wait or run at once, across every stream
   */
  public MeteringExecutor(int threads, int maxPending) {
    if (threads < 1 || maxPending < 1) {
      throw new IllegalArgumentException("threads and maxPending must be positive");
    }
    // The queue itself is unbounded, but what enters it is bounded by the semaphore (message
    // tasks) and by the number of streams (one closing task each), so it cannot grow without end.
    this.pool =
        new ThreadPoolExecutor(
            threads,
            threads,
            0,
            TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(),
            DaemonThreads.numbered("metering"));
    this.pending = new Semaphore(maxPending);
    this.maxPending = maxPending;
  }

  /**
   * The default size: one thread fewer than there are cores (at least one), so body parsing can
   * never take every core from the transport threads that answer Checks; 64 waiting messages a
   * thread (a few seconds of work at most, past which Envoy's message_timeout would give up
   * anyway).
   */
  public static MeteringExecutor forCores() {
    int threads = Math.max(1, Runtime.getRuntime().availableProcessors() - 1);
    return new MeteringExecutor(threads, threads * 64);
  }

  /** A new serial queue for one stream. */
  public Lane lane() {
    return new Lane();
  }

  /** Message tasks waiting or running now (for tests and metrics). */
  int pendingTasks() {
    return maxPending - pending.availablePermits();
  }

  /**
   * Stops taking tasks and waits up to {@code timeoutMillis} for queued ones (they answer Envoy and
   * charge what finished responses used); then interrupts what is left.
   */
  public void close(long timeoutMillis) {
    pool.shutdown();
    try {
      if (!pool.awaitTermination(timeoutMillis, TimeUnit.MILLISECONDS)) {
        pool.shutdownNow();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      pool.shutdownNow();
    }
  }

  @Override
  public void close() {
    close(5_000);
  }

  /** One stream's tasks, run in order, one at a time, on the shared pool. */
  public final class Lane implements Runnable {
    private final ArrayDeque<Runnable> tasks = new ArrayDeque<>();

    /** True while this lane is queued on or running in the pool. */
    private boolean scheduled;

    private Lane() {}

    /**
     * Queues a message task behind this lane's earlier ones, unless the executor is saturated (or
     * closed); then returns false and the caller must answer the message itself.
     */
    public boolean tryExecute(Runnable task) {
      return tryExecute(task, () -> {});
    }

    /**
     * As {@link #tryExecute(Runnable)}, then runs {@code next} once the task's slot is given back:
     * where a stream asks for its next message, so that message never finds its own stream's
     * previous slot still taken.
     */
    public boolean tryExecute(Runnable task, Runnable next) {
      if (!pending.tryAcquire()) {
        return false;
      }
      boolean queued = false;
      try {
        queued =
            add(
                () -> {
                  try {
                    task.run();
                  } finally {
                    pending.release();
                  }
                  next.run();
                });
        return queued;
      } finally {
        if (!queued) {
          pending.release();
        }
      }
    }

    /**
     * Queues a task that must run (the end of a stream), after this lane's earlier tasks. If the
     * executor is closed it runs here and now instead, so a charge is never dropped.
     */
    public void execute(Runnable task) {
      if (!add(task)) {
        runQuietly(task);
      }
    }

    private boolean add(Runnable task) {
      synchronized (this) {
        tasks.add(task);
        if (scheduled) {
          return true; // the running drain will reach it, in order
        }
        scheduled = true;
      }
      try {
        pool.execute(this);
        return true;
      } catch (RejectedExecutionException e) {
        synchronized (this) {
          tasks.remove(task);
          scheduled = false;
        }
        return false;
      }
    }

    /** Drains this lane on a pool thread; the lock is never held while a task runs. */
    @Override
    public void run() {
      while (true) {
        Runnable next;
        synchronized (this) {
          next = tasks.poll();
          if (next == null) {
            scheduled = false;
            return;
          }
        }
        runQuietly(next);
      }
    }
  }

  private static void runQuietly(Runnable task) {
    try {
      task.run();
    } catch (RuntimeException e) {
      // A task's failure must not stop the lane: later tasks of the stream still have to run.
      log.warn("metering task failed", e);
    }
  }
}
