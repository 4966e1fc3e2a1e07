package io.quotaauthority.bench;

import com.sun.management.OperatingSystemMXBean;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/**
 * quota-authority's benchmark, one command for every scenario of issue 7 (see bench/README.md):
 * {@code mvn -B -q package -DskipTests && java -jar bench/target/quota-bench.jar --out
 * bench/RESULTS.md}.
 *
 * <p>It creates a fresh database on the local PostgreSQL, starts the server jar in its own JVM (and
 * the no-op baseline in another), drives them over loopback, profiles them with JFR, runs the cache
 * memory probe in a third JVM, writes the report, and stops and drops everything it made, on
 * failure too.
 *
 * <p>This class only orders the work: {@link BenchRun} holds the processes and the database, {@link
 * CheckGroup} (scenarios 1, 4, 5), {@link IngestScenario} (2), {@link MemoryScenario} (3) and
 * {@link HoldsScenario} (6) measure and return records, {@link Targets} judges them and {@link
 * Report} renders them.
 */
public final class Bench {
  private Bench() {}

  public static void main(String[] args) {
    Options o;
    try {
      o = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("quota-bench: " + e.getMessage());
      System.exit(2);
      return;
    }
    // Before anything is made: the elapsed time in the log and the report counts from here.
    long started = System.nanoTime();
    Cleanup cleanup = new Cleanup();
    Runtime.getRuntime().addShutdownHook(new Thread(cleanup, "bench-cleanup"));
    int rc = 0;
    try {
      run(o, cleanup, started);
    } catch (Throwable t) {
      System.err.println("quota-bench failed:");
      t.printStackTrace();
      rc = 1;
    } finally {
      cleanup.run();
    }
    System.exit(rc);
  }

  private static void run(Options o, Cleanup cleanup, long started) throws Exception {
    BenchRun run = BenchRun.open(o, cleanup, started);
    String loadBefore = Cpu.loadAverage();
    CheckGroup.Result check = o.only.contains("check") ? new CheckGroup(run).run() : null;
    H2loadScenario.Result h2load = o.only.contains("h2load") ? new H2loadScenario(run).run() : null;
    IngestScenario.Result ingest =
        o.only.contains("ingest")
            // The diagnostic's reports are in the same table: the ingest count must include them.
            ? new IngestScenario(run, check == null ? 0 : check.diagnostic().r().acceptedTotal())
                .run()
            : null;
    SoakScenario.Result soak = o.only.contains("soak") ? new SoakScenario(run).run() : null;
    MemoryScenario.Result memory = o.only.contains("memory") ? new MemoryScenario(run).run() : null;
    // Last: its charges land in usage_events, which the ingest scenario counts exactly.
    HoldsScenario.Result holds = o.only.contains("holds") ? new HoldsScenario(run).run() : null;
    // After every other: it sets policies on bench keys the others read as they were loaded.
    PoliciesScenario.Result policies =
        o.only.contains("policies") ? new PoliciesScenario(run).run() : null;
    // Two servers of its own; the keys it makes are no bench key's.
    PropagationScenario.Result propagation =
        o.only.contains("propagation") ? new PropagationScenario(run).run() : null;

    String md =
        Report.render(
            run,
            header(run, loadBefore, Cpu.loadAverage()),
            new Results(check, h2load, ingest, soak, memory, holds, policies, propagation));
    System.out.println();
    System.out.println(md);
    if (o.out != null) {
      Path out = o.out.toAbsolutePath();
      Path tmp = out.resolveSibling("RESULTS.tmp-" + ProcessHandle.current().pid());
      Files.writeString(tmp, md);
      Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      run.log("wrote " + o.out);
    }
    if (!run.problems.isEmpty()) {
      run.log("anomalies: " + String.join("; ", run.problems));
    }
    run.log("done in " + Math.round(run.elapsed()) + " s");
  }

  /**
   * The machine and the run, read once every scenario is done (the duration is the whole run's).
   */
  private static Report.Header header(BenchRun run, String loadBefore, String loadAfter) {
    String date =
        DateTimeFormatter.ISO_OFFSET_DATE_TIME.format(
            Instant.now().atOffset(ZoneOffset.UTC).withNano(0));
    return new Report.Header(
        date,
        Runtime.getRuntime().availableProcessors(),
        cpuModel(),
        memTotal(),
        System.getProperty("os.name") + ' ' + System.getProperty("os.version"),
        System.getProperty("java.vm.name")
            + ' '
            + System.getProperty("java.runtime.version")
            + " ("
            + System.getProperty("java.vm.vendor")
            + ")",
        run.pg.serverVersion(),
        loadBefore,
        loadAfter,
        Math.round(run.elapsed()));
  }

  private static String cpuModel() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (l.startsWith("model name")) {
          return l.substring(l.indexOf(':') + 1).trim();
        }
      }
    } catch (IOException | RuntimeException e) {
      // Not Linux: leave it out.
    }
    return "unknown CPU";
  }

  private static String memTotal() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
        if (l.startsWith("MemTotal:")) {
          long kb = Long.parseLong(l.replaceAll("\\D", ""));
          return String.format(Locale.ROOT, "%.1f GiB", kb / 1024.0 / 1024.0);
        }
      }
    } catch (IOException | RuntimeException e) {
      // Not Linux.
    }
    return String.format(
        Locale.ROOT,
        "%.1f GiB (JVM view)",
        ((OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize()
            / 1024.0
            / 1024
            / 1024);
  }
}
