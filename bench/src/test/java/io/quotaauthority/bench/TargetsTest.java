package io.quotaauthority.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.util.List;
import java.util.Map;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;

/** The judgement of the targets, from result records alone: no server, no database. */
class TargetsTest {
  private static MemoryScenario.Result memory(long bytesFilled) {
    return memory(bytesFilled, 2 * bytesFilled);
  }

  private static MemoryScenario.Result memory(long bytesFilled, long bytesChecked) {
    return new MemoryScenario.Result(
        Map.of(
            "keys",
            1_000L,
            "heapEmpty",
            5_000L,
            "heapFilled",
            5_000L + bytesFilled,
            "heapChecked",
            5_000L + bytesChecked),
        List.of(),
        List.of(),
        1_000);
  }

  private static HoldsScenario.Run holdsRun(long admitted, long leaseStatements) {
    HoldsLoad.Counts counts = new HoldsLoad.Counts(admitted, 0, 0, 0, 0, 0, admitted);
    Histogram latency = new Histogram(3);
    latency.recordValue(500_000);
    return new HoldsScenario.Run(
        new HoldsLoad.Result(counts, counts, 1.0, latency, new Histogram(3), true),
        Map.of(
            "(lease statements)", leaseStatements,
            "(lease transactions)", leaseStatements / 4,
            "UPDATE api_keys", leaseStatements / 4),
        new Cpu.Usage(1_000_000_000L, 0, 0, Map.of()));
  }

  private static CheckRuns.Measured checkRound(long calls) {
    return new CheckRuns.Measured(
        new CheckLoad.Result(
            calls, 1.0, new Histogram(3), new Histogram(3), new CheckLoad.Counts(), false, 0),
        new Cpu.Usage(1_000_000_000L, 0, 0, Map.of()));
  }

  private static HoldsScenario.Result holds(long farLeaseStatements, long nearOverQuota) {
    BigDecimal hold = new BigDecimal("0.00015780");
    return new HoldsScenario.Result(
        hold,
        hold,
        28,
        holdsRun(10_000, farLeaseStatements),
        holdsRun(1_000, 6_000),
        new HoldsScenario.Charges(
            10_000,
            10_000,
            BigDecimal.ONE,
            BigDecimal.ONE,
            1_000,
            1_000,
            200,
            nearOverQuota,
            false),
        List.of(checkRound(50_000)),
        List.of(checkRound(40_000)),
        "");
  }

  private static H2load.Measured h2(String what, double rate, double cpu, double p99) {
    return new H2load.Measured(what, rate, 1_000, 0, cpu, p99 / 2, p99, p99 * 2);
  }

  private static H2loadScenario.Result h2load(double checkRate, double checkCpu, double checkP99) {
    return new H2loadScenario.Result(
        List.of(
            h2("check", checkRate - 1_000, checkCpu, 0),
            h2("check", checkRate, checkCpu, 0),
            h2("check", checkRate + 5_000, checkCpu + 1, 0)),
        List.of(
            h2("health", 100_000, 10, 0),
            h2("health", 99_000, 10, 0),
            h2("health", 101_000, 10, 0)),
        List.of(
            h2("check at 25000/s", 25_000, checkCpu, checkP99),
            h2("check at 50000/s", 50_000, checkCpu, checkP99)),
        List.of(h2("health at 25000/s", 25_000, 10, 500), h2("health at 50000/s", 50_000, 10, 500)),
        640,
        "h2load ...",
        "h2load nghttp2/1.52.0",
        null,
        900,
        700);
  }

  @Test
  void judge_h2loadWithinEveryBound_metWithNoReason() {
    Targets.Verdict v =
        Targets.judge(
            Options.parse(new String[0]), Results.NONE.withH2load(h2load(90_000, 11.5, 550)));

    assertThat(v.targets())
        .extracting(Targets.Target::result)
        .containsExactly("0.90", "1.15", "1.10", "1.10");
    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(true, true, true, true);
    assertThat(v.targets().get(0).measure()).contains("90,000/s / 100,000/s");
    assertThat(v.missed()).isEmpty();
  }

  @Test
  void judge_h2loadSlowerAndCostlier_missedWithTheMeasuredReason() {
    Targets.Verdict v =
        Targets.judge(
            Options.parse(new String[0]), Results.NONE.withH2load(h2load(70_000, 16, 700)));

    assertThat(v.targets())
        .extracting(Targets.Target::met)
        .containsExactly(false, false, false, false);
    assertThat(v.missed()).hasSize(1);
    assertThat(v.missed().get(0))
        .startsWith(
            "Check under h2load: 0.70 of health's throughput at 16.0 µs of server CPU per call against health's 10.0 µs (1.60x).");
  }

