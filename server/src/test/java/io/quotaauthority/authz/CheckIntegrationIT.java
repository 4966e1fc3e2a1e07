package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import com.google.protobuf.FieldMask;
import com.google.protobuf.Timestamp;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.ClearExpirationRequest;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Check over a real gRPC channel, with real PostgreSQL and keys made through the admin API. */
class CheckIntegrationIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static TestDatabase db;
  private static TestServer server;
  private static AuthorizationGrpc.AuthorizationBlockingStub authz;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
    authz = AuthorizationGrpc.newBlockingStub(server.authzChannel());
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static CreateKeyResponse newKey(String quota) {
    return server
        .admin()
        .createKey(CreateKeyRequest.newBuilder().setName("check-test").setQuotaUsd(quota).build());
  }

  private static CheckResponse check(CheckRequest request) {
    return authz.withDeadlineAfter(2, TimeUnit.SECONDS).check(request);
  }

  private static Map<String, String> okHeaders(CheckResponse r) {
    return r.getOkResponse().getHeadersList().stream()
        .collect(Collectors.toMap(h -> h.getHeader().getKey(), h -> h.getHeader().getValue()));
  }

  private static JsonNode body(CheckResponse r) throws Exception {
    return JSON.readTree(r.getDeniedResponse().getBody());
  }

  /**
   * Charges usage behind the server's back (the usage API has its own tests), then drops the cache
   * as the change listener does after a reconnect, so the next Check reloads the row.
   */
  private static void setQuotaUsed(String id, String used) {
    db.transactions()
        .inTransaction(
            c -> {
              try (var ps =
                  c.prepareStatement(
                      "UPDATE api_keys SET quota_used = ?::numeric, version = version + 1 WHERE id = ?")) {
                ps.setString(1, used);
                ps.setLong(2, Long.parseLong(id));
                return ps.executeUpdate();
              }
            });
    server.app().cache().invalidateAll();
  }

  @Test
  void check_validBearerKey_allowsWithKeyIdHeaderAndStripsClientKeys() {
    CreateKeyResponse key = newKey("0");

    CheckResponse r =
        check(
            EnvoyChecks.post("/v1/chat/completions")
                .bearer(key.getSecret())
                .header("x-quota-key-id", "999")
                .provider("openai")
                .build());

    assertThat(r.getStatus().getCode()).isEqualTo(0);
    assertThat(okHeaders(r)).containsEntry("x-quota-key-id", key.getKey().getId());
    assertThat(r.getOkResponse().getHeaders(0).getAppendAction())
        .isEqualTo(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD);
    // The client's key headers, and the gateway headers only the gateway may write: the admission
    // mark, and (this key has none of them) a concurrency cap, a model allow-list and a hold id.
    assertThat(r.getOkResponse().getHeadersToRemoveList())
        .containsExactlyInAnyOrder(
            "authorization",
            "x-api-key",
            "x-goog-api-key",
            "x-quota-admitted",
            "x-quota-hold-id",
            "x-quota-key-concurrency",
            "x-quota-key-models");
    assertThat(r.getOkResponse().getQueryParametersToRemoveList()).isEmpty();
    assertThat(r.getDynamicMetadata().getFieldsMap().get("key_id").getStringValue())
        .isEqualTo(key.getKey().getId());
    // An unlimited key has no remaining amount to show.
    assertThat(r.getOkResponse().getResponseHeadersToAddList()).isEmpty();
  }

  @Test
  void check_keyWithQuota_addsRemainingUsdResponseHeader() {
    CreateKeyResponse key = newKey("10");
    setQuotaUsed(key.getKey().getId(), "2.25");

    CheckResponse r =
        check(EnvoyChecks.post("/v1/messages").header("x-api-key", key.getSecret()).build());

    assertThat(r.getStatus().getCode()).isEqualTo(0);
    assertThat(r.getOkResponse().getResponseHeadersToAdd(0).getHeader().getKey())
        .isEqualTo("x-quota-remaining-usd");
    assertThat(r.getOkResponse().getResponseHeadersToAdd(0).getHeader().getValue())
        .isEqualTo("7.75");
  }

  @Test
  void check_noKey_401ApiKeyRequiredInOpenAiShape() throws Exception {
    CheckResponse r = check(EnvoyChecks.post("/v1/chat/completions").build());

    assertThat(r.getStatus().getCode()).isEqualTo(16);
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(r.getDeniedResponse().getHeaders(0).getHeader().getKey()).isEqualTo("content-type");
    assertThat(r.getDeniedResponse().getHeaders(0).getHeader().getValue())
        .isEqualTo("application/json");
    JsonNode error = body(r).get("error");
    assertThat(error.get("code").asText()).isEqualTo("api_key_required");
    assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
    assertThat(error.get("param").isNull()).isTrue();
    assertThat(error.get("message").asText()).isNotEmpty();
  }

  @Test
  void check_unknownKey_401InvalidApiKeyInAnthropicShape() throws Exception {
    CheckResponse r =
        check(
            EnvoyChecks.post("/v1/messages")
                .header("x-api-key", "sk-doesnotexist0000000000000000000000000000000")
                .build());

    assertThat(r.getStatus().getCode()).isEqualTo(16);
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    JsonNode b = body(r);
    assertThat(b.get("type").asText()).isEqualTo("error");
    assertThat(b.get("error").get("type").asText()).isEqualTo("authentication_error");
    assertThat(b.get("error").get("message").asText()).contains("invalid_api_key");
  }

  @Test
  void check_limitedKeyOnNotMeteredEndpoint_403EndpointNotMetered_unlimitedKeyAllowed()
      throws Exception {
    CreateKeyResponse limited = newKey("5");
    CreateKeyResponse unlimited = newKey("0");

    CheckResponse r = check(EnvoyChecks.post("/v1/batches").bearer(limited.getSecret()).build());

    assertThat(r.getStatus().getCode()).isEqualTo(7);
    assertThat(r.getStatus().getMessage()).isEqualTo("endpoint_not_metered");
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(403);
    assertThat(body(r).get("error").get("code").asText()).isEqualTo("endpoint_not_metered");
    assertThat(body(r).get("error").get("message").asText())
        .isEqualTo("This gateway cannot meter the Batch API, so keys with a quota cannot use it.");
    // Built once: the same response object for every such request.
    assertThat(check(EnvoyChecks.post("/v1/batches").bearer(limited.getSecret()).build()))
        .isEqualTo(r);
    assertThat(
            check(EnvoyChecks.post("/v1/batches").bearer(unlimited.getSecret()).build())
                .getStatus()
                .getCode())
        .isZero();
    // Reads and metered endpoints stay open to the limited key.
    assertThat(
            check(EnvoyChecks.get("/v1/batches/batch_abc").bearer(limited.getSecret()).build())
                .getStatus()
                .getCode())
        .isZero();
    assertThat(
            check(EnvoyChecks.post("/v1/chat/completions").bearer(limited.getSecret()).build())
                .getStatus()
                .getCode())
        .isZero();
  }

  @Test
  void check_limitedKeyOnAnthropicBatches_403InAnthropicShape() throws Exception {
    CreateKeyResponse limited = newKey("5");

    CheckResponse r =
        check(
            EnvoyChecks.post("/v1/messages/batches")
                .header("x-api-key", limited.getSecret())
                .build());

    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(403);
    assertThat(body(r).get("type").asText()).isEqualTo("error");
    assertThat(body(r).get("error").get("type").asText()).isEqualTo("permission_error");
    assertThat(body(r).get("error").get("message").asText())
        .isEqualTo(
            "This gateway cannot meter message batches, so keys with a quota cannot use it. (endpoint_not_metered)");
  }

  @Test
  void check_disabledKey_401RightAfterUpdateKey() throws Exception {
    CreateKeyResponse key = newKey("0");
    assertThat(
            check(EnvoyChecks.post("/v1/chat/completions").bearer(key.getSecret()).build())
                .getStatus()
                .getCode())
        .isZero();

    server
        .admin()
        .updateKey(
            UpdateKeyRequest.newBuilder()
                .setKey(
                    ApiKey.newBuilder()
                        .setId(key.getKey().getId())
                        .setStatus(KeyStatus.KEY_STATUS_DISABLED))
                .setUpdateMask(FieldMask.newBuilder().addPaths("status"))
                .build());
    CheckResponse r =
        check(EnvoyChecks.post("/v1/chat/completions").bearer(key.getSecret()).build());

    assertThat(r.getStatus().getCode()).isEqualTo(16);
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(body(r).get("error").get("code").asText()).isEqualTo("api_key_disabled");
  }

  @Test
  void check_deletedKey_401InvalidApiKeyRightAfterDelete() throws Exception {
    CreateKeyResponse key = newKey("0");
    assertThat(
            check(EnvoyChecks.post("/v1/embeddings").bearer(key.getSecret()).build())
                .getStatus()
                .getCode())
        .isZero();

    server.admin().deleteKey(DeleteKeyRequest.newBuilder().setId(key.getKey().getId()).build());
    CheckResponse r = check(EnvoyChecks.post("/v1/embeddings").bearer(key.getSecret()).build());

    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(body(r).get("error").get("code").asText()).isEqualTo("invalid_api_key");
  }

  @Test
  void check_expiredKey_403ThenPassesRightAfterClearExpiration() throws Exception {
    // The real clock is driven: the key expires 300 ms after it is made, and the test waits.
    Instant expires = Instant.now().plusMillis(300);
    CreateKeyResponse fresh =
        server
            .admin()
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("expiring")
                    .setExpiresAt(
                        Timestamp.newBuilder()
                            .setSeconds(expires.getEpochSecond())
                            .setNanos(expires.getNano()))
                    .build());
    CreateKeyResponse key = fresh;
    assertThat(
            check(
                    EnvoyChecks.get("/v1beta/models/gemini-2.5-flash:generateContent")
                        .header("x-goog-api-key", fresh.getSecret())
                        .build())
                .getStatus()
                .getCode())
        .isZero();
    Thread.sleep(Math.max(0, Duration.between(Instant.now(), expires).toMillis()) + 20);

    CheckResponse denied =
        check(
            EnvoyChecks.get("/v1beta/models/gemini-2.5-flash:generateContent")
                .header("x-goog-api-key", fresh.getSecret())
                .build());

    assertThat(denied.getStatus().getCode()).isEqualTo(7);
    assertThat(denied.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(403);
    JsonNode error = body(denied).get("error");
    assertThat(error.get("code").asInt()).isEqualTo(403);
    assertThat(error.get("status").asText()).isEqualTo("PERMISSION_DENIED");
    assertThat(error.get("message").asText()).contains("api_key_expired");

    server
        .admin()
        .clearExpiration(ClearExpirationRequest.newBuilder().setId(key.getKey().getId()).build());
    CheckResponse allowed =
        check(
            EnvoyChecks.get("/v1beta/models/gemini-2.5-flash:generateContent")
                .header("x-goog-api-key", fresh.getSecret())
                .build());

    assertThat(allowed.getStatus().getCode()).isZero();
  }

  @Test
  void check_exhaustedKey_429ThenPassesRightAfterResetQuota() throws Exception {
    CreateKeyResponse key = newKey("1.5");
    setQuotaUsed(key.getKey().getId(), "1.5");

    CheckResponse denied = check(EnvoyChecks.post("/v1/responses").bearer(key.getSecret()).build());

    assertThat(denied.getStatus().getCode()).isEqualTo(8);
    assertThat(denied.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(429);
    JsonNode error = body(denied).get("error");
    assertThat(error.get("code").asText()).isEqualTo("insufficient_quota");
    assertThat(error.get("type").asText()).isEqualTo("insufficient_quota");

    server.admin().resetQuota(ResetQuotaRequest.newBuilder().setId(key.getKey().getId()).build());
    CheckResponse allowed =
        check(EnvoyChecks.post("/v1/responses").bearer(key.getSecret()).build());

    assertThat(allowed.getStatus().getCode()).isZero();
    assertThat(allowed.getOkResponse().getResponseHeadersToAdd(0).getHeader().getValue())
        .isEqualTo("1.5");
  }

  @Test
  void check_headerMapVariant_allowsLikeHeaders() {
    CreateKeyResponse key = newKey("0");

    CheckResponse r =
        check(
            EnvoyChecks.post("/v1/chat/completions").bearer(key.getSecret()).rawHeaders().build());

    assertThat(r.getStatus().getCode()).isZero();
    assertThat(okHeaders(r)).containsEntry("x-quota-key-id", key.getKey().getId());
  }

  @Test
  void check_geminiQueryKey_allowsAndStripsKeyParameter() {
    CreateKeyResponse key = newKey("0");

    CheckResponse r =
        check(
            EnvoyChecks.post(
                    "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key="
                        + key.getSecret())
                .build());

    assertThat(r.getStatus().getCode()).isZero();
    assertThat(r.getOkResponse().getQueryParametersToRemoveList()).containsExactly("key");
  }

  @Test
  void check_queryKeyOutsideGeminiPaths_isIgnored() throws Exception {
    CreateKeyResponse key = newKey("0");

    CheckResponse r =
        check(EnvoyChecks.post("/v1/chat/completions?key=" + key.getSecret()).build());

    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(body(r).get("error").get("code").asText()).isEqualTo("api_key_required");
  }

  @Test
  void check_contextExtensionProvider_winsOverPath() throws Exception {
    CheckResponse r = check(EnvoyChecks.post("/some/other/path").provider("gemini").build());

    assertThat(body(r).get("error").get("status").asText()).isEqualTo("UNAUTHENTICATED");
  }

  @Test
  void check_geminiStablePath_googleShapedDenial() throws Exception {
    // The path the key extractor always called Gemini, and the denial shaper used to call OpenAI.
    CheckResponse r =
        check(
            EnvoyChecks.post("/v1/models/x:generateContent")
                .header("x-goog-api-key", "sk-doesnotexist0000000000000000000000000000000")
                .build());

    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    JsonNode b = body(r);
    assertThat(b.size()).isEqualTo(1);
    JsonNode error = b.get("error");
    assertThat(error.get("code").asInt()).isEqualTo(401);
    assertThat(error.get("status").asText()).isEqualTo("UNAUTHENTICATED");
    assertThat(error.get("message").asText()).contains("invalid_api_key");
    assertThat(error.size()).isEqualTo(3);
  }

  @Test
  void check_geminiStablePathQueryKey_allowedAndStripped() throws Exception {
    CreateKeyResponse key = newKey("0");

    CheckResponse r =
        check(EnvoyChecks.post("/v1/models/x:generateContent?key=" + key.getSecret()).build());

    assertThat(r.getStatus().getCode()).isEqualTo(0);
    assertThat(r.getOkResponse().getQueryParametersToRemoveList()).containsExactly("key");
  }

  @Test
  void check_contextExtensionProviderInMixedCase_winsOverPath() throws Exception {
    CheckResponse r = check(EnvoyChecks.post("/v1/chat/completions").provider("Gemini").build());

    assertThat(body(r).get("error").get("status").asText()).isEqualTo("UNAUTHENTICATED");
    assertThat(body(r).get("error").get("code").asInt()).isEqualTo(401);
  }

  @Test
  void check_unknownPath_plainErrorShape() throws Exception {
    CheckResponse r = check(EnvoyChecks.get("/healthz").build());

    JsonNode error = body(r).get("error");
    assertThat(error.get("code").asText()).isEqualTo("api_key_required");
    assertThat(error.size()).isEqualTo(2);
  }

  @Test
  void check_hugeGarbageKey_401WithoutDatabaseQuery() throws Exception {
    long before = server.app().cache().loadCount();

    CheckResponse r =
        check(EnvoyChecks.post("/v1/chat/completions").bearer("x".repeat(64 * 1024)).build());

    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(body(r).get("error").get("code").asText()).isEqualTo("invalid_api_key");
    assertThat(server.app().cache().loadCount()).isEqualTo(before);
  }

  @Test
  void check_nonUtf8RawValue_401Cleanly() throws Exception {
    CheckRequest request =
        EnvoyChecks.post("/v1/chat/completions").build().toBuilder()
            .setAttributes(
                EnvoyChecks.post("/v1/chat/completions").build().getAttributes().toBuilder()
                    .setRequest(
                        AttributeContext.Request.newBuilder()
                            .setHttp(
                                AttributeContext.HttpRequest.newBuilder()
                                    .setPath("/v1/chat/completions")
                                    .setHeaderMap(
                                        HeaderMap.newBuilder()
                                            .addHeaders(
                                                HeaderValue.newBuilder()
                                                    .setKey("authorization")
                                                    .setRawValue(
                                                        ByteString.copyFrom(
                                                            new byte[] {
                                                              'B',
                                                              'e',
                                                              'a',
                                                              'r',
                                                              'e',
                                                              'r',
                                                              ' ',
                                                              (byte) 0xff,
                                                              (byte) 0xfe,
                                                              0x01
                                                            })))))))
            .build();

    CheckResponse r = check(request);

    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(body(r).get("error").get("code").asText()).isEqualTo("invalid_api_key");
  }

  @Test
  void check_requestWithoutHttpAttributes_401ApiKeyRequired() throws Exception {
    CheckResponse r = check(CheckRequest.getDefaultInstance());

    assertThat(r.getStatus().getCode()).isEqualTo(16);
    assertThat(body(r).get("error").get("code").asText()).isEqualTo("api_key_required");
  }

  @Test
  void check_sameUnknownKey1000Times_noQueryOnceTheLiveKeySetIsComplete() throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!server.app().cache().completeness().complete()) {
      assertThat(System.nanoTime()).as("the live-key set loads").isLessThan(deadline);
      Thread.sleep(10);
    }
    long before = server.app().cache().loadCount();
    CheckRequest request =
        EnvoyChecks.post("/v1/chat/completions")
            .bearer("sk-unknownunknownunknownunknownunknownunknown1")
            .build();

    for (int i = 0; i < 1000; i++) {
      assertThat(check(request).getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    }

    // The hash is in no live key's set: answered from memory, not once from the database.
    assertThat(server.app().cache().loadCount() - before).isZero();
  }
}
