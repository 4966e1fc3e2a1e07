package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.keys.Secrets;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.usage.LeaseStore.Grant;
import io.quotaauthority.usage.UsageLedger;
import io.quotaauthority.usage.UsageReport;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** key_leases and api_keys.leased on the real PostgreSQL: grants, give-back, renewal, reaping. */
class LeaseRepositoryIT {
  private static final Duration TTL = Duration.ofMinutes(1);
  private static TestDatabase db;
  private static Transactions tx;
  private static KeyRepository keys;
  private static LeaseRepository leases;
  private static UsageRepository usage;

  @BeforeAll
  static void createDatabase() {
    db = TestDatabase.create();
    tx = db.transactions();
    keys = new KeyRepository(tx);
    leases = new LeaseRepository(tx);
    usage = new UsageRepository(tx);
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
  }

  static long key(Transactions tx, String quota, String used) {
    String secret = Secrets.newSecret();
    KeyRecord k =
        tx.inTransaction(
            c ->
                new KeyRepository(tx)
                    .insert(
                        c,
                        "lease",
                        SecretHasher.hash(secret),
                        Secrets.displayPrefix(secret),
                        new BigDecimal(quota),
                        null));
    if (new BigDecimal(used).signum() > 0) {
      tx.inTransaction(
          c -> {
            try (var ps = c.prepareStatement("UPDATE api_keys SET quota_used = ? WHERE id = ?")) {
              ps.setBigDecimal(1, new BigDecimal(used));
              ps.setLong(2, k.id());
              ps.executeUpdate();
            }
            return null;
          });
    }
    return k.id();
  }

  /** The invariant, checked by the database itself: used + leased within quota, leased = Σ. */
  static boolean consistent(TestDatabase db, long keyId) {
    return (Boolean)
        db.scalar(
            """
            SELECT quota_used + leased <= quota
                   AND leased = (SELECT coalesce(sum(amount), 0) FROM key_leases WHERE key_id = ?)
              FROM api_keys WHERE id = ?""",
            keyId,
            keyId);
  }

  static BigDecimal leased(TestDatabase db, long keyId) {
    return (BigDecimal) db.scalar("SELECT leased FROM api_keys WHERE id = ?", keyId);
  }

  private static BigDecimal lease(long keyId, String instance) {
    Object v =
        db.scalar(
            "SELECT amount FROM key_leases WHERE key_id = ? AND instance_id = ?", keyId, instance);
    return v == null ? null : (BigDecimal) v;
  }

  private static UsageReport report(String id, long keyId, String cost) {
    return new UsageReport(
        id,
        keyId,
        new BigDecimal(cost),
        "m",
        "",
        1,
        1,
        0,
        0,
        Instant.parse("2026-12-01T00:00:00Z"));
  }

  @Test
  void take_enoughLeft_grantedAndLeasedGrows() {
    long k = key(tx, "1.00", "0.10");

    Grant g = leases.take(k, "a", new BigDecimal("0.30"), TTL);

    assertThat(g.outcome()).isEqualTo(Grant.Outcome.GRANTED);
    assertThat(g.remaining()).isEqualByComparingTo("0.60");
    assertThat(g.lease()).isEqualByComparingTo("0.30");
    assertThat(leased(db, k)).isEqualByComparingTo("0.30");
    assertThat(consistent(db, k)).isTrue();
  }

  @Test
  void take_twice_addsToOneLeaseAndExtendsIt() {
    long k = key(tx, "1.00", "0");
    leases.take(k, "a", new BigDecimal("0.30"), Duration.ofSeconds(10));

    Grant g = leases.take(k, "a", new BigDecimal("0.20"), TTL);

    assertThat(g.lease()).isEqualByComparingTo("0.50");
    assertThat(db.count("SELECT count(*) FROM key_leases WHERE key_id = ?", k)).isEqualTo(1);
    assertThat(
            (Boolean)
                db.scalar(
                    "SELECT expires_at > now() + interval '50 seconds' FROM key_leases WHERE key_id = ?",
                    k))
        .isTrue();
  }

  @Test
  void take_exactlyTheRemaining_grantedAndOneUnitMoreIsNot() {
    long k = key(tx, "1.00", "0.75");

    Grant over = leases.take(k, "a", new BigDecimal("0.25000001"), TTL);
    Grant exact = leases.take(k, "b", new BigDecimal("0.25"), TTL);

    assertThat(over.outcome()).isEqualTo(Grant.Outcome.TOO_LITTLE);
    assertThat(over.remaining()).isEqualByComparingTo("0.25");
    assertThat(over.lease()).isEqualByComparingTo("0");
    assertThat(lease(k, "a")).isNull();
    assertThat(exact.outcome()).isEqualTo(Grant.Outcome.GRANTED);
    assertThat(exact.remaining()).isEqualByComparingTo("0");
    assertThat(leased(db, k)).isEqualByComparingTo("0.25");
    assertThat(consistent(db, k)).isTrue();
  }

