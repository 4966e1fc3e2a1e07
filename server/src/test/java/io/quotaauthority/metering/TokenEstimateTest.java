package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.quotaauthority.metering.TokenEstimate.Tokenizer;
import io.quotaauthority.provider.Provider;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The estimate a response cut short is charged: tokenizers, prompt text, output text, the merge.
 */
class TokenEstimateTest {

  @BeforeAll
  static void loadEncodings() {
    // Before they are loaded every model counts by the byte bound (never waited for).
    assertThat(TokenEstimate.awaitEncodings(Duration.ofSeconds(30))).isTrue();
  }

  static Stream<Arguments> tokenizers() {
    return Stream.of(
        Arguments.of(Provider.OPENAI, "gpt-4o-mini", Tokenizer.O200K),
        Arguments.of(Provider.OPENAI, "gpt-4o-2024-08-06", Tokenizer.O200K),
        Arguments.of(Provider.OPENAI, "gpt-4.1-mini", Tokenizer.O200K),
        Arguments.of(Provider.OPENAI, "gpt-5.1", Tokenizer.O200K),
        Arguments.of(Provider.OPENAI, "o3", Tokenizer.O200K),
        Arguments.of(Provider.OPENAI, "o4-mini", Tokenizer.O200K),
        Arguments.of(Provider.OPENAI, "chatgpt-4o-latest", Tokenizer.O200K),
        Arguments.of(Provider.OPENAI, "GPT-4O", Tokenizer.O200K),
        Arguments.of(Provider.OPENAI, "ft:gpt-4o-mini:acme::abc123", Tokenizer.O200K),
        Arguments.of(Provider.OPENAI, "gpt-4-turbo", Tokenizer.CL100K),
        Arguments.of(Provider.OPENAI, "gpt-3.5-turbo", Tokenizer.CL100K),
        Arguments.of(Provider.OPENAI, "text-embedding-3-small", Tokenizer.CL100K),
        // not an o-series model: "o" and then no digit
        Arguments.of(Provider.OPENAI, "omni-moderation-latest", Tokenizer.BYTE_BOUND),
        Arguments.of(Provider.OPENAI, "dall-e-3", Tokenizer.BYTE_BOUND),
        Arguments.of(Provider.OPENAI, null, Tokenizer.BYTE_BOUND),
        Arguments.of(Provider.ANTHROPIC, "claude-haiku-4-5", Tokenizer.BYTE_BOUND),
        Arguments.of(Provider.GEMINI, "gemini-2.5-flash", Tokenizer.BYTE_BOUND),
        // Gemini's OpenAI-compatible surface bills Gemini tokens, whatever the model is called
        Arguments.of(Provider.GEMINI, "gpt-4o", Tokenizer.BYTE_BOUND));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("tokenizers")
  void of_providerAndModel_picksTheEncoding(Provider provider, String model, Tokenizer expected) {
    assertThat(Tokenizer.of(provider, model)).isEqualTo(expected);
  }

  static Stream<Arguments> counts() {
    return Stream.of(
        Arguments.of(Tokenizer.BYTE_BOUND, "", 0L),
        Arguments.of(Tokenizer.BYTE_BOUND, "abc", 1L),
        Arguments.of(Tokenizer.BYTE_BOUND, "abcd", 2L),
        // é is 2 bytes of UTF-8: one token
        Arguments.of(Tokenizer.BYTE_BOUND, "é", 1L),
        // 6 bytes: 3 tokens
        Arguments.of(Tokenizer.BYTE_BOUND, "日本", 3L),
        // a surrogate pair, 4 bytes: 2 tokens
        Arguments.of(Tokenizer.BYTE_BOUND, "👋", 2L),
        // 2 ASCII bytes (1) and 2 others (1)
        Arguments.of(Tokenizer.BYTE_BOUND, "a é", 2L),
        Arguments.of(Tokenizer.O200K, "Hello world", 2L),
        Arguments.of(Tokenizer.O200K, "Bonjour à tous — こんにちは 👋!", 9L),
        Arguments.of(Tokenizer.CL100K, "Hello world", 2L),
        // a special token's text in a prompt is ordinary text to the provider
        Arguments.of(Tokenizer.O200K, "<|endoftext|>", 7L));
  }

  @ParameterizedTest(name = "{0} \"{1}\"")
  @MethodSource("counts")
  void count_text_givesTokens(Tokenizer tokenizer, String text, long expected) {
    assertThat(tokenizer.count(text)).isEqualTo(expected);
  }

  /**
   * Request bodies of every API and the input tokens the byte bound gives them. Each text piece is
   * counted with a newline after it; each message adds 4 and the request 3.
   */
  static Stream<Arguments> prompts() {
    return Stream.of(
        // "abc\n" + "abcdef\n" = 11 bytes: 4; 2 messages: 8; + 3. The image URL is not text.
        Arguments.of(
            "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"abc\"},"
                + "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"abcdef\"},"
                + "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAAAAAAAAAA\"}}]}]}",
            15L),
        // Responses: "abcde\n" + "xyz\n" = 10 bytes: 4; the input string is one message: 4; + 3
        Arguments.of("{\"model\":\"o3\",\"input\":\"abcde\",\"instructions\":\"xyz\"}", 11L),
        // Responses input items, content parts
        Arguments.of(
            "{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"abcde\"}]}]}",
            9L),
        // completions: "abcdefgh\n" 9 bytes: 3; no messages; + 3
        Arguments.of("{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"abcdefgh\"}", 6L),
        // embeddings: two inputs, two "messages": "ab\n" "cd\n" 6 bytes: 2; 8; + 3
        Arguments.of("{\"model\":\"text-embedding-3-small\",\"input\":[\"ab\",\"cd\"]}", 13L),
        // Anthropic: the base64 image is skipped: "ab\n" + "cd\n" = 6 bytes: 2; 1 message: 4; + 3
        Arguments.of(
            "{\"system\":[{\"type\":\"text\",\"text\":\"ab\"}],\"messages\":[{\"role\":\"user\","
                + "\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
                + "\"data\":\"QUFBQUFBQUFBQUFBQUFBQUFB\"}},{\"type\":\"text\",\"text\":\"cd\"}]}]}",
            9L),
        // Anthropic tool result and earlier thinking are text; tool_use input (JSON) and signatures
        // are not
        Arguments.of(
            "{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\","
                + "\"signature\":\"c2lnbmF0dXJlc2lnbmF0dXJl\"},{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\","
                + "\"input\":{\"q\":\"zzzzzzzzzzzzzzzz\"}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                + "\"tool_use_id\":\"t1\",\"content\":\"ok\"}]}]}",
            13L),
        // Gemini: "abcdefghi\n" + "zz\n" = 13 bytes: 5; 1 message: 4; + 3; inline data skipped
        Arguments.of(
            "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"abcdefghi\"},"
                + "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"AAAAAAAAAAAAAAAAAAAAAAAA\"}}]}],"
                + "\"systemInstruction\":{\"parts\":[{\"text\":\"zz\"}]}}",
            12L),
        // tools by the bytes of their JSON: [{"type":"function"}] is 21 bytes: 7; "a\n": 1; 4; 3
        Arguments.of(
            "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"tools\":[{\"type\":\"function\"}]}",
            15L),
        // escapes are decoded: a"b and the newline: 4 bytes: 2; + 3
        Arguments.of("{\"prompt\":\"a\\\"b\"}", 5L),
        // fields that are not prompt text count nothing
        Arguments.of(
            "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":1024,\"metadata\":{\"user_id\":\"abcdefabcdef\"}}",
            3L),
        // not JSON: nothing read, the request's 3
        Arguments.of("not json", 3L));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("prompts")
  void promptTokens_requestBody_countsItsTextOnly(String body, long expected) {
    TokenEstimate.Prompt prompt = new TokenEstimate.Prompt();
    RequestBody.inspect(ByteString.copyFromUtf8(body), prompt);

    assertThat(prompt.tokens(Tokenizer.BYTE_BOUND)).isEqualTo(expected);
  }

  @Test
  void promptTokens_openAiChat_isTheExactCountPlusFraming() {
    // o200k_base: the system text is 10 tokens, the user text 18 (see the lisbon fixture).
    String body =
        "{\"messages\":[{\"role\":\"system\",\"content\":\"You are a concise assistant for a travel company.\"},"
            + "{\"role\":\"user\",\"content\":\"Suggest three things to do on a rainy afternoon in Lisbon, with one sentence on each.\"}],"
            + "\"model\":\"gpt-4o-mini\",\"stream\":true}";
    TokenEstimate.Prompt prompt = new TokenEstimate.Prompt();
    RequestBody request = RequestBody.inspect(ByteString.copyFromUtf8(body), prompt);

    // 10 + 18 + the two newlines between and after the pieces, framing 2 x 4 + 3
    assertThat(request.model()).contains("gpt-4o-mini");
    assertThat(prompt.messages()).isEqualTo(2);
    assertThat(prompt.tokens(Tokenizer.O200K)).isBetween(10L + 18 + 11, 10L + 18 + 2 + 11);
  }

  @Test
  void promptTokens_textPastTheExactLimit_isCountedByTheByteBound() {
    String text = "word ".repeat(TokenEstimate.MAX_EXACT_CHARS / 5 + 3000);
    TokenEstimate.Prompt prompt = new TokenEstimate.Prompt();
    RequestBody.inspect(ByteString.copyFromUtf8("{\"prompt\":\"" + text + "\"}"), prompt);

    long exactPart = Tokenizer.O200K.count(text.substring(0, TokenEstimate.MAX_EXACT_CHARS));
    long beyond = (text.length() - TokenEstimate.MAX_EXACT_CHARS + 2) / 3;
    assertThat(prompt.tokens(Tokenizer.O200K)).isEqualTo(exactPart + beyond + 3);
  }

  @Test
  void output_textInRandomPieces_countsAsTheWholeWithinOneTokenPerFlush() {
    String sentence = "The quick brown fox — ünïcödé ✓ 👋 — jumps over the lazy dog, again. ";
    String text = sentence.repeat(400);
    byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
    long whole = Tokenizer.O200K.count(text);
    TokenEstimate.Output output = new TokenEstimate.Output(Tokenizer.O200K);
    Random random = new Random(5);
    int retained = output.retainedBytes();
    for (int at = 0; at < utf8.length; ) {
      int n = Math.min(utf8.length - at, 1 + random.nextInt(300));
      output.add(utf8, at, n);
      at += n;
      assertThat(output.retainedBytes()).isEqualTo(retained);
    }

    long flushes = utf8.length / (TokenEstimate.OUTPUT_PENDING / 2) + 1;
    assertThat(output.tokens()).isBetween(whole, whole + flushes);
    assertThat(retained).isLessThanOrEqualTo(TokenEstimate.OUTPUT_PENDING + 64);
  }

  @Test
  void output_byteBound_countsBytesWithoutKeepingThem() {
    TokenEstimate.Output output = new TokenEstimate.Output(Tokenizer.BYTE_BOUND);
    byte[] utf8 = "abcdef é".getBytes(StandardCharsets.UTF_8);
    output.add(utf8, 0, 4);
    output.add(utf8, 4, utf8.length - 4);

    // 7 ASCII bytes: 3; 2 others: 1
    assertThat(output.tokens()).isEqualTo(4);
    assertThat(output.retainedBytes()).isLessThan(64);
  }

  static Stream<Arguments> charges() {
    TokenUsage none = null;
    return Stream.of(
        // OpenAI cut before its usage chunk: the estimate is all there is
        Arguments.of(none, 40L, 77L, new TokenUsage(40, 77, 0, 0)),
        // Anthropic after message_start: its input is final, the estimate's is not used; output
        // raised
        Arguments.of(new TokenUsage(38, 1, 0, 0), 200L, 115L, new TokenUsage(38, 115, 0, 0)),
        // cache reads reported: they stay in their bucket, nothing is added to input
        Arguments.of(new TokenUsage(25, 1, 3000, 0), 10L, 14L, new TokenUsage(25, 14, 3000, 0)),
        // only cache counts reported (all of the prompt cached): still the provider's input
        Arguments.of(new TokenUsage(0, 0, 4096, 0), 9000L, 3L, new TokenUsage(0, 3, 4096, 0)),
        // Gemini's partial candidates count above the estimate: the provider's count stays
        Arguments.of(new TokenUsage(32, 60, 0, 0), 50L, 40L, new TokenUsage(32, 60, 0, 0)),
        // a usage with output only (no input reported): the estimate's input
        Arguments.of(new TokenUsage(0, 5, 0, 0), 41L, 3L, new TokenUsage(41, 5, 0, 0)));
  }

  @ParameterizedTest(name = "{0} + ({1}, {2})")
  @MethodSource("charges")
  void charge_reportedAndEstimated_takesReportedInputAndTheLargerOutput(
      TokenUsage reported, long input, long output, TokenUsage expected) {
    assertThat(TokenEstimate.charge(Optional.ofNullable(reported), input, output))
        .isEqualTo(expected);
  }

  static Stream<Arguments> needs() {
    return Stream.of(
        // format, started, final usage seen, body complete, SSE, estimate?
        // 2xx headers, then the client left before a byte: the prompt was still billed
        Arguments.of(UsageFormat.OPENAI, false, false, false, true, true),
        Arguments.of(UsageFormat.OPENAI, false, false, true, false, false),
        Arguments.of(UsageFormat.OPENAI, true, false, false, true, true),
        Arguments.of(UsageFormat.OPENAI, true, true, false, true, false),
        Arguments.of(UsageFormat.OPENAI, true, false, true, true, true),
        // a complete JSON body without usage: an endpoint that reports none, as before
        Arguments.of(UsageFormat.OPENAI, true, false, true, false, false),
        Arguments.of(UsageFormat.OPENAI, true, false, false, false, true),
        Arguments.of(UsageFormat.ANTHROPIC, true, false, false, true, true),
        Arguments.of(UsageFormat.ANTHROPIC, true, true, true, true, false),
        Arguments.of(UsageFormat.ANTHROPIC, true, false, true, true, true),
        // Gemini: the body's end makes the last usageMetadata final, whatever the framing
        Arguments.of(UsageFormat.GEMINI, true, false, true, true, false),
        Arguments.of(UsageFormat.GEMINI, true, false, true, false, false),
        Arguments.of(UsageFormat.GEMINI, true, false, false, true, true),
        Arguments.of(UsageFormat.GEMINI, false, false, false, true, true),
        Arguments.of(UsageFormat.ANTHROPIC, false, true, false, true, false));
  }

  @ParameterizedTest(name = "{0} started={1} final={2} complete={3} sse={4}")
  @MethodSource("needs")
  void needed_howTheResponseEnded_decidesWhetherToEstimate(
      UsageFormat format,
      boolean started,
      boolean finalUsage,
      boolean complete,
      boolean sse,
      boolean expected) {
    assertThat(TokenEstimate.needed(format, started, finalUsage, complete, sse))
        .isEqualTo(expected);
  }

  static Stream<Arguments> responseTexts() {
    return Stream.of(
        Arguments.of(
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi \\\"you\\\"\\n\"}}],\"usage\":null}",
            "Hi \"you\"\n"),
        Arguments.of(
            "{\"choices\":[{\"delta\":{\"reasoning_content\":\"think\",\"role\":\"assistant\"}}]}",
            "think"),
        Arguments.of(
            "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\","
                + "\"arguments\":\"{\\\"q\\\":1}\"}}]}}]}",
            "{\"q\":1}"),
        Arguments.of(
            "{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"delta\":\"Ünï\"}",
            "Ünï"),
        // the whole text of a done event is not counted again
        Arguments.of("{\"type\":\"response.output_text.done\",\"text\":\"whole\"}", ""),
        Arguments.of(
            "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Bonjour\"}}",
            "Bonjour"),
        Arguments.of(
            "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}",
            "hmm"),
        Arguments.of(
            "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\"\"}}",
            "{\"a\""),
        // a signature is not generated text
        Arguments.of(
            "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"signature_delta\",\"signature\":\"c2ln\"}}",
            ""),
        Arguments.of(
            "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"fox\"},{\"text\":\"!\"}],\"role\":\"model\"}}]}",
            "fox!"),
        Arguments.of(
            "[{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]},"
                + "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}]}}]}]",
            "ab"),
        // unicode escapes, a surrogate pair among them, and a lone surrogate made U+FFFD
        Arguments.of("{\"delta\":{\"text\":\"\\u00e9\\ud83d\\udc4b\\ud800x\"}}", "é👋\uFFFDx"),
        // ids, roles and models are not text
        Arguments.of(
            "{\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}",
            ""));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("responseTexts")
  void scanner_textPaths_handsOnTheDecodedGeneratedTextOnly(String json, String expected) {
    ByteArrayOutputStream seen = new ByteArrayOutputStream();
    JsonUsageScanner scanner =
        new JsonUsageScanner(
            new JsonUsageScanner.Listener() {
              @Override
              public void usage(Map<String, Long> fields) {}

              @Override
              public void model(String model) {}

              @Override
              public void text(byte[] utf8, int offset, int length) {
                seen.write(utf8, offset, length);
              }
            });
    byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
    // a byte at a time: escapes and characters split across feeds
    for (int i = 0; i < bytes.length; i++) {
      scanner.feed(bytes, i, 1);
    }
    scanner.end();

    assertThat(seen.toString(StandardCharsets.UTF_8)).isEqualTo(expected);
  }
}
