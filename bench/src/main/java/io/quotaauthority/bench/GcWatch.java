package io.quotaauthority.bench;

import com.sun.management.GarbageCollectionNotificationInfo;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import javax.management.NotificationEmitter;
import javax.management.openmbean.CompositeData;

/**
 * Garbage collection on both ends of a run: a light JFR recording (settings=default) on the server
 * JVM, and this JVM's collector counters for the load generator.
 */
final class GcWatch {
  record Result(String server, String client) {
    static final Result NONE = new Result("–", "–");
  }

  /** Longest collection of this JVM since the last {@link #start}, in ms. */
  private static final AtomicLong CLIENT_MAX_MILLIS = new AtomicLong();

  static {
    for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      if (gc instanceof NotificationEmitter emitter) {
        emitter.addNotificationListener(
            (n, handback) -> {
              if (GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION.equals(
                  n.getType())) {
                GarbageCollectionNotificationInfo info =
                    GarbageCollectionNotificationInfo.from((CompositeData) n.getUserData());
                // Concurrent cycles are not pauses.
                if (!info.getGcCause().contains("No GC")
                    && !info.getGcName().contains("Concurrent")) {
                  CLIENT_MAX_MILLIS.accumulateAndGet(info.getGcInfo().getDuration(), Math::max);
                }
              }
            },
            null,
            null);
      }
    }
  }

  private final long pid;
  private final Path file;
  private final long clientCount;
  private final long clientMillis;
  private final boolean recording;

  private GcWatch(long pid, Path file, boolean recording) {
    this.pid = pid;
    this.file = file;
    this.recording = recording;
    long[] c = clientGc();
    this.clientCount = c[0];
    this.clientMillis = c[1];
  }

  static GcWatch start(long pid, Path file) {
    CLIENT_MAX_MILLIS.set(0);
    boolean ok;
    try {
      Files.deleteIfExists(file);
      Jfr.start(pid, "gc-" + file.getFileName(), file, "default");
      ok = true;
    } catch (Exception | Error e) {
      System.err.println("GC recording not started: " + e.getMessage());
      ok = false;
    }
    return new GcWatch(pid, file, ok);
  }

  Result stop() {
    long[] c = clientGc();
    String client =
        String.format(
            Locale.ROOT,
            "%d collections, %d ms total, longest %d ms",
            c[0] - clientCount,
            c[1] - clientMillis,
            CLIENT_MAX_MILLIS.get());
    String server = "–";
    if (recording) {
      Jfr.stop(pid, "gc-" + file.getFileName());
      try {
        server = Jfr.summarize(file, 1).gc();
      } catch (Exception e) {
        server = "(no recording: " + e.getMessage() + ")";
      }
    }
    return new Result(server, client);
  }

  private static long[] clientGc() {
    long count = 0;
    long millis = 0;
    for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      count += Math.max(0, gc.getCollectionCount());
      millis += Math.max(0, gc.getCollectionTime());
    }
    return new long[] {count, millis};
  }
}
