package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A key's model allow-list through a whole server (README "Key policies"): Check passes the list to
 * metering in x-quota-key-models, and metering refuses a model outside it in the request-body phase
 * (or, for Gemini, at the path) with a provider-shaped 403 before anything goes upstream. Model
 * listings are left alone.
 */
class ModelAllowListIT {
  private static final List<String> MODELS = List.of("gpt-4o-mini", "claude-3-5-*", "gemini-2.5-*");

  private static TestDatabase db;
  private static TestServer server;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static CreateKeyResponse key(String quota) {
    return server
        .admin()
        .createKey(
            CreateKeyRequest.newBuilder()
                .setName("models")
                .setQuotaUsd(quota)
                .addAllModelAllow(MODELS)
                .build());
  }

  /** The headers Check sets on an allowed request of the key, as Envoy would pass them on. */
  private static Map<String, String> checked(String secret, EnvoyChecks request) {
    CheckResponse allowed =
        AuthorizationGrpc.newBlockingStub(server.authzChannel())
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .check(request.bearer(secret).build());
    assertThat(allowed.getStatus().getCode()).isZero();
    return allowed.getOkResponse().getHeadersList().stream()
        .collect(Collectors.toMap(h -> h.getHeader().getKey(), h -> h.getHeader().getValue()));
  }

  private static Map<String, String> metered(String path, CreateKeyResponse key, int length) {
    Map<String, String> set = checked(key.getSecret(), EnvoyChecks.post(path));
    assertThat(set).containsEntry(GatewayHeaders.KEY_MODELS, String.join(",", MODELS));
    Map<String, String> h = EnvoyStream.requestHeaders(path, key.getKey().getId(), null, length);
    h.putAll(set);
    return h;
  }

  private static boolean marked(HeaderMutation m) {
    return m.getSetHeadersList().stream()
        .anyMatch(h -> h.getHeader().getKey().equals(GatewayHeaders.ADMITTED));
  }

  private static byte[] chat(String model) {
    return ("{\"model\":\""
            + model
            + "\",\"max_tokens\":50,"
            + "\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}]}")
        .getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void openAiModelOutsideTheList_refused403BeforeUpstreamNamingIt() {
    CreateKeyResponse key = key("0");
    byte[] body = chat("gpt-4o");
    EnvoyStream envoy = new EnvoyStream(server.envoyMetering());
    ProcessingResponse headers =
        envoy.requestHeaders(metered("/v1/chat/completions", key, body.length), false);
    assertThat(marked(headers.getRequestHeaders().getResponse().getHeaderMutation()))
        .as("not admitted before its model is known")
        .isFalse();
    ProcessingResponse answer = envoy.requestBody(body);
    assertThat(answer.hasImmediateResponse()).isTrue();
    assertThat(answer.getImmediateResponse().getStatus().getCodeValue()).isEqualTo(403);
    assertThat(answer.getImmediateResponse().getBody().toStringUtf8())
        .isEqualTo(
            "{\"error\":{\"message\":\"This API key may not use the model 'gpt-4o'.\","
                + "\"type\":\"invalid_request_error\",\"param\":null,"
                + "\"code\":\"model_not_allowed\"}}");
    envoy.awaitClosed();
  }

  @Test
  void modelOnTheList_admittedAtTheBody_exactAndPrefix() {
    CreateKeyResponse key = key("0");
    for (String model : List.of("gpt-4o-mini", "claude-3-5-haiku-20241022")) {
      String path = model.startsWith("claude") ? "/v1/messages" : "/v1/chat/completions";
      byte[] body = chat(model);
      EnvoyStream envoy = new EnvoyStream(server.envoyMetering());
      Map<String, String> h = metered(path, key, body.length);
      if (model.startsWith("claude")) {
        h.put("anthropic-version", "2023-06-01");
      }
      envoy.requestHeaders(h, false);
      ProcessingResponse answer = envoy.requestBody(body);
      assertThat(answer.hasImmediateResponse()).as(model).isFalse();
      assertThat(marked(answer.getRequestBody().getResponse().getHeaderMutation()))
          .as(model + " admitted")
          .isTrue();
      envoy.cancel();
    }
  }

  @Test
  void limitedKeyModelOutsideTheList_refusedAsNotAllowedBeforeAnyHold() {
    CreateKeyResponse key = key("5");
    byte[] body = chat("gpt-4o");
    EnvoyStream envoy = new EnvoyStream(server.envoyMetering());
    envoy.requestHeaders(metered("/v1/chat/completions", key, body.length), false);
    ProcessingResponse answer = envoy.requestBody(body);
    assertThat(answer.getImmediateResponse().getBody().toStringUtf8())
        .contains("\"code\":\"model_not_allowed\"");
    envoy.awaitClosed();
    assertThat(((Number) db.scalar("SELECT coalesce(sum(leased), 0) FROM api_keys")).doubleValue())
        .isZero();
  }

  @Test
  void geminiPathModelOutsideTheList_refusedAtTheHeaders_insideAdmitted() {
    CreateKeyResponse key = key("0");
    String refusedPath = "/v1beta/models/gemini-1.5-pro:generateContent";
    EnvoyStream envoy = new EnvoyStream(server.envoyMetering());
    ProcessingResponse answer = envoy.requestHeaders(metered(refusedPath, key, 10), false);
    assertThat(answer.hasImmediateResponse()).isTrue();
    assertThat(answer.getImmediateResponse().getStatus().getCodeValue()).isEqualTo(403);
    assertThat(answer.getImmediateResponse().getBody().toStringUtf8())
        .contains("\"status\":\"PERMISSION_DENIED\"")
        .contains("gemini-1.5-pro");
    envoy.awaitClosed();

    String allowedPath = "/v1beta/models/gemini-2.5-flash:generateContent";
    EnvoyStream ok = new EnvoyStream(server.envoyMetering());
    ProcessingResponse admitted = ok.requestHeaders(metered(allowedPath, key, 10), false);
    assertThat(admitted.hasImmediateResponse()).isFalse();
    assertThat(marked(admitted.getRequestHeaders().getResponse().getHeaderMutation())).isTrue();
    ok.cancel();
  }

  @Test
  void modelListing_leftAlone() {
    CreateKeyResponse key = key("0");
    Map<String, String> set = checked(key.getSecret(), EnvoyChecks.get("/v1/models"));
    Map<String, String> h =
        EnvoyStream.requestHeaders("/v1/models", key.getKey().getId(), null, -1);
    h.put(":method", "GET");
    h.putAll(set);
    EnvoyStream envoy = new EnvoyStream(server.envoyMetering());
    ProcessingResponse answer = envoy.requestHeaders(h, true);
    assertThat(answer.hasImmediateResponse()).isFalse();
    assertThat(marked(answer.getRequestHeaders().getResponse().getHeaderMutation())).isTrue();
    envoy.cancel();
  }

  @Test
  void keyWithoutAList_checkRemovesAClientsModelsHeader() {
    CreateKeyResponse key =
        server.admin().createKey(CreateKeyRequest.newBuilder().setName("free").build());
    CheckResponse allowed =
        AuthorizationGrpc.newBlockingStub(server.authzChannel())
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .check(
                EnvoyChecks.post("/v1/chat/completions")
                    .bearer(key.getSecret())
                    .header(GatewayHeaders.KEY_MODELS, "gpt-4o")
                    .build());
    assertThat(allowed.getOkResponse().getHeadersToRemoveList())
        .contains(GatewayHeaders.KEY_MODELS);
  }
}
