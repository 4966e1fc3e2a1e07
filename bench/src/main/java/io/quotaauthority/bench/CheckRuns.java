package io.quotaauthority.bench;

import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongToIntFunction;
import org.HdrHistogram.Histogram;

/**
 * How the Check scenarios measure: a closed or open loop of Check calls with the CPU meter read
 * around its measured window, the JIT warm-up every server gets first, and the statistics over
 * rounds. Shared by scenarios 1, 4 and 5, which run on the same server.
 */
final class CheckRuns {
  static final Duration CHECK_DEADLINE = Duration.ofMillis(250);
  static final Duration WARM_DEADLINE = Duration.ofSeconds(5);
  static final int WARM_INFLIGHT = 256;

  /** One measured window: the calls answered in it and the CPU each process group used. */
  record Measured(CheckLoad.Result r, Cpu.Usage cpu) {
    double cpuPerCallMicros(String group) {
      return r.calls() == 0 ? 0 : cpu.of(group) / 1e3 / r.calls();
    }
  }

  /** An open loop stepped down to {@code max / divisor}. */
  record Stepped(Measured m, int divisor) {}

  private final BenchRun run;

  CheckRuns(BenchRun run) {
    this.run = run;
  }

  /**
   * Runs a closed loop until the server answered {@link Options.Scale#jitCalls} calls (or the cap
   * passed): the same JIT warm-up for the server and the baseline, whatever their speed.
   */
  void jitWarmup(CheckLoad load, CheckLoad.Keys keys, LongToIntFunction expect, String who) {
    long t = System.nanoTime();
    // A long deadline: a cold JVM on a busy machine must not time out every call and never warm up.
    CheckLoad.Session s = load.closedLoop(run.o.checkInflight, keys, expect, WARM_DEADLINE);
    long until = t + run.scale.jitCap().toNanos();
    while (s.answered.sum() < run.scale.jitCalls() && System.nanoTime() < until) {
      ChildJvm.sleep(100);
    }
    s.stopAndDrain();
    run.log(
        String.format(
            Locale.ROOT,
            "JIT warm-up of %s: %s calls in %.1f s",
            who,
            Report.num(s.answered.sum()),
            (System.nanoTime() - t) / 1e9));
  }

  Measured closed(
      CheckLoad load,
      CheckLoad.Keys keys,
      LongToIntFunction expect,
      Duration warmup,
      Duration measure) {
    CheckLoad.Session s = load.closedLoop(run.o.checkInflight, keys, expect);
    return measure(s, warmup, measure);
  }

  /**
   * An open loop that ramps up over the warm-up, then holds the rate for the measured window. Its
   * calls carry a long deadline: with Envoy's 250 ms, one stall of this shared machine (another
   * process, a GC pause) became a storm of expired calls the client and server never recovered
   * from, which measures the machine, not the server; the latency from the intended send time still
   * shows every stall.
   */
  Measured open(
      CheckLoad load,
      CheckLoad.Keys keys,
      LongToIntFunction expect,
      double rate,
      Duration warmup,
      Duration measure) {
    CheckLoad.Session s = load.openLoop(rate, warmup, keys, expect, WARM_DEADLINE);
    return measure(s, warmup.plusMillis(500), measure);
  }

  /** Open loops at max/4, max/8, max/16 (4 s each) until one holds; the last one run. */
  Stepped stepDown(
      CheckLoad load, CheckLoad.Keys keys, LongToIntFunction expect, double max, String who) {
    Stepped last = null;
    for (int div = 4; div <= 16; div *= 2) {
      run.log("check: open loop at half load did not hold for " + who + "; trying max/" + div);
      Measured m =
          open(
              load,
              keys,
              expect,
              max / div,
              Duration.ofSeconds(2),
              min(Duration.ofSeconds(4), run.scale.openMeasure()));
      last = new Stepped(m, div);
      if (!m.r.overloaded()) {
        break;
      }
    }
    return last;
  }

  private Measured measure(CheckLoad.Session s, Duration warmup, Duration measure) {
    ChildJvm.sleep(warmup.toMillis());
    Cpu.Snapshot c0 = run.meter.snap();
    s.markStart();
    run.watch(measure, s.answered::sum, "check");
    s.markEnd();
    Cpu.Snapshot c1 = run.meter.snap();
    s.stopAndDrain();
    CheckLoad.Result r = s.result();
    if (r.overloaded()) {
      run.problems.add(
          "an open loop was stopped early: over a second of its schedule was in flight");
    }
    return new Measured(r, c1.since(c0));
  }

  // ---- statistics over rounds ----

  static double median(List<Measured> runs) {
    double[] v = runs.stream().mapToDouble(m -> m.r.perSecond()).sorted().toArray();
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  }

  static double cpuPerCall(List<Measured> runs, String group) {
    long cpu = 0;
    long calls = 0;
    for (Measured m : runs) {
      cpu += m.cpu.of(group);
      calls += m.r.calls();
    }
    return calls == 0 ? 0 : cpu / 1e3 / calls;
  }

  static CheckLoad.Result merge(List<Measured> runs) {
    Histogram lat = new Histogram(3);
    Histogram svc = new Histogram(3);
    CheckLoad.Counts counts = new CheckLoad.Counts();
    long calls = 0;
    double seconds = 0;
    for (Measured m : runs) {
      lat.add(m.r.latency());
      svc.add(m.r.service());
      calls += m.r.calls();
      seconds += m.r.seconds();
      CheckLoad.Counts c = m.r.counts();
      counts.allowed.add(c.allowed.sum());
      counts.forbidden403.add(c.forbidden403.sum());
      counts.exhausted429.add(c.exhausted429.sum());
      counts.unauthenticated401.add(c.unauthenticated401.sum());
      counts.unavailable503.add(c.unavailable503.sum());
      counts.otherCode.add(c.otherCode.sum());
      counts.rpcErrors.add(c.rpcErrors.sum());
      c.failures.forEach(
          (code, n) -> counts.failures.computeIfAbsent(code, k -> new LongAdder()).add(n.sum()));
      counts.wrong.add(c.wrong.sum());
    }
    return new CheckLoad.Result(calls, seconds, lat, svc, counts, false, 0);
  }

  static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }
}