  @Test
  void take_unlimitedOrDeletedOrMissingKey_notGranted() {
    long unlimited = key(tx, "0", "0");
    long deleted = key(tx, "1", "0");
    tx.inTransaction(c -> keys.softDelete(c, deleted));

    assertThat(leases.take(unlimited, "a", BigDecimal.ONE, TTL).outcome())
        .isEqualTo(Grant.Outcome.UNLIMITED);
    assertThat(leases.take(deleted, "a", BigDecimal.ONE, TTL).outcome())
        .isEqualTo(Grant.Outcome.NO_KEY);
    assertThat(leases.take(Long.MAX_VALUE, "a", BigDecimal.ONE, TTL).outcome())
        .isEqualTo(Grant.Outcome.NO_KEY);
    assertThat(leased(db, unlimited)).isEqualByComparingTo("0");
  }

  @Test
  void take_manyThreadsAtOnce_neverLeaseMoreThanIsLeft() throws Exception {
    long k = key(tx, "1.00", "0.10");
    ExecutorService pool = Executors.newFixedThreadPool(6);
    CountDownLatch go = new CountDownLatch(1);
    List<Future<Boolean>> grants = new ArrayList<>();
    for (int i = 0; i < 60; i++) {
      String instance = "i" + (i % 3);
      grants.add(
          pool.submit(
              () -> {
                go.await();
                return leases.take(k, instance, new BigDecimal("0.05"), TTL).granted();
              }));
    }
    go.countDown();
    int granted = 0;
    for (Future<Boolean> g : grants) {
      granted += g.get() ? 1 : 0;
    }
    pool.shutdown();

    // 0.90 left: 18 slices of 0.05, not one more.
    assertThat(granted).isEqualTo(18);
    assertThat(leased(db, k)).isEqualByComparingTo("0.90");
    assertThat(consistent(db, k)).isTrue();
  }

  @Test
  void giveBack_partWholeAndMore_givesWhatTheLeaseHas() {
    long k = key(tx, "1.00", "0");
    leases.take(k, "a", new BigDecimal("0.50"), TTL);

    assertThat(leases.giveBack(k, "a", new BigDecimal("0.20"))).isEqualByComparingTo("0.20");
    assertThat(lease(k, "a")).isEqualByComparingTo("0.30");
    assertThat(leases.giveBack(k, "a", new BigDecimal("5"))).isEqualByComparingTo("0.30");
    assertThat(lease(k, "a")).isNull();
    assertThat(leases.giveBack(k, "a", new BigDecimal("5"))).isEqualByComparingTo("0");
    assertThat(leased(db, k)).isEqualByComparingTo("0");
    assertThat(consistent(db, k)).isTrue();
  }

  @Test
  void renew_extendsEveryLeaseOfTheInstanceOnly() {
    long k1 = key(tx, "1.00", "0");
    long k2 = key(tx, "1.00", "0");
    leases.take(k1, "renewer", new BigDecimal("0.10"), Duration.ofSeconds(1));
    leases.take(k2, "renewer", new BigDecimal("0.20"), Duration.ofSeconds(1));
    leases.take(k1, "other", new BigDecimal("0.30"), Duration.ofSeconds(1));

    Map<Long, BigDecimal> renewed = leases.renew("renewer", TTL);

    assertThat(renewed).hasSize(2);
    assertThat(renewed.get(k1)).isEqualByComparingTo("0.10");
    assertThat(renewed.get(k2)).isEqualByComparingTo("0.20");
    Instant later = Instant.now().plusSeconds(5);
    leases.reapExpired(later);
    assertThat(lease(k1, "renewer")).isEqualByComparingTo("0.10");
    assertThat(lease(k1, "other")).isNull();
    assertThat(leased(db, k1)).isEqualByComparingTo("0.10");
  }

  @Test
  void reapExpired_pastTheTtl_leaseGoesBackAndTheKeyCanBeLeasedAgain() throws Exception {
    long k = key(tx, "1.00", "0");
    leases.take(k, "dead", new BigDecimal("1.00"), Duration.ofMillis(300));
    assertThat(leases.take(k, "live", new BigDecimal("0.05"), TTL).granted()).isFalse();
    assertThat(leases.reapExpired(Instant.now())).isZero();

    Thread.sleep(400);
    int reaped = leases.reapExpired(Instant.now());

    assertThat(reaped).isEqualTo(1);
    assertThat(leased(db, k)).isEqualByComparingTo("0");
    assertThat(leases.take(k, "live", new BigDecimal("0.05"), TTL).granted()).isTrue();
    assertThat(consistent(db, k)).isTrue();
  }

