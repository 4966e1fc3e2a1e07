package io.quotaauthority.bench;

import java.time.Duration;
import java.util.Map;

/**
 * Scenario 4: Check for keys in the database but not in the cache, each once, on a fixed schedule:
 * every call is one cache miss and one database read on the server's key-loader pool.
 */
final class ColdPathScenario {
  /** Keys [from, to) checked once each at {@code rate}; what they cost the database. */
  record Result(
      long from, long to, double rate, CheckLoad.Result r, Map<String, Long> statements) {}

  private final BenchRun run;

  ColdPathScenario(BenchRun run) {
    this.run = run;
  }

  /** Runs scenario 4 on the keys after scenario 1's; null when the database has none. */
  Result run(CheckLoad load, PgProxy proxy) {
    Options.Scale scale = run.scale;
    long from = scale.checkKeys();
    long to = Math.min(scale.totalKeys(), from + scale.coldKeys());
    if (to <= from) {
      return null;
    }
    run.log("cold path: " + (to - from) + " uncached keys at " + Report.rate(scale.coldRate()));
    Map<String, Long> p0 = proxy.snapshot();
    Cpu.Snapshot c0 = run.meter.snap();
    CheckLoad.Session s =
        load.openLoop(
            scale.coldRate(), CheckLoad.sequential(from, to), CheckLoad.EXPECT_BENCH_KEYS);
    s.markStart();
    s.awaitSourceDone(Duration.ofSeconds((long) ((to - from) / scale.coldRate()) + 30));
    s.markEnd();
    s.stopAndDrain();
    Cpu.Snapshot c1 = run.meter.snap();
    Map<String, Long> statements = PgProxy.delta(p0, proxy.snapshot());
    CheckLoad.Result r = s.result();
    run.cpuLog.add("cold path: " + c1.since(c0).describe());
    if (!r.counts().anomalies().isEmpty()) {
      run.problems.add("cold path: " + r.counts().anomalies());
    }
    return new Result(from, to, scale.coldRate(), r, statements);
  }
}
