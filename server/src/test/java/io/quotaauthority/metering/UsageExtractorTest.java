package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

class UsageExtractorTest {

  /** Fixture, its format and framing, and the disjoint token buckets it must yield. */
  static Stream<Arguments> fixtures() {
    return Stream.of(
        // prompt 2006 includes 1920 cached
        Arguments.of(
            "openai-chat.json",
            UsageFormat.OPENAI,
            UsageExtractor.Framing.JSON,
            new TokenUsage(86, 300, 1920, 0),
            "gpt-4o-2024-08-06"),
        Arguments.of(
            "openai-chat-stream.sse",
            UsageFormat.OPENAI,
            UsageExtractor.Framing.SSE,
            new TokenUsage(226, 42, 1024, 0),
            "gpt-4o-mini-2024-07-18"),
        Arguments.of(
            "openai-responses.json",
            UsageFormat.OPENAI,
            UsageExtractor.Framing.JSON,
            new TokenUsage(1304, 1200, 4096, 0),
            "o3-2025-04-16"),
        Arguments.of(
            "openai-responses-stream.sse",
            UsageFormat.OPENAI,
            UsageExtractor.Framing.SSE,
            new TokenUsage(952, 500, 2048, 0),
            "gpt-4.1-mini-2025-04-14"),
        // input 12 excludes the 2048 written to the cache
        Arguments.of(
            "anthropic-messages.json",
            UsageFormat.ANTHROPIC,
            UsageExtractor.Framing.JSON,
            new TokenUsage(12, 95, 0, 2048),
            "claude-sonnet-4-5-20250929"),
        // message_start's input counts, message_delta's final output count
        Arguments.of(
            "anthropic-messages-stream.sse",
            UsageFormat.ANTHROPIC,
            UsageExtractor.Framing.SSE,
            new TokenUsage(25, 153, 3000, 0),
            "claude-haiku-4-5-20251001"),
        // prompt 10240 includes 8192 cached; output 512 + 1248 thoughts
        Arguments.of(
            "gemini-generate.json",
            UsageFormat.GEMINI,
            UsageExtractor.Framing.JSON,
            new TokenUsage(2048, 1760, 8192, 0),
            "gemini-2.5-pro"),
        Arguments.of(
            "gemini-stream.sse",
            UsageFormat.GEMINI,
            UsageExtractor.Framing.SSE,
            new TokenUsage(476, 600, 1024, 0),
            "gemini-2.5-flash"),
        Arguments.of(
            "gemini-stream-array.json",
            UsageFormat.GEMINI,
            UsageExtractor.Framing.JSON,
            new TokenUsage(42, 117, 0, 0),
            "gemini-2.0-flash"),
        // message_delta restates the counts with cache reads 0 and cache writes null: both keep
        // message_start's values, output takes the delta's
        Arguments.of(
            "anthropic-stream-restated.sse",
            UsageFormat.ANTHROPIC,
            UsageExtractor.Framing.SSE,
            new TokenUsage(40, 310, 5120, 256),
            "claude-sonnet-4-5-20250929"),
        // compaction: top-level 23000/1000/1800/512 leaves the compaction pass out; billed is the
        // sum over usage.iterations[] (180000+23000 in, 3500+1000 out, 1800+1800 read, 0+512 write)
        Arguments.of(
            "anthropic-compaction.json",
            UsageFormat.ANTHROPIC,
            UsageExtractor.Framing.JSON,
            new TokenUsage(203000, 4500, 3600, 512),
            "claude-opus-4-6"),
        // prompt 3000 includes 1024 cache reads and 1536 cache writes
        Arguments.of(
            "openai-chat-cache-write.json",
            UsageFormat.OPENAI,
            UsageExtractor.Framing.JSON,
            new TokenUsage(440, 200, 1024, 1536),
            "gpt-5.1-2025-11-13"),
        // input 5000 includes 2048 cache reads and 2500 cache writes
        Arguments.of(
            "openai-responses-cache-write-stream.sse",
            UsageFormat.OPENAI,
            UsageExtractor.Framing.SSE,
            new TokenUsage(452, 321, 2048, 2500),
            "gpt-5.1-2025-11-13"),
        // message_delta's iterations: 96000+12 in, 640+88 out, 0+2900 read, 2900+410 write
        Arguments.of(
            "anthropic-compaction-stream.sse",
            UsageFormat.ANTHROPIC,
            UsageExtractor.Framing.SSE,
            new TokenUsage(96012, 728, 2900, 3310),
            "claude-opus-4-6"));
  }

