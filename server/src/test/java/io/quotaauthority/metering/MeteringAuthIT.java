package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.MetadataUtils;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.math.BigDecimal;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The metering port's trust boundary, against a real server on real ports: only a stream with the
 * metering token is read, anything else is refused UNAUTHENTICATED before a message is read,
 * charges nothing and is counted; the authz port no longer serves ext_proc at all.
 */
class MeteringAuthIT {
  private static TestDatabase db;
  private static TestServer app;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    app = TestServer.start(db);
  }

  @AfterAll
  static void stop() throws Exception {
    app.close();
    db.close();
  }

  private static long newKey() {
    return Long.parseLong(
        app.admin()
            .createKey(CreateKeyRequest.newBuilder().setName("victim").setQuotaUsd("5").build())
            .getKey()
            .getId());
  }

  private static double refused(String reason) {
    MeterRegistry registry = app.app().operations().registry();
    return registry.get("quota.metering.streams.refused").tag("reason", reason).counter().count();
  }

  /**
   * A forged metering stream: every phase of a request whose usage would cost 10 USD, sent without
   * waiting for answers (none come). Returns how the server ended the stream.
   */
  private static Status forge(Channel channel, long keyId) {
    EnvoyStream envoy = new EnvoyStream(channel);
    String usage =
        "{\"id\":\"x\",\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":4000000,"
            + "\"completion_tokens\":0,\"total_tokens\":4000000}}";
    envoy.sendWithoutAnswer(
        ProcessingRequest.newBuilder()
            .setRequestHeaders(
                HttpHeaders.newBuilder()
                    .setHeaders(
                        EnvoyStream.headers(
                            EnvoyStream.requestHeaders(
                                "/v1/chat/completions", Long.toString(keyId), "forged-1", -1))))
            .build());
    envoy.sendWithoutAnswer(
        ProcessingRequest.newBuilder()
            .setRequestBody(
                HttpBody.newBuilder()
                    .setBody(ByteString.copyFromUtf8("{\"model\":\"gpt-4o\"}"))
                    .setEndOfStream(true))
            .build());
    envoy.sendWithoutAnswer(
        ProcessingRequest.newBuilder()
            .setResponseHeaders(
                HttpHeaders.newBuilder()
                    .setHeaders(
                        EnvoyStream.headers(
                            Map.of(":status", "200", "content-type", "application/json"))))
            .build());
    envoy.sendWithoutAnswer(
        ProcessingRequest.newBuilder()
            .setResponseBody(
                HttpBody.newBuilder().setBody(ByteString.copyFromUtf8(usage)).setEndOfStream(true))
            .build());
    envoy.awaitClosed();
    assertThat(envoy.unansweredCount()).as("no message was answered").isZero();
    return Status.fromThrowable(envoy.error());
  }

  /** Proves the pipeline was live: a real Envoy stream for the same key is charged. */
  private static void meterOnceWithToken(long keyId) throws InterruptedException {
    MeteringLedgerIT.meterAnthropicStream(new EnvoyStream(app.envoyMetering()), keyId, "real-1", 1);
    MeteringLedgerIT.awaitRows(db, keyId, 1);
  }

  private static void assertOnlyTheRealChargeLanded(long keyId) {
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE key_id = ?", keyId)).isEqualTo(1);
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", keyId))
        .isEqualByComparingTo("0.00109");
  }

  @Test
  void process_withoutToken_isUnauthenticatedAndChargesNothing() throws Exception {
    long keyId = newKey();
    double before = refused("missing");

    Status status = forge(app.meteringChannel(), keyId);

    assertThat(status.getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(status.getDescription()).isEqualTo("missing authorization: Bearer <metering token>");
    assertThat(refused("missing")).isEqualTo(before + 1);
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", keyId))
        .isEqualByComparingTo("0");
    meterOnceWithToken(keyId);
    assertOnlyTheRealChargeLanded(keyId);
  }

  @Test
  void process_wrongToken_isUnauthenticatedAndChargesNothing() throws Exception {
    long keyId = newKey();
    double before = refused("wrong");

    Status status =
        forge(
            ClientInterceptors.intercept(
                app.meteringChannel(), TestServer.bearer(TestServer.REPORTER_TOKEN)),
            keyId);

    assertThat(status.getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(status.getDescription()).isEqualTo("wrong metering token");
    assertThat(refused("wrong")).isEqualTo(before + 1);
    meterOnceWithToken(keyId);
    assertOnlyTheRealChargeLanded(keyId);
  }

  @Test
  void process_otherScheme_isUnauthenticatedAndCountedMalformed() throws Exception {
    long keyId = newKey();
    double before = refused("malformed");
    Metadata basic = new Metadata();
    basic.put(
        Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER),
        "Basic " + TestServer.METERING_TOKEN);

    Status status =
        forge(
            ClientInterceptors.intercept(
                app.meteringChannel(), MetadataUtils.newAttachHeadersInterceptor(basic)),
            keyId);

    assertThat(status.getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(refused("malformed")).isEqualTo(before + 1);
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", keyId))
        .isEqualByComparingTo("0");
  }

  @Test
  void process_onAuthzPort_isUnimplementedAndChargesNothing() throws Exception {
    long keyId = newKey();

    Status status = forge(app.authzChannel(), keyId);

    assertThat(status.getCode()).isEqualTo(Status.Code.UNIMPLEMENTED);
    meterOnceWithToken(keyId);
    assertOnlyTheRealChargeLanded(keyId);
  }

  @Test
  void health_onMeteringPort_answersWithoutToken() {
    // Envoy health-checks the metering cluster; health reveals nothing, so it needs no token.
    HealthCheckResponse health =
        HealthGrpc.newBlockingStub(app.meteringChannel())
            .check(HealthCheckRequest.getDefaultInstance());
    assertThat(health.getStatus()).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
  }
}
