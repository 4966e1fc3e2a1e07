package io.quotaauthority.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.Status;
import io.quotaauthority.config.Setting;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TcpProxy;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * PostgreSQL goes away (a real TCP proxy between server and database is cut) while reporters stream
 * usage, and comes back: nothing is acknowledged that is not committed, held reports are committed
 * without a restart or a resend, and nothing is counted twice.
 */
class DatabaseOutageIT {
  private static final String COST = "0.01";
  private static final int STREAMS = 2;

  private enum Phase {
    BEFORE,
    OUTAGE,
    AFTER
  }

  private TestDatabase db;
  private TcpProxy proxy;
  private TestServer server;

  @BeforeEach
  void start() throws Exception {
    db = TestDatabase.create();
    proxy = TcpProxy.toPostgres();
    server =
        TestServer.start(db, Map.of(Setting.DB_URL, proxy.jdbcUrl(db.name())), Clock.systemUTC());
  }

  @AfterEach
  void stop() throws Exception {
    try {
      proxy.restore();
      server.close();
    } finally {
      proxy.close();
      db.close();
    }
  }

  private CheckResponse check(String secret, long deadlineMillis) {
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(deadlineMillis, TimeUnit.MILLISECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build());
  }

  @Test
  void
      reportUsage_databaseCutMidStream_nothingAckedWhileAwayHeldReportsCommittedOnReturnNoneCountedTwice()
          throws Exception {
    CreateKeyResponse key =
        server
            .admin()
            .createKey(CreateKeyRequest.newBuilder().setName("outage").setQuotaUsd("1000").build());
    CreateKeyResponse cold =
        server.admin().createKey(CreateKeyRequest.newBuilder().setName("cold").build());
    String keyId = key.getKey().getId();
    // Only `key` stays in memory: `cold` was dropped with everything else and not asked for since.
    server.app().cache().invalidateAll();
    assertThat(check(key.getSecret(), 2000).getStatus().getCode()).isZero();

    List<UsageStream> streams = new ArrayList<>();
    for (int s = 0; s < STREAMS; s++) {
      streams.add(UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN));
    }
    Map<String, Phase> sent = new ConcurrentHashMap<>();
    final Phase[] phase = {Phase.BEFORE};
    final boolean[] stop = {false};
    // A reporter that never pauses: one report per stream every 4 ms, before, during and after.
    Thread sender =
        new Thread(
            () -> {
              for (int i = 0; ; i++) {
                Phase p;
                synchronized (phase) {
                  if (stop[0]) {
                    return;
                  }
                  p = phase[0];
                }
                for (int s = 0; s < STREAMS; s++) {
                  String id = "outage-" + s + "-" + i;
                  sent.put(id, p);
                  streams.get(s).send(UsageStream.report(id, keyId, COST));
                }
                try {
                  Thread.sleep(4);
                } catch (InterruptedException e) {
                  return;
                }
              }
            },
            "reporter");
    sender.start();
    try {
      awaitAccepted(streams, 100);

      proxy.cut();
      synchronized (phase) {
        phase[0] = Phase.OUTAGE;
      }
      long cutAt = System.nanoTime();
      // Answers for groups committed just before the cut may still be on the wire: let them land.
      Thread.sleep(500);
      int answeredAfterSettle = answered(streams);

      List<Integer> cachedCodes = new ArrayList<>();
      List<Integer> coldCodes = new ArrayList<>();
      List<Integer> coldHttp = new ArrayList<>();
      while (System.nanoTime() - cutAt < TimeUnit.SECONDS.toNanos(3)) {
        for (int i = 0; i < 5; i++) {
          cachedCodes.add(check(key.getSecret(), 1000).getStatus().getCode());
          Thread.sleep(20);
        }
        // The server waits for the database until just before this deadline, then answers 503.
        // (How close to a short deadline it answers is CheckOutageIT's business, not this one's.)
        CheckResponse c = check(cold.getSecret(), 1000);
        coldCodes.add(c.getStatus().getCode());
        coldHttp.add(c.getDeniedResponse().getStatus().getCodeValue());
      }
      Map<String, List<ReportUsageResponse>> beforeRestore = answersById(streams);
      int answeredAtRestore = answered(streams);
      long queuedAtRestore = server.app().batcher().queued();
      synchronized (phase) {
        phase[0] = Phase.AFTER;
      }
      proxy.restore();
      long restoredAt = System.nanoTime();

      Set<String> duringOutage = idsIn(sent, Phase.OUTAGE);
      assertThat(duringOutage)
          .as("reports sent while the database was away")
          .hasSizeGreaterThan(200);
      assertThat(answeredAtRestore)
          .as("no answer at all while the database was away")
          .isEqualTo(answeredAfterSettle);
      assertThat(duringOutage)
          .as("reports sent during the outage stay unanswered")
          .noneMatch(beforeRestore::containsKey);
      assertThat(cachedCodes)
          .as("Check on the cached key while the database is away")
          .isNotEmpty()
          .containsOnly(0);
      assertThat(coldCodes)
          .as("Check on an uncached key while the database is away")
          .containsOnly(14);
      assertThat(coldHttp).containsOnly(503);

      // Without a restart and without any resend, every held report is answered.
      long waitUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      Set<String> heldAnswered;
      do {
        Thread.sleep(50);
        heldAnswered = answersById(streams).keySet();
      } while (!heldAnswered.containsAll(duringOutage) && System.nanoTime() < waitUntil);
      long recoveredMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - restoredAt);
      Thread.sleep(300);
      synchronized (phase) {
        stop[0] = true;
      }
      sender.join();
      for (UsageStream st : streams) {
        st.finish();
        assertThat(st.status().getCode()).isEqualTo(Status.Code.OK);
      }

