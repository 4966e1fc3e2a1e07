package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Timestamp;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.Status;
import io.quotaauthority.admin.PageTokens;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.ListUsageResponse;
import io.quotaauthority.proto.v1.ReportUsageRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageEvent;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** ReportUsage over real gRPC streams, committed in the real PostgreSQL. */
class UsageStreamIT {
  private static TestDatabase db;
  private static TestServer server;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static CreateKeyResponse newKey(String quota) {
    return server
        .admin()
        .createKey(CreateKeyRequest.newBuilder().setName("usage").setQuotaUsd(quota).build());
  }

  private static UsageStream stream() {
    return UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN);
  }

  private static BigDecimal quotaUsed(String keyId) {
    return (BigDecimal)
        db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", Long.parseLong(keyId));
  }

  @Test
  void reportUsage_10000ReportsOver8StreamsWith10PercentRepeats_chargesEachUniqueReportOnce()
      throws Exception {
    List<String> keys = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      keys.add(newKey("0").getKey().getId());
    }
    Random random = new Random(42);
    List<ReportUsageRequest> unique = new ArrayList<>();
    Map<String, BigDecimal> expected = new HashMap<>();
    for (int i = 0; i < 9_000; i++) {
      String key = keys.get(random.nextInt(keys.size()));
      // Costs from 0.00000001 to 9.99999999: exercises all eight fraction digits.
      BigDecimal cost = BigDecimal.valueOf(1 + random.nextInt(999_999_999), 8);
      unique.add(UsageStream.report("bulk-" + i, key, cost.toPlainString()));
      expected.merge(key, cost, BigDecimal::add);
    }
    List<List<ReportUsageRequest>> perStream = new ArrayList<>();
    for (int s = 0; s < 8; s++) {
      perStream.add(new ArrayList<>());
    }
    for (int i = 0; i < unique.size(); i++) {
      perStream.get(i % 8).add(unique.get(i));
    }
    // 1,000 repeats of earlier ids, most of them on another stream than the original.
    for (int i = 0; i < 1_000; i++) {
      perStream.get(random.nextInt(8)).add(unique.get(random.nextInt(unique.size())));
    }
    List<UsageStream> streams = new ArrayList<>();
    List<Thread> senders = new ArrayList<>();
    for (List<ReportUsageRequest> batch : perStream) {
      UsageStream st = stream();
      streams.add(st);
      Thread t = new Thread(() -> batch.forEach(st::send));
      senders.add(t);
      t.start();
    }
    for (Thread t : senders) {
      t.join();
    }
    for (UsageStream st : streams) {
      st.finish();
    }

    List<ReportUsageResponse> all = streams.stream().flatMap(s -> s.responses().stream()).toList();
    assertThat(all).hasSize(10_000);
    Map<UsageResult, Long> byResult =
        all.stream()
            .collect(Collectors.groupingBy(ReportUsageResponse::getResult, Collectors.counting()));
    assertThat(byResult.get(UsageResult.USAGE_RESULT_ACCEPTED)).isEqualTo(9_000);
    assertThat(byResult.get(UsageResult.USAGE_RESULT_DUPLICATE)).isEqualTo(1_000);
    Set<String> accepted = new HashSet<>();
    for (ReportUsageResponse r : all) {
      if (r.getResult() == UsageResult.USAGE_RESULT_ACCEPTED) {
        assertThat(accepted.add(r.getReportId())).as("accepted once: " + r.getReportId()).isTrue();
      }
    }
    for (String key : keys) {
      assertThat(quotaUsed(key)).isEqualByComparingTo(expected.get(key));
      assertThat(
              (BigDecimal)
                  db.scalar(
                      "SELECT coalesce(sum(cost), 0) FROM usage_events WHERE key_id = ?",
                      Long.parseLong(key)))
          .isEqualByComparingTo(expected.get(key));
    }
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE report_id LIKE 'bulk-%'"))
        .isEqualTo(9_000);
  }

  @Test
  void reportUsage_badInputs_eachRejectedAndStreamContinues() throws Exception {
    String key = newKey("0").getKey().getId();
    CreateKeyResponse deleted = newKey("0");
    server.admin().deleteKey(DeleteKeyRequest.newBuilder().setId(deleted.getKey().getId()).build());
    Instant twoDays = Instant.now().plusSeconds(2 * 86_400);
    Map<String, ReportUsageRequest> bad = new LinkedHashMap<>();
    bad.put("key_id", UsageStream.report("bad-unknown", "987654321", "1"));
    bad.put("key_id ", UsageStream.report("bad-deleted", deleted.getKey().getId(), "1"));
    bad.put("key_id  ", UsageStream.report("bad-keyid", "abc", "1"));
    // Spellings Long.parseLong reads as this very key: refused like any other malformed id.
    bad.put("key_id   ", UsageStream.report("bad-keyid-plus", "+" + key, "1"));
    bad.put("key_id    ", UsageStream.report("bad-keyid-zero", "0" + key, "1"));
    bad.put(
        "key_id     ",
        UsageStream.report(
            "bad-keyid-arabic",
            key.chars()
                .map(c -> c - '0' + '\u0660')
                .collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append)
                .toString(),
            "1"));
    bad.put("report_id", UsageStream.report("", key, "1"));
    bad.put("report_id ", UsageStream.report("x".repeat(129), key, "1"));
    bad.put("cost_usd", UsageStream.report("bad-cost-1", key, "-1"));
    bad.put("cost_usd ", UsageStream.report("bad-cost-2", key, "0.000000001"));
    bad.put("cost_usd  ", UsageStream.report("bad-cost-3", key, "1e3"));
    bad.put("cost_usd   ", UsageStream.report("bad-cost-4", key, ""));
    bad.put(
        "input_tokens",
        UsageStream.report("bad-tokens", key, "1").toBuilder().setInputTokens(-1).build());
    bad.put(
        "output_tokens",
        UsageStream.report("bad-tokens-2", key, "1").toBuilder().setOutputTokens(-5).build());
    bad.put(
        "occurred_at",
        UsageStream.report("bad-future", key, "1").toBuilder()
            .setOccurredAt(Timestamp.newBuilder().setSeconds(twoDays.getEpochSecond()))
            .build());

    UsageStream st = stream();
    st.send(UsageStream.report("good-before", key, "0.5"));
    bad.values().forEach(st::send);
    st.send(UsageStream.report("good-after", key, "0.25"));
    st.finish();

    assertThat(st.status().getCode()).isEqualTo(Status.Code.OK);
    Map<String, ReportUsageResponse> byId = new HashMap<>();
    st.responses().forEach(r -> byId.put(r.getReportId(), r));
    assertThat(st.responses()).hasSize(bad.size() + 2);
    for (Map.Entry<String, ReportUsageRequest> e : bad.entrySet()) {
      ReportUsageResponse r =
          st.responses().stream()
              .filter(
                  x ->
                      x.getReportId().equals(e.getValue().getReportId())
                          && x.getMessage().startsWith(e.getKey().trim()))
              .findFirst()
              .orElseThrow(() -> new AssertionError("no rejection naming " + e.getKey().trim()));
      assertThat(r.getResult()).isEqualTo(UsageResult.USAGE_RESULT_REJECTED);
    }
    assertThat(byId.get("good-before").getResult()).isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
    assertThat(byId.get("good-after").getResult()).isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
    assertThat(byId.get("good-after").getQuotaUsedUsd()).isIn("0.75", "0.25");
    assertThat(quotaUsed(key)).isEqualByComparingTo("0.75");
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE report_id LIKE 'bad-%'")).isZero();
  }

  @Test
  void reportUsage_crossesQuota_checkAnswers429RightAfterAck() throws Exception {
    CreateKeyResponse key = newKey("1");
    var authz = AuthorizationGrpc.newBlockingStub(server.authzChannel());
    var request = EnvoyChecks.post("/v1/chat/completions").bearer(key.getSecret()).build();
    assertThat(authz.check(request).getStatus().getCode()).isZero();

    UsageStream st =
        stream().send(UsageStream.report("cross-1", key.getKey().getId(), "0.99999999"));
    st.awaitAnswers(1);
    assertThat(authz.check(request).getStatus().getCode()).isZero();
    st.send(UsageStream.report("cross-2", key.getKey().getId(), "0.00000001"));
    st.awaitAnswers(2);

    CheckResponse after = authz.check(request);
    assertThat(st.responses().get(1).getResult()).isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
    assertThat(st.responses().get(1).getQuotaUsedUsd()).isEqualTo("1");
    assertThat(after.getStatus().getCode()).isEqualTo(8);
    assertThat(after.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(429);
    // Past the quota the report is still charged in full: the request already happened.
    st.send(UsageStream.report("cross-3", key.getKey().getId(), "2.5")).finish();
    assertThat(quotaUsed(key.getKey().getId())).isEqualByComparingTo("3.5");
  }

  @Test
  void reportUsage_withoutOrWithWrongReporterToken_unauthenticatedAndNothingCharged()
      throws Exception {
    String key = newKey("0").getKey().getId();

    UsageStream none =
        UsageStream.open(server.authzChannel(), null)
            .send(UsageStream.report("noauth-1", key, "1"));
    UsageStream wrong =
        UsageStream.open(server.authzChannel(), "not-the-token")
            .send(UsageStream.report("noauth-2", key, "1"));
    UsageStream admin =
        UsageStream.open(server.authzChannel(), TestServer.ADMIN_TOKEN)
            .send(UsageStream.report("noauth-3", key, "1"));

    assertThat(none.status().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(wrong.status().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(admin.status().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(none.responses()).isEmpty();
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE report_id LIKE 'noauth-%'"))
        .isZero();
    assertThat(quotaUsed(key)).isEqualByComparingTo("0");
  }

  @Test
  void reportUsage_clientDisconnectsMidGroup_noPartialEffects() throws Exception {
    String key = newKey("0").getKey().getId();
    UsageStream st = stream();
    for (int i = 0; i < 500; i++) {
      st.send(UsageStream.report("disc-" + i, key, "0.01"));
    }
    st.cancel();
    // Whatever reached the server commits in whole groups; wait until nothing is queued.
    for (int i = 0; i < 200 && server.app().batcher().queued() > 0; i++) {
      Thread.sleep(10);
    }
    Thread.sleep(200);

    long events =
        db.count("SELECT count(*) FROM usage_events WHERE key_id = ?", Long.parseLong(key));
    assertThat(quotaUsed(key))
        .isEqualByComparingTo(new BigDecimal("0.01").multiply(BigDecimal.valueOf(events)));
    assertThat(events).isBetween(0L, 500L);
  }

  @Test
  void listUsage_pagesThroughKeysEventsNewestFirst() throws Exception {
    String key = newKey("0").getKey().getId();
    UsageStream st = stream();
    for (int i = 0; i < 7; i++) {
      st.send(UsageStream.report("list-" + i, key, "0.1"));
      st.awaitAnswers(i + 1);
    }
    st.finish();

    Listing listed = listInPagesOfThree(key);
    List<UsageEvent> seen = listed.events();

    assertThat(listed.pages()).isEqualTo(3);
    assertThat(seen)
        .extracting(UsageEvent::getReportId)
        .containsExactly("list-6", "list-5", "list-4", "list-3", "list-2", "list-1", "list-0");
    assertThat(seen.get(0).getCostUsd()).isEqualTo("0.1");
    assertThat(seen.get(0).getModel()).isEqualTo("gpt-4o-mini");
    assertThat(seen.get(0).getInputTokens()).isEqualTo(12);
    assertThat(seen.get(0).getOutputTokens()).isEqualTo(34);
  }

  @Test
  void listUsage_oneCommitsRowsAcrossPages_eachOnceInIdOrder() throws Exception {
    String key = newKey("0").getKey().getId();
    // One statement, one transaction: the seven rows share received_at (now()), so the pages'
    // order among them is the row id's alone.
    db.scalar(
        "WITH ins AS (INSERT INTO usage_events (report_id, key_id, cost, occurred_at)"
            + " SELECT 'one-commit-' || i, ?, 0.1, now() FROM generate_series(1, 7) i"
            + " RETURNING 1) SELECT count(*) FROM ins",
        Long.parseLong(key));
    assertThat(
            db.count(
                "SELECT count(DISTINCT received_at) FROM usage_events WHERE key_id = ?",
                Long.parseLong(key)))
        .isEqualTo(1);
    Listing listed = listInPagesOfThree(key);

    assertThat(listed.pages()).isEqualTo(3);
    // Identity values follow the insert's row order, so the highest id is the last row.
    assertThat(listed.events())
        .extracting(UsageEvent::getReportId)
        .containsExactly(
            "one-commit-7",
            "one-commit-6",
            "one-commit-5",
            "one-commit-4",
            "one-commit-3",
            "one-commit-2",
            "one-commit-1");
  }

  @Test
  void listUsage_wellFormedTokenNamingNoEvent_emptyPageAndNoToken() throws Exception {
    String key = newKey("0").getKey().getId();
    reportOnce(UsageStream.report("forged-token-1", key, "0.1"));
    // A token this server would issue, for an event id no row has: the page resumes from that
    // row's (received_at, id), and there is none, so nothing is listed and nothing else leaks.
    long noSuchEvent = 1 + (Long) db.scalar("SELECT max(id) FROM usage_events");
    ListUsageResponse page =
        listPage(key, 0, PageTokens.encode(PageTokens.usage(Long.parseLong(key)), noSuchEvent));

    assertThat(page.getEventsList()).isEmpty();
    assertThat(page.getNextPageToken()).isEmpty();
  }

  private record Listing(List<UsageEvent> events, int pages) {}

  /** One ListUsage page of a key (page size 0: the server's default). */
  private static ListUsageResponse listPage(String key, int size, String token) {
    return server
        .admin()
        .listUsage(
            ListUsageRequest.newBuilder()
                .setKeyId(key)
                .setPageSize(size)
                .setPageToken(token)
                .build());
  }

  /** A key's whole ledger through ListUsage, three events a page, following the tokens. */
  private static Listing listInPagesOfThree(String key) {
    List<UsageEvent> seen = new ArrayList<>();
    String token = "";
    int pages = 0;
    do {
      ListUsageResponse page = listPage(key, 3, token);
      seen.addAll(page.getEventsList());
      token = page.getNextPageToken();
      pages++;
    } while (!token.isEmpty());
    return new Listing(seen, pages);
  }

  /** Sends one report on a fresh stream and waits for its answer. */
  private static ReportUsageResponse reportOnce(ReportUsageRequest report) throws Exception {
    UsageStream st = stream();
    st.send(report);
    st.awaitAnswers(1);
    st.finish();
    return st.responses().get(0);
  }

  private static long eventsOf(String reportId) {
    return db.count("SELECT count(*) FROM usage_events WHERE report_id = ?", reportId);
  }

  @Test
  void reportUsage_reusedReportIdWithAnotherCost_conflictNamingCostUsdAndNothingChanged()
      throws Exception {
    String key = newKey("10").getKey().getId();
    assertThat(reportOnce(UsageStream.report("conflict-cost", key, "1.5")).getResult())
        .isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);

    ReportUsageResponse again = reportOnce(UsageStream.report("conflict-cost", key, "0.01"));

    assertThat(again.getResult()).isEqualTo(UsageResult.USAGE_RESULT_CONFLICT);
    assertThat(again.getMessage()).isEqualTo("report_id already charged with a different cost_usd");
    assertThat(again.getQuotaUsedUsd()).isEmpty();
    assertThat(quotaUsed(key)).isEqualByComparingTo("1.5");
    assertThat(eventsOf("conflict-cost")).isEqualTo(1);
    assertThat(db.scalar("SELECT cost FROM usage_events WHERE report_id = 'conflict-cost'"))
        .isEqualTo(new BigDecimal("1.50000000"));
  }

  @Test
  void reportUsage_reusedReportIdWithAnotherKey_conflictNamingKeyIdAndNothingChanged()
      throws Exception {
    String first = newKey("10").getKey().getId();
    String other = newKey("10").getKey().getId();
    assertThat(reportOnce(UsageStream.report("conflict-key", first, "2")).getResult())
        .isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);

    ReportUsageResponse again = reportOnce(UsageStream.report("conflict-key", other, "2"));
    ReportUsageResponse both = reportOnce(UsageStream.report("conflict-key", other, "3"));

    assertThat(again.getResult()).isEqualTo(UsageResult.USAGE_RESULT_CONFLICT);
    assertThat(again.getMessage()).isEqualTo("report_id already charged with a different key_id");
    assertThat(both.getResult()).isEqualTo(UsageResult.USAGE_RESULT_CONFLICT);
    assertThat(both.getMessage())
        .isEqualTo("report_id already charged with a different key_id and cost_usd");
    assertThat(quotaUsed(first)).isEqualByComparingTo("2");
    assertThat(quotaUsed(other)).isEqualByComparingTo("0");
    assertThat(db.scalar("SELECT key_id FROM usage_events WHERE report_id = 'conflict-key'"))
        .isEqualTo(Long.parseLong(first));
  }

  @Test
  void reportUsage_exactRepeat_duplicateEvenWithCostWrittenDifferently() throws Exception {
    String key = newKey("10").getKey().getId();
    assertThat(reportOnce(UsageStream.report("repeat-exact", key, "0.25")).getResult())
        .isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);

    // Same amount, other spelling: the same charge, so a duplicate, not a conflict.
    ReportUsageResponse again = reportOnce(UsageStream.report("repeat-exact", key, "0.250"));

    assertThat(again.getResult()).isEqualTo(UsageResult.USAGE_RESULT_DUPLICATE);
    assertThat(again.getMessage()).isEmpty();
    assertThat(again.getQuotaUsedUsd()).isEqualTo("0.25");
    assertThat(quotaUsed(key)).isEqualByComparingTo("0.25");
    assertThat(eventsOf("repeat-exact")).isEqualTo(1);
  }

  @Test
  void reportUsage_conflictingRepeatInTheSameStream_firstAcceptedSecondConflict() throws Exception {
    String key = newKey("10").getKey().getId();
    UsageStream st = stream();
    // Sent back to back, so they usually share a commit group; the answers are the same either way.
    st.send(UsageStream.report("burst-conflict", key, "1"));
    st.send(UsageStream.report("burst-conflict", key, "4"));
    st.send(UsageStream.report("burst-conflict", key, "1"));
    st.awaitAnswers(3);
    st.finish();

    List<UsageResult> results =
        st.responses().stream().map(ReportUsageResponse::getResult).toList();
    assertThat(results)
        .containsExactlyInAnyOrder(
            UsageResult.USAGE_RESULT_ACCEPTED,
            UsageResult.USAGE_RESULT_CONFLICT,
            UsageResult.USAGE_RESULT_DUPLICATE);
    assertThat(st.responses())
        .filteredOn(r -> r.getResult() == UsageResult.USAGE_RESULT_CONFLICT)
        .singleElement()
        .extracting(ReportUsageResponse::getMessage)
        .isEqualTo("report_id already charged with a different cost_usd");
    assertThat(quotaUsed(key)).isEqualByComparingTo("1");
    assertThat(eventsOf("burst-conflict")).isEqualTo(1);
  }

  @Test
  void reportUsage_withRequestId_keptInLedgerAndListed() throws Exception {
    String key = newKey("0").getKey().getId();
    ReportUsageResponse ok =
        reportOnce(
            UsageStream.report("with-request-id", key, "0.1").toBuilder()
                .setRequestId("req-abc-123")
                .build());
    ReportUsageResponse bad =
        reportOnce(
            UsageStream.report("bad-request-id", key, "0.1").toBuilder()
                .setRequestId("has\nnewline")
                .build());

    assertThat(ok.getResult()).isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
    assertThat(bad.getResult()).isEqualTo(UsageResult.USAGE_RESULT_REJECTED);
    assertThat(bad.getMessage()).startsWith("request_id");
    assertThat(db.scalar("SELECT request_id FROM usage_events WHERE report_id = 'with-request-id'"))
        .isEqualTo("req-abc-123");
    assertThat(eventsOf("bad-request-id")).isZero();
    UsageEvent event =
        server.admin().listUsage(ListUsageRequest.newBuilder().setKeyId(key).build()).getEvents(0);
    assertThat(event.getRequestId()).isEqualTo("req-abc-123");
  }
}
