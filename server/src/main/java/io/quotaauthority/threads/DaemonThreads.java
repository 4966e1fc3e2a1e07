package io.quotaauthority.threads;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The process's background threads, made in one place: daemons, because stopping them is the
 * composition root's {@code close()}, never a thread's to hold the JVM up for; and named, because a
 * thread dump of an unnamed pool says nothing.
 */
public final class DaemonThreads {
  private DaemonThreads() {}

  /** Daemon threads named {@code name-1}, {@code name-2}, ... in the order they are made. */
  public static ThreadFactory numbered(String name) {
    AtomicInteger n = new AtomicInteger();
    return r -> daemon(r, name + "-" + n.incrementAndGet());
  }

  /** Daemon threads named exactly {@code name}: for an executor of one thread. */
  public static ThreadFactory named(String name) {
    return r -> daemon(r, name);
  }

  /** A scheduler of one daemon thread named {@code name}. */
  public static ScheduledExecutorService scheduler(String name) {
    return Executors.newSingleThreadScheduledExecutor(named(name));
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }
}