      Map<String, List<ReportUsageResponse>> answers = answersById(streams);
      assertThat(answers.keySet()).as("every report sent got an answer").isEqualTo(sent.keySet());
      Set<String> accepted = new HashSet<>();
      Map<UsageResult, Integer> tally = new HashMap<>();
      for (Map.Entry<String, List<ReportUsageResponse>> e : answers.entrySet()) {
        assertThat(e.getValue()).as("answered once: " + e.getKey()).hasSize(1);
        UsageResult r = e.getValue().get(0).getResult();
        tally.merge(r, 1, Integer::sum);
        assertThat(r).isIn(UsageResult.USAGE_RESULT_ACCEPTED, UsageResult.USAGE_RESULT_DUPLICATE);
        if (r == UsageResult.USAGE_RESULT_ACCEPTED) {
          accepted.add(e.getKey());
        }
      }
      // A report first sent while the database was away was never committed before: it is ACCEPTED.
      assertThat(accepted)
          .as("held reports are ACCEPTED after the return")
          .containsAll(duringOutage);

      // The client resends everything once more: all of it is already committed, so all DUPLICATE.
      UsageStream resend = UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN);
      sent.keySet().forEach(id -> resend.send(UsageStream.report(id, keyId, COST)));
      resend.finish();
      assertThat(resend.responses())
          .hasSize(sent.size())
          .allMatch(r -> r.getResult() == UsageResult.USAGE_RESULT_DUPLICATE);

      Ledger ledger = Ledger.of(db, keyId);
      assertThat(accepted)
          .allMatch(id -> ledger.rowsOf(id) == 1, "every ACCEPTED report is in the ledger once");
      assertThat(ledger.rowsPerReport().keySet()).isEqualTo(sent.keySet());
      assertThat(ledger.rows()).isEqualTo(sent.size());
      assertThat(ledger.quotaUsed()).isEqualByComparingTo(ledger.sum());
      assertThat(ledger.sum())
          .isEqualByComparingTo(new BigDecimal(COST).multiply(BigDecimal.valueOf(sent.size())));

      System.out.printf(
          "outage: sent %d (%d during the outage), answered before cut+0.5s %d, held at restore %d"
              + " queued, recovered in %d ms, %s, ledger rows %d, quota_used %s, cached checks %d OK, cold %d x 503%n",
          sent.size(),
          duringOutage.size(),
          answeredAfterSettle,
          queuedAtRestore,
          recoveredMillis,
          tally,
          ledger.rows(),
          ledger.quotaUsed().toPlainString(),
          cachedCodes.size(),
          coldCodes.size());
    } finally {
      synchronized (phase) {
        stop[0] = true;
      }
      sender.join(5_000);
    }
  }

  private static void awaitAccepted(List<UsageStream> streams, int n) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (answered(streams) < n && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(answered(streams)).isGreaterThanOrEqualTo(n);
  }

  private static int answered(List<UsageStream> streams) {
    int n = 0;
    for (UsageStream st : streams) {
      n += st.responses().size();
    }
    return n;
  }

  private static Map<String, List<ReportUsageResponse>> answersById(List<UsageStream> streams) {
    Map<String, List<ReportUsageResponse>> byId = new HashMap<>();
    for (UsageStream st : streams) {
      for (ReportUsageResponse r : st.responses()) {
        byId.computeIfAbsent(r.getReportId(), k -> new ArrayList<>()).add(r);
      }
    }
    return byId;
  }

  private static Set<String> idsIn(Map<String, Phase> sent, Phase phase) {
    Set<String> ids = new HashSet<>();
    sent.forEach(
        (id, p) -> {
          if (p == phase) {
            ids.add(id);
          }
        });
    return ids;
  }
}
