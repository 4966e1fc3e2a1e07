package io.quotaauthority.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.nio.NioEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioSocketChannel;
import io.quotaauthority.config.Setting;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Far more usage than a tiny queue holds: streams are held back rather than refused or buffered
 * without bound, every report is still answered once, and Check still allows cached keys all along
 * (never refused, never an error, never held behind usage). How fast Check answers during such a
 * flood is the bench's to measure; the probe's deadline here only stops a call that would hang.
 * That held reports are retried one per stream, not one each (no busy loop), is HeldReportsTest's
 * exact count of offers.
 */
class OverloadIT {
  private static final int QUEUE_MAX = 16;
  private static final int STREAMS = 8;
  private static final int PER_STREAM = 500;
  private static final String COST = "0.001";

  /** A hang guard, not a target. */
  private static final long CHECK_DEADLINE_MILLIS = 10_000;

  private TestDatabase db;
  private TestServer server;
  private final List<EventLoopGroup> clientLoops = new ArrayList<>();
  private ManagedChannel checkChannel;
  private ManagedChannel usageChannel;

  @BeforeEach
  void start() {
    db = TestDatabase.create();
    server =
        TestServer.start(
            db,
            Map.of(
                Setting.USAGE_QUEUE_MAX,
                Integer.toString(QUEUE_MAX),
                Setting.USAGE_COMMIT_MAX,
                "8"),
            Clock.systemUTC());
    // Envoy's ext_authz calls and the reporters come from other processes, on their own
    // connections. In one JVM, client and server channels would share gRPC's default event loops,
    // and the test's own client writing thousands of reports would hold up the server's Check.
    usageChannel = clientChannel();
    checkChannel = clientChannel();
  }

  private ManagedChannel clientChannel() {
    EventLoopGroup loop = new NioEventLoopGroup(1);
    clientLoops.add(loop);
    return NettyChannelBuilder.forAddress("127.0.0.1", server.app().authzPort())
        .eventLoopGroup(loop)
        .channelType(NioSocketChannel.class)
        .usePlaintext()
        .build();
  }

  @AfterEach
  void stop() throws Exception {
    try {
      checkChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      usageChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      for (EventLoopGroup loop : clientLoops) {
        loop.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      }
      server.close();
    } finally {
      db.close();
    }
  }

