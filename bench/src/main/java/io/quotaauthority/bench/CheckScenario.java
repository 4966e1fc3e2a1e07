package io.quotaauthority.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Scenario 1: Check with every key cached, quota-authority (a) against a no-op ext_authz (b), in
 * closed-loop rounds (max throughput, CPU per call) and in an open loop at half of each one's max
 * (latency from the intended send time), with the database statements a made meanwhile.
 */
final class CheckScenario {
  /**
   * What scenario 1 measured. {@code quarterA}/{@code quarterB} are the stepped-down open loops,
   * null when the half-load one held; {@code baselineProfile} is null without --profile.
   */
  record Result(
      List<CheckRuns.Measured> a,
      List<CheckRuns.Measured> b,
      CheckRuns.Measured openA,
      CheckRuns.Measured openB,
      CheckRuns.Stepped quarterA,
      CheckRuns.Stepped quarterB,
      GcWatch.Result gcOpenA,
      GcWatch.Result gcOpenB,
      Map<String, Long> statements,
      long coldLoads,
      long xactCommits,
      String anomaliesA,
      String anomaliesB,
      BenchRun.Profile baselineProfile) {
    double maxA() {
      return CheckRuns.median(a);
    }

    double maxB() {
      return CheckRuns.median(b);
    }

    CheckLoad.Result mergedA() {
      return CheckRuns.merge(a);
    }

    CheckLoad.Result mergedB() {
      return CheckRuns.merge(b);
    }

    double cpuA() {
      return CheckRuns.cpuPerCall(a, "server");
    }

    double cpuB() {
      return CheckRuns.cpuPerCall(b, "baseline");
    }

    double ratio() {
      return maxA() / maxB();
    }
  }

  private final BenchRun run;
  private final CheckRuns runs;

  CheckScenario(BenchRun run, CheckRuns runs) {
    this.run = run;
    this.runs = runs;
  }

