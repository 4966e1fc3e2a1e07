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
    return new MemoryScenario.Result(
        Map.of(
            "keys",
            1_000L,
            "heapEmpty",
            5_000L,
            "heapFilled",
            5_000L + bytesFilled,
            "heapChecked",
            5_000L + 2 * bytesFilled),
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

  @Test
  void judge_holdsAtOneHundredthOfAStatementPerRequest_metWithNoReason() {
    Targets.Verdict v =
        Targets.judge(Options.parse(new String[0]), null, null, null, holds(100, 0));

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
        Targets.judge(Options.parse(new String[0]), null, null, null, holds(104, 2));

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
        Targets.judge(Options.parse(new String[0]), null, null, memory(300_000), null);

    assertThat(v.targets()).extracting(Targets.Target::result).containsExactly("300 B", "600 B");
    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(true, null);
    assertThat(v.missed()).isEmpty();
  }

  @Test
  void judge_memoryOverThreshold_missedWithReason() {
    Targets.Verdict v =
        Targets.judge(Options.parse(new String[0]), null, null, memory(301_000), null);

    assertThat(v.targets().get(0).met()).isFalse();
    assertThat(v.missed())
        .containsExactly("Cache memory 301 B per key: see the class table in section 3.");
  }

  @Test
  void judge_smokeRun_judgesNothingButListsEveryTarget() {
    Targets.Verdict v =
        Targets.judge(Options.parse(new String[] {"--smoke"}), null, null, memory(301_000), null);

    assertThat(v.targets()).hasSize(2).extracting(Targets.Target::met).containsOnlyNulls();
    assertThat(v.targets().get(0).measure())
        .isEqualTo("heap per cached key (1,000 keys, after apply)");
  }
}