  @Test
  void reportUsage_thousandsOfReportsIntoQueueOf16_allAcceptedOnceQueueBoundedCheckStillAllows()
      throws Exception {
    List<String> keys = new ArrayList<>();
    List<CheckRequest> checks = new ArrayList<>();
    for (int k = 0; k < 4; k++) {
      // Unlimited and limited keys: a limited key's Check also reads the pending usage.
      CreateKeyResponse key =
          server
              .admin()
              .createKey(
                  CreateKeyRequest.newBuilder()
                      .setName("load-" + k)
                      .setQuotaUsd(k % 2 == 0 ? "0" : "1000")
                      .build());
      keys.add(key.getKey().getId());
      checks.add(EnvoyChecks.post("/v1/chat/completions").bearer(key.getSecret()).build());
    }
    for (CheckRequest c : checks) {
      // Cached from here on.
      assertThat(
              AuthorizationGrpc.newBlockingStub(checkChannel)
                  .withDeadlineAfter(2, TimeUnit.SECONDS)
                  .check(c)
                  .getStatus()
                  .getCode())
          .isZero();
    }

    AtomicBoolean done = new AtomicBoolean();
    AtomicInteger maxQueued = new AtomicInteger();
    AtomicInteger samples = new AtomicInteger();
    Thread sampler =
        new Thread(
            () -> {
              while (!done.get()) {
                maxQueued.accumulateAndGet(server.app().batcher().queued(), Math::max);
                samples.incrementAndGet();
                LockSupport.parkNanos(200_000);
              }
            },
            "queue-sampler");
    CheckProbe loaded = new CheckProbe(checks);
    Thread checker = new Thread(() -> loaded.runUntil(done), "checker");
    sampler.start();
    checker.start();

    List<UsageStream> streams = new ArrayList<>();
    for (int s = 0; s < STREAMS; s++) {
      streams.add(UsageStream.open(usageChannel, TestServer.REPORTER_TOKEN));
    }
    // Two client threads, four streams each, 25 reports per stream every 5 ms: 40,000 reports/s
    // offered, far more than commits of 8 can take. (Few threads: the client shares the 2 cores.)
    List<Thread> senders = new ArrayList<>();
    for (int half = 0; half < 2; half++) {
      int first = half * STREAMS / 2;
      Thread t =
          new Thread(
              () -> {
                for (int from = 0; from < PER_STREAM; from += 25) {
                  for (int s = first; s < first + STREAMS / 2; s++) {
                    for (int i = from; i < Math.min(PER_STREAM, from + 25); i++) {
                      streams
                          .get(s)
                          .send(
                              UsageStream.report(
                                  "load-" + s + "-" + i, keys.get(i % keys.size()), COST));
                    }
                  }
                  LockSupport.parkNanos(5_000_000);
                }
              },
              "sender-" + half);
      senders.add(t);
      t.start();
    }
    try {
      for (Thread t : senders) {
        t.join();
      }
      for (UsageStream st : streams) {
        st.finish();
      }
    } finally {
      done.set(true);
      sampler.join();
      checker.join();
    }
    int total = STREAMS * PER_STREAM;
    System.out.printf(
        "overload: %d reports over %d streams, answers %s; queue max %d of %d over %d samples;"
            + " Checks during the flood: %s%n",
        total, STREAMS, tally(streams), maxQueued.get(), QUEUE_MAX, samples.get(), loaded.outcomes);

    Map<String, Integer> answers = new HashMap<>();
    for (UsageStream st : streams) {
      for (ReportUsageResponse r : st.responses()) {
        assertThat(r.getResult())
            .as(r.getReportId() + ": " + r.getMessage())
            .isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
        answers.merge(r.getReportId(), 1, Integer::sum);
      }
    }
    assertThat(answers).as("each report answered").hasSize(total);
    assertThat(answers.values()).as("answered once").containsOnly(1);
    assertThat(samples.get()).isPositive();
    assertThat(maxQueued.get()).as("queue length seen").isPositive().isLessThanOrEqualTo(QUEUE_MAX);

    int calls = loaded.outcomes.values().stream().mapToInt(Integer::intValue).sum();
    assertThat(calls).isGreaterThan(100);
    assertThat(loaded.outcomes.keySet())
        .as("Check outcomes during the flood: every one allowed")
        .containsExactly("code 0");

    BigDecimal charged = BigDecimal.ZERO;
    long rows = 0;
    for (String key : keys) {
      Ledger ledger = Ledger.of(db, key);
      assertThat(ledger.quotaUsed()).isEqualByComparingTo(ledger.sum());
      assertThat(ledger.rowsPerReport().values()).containsOnly(1L);
      charged = charged.add(ledger.sum());
      rows += ledger.rows();
      assertThat(server.app().pendingUsage().of(Long.parseLong(key)))
          .as("nothing left pending")
          .isZero();
    }
    assertThat(rows).isEqualTo(total);
    assertThat(charged)
        .isEqualByComparingTo(new BigDecimal(COST).multiply(BigDecimal.valueOf(total)));
  }

  /** Check on cached keys, one call every 5 ms until stopped: the outcomes seen. */
  private final class CheckProbe {
    final List<CheckRequest> checks;
    final Map<String, Integer> outcomes = new ConcurrentHashMap<>();

    CheckProbe(List<CheckRequest> checks) {
      this.checks = checks;
    }

    void runUntil(AtomicBoolean stop) {
      var authz = AuthorizationGrpc.newBlockingStub(checkChannel);
      for (int i = 0; !stop.get(); i++) {
        String outcome;
        try {
          outcome =
              "code "
                  + authz
                      .withDeadlineAfter(CHECK_DEADLINE_MILLIS, TimeUnit.MILLISECONDS)
                      .check(checks.get(i % checks.size()))
                      .getStatus()
                      .getCode();
        } catch (StatusRuntimeException e) {
          outcome = e.getStatus().getCode().name();
        }
        outcomes.merge(outcome, 1, Integer::sum);
        LockSupport.parkNanos(5_000_000);
      }
    }
  }

  private static Map<UsageResult, Integer> tally(List<UsageStream> streams) {
    Map<UsageResult, Integer> t = new HashMap<>();
    streams.forEach(st -> st.responses().forEach(r -> t.merge(r.getResult(), 1, Integer::sum)));
    return t;
  }
}
