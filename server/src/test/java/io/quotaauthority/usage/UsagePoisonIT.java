package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.DistributionSummary;
import io.quotaauthority.config.Setting;
import io.quotaauthority.ops.Metrics;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.ReportUsageRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.sql.Statement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * One poison report among 100 good ones from three streams, all in one commit group (a long
 * QUOTA_USAGE_COMMIT_INTERVAL holds the group open while they arrive), on the real server and
 * PostgreSQL: exactly the poison report is REJECTED, every other one is charged, to the cent.
 */
class UsagePoisonIT {
  private static TestDatabase db;
  private static TestServer server;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    // 2 s after its first report a group closes: far longer than sending 101 reports takes.
    server = TestServer.start(db, Map.of(Setting.USAGE_COMMIT_INTERVAL, "2s"), Clock.systemUTC());
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static long newKey() {
    return Long.parseLong(
        server
            .admin()
            .createKey(CreateKeyRequest.newBuilder().setName("poison").setQuotaUsd("0").build())
            .getKey()
            .getId());
  }

  private static BigDecimal quotaUsed(long key) {
    return (BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", key);
  }

  private static BigDecimal ledgerSum(long key) {
    return (BigDecimal)
        db.scalar("SELECT coalesce(sum(cost), 0) FROM usage_events WHERE key_id = ?", key);
  }

  /** 100 good reports over the keys, costs with all 8 fraction digits; the expected sum per key. */
  private static List<ReportUsageRequest> good(
      String prefix, List<Long> keys, BigDecimal maxCost, Map<Long, BigDecimal> expected) {
    Random random = new Random(prefix.hashCode());
    List<ReportUsageRequest> reports = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      long key = keys.get(i % keys.size());
      BigDecimal cost =
          maxCost
              .multiply(BigDecimal.valueOf(1 + random.nextInt(99_999_999), 8))
              .setScale(8, RoundingMode.DOWN);
      reports.add(UsageStream.report(prefix + "-" + i, Long.toString(key), cost.toPlainString()));
      expected.merge(key, cost, BigDecimal::add);
    }
    return reports;
  }

  /**
   * Sends the reports round-robin over three streams, the poison one in the middle of the second,
   * waits for every answer, and returns them by report id (each must come exactly once).
   */
  private static Map<String, ReportUsageResponse> sendInOneGroup(
      List<ReportUsageRequest> good, ReportUsageRequest poison, int expectedGroupSize)
      throws Exception {
    DistributionSummary groups =
        server.app().operations().registry().get(Metrics.COMMIT_GROUP_SIZE).summary();
    long groupsBefore = groups.count();
    double reportsBefore = groups.totalAmount();
    List<UsageStream> streams = List.of(stream(), stream(), stream());
    for (int i = 0; i < good.size(); i++) {
      streams.get(i % 3).send(good.get(i));
      if (i == good.size() / 2) {
        streams.get(1).send(poison);
      }
    }
    Map<String, ReportUsageResponse> byId = new HashMap<>();
    for (UsageStream s : streams) {
      s.finish();
      for (ReportUsageResponse r : s.responses()) {
        assertThat(byId.put(r.getReportId(), r)).as("answered once: " + r.getReportId()).isNull();
      }
    }
    assertThat(byId).hasSize(good.size() + 1);
    // They really were one group: one commit, of all the reports that reached the batcher.
    assertThat(groups.count() - groupsBefore).isEqualTo(1);
    assertThat(groups.totalAmount() - reportsBefore).isEqualTo(expectedGroupSize);
    return byId;
  }

