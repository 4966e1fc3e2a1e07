package io.quotaauthority.metering;

import java.util.Map;
import java.util.Optional;

/**
 * How a provider's usage object counts tokens, and how that becomes a {@link TokenUsage} with
 * disjoint buckets. The fields map holds the usage object's numeric leaves by dotted path relative
 * to the object ({@code "prompt_tokens_details.cached_tokens"}), the last value seen winning, as
 * every supported stream reports cumulative counts.
 */
public enum UsageFormat {
  /**
   * OpenAI chat completions, completions and embeddings ({@code prompt_tokens}, {@code
   * completion_tokens}) and the Responses API ({@code input_tokens}, {@code output_tokens}). The
   * prompt count INCLUDES the cached tokens and the tokens written to the cache ({@code
   * *_tokens_details.cache_write_tokens}), so uncached input = prompt - cached - cache writes, each
   * clamped so no bucket goes negative. Reasoning tokens are already inside the completion/output
   * count.
   */
  OPENAI {
    @Override
    Optional<TokenUsage> tokens(Map<String, Long> f) {
      Long prompt = first(f, "prompt_tokens", "input_tokens");
      Long completion = first(f, "completion_tokens", "output_tokens");
      if (prompt == null && completion == null) {
        return Optional.empty();
      }
      long in = orZero(prompt);
      long cached =
          Math.min(
              in,
              orZero(
                  first(
                      f,
                      "prompt_tokens_details.cached_tokens",
                      "input_tokens_details.cached_tokens")));
      long written =
          Math.min(
              in - cached,
              orZero(
                  first(
                      f,
                      "prompt_tokens_details.cache_write_tokens",
                      "input_tokens_details.cache_write_tokens")));
      return Optional.of(
          new TokenUsage(in - cached - written, orZero(completion), cached, written));
    }
  },
  /**
   * Anthropic messages: {@code input_tokens} EXCLUDES the cache: cache reads ({@code
   * cache_read_input_tokens}) and cache writes ({@code cache_creation_input_tokens}) are separate
   * counts, each with its own price.
   *
   * <p>With {@code usage.iterations[]} (one entry per sampling pass, e.g. a compaction pass and the
   * message pass), the top-level counts leave the compaction passes out, and what is billed is the
   * sum over all entries (Anthropic, "Compaction", Understanding usage). Each bucket is then
   * charged at the larger of the top-level count and the entries' sum: the sum whenever the list is
   * complete, and never less than the top-level count if an entry lacks a field.
   */
  ANTHROPIC {
    @Override
    Optional<TokenUsage> tokens(Map<String, Long> f) {
      Long in = billed(f, "input_tokens");
      Long out = billed(f, "output_tokens");
      Long read = billed(f, "cache_read_input_tokens");
      Long write = billed(f, "cache_creation_input_tokens");
      if (in == null && out == null && read == null && write == null) {
        return Optional.empty();
      }
      return Optional.of(new TokenUsage(orZero(in), orZero(out), orZero(read), orZero(write)));
    }
  },
  /**
   * Gemini {@code usageMetadata}: {@code promptTokenCount} INCLUDES {@code
   * cachedContentTokenCount}; {@code thoughtsTokenCount} is billed as output and is not in {@code
   * candidatesTokenCount}; {@code toolUsePromptTokenCount} is billed as input and is not in the
   * prompt count.
   */
  GEMINI {
    @Override
    Optional<TokenUsage> tokens(Map<String, Long> f) {
      Long prompt = f.get("promptTokenCount");
      Long candidates = f.get("candidatesTokenCount");
      Long thoughts = f.get("thoughtsTokenCount");
      Long toolUse = f.get("toolUsePromptTokenCount");
      if (prompt == null && candidates == null && thoughts == null && toolUse == null) {
        return Optional.empty();
      }
      long p = orZero(prompt);
      long cached = Math.min(p, orZero(f.get("cachedContentTokenCount")));
      return Optional.of(
          new TokenUsage(
              p - cached + orZero(toolUse), orZero(candidates) + orZero(thoughts), cached, 0));
    }
  };

  /** The tokens these usage fields describe; empty when none of the format's counts is present. */
  abstract Optional<TokenUsage> tokens(Map<String, Long> fields);

  /**
   * Whether a usage object just read is the provider's final count for the response. OpenAI reports
   * usage once, at the end (the stream's last chunk, the Responses API's completed event, a whole
   * JSON body). Anthropic's top-level {@code usage} (message_delta, or a whole message) is final;
   * {@code message.usage} in message_start is not (its output_tokens is 1). Gemini restates
   * usageMetadata in every chunk, so no single one can be told final: its usage counts as final
   * only when the body ends (see {@link TokenEstimate#needed}).
   *
   * @param atTop the usage object sat at the document's top-level {@code usage} key
   */
  boolean isFinal(boolean atTop) {
    return switch (this) {
      case OPENAI -> true;
      case ANTHROPIC -> atTop;
      case GEMINI -> false;
    };
  }

  /** The top-level count or the iterations' sum of it, whichever is larger; null if neither. */
  private static Long billed(Map<String, Long> f, String field) {
    Long top = f.get(field);
    Long passes = f.get(JsonUsageScanner.ITERATIONS_PREFIX + field);
    if (top == null || passes == null) {
      return top != null ? top : passes;
    }
    return Math.max(top, passes);
  }

  private static Long first(Map<String, Long> f, String a, String b) {
    Long v = f.get(a);
    return v != null ? v : f.get(b);
  }

  private static long orZero(Long v) {
    // Negative counts never come from a provider; treat them as absent rather than refund.
    return v == null || v < 0 ? 0 : v;
  }
}
