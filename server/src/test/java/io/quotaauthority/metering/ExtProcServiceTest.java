package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HeadersResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.usage.UsageReport;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** ExtProcService over a real (in-process) gRPC stream, driven through Envoy's phases. */
class ExtProcServiceTest {
  static final ProcessingResponse CONTINUE_RESPONSE_BODY =
      ProcessingResponse.newBuilder()
          .setResponseBody(
              BodyResponse.newBuilder().setResponse(CommonResponse.getDefaultInstance()))
          .build();
  private static final Clock CLOCK =
      Clock.fixed(Instant.parse("2025-06-01T12:00:00Z"), ZoneOffset.UTC);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration WAIT = Duration.ofSeconds(10);

  /** "m-", 12 hex digits of milliseconds and 10 random bytes in unpadded base64url. */
  static final String AUTHORITY_REPORT_ID = "m-[0-9a-f]{12}[A-Za-z0-9_-]{14}";

  private final RecordingUsageSink sink = new RecordingUsageSink();
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final List<MeteringSession> sessions = Collections.synchronizedList(new ArrayList<>());
  private final MeteringExecutor executor = new MeteringExecutor(2, 16);
  private Server server;
  private ManagedChannel channel;

  /**
   * @param unpricedUsdPerMtok the operator's unpriced rate, or null for none (the default)
   */
  private EnvoyStream start(String unpricedUsdPerMtok) throws IOException {
    UsageCharger charger =
        new UsageCharger(
            sink,
            Fixtures::testPrices,
            unpricedUsdPerMtok == null ? null : new BigDecimal(unpricedUsdPerMtok),
            registry,
            CLOCK,
            Fixtures.RETRIES,
            null,
            null,
            List.of(Duration.ZERO));
    String name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name)
            .addService(
                new ExtProcService(
                    () -> {
                      MeteringSession s = new MeteringSession(charger);
                      sessions.add(s);
                      return s;
                    },
                    executor))
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).build();
    return new EnvoyStream(channel);
  }

  private EnvoyStream start() throws IOException {
    return start("0");
  }

  private EnvoyStream another() {
    return new EnvoyStream(channel);
  }

  @AfterEach
  void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (server != null) {
      server.shutdownNow();
    }
    executor.close(1000);
  }

  /** A fixture whose response names another model (the provider's answer to that request). */
  private static byte[] respondingAs(String fixture, String named, String instead) {
    String text = new String(Fixtures.bytes(fixture), StandardCharsets.UTF_8);
    assertThat(text).contains("\"" + named + "\"");
    return utf8(text.replace("\"" + named + "\"", "\"" + instead + "\""));
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String contentType(String fixture) {
    return fixture.endsWith(".sse") ? "text/event-stream; charset=utf-8" : "application/json";
  }

  static Stream<Arguments> providerResponses() {
    return Stream.of(
        Arguments.of(
            "/v1/chat/completions",
            "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Describe the image\"}]}",
            "openai-chat.json",
            Provider.OPENAI,
            "gpt-4o-2024-08-06",
            new TokenUsage(86, 300, 1920, 0),
            "0.00561500"),
        Arguments.of(
            "/v1/chat/completions",
            "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}]}",
            "openai-chat-stream.sse",
            Provider.OPENAI,
            "gpt-4o-mini-2024-07-18",
            new TokenUsage(226, 42, 1024, 0),
            "0.00013590"),
        Arguments.of(
            "/v1/responses",
            "{\"model\":\"o3\",\"input\":\"Plan a trip\",\"reasoning\":{\"effort\":\"medium\"}}",
            "openai-responses.json",
            Provider.OPENAI,
            "o3-2025-04-16",
            new TokenUsage(1304, 1200, 4096, 0),
            "0.01425600"),
        Arguments.of(
            "/v1/responses",
            "{\"model\":\"gpt-4.1-mini\",\"input\":\"Unicode?\",\"stream\":true}",
            "openai-responses-stream.sse",
            Provider.OPENAI,
            "gpt-4.1-mini-2025-04-14",
            new TokenUsage(952, 500, 2048, 0),
            "0.00138560"),
        Arguments.of(
            "/v1/messages",
            "{\"model\":\"claude-sonnet-4-5-20250929\",\"max_tokens\":1024,\"system\":[{\"type\":\"text\",\"text\":\"...\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"Summarise\"}]}",
            "anthropic-messages.json",
            Provider.ANTHROPIC,
            "claude-sonnet-4-5-20250929",
            new TokenUsage(12, 95, 0, 2048),
            "0.00914100"),
        Arguments.of(
            "/v1/messages",
            "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":512,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Salut\"}]}",
            "anthropic-messages-stream.sse",
            Provider.ANTHROPIC,
            "claude-haiku-4-5-20251001",
            new TokenUsage(25, 153, 3000, 0),
            "0.00109000"),
        Arguments.of(
            "/v1beta/models/gemini-2.5-pro:generateContent",
            "{\"contents\":[{\"parts\":[{\"text\":\"Was ist 6x7?\"}]}],\"cachedContent\":\"cachedContents/abc\"}",
            "gemini-generate.json",
            Provider.GEMINI,
            "gemini-2.5-pro",
            new TokenUsage(2048, 1760, 8192, 0),
            "0.02118400"),
        Arguments.of(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            "{\"contents\":[{\"parts\":[{\"text\":\"fox\"}]}]}",
            "gemini-stream.sse",
            Provider.GEMINI,
            "gemini-2.5-flash",
            new TokenUsage(476, 600, 1024, 0),
            "0.00167352"),
        Arguments.of(
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            "{\"contents\":[{\"parts\":[{\"text\":\"zaehle\"}]}]}",
            "gemini-stream-array.json",
            Provider.GEMINI,
            "gemini-2.0-flash",
            new TokenUsage(42, 117, 0, 0),
            "0.00005100"));
  }

  @ParameterizedTest(name = "{2}")
  @MethodSource("providerResponses")
  void process_providerResponseInRandomChunks_chargesExactTokensAndCostOnce(
      String path,
      String requestBody,
      String fixture,
      Provider provider,
      String model,
      TokenUsage tokens,
      String cost)
      throws Exception {
    EnvoyStream envoy = start();
    byte[] request = utf8(requestBody);
    ProcessingResponse headersAnswer =
        envoy.requestHeaders(
            EnvoyStream.requestHeaders(path, "4711", "req-" + fixture, request.length), false);
    assertThat(
            headersAnswer
                .getRequestHeaders()
                .getResponse()
                .getHeaderMutation()
                .getRemoveHeadersList())
        .containsExactly("accept-encoding");
    assertThat(headersAnswer.hasModeOverride()).isFalse();
    envoy.requestBody(request);
    ProcessingResponse responseHeadersAnswer = envoy.responseHeaders(200, contentType(fixture));
    assertThat(responseHeadersAnswer.getResponseHeaders().getResponse())
        .isEqualTo(CommonResponse.getDefaultInstance());
    assertThat(responseHeadersAnswer.hasModeOverride()).isFalse();

    envoy.responseBodyInChunks(
        Fixtures.bytes(fixture), new Random(fixture.hashCode()), 97, true, at -> {});

    // charged right after the end_of_stream answer, before the stream closes, under a report id
    // the authority made; the request's own id is kept beside it
    List<UsageReport> submitted = sink.awaitSubmitted(1, WAIT);
    assertThat(submitted).hasSize(1);
    assertThat(submitted.get(0).reportId()).matches(AUTHORITY_REPORT_ID);
    assertThat(submitted)
        .containsExactly(
            new UsageReport(
                submitted.get(0).reportId(),
                4711,
                new BigDecimal(cost),
                model,
                provider.wireName(),
                tokens.inputTokens(),
                tokens.outputTokens(),
                tokens.cachedInputTokens(),
                tokens.cacheWriteTokens(),
                CLOCK.instant(),
                "req-" + fixture));
    envoy.complete();
    assertThat(envoy.error()).isNull();
    assertThat(sink.submitted()).hasSize(1);
  }

  @Test
  void process_streamingChatWithoutIncludeUsage_rewritesBodyAndContentLength() throws Exception {
    EnvoyStream envoy = start();
    byte[] request =
        utf8(
            "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"temperature\":0.2,"
                + "\"messages\":[{\"role\":\"user\",\"content\":\"Grüß dich\"}]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "1", "r1", request.length), false);
    ProcessingResponse answer = envoy.requestBody(request);

    CommonResponse common = answer.getRequestBody().getResponse();
    assertThat(common.getStatus()).isEqualTo(CommonResponse.ResponseStatus.CONTINUE);
    byte[] mutated = common.getBodyMutation().getBody().toByteArray();
    JsonNode body = JSON.readTree(mutated);
    assertThat(body.at("/stream_options/include_usage").asBoolean()).isTrue();
    assertThat(body.get("messages")).isEqualTo(JSON.readTree(request).get("messages"));
    // The admission mark first (a key Check did not mark unlimited is held: holds are off here),
    // then the length.
    assertThat(common.getHeaderMutation().getSetHeadersList()).hasSize(2);
    assertThat(common.getHeaderMutation().getSetHeaders(0).getHeader().getKey())
        .isEqualTo("x-quota-admitted");
    assertThat(common.getHeaderMutation().getSetHeadersList().subList(1, 2))
        .singleElement()
        .satisfies(
            h -> {
              assertThat(h.getHeader().getKey()).isEqualTo("content-length");
              assertThat(h.getHeader().getRawValue().toStringUtf8())
                  .isEqualTo(Integer.toString(mutated.length));
              assertThat(h.getHeader().getValue())
                  .isEmpty(); // Envoy rejects value and raw_value together
              assertThat(h.getAppendAction())
                  .isEqualTo(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD);
            });
  }

  @Test
  void process_streamingChatWithoutContentLength_rewritesBodyOnly() throws Exception {
    EnvoyStream envoy = start();
    byte[] request = utf8("{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[]}");
    // HTTP/2 or chunked: no content-length to keep in step
    envoy.requestHeaders(EnvoyStream.requestHeaders("/v1/chat/completions", "1", "r1", -1), false);
    CommonResponse common = envoy.requestBody(request).getRequestBody().getResponse();
    assertThat(common.hasBodyMutation()).isTrue();
    assertThat(common.getHeaderMutation().getSetHeadersList())
        .extracting(h -> h.getHeader().getKey())
        .containsExactly("x-quota-admitted");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "{\"model\":\"gpt-4o\",\"messages\":[]}",
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[]}",
        "not json at all"
      })
  void process_chatNeedingNoUsageOption_leavesRequestBodyAlone(String body) throws Exception {
    EnvoyStream envoy = start();
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "1", "r1", body.length()), false);
    CommonResponse common = envoy.requestBody(utf8(body)).getRequestBody().getResponse();
    assertThat(common.hasBodyMutation()).isFalse();
    // Only the admission mark, "1" (a key Check did not mark unlimited is admitted on its body).
    assertThat(common.getHeaderMutation().getSetHeadersList())
        .extracting(h -> h.getHeader().getKey() + "=" + h.getHeader().getRawValue().toStringUtf8())
        .containsExactly("x-quota-admitted=1");
    assertThat(common.getHeaderMutation().getRemoveHeadersList()).isEmpty();
  }

  @Test
  void process_responsesApiStream_isNotRewritten() throws Exception {
    EnvoyStream envoy = start();
    byte[] body = utf8("{\"model\":\"gpt-4.1\",\"stream\":true,\"input\":\"x\"}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/responses", "1", "r1", body.length), false);
    assertThat(envoy.requestBody(body).getRequestBody().getResponse().hasBodyMutation()).isFalse();
  }

  @ParameterizedTest
  @ValueSource(ints = {400, 401, 429, 500, 503, 529})
  void process_errorStatus_chargesNothing(int status) throws Exception {
    EnvoyStream envoy = start();
    byte[] request = utf8("{\"model\":\"gpt-4o\",\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "9", "err-" + status, request.length),
        false);
    envoy.requestBody(request);
    ProcessingResponse answer = envoy.responseHeaders(status, "application/json");
    assertThat(answer.getModeOverride().getResponseBodyMode())
        .isEqualTo(ProcessingMode.BodySendMode.NONE);
    // Envoy without allow_mode_override still sends the body: it is let through and not charged
    // (even one that, oddly, carries usage).
    byte[] body =
        utf8(
            "{\"error\":{\"message\":\"x\"},\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5}}");
    assertThat(envoy.responseBody(body, 0, body.length, true)).isEqualTo(CONTINUE_RESPONSE_BODY);
    envoy.complete();
    assertThat(sink.submitted()).isEmpty();
    assertThat(
            registry
                .get("quota.metering.unmetered")
                .tag("reason", "error_status")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @Test
  void process_streamHalfClosedBeforeEndOfStream_chargesReportedInputAndEstimatedOutput()
      throws Exception {
    EnvoyStream envoy = start();
    byte[] request =
        utf8("{\"model\":\"claude-haiku-4-5\",\"stream\":true,\"max_tokens\":9,\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/messages", "77", "cut-1", request.length), false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "text/event-stream");
    String sse =
        new String(Fixtures.bytes("anthropic-messages-stream.sse"), StandardCharsets.UTF_8);
    byte[] firstPart = utf8(sse.substring(0, sse.indexOf("event: content_block_stop")));
    envoy.responseBodyInChunks(firstPart, new Random(7), 50, false, at -> {});
    assertThat(sink.submitted()).isEmpty();

    envoy.complete();
    // message_start's input and cache counts (the provider's final count of the prompt), and for
    // output the byte bound of the text seen, "Bonjour à tous 👋 — ça va ?": 22 ASCII bytes
    // (8 tokens) and 11 others (6), above message_start's output_tokens of 1:
    // 25 x 1 + 14 x 5 + 3000 x 0.10 = 395 per million
    List<UsageReport> reports = sink.awaitSubmitted(1, WAIT);
    assertThat(reports)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.requestId()).isEqualTo("cut-1");
              assertThat(r.keyId()).isEqualTo(77);
              assertThat(r.estimated()).isTrue();
              assertThat(r.cost()).isEqualTo(new BigDecimal("0.00039500"));
              assertThat(List.of(r.inputTokens(), r.outputTokens(), r.cachedInputTokens()))
                  .containsExactly(25L, 14L, 3000L);
            });
  }

  @Test
  void process_streamCancelledAfterUsageBeforeDone_chargesFullUsage() throws Exception {
    EnvoyStream envoy = start();
    byte[] request = utf8("{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "5", "cancel-1", request.length), false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "text/event-stream");
    String sse = new String(Fixtures.bytes("openai-chat-stream.sse"), StandardCharsets.UTF_8);
    byte[] upToUsage = utf8(sse.substring(0, sse.indexOf("data: [DONE]")));
    envoy.responseBodyInChunks(upToUsage, new Random(11), 64, false, at -> {});

    envoy.cancel();
    assertThat(sink.awaitSubmitted(1, WAIT))
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.requestId()).isEqualTo("cancel-1");
              assertThat(r.cost()).isEqualTo(new BigDecimal("0.00013590"));
            });
  }

  @Test
  void process_streamCancelledBeforeAnyUsage_chargesAnEstimate() throws Exception {
    EnvoyStream envoy = start();
    // Counted exactly once the encodings are loaded (until then by the byte bound).
    assertThat(TokenEstimate.awaitEncodings(WAIT)).isTrue();
    byte[] request = utf8("{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "5", "cancel-2", request.length), false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "text/event-stream");
    String sse = new String(Fixtures.bytes("openai-chat-stream.sse"), StandardCharsets.UTF_8);
    byte[] noUsage = utf8(sse.substring(0, sse.indexOf("\"finish_reason\":\"stop\"")));
    envoy.responseBodyInChunks(noUsage, new Random(12), 64, false, at -> {});
    envoy.cancel();

    // No messages: 3 input tokens (the reply's priming). Output: o200k_base counts the content
    // seen, "Bonjour à tous — こんにちは 👋!", as 9 tokens. 3 x 0.15 + 9 x 0.60 = 5.85 per million.
    assertThat(sink.awaitSubmitted(1, WAIT))
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.estimated()).isTrue();
              assertThat(List.of(r.inputTokens(), r.outputTokens(), r.cachedInputTokens()))
                  .containsExactly(3L, 9L, 0L);
              assertThat(r.cost()).isEqualTo(new BigDecimal("0.00000585"));
            });
    assertThat(registry.get("quota.metering.estimated").tag("provider", "openai").counter().count())
        .isEqualTo(1.0);
    assertThat(
            registry.get("quota.metering.estimated").tag("provider", "anthropic").counter().count())
        .isZero();
    assertThat(sessions.get(0).retainedBytes()).isZero();
  }

  @Test
  void process_streamCancelledBeforeAnyBodyByte_chargesThePromptEstimate() throws Exception {
    // A reasoning model sends its 200 headers at once and its first byte only after thinking;
    // a client that gives up in between was still billed for the prompt.
    EnvoyStream envoy = start();
    byte[] request = utf8("{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "5", "cancel-3", request.length), false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "text/event-stream");
    envoy.cancel();

    UsageReport r = sink.awaitSubmitted(1, WAIT).get(0);
    // No messages: the per-request framing (3 tokens) only, no output.
    assertThat(r.estimated()).isTrue();
    assertThat(r.inputTokens()).isEqualTo(3);
    assertThat(r.outputTokens()).isZero();
    assertThat(sessions.get(0).retainedBytes()).isZero();
  }

  @Test
  void process_unpricedModelWithDefaultPrice_chargesDefaultAndCounts() throws Exception {
    EnvoyStream envoy = start("0.25");
    byte[] request = utf8("{\"model\":\"llama-3.3-70b-instruct\",\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "8", "unpriced-1", request.length),
        false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "application/json");
    byte[] body = respondingAs("openai-chat.json", "gpt-4o-2024-08-06", "llama-3.3-70b-instruct");
    envoy.responseBody(body, 0, body.length, true);
    // (86 + 300 + 1920) tokens x 0.25 / 1e6
    assertThat(sink.awaitSubmitted(1, WAIT))
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.model()).isEqualTo("llama-3.3-70b-instruct");
              assertThat(r.cost()).isEqualTo(new BigDecimal("0.00057650"));
            });
    assertThat(
            registry
                .get("quota.metering.unpriced")
                .tag("model", "llama-3.3-70b-instruct")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @Test
  void process_unpricedModelWithZeroPrice_chargesNothingButRecordsTokens() throws Exception {
    EnvoyStream envoy = start("0");
    byte[] request = utf8("{\"model\":\"llama-3.3-70b-instruct\",\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "8", "unpriced-2", request.length),
        false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "application/json");
    byte[] body = respondingAs("openai-chat.json", "gpt-4o-2024-08-06", "llama-3.3-70b-instruct");
    envoy.responseBody(body, 0, body.length, true);
    assertThat(sink.awaitSubmitted(1, WAIT))
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.cost()).isEqualByComparingTo("0");
              assertThat(r.outputTokens()).isEqualTo(300);
            });
    assertThat(
            registry
                .get("quota.metering.unpriced")
                .tag("model", "llama-3.3-70b-instruct")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @ParameterizedTest(name = "request {0}, response {1}")
  @CsvSource({
    // openai-chat-stream.sse: 226 in x 0.15 + 42 out x 0.60 + 1024 cached x 0.075 = 135.9 per
    // million
    "'',                            default,  0.00013590",
    "',\"service_tier\":\"priority\"', priority, 0.00027180", // twice the row
    "'',                            priority, 0.00027180", // the project's default tier is priority
    "',\"service_tier\":\"priority\"', default,  0.00013590", // the response says what served it
    "',\"service_tier\":\"flex\"',     flex,     0.00013590", // flex costs less: standard rate
    "',\"service_tier\":\"priority\"', -,        0.00027180", // the response names none
  })
  void process_openAiServiceTier_priorityChargedAtTwiceTheRow(
      String requestTier, String responseTier, String cost) throws Exception {
    EnvoyStream envoy = start();
    byte[] request =
        utf8(
            "{\"model\":\"gpt-4o-mini\",\"stream\":true"
                + requestTier
                + ",\"stream_options\":{\"include_usage\":true},\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "8", "tier", request.length), false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "text/event-stream");
    String sse =
        new String(Fixtures.bytes("openai-chat-stream.sse"), StandardCharsets.UTF_8)
            .replace(
                "\"service_tier\":\"default\",",
                responseTier.equals("-") ? "" : "\"service_tier\":\"" + responseTier + "\",");
    // one byte at a time: the tier is read across every split
    envoy.responseBodyInChunks(utf8(sse), new Random(3), 1, true, at -> {});
    assertThat(sink.awaitSubmitted(1, WAIT))
        .singleElement()
        .satisfies(r -> assertThat(r.cost()).isEqualTo(new BigDecimal(cost)));
  }

  @Test
  void process_limitedKeyUnpricedModelWithoutRate_immediate403AndStreamEnded() throws Exception {
    EnvoyStream envoy = start(null);
    byte[] request = utf8("{\"model\":\"claude-opus-4-8\",\"max_tokens\":1,\"messages\":[]}");
    // no x-quota-key-limited: treated as limited (the stricter rule)
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/messages", "8", "opus-4-8", request.length), false);
    ProcessingResponse answer = envoy.requestBody(request);
    assertThat(answer.getImmediateResponse().getStatus().getCodeValue()).isEqualTo(403);
    JsonNode body = JSON.readTree(answer.getImmediateResponse().getBody().toStringUtf8());
    // Anthropic's error shape
    assertThat(body.at("/type").asText()).isEqualTo("error");
    assertThat(body.at("/error/type").asText()).isEqualTo("permission_error");
    assertThat(body.at("/error/message").asText())
        .contains("'claude-opus-4-8'")
        .contains("model_not_priced");
    envoy.awaitClosed();
    assertThat(envoy.error()).isNull();
    assertThat(sink.submitted()).isEmpty();
    assertThat(
            registry
                .get("quota.metering.refused")
                .tag("reason", "model_not_priced")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @Test
  void process_limitedKeyResponsesWithDuplicateBackground_refusedEvenWithARateSet()
      throws Exception {
    // With a rate for unpriced models nothing refuses an unreadable body on its model; the
    // provider would still read the last "background": true and answer on an unmetered GET.
    EnvoyStream envoy = start("0.25");
    byte[] request =
        utf8("{\"model\":\"gpt-4o\",\"input\":\"x\",\"background\":true,\"background\":true}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/responses", "8", "bg-dup", request.length), false);

    ProcessingResponse answer = envoy.requestBody(request);

    assertThat(answer.getImmediateResponse().getStatus().getCodeValue()).isEqualTo(403);
    assertThat(answer.getImmediateResponse().getBody().toStringUtf8())
        .contains("endpoint_not_metered");
    assertThat(
            registry
                .get("quota.metering.refused")
                .tag("reason", "endpoint_not_metered")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @Test
  void process_unlimitedKeyUnreadableBody_passesUnrefused() throws Exception {
    EnvoyStream envoy = start(null);
    byte[] request = utf8("{\"model\":");
    Map<String, String> h =
        EnvoyStream.requestHeaders("/v1/chat/completions", "8", "unl", request.length);
    h.put(GatewayHeaders.KEY_LIMITED, "false");
    envoy.requestHeaders(h, false);
    assertThat(envoy.requestBody(request).hasImmediateResponse()).isFalse();
    assertThat(
            registry
                .get("quota.metering.refused")
                .tag("reason", "model_not_priced")
                .counter()
                .count())
        .isZero();
  }

  static Stream<Arguments> badHeaders() {
    return Stream.of(
        Arguments.of(null, "r1", "missing_key_id"),
        Arguments.of("abc", "r1", "bad_key_id"),
        Arguments.of("-5", "r1", "bad_key_id"),
        Arguments.of("0", "r1", "bad_key_id"),
        Arguments.of("99999999999999999999", "r1", "bad_key_id"),
        // The id rule of the admin API and the usage stream (KeyIds): one spelling per id.
        Arguments.of("+12", "r1", "bad_key_id"),
        Arguments.of("012", "r1", "bad_key_id"),
        Arguments.of("\u0661\u0662", "r1", "bad_key_id"));
  }

  static Stream<Arguments> unusableRequestIds() {
    return Stream.of(
        Arguments.of((String) null),
        Arguments.of("has\ttab"),
        Arguments.of("caf\u00e9"),
        Arguments.of("x".repeat(129)));
  }

  /** The report id is the authority's, so a request without a usable x-request-id still pays. */
  @ParameterizedTest
  @MethodSource("unusableRequestIds")
  void process_missingOrMalformedRequestId_chargesWithoutRequestId(String requestId)
      throws Exception {
    EnvoyStream envoy = start();
    byte[] request = utf8("{\"model\":\"gpt-4o\",\"messages\":[]}");
    ProcessingResponse answer =
        envoy.requestHeaders(
            EnvoyStream.requestHeaders("/v1/chat/completions", "12", requestId, request.length),
            false);
    assertThat(answer.hasModeOverride()).isFalse();
    envoy.requestBody(request);
    envoy.responseHeaders(200, "application/json");
    byte[] body = Fixtures.bytes("openai-chat.json");
    envoy.responseBody(body, 0, body.length, true);
    assertThat(sink.awaitSubmitted(1, WAIT))
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.reportId()).matches(AUTHORITY_REPORT_ID);
              assertThat(r.requestId()).isNull();
              assertThat(r.keyId()).isEqualTo(12);
              assertThat(r.cost()).isEqualTo(new BigDecimal("0.00561500"));
            });
    envoy.complete();
  }

  @ParameterizedTest
  @MethodSource("badHeaders")
  void process_missingOrMalformedHeader_chargesNothingAndCounts(
      String keyId, String requestId, String reason) throws Exception {
    EnvoyStream envoy = start();
    byte[] request = utf8("{\"model\":\"gpt-4o\",\"messages\":[]}");
    ProcessingResponse answer =
        envoy.requestHeaders(
            EnvoyStream.requestHeaders("/v1/chat/completions", keyId, requestId, request.length),
            false);
    assertThat(answer.getModeOverride().getResponseBodyMode())
        .isEqualTo(ProcessingMode.BodySendMode.NONE);
    assertThat(answer.getRequestHeaders().getResponse())
        .isEqualTo(CommonResponse.getDefaultInstance());
    // Phases still come when Envoy does not allow mode overrides: all pass through.
    envoy.requestBody(request);
    envoy.responseHeaders(200, "application/json");
    byte[] body = Fixtures.bytes("openai-chat.json");
    assertThat(envoy.responseBody(body, 0, body.length, true)).isEqualTo(CONTINUE_RESPONSE_BODY);
    envoy.complete();
    assertThat(sink.submitted()).isEmpty();
    assertThat(registry.get("quota.metering.unmetered").tag("reason", reason).counter().count())
        .isEqualTo(1.0);
  }

  @Test
  void process_keyIdHeaderTwice_chargesNothing() throws Exception {
    EnvoyStream envoy = start();
    Map<String, String> h = EnvoyStream.requestHeaders("/v1/chat/completions", "12", "r1", 10);
    ProcessingRequest twice =
        ProcessingRequest.newBuilder()
            .setRequestHeaders(
                HttpHeaders.newBuilder()
                    .setHeaders(
                        EnvoyStream.headers(h).toBuilder()
                            .addHeaders(
                                HeaderValue.newBuilder()
                                    .setKey("x-quota-key-id")
                                    .setRawValue(ByteString.copyFromUtf8("13")))))
            .build();
    assertThat(envoy.send(twice).hasModeOverride()).isTrue();
    assertThat(
            registry
                .get("quota.metering.unmetered")
                .tag("reason", "missing_key_id")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @Test
  void process_getRequest_isNotMetered() throws Exception {
    EnvoyStream envoy = start();
    Map<String, String> h = EnvoyStream.requestHeaders("/v1/responses/resp_123", "1", "r1", -1);
    h.put(":method", "GET");
    ProcessingResponse answer = envoy.requestHeaders(h, true);
    assertThat(answer.getModeOverride().getResponseHeaderMode())
        .isEqualTo(ProcessingMode.HeaderSendMode.SKIP);
    envoy.responseHeaders(200, "application/json");
    byte[] body = Fixtures.bytes("openai-responses.json");
    envoy.responseBody(body, 0, body.length, true);
    envoy.complete();
    assertThat(sink.submitted()).isEmpty();
  }

  @Test
  void process_compressedResponse_isNotMeteredAndCounted() throws Exception {
    EnvoyStream envoy = start();
    byte[] request = utf8("{\"model\":\"gpt-4o\",\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "1", "gz", request.length), false);
    envoy.requestBody(request);
    ProcessingResponse answer =
        envoy.responseHeaders(
            Map.of(
                ":status", "200", "content-type", "application/json", "content-encoding", "gzip"));
    assertThat(answer.getModeOverride().getResponseBodyMode())
        .isEqualTo(ProcessingMode.BodySendMode.NONE);
    envoy.complete();
    assertThat(sink.submitted()).isEmpty();
    assertThat(
            registry
                .get("quota.metering.unmetered")
                .tag("reason", "encoded_body")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @Test
  void process_sameRequestIdStreamedTwice_isChargedTwiceUnderDistinctReportIds() throws Exception {
    EnvoyStream first = start();
    for (EnvoyStream envoy : List.of(first, another())) {
      byte[] request = utf8("{\"model\":\"claude-haiku-4-5\",\"stream\":true,\"messages\":[]}");
      envoy.requestHeaders(
          EnvoyStream.requestHeaders("/v1/messages", "3", "retry-same-id", request.length), false);
      envoy.requestBody(request);
      envoy.responseHeaders(200, "text/event-stream");
      envoy.responseBodyInChunks(
          Fixtures.bytes("anthropic-messages-stream.sse"), new Random(3), 200, true, at -> {});
      envoy.complete();
    }
    // A client repeating its x-request-id gets no free request: every stream is its own charge.
    assertThat(sink.submitted()).hasSize(2);
    assertThat(sink.charged())
        .hasSize(2)
        .allSatisfy(
            r -> {
              assertThat(r.reportId()).matches(AUTHORITY_REPORT_ID);
              assertThat(r.requestId()).isEqualTo("retry-same-id");
              assertThat(r.cost()).isEqualTo(new BigDecimal("0.00109000"));
            });
    assertThat(sink.charged().get(0).reportId()).isNotEqualTo(sink.charged().get(1).reportId());
    assertThat(registry.get("quota.metering.charges").tag("outcome", "accepted").counter().count())
        .isEqualTo(2.0);
  }

  @Test
  void process_observabilityMode_answersNothingButCharges() throws Exception {
    EnvoyStream envoy = start();
    byte[] body = Fixtures.bytes("gemini-generate.json");
    ProcessingRequest.Builder headers =
        ProcessingRequest.newBuilder()
            .setObservabilityMode(true)
            .setRequestHeaders(
                HttpHeaders.newBuilder()
                    .setHeaders(
                        EnvoyStream.headers(
                            EnvoyStream.requestHeaders(
                                "/v1beta/models/gemini-2.5-pro:generateContent", "2", "obs", -1))));
    ProcessingRequest.Builder status =
        ProcessingRequest.newBuilder()
            .setObservabilityMode(true)
            .setResponseHeaders(
                HttpHeaders.newBuilder()
                    .setHeaders(
                        EnvoyStream.headers(
                            Map.of(":status", "200", "content-type", "application/json"))));
    ProcessingRequest.Builder response =
        ProcessingRequest.newBuilder()
            .setObservabilityMode(true)
            .setResponseBody(
                HttpBody.newBuilder().setBody(ByteString.copyFrom(body)).setEndOfStream(true));
    envoy.sendWithoutAnswer(headers.build());
    envoy.sendWithoutAnswer(status.build());
    envoy.sendWithoutAnswer(response.build());
    envoy.complete();
    assertThat(sink.awaitSubmitted(1, WAIT))
        .singleElement()
        .satisfies(r -> assertThat(r.cost()).isEqualTo(new BigDecimal("0.02118400")));
    assertThat(envoy.unansweredCount()).isZero();
  }

  @Test
  void process_firstMessageIsResponseHeaders_answersOnceEndsStreamAndChargesNothing()
      throws Exception {
    EnvoyStream envoy = start();
    // Envoy 1.37+: Check denied with 429, so ext_proc never saw the request; the local reply's
    // headers open the stream.
    ProcessingResponse answer = envoy.responseHeaders(429, "application/json");

    assertThat(answer)
        .isEqualTo(
            ProcessingResponse.newBuilder()
                .setResponseHeaders(
                    HeadersResponse.newBuilder().setResponse(CommonResponse.getDefaultInstance()))
                .build());
    // The server completes the stream with OK without Envoy half-closing it first.
    envoy.awaitClosed();
    assertThat(envoy.error()).isNull();
    assertThat(
            registry.get("quota.metering.unmetered").tag("reason", "local_reply").counter().count())
        .isEqualTo(1.0);
    assertThat(sink.submitted()).isEmpty();
  }

  @Test
  void process_errorResponseAfterRequestHeaders_isNotTakenForALocalReply() throws Exception {
    EnvoyStream envoy = start();
    byte[] request = utf8("{\"model\":\"gpt-4o\",\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "9", "lr-2", request.length), false);
    envoy.requestBody(request);
    envoy.responseHeaders(503, "text/plain");
    envoy.complete();
    assertThat(envoy.error()).isNull();
    assertThat(registry.find("quota.metering.unmetered").tag("reason", "local_reply").counter())
        .isNull();
    assertThat(
            registry
                .get("quota.metering.unmetered")
                .tag("reason", "error_status")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @Test
  void process_requestWithoutPhase_failsStreamWithInvalidArgument() throws Exception {
    EnvoyStream envoy = start();
    envoy.sendWithoutAnswer(ProcessingRequest.getDefaultInstance());
    envoy.awaitClosed();
    assertThat(Status.fromThrowable(envoy.error()).getCode())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
  }

  @Test
  void process_sinkSlowToAccept_lastAnswerIsNotHeldBack() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch entered = new CountDownLatch(1);
    UsageCharger charger =
        new UsageCharger(
            report -> {
              entered.countDown();
              try {
                release.await(); // a pipeline applying backpressure
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
              return sink.submit(report);
            },
            Fixtures::testPrices,
            BigDecimal.ZERO,
            registry,
            CLOCK,
            Fixtures.RETRIES,
            null,
            null,
            List.of());
    String name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name)
            .addService(new ExtProcService(charger, executor))
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).build();
    EnvoyStream envoy = new EnvoyStream(channel);
    byte[] request = utf8("{\"model\":\"gpt-4o\",\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "1", "slow", request.length), false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "application/json");
    byte[] body = Fixtures.bytes("openai-chat.json");

    assertThat(envoy.responseBody(body, 0, body.length, true)).isEqualTo(CONTINUE_RESPONSE_BODY);
    assertThat(entered.await(WAIT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
    assertThat(sink.submitted()).isEmpty();
    release.countDown();
    assertThat(sink.awaitSubmitted(1, WAIT)).hasSize(1);
    envoy.complete();
  }

  /**
   * 100 MiB of streamed chat chunks, plus one 8 MiB event (a single huge data line), cut at random
   * offsets: the session never holds more than a few KiB, and the final usage is still charged.
   */
  @Test
  void process_100MiBStreamedSse_keepsRetainedBytesFlat() throws Exception {
    EnvoyStream envoy = start();
    byte[] request =
        utf8(
            "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[]}");
    envoy.requestHeaders(
        EnvoyStream.requestHeaders("/v1/chat/completions", "100", "big", request.length), false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "text/event-stream");
    MeteringSession session = sessions.get(0);
    long heapBefore = usedHeapAfterGc();

    ByteArrayOutputStream period = new ByteArrayOutputStream();
    String text = "Lorem ipsum dolor sit amet, «usage» — ünïcödé ✓ 👋 \\\"quoted\\\" ".repeat(3);
    while (period.size() < (1 << 20)) {
      period.writeBytes(
          utf8(
              "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                  + "\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\""
                  + text
                  + "\"},\"finish_reason\":null}],\"usage\":null}\n\n"));
    }
    byte[] periodBytes = period.toByteArray();
    byte[] huge = hugeEvent(8 << 20);
    Random random = new Random(100L);
    int[] maxRetained = {0};
    long sent = 0;
    for (int i = 0; sent < 100L << 20; i++) {
      byte[] part = i == 50 ? huge : periodBytes;
      envoy.responseBodyInChunks(
          part,
          random,
          64 << 10,
          false,
          at -> maxRetained[0] = Math.max(maxRetained[0], session.retainedBytes()));
      sent += part.length;
    }
    String sse = new String(Fixtures.bytes("openai-chat-stream.sse"), StandardCharsets.UTF_8);
    byte[] tail =
        utf8(
            sse.substring(sse.indexOf("data: {", sse.indexOf("\"finish_reason\":\"stop\"") - 300)));
    envoy.responseBodyInChunks(
        tail,
        random,
        100,
        true,
        at -> maxRetained[0] = Math.max(maxRetained[0], session.retainedBytes()));

    long heapGrowth = usedHeapAfterGc() - heapBefore;

    assertThat(sent).isGreaterThanOrEqualTo(100L << 20);
    // A second, coarser signal: nothing near the 100 MiB sent (or the 8 MiB event) stayed on the
    // heap. The bound leaves room for the 1 MiB period buffer and gRPC's pools.
    assertThat(heapGrowth).isLessThan(32L << 20);
    assertThat(maxRetained[0]).isPositive().isLessThan(4096);
    assertThat(sink.awaitSubmitted(1, WAIT))
        .singleElement()
        .satisfies(r -> assertThat(r.cost()).isEqualTo(new BigDecimal("0.00013590")));
    envoy.complete();
  }

  private static long usedHeapAfterGc() throws InterruptedException {
    Runtime rt = Runtime.getRuntime();
    long used = Long.MAX_VALUE;
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(50);
      used = Math.min(used, rt.totalMemory() - rt.freeMemory());
    }
    return used;
  }

  /** One event whose single data line is about this size: a huge content delta. */
  private static byte[] hugeEvent(int approxSize) {
    byte[] head = utf8("data: {\"choices\":[{\"delta\":{\"content\":\"");
    byte[] tailBytes = utf8("\"}}],\"usage\":null}\r\n\r\n");
    byte[] unit = utf8("café ");
    int units = approxSize / unit.length;
    byte[] out = new byte[head.length + units * unit.length + tailBytes.length];
    System.arraycopy(head, 0, out, 0, head.length);
    for (int i = 0; i < units; i++) {
      System.arraycopy(unit, 0, out, head.length + i * unit.length, unit.length);
    }
    System.arraycopy(tailBytes, 0, out, out.length - tailBytes.length, tailBytes.length);
    return out;
  }

  /**
   * A saturated metering executor: the stream's messages are answered at once, unread (the request
   * passes), metering stops for that request and it is counted; once the executor has room the next
   * stream is metered as usual.
   */
  @Test
  void process_executorSaturated_answersUnreadCountsAndChargesNothing() throws Exception {
    UsageCharger charger =
        new UsageCharger(
            sink,
            Fixtures::testPrices,
            BigDecimal.ZERO,
            registry,
            CLOCK,
            Fixtures.RETRIES,
            null,
            null,
            List.of(Duration.ZERO));
    try (MeteringExecutor small = new MeteringExecutor(1, 1)) {
      String name = InProcessServerBuilder.generateName();
      server =
          InProcessServerBuilder.forName(name)
              .addService(new ExtProcService(charger, small))
              .build()
              .start();
      channel = InProcessChannelBuilder.forName(name).build();
      CountDownLatch release = new CountDownLatch(1);
      assertThat(
              small
                  .lane()
                  .tryExecute(
                      () -> {
                        try {
                          release.await(); // another stream's long body parse holds the only slot
                        } catch (InterruptedException e) {
                          Thread.currentThread().interrupt();
                        }
                      }))
          .isTrue();

      EnvoyStream refused = new EnvoyStream(channel);
      byte[] request = utf8("{\"model\":\"gpt-4o\",\"messages\":[]}");
      ProcessingResponse headers =
          refused.requestHeaders(
              EnvoyStream.requestHeaders("/v1/chat/completions", "7", "overloaded", request.length),
              false);
      // Passed through as is: no accept-encoding removal, no mode override.
      assertThat(headers)
          .isEqualTo(MeteringSession.passThrough(ProcessingRequest.RequestCase.REQUEST_HEADERS));
      assertThat(refused.requestBody(request).getRequestBody().getResponse())
          .isEqualTo(CommonResponse.getDefaultInstance());
      assertThat(
              registry
                  .get("quota.metering.unmetered")
                  .tag("reason", "overloaded")
                  .counter()
                  .count())
          .isEqualTo(1.0);

      release.countDown();
      byte[] body = Fixtures.bytes("openai-chat.json");
      refused.responseHeaders(200, "application/json");
      refused.responseBody(body, 0, body.length, true);
      refused.complete();

      EnvoyStream metered = new EnvoyStream(channel);
      ProcessingResponse ok =
          metered.requestHeaders(
              EnvoyStream.requestHeaders("/v1/chat/completions", "7", "has-room", request.length),
              false);
      assertThat(ok.getRequestHeaders().getResponse().getHeaderMutation().getRemoveHeadersList())
          .containsExactly("accept-encoding");
      metered.requestBody(request);
      metered.responseHeaders(200, "application/json");
      metered.responseBody(body, 0, body.length, true);
      assertThat(sink.awaitSubmitted(1, WAIT))
          .extracting(UsageReport::requestId)
          .containsExactly("has-room");
      metered.complete();
      assertThat(
              registry
                  .get("quota.metering.unmetered")
                  .tag("reason", "overloaded")
                  .counter()
                  .count())
          .isEqualTo(1.0);
    }
  }
}
