package io.quotaauthority.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.grpc.StatusRuntimeException;
import io.quotaauthority.config.Setting;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * /metrics scraped over HTTP and parsed after known traffic: every counter matches what was sent.
 * One server for the class, fed once in {@link #start}; each test reads the same scrape.
 */
class MetricsEndpointIT {
  private static final String CREATE = "quota.v1.KeyAdminService/CreateKey";
  private static final String GET = "quota.v1.KeyAdminService/GetKey";

  private static TestDatabase db;
  private static TestServer server;
  private static int port;
  private static List<Scrape.Sample> samples;
  private static HttpResponse<String> response;

  @BeforeAll
  static void start() throws Exception {
    db = TestDatabase.create();
    port = Scrape.freePort();
    server =
        TestServer.start(
            db, Map.of(Setting.METRICS_PORT, Integer.toString(port)), Clock.systemUTC());

    // Admin: 3 creates, 2 gets, 1 call with a wrong token.
    List<String> secrets = new ArrayList<>();
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      var created =
          server.admin().createKey(CreateKeyRequest.newBuilder().setName("m" + i).build());
      secrets.add(created.getSecret());
      ids.add(created.getKey().getId());
    }
    server.admin().getKey(GetKeyRequest.newBuilder().setId(ids.get(0)).build());
    server.admin().getKey(GetKeyRequest.newBuilder().setId(ids.get(1)).build());
    var wrongToken =
        KeyAdminServiceGrpc.newBlockingStub(server.adminChannel())
            .withInterceptors(TestServer.bearer("wrong"));
    assertThatThrownBy(
            () -> wrongToken.getKey(GetKeyRequest.newBuilder().setId(ids.get(0)).build()))
        .isInstanceOf(StatusRuntimeException.class);

    // Check: 2 allowed, 1 unknown key, 1 without a key.
    var authz =
        AuthorizationGrpc.newBlockingStub(server.authzChannel())
            .withDeadlineAfter(5, TimeUnit.SECONDS);
    CheckRequest allowed = EnvoyChecks.post("/v1/chat/completions").bearer(secrets.get(0)).build();
    assertThat(authz.check(allowed).getStatus().getCode()).isZero();
    assertThat(authz.check(allowed).getStatus().getCode()).isZero();
    authz.check(EnvoyChecks.post("/v1/chat/completions").bearer("sk-" + "x".repeat(43)).build());
    authz.check(EnvoyChecks.post("/v1/chat/completions").build());

    // Usage: 2 accepted, then the first again (duplicate).
    UsageStream first =
        UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
            .send(UsageStream.report("m-r1", ids.get(0), "0.1"))
            .send(UsageStream.report("m-r2", ids.get(0), "0.2"))
            .finish();
    UsageStream again =
        UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
            .send(UsageStream.report("m-r1", ids.get(0), "0.1"))
            .finish();
    assertThat(first.responses())
        .extracting(ReportUsageResponse::getResult)
        .containsOnly(UsageResult.USAGE_RESULT_ACCEPTED);
    assertThat(again.responses())
        .extracting(ReportUsageResponse::getResult)
        .containsExactly(UsageResult.USAGE_RESULT_DUPLICATE);

    response = Scrape.get(port, "/metrics");
    samples = Scrape.parse(response.body());
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static double value(String name, String... labels) {
    Map<String, String> l = new LinkedHashMap<>();
    for (int i = 0; i < labels.length; i += 2) {
      l.put(labels[i], labels[i + 1]);
    }
    return Scrape.value(samples, name, l);
  }

  @Test
  void metrics_afterTraffic_isPrometheusText() {
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("content-type"))
        .hasValue(OpsHttpServer.PROMETHEUS_TEXT);
    assertThat(response.body()).contains("# TYPE quota_check_decisions_total counter");
  }

  @Test
  void meteringRefusals_scrapedUnderTheDocumentedNameForEveryReason() {
    // Registered at start, so an alert on any increase works before the first refusal.
    for (String reason : List.of("missing", "malformed", "wrong")) {
      assertThat(value("quota_metering_streams_refused_total", "reason", reason))
          .as(reason)
          .isZero();
    }
    assertThat(value("quota_usage_reports_total", "result", "conflict")).isZero();
  }

  @Test
  void adminCalls_countedByMethodAndCode() {
    assertThat(value("quota_admin_calls_total", "method", CREATE, "code", "OK")).isEqualTo(3);
    assertThat(value("quota_admin_calls_total", "method", GET, "code", "OK")).isEqualTo(2);
    assertThat(value("quota_admin_calls_total", "method", GET, "code", "UNAUTHENTICATED"))
        .isEqualTo(1);
  }

  @Test
  void checkDecisions_countedPerResult_withLatencyHistogram() {
    assertThat(value("quota_check_decisions_total", "result", "allow")).isEqualTo(2);
    assertThat(value("quota_check_decisions_total", "result", "unknown_key")).isEqualTo(1);
    assertThat(value("quota_check_decisions_total", "result", "missing_key")).isEqualTo(1);
    assertThat(value("quota_check_decisions_total", "result", "exhausted")).isZero();
    assertThat(value("quota_check_latency_seconds_count")).isEqualTo(4);
    assertThat(value("quota_check_latency_seconds_bucket", "le", "+Inf")).isEqualTo(4);
    assertThat(samples)
        .filteredOn(s -> s.name().equals("quota_check_latency_seconds_bucket"))
        .hasSizeGreaterThan(10);
  }

  @Test
  void usageReports_countedPerOutcome_withCommitGroupsAndLatency() {
    assertThat(value("quota_usage_reports_total", "result", "accepted")).isEqualTo(2);
    assertThat(value("quota_usage_reports_total", "result", "duplicate")).isEqualTo(1);
    assertThat(value("quota_usage_reports_total", "result", "rejected")).isZero();
    double groups = value("quota_usage_commit_group_size_count");
    assertThat(groups).isBetween(2.0, 3.0);
    assertThat(value("quota_usage_commit_group_size_sum")).isEqualTo(3);
    assertThat(value("quota_usage_commit_latency_seconds_count")).isEqualTo(groups);
  }

  @Test
  void keyCache_sizeHitsAndMisses() {
    assertThat(value("cache_size", "cache", Metrics.KEY_CACHE)).isEqualTo(3);
    assertThat(value("cache_gets_total", "cache", Metrics.KEY_CACHE, "result", "hit"))
        .isGreaterThanOrEqualTo(2);
    assertThat(value("cache_gets_total", "cache", Metrics.KEY_CACHE, "result", "miss"))
        .isGreaterThanOrEqualTo(1);
  }

  @Test
  void hikariPool_metricsPresentAndUsed() {
    assertThat(value("hikaricp_connections_max", "pool", "quota-db")).isEqualTo(8);
    assertThat(value("hikaricp_connections", "pool", "quota-db")).isGreaterThanOrEqualTo(1);
    assertThat(value("hikaricp_connections_acquire_seconds_count", "pool", "quota-db"))
        .isGreaterThan(5);
  }

  @Test
  void jvmAndProcess_basicsPresent() {
    assertThat(samples)
        .anyMatch(
            s -> s.name().equals("jvm_memory_used_bytes") && "heap".equals(s.labels().get("area")));
    assertThat(value("jvm_threads_live_threads")).isPositive();
    assertThat(value("process_uptime_seconds")).isPositive();
    assertThat(samples).anyMatch(s -> s.name().startsWith("jvm_gc_"));
  }

  @Test
  void notificationLag_recordedForTheKeyChangesHeardBack() throws Exception {
    // The listener hears this instance's own changes (3 creates) asynchronously: allow it a moment.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    double heard;
    do {
      heard =
          Scrape.value(
              Scrape.parse(Scrape.get(port, "/metrics").body()),
              "quota_keys_notification_lag_seconds_count",
              Map.of());
    } while (!(heard >= 3) && System.nanoTime() < deadline && sleep());
    assertThat(heard).isGreaterThanOrEqualTo(3);
  }

  private static boolean sleep() throws InterruptedException {
    Thread.sleep(100);
    return true;
  }

  @Test
  void ready_gaugeIsOne() {
    assertThat(value("quota_ready")).isEqualTo(1);
  }

  @Test
  void healthz_isUp_andUnknownPathsAndMethodsAreRefused() throws Exception {
    HttpResponse<String> healthz = Scrape.get(port, "/healthz");
    assertThat(healthz.statusCode()).isEqualTo(200);
    assertThat(healthz.body()).isEqualTo("{\"status\":\"up\"}\n");
    assertThat(Scrape.get(port, "/nope").statusCode()).isEqualTo(404);
    assertThat(Scrape.send(port, "POST", "/metrics").statusCode()).isEqualTo(405);
    HttpResponse<String> head = Scrape.send(port, "HEAD", "/readyz");
    assertThat(head.statusCode()).isEqualTo(200);
    assertThat(head.body()).isEmpty();
  }
}
