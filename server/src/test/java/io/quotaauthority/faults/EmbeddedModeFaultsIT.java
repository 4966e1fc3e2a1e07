package io.quotaauthority.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.config.Settings;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.store.Database;
import io.quotaauthority.testing.UsageStream;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The embedded default (no QUOTA_DB_URL) in a forked server JVM: SIGTERM drains queued usage into
 * the embedded PostgreSQL before it stops it (no racing hook), and a JVM killed with -9 leaves a
 * postmaster that the next start stops before it starts its own.
 */
class EmbeddedModeFaultsIT {
  private static final String COST = "0.01";
  private static final int STREAMS = 3;

  @TempDir Path dataDir;
  private final List<ForkedServer> servers = new ArrayList<>();

  private ForkedServer start(String... extraArgs) throws Exception {
    ForkedServer server = ForkedServer.start(null, dataDir, extraArgs);
    servers.add(server);
    // Embedded starts (initdb, crash recovery) are slow on a loaded machine.
    return server.awaitServing(Duration.ofSeconds(180));
  }

  @AfterEach
  void stop() throws Exception {
    for (ForkedServer server : servers) {
      if (server.process().isAlive()) {
        // Gracefully, so the embedded PostgreSQL is stopped too (destroyForcibly would orphan it).
        server.process().destroy();
        server.process().waitFor(30, TimeUnit.SECONDS);
      }
      server.close();
    }
    // Whatever a failed test left running in its data directory.
    postmaster()
        .ifPresent(
            p -> {
              p.descendants().forEach(ProcessHandle::destroyForcibly);
              p.destroyForcibly();
            });
  }

  private Optional<ProcessHandle> postmaster() throws IOException {
    Path pidFile = dataDir.resolve("pg").resolve("postmaster.pid");
    if (!Files.exists(pidFile)) {
      return Optional.empty();
    }
    return ProcessHandle.of(Long.parseLong(Files.readAllLines(pidFile).get(0).trim()));
  }

  @Test
  void shutdown_sigtermWithUsageQueuedInEmbeddedMode_allCommittedAndAcknowledged()
      throws Exception {
    // Groups wait 10 s: what is sent stays queued until the signal.
    ForkedServer server = start("--usage-commit-interval", "10s", "--shutdown-timeout", "10s");
    String keyId =
        server
            .admin()
            .createKey(CreateKeyRequest.newBuilder().setName("term").build())
            .getKey()
            .getId();
    List<UsageStream> streams = new ArrayList<>();
    for (int s = 0; s < STREAMS; s++) {
      streams.add(UsageStream.open(server.authzChannel(), ForkedServer.REPORTER_TOKEN));
    }
    Set<String> sent = new LinkedHashSet<>();
    for (int i = 0; i < 20; i++) {
      for (int s = 0; s < STREAMS; s++) {
        String id = "queued-" + s + "-" + i;
        sent.add(id);
        streams.get(s).send(UsageStream.report(id, keyId, COST));
      }
    }
    // A report that fails validation is answered at once, in stream order: once each stream's is
    // answered, every report sent before it has reached the server and waits in its queue.
    for (UsageStream stream : streams) {
      stream.send(UsageStream.report("sentinel", keyId, "-1"));
    }
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (sentinels(streams) < STREAMS && System.nanoTime() < until) {
      Thread.sleep(20);
    }
    assertThat(sentinels(streams))
        .as("streams whose sentinel was refused before the signal")
        .isEqualTo(STREAMS);
    int answeredAtSignal = answers(streams).size();
    server.process().destroy();

    assertThat(server.process().waitFor(60, TimeUnit.SECONDS)).as("exited").isTrue();
    for (UsageStream stream : streams) {
      stream.status(); // every answer delivered before the stream ended
    }
    Map<String, UsageResult> answered = answers(streams);
    System.out.printf(
        "embedded sigterm: %d sent, %d answered at the signal, %d answered in all, exit %d%n",
        sent.size(), answeredAtSignal, answered.size(), server.process().exitValue());
    assertThat(answered.keySet()).as("every queued report answered").isEqualTo(sent);
    assertThat(answered.values()).containsOnly(UsageResult.USAGE_RESULT_ACCEPTED);
    assertThat(postmaster()).as("PostgreSQL stopped with the server").isEmpty();

    // The ledger, read from the same data directory once the server is gone.
    Settings settings = Settings.load(Map.of("QUOTA_DATA_DIR", dataDir.toString()), List.of());
    try (Database database = Database.open(settings)) {
      Ledger ledger = Ledger.of(database.transactions(), keyId);
      for (String id : sent) {
        assertThat(ledger.rowsOf(id)).as(id).isEqualTo(1);
      }
      assertThat(ledger.rows()).isEqualTo(sent.size());
      assertThat(ledger.quotaUsed())
          .isEqualByComparingTo(new BigDecimal(COST).multiply(BigDecimal.valueOf(sent.size())));
    }
  }

  @Test
  void start_afterJvmKilledWithMinus9_orphanedPostmasterStoppedAndServes() throws Exception {
    ForkedServer first = start();
    String keyId =
        first
            .admin()
            .createKey(CreateKeyRequest.newBuilder().setName("orphan").build())
            .getKey()
            .getId();
    ProcessHandle orphan = postmaster().orElseThrow();
    first.process().destroyForcibly();
    assertThat(first.process().waitFor(30, TimeUnit.SECONDS)).isTrue();
    // kill -9 of the JVM leaves its PostgreSQL running: the situation under test.
    Thread.sleep(500);
    assertThat(orphan.isAlive()).as("postmaster outlives its JVM").isTrue();

    ForkedServer second = start();

    assertThat(second.logText())
        .contains("stopping an orphaned embedded PostgreSQL (pid " + orphan.pid() + ")");
    assertThat(orphan.isAlive()).isFalse();
    assertThat(postmaster().orElseThrow().pid()).isNotEqualTo(orphan.pid());
    assertThat(
            second
                .admin()
                .getKey(GetKeyRequest.newBuilder().setId(keyId).build())
                .getKey()
                .getName())
        .isEqualTo("orphan");
  }

  private static long sentinels(List<UsageStream> streams) {
    return streams.stream()
        .filter(
            st ->
                st.responses().stream()
                    .anyMatch(
                        r ->
                            r.getReportId().equals("sentinel")
                                && r.getResult() == UsageResult.USAGE_RESULT_REJECTED))
        .count();
  }

  /** Answers by report id, the sentinels left out. */
  private static Map<String, UsageResult> answers(List<UsageStream> streams) {
    Map<String, UsageResult> byId = new HashMap<>();
    for (UsageStream st : streams) {
      for (ReportUsageResponse r : st.responses()) {
        if (r.getReportId().equals("sentinel")) {
          continue;
        }
        assertThat(byId.put(r.getReportId(), r.getResult()))
            .as("answered once: " + r.getReportId())
            .isNull();
      }
    }
    return byId;
  }
}
