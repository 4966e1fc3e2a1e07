package io.quotaauthority.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The server's JVM is killed with SIGKILL while several streams report usage, then started again on
 * the same database and the client resends everything: what was acknowledged before the kill is
 * counted exactly once, nothing is counted twice.
 */
class KillDuringUsageIT {
  private static final String COST = "0.01";
  private static final int STREAMS = 4;
  private static final int PER_STREAM = 1_000;

  private TestDatabase db;
  private Path dataDir;
  private final List<ForkedServer> servers = new ArrayList<>();
  private final List<Long> startupMillis = new ArrayList<>();

  @BeforeEach
  void start() throws Exception {
    db = TestDatabase.create();
    dataDir = Files.createTempDirectory("qa-kill");
  }

  @AfterEach
  void stop() throws Exception {
    try {
      for (ForkedServer s : servers) {
        s.close();
      }
    } finally {
      db.close();
    }
  }

  private ForkedServer startServer() throws Exception {
    long start = System.nanoTime();
    ForkedServer s = ForkedServer.start(db.url(), dataDir);
    servers.add(s);
    s.awaitServing(Duration.ofSeconds(60));
    startupMillis.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
    return s;
  }

  @Test
  void
      reportUsage_serverKilledMidStreamsThenRestartedAndEverythingResent_ackedCountedOnceNothingTwice()
          throws Exception {
    ForkedServer first = startServer();
    String keyId =
        first
            .admin()
            .createKey(CreateKeyRequest.newBuilder().setName("kill").build())
            .getKey()
            .getId();

    List<UsageStream> streams = new ArrayList<>();
    for (int s = 0; s < STREAMS; s++) {
      streams.add(UsageStream.open(first.authzChannel(), ForkedServer.REPORTER_TOKEN));
    }
    Set<String> sent = ConcurrentHashMap.newKeySet();
    AtomicBoolean killed = new AtomicBoolean();
    List<Thread> senders = new ArrayList<>();
    for (int s = 0; s < STREAMS; s++) {
      int stream = s;
      Thread t =
          new Thread(
              () -> {
                for (int i = 0; i < PER_STREAM && !killed.get(); i++) {
                  String id = "kill-" + stream + "-" + i;
                  sent.add(id);
                  streams.get(stream).send(UsageStream.report(id, keyId, COST));
                  if (i % 20 == 19) {
                    sleep(2);
                  }
                }
              },
              "reporter-" + s);
      senders.add(t);
      t.start();
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (accepted(streams).size() < 500 && System.nanoTime() < deadline) {
      Thread.sleep(1);
    }
    first.process().destroyForcibly();
    killed.set(true);
    assertThat(first.process().waitFor(10, TimeUnit.SECONDS)).isTrue();
    for (Thread t : senders) {
      t.join();
    }
    // Every answer the dead server got onto the wire, once each stream has seen its end.
    for (UsageStream st : streams) {
      assertThat(st.status().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    }
    Set<String> ackedBeforeKill = accepted(streams);
    int sentBeforeKill = sent.size();
    long rowsAfterKill = Ledger.of(db, keyId).rows();

    ForkedServer second = startServer();
    // The client resends every report it ever sent, acknowledged or not, over several streams.
    List<UsageStream> resends = new ArrayList<>();
    for (int s = 0; s < STREAMS; s++) {
      resends.add(UsageStream.open(second.authzChannel(), ForkedServer.REPORTER_TOKEN));
    }
    int n = 0;
    for (String id : new LinkedHashSet<>(sent)) {
      resends.get(n++ % STREAMS).send(UsageStream.report(id, keyId, COST));
    }
    long resendStart = System.nanoTime();
    Map<String, UsageResult> resent = new HashMap<>();
    for (UsageStream st : resends) {
      st.finish();
      for (ReportUsageResponse r : st.responses()) {
        assertThat(resent.put(r.getReportId(), r.getResult()))
            .as("answered once: " + r.getReportId())
            .isNull();
      }
    }

    long resendMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - resendStart);
    assertThat(ackedBeforeKill).as("acks seen before the kill").hasSizeGreaterThanOrEqualTo(500);
    assertThat(sent)
        .as("reports unacknowledged at the kill")
        .hasSizeGreaterThan(ackedBeforeKill.size());
    assertThat(resent.keySet()).isEqualTo(sent);
    assertThat(resent.values())
        .isSubsetOf(UsageResult.USAGE_RESULT_ACCEPTED, UsageResult.USAGE_RESULT_DUPLICATE);
    assertThat(ackedBeforeKill)
        .as("acknowledged before the kill, so already committed")
        .allMatch(id -> resent.get(id) == UsageResult.USAGE_RESULT_DUPLICATE);
    Ledger ledger = Ledger.of(db, keyId);
    assertThat(ackedBeforeKill)
        .allMatch(id -> ledger.rowsOf(id) == 1, "every pre-kill ACCEPTED is in the ledger once");
    assertThat(ledger.rowsPerReport().keySet()).isEqualTo(sent);
    assertThat(ledger.rows()).isEqualTo(sent.size());
    BigDecimal expected = new BigDecimal(COST).multiply(BigDecimal.valueOf(sent.size()));
    assertThat(ledger.sum()).isEqualByComparingTo(expected);
    assertThat(ledger.quotaUsed()).isEqualByComparingTo(expected);
    long duplicates =
        resent.values().stream().filter(r -> r == UsageResult.USAGE_RESULT_DUPLICATE).count();
    System.out.printf(
        "kill -9: sent %d before the kill, %d acked before it, %d in the ledger after it"
            + " (%d committed but unacked); resent all: %d DUPLICATE, %d ACCEPTED; ledger rows %d, quota_used %s; serving after %s ms; resend took %d ms%n",
        sentBeforeKill,
        ackedBeforeKill.size(),
        rowsAfterKill,
        rowsAfterKill - ackedBeforeKill.size(),
        duplicates,
        resent.size() - duplicates,
        ledger.rows(),
        ledger.quotaUsed().toPlainString(),
        startupMillis,
        resendMillis);
  }

  private static Set<String> accepted(List<UsageStream> streams) {
    Set<String> ids = new HashSet<>();
    for (UsageStream st : streams) {
      for (ReportUsageResponse r : st.responses()) {
        if (r.getResult() == UsageResult.USAGE_RESULT_ACCEPTED) {
          ids.add(r.getReportId());
        }
      }
    }
    return ids;
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
