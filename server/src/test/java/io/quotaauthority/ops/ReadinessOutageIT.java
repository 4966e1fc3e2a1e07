package io.quotaauthority.ops;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.quotaauthority.config.Setting;
import io.quotaauthority.testing.TcpProxy;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A real database outage (the server reaches PostgreSQL through a proxy the test cuts): /readyz
 * turns 503 naming the database and both gRPC ports' health turns NOT_SERVING; /healthz stays up;
 * when the proxy is back (and the key change listener has reconnected), all of them recover.
 */
class ReadinessOutageIT {
  private static final Duration WAIT = Duration.ofSeconds(20);

  private static TestDatabase db;
  private static TcpProxy proxy;
  private static TestServer server;
  private static int port;

  @BeforeAll
  static void start() throws Exception {
    db = TestDatabase.create();
    proxy = TcpProxy.toPostgres();
    port = Scrape.freePort();
    server =
        TestServer.start(
            db,
            Map.of(
                Setting.DB_URL, proxy.jdbcUrl(db.name()),
                Setting.METRICS_PORT, Integer.toString(port)),
            Clock.systemUTC());
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    proxy.close();
    db.close();
  }

  @Test
  void readiness_databaseGoesAwayAndComesBack_readyzAndAdminHealthFollowAuthzStaysServing()
      throws Exception {
    assertThat(Scrape.get(port, "/readyz").statusCode()).isEqualTo(200);
    assertThat(health(server.authzChannel())).isEqualTo(ServingStatus.SERVING);
    assertThat(health(server.adminChannel())).isEqualTo(ServingStatus.SERVING);

    proxy.cut();

    awaitTrue("readyz 503", () -> status("/readyz") == 503);
    HttpResponse<String> notReady = Scrape.get(port, "/readyz");
    JsonNode body = new ObjectMapper().readTree(notReady.body());
    assertThat(body.get("status").asText()).isEqualTo("not ready");
    // The key change listener loses its connection too; which of the two is noticed first varies.
    assertThat(body.get("failing").toString()).contains("\"database\"");
    // The authz port keeps answering Checks for cached keys, so Envoy must keep sending them here:
    // its health stays SERVING. The admin port follows readiness.
    assertThat(health(server.authzChannel())).isEqualTo(ServingStatus.SERVING);
    assertThat(health(server.adminChannel())).isEqualTo(ServingStatus.NOT_SERVING);
    assertThat(Scrape.get(port, "/healthz").statusCode()).isEqualTo(200);
    assertThat(
            Scrape.value(
                Scrape.parse(Scrape.get(port, "/metrics").body()), "quota_ready", Map.of()))
        .isZero();

    proxy.restore();

    awaitTrue("readyz 200 again", () -> status("/readyz") == 200);
    assertThat(health(server.authzChannel())).isEqualTo(ServingStatus.SERVING);
    assertThat(health(server.adminChannel())).isEqualTo(ServingStatus.SERVING);
  }

  private static ServingStatus health(ManagedChannel channel) {
    return HealthGrpc.newBlockingStub(channel)
        .withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance())
        .getStatus();
  }

  private static int status(String path) {
    try {
      return Scrape.get(port, path).statusCode();
    } catch (Exception e) {
      return -1;
    }
  }

  private static void awaitTrue(String what, BooleanSupplier condition)
      throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(100);
    }
  }
}
