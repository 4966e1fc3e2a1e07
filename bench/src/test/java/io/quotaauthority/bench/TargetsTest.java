package io.quotaauthority.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
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

  @Test
  void judge_memoryAtThreshold_metWithNoReason() {
    Targets.Verdict v = Targets.judge(Options.parse(new String[0]), null, null, memory(300_000));

    assertThat(v.targets()).extracting(Targets.Target::result).containsExactly("300 B", "600 B");
    assertThat(v.targets()).extracting(Targets.Target::met).containsExactly(true, null);
    assertThat(v.missed()).isEmpty();
  }

  @Test
  void judge_memoryOverThreshold_missedWithReason() {
    Targets.Verdict v = Targets.judge(Options.parse(new String[0]), null, null, memory(301_000));

    assertThat(v.targets().get(0).met()).isFalse();
    assertThat(v.missed())
        .containsExactly("Cache memory 301 B per key: see the class table in section 3.");
  }

  @Test
  void judge_smokeRun_judgesNothingButListsEveryTarget() {
    Targets.Verdict v =
        Targets.judge(Options.parse(new String[] {"--smoke"}), null, null, memory(301_000));

    assertThat(v.targets()).hasSize(2).extracting(Targets.Target::met).containsOnlyNulls();
    assertThat(v.targets().get(0).measure())
        .isEqualTo("heap per cached key (1,000 keys, after apply)");
  }
}
