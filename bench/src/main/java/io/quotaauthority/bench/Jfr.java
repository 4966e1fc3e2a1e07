package io.quotaauthority.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedStackTrace;
import jdk.jfr.consumer.RecordingFile;

/**
 * JDK Flight Recorder on a child JVM through jcmd (JFR.start with the "profile" settings, then
 * JFR.stop), and a summary of the recording: where the CPU samples are (top frames, the first
 * quota-authority frame on each stack, threads) and where allocation goes.
 */
final class Jfr {
  private Jfr() {}

  static void start(long pid, String name, Path file) {
    start(pid, name, file, "profile");
  }

  /**
   * JFR.start with the given settings: "profile" for CPU profiles, "default" (lighter) for GC only.
   */
  static void start(long pid, String name, Path file, String settings) {
    String out =
        ChildJvm.run(
            Duration.ofSeconds(30),
            ChildJvm.jdkTool("jcmd"),
            Long.toString(pid),
            "JFR.start",
            "name=" + name,
            "settings=" + settings,
            "filename=" + file.toAbsolutePath());
    if (!out.contains("Started recording")) {
      throw new IllegalStateException("JFR.start failed: " + out.trim());
    }
  }

  static void stop(long pid, String name) {
    ChildJvm.run(
        Duration.ofSeconds(60),
        ChildJvm.jdkTool("jcmd"),
        Long.toString(pid),
        "JFR.stop",
        "name=" + name);
  }

  /**
   * Heap histogram of a running JVM (forces a full GC): the first {@code rows} classes and the
   * total.
   */
  static String classHistogram(long pid, int rows) {
    String out =
        ChildJvm.run(
            Duration.ofSeconds(120),
            ChildJvm.jdkTool("jcmd"),
            Long.toString(pid),
            "GC.class_histogram");
    List<String> keep = new ArrayList<>();
    for (String line : out.split("\n")) {
      String t = line.trim();
      if (t.startsWith("num")
          || t.startsWith("Total")
          || t.matches("^\\d+:\\s+\\d+\\s+\\d+\\s.*") && keep.size() <= rows) {
        keep.add(line.stripTrailing());
      }
    }
    return String.join("\n", keep);
  }

  /**
   * Bytes the JVM's threads allocated during a recording: per thread, the last minus the first of
   * JFR's cumulative jdk.ThreadAllocationStatistics (written at each chunk's start and end),
   * summed. A thread born during the recording is missed; after a warm-up the server makes none.
   */
  static long allocatedBytes(Path file) throws IOException {
    Map<Long, long[]> byThread = new HashMap<>();
    try (RecordingFile rf = new RecordingFile(file)) {
      while (rf.hasMoreEvents()) {
        RecordedEvent e = rf.readEvent();
        if (!e.getEventType().getName().equals("jdk.ThreadAllocationStatistics")) {
          continue;
        }
        String thread = e.getThread("thread").getJavaName();
        if (thread != null && thread.startsWith("JFR ")) {
          continue; // the recorder's own threads: not the server's work
        }
        long allocated = e.getLong("allocated");
        long[] range =
            byThread.computeIfAbsent(
                e.getThread("thread").getId(), t -> new long[] {Long.MAX_VALUE, 0});
        range[0] = Math.min(range[0], allocated);
        range[1] = Math.max(range[1], allocated);
      }
    }
    long total = 0;
    for (long[] range : byThread.values()) {
      total += range[1] - range[0];
    }
    return total;
  }

  /** Ranked shares of one dimension. */
  record Ranking(String title, long total, List<Map.Entry<String, Long>> top) {}

  record Summary(long cpuSamples, List<Ranking> rankings, String gc, String cpuLoad) {}

