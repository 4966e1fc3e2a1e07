package io.quotaauthority;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.util.internal.PlatformDependent;
import io.grpc.protobuf.services.HealthStatusManager;
import io.quotaauthority.config.Setting;
import io.quotaauthority.config.Settings;
import io.quotaauthority.testing.RawHttp2;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.nio.file.Files;
import java.time.Clock;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Issue 12 point 4 against a real server on real ports, with a hand-written HTTP/2 client ({@link
 * RawHttp2}) doing what Envoy and attackers do: ping every few seconds, and open streams whose gRPC
 * message declares 39 MiB.
 */
class TransportLimitsIT {
  private static final String PROCESS = "envoy.service.ext_proc.v3.ExternalProcessor/Process";
  private static final String HEALTH_CHECK = "grpc.health.v1.Health/Check";
  private static final int MIB = 1024 * 1024;
  private static final int DECLARED = 39 * MIB - 1;

  private static TestDatabase db;

  @BeforeAll
  static void database() {
    db = TestDatabase.create();
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
  }

  private static QuotaAuthority start() throws Exception {
    Map<Setting, String> s = new EnumMap<>(Setting.class);
    s.put(Setting.DB_URL, db.url());
    s.put(Setting.DB_USER, "postgres");
    s.put(Setting.DATA_DIR, Files.createTempDirectory("qa-transport").toString());
    s.put(Setting.AUTHZ_PORT, "0");
    s.put(Setting.ADMIN_PORT, "0");
    s.put(Setting.METERING_PORT, "0");
    s.put(Setting.METRICS_PORT, "0");
    s.put(Setting.METERING_TOKEN, TestServer.METERING_TOKEN);
    s.put(Setting.ADMIN_TOKEN, TestServer.ADMIN_TOKEN);
    s.put(Setting.REPORTER_TOKEN, TestServer.REPORTER_TOKEN);
    return QuotaAuthority.start(Settings.of(s), Clock.systemUTC());
  }

  private static ManagedChannel channel(int port) {
    return ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
  }

  private static byte[] processingRequest(String path) {
    HeaderMap h =
        HeaderMap.newBuilder()
            .addHeaders(
                HeaderValue.newBuilder()
                    .setKey(":method")
                    .setRawValue(ByteString.copyFromUtf8("GET")))
            .addHeaders(
                HeaderValue.newBuilder().setKey(":path").setRawValue(ByteString.copyFromUtf8(path)))
            .build();
    return RawHttp2.grpcMessage(
        ProcessingRequest.newBuilder()
            .setRequestHeaders(HttpHeaders.newBuilder().setHeaders(h))
            .build()
            .toByteArray());
  }

  /**
   * Envoy-like pings (every 2 s, for 60 s) on an idle connection and on one holding an open
   * ext_proc stream, at the same time: every ping is ACKed, no GOAWAY, and the stream still works.
   */
  @Test
  void pings_every2sFor60sOnIdleAndOpenExtProcConnections_allAckedNoGoAway() throws Exception {
    try (QuotaAuthority app = start();
        RawHttp2 idle = RawHttp2.connect(app.authzPort());
        RawHttp2 busy = RawHttp2.connect(app.meteringPort())) {
      int stream = busy.openGrpcCall(PROCESS, TestServer.METERING_TOKEN);
      byte[] first = processingRequest("/healthz");
      assertThat(busy.send(stream, first, 0, first.length, 10_000)).isTrue();
      assertThat(busy.await(() -> busy.dataBytes(stream) > 0, 10_000)).as("first answer").isTrue();
      long answered = busy.dataBytes(stream);

      int pings = 30;
      for (int i = 1; i <= pings; i++) {
        idle.ping(i);
        busy.ping(i);
        Thread.sleep(2_000);
      }

      assertThat(idle.await(() -> idle.pingAcks() == pings, 5_000)).as("idle acks").isTrue();
      assertThat(busy.await(() -> busy.pingAcks() == pings, 5_000)).as("busy acks").isTrue();
      assertThat(idle.goAways()).isEmpty();
      assertThat(busy.goAways()).isEmpty();
      assertThat(busy.reset(stream)).isNull();
      assertThat(busy.grpcStatus(stream)).as("stream still open").isNull();
      // The ext_proc stream lived through it: the next message is answered on it.
      byte[] second = processingRequest("/again");
      assertThat(busy.send(stream, second, 0, second.length, 10_000)).isTrue();
      assertThat(busy.await(() -> busy.dataBytes(stream) > answered, 10_000))
          .as("second answer")
          .isTrue();
      assertThat(idle.connected()).isTrue();
      assertThat(busy.connected()).isTrue();
    }
  }

  /** The control: grpc-java's default enforcement is what Envoy's pings ran into. */
  @Test
  void pings_every2sWithoutTransportSettings_getGoAwayTooManyPings() throws Exception {
    HealthStatusManager health = new HealthStatusManager();
    Server bare =
        NettyServerBuilder.forPort(0).addService(health.getHealthService()).build().start();
    try (RawHttp2 c = RawHttp2.connect(bare.getPort())) {
      for (int i = 1; i <= 5 && c.goAways().isEmpty(); i++) {
        c.ping(i);
        Thread.sleep(2_000);
      }
      assertThat(c.await(() -> !c.goAways().isEmpty(), 5_000)).isTrue();
      assertThat(c.goAways().get(0).errorCode()).isEqualTo(0xb); // ENHANCE_YOUR_CALM
      assertThat(c.goAways().get(0).debug()).isEqualTo("too_many_pings");
    } finally {
      bare.shutdownNow();
    }
  }