  private static UsageStream stream() {
    return UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN);
  }

  private static void assertGoodCharged(
      List<ReportUsageRequest> good,
      Map<String, ReportUsageResponse> byId,
      Map<Long, BigDecimal> expected,
      Map<Long, BigDecimal> usedBefore) {
    for (ReportUsageRequest r : good) {
      assertThat(byId.get(r.getReportId()).getResult())
          .as(r.getReportId())
          .isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
    }
    for (Map.Entry<Long, BigDecimal> e : expected.entrySet()) {
      BigDecimal before = usedBefore.getOrDefault(e.getKey(), BigDecimal.ZERO);
      assertThat(quotaUsed(e.getKey())).isEqualByComparingTo(before.add(e.getValue()));
      assertThat(ledgerSum(e.getKey())).isEqualByComparingTo(e.getValue());
      // The last answer of a key's reports carries its final total.
      BigDecimal highest =
          good.stream()
              .filter(r -> Long.parseLong(r.getKeyId()) == e.getKey())
              .map(r -> new BigDecimal(byId.get(r.getReportId()).getQuotaUsedUsd()))
              .max(BigDecimal::compareTo)
              .orElseThrow();
      assertThat(highest).isEqualByComparingTo(before.add(e.getValue()));
    }
    assertThat(
            db.count(
                "SELECT count(*) FROM usage_events WHERE report_id = ANY (?)",
                (Object) good.stream().map(ReportUsageRequest::getReportId).toArray(String[]::new)))
        .isEqualTo(100);
  }

  @Test
  void reportUsage_nulInModelAmong100_onlyItRejectedNamingModel() throws Exception {
    List<Long> keys = List.of(newKey(), newKey(), newKey());
    Map<Long, BigDecimal> expected = new HashMap<>();
    List<ReportUsageRequest> good = good("nul", keys, BigDecimal.TEN, expected);
    ReportUsageRequest poison =
        UsageStream.report("nul-poison", Long.toString(keys.get(1)), "1").toBuilder()
            .setModel("gpt-4o\u0000mini")
            .build();

    Map<String, ReportUsageResponse> byId = sendInOneGroup(good, poison, 100);

    ReportUsageResponse refused = byId.get("nul-poison");
    assertThat(refused.getResult()).isEqualTo(UsageResult.USAGE_RESULT_REJECTED);
    assertThat(refused.getMessage()).startsWith("model ").contains("U+0000");
    assertGoodCharged(good, byId, expected, Map.of());
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE report_id = 'nul-poison'"))
        .isZero();
  }

  @Test
  void reportUsage_costOverflowingQuotaUsedAmong100_onlyItRejectedNamingCost() throws Exception {
    List<Long> keys = List.of(newKey(), newKey(), newKey());
    long nearFull = keys.get(2);
    BigDecimal before = new BigDecimal("999999999990");
    db.scalar("UPDATE api_keys SET quota_used = ? WHERE id = ? RETURNING 1", before, nearFull);
    Map<Long, BigDecimal> expected = new HashMap<>();
    // At most 0.1 each: the near-full key's 33 good reports add less than 4 and still fit.
    List<ReportUsageRequest> good = good("ovf", keys, new BigDecimal("0.1"), expected);
    // 10 more would take it past 999999999999.99999999, whatever order the group is charged in.
    ReportUsageRequest poison = UsageStream.report("ovf-poison", Long.toString(nearFull), "10");

    Map<String, ReportUsageResponse> byId = sendInOneGroup(good, poison, 101);

    ReportUsageResponse refused = byId.get("ovf-poison");
    assertThat(refused.getResult()).isEqualTo(UsageResult.USAGE_RESULT_REJECTED);
    assertThat(refused.getMessage()).startsWith("cost_usd: ").contains("quota_used");
    assertGoodCharged(good, byId, expected, Map.of(nearFull, before));
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE report_id = 'ovf-poison'"))
        .isZero();
  }

  @Test
  void reportUsage_reportTheDatabaseRefusesAmong100_groupSplitAndOnlyItRejected() throws Exception {
    // A poison no validation rule knows: the ledger itself refuses this model.
    db.transactions()
        .inTransaction(
            c -> {
              try (Statement st = c.createStatement()) {
                return st.execute(
                    "ALTER TABLE usage_events ADD CONSTRAINT test_poison CHECK (model <> 'poison-model')");
              }
            });
    List<Long> keys = List.of(newKey(), newKey(), newKey());
    Map<Long, BigDecimal> expected = new HashMap<>();
    List<ReportUsageRequest> good = good("split", keys, BigDecimal.ONE, expected);
    ReportUsageRequest poison =
        UsageStream.report("split-poison", Long.toString(keys.get(0)), "1").toBuilder()
            .setModel("poison-model")
            .build();

    Map<String, ReportUsageResponse> byId = sendInOneGroup(good, poison, 101);

    ReportUsageResponse refused = byId.get("split-poison");
    assertThat(refused.getResult()).isEqualTo(UsageResult.USAGE_RESULT_REJECTED);
    assertThat(refused.getMessage()).contains("SQLSTATE 23514").doesNotContain("poison-model");
    assertGoodCharged(good, byId, expected, Map.of());
  }
}