  static Summary summarize(Path file, int topN) throws IOException {
    Map<String, Long> topFrame = new HashMap<>();
    Map<String, Long> ourFrame = new HashMap<>();
    Map<String, Long> threads = new HashMap<>();
    Map<String, Long> allocClass = new HashMap<>();
    Map<String, Long> allocSite = new HashMap<>();
    long samples = 0;
    long allocTotal = 0;
    long gcCount = 0;
    long gcNanos = 0;
    long gcMaxPause = 0;
    double jvmCpu = 0;
    double machineCpu = 0;
    int cpuEvents = 0;
    if (!Files.exists(file)) {
      throw new IOException("no recording at " + file);
    }
    try (RecordingFile rf = new RecordingFile(file)) {
      while (rf.hasMoreEvents()) {
        RecordedEvent e = rf.readEvent();
        String type = e.getEventType().getName();
        switch (type) {
          case "jdk.ExecutionSample" -> {
            samples++;
            RecordedStackTrace st = e.getStackTrace();
            String thread =
                e.getThread("sampledThread") == null
                    ? "?"
                    : e.getThread("sampledThread").getJavaName();
            threads.merge(threadGroup(thread), 1L, Long::sum);
            if (st != null && !st.getFrames().isEmpty()) {
              topFrame.merge(method(st.getFrames().get(0)), 1L, Long::sum);
              ourFrame.merge(firstOurs(st.getFrames()), 1L, Long::sum);
            }
          }
          case "jdk.ObjectAllocationSample" -> {
            long w = e.getLong("weight");
            allocTotal += w;
            allocClass.merge(e.getClass("objectClass").getName(), w, Long::sum);
            RecordedStackTrace st = e.getStackTrace();
            if (st != null) {
              allocSite.merge(firstNonJdk(st.getFrames()), w, Long::sum);
            }
          }
          case "jdk.GarbageCollection" -> {
            gcCount++;
            gcNanos += e.getDuration().toNanos();
            gcMaxPause = Math.max(gcMaxPause, e.getDuration("longestPause").toNanos());
          }
          case "jdk.CPULoad" -> {
            jvmCpu += e.getFloat("jvmUser") + e.getFloat("jvmSystem");
            machineCpu += e.getFloat("machineTotal");
            cpuEvents++;
          }
          default -> {
            // Other events are not summarized.
          }
        }
      }
    }
    List<Ranking> rankings =
        List.of(
            rank("CPU samples by top frame (self time)", topFrame, samples, topN),
            rank(
                "CPU samples by innermost io.quotaauthority frame on the stack",
                ourFrame,
                samples,
                topN),
            rank("CPU samples by thread", threads, samples, 8),
            rank("Allocation by class (sampled bytes)", allocClass, allocTotal, 10),
            rank(
                "Allocation by site (first frame outside java.*/jdk.*/sun.*)",
                allocSite,
                allocTotal,
                10));
    String gc =
        gcCount
            + " collections, "
            + gcNanos / 1_000_000
            + " ms total, longest pause "
            + String.format(Locale.ROOT, "%.1f ms", gcMaxPause / 1e6);
    String cpu =
        cpuEvents == 0
            ? "n/a"
            : String.format(
                "JVM %.0f%%, machine %.0f%% (of all cores)",
                100 * jvmCpu / cpuEvents, 100 * machineCpu / cpuEvents);
    return new Summary(samples, rankings, gc, cpu);
  }

  private static Ranking rank(String title, Map<String, Long> counts, long total, int n) {
    List<Map.Entry<String, Long>> list = new ArrayList<>(counts.entrySet());
    list.sort((a, b) -> Long.compare(b.getValue(), a.getValue()));
    return new Ranking(title, total, list.subList(0, Math.min(n, list.size())));
  }

  static String method(RecordedFrame f) {
    String cls = f.getMethod().getType().getName();
    return shorten(cls) + "." + f.getMethod().getName();
  }

  private static String firstOurs(List<RecordedFrame> frames) {
    for (RecordedFrame f : frames) {
      if (f.getMethod().getType().getName().startsWith("io.quotaauthority.")) {
        return method(f);
      }
    }
    return "(no io.quotaauthority frame: transport, gRPC, GC support)";
  }

  private static String firstNonJdk(List<RecordedFrame> frames) {
    for (RecordedFrame f : frames) {
      String cls = f.getMethod().getType().getName();
      if (!cls.startsWith("java.") && !cls.startsWith("jdk.") && !cls.startsWith("sun.")) {
        return method(f);
      }
    }
    return frames.isEmpty() ? "?" : method(frames.get(0));
  }

  /** Drops the long shaded-netty package prefix so tables stay readable. */
  static String shorten(String cls) {
    return cls.replace("io.grpc.netty.shaded.io.netty.", "netty.")
        .replace("io.grpc.netty.shaded.io.grpc.netty.", "grpc.netty.")
        .replace("com.github.benmanes.caffeine.cache.", "caffeine.")
        .replace("io.envoyproxy.envoy.service.auth.v3.", "envoy.auth.")
        .replace("io.quotaauthority.", "qa.");
  }

  /** "grpc-default-worker-ELG-3-2" and "-1" alike become "grpc-default-worker-ELG". */
  static String threadGroup(String name) {
    return name.replaceAll("[-#\\d]+$", "");
  }
}
