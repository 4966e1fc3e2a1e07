package io.quotaauthority.bench;

import java.sql.Connection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Scenario 9, the ingest soak (issue 19 point 5): a server of its own (the ingest settings) takes
 * usage from the main run's streams at the most it can for {@link Options#soakDuration} (10 minutes
 * in the full run), on the same keys, so that api_keys takes hundreds of thousands of counter
 * updates and usage_events grows by millions of rows. Acknowledged reports are counted every
 * second; the rate of the first and of the last minute (a fifth of the run when it is shorter than
 * five minutes) are compared, and the tables' statistics are read every {@link #SAMPLE} seconds:
 * HOT share, dead tuples, sizes, autovacuum's runs.
 */
final class SoakScenario {
  /** Seconds between two readings of the tables' statistics. */
  static final int SAMPLE = 10;

  /** The tables at one moment of the soak, {@code second} after it began. */
  record Sample(long second, long acked, TableStats stats) {}

  record Result(
      Duration duration,
      int streams,
      Duration window,
      double firstRate,
      double lastRate,
      double overallRate,
      TableStats start,
      TableStats end,
      List<Sample> samples,
      long acked,
      long rowsInDb,
      IngestLoad.Result load,
      Cpu.Usage cpu) {
    double keepsRate() {
      return firstRate <= 0 ? Double.NaN : lastRate / firstRate;
    }

    double hotRatio() {
      return end.hotRatioSince(start);
    }

    long maxDeadKeys() {
      long max = start.keys().dead();
      for (Sample s : samples) {
        max = Math.max(max, s.stats().keys().dead());
      }
      return Math.max(max, end.keys().dead());
    }

    /** The most dead tuples of api_keys seen in the first window (start included). */
    long maxDeadFirstWindow() {
      long max = start.keys().dead();
      for (Sample s : samples) {
        if (s.second() <= window.toSeconds()) {
          max = Math.max(max, s.stats().keys().dead());
        }
      }
      return max;
    }

    /** The largest heap + index size of api_keys seen in the first window (start included). */
    long maxKeysBytesFirstWindow() {
      long max = start.keys().heapBytes() + start.keys().indexBytes();
      for (Sample s : samples) {
        if (s.second() <= window.toSeconds()) {
          max = Math.max(max, s.stats().keys().heapBytes() + s.stats().keys().indexBytes());
        }
      }
      return max;
    }

    long autovacuums() {
      return end.keys().autovacuums() - start.keys().autovacuums();
    }

    boolean allInDatabase() {
      return rowsInDb == acked;
    }
  }

  private final BenchRun run;

  SoakScenario(BenchRun run) {
    this.run = run;
  }

  Result run() throws Exception {
    Options o = run.o;
    Options.Scale scale = run.scale;
    Duration duration = o.soakDuration();
    long seconds = Math.max(1, duration.toSeconds());
    // The first and the last minute; a fifth of a run shorter than five minutes.
    long windowSeconds = seconds >= 300 ? 60 : Math.max(1, seconds / 5);
    int authz = ChildJvm.freePort();
    Map<String, String> env = run.serverEnv(authz, o.pg, "soak");
    env.putAll(o.ingestEnv);
    ChildJvm server = run.startServerWithAllKeys("server-soak", env, authz);
    IngestLoad ingest = new IngestLoad(authz, run.reporterToken, scale.ingestKeys());
    int streams = scale.ingestStreams();
    run.log(
        "soak: "
            + streams
            + " streams at the most the server takes for "
            + seconds
            + " s ("
            + windowSeconds
            + " s windows)");
    IngestLoad.Run r = ingest.start(streams, "soak");
    // A fresh server: its first minute is compared with its last, so the JIT is warmed first (as
    // in scenario 2).
    ChildJvm.sleep(o.smoke ? scale.ingestWarmup().toMillis() : 15_000);
    TableStats start = read();
    List<Sample> samples = new ArrayList<>();
    long[] perSecond = new long[(int) seconds + 1];
    Cpu.Snapshot c0 = run.meter.snap();
    r.markStart();
    long t0 = System.nanoTime();
    long base = r.acceptedTotal.sum();
    perSecond[0] = base;
    for (int s = 1; s <= seconds; s++) {
      long wake = t0 + s * 1_000_000_000L;
      long left = (wake - System.nanoTime()) / 1_000_000;
      if (left > 0) {
        ChildJvm.sleep(left);
      }
      perSecond[s] = r.acceptedTotal.sum();
      if (s % SAMPLE == 0 && s < seconds) {
        TableStats st = read();
        samples.add(new Sample(s, perSecond[s] - base, st));
        if (o.verbose || s % 60 == 0) {
          run.log(
              String.format(
                  Locale.ROOT,
                  "  soak %d s: %s acked in the last %d s; %s",
                  s,
                  Report.rate((perSecond[s] - perSecond[s - SAMPLE]) / (double) SAMPLE),
                  SAMPLE,
                  st.keys().describe()));
        }
      }
    }
    r.markEnd();
    Cpu.Usage cpu = run.meter.snap().since(c0);
    IngestLoad.Result load = r.stopAndDrain();
    double first = (perSecond[(int) windowSeconds] - perSecond[0]) / (double) windowSeconds;
    double last =
        (perSecond[(int) seconds] - perSecond[(int) (seconds - windowSeconds)])
            / (double) windowSeconds;
    ChildJvm.sleep(1_000); // table statistics are flushed at most once a second
    TableStats end = read();
    long rowsInDb;
    try (Connection c = run.connect()) {
      rowsInDb =
          PgAdmin.scalarLong(c, "SELECT count(*) FROM usage_events WHERE report_id LIKE 'soak-%'");
    }
    run.stopServer(server);
    if (load.duplicates() + load.rejected() + load.errors() > 0 || !load.allDone()) {
      run.problems.add(
          "soak: "
              + load.duplicates()
              + " duplicates, "
              + load.rejected()
              + " rejected, "
              + load.errors()
              + " errors"
              + (load.allDone() ? "" : ", streams did not finish"));
    }
    Result result =
        new Result(
            duration,
            streams,
            Duration.ofSeconds(windowSeconds),
            first,
            last,
            load.perSecond(),
            start,
            end,
            List.copyOf(samples),
            load.acceptedTotal(),
            rowsInDb,
            load,
            cpu);
    if (!result.allInDatabase()) {
      run.problems.add(
          "soak: usage_events has "
              + rowsInDb
              + " soak rows, "
              + load.acceptedTotal()
              + " acknowledged");
    }
    run.cpuLog.add("soak (" + streams + " streams): " + cpu.describe());
    run.log(
        String.format(
            Locale.ROOT,
            "soak: first %d s %s, last %d s %s (%.2f), HOT %s, api_keys dead tuples at most %s",
            windowSeconds,
            Report.rate(first),
            windowSeconds,
            Report.rate(last),
            result.keepsRate(),
            Report.percent(result.hotRatio()),
            Report.num(result.maxDeadKeys())));
    return result;
  }

  private TableStats read() throws java.sql.SQLException {
    try (Connection c = run.connect()) {
      return TableStats.read(c);
    }
  }
}
