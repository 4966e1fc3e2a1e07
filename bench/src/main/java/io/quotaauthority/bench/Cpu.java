package io.quotaauthority.bench;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * CPU time from /proc: per process (user + system) and for the whole machine, so each phase can say
 * where the two cores went: the server, the baseline, the load generator, PostgreSQL's backends for
 * the bench database, and everything else on the machine (other builds).
 */
final class Cpu {
  /** USER_HZ: /proc reports times in ticks of 1/100 s on Linux. */
  static final long NANOS_PER_TICK = 10_000_000L;

  private Cpu() {}

  /** User + system CPU of one process in ns, or 0 when it is gone or /proc is absent. */
  static long processNanos(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      // The command name (field 2) may contain spaces; fields after it start past the last ')'.
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * NANOS_PER_TICK;
    } catch (IOException | RuntimeException e) {
      return 0;
    }
  }

  /**
   * User + system CPU in ns of a JVM's JIT compiler threads ("C1 CompilerThre…", "C2 CompilerThre…"
   * in /proc), 0 when unreadable.
   */
  static long compilerNanos(long pid) {
    long sum = 0;
    try (DirectoryStream<Path> tasks =
        Files.newDirectoryStream(Path.of("/proc/" + pid + "/task"))) {
      for (Path task : tasks) {
        try {
          if (Files.readString(task.resolve("comm")).contains("CompilerThre")) {
            String stat = Files.readString(task.resolve("stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            sum += (Long.parseLong(f[11]) + Long.parseLong(f[12])) * NANOS_PER_TICK;
          }
        } catch (IOException | RuntimeException e) {
          // The thread ended between the listing and the read: it compiles no more.
        }
      }
    } catch (IOException | RuntimeException e) {
      return 0;
    }
    return sum;
  }

  /** {busy, total} CPU ns of the whole machine (all cores), from the first line of /proc/stat. */
  static long[] machineNanos() {
    try {
      String line = Files.readAllLines(Path.of("/proc/stat")).get(0);
      String[] f = line.trim().split("\\s+");
      long total = 0;
      for (int i = 1; i < Math.min(f.length, 9); i++) {
        total += Long.parseLong(f[i]);
      }
      long idle = Long.parseLong(f[4]) + Long.parseLong(f[5]);
      return new long[] {(total - idle) * NANOS_PER_TICK, total * NANOS_PER_TICK};
    } catch (IOException | RuntimeException e) {
      return new long[] {0, 0};
    }
  }

  static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return "n/a";
    }
  }

  /** Named processes (some with changing pid sets) to account for. */
  static final class Meter {
    private final Map<String, Supplier<Collection<Long>>> groups = new LinkedHashMap<>();

    Meter add(String name, Supplier<Collection<Long>> pids) {
      groups.put(name, pids);
      return this;
    }

    Meter remove(String name) {
      groups.remove(name);
      return this;
    }

    Snapshot snap() {
      Map<String, Map<Long, Long>> perGroup = new LinkedHashMap<>();
      for (Map.Entry<String, Supplier<Collection<Long>>> g : groups.entrySet()) {
        Map<Long, Long> byPid = new LinkedHashMap<>();
        for (long pid : g.getValue().get()) {
          byPid.put(pid, processNanos(pid));
        }
        perGroup.put(g.getKey(), byPid);
      }
      return new Snapshot(System.nanoTime(), machineNanos(), perGroup);
    }
  }

  record Snapshot(long at, long[] machine, Map<String, Map<Long, Long>> perGroup) {
    /** CPU used between {@code before} and this snapshot. */
    Usage since(Snapshot before) {
      Map<String, Long> used = new LinkedHashMap<>();
      long ours = 0;
      for (Map.Entry<String, Map<Long, Long>> g : perGroup.entrySet()) {
        Map<Long, Long> then = before.perGroup.getOrDefault(g.getKey(), Map.of());
        long sum = 0;
        for (Map.Entry<Long, Long> p : g.getValue().entrySet()) {
          // A process that appeared in between counts from its start.
          sum += Math.max(0, p.getValue() - then.getOrDefault(p.getKey(), 0L));
        }
        used.put(g.getKey(), sum);
        ours += sum;
      }
      long busy = machine[0] - before.machine[0];
      long total = machine[1] - before.machine[1];
      used.put("other", Math.max(0, busy - ours));
      return new Usage(at - before.at, busy, total, used);
    }
  }

  /** CPU ns by group over a wall-clock interval, plus the machine's busy and total ns. */
  record Usage(long wallNanos, long busyNanos, long totalNanos, Map<String, Long> byGroup) {
    long of(String group) {
      return byGroup.getOrDefault(group, 0L);
    }

    /** Cores' worth used by a group on average (1.0 = one core busy all the time). */
    double cores(String group) {
      return wallNanos <= 0 ? 0 : (double) of(group) / wallNanos;
    }

    String describe() {
      List<String> parts = new ArrayList<>();
      for (Map.Entry<String, Long> e : byGroup.entrySet()) {
        parts.add(String.format("%s %.2f", e.getKey(), cores(e.getKey())));
      }
      double idle = totalNanos <= 0 ? 0 : (double) (totalNanos - busyNanos) / wallNanos;
      parts.add(String.format("idle %.2f", idle));
      return String.join(", ", parts) + " (cores)";
    }
  }
}