  @Test
  void judge_h2loadMissing_notMeasuredAndNamed() {
    H2loadScenario.Result missing =
        new H2loadScenario.Result(
            List.of(),
            List.of(),
            List.of(),
            List.of(),
            0,
            "",
            "",
            "h2load not found",
            Double.NaN,
            Double.NaN);
    Targets.Verdict v =
        Targets.judge(Options.parse(new String[0]), Results.NONE.withH2load(missing));
    assertThat(v.targets()).extracting(Targets.Target::result).containsExactly("not measured");
    assertThat(v.missed()).containsExactly("h2load not found");
  }

  @Test
  void percentiles_h2loadLogFile_onlySuccessfulRequestsCounted(
      @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
    StringBuilder log = new StringBuilder();
    for (int i = 1; i <= 1000; i++) {
      log.append(1_700_000_000_000_000L + i)
          .append('\t')
          .append(200)
          .append('\t')
          .append(i)
          .append('\n');
    }
    log.append("1700000000001001\t-1\t999999\n");
    java.nio.file.Path file = java.nio.file.Files.writeString(dir.resolve("h2.log"), log);
    assertThat(H2load.percentiles(file)).containsExactly(500.0, 990.0, 999.0);
  }

  @Test
  void frame_message_grpcLengthPrefixUncompressed(
      @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
    java.nio.file.Path f = H2load.frame(dir.resolve("m.bin"), new byte[] {7, 8, 9});
    assertThat(java.nio.file.Files.readAllBytes(f)).containsExactly(0, 0, 0, 0, 3, 7, 8, 9);
  }

  @Test
  void judge_holdsAtOneHundredthOfAStatementPerRequest_metWithNoReason() {
    Targets.Verdict v =
        Targets.judge(Options.parse(new String[0]), Results.NONE.withHolds(holds(100, 0)));

    assertThat(v.targets())
        .extracting(Targets.Target::result)
        .containsExactly("0.0100", "500 µs / 500 µs", "500 µs / 500 µs", "0 of 200", "1.25");
    assertThat(v.targets())
        .extracting(Targets.Target::met)
        .containsExactly(true, null, null, true, null);
    assertThat(v.missed()).isEmpty();
  }

  @Test
  void judge_holdsOverTheStatementTargetOrPastAQuota_missedWithReasons() {
    Targets.Verdict v =
        Targets.judge(Options.parse(new String[0]), Results.NONE.withHolds(holds(104, 2)));

    assertThat(v.targets().get(0).met()).isFalse();
    assertThat(v.targets().get(3).met()).isFalse();
    assertThat(v.missed()).hasSize(2);
    assertThat(v.missed().get(0))
        .startsWith(
            "Holds far from the limit: 0.0104 lease statements per admitted request (104 in 26"
                + " lease transactions for 10,000 admitted requests: 26 (26 UPDATE api_keys)).");
    assertThat(v.missed().get(1)).startsWith("2 near keys were charged past their quota");
  }

  @Test
  void judge_memoryAtThreshold_metWithNoReason() {
    Targets.Verdict v =
        Targets.judge(
            Options.parse(new String[0]), Results.NONE.withMemory(memory(300_000, 300_000)));

    assertThat(v.targets()).extracting(Targets.Target::result).containsExactly("300 B", "300 B");
    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(true, true);
    assertThat(v.missed()).isEmpty();
  }

  @Test
  void judge_memoryOverThreshold_missedWithReason() {
    Targets.Verdict v =
        Targets.judge(
            Options.parse(new String[0]), Results.NONE.withMemory(memory(301_000, 302_000)));

    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(false, false);
    assertThat(v.missed())
        .containsExactly(
            "Cache memory once checked 302 B per key: see the class table in section 3.",
            "Cache memory 301 B per key: see the class table in section 3.");
  }

  @Test
  void judge_smokeRun_judgesNothingButListsEveryTarget() {
    Targets.Verdict v =
        Targets.judge(
            Options.parse(new String[] {"--smoke"}), Results.NONE.withMemory(memory(301_000)));

    assertThat(v.targets()).hasSize(2).extracting(Targets.Target::met).containsOnlyNulls();
    assertThat(v.targets().get(0).measure())
        .isEqualTo("heap per cached key (1,000 keys, after the start-up fill)");
  }

