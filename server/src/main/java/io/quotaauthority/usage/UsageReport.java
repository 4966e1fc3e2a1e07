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
 * @param estimated true when Envoy metering charged an estimate because the response ended before
 *     the provider's final usage (see the README's metering section); never set by a reporter:
 *     ReportUsage has no such field, what a reporter sends is its own count
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
  public UsageReport(
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
      String requestId) {
    this(
        reportId,
        keyId,
        cost,
        model,
        provider,
        inputTokens,
        outputTokens,
        cachedInputTokens,
        cacheWriteTokens,
        occurredAt,
        requestId,
        false);
  }

  /** A report without a request id. */
  public UsageReport(
      String reportId,
      long keyId,
      BigDecimal cost,
      String model,
      String provider,
      long inputTokens,
      long outputTokens,
      long cachedInputTokens,
      long cacheWriteTokens,
      Instant occurredAt) {
    this(
        reportId,
        keyId,
        cost,
        model,
        provider,
        inputTokens,
        outputTokens,
        cachedInputTokens,
        cacheWriteTokens,
        occurredAt,
        null);
  }

  /**
   * The fields that make a repeated report_id a conflict rather than a duplicate: "key_id",
   * "cost_usd", "key_id and cost_usd", or null when both match. Costs compare by value (NUMERIC
   * gives 1.50000000 back for 1.5). Model, tokens and times may differ in a retry (a reporter
   * re-reads its clock); they are not what was charged.
   */
  public String differingFields(UsageReport repeat) {
    boolean key = keyId != repeat.keyId();
    boolean cost = this.cost.compareTo(repeat.cost()) != 0;
    if (key && cost) {
      return "key_id and cost_usd";
    }
    return key ? "key_id" : cost ? "cost_usd" : null;
  }
}
