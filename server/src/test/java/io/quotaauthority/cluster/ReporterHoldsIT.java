package io.quotaauthority.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.quotaauthority.keys.ColdPath;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.HoldExpiry;
import io.quotaauthority.proto.v1.ReportUsageRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.MovableClock;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import io.quotaauthority.usage.ReporterHolds;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Holds for usage-stream reporters (issue 16, point 7): two whole quota-authorities on one
 * PostgreSQL sharing one clock the test can move (a hold's expiry is ten minutes away). Check takes
 * the key's hold_usd_per_request on one instance, and the report naming its id settles it on the
 * other.
 */
class ReporterHoldsIT {
  private TestDatabase db;
  private final MovableClock clock = new MovableClock();
  private final List<TestServer> servers = new ArrayList<>();

  @BeforeEach
  void start() {
    db = TestDatabase.create();
    for (int i = 0; i < 2; i++) {
      servers.add(TestServer.start(db, Map.of(), clock));
    }
  }

  @AfterEach
  void stop() throws Exception {
    try {
      for (TestServer s : servers) {
        s.close();
      }
    } finally {
      db.close();
    }
  }

  /** A new key, once every instance knows it (its notification reached the other). */
  private CreateKeyResponse key(String quota, String hold, HoldExpiry expiry)
      throws InterruptedException {
    CreateKeyResponse created = create(quota, hold, expiry);
    KeyHash hash = SecretHasher.hash(created.getSecret());
    await(
        "every instance knows the key",
        () ->
            servers.stream().allMatch(s -> s.app().cache().route(hash) != ColdPath.Route.UNKNOWN));
    return created;
  }

  private CreateKeyResponse create(String quota, String hold, HoldExpiry expiry) {
    return servers
        .get(0)
        .admin()
        .createKey(
            CreateKeyRequest.newBuilder()
                .setName("reporter")
                .setQuotaUsd(quota)
                .setHoldUsdPerRequest(hold)
                .setHoldExpiry(expiry)
                .build());
  }

  private CheckResponse check(int instance, String secret) {
    return AuthorizationGrpc.newBlockingStub(servers.get(instance).authzChannel())
        .withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build());
  }

  /** The x-quota-hold-id Check set upstream, or null. */
  private static String holdId(CheckResponse r) {
    for (HeaderValueOption h : r.getOkResponse().getHeadersList()) {
      if (h.getHeader().getKey().equals(GatewayHeaders.HOLD_ID)) {
        return h.getHeader().getValue();
      }
    }
    return null;
  }

  private static ReportUsageRequest report(
      String reportId, String keyId, String cost, String hold) {
    return UsageStream.report(reportId, keyId, cost).toBuilder().setHoldId(hold).build();
  }

  private List<ReportUsageResponse> send(int instance, List<ReportUsageRequest> reports)
      throws InterruptedException {
    UsageStream s =
        UsageStream.open(servers.get(instance).authzChannel(), TestServer.REPORTER_TOKEN);
    for (ReportUsageRequest r : reports) {
      s.send(r);
    }
    return s.finish().responses();
  }

  private BigDecimal quotaUsed(String keyId) {
    return (BigDecimal)
        db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", Long.parseLong(keyId));
  }

  private BigDecimal ledgerSum(String keyId) {
    return (BigDecimal)
        db.scalar(
            "SELECT coalesce(sum(cost), 0) FROM usage_events WHERE key_id = ?",
            Long.parseLong(keyId));
  }

  private BigDecimal leased(String keyId) {
    return (BigDecimal)
        db.scalar("SELECT leased FROM api_keys WHERE id = ?", Long.parseLong(keyId));
  }

  private double holdEvents(ReporterHolds.Event event) {
    return servers.stream()
        .mapToDouble(
            s ->
                s
                    .app()
                    .operations()
                    .registry()
                    .find("quota.reporter.holds")
                    .tag("event", event.name().toLowerCase())
                    .counters()
                    .stream()
                    .mapToDouble(c -> c.count())
                    .sum())
        .sum();
  }

  private static void await(String what, BooleanSupplier done) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!done.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(20);
    }
  }

  @Test
  void check_holdPerRequestOnTwoInstances_admitsWithinTheQuotaSettlesOnTheOtherOnce()
      throws Exception {
    CreateKeyResponse key = key("1.00", "0.10", HoldExpiry.HOLD_EXPIRY_RELEASE);
    String keyId = key.getKey().getId();

    // 30 Checks at once, 15 on each instance: every one is held on 0.10 or refused.
    ExecutorService pool = Executors.newFixedThreadPool(30);
    CountDownLatch go = new CountDownLatch(1);
    List<Future<CheckResponse>> futures = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      int instance = i % 2;
      futures.add(
          pool.submit(
              () -> {
                go.await();
                return check(instance, key.getSecret());
              }));
    }
    go.countDown();
    List<String> holds = new ArrayList<>();
    List<Integer> holders = new ArrayList<>();
    int refused = 0;
    for (int i = 0; i < futures.size(); i++) {
      CheckResponse r = futures.get(i).get(30, TimeUnit.SECONDS);
      if (r.getStatus().getCode() == 0) {
        assertThat(holdId(r)).as("an allowed request carries its hold id").startsWith("qh1_");
        holds.add(holdId(r));
        holders.add(i % 2);
      } else {
        assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(429);
        assertThat(r.getDeniedResponse().getBody())
            .contains("insufficient_quota")
            .contains("Each request of this key holds 0.10000000 USD of its quota");
        refused++;
      }
    }
    pool.shutdown();
    System.out.printf("reporter holds: %d admitted, %d refused%n", holds.size(), refused);
    assertThat(holds.size()).as("admitted: 0.10 each within 1.00").isBetween(1, 10);
    assertThat(holds.size() + refused).isEqualTo(30);
    assertThat(new HashSet<>(holds)).as("every hold its own id").hasSize(holds.size());
    assertThat(leased(keyId))
        .as("the instances' leases cover every hold and stay within the quota")
        .isBetween(
            new BigDecimal("0.10").multiply(BigDecimal.valueOf(holds.size())),
            new BigDecimal("1.00"));
    assertThat(holdEvents(ReporterHolds.Event.TAKEN)).isEqualTo(holds.size());
    assertThat(holdEvents(ReporterHolds.Event.REFUSED)).isEqualTo(refused);

    // Each hold settled by a report of 0.07 sent to the other instance.
    List<List<ReportUsageRequest>> byInstance = List.of(new ArrayList<>(), new ArrayList<>());
    for (int i = 0; i < holds.size(); i++) {
      byInstance.get(1 - holders.get(i)).add(report("settle-" + i, keyId, "0.07", holds.get(i)));
    }
    for (int instance = 0; instance < 2; instance++) {
      for (ReportUsageResponse r : send(instance, byInstance.get(instance))) {
        assertThat(r.getResult()).as(r.getMessage()).isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
      }
    }
    BigDecimal charged = new BigDecimal("0.07").multiply(BigDecimal.valueOf(holds.size()));
    assertThat(ledgerSum(keyId)).isEqualByComparingTo(charged);
    assertThat(quotaUsed(keyId)).isEqualByComparingTo(charged);
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE hold_id IS NOT NULL"))
        .isEqualTo(holds.size());

    // The same reports again are repeats; another report naming a settled hold is a conflict.
    List<ReportUsageResponse> again =
        send(
            0,
            List.of(
                report("settle-0", keyId, "0.07", holds.get(0)),
                report("another-report", keyId, "0.01", holds.get(0))));
    assertThat(again.get(0).getResult()).isEqualTo(UsageResult.USAGE_RESULT_DUPLICATE);
    assertThat(again.get(1).getResult()).isEqualTo(UsageResult.USAGE_RESULT_CONFLICT);
    assertThat(again.get(1).getMessage()).contains("hold_id").contains("already settled");
    assertThat(ledgerSum(keyId)).isEqualByComparingTo(charged);

    // Every holder learns of its holds' settlement (at once, or from the ledger within a round),
    // and what the reports did not use is free again: a new request is held.
    await("every hold settled", () -> holdEvents(ReporterHolds.Event.SETTLED) == holds.size());
    // On either instance: the budget the reports left may sit on the other's lease until it goes
    // idle (README "Budget leases").
    CheckResponse onA = check(0, key.getSecret());
    CheckResponse after = onA.getStatus().getCode() == 0 ? onA : check(1, key.getSecret());
    assertThat(after.getStatus().getCode())
        .as("%s / %s", onA.getDeniedResponse().getBody(), after.getDeniedResponse().getBody())
        .isZero();
    assertThat(holdId(after)).isNotNull();
    assertThat(
            new BigDecimal(
                servers
                    .get(1)
                    .admin()
                    .getKey(GetKeyRequest.newBuilder().setId(keyId).build())
                    .getKey()
                    .getHoldUsdPerRequest()))
        .isEqualByComparingTo("0.10");
  }

  @Test
  void report_forgedMalformedOrForeignHoldId_rejectedNamingHoldIdNothingCharged() throws Exception {
    CreateKeyResponse a = key("1.00", "0.10", HoldExpiry.HOLD_EXPIRY_CHARGE);
    CreateKeyResponse b = key("1.00", "0.10", HoldExpiry.HOLD_EXPIRY_CHARGE);
    String hold = holdId(check(0, a.getSecret()));
    assertThat(hold).isNotNull();
    // One character of the signature changed.
    // A character inside the signature, not the last one: base64's last character may carry only
    // padding bits, so changing it can leave the decoded bytes (and the signature) as they were.
    int at = hold.length() - 6;
    char c = hold.charAt(at);
    String forged = hold.substring(0, at) + (c == 'A' ? 'B' : 'A') + hold.substring(at + 1);
    List<ReportUsageResponse> answers =
        send(
            1,
            List.of(
                report("forged", a.getKey().getId(), "0.05", forged),
                report("garbage", a.getKey().getId(), "0.05", "not-a-hold"),
                report("too-long", a.getKey().getId(), "0.05", "qh1_" + "A".repeat(400)),
                report("foreign", b.getKey().getId(), "0.05", hold)));
    for (ReportUsageResponse r : answers) {
      assertThat(r.getResult()).as(r.getReportId()).isEqualTo(UsageResult.USAGE_RESULT_REJECTED);
      assertThat(r.getMessage()).as(r.getReportId()).startsWith("hold_id");
    }
    assertThat(answers.get(0).getMessage()).contains("wrong signature");
    assertThat(answers.get(3).getMessage()).contains("another key");
    assertThat(db.count("SELECT count(*) FROM usage_events")).isZero();
  }

  @Test
  void holdNeverReported_chargeAtExpiry_chargedItsAmountOnceAndALateReportConflicts()
      throws Exception {
    CreateKeyResponse key = key("1.00", "0.25", HoldExpiry.HOLD_EXPIRY_CHARGE);
    String keyId = key.getKey().getId();
    String hold = holdId(check(0, key.getSecret()));
    assertThat(hold).isNotNull();

    // Past the default ttl (10 min) and the settle margin.
    clock.advance(Duration.ofMinutes(10).plus(ReporterHolds.SETTLE_MARGIN).plusSeconds(1));
    await(
        "the hold charged at its expiry",
        () -> db.count("SELECT count(*) FROM usage_events WHERE hold_id = ?", hold) == 1);
    assertThat(
            db.scalar(
                "SELECT cost::text || ' ' || estimated || ' ' || left(report_id, 13)"
                    + " FROM usage_events WHERE hold_id = ?",
                hold))
        .isEqualTo("0.25000000 true hold-expired:");
    await("the holder told", () -> holdEvents(ReporterHolds.Event.EXPIRED_CHARGED) == 1);
    assertThat(quotaUsed(keyId)).isEqualByComparingTo("0.25");

    // The reporter's answer, late: the hold was charged already, so this one is not.
    List<ReportUsageResponse> late = send(1, List.of(report("late", keyId, "0.10", hold)));
    assertThat(late.get(0).getResult()).isEqualTo(UsageResult.USAGE_RESULT_CONFLICT);
    assertThat(quotaUsed(keyId)).isEqualByComparingTo("0.25");
    assertThat(ledgerSum(keyId)).isEqualByComparingTo("0.25");
  }

  @Test
  void holdNeverReported_releaseAtExpiry_nothingChargedAndTheBudgetAdmitsAgain() throws Exception {
    CreateKeyResponse key = key("0.30", "0.30", HoldExpiry.HOLD_EXPIRY_RELEASE);
    String keyId = key.getKey().getId();
    assertThat(holdId(check(0, key.getSecret()))).isNotNull();
    CheckResponse second = check(1, key.getSecret());
    assertThat(second.getDeniedResponse().getStatus().getCodeValue())
        .as("the whole quota is held by the first request")
        .isEqualTo(429);
    assertThat(second.getDeniedResponse().getBody())
        .contains("0.00000000 USD of the key's quota remains");

    clock.advance(Duration.ofMinutes(10).plus(ReporterHolds.SETTLE_MARGIN).plusSeconds(1));
    await("the hold released", () -> holdEvents(ReporterHolds.Event.EXPIRED_RELEASED) == 1);
    // The holder's lease, now without holds and idle, goes back to the key within a round.
    await("the lease given back", () -> leased(keyId).signum() == 0);
    assertThat(holdId(check(1, key.getSecret()))).as("the budget admits again").isNotNull();
    assertThat(db.count("SELECT count(*) FROM usage_events")).isZero();
    assertThat(quotaUsed(keyId)).isEqualByComparingTo("0");
  }

  @Test
  void check_unlimitedKeyWithHold_allowedWithoutHold() throws Exception {
    CreateKeyResponse key = key("0", "0.10", HoldExpiry.HOLD_EXPIRY_CHARGE);
    CheckResponse r = check(0, key.getSecret());
    assertThat(r.getStatus().getCode()).isZero();
    assertThat(holdId(r)).as("no budget to hold against").isNull();
    assertThat(r.getOkResponse().getHeadersToRemoveList()).contains(GatewayHeaders.HOLD_ID);
  }
}
