package io.quotaauthority.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.StreamObserver;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * SIGTERM to the server's JVM while usage streams have reports waiting for their group commit:
 * health turns NOT_SERVING, new streams are refused, the pending usage is committed and
 * acknowledged, and the process exits within QUOTA_SHUTDOWN_TIMEOUT.
 */
class SigtermIT {
  private static final String COST = "0.01";
  private static final int STREAMS = 3;
  private static final long SHUTDOWN_TIMEOUT_MILLIS = 5_000;
  private static final long SLACK_MILLIS = 3_000;
  private static final String SENTINEL = "sentinel-";

  private TestDatabase db;
  private ForkedServer server;
  private ManagedChannel pollChannel;
  private ManagedChannel freshChannel;

  @BeforeEach
  void start() throws Exception {
    db = TestDatabase.create();
    server =
        ForkedServer.start(
                db.url(),
                Files.createTempDirectory("qa-sigterm"),
                "--usage-commit-interval",
                "500ms",
                "--shutdown-timeout",
                "5s")
            .awaitServing(Duration.ofSeconds(60));
    pollChannel = ForkedServer.channel(server.authzPort());
  }

  @AfterEach
  void stop() throws Exception {
    try {
      server.close();
      pollChannel.shutdownNow();
      if (freshChannel != null) {
        freshChannel.shutdownNow();
      }
    } finally {
      db.close();
    }
  }

  @Test
  void shutdown_sigtermWithUsagePending_notServingNewStreamsRefusedPendingAckedExitsWithinTimeout()
      throws Exception {
    String keyId =
        server
            .admin()
            .createKey(CreateKeyRequest.newBuilder().setName("term").build())
            .getKey()
            .getId();

    // Health as a load balancer sees it: a Watch stream, and a poller of Check on its own
    // connection.
    // The watcher hangs up once told NOT_SERVING, as a load balancer dropping this endpoint would:
    // the server does not end Watch calls itself, so an open one would hold it to the timeout.
    List<ServingStatus> watched = new CopyOnWriteArrayList<>();
    Context.CancellableContext watch = Context.current().withCancellation();
    watch.run(
        () ->
            HealthGrpc.newStub(server.authzChannel())
                .watch(
                    HealthCheckRequest.getDefaultInstance(),
                    new StreamObserver<>() {
                      @Override
                      public void onNext(HealthCheckResponse r) {
                        watched.add(r.getStatus());
                        if (r.getStatus() == ServingStatus.NOT_SERVING) {
                          watch.cancel(null);
                        }
                      }

                      @Override
                      public void onError(Throwable t) {}

                      @Override
                      public void onCompleted() {}
                    }));
    List<String> polled = new CopyOnWriteArrayList<>();
    Thread poller =
        new Thread(
            () -> {
              while (server.process().isAlive() || polled.isEmpty()) {
                try {
                  polled.add(ForkedServer.health(pollChannel, 1_000).name());
                } catch (StatusRuntimeException e) {
                  polled.add(e.getStatus().getCode().name());
                }
                sleep(20);
              }
            },
            "health-poller");
    poller.start();

    List<UsageStream> streams = new ArrayList<>();
    for (int s = 0; s < STREAMS; s++) {
      streams.add(UsageStream.open(server.authzChannel(), ForkedServer.REPORTER_TOKEN));
    }
    Set<String> beforeSignal = new LinkedHashSet<>();
    send(streams, keyId, "early", 20, beforeSignal);
    awaitAnswers(streams, beforeSignal.size());
    int ackedBeforePending = answers(streams).size();
    // These wait up to 500 ms for their group: the signal comes while they are pending.
    send(streams, keyId, "pending", 30, beforeSignal);
    UsageStream late = UsageStream.open(server.authzChannel(), ForkedServer.REPORTER_TOKEN);
    Set<String> lateSent = new LinkedHashSet<>();
    late.send(UsageStream.report("late-0", keyId, COST));
    lateSent.add("late-0");
    // A report the stream refuses at once (no cost) after the pending ones: its answer proves the
    // server has read, and queued, every report sent before it on that stream. Without it, a
    // loaded machine may not have read them yet when the signal comes, and they would rightly go
    // unanswered.
    for (int s = 0; s < STREAMS; s++) {
      streams.get(s).send(UsageStream.report(SENTINEL + s, keyId, "not-a-cost"));
    }
    awaitSentinels(streams);
    int ackedAtSignal = answers(streams).size() - STREAMS;

    long signalAt = System.nanoTime();
    server.process().destroy();

    // A reporter that does not know yet: it keeps sending on its open stream until the stream ends.
    CompletableFuture<Status> lateEnded = new CompletableFuture<>();
    Thread lateWatcher =
        new Thread(
            () -> {
              try {
                lateEnded.complete(late.status());
              } catch (InterruptedException e) {
                lateEnded.completeExceptionally(e);
              }
            },
            "late-watcher");
    lateWatcher.setDaemon(true);
    lateWatcher.start();
    Thread lateSender =
        new Thread(
            () -> {
              for (int i = 1; server.process().isAlive() && !lateEnded.isDone(); i++) {
                synchronized (lateSent) {
                  lateSent.add("late-" + i);
                }
                late.send(UsageStream.report("late-" + i, keyId, COST));
                sleep(10);
              }
            },
            "late-reporter");
    lateSender.start();

    // Once shutdown has begun, new streams are refused, on an open connection and on a new one.
    long waitUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (!watched.contains(ServingStatus.NOT_SERVING) && System.nanoTime() < waitUntil) {
      Thread.sleep(5);
    }
    Thread.sleep(100);
    UsageStream onOpenChannel =
        UsageStream.open(server.authzChannel(), ForkedServer.REPORTER_TOKEN)
            .send(UsageStream.report("refused-open", keyId, COST));
    freshChannel = ForkedServer.channel(server.authzPort());
    UsageStream onNewChannel =
        UsageStream.open(freshChannel, ForkedServer.REPORTER_TOKEN)
            .send(UsageStream.report("refused-new", keyId, COST));
    Status refusedOpen = onOpenChannel.status();
    Status refusedNew = onNewChannel.status();

    boolean exited =
        server
            .process()
            .waitFor(SHUTDOWN_TIMEOUT_MILLIS + SLACK_MILLIS + 5_000, TimeUnit.MILLISECONDS);
    long exitMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - signalAt);
    poller.join(5_000);
    lateSender.join(5_000);
    List<Status> streamEnds = new ArrayList<>();
    for (UsageStream st : streams) {
      streamEnds.add(st.status());
    }
    Status lateEnd = late.status();

