package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.quotaauthority.provider.Provider;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The maximum cost against the actual charge of every recorded response. The fixtures are responses
 * only, so each request body is written here in its API's shape: a prompt of as many words as the
 * response's prompt tokens (a word is a token to every tokenizer; framing subtracted, so the OpenAI
 * count is near exact and the byte bound over-counts others by its 5/3), and the output limit such
 * a request would state ("none": the table's max_output, else the default).
 */
class MaxCostFixturesTest {

  private static final Clock CLOCK =
      Clock.fixed(Instant.parse("2025-06-01T12:00:00Z"), ZoneOffset.UTC);

  @BeforeAll
  static void encodings() {
    assertThat(TokenEstimate.awaitEncodings(Duration.ofSeconds(30))).isTrue();
  }

  /** fixture, format, framing, api, requested model, prompt tokens sent, limit field, limit. */
  static Stream<Arguments> fixtures() {
    return Stream.of(
        Arguments.of(
            "openai-chat.json", "chat", "gpt-4o-2024-08-06", 2006, "max_completion_tokens", 1000),
        Arguments.of(
            "openai-chat-stream.sse", "chat", "gpt-4o-mini-2024-07-18", 1250, "max_tokens", 256),
        Arguments.of(
            "openai-chat-cache-write.json", "chat", "gpt-5.1", 3000, "max_completion_tokens", 200),
        Arguments.of("openai-responses.json", "responses", "o3", 5400, "none", 0),
        Arguments.of(
            "openai-responses-stream.sse",
            "responses",
            "gpt-4.1-mini",
            3000,
            "max_output_tokens",
            1000),
        Arguments.of(
            "openai-responses-cache-write-stream.sse",
            "responses",
            "gpt-5.1",
            5000,
            "max_output_tokens",
            512),
        Arguments.of(
            "anthropic-messages.json",
            "anthropic",
            "claude-sonnet-4-5-20250929",
            2060,
            "max_tokens",
            1024),
        Arguments.of(
            "anthropic-messages-stream.sse",
            "anthropic",
            "claude-haiku-4-5-20251001",
            3025,
            "max_tokens",
            200),
        Arguments.of(
            "anthropic-stream-restated.sse",
            "anthropic",
            "claude-sonnet-4-5-20250929",
            5416,
            "max_tokens",
            400),
        Arguments.of(
            "gemini-generate.json", "gemini", "gemini-2.5-pro", 10240, "maxOutputTokens", 2048),
        Arguments.of("gemini-stream.sse", "gemini", "gemini-2.5-flash", 1500, "none", 0),
        Arguments.of("gemini-stream-array.json", "gemini", "gemini-2.0-flash", 42, "none", 0));
  }

  private static String body(String api, String model, long words, String field, long limit) {
    String text = "word ".repeat((int) words).trim();
    String limitMember = field.equals("none") ? "" : ",\"" + field + "\":" + limit;
    return switch (api) {
      case "chat", "anthropic" ->
          "{\"model\":\""
              + model
              + "\",\"messages\":[{\"role\":\"user\",\"content\":\""
              + text
              + "\"}]"
              + limitMember
              + "}";
      case "responses" ->
          "{\"model\":\""
              + model
              + "\",\"input\":[{\"role\":\"user\",\"content\":\""
              + text
              + "\"}]"
              + limitMember
              + "}";
      case "gemini" ->
          "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\""
              + text
              + "\"}]}],\"generationConfig\":{\"temperature\":1"
              + limitMember
              + "}}";
      default -> throw new IllegalArgumentException(api);
    };
  }

  private static Provider provider(String api) {
    return switch (api) {
      case "anthropic" -> Provider.ANTHROPIC;
      case "gemini" -> Provider.GEMINI;
      default -> Provider.OPENAI;
    };
  }

  private static UsageExtractor extract(String fixture, Provider provider) {
    UsageExtractor x =
        new UsageExtractor(
            UsageFormat.valueOf(provider.name()),
            fixture.endsWith(".sse") ? UsageExtractor.Framing.SSE : UsageExtractor.Framing.JSON);
    x.feed(Fixtures.bytes(fixture));
    x.end();
    return x;
  }

  private static MaxCost.Estimate estimate(
      String api, String model, long promptTokens, String field, long limit) {
    long framing = TokenEstimate.TOKENS_PER_MESSAGE + TokenEstimate.TOKENS_PER_REQUEST;
    String json = body(api, model, promptTokens - framing, field, limit);
    TokenEstimate.Prompt prompt = new TokenEstimate.Prompt();
    RequestBody b = RequestBody.inspect(ByteString.copyFromUtf8(json), prompt);
    assertThat(b.unread()).isEmpty();
    ModelPrice price = Fixtures.testPrices().find(model).orElseThrow();
    long tokens = prompt.tokens(TokenEstimate.Tokenizer.of(provider(api), model));
    return MaxCost.of(price, tokens, prompt.mediaTokens(), b.outputLimit(), b.choices());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void actualCharge_ofEachRecordedResponse_isAtMostItsMaximumCost(
      String fixture, String api, String model, long promptTokens, String field, long limit) {
    Provider provider = provider(api);
    UsageExtractor x = extract(fixture, provider);
    TokenUsage usage = x.usage().orElseThrow();
    UsageCharger charger =
        new UsageCharger(
            new RecordingUsageSink(),
            Fixtures::testPrices,
            null,
            new SimpleMeterRegistry(),
            CLOCK,
            Fixtures.RETRIES,
            null,
            null,
            List.of(Duration.ZERO));
    BigDecimal actual =
        charger.report(1, "r", null, provider, x.reportedModel().orElse(model), usage).cost();
    MaxCost.Estimate e = estimate(api, model, promptTokens, field, limit);
    // The prompt the body was written for is the response's own, so the sizes must agree.
    long recordedPrompt =
        usage.inputTokens() + usage.cachedInputTokens() + usage.cacheWriteTokens();
    assertThat(recordedPrompt).isEqualTo(promptTokens);
    System.out.printf(
        "maxcost %-42s actual %s estimate %s ratio %s (in %d/%d, out %d/%d %s)%n",
        fixture,
        actual.toPlainString(),
        e.usd().toPlainString(),
        e.ratio(actual).orElseThrow().toPlainString(),
        recordedPrompt,
        e.inputTokens(),
        usage.outputTokens(),
        e.outputTokens(),
        e.outputSource());
    assertThat(usage.outputTokens()).isLessThanOrEqualTo(e.outputTokens());
    assertThat(recordedPrompt).isLessThanOrEqualTo(e.inputTokens());
    assertThat(actual).isLessThanOrEqualTo(e.usd());
  }

  /**
   * Outside the invariant, pinned: Anthropic's server-side compaction bills a second pass over the
   * context (its own input and output), so a response can use more output than the request's
   * max_tokens and more input than the prompt sent. Holds for such requests need more than this
   * bound (the report names it as not yet bounded).
   */
  @Test
  void compaction_billsMoreOutputThanTheFinalMessagesLimit() {
    TokenUsage usage =
        extract("anthropic-compaction.json", Provider.ANTHROPIC).usage().orElseThrow();
    // The final message's output is 1000 (a max_tokens of 1000 was honoured); billed: 4500.
    assertThat(usage.outputTokens()).isEqualTo(4500);
    assertThat(usage.inputTokens() + usage.cachedInputTokens() + usage.cacheWriteTokens())
        .isEqualTo(207_112);
  }
}
