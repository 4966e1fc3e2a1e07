package io.quotaauthority.bench;

import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Scenario 2: durable, acknowledged usage reports per second on a server connected straight to
 * PostgreSQL, against a plain JDBC writer doing the same rows, then with other stream counts; and
 * whether every acknowledged report is in the database.
 */
final class IngestScenario {
  /** One measured ingest window: the answers, the CPU split, and the commit groups (≈). */
  record Run(IngestLoad.Result r, Cpu.Usage cpu, long groups) {
    double groupSize() {
      return groups <= 0 ? 0 : (double) r.accepted() / groups;
    }
  }

  /** A stream-count row of the table. */
  record Scaled(int streams, Run run) {}

  /**
   * What scenario 2 measured. {@code accepted} counts every report the servers acknowledged in this
   * database, the Check server's diagnostic included; {@code profile} is null without --profile.
   */
  record Result(
      Map<String, String> env,
      Run main,
      JdbcReference.Result ref,
      Cpu.Usage refCpu,
      int group,
      List<Scaled> scaling,
      BenchRun.Profile profile,
      long rowsInDb,
      long accepted,
      long referenceRows,
      long updates,
      long hotUpdates,
      PgbenchReference.Result pgbench,
      long pgbenchRows,
      TableStats start,
      TableStats beforeMain,
      TableStats afterMain,
      TableStats end,
      String explain) {
    double ratio() {
      return main.r().perSecond() / Math.max(1, ref.perSecond());
    }

    /** The ingest rate against PostgreSQL's own rate for the same rows (pgbench, one backend). */
    double pgbenchRatio() {
      return main.r().perSecond() / pgbench.rowsPerSecond();
    }

    /** HOT share of the api_keys updates the server made in its main run (NaN for none). */
    double mainHotRatio() {
      return afterMain.hotRatioSince(beforeMain);
    }

    /** The run with the most streams against the main run (NaN without one). */
    Scaled most() {
      Scaled most = null;
      for (Scaled s : scaling) {
        if (most == null || s.streams() > most.streams()) {
          most = s;
        }
      }
      return most;
    }

    double mostStreamsRatio() {
      Scaled most = most();
      return most == null
          ? Double.NaN
          : most.run().r().perSecond() / Math.max(1, main.r().perSecond());
    }

    boolean allInDatabase() {
      return rowsInDb == accepted + referenceRows + pgbenchRows;
    }
  }

  private final BenchRun run;
  private long accepted;

  /** {@code acceptedBefore}: reports already acknowledged in this database (the diagnostic's). */
  IngestScenario(BenchRun run, long acceptedBefore) {
    this.run = run;
    this.accepted = acceptedBefore;
  }

