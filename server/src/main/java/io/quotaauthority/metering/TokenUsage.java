package io.quotaauthority.metering;

/**
 * One response's tokens in four disjoint buckets, each priced at its own rate: a token is counted
 * in exactly one of them, whatever the provider's own fields overlap (see {@link UsageFormat}).
 *
 * @param inputTokens prompt tokens read neither from nor into a cache
 * @param outputTokens generated tokens, reasoning/thinking tokens included
 * @param cachedInputTokens prompt tokens read from the provider's prompt cache
 * @param cacheWriteTokens prompt tokens written into the provider's prompt cache (Anthropic)
 */
public record TokenUsage(
    long inputTokens, long outputTokens, long cachedInputTokens, long cacheWriteTokens) {

  public TokenUsage {
    if (inputTokens < 0 || outputTokens < 0 || cachedInputTokens < 0 || cacheWriteTokens < 0) {
      throw new IllegalArgumentException("token counts must not be negative");
    }
  }

  public long totalTokens() {
    return inputTokens + outputTokens + cachedInputTokens + cacheWriteTokens;
  }
}
