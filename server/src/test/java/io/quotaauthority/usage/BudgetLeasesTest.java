package io.quotaauthority.usage;

import static io.quotaauthority.usage.MemoryLeaseStore.usd;
import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** BudgetLeases over an in-memory lease store: slices, the edge, release, give-back, expiry. */
class BudgetLeasesTest {
  private static final Duration TTL = Duration.ofSeconds(30);
  private static final Duration IDLE = Duration.ofSeconds(10);
  private static final long KEY = 7;

  /** A clock the test moves by hand. */
  static final class HandClock extends Clock {
    private Instant now = Instant.parse("2026-12-01T00:00:00Z");

    synchronized void advance(Duration d) {
      now = now.plus(d);
    }

    @Override
    public synchronized Instant instant() {
      return now;
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }
  }

  private final HandClock clock = new HandClock();
  private final MemoryLeaseStore store = new MemoryLeaseStore(clock);

  private BudgetLeases instance(String id, String maxSlice, int hint) {
    return new BudgetLeases(store, id, new BigDecimal(maxSlice), hint, TTL, IDLE, clock);
  }

  @ParameterizedTest(name = "need {0}, remaining {1}, max {2}, {3} instances -> {4}")
  @CsvSource({
    // Unknown remaining: the first ask is just the need (the answer tells the remaining).
    "0.05, , 0.50, 3, 0.05",
    "2.00, , 0.50, 3, 2.00",
    // Far from the edge: capped at maxSlice.
    "0.05, 100, 0.50, 3, 0.50",
    // remaining / (2 x 3) = 0.16666666 (rounded down), below maxSlice.
    "0.05, 1.00, 0.50, 3, 0.16666666",
    // Near the edge the share drops below the need: exactly the need.
    "0.05, 0.20, 0.50, 3, 0.05",
    "0.05, 0.05, 0.50, 3, 0.05",
    // A need larger than maxSlice is asked whole.
    "2.00, 100, 0.50, 1, 2.00",
    // Nothing needed (a hold of zero over an overdrawn lease) still asks the smallest amount.
    "0, 0, 0.50, 1, 0.00000001",
  })
  void slice_needAndRemaining_policy(
      String need, String remaining, String max, int hint, String expected) {
    BudgetLeases b = instance("a", max, hint);

    BigDecimal slice =
        b.slice(new BigDecimal(need), remaining == null ? null : new BigDecimal(remaining));

    assertThat(slice).isEqualByComparingTo(expected);
  }

