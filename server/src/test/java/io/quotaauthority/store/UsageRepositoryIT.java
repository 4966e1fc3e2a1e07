package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.usage.UsageLedger;
import io.quotaauthority.usage.UsageReport;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The group's ledger rows are inserted before its keys are locked (so two committers' inserts run
 * side by side); what the locked rows then refuse must leave no row behind.
 */
class UsageRepositoryIT {
  private static TestDatabase db;
  private static UsageRepository ledger;

  @BeforeAll
  static void createDatabase() {
    db = TestDatabase.create();
    ledger = new UsageRepository(db.transactions());
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
  }

  private static long key(String name) {
    return ((Number)
            db.scalar(
                "INSERT INTO api_keys (name, key_hash, key_prefix) VALUES (?, sha256(?::bytea),"
                    + " 'sk-test') RETURNING id",
                name,
                name))
        .longValue();
  }

  private static UsageReport report(String id, long keyId, String cost) {
    return new UsageReport(id, keyId, new BigDecimal(cost), "m", "", 1, 1, 0, 0, Instant.now());
  }

  @Test
  void commitGroup_keyDeletedBeforeTheLock_itsReportsLeaveNoRowAndTheRestAreCharged() {
    long live = key("withdraw-live");
    long deleted = key("withdraw-deleted");
    db.scalar("UPDATE api_keys SET deleted_at = now() WHERE id = ? RETURNING 1", deleted);

    UsageLedger.Committed c =
        ledger.commitGroup(
            List.of(
                report("wd-1", live, "0.5"),
                report("wd-2", deleted, "1"),
                report("wd-3", live, "0.25"),
                report("wd-4", deleted, "2")));

    assertThat(c.inserted()).containsExactlyInAnyOrder("wd-1", "wd-3");
    assertThat(c.usedBefore()).containsOnlyKeys(live);
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE report_id LIKE 'wd-%'"))
        .isEqualTo(2);
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE key_id = ?", deleted)).isZero();
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", live))
        .isEqualByComparingTo("0.75");
  }

  @Test
  void commitGroup_sameIdsInOppositeOrderOnTwoConnections_bothCommitOneChargeEach()
      throws Exception {
    long a = key("order-a");
    long b = key("order-b");
    // Each of 40 rounds: two groups with the same two new ids, listed in opposite orders, at once.
    for (int round = 0; round < 40; round++) {
      String x = "ord-" + round + "-x";
      String y = "ord-" + round + "-y";
      List<UsageReport> first = List.of(report(x, a, "0.01"), report(y, b, "0.02"));
      List<UsageReport> second = new ArrayList<>(first);
      java.util.Collections.reverse(second);
      CompletableFuture<UsageLedger.Committed> one =
          CompletableFuture.supplyAsync(() -> ledger.commitGroup(first));
      CompletableFuture<UsageLedger.Committed> two =
          CompletableFuture.supplyAsync(() -> ledger.commitGroup(second));
      UsageLedger.Committed c1 = one.get(30, TimeUnit.SECONDS);
      UsageLedger.Committed c2 = two.get(30, TimeUnit.SECONDS);
      // Each id charged by exactly one of the two; the other saw it as charged before.
      assertThat(c1.inserted().size() + c2.inserted().size()).isEqualTo(2);
      assertThat(c1.earlier().size() + c2.earlier().size()).isEqualTo(2);
    }
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", a))
        .isEqualByComparingTo("0.40");
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", b))
        .isEqualByComparingTo("0.80");
    // No deadlock was detected (and retried) along the way.
    assertThat(
            db.count("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))
        .isZero();
  }
}