  @Test
  void reapExpired_twoReapersAtOnce_eachLeaseGoesBackOnce() throws Exception {
    List<Long> ks = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      long k = key(tx, "1.00", "0");
      ks.add(k);
      for (String inst : List.of("x", "y", "z")) {
        leases.take(k, inst, new BigDecimal("0.10"), Duration.ofMillis(1));
      }
    }
    Thread.sleep(50);
    Instant now = Instant.now();
    ExecutorService pool = Executors.newFixedThreadPool(2);
    CountDownLatch go = new CountDownLatch(1);
    List<Future<Integer>> reapers = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      reapers.add(
          pool.submit(
              () -> {
                go.await();
                int n = 0;
                // Until nothing is left: a reaper skips keys the other one holds.
                for (int r; (r = leases.reapExpired(now)) > 0; ) {
                  n += r;
                }
                return n;
              }));
    }
    go.countDown();
    int total = reapers.get(0).get() + reapers.get(1).get();
    pool.shutdown();

    assertThat(total).isEqualTo(90);
    for (long k : ks) {
      assertThat(leased(db, k)).isEqualByComparingTo("0");
      assertThat(consistent(db, k)).isTrue();
    }
  }

  @Test
  void commitGroup_heldReport_drawsOnTheLeaseOnceAndARepeatDrawsNothing() {
    long k = key(tx, "1.00", "0");
    leases.take(k, "a", new BigDecimal("0.50"), TTL);
    UsageReport r = report("held-1", k, "0.04");
    Map<String, UsageLedger.HeldBy> holds =
        Map.of("held-1", new UsageLedger.HeldBy("a", new BigDecimal("0.10")));

    UsageLedger.Committed first = usage.commitGroup(List.of(r), holds);
    UsageLedger.Committed repeat = usage.commitGroup(List.of(r), holds);

    assertThat(first.inserted()).containsExactly("held-1");
    assertThat(first.leaseDrawn().get("held-1")).isEqualByComparingTo("0.04");
    assertThat(repeat.inserted()).isEmpty();
    assertThat(repeat.leaseDrawn()).isEmpty();
    assertThat(lease(k, "a")).isEqualByComparingTo("0.46");
    assertThat(leased(db, k)).isEqualByComparingTo("0.46");
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", k))
        .isEqualByComparingTo("0.04");
    assertThat(consistent(db, k)).isTrue();
  }

  @Test
  void commitGroup_costOverHoldAndTwoHoldsOnOneLease_drawsAtMostEachHoldAndTheLease() {
    long k = key(tx, "1.00", "0");
    leases.take(k, "a", new BigDecimal("0.12"), TTL);
    List<UsageReport> group =
        List.of(report("over-1", k, "0.08"), report("over-2", k, "0.09"), report("plain", k, "1"));
    Map<String, UsageLedger.HeldBy> holds =
        Map.of(
            "over-1", new UsageLedger.HeldBy("a", new BigDecimal("0.05")),
            "over-2", new UsageLedger.HeldBy("a", new BigDecimal("0.09")));

    UsageLedger.Committed c = usage.commitGroup(group, holds);

    // 0.05 (its hold), then 0.07 (what the lease had left); the report without a hold draws none.
    assertThat(c.leaseDrawn()).containsOnlyKeys("over-1", "over-2");
    assertThat(c.leaseDrawn().get("over-1")).isEqualByComparingTo("0.05");
    assertThat(c.leaseDrawn().get("over-2")).isEqualByComparingTo("0.07");
    assertThat(lease(k, "a")).isEqualByComparingTo("0");
    assertThat(leased(db, k)).isEqualByComparingTo("0");
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", k))
        .isEqualByComparingTo("1.17");
  }

  @Test
  void commitGroup_leaseReapedBeforeTheCharge_drawsNothing() throws Exception {
    long k = key(tx, "1.00", "0");
    leases.take(k, "a", new BigDecimal("0.50"), Duration.ofMillis(1));
    Thread.sleep(20);
    leases.reapExpired(Instant.now());

    UsageLedger.Committed c =
        usage.commitGroup(
            List.of(report("late-1", k, "0.05")),
            Map.of("late-1", new UsageLedger.HeldBy("a", new BigDecimal("0.05"))));

    assertThat(c.inserted()).containsExactly("late-1");
    assertThat(c.leaseDrawn().get("late-1")).isEqualByComparingTo("0");
    assertThat(leased(db, k)).isEqualByComparingTo("0");
  }
}
