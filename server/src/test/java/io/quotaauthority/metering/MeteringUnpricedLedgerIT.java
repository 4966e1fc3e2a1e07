package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.config.Setting;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The unpriced-model rule and the response-model choice through a real server: Envoy's streams on
 * the metering port, the shipped price table, charges in PostgreSQL on 127.0.0.1:5432.
 */
class MeteringUnpricedLedgerIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A newer family than the table's gpt-5* row: it must not be priced as gpt-5. */
  private static final byte[] NEWER_FAMILY =
      "{\"model\":\"gpt-5.6-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
          .getBytes(StandardCharsets.UTF_8);

  private static long key(TestServer app, String quota) {
    CreateKeyRequest.Builder b = CreateKeyRequest.newBuilder().setName("priced-" + quota);
    if (quota != null) {
      b.setQuotaUsd(quota);
    }
    return Long.parseLong(app.admin().createKey(b.build()).getKey().getId());
  }

  /** Request headers as Check leaves them: key id and whether the key has a quota. */
  private static Map<String, String> headers(String path, long keyId, boolean limited, int length) {
    Map<String, String> h =
        EnvoyStream.requestHeaders(path, Long.toString(keyId), "req-" + keyId, length);
    h.put(GatewayHeaders.KEY_LIMITED, Boolean.toString(limited));
    return h;
  }

  private static double counter(TestServer app, String name, String tag, String value) {
    MeterRegistry r = app.app().operations().registry();
    return r.get(name).tag(tag, value).counter().count();
  }

  private static void assertRefused(
      ProcessingResponse answer, int status, String model, String codePath) throws Exception {
    assertThat(answer.hasImmediateResponse()).as("immediate response").isTrue();
    ImmediateResponse reply = answer.getImmediateResponse();
    assertThat(reply.getStatus().getCodeValue()).isEqualTo(status);
    assertThat(reply.getDetails()).isEqualTo("model_not_priced");
    JsonNode body = JSON.readTree(reply.getBody().toStringUtf8());
    assertThat(body.at(codePath).asText()).contains("model_not_priced");
    assertThat(body.at("/error/message").asText()).contains("'" + model + "'");
  }

  @Test
  void process_limitedKeyUnpricedModel_refusedBeforeUpstreamNothingCharged() throws Exception {
    try (TestDatabase db = TestDatabase.create();
        TestServer app = TestServer.start(db)) {
      long keyId = key(app, "10");
      assertThat(counter(app, "quota.metering.refused", "reason", "model_not_priced")).isZero();
      EnvoyStream envoy = new EnvoyStream(app.envoyMetering());
      envoy.requestHeaders(
          headers("/v1/chat/completions", keyId, true, NEWER_FAMILY.length), false);

      ProcessingResponse answer = envoy.requestBody(NEWER_FAMILY);

      // OpenAI's error shape: error.code is ours, error.type OpenAI's.
      assertRefused(answer, 403, "gpt-5.6-mini", "/error/code");
      assertThat(
              JSON.readTree(answer.getImmediateResponse().getBody().toStringUtf8())
                  .at("/error/type")
                  .asText())
          .isEqualTo("invalid_request_error");
      // The server ends the stream (nothing reached the provider; nothing more to meter).
      envoy.awaitClosed();
      assertThat(envoy.error()).isNull();
      assertThat(counter(app, "quota.metering.refused", "reason", "model_not_priced"))
          .isEqualTo(1.0);
      Thread.sleep(200); // a charge, were one made, would be committed within the commit interval
      assertThat(db.count("SELECT count(*) FROM usage_events WHERE key_id = ?", keyId)).isZero();
      assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", keyId))
          .isEqualByComparingTo("0");
    }
  }

  @Test
  void process_limitedKeyGeminiPathModelUnpriced_refusedAtRequestHeaders() throws Exception {
    try (TestDatabase db = TestDatabase.create();
        TestServer app = TestServer.start(db)) {
      long keyId = key(app, "10");
      EnvoyStream envoy = new EnvoyStream(app.envoyMetering());

      ProcessingResponse answer =
          envoy.requestHeaders(
              headers("/v1beta/models/gemini-1.5-flash-9b:generateContent", keyId, true, 40),
              false);

      // Gemini's error shape: error.code is the HTTP status, error.status the gRPC code name.
      assertRefused(answer, 403, "gemini-1.5-flash-9b", "/error/message");
      JsonNode body = JSON.readTree(answer.getImmediateResponse().getBody().toStringUtf8());
      assertThat(body.at("/error/code").asInt()).isEqualTo(403);
      assertThat(body.at("/error/status").asText()).isEqualTo("PERMISSION_DENIED");
      envoy.awaitClosed();
      assertThat(counter(app, "quota.metering.refused", "reason", "model_not_priced"))
          .isEqualTo(1.0);
    }
  }

  static Stream<String> unreadableModels() {
    return Stream.of(
        "{\"model\":\"gpt-4o\",", // truncated: not JSON
        "[1,2,3]", // not an object
        "{\"messages\":[]}", // no model
        "{\"model\":\"gpt-4o\",\"model\":\"o1-pro\"}", // duplicate key: which one would the
        // provider use?
        // a priced model, but nested past the parser's limit: the body is not read at all
        "{\"model\":\"gpt-4o\",\"x\":"
            + "[".repeat(RequestBody.MAX_DEPTH + 1)
            + "]".repeat(RequestBody.MAX_DEPTH + 1)
            + "}");
  }

  @ParameterizedTest
  @MethodSource("unreadableModels")
  void process_limitedKeyBodyWithoutReadableModel_refusedFailClosed(String body) throws Exception {
    try (TestDatabase db = TestDatabase.create();
        TestServer app = TestServer.start(db)) {
      long keyId = key(app, "10");
      byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
      EnvoyStream envoy = new EnvoyStream(app.envoyMetering());
      envoy.requestHeaders(headers("/v1/chat/completions", keyId, true, bytes.length), false);

      ProcessingResponse answer = envoy.requestBody(bytes);

      assertThat(answer.hasImmediateResponse()).isTrue();
      assertThat(answer.getImmediateResponse().getStatus().getCodeValue()).isEqualTo(403);
      assertThat(
              JSON.readTree(answer.getImmediateResponse().getBody().toStringUtf8())
                  .at("/error/code")
                  .asText())
          .isEqualTo("model_not_priced");
      assertThat(counter(app, "quota.metering.refused", "reason", "model_not_priced"))
          .isEqualTo(1.0);
    }
  }

  @Test
  void process_unlimitedKeyUnpricedModel_passesAndIsRecordedAtZero() throws Exception {
    try (TestDatabase db = TestDatabase.create();
        TestServer app = TestServer.start(db)) {
      long keyId = key(app, null);
      EnvoyStream envoy = new EnvoyStream(app.envoyMetering());
      envoy.requestHeaders(
          headers("/v1/chat/completions", keyId, false, NEWER_FAMILY.length), false);

      ProcessingResponse answer = envoy.requestBody(NEWER_FAMILY);
      assertThat(answer.hasImmediateResponse()).isFalse();
      envoy.responseHeaders(200, "application/json");
      byte[] body =
          respondingAs("openai-chat.json", "gpt-4o-2024-08-06", "gpt-5.6-mini-2026-11-01");
      envoy.responseBodyInChunks(body, new Random(7), 64, true, at -> {});
      envoy.complete();
      MeteringLedgerIT.awaitRows(db, keyId, 1);

      assertThat(
              db.scalar(
                  "SELECT model || '/' || cost || '/' || input_tokens || '/' || output_tokens"
                      + " || '/' || cached_input_tokens FROM usage_events WHERE key_id = ?",
                  keyId))
          .isEqualTo("gpt-5.6-mini/0.00000000/86/300/1920");
      assertThat(counter(app, "quota.metering.unpriced", "model", "gpt-5.6-mini")).isEqualTo(1.0);
      assertThat(counter(app, "quota.metering.refused", "reason", "model_not_priced")).isZero();
    }
  }

  @Test
  void process_operatorSetUnpricedRate_limitedKeyPassesAndIsChargedThatRate() throws Exception {
    try (TestDatabase db = TestDatabase.create();
        TestServer app =
            TestServer.start(
                db, Map.of(Setting.UNPRICED_MODEL_USD_PER_MTOK, "20"), Clock.systemUTC())) {
      long keyId = key(app, "10");
      EnvoyStream envoy = new EnvoyStream(app.envoyMetering());
      envoy.requestHeaders(
          headers("/v1/chat/completions", keyId, true, NEWER_FAMILY.length), false);

      assertThat(envoy.requestBody(NEWER_FAMILY).hasImmediateResponse()).isFalse();
      envoy.responseHeaders(200, "application/json");
      byte[] body =
          respondingAs("openai-chat.json", "gpt-4o-2024-08-06", "gpt-5.6-mini-2026-11-01");
      envoy.responseBodyInChunks(body, new Random(11), 64, true, at -> {});
      envoy.complete();
      MeteringLedgerIT.awaitRows(db, keyId, 1);

      // (86 + 300 + 1920) tokens x 20 USD per million
      assertThat((BigDecimal) db.scalar("SELECT cost FROM usage_events WHERE key_id = ?", keyId))
          .isEqualByComparingTo("0.04612");
      assertThat(counter(app, "quota.metering.refused", "reason", "model_not_priced")).isZero();
    }
  }

  @ParameterizedTest(name = "chunks up to {0} bytes")
  @ValueSource(ints = {1, 97})
  void process_aliasAnsweredByDatedModel_chargedAtTheDatedModelsPrice(int maxChunk)
      throws Exception {
    try (TestDatabase db = TestDatabase.create();
        TestServer app = TestServer.start(db)) {
      long keyId = key(app, "10");
      byte[] request =
          "{\"contents\":[{\"parts\":[{\"text\":\"fox\"}]}]}".getBytes(StandardCharsets.UTF_8);
      EnvoyStream envoy = new EnvoyStream(app.envoyMetering());
      // The alias is priced (its row: the dearest model it has pointed to), so it passes ...
      ProcessingResponse answer =
          envoy.requestHeaders(
              headers(
                  "/v1beta/models/gemini-pro-latest:streamGenerateContent?alt=sse",
                  keyId,
                  true,
                  request.length),
              false);
      assertThat(answer.hasImmediateResponse()).isFalse();
      envoy.requestBody(request);
      envoy.responseHeaders(200, "text/event-stream");
      // ... and the response's modelVersion names the model that served it (Gemini's documented
      // stream shape: every chunk carries modelVersion and cumulative usageMetadata).
      byte[] body = respondingAs("gemini-stream.sse", "gemini-2.5-flash", "gemini-2.5-pro");
      envoy.responseBodyInChunks(body, new Random(maxChunk), maxChunk, true, at -> {});
      envoy.complete();
      MeteringLedgerIT.awaitRows(db, keyId, 1);

      // gemini-2.5-pro: 476 x 1.25 + 600 x 10.00 + 1024 x 0.125 = 6723 per million
      // (the alias row would have made it 476 x 2 + 600 x 12 + 1024 x 0.20 = 8356.8)
      assertThat(db.scalar("SELECT model || '/' || cost FROM usage_events WHERE key_id = ?", keyId))
          .isEqualTo("gemini-2.5-pro/0.00672300");
    }
  }

  /** A fixture whose response names another model (the provider's answer to that request). */
  private static byte[] respondingAs(String fixture, String named, String instead) {
    String text = new String(Fixtures.bytes(fixture), StandardCharsets.UTF_8);
    assertThat(text).contains("\"" + named + "\"");
    return text.replace("\"" + named + "\"", "\"" + instead + "\"")
        .getBytes(StandardCharsets.UTF_8);
  }
}