  /**
   * With gRPC's usual 4 MiB (the authz port's limit: metering has its own listener), 12 streams
   * declaring 39 MiB minus one byte are refused RESOURCE_EXHAUSTED from their 5-byte prefix (only
   * 16 KiB of each is ever sent: the deframer does not wait for, or buffer, the rest), and Checks
   * on another connection answer.
   */
  @Test
  void largeMessages_limit4MiB_refusedFromThePrefixAndChecksAnswer() throws Exception {
    try (QuotaAuthority app = start();
        RawHttp2 attacker = RawHttp2.connect(app.authzPort())) {
      ManagedChannel checks = channel(app.authzPort());
      try {
        byte[] chunk = new byte[16 * 1024];
        List<Integer> streams = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
          // Health is served on the authz port with no credential: the deframer's limit is all
          // that stands between a stranger and the heap.
          int stream = attacker.openGrpcCall(HEALTH_CHECK);
          byte[] prefix = RawHttp2.grpcPrefix(DECLARED);
          assertThat(attacker.send(stream, prefix, 0, prefix.length, 10_000)).isTrue();
          attacker.send(stream, chunk, 0, chunk.length, 10_000);
          streams.add(stream);
        }
        for (int stream : streams) {
          assertThat(attacker.await(() -> attacker.grpcStatus(stream) != null, 10_000))
              .as("stream %d answered", stream)
              .isTrue();
          assertThat(attacker.grpcStatus(stream)).isEqualTo("8"); // RESOURCE_EXHAUSTED
        }
        for (int i = 0; i < 20; i++) {
          assertThat(check(checks).getStatus().getCode()).isEqualTo(16);
        }
        assertThat(attacker.goAways()).isEmpty();
      } finally {
        checks.shutdownNow();
      }
    }
  }

  /**
   * The metering limit (40 MiB): 12 streams each hold 39 MiB minus one byte of a message that never
   * completes, while Checks run on another connection; every Check is answered and the server stays
   * up. Prints the direct memory the held messages took.
   */
  @Test
  void largeMessages_limit40MiB_12HeldStreamsAndChecksStillAnswer() throws Exception {
    try (QuotaAuthority app = start()) {
      ManagedChannel checks = channel(app.authzPort());
      AtomicBoolean stop = new AtomicBoolean();
      AtomicInteger answered = new AtomicInteger();
      AtomicInteger failed = new AtomicInteger();
      AtomicLong slowestMillis = new AtomicLong();
      Thread checker =
          new Thread(
              () -> {
                while (!stop.get()) {
                  long t0 = System.nanoTime();
                  try {
                    check(checks);
                    answered.incrementAndGet();
                  } catch (RuntimeException e) {
                    failed.incrementAndGet();
                  }
                  slowestMillis.accumulateAndGet(
                      TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), Math::max);
                  sleep(20);
                }
              });
      long directBefore = PlatformDependent.usedDirectMemory();
      // The metering listener takes 40 MiB, so only its token's holder (Envoy, or whoever stole
      // the token) can do this; Checks on the authz port must not notice.
      try (RawHttp2 attacker = RawHttp2.connect(app.meteringPort())) {
        checker.start();
        byte[] chunk = new byte[MIB];
        for (int i = 0; i < 12; i++) {
          int stream = attacker.openGrpcCall(PROCESS, TestServer.METERING_TOKEN);
          byte[] prefix = RawHttp2.grpcPrefix(DECLARED + 1);
          assertThat(attacker.send(stream, prefix, 0, prefix.length, 10_000)).isTrue();
          // 39 MiB minus one byte of a 39 MiB message: held, never delivered.
          int left = DECLARED;
          while (left > 0) {
            int n = Math.min(left, chunk.length);
            assertThat(attacker.send(stream, chunk, 0, n, 30_000))
                .as("stream %d accepted", i)
                .isTrue();
            left -= n;
          }
        }
        long directHeld = PlatformDependent.usedDirectMemory();
        int before = answered.get();
        assertThat(awaitCount(answered, before + 20)).as("Checks answered while held").isTrue();
        assertThat(attacker.goAways()).isEmpty();
        assertThat(attacker.connected()).isTrue();
        System.out.printf(
            "12 x 39 MiB held: direct memory %d MiB before, %d MiB held;"
                + " Checks answered %d, failed %d, slowest %d ms%n",
            directBefore / MIB,
            directHeld / MIB,
            answered.get(),
            failed.get(),
            slowestMillis.get());
      } finally {
        stop.set(true);
        checker.join(10_000);
      }
      assertThat(failed).hasValue(0);
      ManagedChannel health = channel(app.authzPort());
      try {
        assertThat(
                HealthGrpc.newBlockingStub(health)
                    .withDeadlineAfter(5, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance())
                    .getStatus())
            .isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
      } finally {
        health.shutdownNow();
        checks.shutdownNow();
      }
    }
  }

  private static CheckResponse check(ManagedChannel channel) {
    return AuthorizationGrpc.newBlockingStub(channel)
        .withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(CheckRequest.getDefaultInstance());
  }

  private static boolean awaitCount(AtomicInteger n, int atLeast) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (n.get() < atLeast && System.nanoTime() < end) {
      Thread.sleep(20);
    }
    return n.get() >= atLeast;
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
