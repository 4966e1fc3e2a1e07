package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class UsageFormatTest {

  static Stream<Arguments> table() {
    return Stream.of(
        // OpenAI chat: prompt includes cached
        Arguments.of(
            UsageFormat.OPENAI,
            Map.of(
                "prompt_tokens",
                100L,
                "completion_tokens",
                20L,
                "prompt_tokens_details.cached_tokens",
                64L),
            Optional.of(new TokenUsage(36, 20, 64, 0))),
        Arguments.of(
            UsageFormat.OPENAI,
            Map.of("prompt_tokens", 100L, "completion_tokens", 20L),
            Optional.of(new TokenUsage(100, 20, 0, 0))),
        // Responses API
        Arguments.of(
            UsageFormat.OPENAI,
            Map.of(
                "input_tokens",
                50L,
                "output_tokens",
                7L,
                "input_tokens_details.cached_tokens",
                50L),
            Optional.of(new TokenUsage(0, 7, 50, 0))),
        // embeddings: prompt only
        Arguments.of(
            UsageFormat.OPENAI,
            Map.of("prompt_tokens", 8L, "total_tokens", 8L),
            Optional.of(new TokenUsage(8, 0, 0, 0))),
        // cached larger than prompt (never sent; clamped, never negative)
        Arguments.of(
            UsageFormat.OPENAI,
            Map.of("prompt_tokens", 10L, "prompt_tokens_details.cached_tokens", 64L),
            Optional.of(new TokenUsage(0, 0, 10, 0))),
        Arguments.of(UsageFormat.OPENAI, Map.of("total_tokens", 8L), Optional.empty()),
        // cache writes are inside the prompt count too, in their own bucket
        Arguments.of(
            UsageFormat.OPENAI,
            Map.of(
                "prompt_tokens",
                100L,
                "completion_tokens",
                2L,
                "prompt_tokens_details.cached_tokens",
                30L,
                "prompt_tokens_details.cache_write_tokens",
                50L),
            Optional.of(new TokenUsage(20, 2, 30, 50))),
        // writes larger than what the cache reads leave: clamped, never negative
        Arguments.of(
            UsageFormat.OPENAI,
            Map.of(
                "input_tokens",
                100L,
                "input_tokens_details.cached_tokens",
                30L,
                "input_tokens_details.cache_write_tokens",
                500L),
            Optional.of(new TokenUsage(0, 0, 30, 70))),
        // Anthropic: input excludes cache reads and writes
        Arguments.of(
            UsageFormat.ANTHROPIC,
            Map.of(
                "input_tokens",
                5L,
                "output_tokens",
                9L,
                "cache_read_input_tokens",
                1000L,
                "cache_creation_input_tokens",
                300L),
            Optional.of(new TokenUsage(5, 9, 1000, 300))),
        Arguments.of(
            UsageFormat.ANTHROPIC,
            Map.of("output_tokens", 9L),
            Optional.of(new TokenUsage(0, 9, 0, 0))),
        Arguments.of(UsageFormat.ANTHROPIC, Map.of(), Optional.empty()),
        // Anthropic iterations: each bucket at the larger of top-level and the passes' sum
        Arguments.of(
            UsageFormat.ANTHROPIC,
            Map.of(
                "input_tokens",
                5L,
                "output_tokens",
                9L,
                "cache_read_input_tokens",
                40L,
                "iterations.input_tokens",
                805L,
                "iterations.output_tokens",
                209L,
                "iterations.cache_creation_input_tokens",
                12L),
            Optional.of(new TokenUsage(805, 209, 40, 12))),
        // a compaction-only response: top-level 0, billed from the compaction pass alone
        Arguments.of(
            UsageFormat.ANTHROPIC,
            Map.of(
                "input_tokens",
                0L,
                "output_tokens",
                0L,
                "iterations.input_tokens",
                144L,
                "iterations.output_tokens",
                276L),
            Optional.of(new TokenUsage(144, 276, 0, 0))),
        // Gemini: prompt includes cached; thoughts are output; tool-use prompt is extra input
        Arguments.of(
            UsageFormat.GEMINI,
            Map.of(
                "promptTokenCount",
                100L,
                "candidatesTokenCount",
                10L,
                "cachedContentTokenCount",
                60L,
                "thoughtsTokenCount",
                5L,
                "toolUsePromptTokenCount",
                3L),
            Optional.of(new TokenUsage(43, 15, 60, 0))),
        Arguments.of(
            UsageFormat.GEMINI,
            Map.of("promptTokenCount", 100L),
            Optional.of(new TokenUsage(100, 0, 0, 0))),
        Arguments.of(UsageFormat.GEMINI, Map.of("totalTokenCount", 100L), Optional.empty()));
  }

  @ParameterizedTest
  @MethodSource("table")
  void tokens_providerFields_giveDisjointBuckets(
      UsageFormat format, Map<String, Long> fields, Optional<TokenUsage> expected) {
    assertThat(format.tokens(fields)).isEqualTo(expected);
  }
}
