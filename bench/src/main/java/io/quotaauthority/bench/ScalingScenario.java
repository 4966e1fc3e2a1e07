package io.quotaauthority.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Scenario 5: the closed loop of scenario 1 with more cached keys, and the warming that caches them
 * (one cold load per key). Its steps below scenario 1's key count run before it, the larger ones
 * after the cold path; this object carries which keys the server has cached in between.
 */
final class ScalingScenario {
  /** One warming step: keys [from, reached) got their cold load (to, if it completed). */
  record Warm(long from, long to, CheckLoad.Result r, Cpu.Usage cpu, String anomalies) {}

  /**
   * One scaling step over the first {@code keys} keys; {@code partialFrom} is the first key not
   * cached because warming was cut short (or MAX_VALUE).
   */
  record Step(int keys, CheckRuns.Measured m, Map<String, Long> statements, long partialFrom) {}

  /** Scenario 5: steps below scenario 1's key count, then those above; warming steps in order. */
  record Result(List<Step> before, List<Step> after, List<Warm> warming, double copySeconds) {}

  private final BenchRun run;
  private final CheckRuns runs;
  private final double copySeconds;
  private final List<Step> before = new ArrayList<>();
  private final List<Step> after = new ArrayList<>();
  private final List<Warm> warming = new ArrayList<>();

  /** Keys [0, warmedUpTo) have been checked once, so the server has them cached. */
  private long warmedUpTo;

  /** The first key index not cached because warming was cut short (or MAX_VALUE). */
  private long partialFrom = Long.MAX_VALUE;

  ScalingScenario(BenchRun run, CheckRuns runs, double copySeconds) {
    this.run = run;
    this.runs = runs;
    this.copySeconds = copySeconds;
  }

  long warmedUpTo() {
    return warmedUpTo;
  }

  /** Keys up to {@code to} were checked by the cold path: they are cached too. */
  void cachedUpTo(long to) {
    warmedUpTo = Math.max(warmedUpTo, to);
  }

  /** Caches keys [warmedUpTo, to) with one cold load each. */
  void warmTo(CheckLoad warm, long to) {
    long from = warmedUpTo;
    run.log(
        "warming the cache: keys "
            + Report.num(from)
            + ".."
            + Report.num(to)
            + " (one cold load each)");
    Cpu.Snapshot c0 = run.meter.snap();
    CheckLoad.Sequential keys = CheckLoad.sequential(from, to);
    CheckLoad.Session s =
        warm.closedLoop(CheckRuns.WARM_INFLIGHT, keys, CheckLoad.EXPECT_BENCH_KEYS);
    s.markStart();
    boolean complete = s.awaitSourceDone(run.o.maxWarm);
    s.markEnd();
    s.stopAndDrain();
    Cpu.Usage cpu = run.meter.snap().since(c0);
    warmedUpTo = keys.reached();
    CheckLoad.Result r = s.result();
    run.cpuLog.add("warming " + from + ".." + to + ": " + cpu.describe());
    String anomalies = r.counts().anomalies();
    if (!complete) {
      anomalies =
          (anomalies.isEmpty() ? "" : anomalies + ", ")
              + "stopped after "
              + run.o.maxWarm.toSeconds()
              + " s (--max-warm) at key "
              + Report.num(warmedUpTo);
      run.problems.add("warming to " + to + " " + anomalies);
      partialFrom = Math.min(partialFrom, warmedUpTo);
    }
    run.log(
        "  "
            + Report.rate(r.perSecond())
            + " cold loads"
            + (anomalies.isEmpty() ? "" : ", " + anomalies));
    warming.add(new Warm(from, to, r, cpu, anomalies));
  }

  /** One scaling step; {@code afterMain} says which side of scenario 1's row it goes. */
  void step(CheckLoad load, PgProxy proxy, int keys, boolean afterMain) {
    Map<String, Long> p0 = proxy.snapshot();
    CheckRuns.Measured m =
        runs.closed(
            load,
            CheckLoad.uniform(keys),
            CheckLoad.EXPECT_BENCH_KEYS,
            run.scale.warmup(),
            run.scale.measure());
    Map<String, Long> statements = PgProxy.delta(p0, proxy.snapshot());
    run.log("scaling: " + Report.num(keys) + " cached keys: " + Report.rate(m.r().perSecond()));
    run.cpuLog.add("scaling " + keys + " keys: " + m.cpu().describe());
    (afterMain ? after : before).add(new Step(keys, m, statements, partialFrom));
  }

  Result result() {
    return new Result(List.copyOf(before), List.copyOf(after), List.copyOf(warming), copySeconds);
  }
}
