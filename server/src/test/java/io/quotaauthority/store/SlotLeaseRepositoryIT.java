package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.usage.BudgetLeases;
import io.quotaauthority.usage.LeaseStore.Grant;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Concurrency slots (V6) on the real PostgreSQL: the budget's statements on key_slot_leases, and
 * three instances' BudgetLeases.slots holding a cap together.
 */
class SlotLeaseRepositoryIT {
  private static final Duration TTL = Duration.ofMinutes(1);
  private static TestDatabase db;
  private static Transactions tx;
  private static LeaseRepository slots;

  @BeforeAll
  static void createDatabase() {
    db = TestDatabase.create();
    tx = db.transactions();
    slots = new LeaseRepository(tx, LeaseRepository.Resource.SLOTS);
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
  }

  private static long cappedKey(int cap) {
    long id = LeaseRepositoryIT.key(tx, "0", "0");
    tx.inTransaction(
        c -> {
          try (var ps =
              c.prepareStatement("UPDATE api_keys SET max_concurrent_requests = ? WHERE id = ?")) {
            ps.setInt(1, cap);
            ps.setLong(2, id);
            ps.executeUpdate();
          }
          return null;
        });
    return id;
  }

  /** slots_leased equals the sum of the key's slot leases and stays within the cap. */
  private static boolean consistent(long keyId) {
    return (Boolean)
        db.scalar(
            """
            SELECT slots_leased <= max_concurrent_requests
                   AND slots_leased = (SELECT coalesce(sum(slots), 0) FROM key_slot_leases
                                        WHERE key_id = ?)
              FROM api_keys WHERE id = ?""",
            keyId,
            keyId);
  }

  private static int slotsLeased(long keyId) {
    return (Integer) db.scalar("SELECT slots_leased FROM api_keys WHERE id = ?", keyId);
  }

  @Test
  void take_upToTheCap_grantsThenRefusesTooLittle() {
    long key = cappedKey(3);
    Grant g = slots.take(key, "a", new BigDecimal(2), TTL);
    assertThat(g.outcome()).isEqualTo(Grant.Outcome.GRANTED);
    assertThat(g.remaining()).isEqualByComparingTo("1");
    assertThat(g.lease()).isEqualByComparingTo("2");
    assertThat(slots.take(key, "b", new BigDecimal(2), TTL).outcome())
        .isEqualTo(Grant.Outcome.TOO_LITTLE);
    assertThat(slots.take(key, "b", BigDecimal.ONE, TTL).outcome())
        .isEqualTo(Grant.Outcome.GRANTED);
    assertThat(slotsLeased(key)).isEqualTo(3);
    assertThat(consistent(key)).isTrue();
    assertThat(slots.giveBack(key, "a", BigDecimal.ONE)).isEqualByComparingTo("1");
    assertThat(slotsLeased(key)).isEqualTo(2);
    assertThat(consistent(key)).isTrue();
  }

  @Test
  void take_uncappedKey_isUnlimitedAndLeasesNothing() {
    long key = cappedKey(0);
    assertThat(slots.take(key, "a", BigDecimal.ONE, TTL).outcome())
        .isEqualTo(Grant.Outcome.UNLIMITED);
    assertThat(slotsLeased(key)).isZero();
  }

  @Test
  void reapExpired_slotsOfADeadInstance_goBackToTheKey() {
    long key = cappedKey(2);
    slots.take(key, "dead", new BigDecimal(2), Duration.ofMillis(1));
    assertThat(slotsLeased(key)).isEqualTo(2);
    assertThat(slots.reapExpired(Instant.now().plusSeconds(1))).isGreaterThanOrEqualTo(1);
    assertThat(slotsLeased(key)).isZero();
    assertThat(consistent(key)).isTrue();
  }

  @Test
  void slots_threeInstancesRacingOnACapOfFive_neverHoldMoreThanFiveAtOnce() throws Exception {
    long key = cappedKey(5);
    List<BudgetLeases> instances = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      instances.add(
          BudgetLeases.slots(
              slots,
              "instance-" + i,
              8,
              3,
              TTL,
              TTL,
              Clock.systemUTC(),
              BudgetLeases.Recorder.NONE));
    }
    AtomicInteger inFlight = new AtomicInteger();
    AtomicInteger most = new AtomicInteger();
    AtomicInteger admitted = new AtomicInteger();
    AtomicInteger refused = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(12);
    List<Future<?>> done = new ArrayList<>();
    for (int r = 0; r < 60; r++) {
      BudgetLeases at = instances.get(r % 3);
      done.add(
          pool.submit(
              () -> {
                Optional<BudgetLeases.Hold> slot = at.tryHold(key, BigDecimal.ONE);
                if (slot.isEmpty()) {
                  refused.incrementAndGet();
                  return null;
                }
                admitted.incrementAndGet();
                most.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
                Thread.sleep(20);
                inFlight.decrementAndGet();
                at.release(slot.get(), BigDecimal.ZERO);
                return null;
              }));
    }
    for (Future<?> f : done) {
      f.get();
    }
    pool.shutdown();
    assertThat(most.get()).isBetween(1, 5);
    assertThat(admitted.get() + refused.get()).isEqualTo(60);
    assertThat(admitted.get()).isGreaterThanOrEqualTo(5);
    assertThat(consistent(key)).isTrue();
    for (BudgetLeases b : instances) {
      b.close();
    }
    // Every slot went back at close: none held, none leased.
    assertThat(slotsLeased(key)).isZero();
    System.out.printf(
        "slots: %d admitted, %d refused, at most %d in flight%n",
        admitted.get(), refused.get(), most.get());
  }
}
