package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.UsageEvent;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Streams cut short, through a real server into PostgreSQL: each fixture is metered whole (exact
 * cost, not estimated) and cut at several points (after the first content chunk, mid-stream inside
 * an event, just before the final usage), by the client going away or the upstream ending. Every
 * cut charges one estimated event whose cost is at least the input part of the whole stream's cost
 * and at most {@link #BOUND} times the whole stream's cost plus the estimate's framing tokens at
 * the input price (the bound the README states).
 *
 * <p>The fixtures' usage is what the providers would report for their text: OpenAI's from
 * o200k_base (37 prompt tokens with OpenAI's 3 per message and 3 per reply, 77 completion tokens),
 * Anthropic's and Gemini's about 4.2 bytes of English per token (82 output tokens for 343 bytes),
 * which the byte bound (1 per 3 ASCII bytes) over-counts by about 1.4.
 */
class MeteringEstimateLedgerIT {
  /** The documented bound: an estimate costs at most 1.5 x the whole stream (+ framing). */
  static final BigDecimal BOUND = new BigDecimal("1.5");

  private static final String SYSTEM = "You are a concise assistant for a travel company.";
  private static final String USER =
      "Suggest three things to do on a rainy afternoon in Lisbon, with one sentence on each.";

  private static TestDatabase db;
  private static TestServer app;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    app = TestServer.start(db);
    // The OpenAI cases count exactly: wait for the encodings the server started loading.
    assertThat(TokenEstimate.awaitEncodings(Duration.ofSeconds(30))).isTrue();
  }

  @AfterAll
  static void stop() throws Exception {
    app.close();
    db.close();
  }

  /** How a stream is cut. */
  enum Cut {
    /** The client went away: Envoy resets the ext_proc stream. */
    CLIENT_GONE,
    /** The upstream reset: the HTTP stream ends, Envoy half-closes without end_of_stream. */
    UPSTREAM_RESET,
    /**
     * The upstream ended its body cleanly, but before the usage (end_of_stream on the last chunk).
     */
    UPSTREAM_ENDED
  }

  record Stream1(
      String path,
      String request,
      String fixture,
      String model,
      TokenUsage full,
      int messages,
      String firstContent,
      String finalUsage) {}

  static final Stream1 OPENAI =
      new Stream1(
          "/v1/chat/completions",
          "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
              + "\"messages\":[{\"role\":\"system\",\"content\":\""
              + SYSTEM
              + "\"},"
              + "{\"role\":\"user\",\"content\":\""
              + USER
              + "\"}]}",
          "openai-chat-stream-lisbon.sse",
          "gpt-4o-mini",
          new TokenUsage(37, 77, 0, 0),
          2,
          "\"content\":\"Here",
          "\"choices\":[],\"usage\"");
  static final Stream1 ANTHROPIC =
      new Stream1(
          "/v1/messages",
          "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":512,\"stream\":true,\"system\":\""
              + SYSTEM
              + "\",\"messages\":[{\"role\":\"user\",\"content\":\""
              + USER
              + "\"}]}",
          "anthropic-messages-stream-lisbon.sse",
          "claude-haiku-4-5",
          new TokenUsage(38, 82, 0, 0),
          1,
          "\"text\":\"Here",
          "\"type\":\"message_delta\"");
  static final Stream1 GEMINI =
      new Stream1(
          "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
          "{\"systemInstruction\":{\"parts\":[{\"text\":\""
              + SYSTEM
              + "\"}]},"
              + "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\""
              + USER
              + "\"}]}]}",
          "gemini-stream-lisbon.sse",
          "gemini-2.5-flash",
          new TokenUsage(32, 82, 0, 0),
          1,
          "\"text\":\"Here",
          "\"finishReason\"");

  static Stream<Arguments> cuts() {
    return Stream.of(OPENAI, ANTHROPIC, GEMINI)
        .flatMap(
            s ->
                Stream.of(
                    Arguments.of(s.model(), s, "after the first content chunk", Cut.CLIENT_GONE),
                    Arguments.of(s.model(), s, "mid-stream", Cut.UPSTREAM_RESET),
                    Arguments.of(s.model(), s, "just before the final usage", Cut.CLIENT_GONE),
                    Arguments.of(s.model(), s, "just before the final usage", Cut.UPSTREAM_RESET)));
  }

  static Stream<Arguments> upstreamEnded() {
    // An SSE stream whose upstream ended it before the usage: OpenAI and Anthropic only (a Gemini
    // body that ends cleanly makes its last usageMetadata final).
    return Stream.of(OPENAI, ANTHROPIC)
        .map(s -> Arguments.of(s.model(), s, "just before the final usage", Cut.UPSTREAM_ENDED));
  }

  private static long newKey(String name) {
    return Long.parseLong(
        app.admin()
            .createKey(CreateKeyRequest.newBuilder().setName(name).setQuotaUsd("100").build())
            .getKey()
            .getId());
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /** Where the fixture is cut: a byte offset into its text. */
  private static int cutAt(Stream1 s, String sse, String where) {
    return switch (where) {
      // the end of the event holding the first content
      case "after the first content chunk" -> eventEnd(sse, sse.indexOf(s.firstContent()));
      // inside an event, half way
      case "mid-stream" -> sse.length() / 2;
      // the start of the event holding the final usage
      case "just before the final usage" -> sse.lastIndexOf("data: ", sse.indexOf(s.finalUsage()));
      default -> throw new IllegalArgumentException(where);
    };
  }

  /** Just past the blank line that ends the event at {@code from} (LF or CRLF framing). */
  private static int eventEnd(String sse, int from) {
    int lf = sse.indexOf("\n\n", from);
    int crlf = sse.indexOf("\r\n\r\n", from);
    return crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf + 2;
  }

  private static void meter(Stream1 s, long keyId, byte[] body, Cut cut, long seed) {
    EnvoyStream envoy = new EnvoyStream(app.envoyMetering());
    byte[] request = utf8(s.request());
    envoy.requestHeaders(
        EnvoyStream.requestHeaders(s.path(), Long.toString(keyId), "est-" + seed, request.length),
        false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "text/event-stream");
    envoy.responseBodyInChunks(
        body, new Random(seed), 90, cut == null || cut == Cut.UPSTREAM_ENDED, at -> {});
    if (cut == Cut.CLIENT_GONE) {
      envoy.cancel();
    } else {
      envoy.complete();
    }
  }

  private static UsageEvent onlyEvent(long keyId) throws InterruptedException {
    MeteringLedgerIT.awaitRows(db, keyId, 1);
    List<UsageEvent> events =
        app.admin()
            .listUsage(ListUsageRequest.newBuilder().setKeyId(Long.toString(keyId)).build())
            .getEventsList();
    assertThat(events).hasSize(1);
    return events.get(0);
  }

  private static ModelPrice price(Stream1 s) {
    // The server charges by the shipped table: the bounds are computed from the same prices.
    return PriceTable.shipped().find(s.model()).orElseThrow();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("wholeStreams")
  void process_wholeStream_chargesTheExactCostNotEstimated(String name, Stream1 s)
      throws Exception {
    long keyId = newKey("whole-" + name);
    meter(s, keyId, Fixtures.bytes(s.fixture()), null, 1);

    UsageEvent e = onlyEvent(keyId);
    assertThat(e.getEstimated()).isFalse();
    assertThat(new BigDecimal(e.getCostUsd())).isEqualByComparingTo(price(s).costOf(s.full()));
    assertThat(List.of(e.getInputTokens(), e.getOutputTokens()))
        .containsExactly(s.full().inputTokens(), s.full().outputTokens());
    assertThat(db.scalar("SELECT estimated FROM usage_events WHERE key_id = ?", keyId))
        .isEqualTo(false);
  }

  static Stream<Arguments> wholeStreams() {
    return Stream.of(OPENAI, ANTHROPIC, GEMINI).map(s -> Arguments.of(s.model(), s));
  }

  @ParameterizedTest(name = "{0} cut {2} ({3})")
  @MethodSource({"cuts", "upstreamEnded"})
  void process_streamCutShort_chargesAnEstimateWithinTheBound(
      String name, Stream1 s, String where, Cut cut) throws Exception {
    String sse = new String(Fixtures.bytes(s.fixture()), StandardCharsets.UTF_8);
    byte[] body = utf8(sse.substring(0, cutAt(s, sse, where)));
    long keyId = newKey("cut-" + name);
    meter(s, keyId, body, cut, where.hashCode());

    UsageEvent e = onlyEvent(keyId);
    ModelPrice price = price(s);
    BigDecimal cost = new BigDecimal(e.getCostUsd());
    BigDecimal full = price.costOf(s.full());
    BigDecimal inputPart =
        price.costOf(
            new TokenUsage(
                s.full().inputTokens(),
                0,
                s.full().cachedInputTokens(),
                s.full().cacheWriteTokens()));
    BigDecimal framing =
        price.costOf(
            new TokenUsage(
                (long) s.messages() * TokenEstimate.TOKENS_PER_MESSAGE
                    + TokenEstimate.TOKENS_PER_REQUEST,
                0,
                0,
                0));
    BigDecimal upper = full.multiply(BOUND).add(framing).setScale(8, RoundingMode.UP);

    assertThat(e.getEstimated()).isTrue();
    assertThat(db.scalar("SELECT estimated FROM usage_events WHERE key_id = ?", keyId))
        .isEqualTo(true);
    assertThat(cost).isGreaterThanOrEqualTo(inputPart).isLessThanOrEqualTo(upper);
    assertThat(e.getInputTokens()).isGreaterThanOrEqualTo(s.full().inputTokens());
    assertThat(e.getOutputTokens()).isPositive();
    // the quota was charged the event's cost
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", keyId))
        .isEqualByComparingTo(cost);
  }
}