  /**
   * Runs scenario 1 against {@code load} (the server behind {@code proxy}) and a baseline it
   * starts.
   */
  Result run(CheckLoad load, PgProxy proxy, CheckTemplate template) throws Exception {
    Options o = run.o;
    Options.Scale scale = run.scale;
    int basePort = ChildJvm.freePort();
    Cleanup.Action stopBaseline = run.startBaseline(basePort);

    Duration settle = CheckRuns.min(Duration.ofSeconds(1), scale.warmup());
    CheckLoad.Keys keys = CheckLoad.uniform(scale.checkKeys());
    List<CheckRuns.Measured> a = new ArrayList<>();
    List<CheckRuns.Measured> b = new ArrayList<>();
    CheckRuns.Measured openA;
    CheckRuns.Measured openB;
    CheckRuns.Stepped quarterA = null;
    CheckRuns.Stepped quarterB = null;
    GcWatch.Result gcOpenA;
    GcWatch.Result gcOpenB;
    BenchRun.Profile baselineProfile = null;
    Map<String, Long> p0;
    Map<String, Long> p1;
    long x0;
    long x1;
    long loads0;
    long loads1;
    try (CheckLoad base =
        new CheckLoad(basePort, o.checkChannels, template, CheckRuns.CHECK_DEADLINE)) {
      runs.jitWarmup(load, keys, CheckLoad.EXPECT_BENCH_KEYS, "quota-authority");
      runs.jitWarmup(base, keys, CheckLoad.EXPECT_OK, "baseline");
      p0 = proxy.snapshot();
      loads0 = run.checkMetricsPort > 0 ? BenchRun.coldLoads(run.checkMetricsPort) : -1;
      x0 = run.xactCommit();
      for (int r = 0; r < scale.rounds(); r++) {
        a.add(runs.closed(load, keys, CheckLoad.EXPECT_BENCH_KEYS, settle, scale.measure()));
        b.add(runs.closed(base, keys, CheckLoad.EXPECT_OK, settle, scale.measure()));
        run.log(
            String.format(
                Locale.ROOT,
                "check round %d: quota-authority %s, baseline %s",
                r + 1,
                Report.rate(a.get(r).r().perSecond()),
                Report.rate(b.get(r).r().perSecond())));
      }
      double maxA = CheckRuns.median(a);
      double maxB = CheckRuns.median(b);
      // GC during the open loops, on both sides: pauses are what a p99 at this rate is made of.
      GcWatch gcA = GcWatch.start(run.serverPid(), run.work.resolve("open-a.jfr"));
      openA =
          runs.open(
              load,
              keys,
              CheckLoad.EXPECT_BENCH_KEYS,
              maxA / 2,
              scale.warmup(),
              scale.openMeasure());
      gcOpenA = gcA.stop();
      GcWatch gcB = GcWatch.start(run.baselinePid(), run.work.resolve("open-b.jfr"));
      openB =
          runs.open(base, keys, CheckLoad.EXPECT_OK, maxB / 2, scale.warmup(), scale.openMeasure());
      gcOpenB = gcB.stop();
      // Half of the closed loop's max may not hold in an open loop (each call alone costs more
      // than calls batched 32 to a connection): then step down until a schedule holds.
      if (openA.r().overloaded()) {
        quarterA = runs.stepDown(load, keys, CheckLoad.EXPECT_BENCH_KEYS, maxA, "quota-authority");
      }
      if (openB.r().overloaded()) {
        quarterB = runs.stepDown(base, keys, CheckLoad.EXPECT_OK, maxB, "baseline");
      }
      if (o.profile) {
        // Recorded here, while the baseline runs; rendered after the Check server's own profile.
        baselineProfile =
            run.profile(
                run.baselinePid(),
                "baseline",
                "check-baseline",
                () ->
                    runs.closed(
                            base,
                            keys,
                            CheckLoad.EXPECT_OK,
                            Duration.ofMillis(500),
                            scale.profile())
                        .r()
                        .perSecond());
      }
      run.log(
          String.format(
              Locale.ROOT,
              "check open loop at half load: quota-authority p99 %s, baseline p99 %s",
              Report.p(openA.r().latency(), 99),
              Report.p(openB.r().latency(), 99)));
      p1 = proxy.snapshot();
      loads1 = run.checkMetricsPort > 0 ? BenchRun.coldLoads(run.checkMetricsPort) : -1;
      ChildJvm.sleep(1_500); // pg_stat_database is flushed by backends at most once a second
      x1 = run.xactCommit();
    }
    run.stopBaseline(stopBaseline);

    // The run's conditions, in the order the report has always listed them.
    String anomaliesA = anomalies(a, openA);
    String anomaliesB = anomalies(b, openB);
    if (quarterA != null) {
      run.cpuLog.add("check open loop a, stepped down: " + quarterA.m().cpu().describe());
    }
    if (quarterB != null) {
      run.cpuLog.add("check open loop b, stepped down: " + quarterB.m().cpu().describe());
    }
    for (int r = 0; r < a.size(); r++) {
      run.cpuLog.add("check round " + (r + 1) + " a: " + a.get(r).cpu().describe());
      run.cpuLog.add("check round " + (r + 1) + " b: " + b.get(r).cpu().describe());
    }
    run.cpuLog.add("check open loop a: " + openA.cpu().describe());
    run.cpuLog.add("check open loop b: " + openB.cpu().describe());
    return new Result(
        List.copyOf(a),
        List.copyOf(b),
        openA,
        openB,
        quarterA,
        quarterB,
        gcOpenA,
        gcOpenB,
        PgProxy.delta(p0, p1),
        loads0 < 0 ? -1 : loads1 - loads0,
        x1 - x0,
        anomaliesA,
        anomaliesB,
        baselineProfile);
  }

  /** The anomalies of one side's rounds and open loop, also listed under the run's anomalies. */
  private String anomalies(List<CheckRuns.Measured> rounds, CheckRuns.Measured open) {
    List<String> out = new ArrayList<>();
    for (CheckRuns.Measured m : rounds) {
      if (!m.r().counts().anomalies().isEmpty()) {
        out.add(m.r().counts().anomalies());
      }
    }
    if (!open.r().counts().anomalies().isEmpty()) {
      out.add("open loop: " + open.r().counts().anomalies());
    }
    String s = String.join("; ", out);
    if (!s.isEmpty()) {
      run.problems.add("check: " + s);
    }
    return s;
  }
}