  /** Fixture, format, framing and its exact cost under test-prices.yaml. */
  static Stream<Arguments> costs() {
    return Stream.of(
        // 40 x 3.00 + 310 x 15.00 + 5120 x 0.30 + 256 x 3.75 = 7266 micro-USD
        Arguments.of(
            "anthropic-stream-restated.sse",
            UsageFormat.ANTHROPIC,
            UsageExtractor.Framing.SSE,
            "0.00726600"),
        // 203000 x 5.00 + 4500 x 25.00 + 3600 x 0.50 + 512 x 6.25 = 1132500 micro-USD
        Arguments.of(
            "anthropic-compaction.json",
            UsageFormat.ANTHROPIC,
            UsageExtractor.Framing.JSON,
            "1.13250000"),
        // 96012 x 5.00 + 728 x 25.00 + 2900 x 0.50 + 3310 x 6.25 = 520397.5 micro-USD
        Arguments.of(
            "anthropic-compaction-stream.sse",
            UsageFormat.ANTHROPIC,
            UsageExtractor.Framing.SSE,
            "0.52039750"),
        // 440 x 1.25 + 200 x 10.00 + 1024 x 0.125 + 1536 x 1.5625 = 5078 micro-USD
        Arguments.of(
            "openai-chat-cache-write.json",
            UsageFormat.OPENAI,
            UsageExtractor.Framing.JSON,
            "0.00507800"),
        // 452 x 1.25 + 321 x 10.00 + 2048 x 0.125 + 2500 x 1.5625 = 7937.25 micro-USD
        Arguments.of(
            "openai-responses-cache-write-stream.sse",
            UsageFormat.OPENAI,
            UsageExtractor.Framing.SSE,
            "0.00793725"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("costs")
  void feed_wholeAndOneByteAtATime_chargesExactCost(
      String fixture, UsageFormat format, UsageExtractor.Framing framing, String cost) {
    byte[] body = Fixtures.bytes(fixture);
    UsageExtractor whole = new UsageExtractor(format, framing);
    whole.feed(body);
    whole.end();
    UsageExtractor bytewise = new UsageExtractor(format, framing);
    for (byte b : body) {
      bytewise.feed(new byte[] {b});
    }
    bytewise.end();
    PriceTable prices = Fixtures.testPrices();
    for (UsageExtractor x : new UsageExtractor[] {whole, bytewise}) {
      ModelPrice price = prices.find(x.reportedModel().orElseThrow()).orElseThrow();
      assertThat(price.costOf(x.usage().orElseThrow()))
          .isEqualByComparingTo(cost)
          .hasToString(cost);
    }
  }

  static Stream<Arguments> serviceTiers() {
    return Stream.of(
        Arguments.of(
            "{\"model\":\"gpt-4o\",\"service_tier\":\"priority\",\"usage\":{\"prompt_tokens\":1}}",
            "priority"),
        Arguments.of(
            "data: {\"type\":\"response.completed\",\"response\":{\"service_tier\":\"Priority\"}}\n\n",
            "priority"),
        // a service_tier inside usage (Anthropic's) or inside content is not OpenAI's tier
        Arguments.of("{\"usage\":{\"service_tier\":\"priority\",\"input_tokens\":1}}", ""),
        Arguments.of("{\"choices\":[{\"message\":{\"service_tier\":\"priority\"}}]}", ""));
  }

  @ParameterizedTest
  @MethodSource("serviceTiers")
  void feed_serviceTierAtItsPaths_isReportedLowerCasedOneByteAtATime(String body, String tier) {
    UsageExtractor x = new UsageExtractor(UsageFormat.OPENAI, UsageExtractor.Framing.SNIFF);
    for (byte b : body.getBytes(StandardCharsets.UTF_8)) {
      x.feed(new byte[] {b});
    }
    x.end();
    assertThat(x.reportedServiceTier())
        .isEqualTo(tier.isEmpty() ? Optional.empty() : Optional.of(tier));
  }

  @Test
  void feed_iterationsRepeatedOrPartial_sumOnceAndNeverBelowTopLevel() {
    UsageExtractor x = new UsageExtractor(UsageFormat.ANTHROPIC, UsageExtractor.Framing.JSON);
    // the second "iterations" replaces the first; its entries lack cache reads, so the top-level
    // 70 stands; nested cache_creation objects are not counts of the entry
    x.feed(
        ("{\"usage\":{\"input_tokens\":10,\"output_tokens\":5,\"cache_read_input_tokens\":70,"
                + "\"iterations\":[{\"type\":\"compaction\",\"input_tokens\":999}],"
                + "\"iterations\":[{\"type\":\"compaction\",\"input_tokens\":300,\"output_tokens\":40,"
                + "\"cache_creation\":{\"input_tokens\":8}},"
                + "{\"type\":\"message\",\"input_tokens\":10,\"output_tokens\":5}]}}")
            .getBytes(StandardCharsets.US_ASCII));
    x.end();
    assertThat(x.usage()).contains(new TokenUsage(310, 45, 70, 0));
  }

  @Test
  void feed_laterZeroAfterNonZero_keepsEarlierCount() {
    UsageExtractor x = new UsageExtractor(UsageFormat.ANTHROPIC, UsageExtractor.Framing.SSE);
    x.feed(
        ("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":7,"
                + "\"cache_read_input_tokens\":900,\"output_tokens\":1}}}\n\n"
                + "data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":0,"
                + "\"cache_read_input_tokens\":0,\"output_tokens\":12}}\n\n")
            .getBytes(StandardCharsets.US_ASCII));
    x.end();
    assertThat(x.usage()).contains(new TokenUsage(7, 12, 900, 0));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void feed_wholeFixture_yieldsItsTokens(
      String fixture,
      UsageFormat format,
      UsageExtractor.Framing framing,
      TokenUsage expected,
      String model) {
    UsageExtractor x = new UsageExtractor(format, framing);
    x.feed(Fixtures.bytes(fixture));
    x.end();
    assertThat(x.usage()).contains(expected);
    assertThat(x.reportedModel()).contains(model);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void feed_splitInTwoAtEveryByte_yieldsSameTokens(
      String fixture,
      UsageFormat format,
      UsageExtractor.Framing framing,
      TokenUsage expected,
      String model) {
    byte[] body = Fixtures.bytes(fixture);
    for (int cut = 0; cut <= body.length; cut++) {
      UsageExtractor x = new UsageExtractor(format, framing);
      x.feed(Arrays.copyOfRange(body, 0, cut));
      x.feed(Arrays.copyOfRange(body, cut, body.length));
      x.end();
      assertThat(x.usage()).as("cut at %d", cut).contains(expected);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void feed_oneByteAtATime_yieldsSameTokens(
      String fixture,
      UsageFormat format,
      UsageExtractor.Framing framing,
      TokenUsage expected,
      String model) {
    byte[] body = Fixtures.bytes(fixture);
    UsageExtractor x = new UsageExtractor(format, framing);
    for (byte b : body) {
      x.feed(new byte[] {b});
    }
    x.end();
    assertThat(x.usage()).contains(expected);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void feed_randomChunksWithFixedSeed_yieldsSameTokens(
      String fixture,
      UsageFormat format,
      UsageExtractor.Framing framing,
      TokenUsage expected,
      String model) {
    byte[] body = Fixtures.bytes(fixture);
    Random random = new Random(20250101L);
    for (int round = 0; round < 50; round++) {
      UsageExtractor x = new UsageExtractor(format, framing);
      int at = 0;
      while (at < body.length) {
        int n = Math.min(body.length - at, 1 + random.nextInt(40));
        x.feed(body, at, n);
        at += n;
      }
      x.end();
      assertThat(x.usage()).contains(expected);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void feed_unknownContentType_sniffsFraming(
      String fixture,
      UsageFormat format,
      UsageExtractor.Framing framing,
      TokenUsage expected,
      String model) {
    UsageExtractor x = new UsageExtractor(format, UsageExtractor.Framing.SNIFF);
    x.feed(Fixtures.bytes(fixture));
    x.end();
    assertThat(x.usage()).contains(expected);
  }

  @ParameterizedTest
  @CsvSource({"openai-error-429.json, OPENAI", "anthropic-error-529.json, ANTHROPIC"})
  void feed_errorBody_yieldsNoUsage(String fixture, UsageFormat format) {
    UsageExtractor x = new UsageExtractor(format, UsageExtractor.Framing.JSON);
    x.feed(Fixtures.bytes(fixture));
    x.end();
    assertThat(x.usage()).isEmpty();
  }

  @Test
  void feed_anthropicStreamCutAfterFirstEvents_yieldsInputAndFirstOutput() {
    byte[] body = Fixtures.bytes("anthropic-messages-stream.sse");
    String text = new String(body, StandardCharsets.UTF_8);
    int cut = text.indexOf("event: content_block_delta");
    UsageExtractor x = new UsageExtractor(UsageFormat.ANTHROPIC, UsageExtractor.Framing.SSE);
    x.feed(text.substring(0, cut).getBytes(StandardCharsets.UTF_8));
    x.end();
    assertThat(x.usage()).contains(new TokenUsage(25, 1, 3000, 0));
  }

  @Test
  void feed_jsonWithStringsLookingLikeUsage_ignoresThem() {
    String body =
        "{\"note\":\"{\\\"usage\\\":{\\\"prompt_tokens\\\":5}}\","
            + "\"data\":{\"usage\":{\"prompt_tokens\":7}},"
            + "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3}}";
    UsageExtractor x = new UsageExtractor(UsageFormat.OPENAI, UsageExtractor.Framing.JSON);
    x.feed(body.getBytes(StandardCharsets.UTF_8));
    // only the top-level usage counts: the string is text, data.usage is not a usage path
    assertThat(x.usage()).contains(new TokenUsage(11, 3, 0, 0));
  }

  @Test
  void feed_malformedJson_yieldsWhatClosedBeforeTheError() {
    UsageExtractor x = new UsageExtractor(UsageFormat.OPENAI, UsageExtractor.Framing.JSON);
    x.feed(
        "{\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}, ]]] garbage {\"usage\":{\"prompt_tokens\":9}}"
            .getBytes(StandardCharsets.UTF_8));
    assertThat(x.usage()).contains(new TokenUsage(4, 2, 0, 0));
  }

  @Test
  void feed_hugeStringValue_retainsNoMoreThanFixedBuffers() {
    UsageExtractor x = new UsageExtractor(UsageFormat.GEMINI, UsageExtractor.Framing.JSON);
    x.feed(
        "{\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"data\":\""
            .getBytes(StandardCharsets.US_ASCII));
    byte[] base64 = new byte[1 << 20];
    Arrays.fill(base64, (byte) 'A');
    int max = 0;
    for (int i = 0; i < 20; i++) {
      x.feed(base64);
      max = Math.max(max, x.retainedBytes());
    }
    x.feed(
        "\"}}]}}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1290}}"
            .getBytes(StandardCharsets.US_ASCII));
    assertThat(max).isLessThan(4096);
    assertThat(x.usage()).contains(new TokenUsage(3, 1290, 0, 0));
  }

  @Test
  void usage_beforeAnyUsageObject_isEmpty() {
    UsageExtractor x = new UsageExtractor(UsageFormat.ANTHROPIC, UsageExtractor.Framing.SSE);
    x.feed("event: ping\ndata: {\"type\":\"ping\"}\n\n".getBytes(StandardCharsets.US_ASCII));
    assertThat(x.usage()).isEqualTo(Optional.empty());
  }

  @Test
  void framingOf_contentTypes_choosesFraming() {
    assertThat(UsageExtractor.Framing.of("text/event-stream; charset=utf-8"))
        .isEqualTo(UsageExtractor.Framing.SSE);
    assertThat(UsageExtractor.Framing.of("application/json; charset=UTF-8"))
        .isEqualTo(UsageExtractor.Framing.JSON);
    assertThat(UsageExtractor.Framing.of(null)).isEqualTo(UsageExtractor.Framing.SNIFF);
    assertThat(UsageExtractor.Framing.of("text/plain")).isEqualTo(UsageExtractor.Framing.SNIFF);
  }
}
