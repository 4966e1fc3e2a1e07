package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class UsageWindowsTest {
  private static final Instant T0 = Instant.parse("2026-06-01T12:00:30Z");
  private static final long M0 = T0.getEpochSecond() / 60;

  /** A clock the test sets. */
  static final class SetClock extends Clock {
    final AtomicReference<Instant> now = new AtomicReference<>(T0);

    @Override
    public ZoneOffset getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(java.time.ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return now.get();
    }
  }

  private static KeyRecord row(long version, String spent, SpendWindows windows) {
    return new KeyRecord(
        9,
        "w",
        KeyHash.of(new byte[32]),
        "sk-",
        KeyRecord.StoredStatus.ACTIVE,
        BigDecimal.ZERO,
        BigDecimal.ZERO,
        null,
        T0,
        T0,
        null,
        version,
        BigDecimal.ZERO,
        0,
        0,
        BigDecimal.ZERO,
        KeyRecord.HoldExpiry.CHARGE,
        KeyPolicies.NONE.withWindows(windows),
        new BigDecimal(spent),
        0);
  }

  private static final SpendWindows H5 = SpendWindows.of(new BigDecimal("20"), null, null, null);

  private static long[] spent(UsageWindows w, Clock c) {
    long[] out = new long[4];
    w.track(9).spent(c.millis(), out);
    return out;
  }

  @Test
  void follow_historyThenGrowth_countsEachMinuteUntilTheEndOfItsMinutePlusTheWindow() {
    SetClock clock = new SetClock();
    AtomicInteger reads = new AtomicInteger();
    UsageWindows w =
        new UsageWindows(
            (id, now, minutes) -> {
              reads.incrementAndGet();
              assertThat(now).isEqualTo(T0.toEpochMilli());
              assertThat(minutes).isEqualTo(302);
              // 4 USD charged 299 minutes ago, and 3 USD in the current minute.
              return new UsageWindows.Read(
                  new BigDecimal("7"),
                  new long[] {M0 - 299, M0},
                  new long[] {
                    UsageWindows.units(new BigDecimal("4")), UsageWindows.units(new BigDecimal("3"))
                  });
            },
            clock);
    w.follow(row(1, "6", H5)); // older than the history: nothing more
    assertThat(spent(w, clock)[0]).isEqualTo(UsageWindows.units(new BigDecimal("7")));
    w.follow(row(2, "12.5", H5)); // 5.5 more, charged now
    assertThat(reads).hasValue(1);
    assertThat(spent(w, clock)[0]).isEqualTo(UsageWindows.units(new BigDecimal("12.5")));
    assertThat(w.track(9).entries()).isEqualTo(2);

    // The minute M0-299 ends at M0-298; plus 5 h = M0+2 (start): counted until then, not after.
    clock.now.set(Instant.ofEpochSecond((M0 + 2) * 60 - 1));
    assertThat(spent(w, clock)[0]).isEqualTo(UsageWindows.units(new BigDecimal("12.5")));
    clock.now.set(Instant.ofEpochSecond((M0 + 2) * 60));
    assertThat(spent(w, clock)[0]).isEqualTo(UsageWindows.units(new BigDecimal("8.5")));
    clock.now.set(Instant.ofEpochSecond((M0 + 301) * 60));
    assertThat(spent(w, clock)[0]).isZero();
    assertThat(w.track(9).entries()).isZero();
  }

  @Test
  void belowAt_fullWindow_whenEnoughOfItsOldestUsageHasAgedOut() {
    SetClock clock = new SetClock();
    UsageWindows w =
        new UsageWindows(
            (id, now, minutes) ->
                new UsageWindows.Read(
                    new BigDecimal("20"),
                    new long[] {M0 - 100, M0 - 50, M0},
                    new long[] {
                      UsageWindows.units(new BigDecimal("5")),
                      UsageWindows.units(new BigDecimal("10")),
                      UsageWindows.units(new BigDecimal("5"))
                    }),
            clock);
    w.follow(row(1, "20", H5));
    long limit = UsageWindows.units(new BigDecimal("20"));
    UsageWindows.Track t = w.track(9);
    // 20 of 20: the first 5 leaving is enough.
    assertThat(t.belowAt(SpendWindows.Window.H5, limit, 0, clock.millis()))
        .isEqualTo((M0 - 100 + 1 + 300) * 60_000L);
    // With 6 pending, the 10 must go too.
    assertThat(
            t.belowAt(
                SpendWindows.Window.H5,
                limit,
                UsageWindows.units(new BigDecimal("6")),
                clock.millis()))
        .isEqualTo((M0 - 50 + 1 + 300) * 60_000L);
    assertThat(t.figures(clock.millis())[4 + SpendWindows.Window.H5.ordinal()])
        .isEqualTo((M0 - 100 + 1 + 300) * 60_000L);
  }

  @Test
  void figures_twoWindowsSet_spendAndAgeOutsOfThoseOnlyAndNoTokens() {
    SetClock clock = new SetClock();
    UsageWindows w =
        new UsageWindows(
            (id, now, minutes) ->
                new UsageWindows.Read(
                    new BigDecimal("15"),
                    new long[] {M0 - 100, M0},
                    new long[] {
                      UsageWindows.units(new BigDecimal("5")),
                      UsageWindows.units(new BigDecimal("10"))
                    }),
            clock);
    SpendWindows h5d7 = H5.with(SpendWindows.Window.D7, new BigDecimal("100"));
    w.follow(row(1, "15", h5d7));
    UsageWindows.Track t = w.track(9);
    long now = clock.millis();
    long[] f = t.figures(now);

    assertThat(f).hasSize(UsageWindows.Track.FIGURES);
    long fifteen = UsageWindows.units(new BigDecimal("15"));
    // By ordinal: 5h, 1d (none), 7d, 30d (none); then their age-outs; then the tokens.
    assertThat(f)
        .containsExactly(
            fifteen,
            0,
            fifteen,
            0,
            (M0 - 100 + 1 + 300) * 60_000L,
            -1,
            (M0 - 100 + 1 + 7 * 1440) * 60_000L,
            -1,
            0);
    // Once the 5 USD left the 5 hours, only the 10 is counted there and ages out next.
    long later = (M0 - 100 + 1 + 300) * 60_000L;
    long[] g = t.figures(later);
    assertThat(g[0]).isEqualTo(UsageWindows.units(new BigDecimal("10")));
    assertThat(g[4]).isEqualTo((M0 + 1 + 300) * 60_000L);
    assertThat(g[2]).isEqualTo(fifteen);
  }

  @Test
  void follow_longerWindowAdded_historyReadAgain_removed_trackDropped() {
    SetClock clock = new SetClock();
    List<Integer> since = new java.util.ArrayList<>();
    UsageWindows w =
        new UsageWindows(
            (id, now, minutes) -> {
              since.add(minutes);
              return new UsageWindows.Read(BigDecimal.ZERO, new long[0], new long[0]);
            },
            clock);
    w.follow(row(1, "0", H5));
    w.follow(row(2, "0", H5.with(SpendWindows.Window.D7, new BigDecimal("100"))));
    assertThat(since).containsExactly(302, 10082);
    w.follow(row(3, "0", SpendWindows.NONE));
    assertThat(w.track(9)).isNull();
    assertThat(w.size()).isZero();
  }

  @Test
  void units_roundsNothingAndSaturates() {
    assertThat(UsageWindows.units(new BigDecimal("0.00000001"))).isEqualTo(1);
    assertThat(UsageWindows.units(Money.MAX)).isEqualTo(Long.MAX_VALUE);
    assertThat(UsageWindows.saturatedAdd(Long.MAX_VALUE, 1)).isEqualTo(Long.MAX_VALUE);
    assertThat(UsageWindows.usd(150_000_000L)).isEqualByComparingTo("1.5");
  }
}
