package io.quotaauthority.usage;

import java.math.BigDecimal;
import java.time.Instant;

/**
 * One request's cost, as a reporter or Envoy metering tells it. Validated before it gets here:
 * reportId is 1..128 printable ASCII characters, cost has at most 8 fraction digits, token counts
 * are not negative.
 *
 * @param provider openai, anthropic or gemini when Envoy metering charged it, else empty
 */
public record UsageReport(
    String reportId,
    long keyId,
    BigDecimal cost,
    String model,
    String provider,
    long inputTokens,
    long outputTokens,
    long cachedInputTokens,
    long cacheWriteTokens,
    Instant occurredAt) {}
