package io.quotaauthority.store;

import static io.quotaauthority.store.LeaseRepositoryIT.consistent;
import static io.quotaauthority.store.LeaseRepositoryIT.key;
import static io.quotaauthority.store.LeaseRepositoryIT.leased;
import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.usage.BudgetLeases;
import io.quotaauthority.usage.UsageLedger;
import io.quotaauthority.usage.UsageReport;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Three BudgetLeases "instances" (separate objects, their own instance ids) on one PostgreSQL: the
 * key's budget is bounded across all of them, charges settle their holds, a dead instance's lease
 * comes back after its ttl.
 */
class BudgetLeasesIT {
  private static final BigDecimal HOLD = new BigDecimal("0.05");
  private static TestDatabase db;
  private static Transactions tx;
  private static LeaseRepository store;
  private static UsageRepository usage;

  @BeforeAll
  static void createDatabase() {
    db = TestDatabase.create();
    tx = db.transactions();
    store = new LeaseRepository(tx);
    usage = new UsageRepository(tx);
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
  }

  private static BudgetLeases instance(String id, Duration ttl) {
    return new BudgetLeases(
        store, id, new BigDecimal("0.20"), 3, ttl, Duration.ofMinutes(1), Clock.systemUTC());
  }

  private static BigDecimal used(long k) {
    return (BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", k);
  }

  @Test
  void tryHold_threeInstancesManyThreads_admittedNeverAboveTheQuotaAndAllLeasesReturned()
      throws Exception {
    long k = key(tx, "1.00", "0.10");
    List<BudgetLeases> instances =
        List.of(
            instance("inst-a", Duration.ofMinutes(1)),
            instance("inst-b", Duration.ofMinutes(1)),
            instance("inst-c", Duration.ofMinutes(1)));
    AtomicInteger admitted = new AtomicInteger();
    AtomicInteger broken = new AtomicInteger();
    AtomicInteger reports = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(6);
    CountDownLatch go = new CountDownLatch(1);
    List<Future<?>> work = new ArrayList<>();
    for (int i = 0; i < 300; i++) {
      BudgetLeases b = instances.get(i % 3);
      String inst = "inst-" + (char) ('a' + i % 3);
      work.add(
          pool.submit(
              () -> {
                go.await();
                Optional<BudgetLeases.Hold> h = b.tryHold(k, HOLD);
                if (h.isPresent()) {
                  admitted.incrementAndGet();
                  // Charged at its estimate, through the ledger, settling the hold in the charge.
                  String id = "r-" + reports.incrementAndGet();
                  UsageLedger.Committed c =
                      usage.commitGroup(
                          List.of(new UsageReport(id, k, HOLD, "m", "", 1, 1, 0, 0, Instant.now())),
                          Map.of(id, new UsageLedger.HeldBy(inst, HOLD)));
                  b.release(h.get(), c.leaseDrawn().get(id));
                }
                if (!consistent(db, k)) {
                  broken.incrementAndGet();
                }
                return null;
              }));
    }
    go.countDown();
    for (Future<?> f : work) {
      f.get();
    }
    pool.shutdown();
    for (BudgetLeases b : instances) {
      b.close();
    }

    // 0.90 was left: at most 18 holds of 0.05. When the budget runs dry each instance can keep a
    // fragment under one hold's worth (0.05) that the others cannot lease, so more than 0.90 −
    // 3 × 0.05 is admitted: at least 15 holds. (Last runs: 17, 18.)
    assertThat(broken.get()).isZero();
    assertThat(admitted.get()).isBetween(15, 18);
    assertThat(used(k))
        .isEqualByComparingTo(
            HOLD.multiply(BigDecimal.valueOf(admitted.get())).add(new BigDecimal("0.10")));
    assertThat(used(k)).isLessThanOrEqualTo(new BigDecimal("1.00"));
    assertThat(leased(db, k)).isEqualByComparingTo("0");
    assertThat(db.count("SELECT count(*) FROM key_leases WHERE key_id = ?", k)).isZero();
  }

  @Test
  void tryHold_instanceDiesHoldingTheBudget_leaseReapedAfterTheTtlAndLeasedAgain()
      throws Exception {
    long k = key(tx, "0.10", "0");
    BudgetLeases dead = instance("dies", Duration.ofMillis(500));
    BudgetLeases live = instance("lives", Duration.ofMinutes(1));
    assertThat(dead.tryHold(k, new BigDecimal("0.10"))).isPresent();
    assertThat(live.tryHold(k, HOLD)).isEmpty();

    // "dies" is dropped without a give-back or a renewal; once its ttl passed a reaper returns it.
    Thread.sleep(600);
    int reaped = store.reapExpired(Instant.now());

    assertThat(reaped).isEqualTo(1);
    assertThat(leased(db, k)).isEqualByComparingTo("0");
    assertThat(live.tryHold(k, HOLD)).isPresent();
    assertThat(consistent(db, k)).isTrue();
    // The dead instance's own view lapsed too: it cannot admit on the lease it lost, and it leases
    // nothing for a hold its old hold would still stand on (0.05 left, 0.15 needed).
    assertThat(dead.tryHold(k, HOLD)).isEmpty();
    assertThat(db.count("SELECT count(*) FROM key_leases WHERE instance_id = 'dies'")).isZero();
  }
}