    Map<String, UsageResult> answered = answers(streams);
    for (int s = 0; s < STREAMS; s++) {
      assertThat(answered.remove(SENTINEL + s))
          .as("sentinel " + s)
          .isEqualTo(UsageResult.USAGE_RESULT_REJECTED);
    }
    Map<String, UsageResult> lateAnswered = answers(List.of(late));
    Ledger ledger = Ledger.of(db, keyId);
    long accepted =
        answered.size()
            + lateAnswered.values().stream()
                .filter(r -> r == UsageResult.USAGE_RESULT_ACCEPTED)
                .count();
    System.out.printf(
        "sigterm: exit code %s after %d ms (bound %d ms + %d ms slack); watched %s; polled %s;"
            + " %d reports before the signal (%d acked before the pending %d, %d at the signal), %d acked in all;"
            + " late stream sent %d after the signal, %d ACCEPTED, ended %s; other streams ended %s;"
            + " new streams: open connection %s, new connection %s; ledger rows %d, quota_used %s%n",
        exited ? server.process().exitValue() : "none",
        exitMillis,
        SHUTDOWN_TIMEOUT_MILLIS,
        SLACK_MILLIS,
        watched,
        compress(polled),
        beforeSignal.size(),
        ackedBeforePending,
        STREAMS * 30,
        ackedAtSignal,
        answered.size(),
        lateSent.size() - 1,
        lateAnswered.size(),
        lateEnd.getCode(),
        streamEnds.stream().map(Status::getCode).toList(),
        refusedOpen.getCode(),
        refusedNew.getCode(),
        ledger.rows(),
        ledger.quotaUsed().toPlainString());

