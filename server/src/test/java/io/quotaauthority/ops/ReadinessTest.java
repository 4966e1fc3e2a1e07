package io.quotaauthority.ops;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Readiness itself: named checks, the result, and the gRPC health status it drives. */
class ReadinessTest {
  private HealthStatusManager health;
  private Server server;
  private ManagedChannel channel;

  @BeforeEach
  void start() throws Exception {
    health = new HealthStatusManager();
    String name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name).addService(health.getHealthService()).build().start();
    channel = InProcessChannelBuilder.forName(name).build();
  }

  @AfterEach
  void stop() {
    channel.shutdownNow();
    server.shutdownNow();
  }

  private ServingStatus grpcStatus() {
    return HealthGrpc.newBlockingStub(channel)
        .check(HealthCheckRequest.getDefaultInstance())
        .getStatus();
  }

  private Readiness readiness(List<Readiness.Check> checks) {
    return new Readiness(checks, health, Duration.ofHours(1));
  }

  @Test
  void start_everyCheckPasses_readyAndServing() {
    try (Readiness r = readiness(List.of(Readiness.check("database", () -> true)))) {
      r.start();

      assertThat(r.current()).isEqualTo(new Readiness.Result(true, List.of()));
      assertThat(grpcStatus()).isEqualTo(ServingStatus.SERVING);
    }
  }

  @Test
  void probe_checksFailOrThrow_notReadyNamingThemInOrder_andNotServing() {
    List<Readiness.Check> checks =
        List.of(
            Readiness.check("database", () -> false),
            Readiness.check("fine", () -> true),
            Readiness.check(
                "notifications",
                () -> {
                  throw new IllegalStateException("boom");
                }));
    try (Readiness r = readiness(checks)) {
      r.start();

      assertThat(r.current())
          .isEqualTo(new Readiness.Result(false, List.of("database", "notifications")));
      assertThat(grpcStatus()).isEqualTo(ServingStatus.NOT_SERVING);
    }
  }

  @Test
  void probe_checkRecovers_servingAgain() {
    AtomicBoolean up = new AtomicBoolean(true);
    try (Readiness r = readiness(List.of(Readiness.check("database", up::get)))) {
      r.start();
      up.set(false);
      r.probe();
      assertThat(grpcStatus()).isEqualTo(ServingStatus.NOT_SERVING);

      up.set(true);
      Readiness.Result result = r.probe();

      assertThat(result.ready()).isTrue();
      assertThat(grpcStatus()).isEqualTo(ServingStatus.SERVING);
    }
  }

  @Test
  void add_laterCheck_countsFromTheNextProbe() {
    try (Readiness r = readiness(List.of(Readiness.check("database", () -> true)))) {
      r.start();
      r.add(Readiness.check("notifications", () -> false));

      assertThat(r.probe().failing()).containsExactly("notifications");
    }
  }

  @Test
  void draining_afterStart_notReadyForGood() {
    try (Readiness r = readiness(List.of(Readiness.check("database", () -> true)))) {
      r.start();
      r.draining();

      assertThat(r.probe()).isEqualTo(new Readiness.Result(false, List.of("shutting_down")));
    }
  }

  @Test
  void start_withStartupWait_waitsForACheckThatPassesSoon() {
    long readyAt = System.nanoTime() + Duration.ofMillis(200).toNanos();
    try (Readiness r =
        readiness(List.of(Readiness.check("notifications", () -> System.nanoTime() > readyAt)))) {
      r.start(Duration.ofSeconds(5));

      assertThat(r.current().ready()).isTrue();
      assertThat(grpcStatus()).isEqualTo(ServingStatus.SERVING);
    }
  }

  @Test
  void start_withStartupWait_givesUpAfterItAndReportsNotServing() {
    try (Readiness r = readiness(List.of(Readiness.check("notifications", () -> false)))) {
      long t0 = System.nanoTime();
      r.start(Duration.ofMillis(100));

      assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(2));
      assertThat(r.current().failing()).containsExactly("notifications");
      assertThat(grpcStatus()).isEqualTo(ServingStatus.NOT_SERVING);
    }
  }

  @Test
  void start_periodicProbe_followsTheCheckWithoutBeingAsked() throws Exception {
    AtomicBoolean up = new AtomicBoolean(true);
    try (Readiness r =
        new Readiness(
            List.of(Readiness.check("database", up::get)), health, Duration.ofMillis(20))) {
      r.start();
      up.set(false);

      long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
      while (r.current().ready() && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      assertThat(r.current().failing()).containsExactly("database");
      assertThat(grpcStatus()).isEqualTo(ServingStatus.NOT_SERVING);
    }
  }
}
