package io.quotaauthority.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.FieldMask;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.ClientInterceptor;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.quotaauthority.config.Setting;
import io.quotaauthority.grpc.BearerTokenInterceptor;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * Every log line of a whole key life cycle, at every level and in both formats, is free of the
 * admin token, the reporter token, every key secret (and its hash) that took part.
 *
 * <p>To extend: add steps to {@link #lifeCycle}, and put every secret or token a step uses into
 * {@code forbidden}.
 */
class LogSecretsIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void logs_wholeKeyLifeCycle_neverContainASecretOrToken() throws Exception {
    String adminToken = randomToken();
    String reporterToken = randomToken();
    String meteringToken = randomToken();
    Set<String> forbidden = new LinkedHashSet<>(List.of(adminToken, reporterToken, meteringToken));
    List<String> keyIds = new ArrayList<>();
    List<String> text;
    List<String> json;
    List<ch.qos.logback.classic.spi.ILoggingEvent> events;

    try (TestDatabase db = TestDatabase.create();
        LogCapture logs = new LogCapture()) {
      try (TestServer server =
          TestServer.start(
              db,
              Map.of(
                  Setting.ADMIN_TOKEN,
                  adminToken,
                  Setting.REPORTER_TOKEN,
                  reporterToken,
                  Setting.METERING_TOKEN,
                  meteringToken),
              Clock.systemUTC())) {
        lifeCycle(server, adminToken, reporterToken, forbidden, keyIds);
      }
      LoggerFactory.getLogger("io.quotaauthority.LogSecretsIT").trace("capture probe");
      events = logs.events();
      text = logs.asText();
      json = logs.asJson();
    }

    // The refused metering stream was warned about (without either token, checked below).
    assertThat(events)
        .anyMatch(e -> e.getFormattedMessage().startsWith("refused an ext_proc metering stream"));
    // TRACE output was captured too, not just INFO and above.
    assertThat(events).anyMatch(e -> e.getFormattedMessage().equals("capture probe"));

    // The admin actions were logged (so the capture works), with key id and actor ...
    String all = String.join("", text);
    for (String action : List.of("create", "update", "reset_quota", "delete")) {
      assertThat(all)
          .contains(
              "admin " + action + " key_id=" + keyIds.get(0) + " actor=admin (claims: ops-test)");
    }
    // ... and nothing secret, in either format.
    for (String secret : forbidden) {
      assertThat(text).as("text logs").noneMatch(line -> line.contains(secret));
      assertThat(json).as("json logs").noneMatch(line -> line.contains(secret));
    }
    // Every JSON line is one parseable object.
    for (String line : json) {
      assertThat(line).endsWith("\n").doesNotContain("\n\n");
      JsonNode node = JSON.readTree(line);
      assertThat(node.has("level") && node.has("loggerName")).as(line).isTrue();
    }
  }

  /** create → get → check → report → update → reset → delete, plus refused attempts. */
  private static void lifeCycle(
      TestServer server,
      String adminToken,
      String reporterToken,
      Set<String> forbidden,
      List<String> keyIds)
      throws Exception {
    var admin =
        KeyAdminServiceGrpc.newBlockingStub(server.adminChannel())
            .withInterceptors(TestServer.bearer(adminToken), actor("ops-test"));
    CreateKeyResponse created =
        admin.createKey(CreateKeyRequest.newBuilder().setName("log-test").setQuotaUsd("5").build());
    String id = created.getKey().getId();
    keyIds.add(id);
    forbid(forbidden, created.getSecret());

    admin.getKey(GetKeyRequest.newBuilder().setId(id).build());

    // Check with the key, and with a key that does not exist (also must not be logged).
    var authz =
        AuthorizationGrpc.newBlockingStub(server.authzChannel())
            .withDeadlineAfter(5, TimeUnit.SECONDS);
    authz.check(EnvoyChecks.post("/v1/chat/completions").bearer(created.getSecret()).build());
    String unknown =
        "sk-" + (randomToken() + randomToken()).replaceAll("[^A-Za-z0-9]", "A").substring(0, 43);
    forbid(forbidden, unknown);
    authz.check(EnvoyChecks.post("/v1/chat/completions").bearer(unknown).build());

    // Usage reported and read back.
    UsageStream.open(server.authzChannel(), reporterToken)
        .send(UsageStream.report("log-r1", id, "0.5"))
        .finish();
    admin.listUsage(ListUsageRequest.newBuilder().setKeyId(id).build());

    admin.updateKey(
        UpdateKeyRequest.newBuilder()
            .setKey(ApiKey.newBuilder().setId(id).setName("log-test-2").setQuotaUsd("7"))
            .setUpdateMask(FieldMask.newBuilder().addPaths("name").addPaths("quota_usd"))
            .build());
    admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build());

    // Refused: a wrong admin token, a wrong reporter token.
    String wrong = randomToken();
    forbid(forbidden, wrong);
    var intruder =
        KeyAdminServiceGrpc.newBlockingStub(server.adminChannel())
            .withInterceptors(TestServer.bearer(wrong));
    assertThatThrownBy(() -> intruder.getKey(GetKeyRequest.newBuilder().setId(id).build()))
        .isInstanceOf(StatusRuntimeException.class);
    UsageStream.open(server.authzChannel(), wrong)
        .send(UsageStream.report("log-r2", id, "0.1"))
        .finish();
    // A metering stream with a wrong token: refused, counted and warned about.
    CountDownLatch refused = new CountDownLatch(1);
    var metering =
        ExternalProcessorGrpc.newStub(server.meteringChannel())
            .withInterceptors(TestServer.bearer(wrong))
            .process(
                new StreamObserver<>() {
                  @Override
                  public void onNext(ProcessingResponse value) {}

                  @Override
                  public void onError(Throwable t) {
                    refused.countDown();
                  }

                  @Override
                  public void onCompleted() {
                    refused.countDown();
                  }
                });
    metering.onNext(ProcessingRequest.getDefaultInstance());
    assertThat(refused.await(10, TimeUnit.SECONDS)).isTrue();

    admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build());
    // A Check with the deleted key (a deadline of its own: the stub's started long ago).
    authz
        .withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(created.getSecret()).build());
  }

  /** A secret, and the forms a careless log line might carry it in: its hash as hex and base64. */
  private static void forbid(Set<String> forbidden, String secret) {
    forbidden.add(secret);
    byte[] hash = SecretHasher.hash(secret).toBytes();
    forbidden.add(HexFormat.of().formatHex(hash));
    forbidden.add(Base64.getEncoder().encodeToString(hash));
  }

  private static ClientInterceptor actor(String who) {
    Metadata md = new Metadata();
    md.put(BearerTokenInterceptor.ACTOR, who);
    return MetadataUtils.newAttachHeadersInterceptor(md);
  }

  private static String randomToken() {
    byte[] b = new byte[24];
    new SecureRandom().nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }
}