    assertThat(exited).as("exited at all").isTrue();
    assertThat(exitMillis)
        .as("exit after SIGTERM, ms")
        .isLessThanOrEqualTo(SHUTDOWN_TIMEOUT_MILLIS + SLACK_MILLIS);
    assertThat(watched)
        .as("health watch")
        .startsWith(ServingStatus.SERVING)
        .contains(ServingStatus.NOT_SERVING);
    assertThat(watched.subList(watched.indexOf(ServingStatus.NOT_SERVING), watched.size()))
        .as("no SERVING after the first NOT_SERVING")
        .containsOnly(ServingStatus.NOT_SERVING);
    int firstDown = indexOfFirstNot(polled, "SERVING");
    assertThat(firstDown).as("a poll saw the server go").isPositive();
    assertThat(polled.subList(firstDown, polled.size()))
        .as("polls once the server went")
        .isSubsetOf("NOT_SERVING", "UNAVAILABLE");
    assertThat(streamEnds)
        .as("usage streams end: resend what was not answered")
        .extracting(Status::getCode)
        .containsOnly(Status.Code.UNAVAILABLE);
    assertThat(lateEnd.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(refusedOpen.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(refusedNew.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(ledger.rowsOf("refused-open") + ledger.rowsOf("refused-new")).isZero();

    // Pending usage was committed and acknowledged before the process went away.
    assertThat(answered.keySet())
        .as("every report sent before the signal was answered")
        .isEqualTo(beforeSignal);
    assertThat(answered.values()).containsOnly(UsageResult.USAGE_RESULT_ACCEPTED);
    assertThat(lateAnswered.values()).allMatch(r -> r == UsageResult.USAGE_RESULT_ACCEPTED);
    // Either acknowledged and in the ledger once, or not acknowledged and not in the ledger.
    for (String id : beforeSignal) {
      assertThat(ledger.rowsOf(id)).as(id).isEqualTo(1);
    }
    for (String id : lateSent) {
      assertThat(ledger.rowsOf(id))
          .as("late report " + id + " answered " + lateAnswered.get(id))
          .isEqualTo(lateAnswered.containsKey(id) ? 1 : 0);
    }
    assertThat(ledger.rows()).isEqualTo(accepted);
    assertThat(ledger.sum())
        .isEqualByComparingTo(new BigDecimal(COST).multiply(BigDecimal.valueOf(accepted)));
    assertThat(ledger.quotaUsed()).isEqualByComparingTo(ledger.sum());
  }

  private static void send(
      List<UsageStream> streams, String keyId, String prefix, int perStream, Set<String> sent) {
    for (int i = 0; i < perStream; i++) {
      for (int s = 0; s < streams.size(); s++) {
        String id = prefix + "-" + s + "-" + i;
        sent.add(id);
        streams.get(s).send(UsageStream.report(id, keyId, COST));
      }
    }
  }

  private static void awaitSentinels(List<UsageStream> streams) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    for (int s = 0; s < streams.size(); s++) {
      String id = SENTINEL + s;
      UsageStream st = streams.get(s);
      while (st.responses().stream().noneMatch(r -> r.getReportId().equals(id))
          && System.nanoTime() < deadline) {
        Thread.sleep(2);
      }
      assertThat(st.responses())
          .as("sentinel answered on stream " + s)
          .anyMatch(r -> r.getReportId().equals(id));
    }
  }

  private static void awaitAnswers(List<UsageStream> streams, int n) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (answers(streams).size() < n && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(answers(streams)).hasSize(n);
  }

  private static Map<String, UsageResult> answers(List<UsageStream> streams) {
    Map<String, UsageResult> byId = new HashMap<>();
    for (UsageStream st : streams) {
      for (ReportUsageResponse r : st.responses()) {
        assertThat(byId.put(r.getReportId(), r.getResult()))
            .as("answered once: " + r.getReportId())
            .isNull();
      }
    }
    return byId;
  }

  private static int indexOfFirstNot(List<String> values, String value) {
    for (int i = 0; i < values.size(); i++) {
      if (!values.get(i).equals(value)) {
        return i;
      }
    }
    return -1;
  }

  /** "SERVING x12, UNAVAILABLE x30": the poll log without its repeats. */
  private static String compress(List<String> values) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < values.size(); ) {
      int j = i;
      while (j < values.size() && values.get(j).equals(values.get(i))) {
        j++;
      }
      out.append(out.length() == 0 ? "" : ", ").append(values.get(i)).append(" x").append(j - i);
      i = j;
    }
    return out.toString();
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
