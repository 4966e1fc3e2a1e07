package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RefreshPassTest {
  private static final long SECOND = 1_000_000_000L;
  private static final long T0 = 1_000 * SECOND;

  /** So many keys a second that no cache here is slowed by it. */
  private static final long UNCAPPED = Long.MAX_VALUE;

  private static List<Long> ids(int n) {
    return LongStream.rangeClosed(1, n).boxed().toList();
  }

  @Test
  void firstPass_dueOneIntervalAfterStart() {
    RefreshPass<Long> p = new RefreshPass<>(5 * SECOND, UNCAPPED, 5_000, T0);

    assertThat(p.nextDue()).isEqualTo(T0 + 5 * SECOND);
    assertThat(p.due(T0 + 5 * SECOND - 1)).isFalse();
    assertThat(p.due(T0 + 5 * SECOND)).isTrue();
    assertThat(p.betweenPasses()).isTrue();
  }

  /** ids, chunk: the sizes of the chunks a pass takes and when each next one is due (ms in). */
  @ParameterizedTest
  @CsvSource(
      delimiter = ';',
      value = {
        // One chunk or less: the whole cache once per interval, as the old bulk refresh.
        "1; 5000; 1; 5000",
        "5000; 5000; 5000; 5000",
        // Three chunks spread over the interval: a third of the way, two thirds, then next pass.
        "12000; 5000; 5000,5000,2000; 1666,3333,5000",
        // A million keys: 200 chunks of 5,000, one every 25 ms, or 1,000 of 1,000 every 5 ms.
        "1000000; 5000; 5000*200; 25*200",
        "1000000; 1000; 1000*1000; 5*1000",
      })
  void take_chunksSpreadEvenlyOverTheInterval(int n, int chunk, String sizes, String dueMillis) {
    RefreshPass<Long> p = new RefreshPass<>(5 * SECOND, UNCAPPED, chunk, T0);
    long passStart = T0 + 5 * SECOND;
    assertThat(p.start(ids(n), passStart)).isEqualTo(1);
    List<Integer> took = new ArrayList<>();
    List<Long> due = new ArrayList<>();
    List<Long> seen = new ArrayList<>();
    do {
      List<Long> c = p.take();
      took.add(c.size());
      seen.addAll(c);
      due.add((p.nextDue() - passStart) / 1_000_000);
    } while (!p.betweenPasses());

    assertThat(seen).as("every cached id once, in order").isEqualTo(ids(n));
    assertThat(took).isEqualTo(expand(sizes).stream().map(Long::intValue).toList());
    List<Long> expectedDue = expand(dueMillis);
    if (dueMillis.contains("*")) {
      // "25*200": the k-th chunk's successor is due at 25 ms x k.
      long step = expectedDue.get(0);
      expectedDue =
          LongStream.rangeClosed(1, expectedDue.size()).map(k -> step * k).boxed().toList();
    }
    assertThat(due).isEqualTo(expectedDue);
  }

  private static List<Long> expand(String spec) {
    List<Long> out = new ArrayList<>();
    for (String part : spec.split(",")) {
      if (part.contains("*")) {
        String[] v = part.split("\\*");
        for (int i = 0; i < Integer.parseInt(v[1]); i++) {
          out.add(Long.parseLong(v[0]));
        }
      } else {
        out.add(Long.parseLong(part));
      }
    }
    return out;
  }

  /**
   * keys, keys a second: the pass's length (s) and when its first chunk's successor is due (ms).
   */
  @ParameterizedTest
  @CsvSource({
    // Within the rate: the interval, as without a cap.
    "100000, 20000, 5, 50",
    "1000, 20000, 5, 5000",
    // A million keys at the default 20,000 a second: 50 s a pass, a chunk of 1,000 every 50 ms.
    "1000000, 20000, 50, 50",
    "1000000, 1000, 1000, 1000",
  })
  void take_moreKeysThanTheRateAllows_passLastsKeysOverRate(
      int n, long perSecond, long passSeconds, long firstDueMillis) {
    RefreshPass<Long> p = new RefreshPass<>(5 * SECOND, perSecond, 1_000, T0);
    long start = T0 + 5 * SECOND;
    p.start(ids(n), start);

    p.take();
    assertThat((p.nextDue() - start) / 1_000_000).isEqualTo(firstDueMillis);
    while (!p.betweenPasses()) {
      p.take();
    }
    assertThat(p.nextDue() - start).isEqualTo(passSeconds * SECOND);
  }

  @Test
  void take_emptyCache_nextPassOneIntervalLaterNoBusyLoop() {
    RefreshPass<Long> p = new RefreshPass<>(5 * SECOND, UNCAPPED, 5_000, T0);
    long start = T0 + 5 * SECOND;
    p.start(List.of(), start);

    assertThat(p.take()).isEmpty();
    assertThat(p.betweenPasses()).isTrue();
    assertThat(p.nextDue()).isEqualTo(start + 5 * SECOND);
    assertThat(p.due(start + 1)).isFalse();
  }

  @Test
  void take_passOverran_nextChunkDueAtOnceAndNextPassStartsLate() {
    RefreshPass<Long> p = new RefreshPass<>(5 * SECOND, UNCAPPED, 2, T0);
    long start = T0 + 5 * SECOND;
    p.start(ids(4), start);
    p.take();
    // The first chunk's query took 4 s, past the second chunk's slot (2.5 s in): due at once.
    assertThat(p.due(start + 4 * SECOND)).isTrue();
    p.take();
    assertThat(p.betweenPasses()).isTrue();
    // The next pass is due one interval after this one started, whenever this one ended.
    assertThat(p.nextDue()).isEqualTo(start + 5 * SECOND);
    assertThat(p.start(ids(4), start + 6 * SECOND)).isEqualTo(2);
    p.take();
    assertThat(p.nextDue()).isEqualTo(start + 6 * SECOND + 5 * SECOND / 2);
  }

  @Test
  void ran_chunkQuerySlowerThanItsSlot_nextNoSoonerThanThatLongAfter() {
    RefreshPass<Long> p = new RefreshPass<>(5 * SECOND, UNCAPPED, 1_000, T0);
    long start = T0 + 5 * SECOND;
    p.start(ids(1_000_000), start);
    p.take(); // the next slot is 5 ms in
    // The query took 40 ms: the next chunk waits another 40 ms, the notifications get them.
    p.ran(start, start + 40_000_000);
    assertThat(p.nextDue()).isEqualTo(start + 80_000_000);
    // Behind schedule (the slot was 10 ms in), each chunk waits as long as its query took.
    p.take();
    p.ran(start + 80_000_000, start + 81_000_000);
    assertThat(p.nextDue()).isEqualTo(start + 82_000_000);
    // On schedule again (a chunk run early in its slot), the even schedule stands.
    RefreshPass<Long> q = new RefreshPass<>(5 * SECOND, UNCAPPED, 1_000, T0);
    q.start(ids(1_000_000), start);
    q.take(); // next slot 5 ms in
    q.ran(start, start + 1_000_000); // a 1 ms query: 2 ms in is before the slot
    assertThat(q.nextDue()).isEqualTo(start + 5_000_000);
  }

  @Test
  void start_idsChangedAfterwards_passKeepsItsOwnCopy() {
    RefreshPass<Long> p = new RefreshPass<>(SECOND, UNCAPPED, 2, T0);
    List<Long> cached = new ArrayList<>(ids(3));
    p.start(cached, T0);
    cached.clear();

    assertThat(p.take()).containsExactly(1L, 2L);
    assertThat(p.take()).containsExactly(3L);
  }

  @Test
  void new_nonPositiveIntervalRateOrChunk_refused() {
    assertThatThrownBy(() -> new RefreshPass<Long>(0, 1, 1, T0))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new RefreshPass<Long>(SECOND, 0, 1, T0))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new RefreshPass<Long>(SECOND, 1, 0, T0))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