  Result run() throws Exception {
    Options o = run.o;
    Options.Scale scale = run.scale;
    int authz = ChildJvm.freePort();
    Map<String, String> env = run.serverEnv(authz, o.pg, "ingest");
    env.putAll(o.ingestEnv);
    ChildJvm server = run.startServerWithAllKeys("server-ingest", env, authz);
    IngestLoad ingest = new IngestLoad(authz, run.reporterToken, scale.ingestKeys());
    // Long enough for the JIT to be done with the usage path: after 4 s, the 8-stream window cost
    // 37 µs of server CPU per report against 8-16 µs in the later runs of the same server.
    Duration jitWarmup = o.smoke ? scale.ingestWarmup() : Duration.ofSeconds(15);
    run.log("ingest: JIT warm-up, " + jitWarmup.toSeconds() + " s");
    TableStats start = stats();
    measure(ingest, scale.ingestStreams(), "warm", scale.ingestWarmup(), jitWarmup);
    if (!o.smoke) {
      settleJit(ingest, scale.ingestStreams());
    }

    TableStats beforeMain = stats();
    Run main =
        measure(ingest, scale.ingestStreams(), "main", scale.ingestWarmup(), scale.ingestMeasure());
    TableStats afterMain = stats();
    run.log(
        "  api_keys updates in the main run HOT: "
            + Report.percent(afterMain.hotRatioSince(beforeMain)));

    int group =
        Integer.parseInt(
            o.ingestEnv.getOrDefault(
                "QUOTA_USAGE_COMMIT_MAX",
                Options.DEFAULT_INGEST_ENV.get("QUOTA_USAGE_COMMIT_MAX")));
    run.log("ingest: JDBC reference, " + scale.ingestStreams() + " writers, groups of " + group);
    JdbcReference.Handle writers =
        JdbcReference.start(
            run.pg.url(run.db),
            o.pgUser,
            scale.ingestStreams(),
            group,
            scale.ingestKeys(),
            "ref",
            scale.ingestWarmup().toNanos(),
            scale.ingestMeasure().toNanos());
    ChildJvm.sleep(scale.ingestWarmup().toMillis());
    Cpu.Snapshot c0 = run.meter.snap();
    ChildJvm.sleep(scale.ingestMeasure().toMillis());
    // Before the writers close their connections, so their backends are still there to count.
    Cpu.Usage refCpu = run.meter.snap().since(c0);
    JdbcReference.Result ref = writers.finish();
    long referenceRows;
    try (Connection c = run.connect()) {
      referenceRows =
          PgAdmin.scalarLong(c, "SELECT count(*) FROM usage_events WHERE report_id LIKE 'ref-%'");
    }
    if (ref.error() != null) {
      run.problems.add("JDBC reference: " + ref.error());
    }
    run.cpuLog.add("ingest JDBC reference: " + refCpu.describe());
    run.log("  reference " + Report.rate(ref.perSecond()));

    run.log("ingest: pgbench reference, one backend, groups of " + group);
    PgbenchReference.Result pgbench =
        PgbenchReference.run(run, group, scale.ingestKeys(), scale.ingestMeasure());
    long pgbenchRows;
    try (Connection c = run.connect()) {
      pgbenchRows =
          PgAdmin.scalarLong(c, "SELECT count(*) FROM usage_events WHERE report_id LIKE 'pgb-%'");
    }
    if (pgbench.error() != null) {
      run.problems.add("pgbench reference: " + pgbench.error());
    }
    run.log("  pgbench " + Report.rate(pgbench.rowsPerSecond()) + " rows");

    List<Scaled> scaling = new ArrayList<>();
    for (int streams : scale.ingestScaling()) {
      scaling.add(
          new Scaled(
              streams,
              measure(
                  ingest,
                  streams,
                  "s" + streams,
                  scale.ingestWarmup(),
                  scale.ingestScalingMeasure())));
    }
    BenchRun.Profile profile = null;
    if (o.profile) {
      run.log("ingest: JFR profile for " + scale.profile().toSeconds() + " s");
      profile =
          run.profile(
              run.serverPid(),
              "ingest",
              "ingest",
              () -> {
                try {
                  return measure(
                          ingest,
                          scale.ingestStreams(),
                          "prof",
                          Duration.ofMillis(500),
                          scale.profile())
                      .r()
                      .perSecond();
                } catch (InterruptedException | SQLException e) {
                  throw new IllegalStateException("ingest profile run failed", e);
                }
              });
    }
    long rowsInDb;
    long upd;
    long hotUpd;
    try (Connection c = run.connect()) {
      rowsInDb = PgAdmin.scalarLong(c, "SELECT count(*) FROM usage_events");
      ChildJvm.sleep(1_000); // table statistics are flushed at most once a second
      upd =
          PgAdmin.scalarLong(
              c, "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'api_keys'");
      hotUpd =
          PgAdmin.scalarLong(
              c, "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'api_keys'");
    }
    TableStats end = stats();
    String explain;
    try (Connection c = run.connect()) {
      explain = GroupExplain.tryRun(c, group, scale.ingestKeys());
    }
    run.log("  tables at start: " + start.describe());
    run.log("  tables at end: " + end.describe());
    run.stopServer(server);
    Result result =
        new Result(
            // A copy in the order given: the report prints it as the settings the server ran with.
            Collections.unmodifiableMap(new LinkedHashMap<>(o.ingestEnv)),
            main,
            ref,
            refCpu,
            group,
            List.copyOf(scaling),
            profile,
            rowsInDb,
            accepted,
            referenceRows,
            upd,
            hotUpd,
            pgbench,
            pgbenchRows,
            start,
            beforeMain,
            afterMain,
            end,
            explain);
    if (!result.allInDatabase()) {
      run.problems.add(
          "usage_events has "
              + rowsInDb
              + " rows, expected "
              + (accepted + referenceRows + pgbenchRows));
    }
    return result;
  }