  @Test
  void tryHold_leaseCoversIt_noRoundTrip() {
    store.key(KEY, "100", "0");
    BudgetLeases b = instance("a", "1.00", 1);

    for (int i = 0; i < 21; i++) {
      assertThat(b.tryHold(KEY, usd("0.05"))).isPresent();
    }

    // The first hold leased its need and learnt the remaining; the second leased maxSlice (1.00),
    // which covers it and the 19 after it.
    assertThat(store.takes).isEqualTo(2);
    assertThat(store.lease(KEY, "a")).isEqualByComparingTo("1.05");
    assertThat(b.leaseAndHeld(KEY)[1]).isEqualByComparingTo("1.05");
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void tryHold_toTheEdge_admitsExactlyTheQuotaAndThenRefuses() {
    store.key(KEY, "1.00", "0.10");
    BudgetLeases b = instance("a", "0.50", 1);

    int admitted = 0;
    while (b.tryHold(KEY, usd("0.05")).isPresent()) {
      admitted++;
      assertThat(store.consistent(KEY)).isTrue();
      assertThat(admitted).isLessThanOrEqualTo(18);
    }

    // 0.90 left: exactly 18 holds of 0.05, the last slices one hold each.
    assertThat(admitted).isEqualTo(18);
    assertThat(store.leased(KEY)).isEqualByComparingTo("0.90");
    assertThat(b.tryHold(KEY, usd("0.00000001"))).isEmpty();
  }

  @Test
  void tryHold_storeJustSaidLessThanTheNeedRemains_refusedWithoutAskingAgainUntilTheAnswerIsOld() {
    store.key(KEY, "1.00", "0");
    BudgetLeases other = instance("other", "0.50", 1);
    BudgetLeases.Hold big = other.tryHold(KEY, usd("0.97")).orElseThrow();
    BudgetLeases b = instance("a", "0.50", 1);
    assertThat(b.tryHold(KEY, usd("0.05"))).isEmpty();
    int takes = store.takes;

    // A key at its edge: every request is refused, and none but the first costs a round trip ...
    for (int i = 0; i < 100; i++) {
      assertThat(b.tryHold(KEY, usd("0.05"))).isEmpty();
    }
    assertThat(store.takes).isEqualTo(takes);
    // ... while a hold the answer's remaining (0.03) covers still asks and is admitted.
    assertThat(b.tryHold(KEY, usd("0.02"))).isPresent();
    assertThat(store.takes).isEqualTo(takes + 1);

    // Budget comes back (the other instance's lease, idle): refused a moment longer, at most
    // REMAINING_FRESH, then the store is asked again.
    other.release(big, BigDecimal.ZERO);
    other.giveBackIdle();
    assertThat(b.tryHold(KEY, usd("0.05"))).isEmpty();
    clock.advance(BudgetLeases.REMAINING_FRESH);
    assertThat(b.tryHold(KEY, usd("0.05"))).isPresent();
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void tryHold_estimateExactlyTheRemaining_admittedAndOneUnitMoreIsNot() {
    store.key(KEY, "1.00", "0.75");

    assertThat(instance("a", "0.50", 1).tryHold(KEY, usd("0.25000001"))).isEmpty();
    assertThat(instance("b", "0.50", 1).tryHold(KEY, usd("0.25"))).isPresent();
    assertThat(store.leased(KEY)).isEqualByComparingTo("0.25");
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void tryHold_threeInstancesInterleaved_neverMoreThanTheQuota() {
    store.key(KEY, "1.00", "0");
    List<BudgetLeases> instances =
        List.of(instance("a", "0.50", 3), instance("b", "0.50", 3), instance("c", "0.50", 3));

    int[] admitted = new int[3];
    for (int i = 0; i < 300; i++) {
      if (instances.get(i % 3).tryHold(KEY, usd("0.05")).isPresent()) {
        admitted[i % 3]++;
      }
      assertThat(store.consistent(KEY)).isTrue();
    }

    // Never more than 20 x 0.05 = 1.00. At the edge each instance may keep a fragment of its lease
    // smaller than one hold that another instance's hold would need (each refused: its fragment
    // plus the store's remaining < 0.05, so all of them together < 0.15): at least 18 admitted.
    int total = admitted[0] + admitted[1] + admitted[2];
    assertThat(total).isBetween(18, 20);
    // Shared: no instance leased the whole budget before the others asked.
    assertThat(admitted).doesNotContain(0);
    assertThat(store.leased(KEY)).isLessThanOrEqualTo(usd("1.00"));
  }

  @Test
  void release_chargedWithinHold_leaseShrinksByTheChargeAndTheRestIsFree() {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.10", 1);
    BudgetLeases.Hold h = b.tryHold(KEY, usd("0.10")).orElseThrow();

    BigDecimal drawn = store.charge(KEY, "a", usd("0.04"), h.amount());
    b.release(h, drawn);

    assertThat(drawn).isEqualByComparingTo("0.04");
    assertThat(b.leaseAndHeld(KEY)).containsExactly(usd("0.06"), usd("0"));
    assertThat(store.lease(KEY, "a")).isEqualByComparingTo("0.06");
    // The 0.06 left is admitted without a round trip.
    int takes = store.takes;
    assertThat(b.tryHold(KEY, usd("0.06"))).isPresent();
    assertThat(store.takes).isEqualTo(takes);
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void tryHold_chargeDrawnBeforeItsHoldIsReleasedAndANewSliceTaken_countsTheDrawOnce() {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.05", 1);
    BudgetLeases.Hold first = b.tryHold(KEY, usd("0.05")).orElseThrow();
    // The charge commits (drawing on the stored lease) before the hold is released here, and
    // meanwhile another hold leases a new slice.
    BigDecimal drawn = store.charge(KEY, "a", usd("0.05"), first.amount());
    BudgetLeases.Hold second = b.tryHold(KEY, usd("0.05")).orElseThrow();
    b.release(first, drawn);

    assertThat(b.leaseAndHeld(KEY)[0]).isEqualByComparingTo(store.lease(KEY, "a"));
    b.release(second, store.charge(KEY, "a", usd("0.05"), second.amount()));
    assertThat(b.leaseAndHeld(KEY)).containsExactly(usd("0"), usd("0"));
    assertThat(store.lease(KEY, "a")).isEqualByComparingTo("0");
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void release_chargedOverHold_drawsOnlyTheHold() {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.20", 1);
    // A lease of 0.20 (the first ask is its hold's need), then a hold of 0.05 on it.
    b.release(b.tryHold(KEY, usd("0.20")).orElseThrow(), BigDecimal.ZERO);
    BudgetLeases.Hold h = b.tryHold(KEY, usd("0.05")).orElseThrow();

    BigDecimal drawn = store.charge(KEY, "a", usd("0.08"), h.amount());
    b.release(h, drawn);

    // The 0.03 over the estimate is charged but never taken from the budget other holds stand on.
    assertThat(drawn).isEqualByComparingTo("0.05");
    assertThat(store.used(KEY)).isEqualByComparingTo("0.08");
    assertThat(b.leaseAndHeld(KEY)).containsExactly(usd("0.15"), usd("0"));
  }

  @Test
  void release_withoutUsage_holdFreedAndLeaseKept() {
    store.key(KEY, "0.05", "0");
    BudgetLeases b = instance("a", "0.50", 1);
    BudgetLeases.Hold h = b.tryHold(KEY, usd("0.05")).orElseThrow();
    assertThat(b.tryHold(KEY, usd("0.05"))).isEmpty();

    b.release(h, BigDecimal.ZERO);

    assertThat(b.leaseAndHeld(KEY)).containsExactly(usd("0.05"), usd("0"));
    assertThat(b.tryHold(KEY, usd("0.05"))).isPresent();
  }

  @Test
  void maintain_idleWithoutHolds_givesTheWholeLeaseBack() {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.50", 1);
    BudgetLeases.Hold h = b.tryHold(KEY, usd("0.05")).orElseThrow();
    b.release(h, BigDecimal.ZERO);

    clock.advance(IDLE.minusSeconds(1));
    b.maintain();
    assertThat(store.leased(KEY)).isEqualByComparingTo("0.05");

    clock.advance(Duration.ofSeconds(1));
    b.maintain();
    assertThat(store.leased(KEY)).isEqualByComparingTo("0");
    assertThat(b.leaseAndHeld(KEY)).containsExactly(BigDecimal.ZERO, BigDecimal.ZERO);
  }

  @Test
  void maintain_idleWithAHoldOut_keepsTheLease() {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.50", 1);
    b.tryHold(KEY, usd("0.05")).orElseThrow();

    clock.advance(IDLE.plusSeconds(1));
    b.maintain();

    assertThat(store.lease(KEY, "a")).isEqualByComparingTo("0.05");
  }

  @Test
  void maintain_deadInstance_itsLeaseIsReapedAfterTheTtlAndLeasedAgain() {
    store.key(KEY, "1.00", "0");
    BudgetLeases dead = instance("dead", "1.00", 1);
    BudgetLeases live = instance("live", "1.00", 1);
    // The first hold leases its need, the second the rest: "dead" holds the whole budget.
    dead.tryHold(KEY, usd("0.05")).orElseThrow();
    dead.tryHold(KEY, usd("0.95")).orElseThrow();
    assertThat(live.tryHold(KEY, usd("0.05"))).isEmpty();

    // "dead" never runs maintain again; "live" reaps once the ttl and the grace have passed.
    clock.advance(TTL);
    live.maintain();
    assertThat(store.leased(KEY)).isEqualByComparingTo("1.00");
    clock.advance(BudgetLeases.REAP_GRACE);
    live.maintain();

    assertThat(store.leased(KEY)).isEqualByComparingTo("0");
    assertThat(live.tryHold(KEY, usd("0.05"))).isPresent();
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void tryHold_ownLeasePastItsValidity_notAdmittedOnWithoutAskingAgain() {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.50", 1);
    b.release(b.tryHold(KEY, usd("0.05")).orElseThrow(), BigDecimal.ZERO);

    // No renewal ran (the store was away, say): the lease may be reaped, so it is not trusted.
    clock.advance(TTL.plus(BudgetLeases.REAP_GRACE));
    store.reapExpired(clock.instant());
    int takes = store.takes;
    Optional<BudgetLeases.Hold> h = b.tryHold(KEY, usd("0.05"));

    assertThat(h).isPresent();
    assertThat(store.takes).isEqualTo(takes + 1);
    assertThat(store.lease(KEY, "a")).isEqualByComparingTo(b.leaseAndHeld(KEY)[0]);
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void maintain_renewal_extendsTheLeaseSoItIsNotReaped() {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.50", 1);
    // The first hold leases 0.05 and learns the remaining (0.95); the second a slice of it,
    // min(0.50, 0.95 / 2) = 0.475.
    b.tryHold(KEY, usd("0.05")).orElseThrow();
    b.tryHold(KEY, usd("0.05")).orElseThrow();

    for (int i = 0; i < 6; i++) {
      clock.advance(TTL.dividedBy(3));
      b.maintain();
    }

    // Two ttls later the lease is still there, and still admitted on without a round trip.
    assertThat(store.lease(KEY, "a")).isEqualByComparingTo("0.525");
    int takes = store.takes;
    assertThat(b.tryHold(KEY, usd("0.05"))).isPresent();
    assertThat(store.takes).isEqualTo(takes);
  }

  @Test
  void maintain_renewalBetweenAChargeAndItsHoldsRelease_countsTheDrawOnce() {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.50", 1);
    b.release(b.tryHold(KEY, usd("0.20")).orElseThrow(), BigDecimal.ZERO);
    BudgetLeases.Hold h = b.tryHold(KEY, usd("0.05")).orElseThrow();
    // The charge commits (0.02 off the stored lease); the renewal reads the stored lease before
    // the hold is released here with what it drew.
    BigDecimal drawn = store.charge(KEY, "a", usd("0.02"), h.amount());
    clock.advance(TTL.dividedBy(3));
    b.maintain();
    b.release(h, drawn);

    // Not 0.16: the draw left the lease once, not at the renewal and again at the release.
    assertThat(b.leaseAndHeld(KEY)).containsExactly(usd("0.18"), usd("0"));
    assertThat(store.lease(KEY, "a")).isEqualByComparingTo("0.18");
    // So the whole rest of the budget is still admitted: 0.18 here and 0.80 unleased.
    assertThat(b.tryHold(KEY, usd("0.98"))).isPresent();
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void maintain_sliceGrantedWhileTheRenewalIsOnItsWay_keptNotUndoneByTheOlderAnswer() {
    store.key(KEY, "1.00", "0");
    BudgetLeases[] b = new BudgetLeases[1];
    // The renewal reads the store, and before its answer is applied here a hold leases a slice.
    LeaseStore racing =
        new LeaseStore() {
          @Override
          public Grant take(long keyId, String instanceId, BigDecimal slice, Duration ttl) {
            return store.take(keyId, instanceId, slice, ttl);
          }

          @Override
          public BigDecimal giveBack(long keyId, String instanceId, BigDecimal amount) {
            return store.giveBack(keyId, instanceId, amount);
          }

          @Override
          public Map<Long, BigDecimal> renew(String instanceId, Duration ttl) {
            Map<Long, BigDecimal> answer = store.renew(instanceId, ttl);
            assertThat(b[0].tryHold(KEY, usd("0.05"))).isPresent();
            return answer;
          }

          @Override
          public int reapExpired(Instant now) {
            return store.reapExpired(now);
          }
        };
    b[0] = new BudgetLeases(racing, "a", usd("0.50"), 1, TTL, IDLE, clock);
    b[0].tryHold(KEY, usd("0.05")).orElseThrow();
    clock.advance(TTL.dividedBy(3));

    b[0].maintain();

    // 0.05, then a slice of min(0.50, 0.95 / 2): the renewal's older answer (0.05) undoes nothing.
    assertThat(b[0].leaseAndHeld(KEY)).containsExactly(usd("0.525"), usd("0.10"));
    assertThat(store.lease(KEY, "a")).isEqualByComparingTo("0.525");
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void maintain_leaseReapedWhileAway_shrinksToWhatTheStoreHas() {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.50", 1);
    b.tryHold(KEY, usd("0.05")).orElseThrow();
    store.reapExpired(clock.instant().plus(TTL));

    clock.advance(TTL.dividedBy(3));
    b.maintain();

    assertThat(b.leaseAndHeld(KEY)[0]).isEqualByComparingTo("0");
    assertThat(store.consistent(KEY)).isTrue();
  }

  @Test
  void tryHold_unlimitedKey_unbackedHoldAndNothingLeased() {
    store.key(KEY, "0", "5");
    BudgetLeases b = instance("a", "0.50", 1);

    BudgetLeases.Hold h = b.tryHold(KEY, usd("0.05")).orElseThrow();
    b.release(h, usd("0.05"));

    assertThat(h.backed()).isFalse();
    assertThat(store.leased(KEY)).isEqualByComparingTo("0");
  }

  @Test
  void tryHold_noSuchKey_empty() {
    assertThat(instance("a", "0.50", 1).tryHold(99, usd("0.05"))).isEmpty();
  }

  @Test
  void tryHold_concurrentHoldsOnOneInstance_heldNeverAboveLease() throws Exception {
    store.key(KEY, "1.00", "0");
    BudgetLeases b = instance("a", "0.20", 1);
    List<Thread> threads = new ArrayList<>();
    int[] admitted = new int[4];
    for (int t = 0; t < 4; t++) {
      int me = t;
      threads.add(
          new Thread(
              () -> {
                for (int i = 0; i < 50; i++) {
                  if (b.tryHold(KEY, usd("0.05")).isPresent()) {
                    admitted[me]++;
                  }
                }
              }));
    }
    threads.forEach(Thread::start);
    for (Thread t : threads) {
      t.join();
    }

    assertThat(admitted[0] + admitted[1] + admitted[2] + admitted[3]).isEqualTo(20);
    assertThat(b.leaseAndHeld(KEY)).containsExactly(usd("1.00"), usd("1.00"));
    assertThat(store.consistent(KEY)).isTrue();
  }
}
