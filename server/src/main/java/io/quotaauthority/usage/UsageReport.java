package io.quotaauthority.usage;

import java.math.BigDecimal;
import java.time.Instant;

/**
 * One request's cost, as a reporter or Envoy metering tells it. Validated before it gets here:
 * reportId is 1..128 printable ASCII characters, cost has at most 8 fraction digits, token counts
 * are not negative.
 *
 * @param provider openai, anthropic or gemini when Envoy metering charged it, else empty
 * @param requestId the request's own id (x-request-id) kept for correlation, 1..128 printable
 *     ASCII, or null; never part of idempotency, which is reportId's alone
 * @param estimated true when Envoy metering charged an estimate because the response ended
 *     before the provider's final usage (see the README's metering section); never set by a
 *     reporter: ReportUsage has no such field, what a reporter sends is its own count
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
    Instant occurredAt,
    String requestId,
    boolean estimated) {

  /** A counted (not estimated) report. */
  public UsageReport(String reportId, long keyId, BigDecimal cost, String model, String provider,
      long inputTokens, long outputTokens, long cachedInputTokens, long cacheWriteTokens,
      Instant occurredAt, String requestId) {
    this(reportId, keyId, cost, model, provider, inputTokens, outputTokens, cachedInputTokens,
        cacheWriteTokens, occurredAt, requestId, false);
  }

  /** A report without a request id. */
  public UsageReport(String reportId, long keyId, BigDecimal cost, String model, String provider,
      long inputTokens, long outputTokens, long cachedInputTokens, long cacheWriteTokens,
      Instant occurredAt) {
    this(reportId, keyId, cost, model, provider, inputTokens, outputTokens, cachedInputTokens,
        cacheWriteTokens, occurredAt, null);
  }
}