  /** The tables' statistics once the last writes' counts are flushed (a second). */
  private TableStats stats() throws SQLException {
    ChildJvm.sleep(1_000);
    try (Connection c = run.connect()) {
      return TableStats.read(c);
    }
  }

  /** The server's JIT compilers are quiet below this share of a core. */
  private static final double JIT_QUIET_CORES = 0.05;

  /**
   * Keeps the load on until the server's JIT compilers are quiet (under {@link #JIT_QUIET_CORES}
   * over 2 s), for at most a minute more. After the fixed warm-up, C2 still compiled at 0.58 cores
   * through the main run of some runs and not of others (the ingest server has just filled a
   * million keys), and the 8-stream figure moved from 8,858/s to 23,792/s between runs of the same
   * jar.
   */
  private void settleJit(IngestLoad ingest, int streams) throws InterruptedException {
    long pid = run.serverPid();
    IngestLoad.Run r = ingest.start(streams, "jit");
    long t0 = System.nanoTime();
    long deadline = t0 + TimeUnit.SECONDS.toNanos(60);
    double cores;
    do {
      long c0 = Cpu.compilerNanos(pid);
      long w0 = System.nanoTime();
      ChildJvm.sleep(2_000);
      cores = (double) (Cpu.compilerNanos(pid) - c0) / (System.nanoTime() - w0);
    } while (cores > JIT_QUIET_CORES && System.nanoTime() < deadline);
    IngestLoad.Result res = r.stopAndDrain();
    accepted += res.acceptedTotal();
    if (res.duplicates() + res.rejected() + res.errors() > 0 || !res.allDone()) {
      run.problems.add(
          String.format(
              Locale.ROOT,
              "ingest jit settling: %d duplicates, %d rejected, %d errors%s",
              res.duplicates(),
              res.rejected(),
              res.errors(),
              res.allDone() ? "" : ", streams did not finish"));
    }
    run.log(
        String.format(
            Locale.ROOT,
            "ingest: JIT compilers at %.2f cores after %.0f s more warm-up%s",
            cores,
            (System.nanoTime() - t0) / 1e9,
            cores > JIT_QUIET_CORES ? " (not quiet within a minute)" : ""));
  }

  private Run measure(IngestLoad ingest, int streams, String id, Duration warmup, Duration measure)
      throws InterruptedException, SQLException {
    IngestLoad.Run r = ingest.start(streams, id);
    ChildJvm.sleep(warmup.toMillis());
    long x0 = run.xactCommit();
    Cpu.Snapshot c0 = run.meter.snap();
    r.markStart();
    run.watch(measure, r.acceptedTotal::sum, "ingest " + id);
    r.markEnd();
    Cpu.Usage cpu = run.meter.snap().since(c0);
    long x1 = run.xactCommit();
    IngestLoad.Result res = r.stopAndDrain();
    accepted += res.acceptedTotal();
    if (res.duplicates() + res.rejected() + res.errors() > 0 || !res.allDone()) {
      run.problems.add(
          "ingest "
              + id
              + ": "
              + res.duplicates()
              + " duplicates, "
              + res.rejected()
              + " rejected, "
              + res.errors()
              + " errors"
              + (res.allDone() ? "" : ", streams did not finish"));
    }
    run.cpuLog.add("ingest " + id + " (" + streams + " streams): " + cpu.describe());
    run.log(
        String.format(
            Locale.ROOT,
            "ingest %s: %d streams, %s acked, ack p99 %s",
            id,
            streams,
            Report.rate(res.perSecond()),
            Report.p(res.ackLatency(), 99)));
    return new Run(res, cpu, x1 - x0);
  }
}