  private static Targets.Verdict policies(
      double[] none, double[] all, double[] cpuNone, double[] cpuAll) {
    List<H2load.Measured> n = new java.util.ArrayList<>();
    List<H2load.Measured> a = new java.util.ArrayList<>();
    for (int i = 0; i < none.length; i++) {
      n.add(h2("policies none", none[i], cpuNone[i], Double.NaN));
      a.add(h2("policies all", all[i], cpuAll[i], Double.NaN));
    }
    PoliciesScenario.Result r =
        new PoliciesScenario.Result(10_000, new double[0], new double[0], n, a, 1);
    return Targets.judge(Options.parse(new String[0]), Results.NONE.withPolicies(r));
  }

  @Test
  void judge_policiesPairedRoundsWithinFivePercent_metWithNoReason() {
    // The machine drifts between rounds; each pair moves alike: ratios 0.97, 0.96, 0.98.
    Targets.Verdict v =
        policies(
            new double[] {100_000, 60_000, 90_000},
            new double[] {97_000, 57_600, 88_200},
            new double[] {10, 16, 11},
            new double[] {10.5, 16.5, 11.2});

    assertThat(v.targets()).extracting(Targets.Target::result).containsExactly("0.97");
    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(true);
    assertThat(v.targets().get(0).measure()).contains("88,200/s / 90,000/s");
    assertThat(v.missed()).isEmpty();
  }

  @Test
  void judge_policiesCostMoreThanFivePercent_missedWithTheMeasuredReason() {
    Targets.Verdict v =
        policies(
            new double[] {100_000, 100_000, 100_000},
            new double[] {90_000, 86_000, 94_000},
            new double[] {10, 10, 10},
            new double[] {11, 12, 10.5});

    assertThat(v.targets()).extracting(Targets.Target::result).containsExactly("0.90");
    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(false);
    assertThat(v.missed())
        .singleElement()
        .asString()
        .startsWith(
            "Key policies under h2load: 0.90 of the same key's throughput without policy, at 11.0"
                + " against 10.0 µs of server CPU per call (1.10x)");
  }

  @Test
  void judge_policiesWithoutH2load_notMeasuredAndMissed() {
    Targets.Verdict v = policies(new double[0], new double[0], new double[0], new double[0]);

    assertThat(v.targets()).extracting(Targets.Target::result).containsExactly("not measured");
    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(false);
    assertThat(v.missed()).containsExactly("scenario 8: h2load did not run");
  }

  private static PropagationScenario.Kind kind(String change, int lost, double... millis) {
    double[] sorted = millis.clone();
    java.util.Arrays.sort(sorted);
    return new PropagationScenario.Kind(change, sorted, lost);
  }

  @Test
  void judge_propagationP99AtBoundNoneLost_metWithNoReason() {
    double[] hundred = new double[100];
    java.util.Arrays.fill(hundred, 4.0);
    hundred[98] = 100.0; // the second-worst of 100 is the p99
    hundred[99] = 900.0;
    PropagationScenario.Result r =
        new PropagationScenario.Result(
            100,
            1_000,
            "1h",
            List.of(kind("CreateKey", 0, hundred), kind("DeleteKey", 0, 3, 5, 7)));

    Targets.Verdict v =
        Targets.judge(Options.parse(new String[0]), Results.NONE.withPropagation(r));

    assertThat(v.targets()).extracting(Targets.Target::result).containsExactly("100.0 ms");
    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(true);
    assertThat(v.missed()).isEmpty();
  }

  @Test
  void judge_propagationSlowKindOrLostChange_missedNamingEach() {
    PropagationScenario.Result r =
        new PropagationScenario.Result(
            3,
            1_000,
            "1h",
            List.of(
                kind("CreateKey", 0, 3, 4, 5),
                kind("ResetQuota", 0, 3, 4, 120.5),
                kind("DeleteKey", 1, 3, 4)));

    Targets.Verdict v =
        Targets.judge(Options.parse(new String[0]), Results.NONE.withPropagation(r));

    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(false);
    assertThat(v.targets().get(0).result()).isEqualTo("120.5 ms");
    assertThat(v.targets().get(0).measure()).contains("lost: 1");
    assertThat(v.missed())
        .containsExactly(
            "Change propagation: ResetQuota p99 120.5 ms, 0 lost; DeleteKey p99 4.0 ms, 1 lost"
                + " (section 10; a lost change is one B never saw by its notification).");
  }
}
