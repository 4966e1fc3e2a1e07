package io.quotaauthority.usage;

import io.quotaauthority.keys.KeyIds;
import io.quotaauthority.keys.Money;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;

/**
 * The rules a usage report must meet before it is queued. Each failure throws
 * IllegalArgumentException with a message naming the field; the report is then REJECTED alone.
 */
public final class UsageValidation {
  public static final int MAX_REPORT_ID = 128;
  public static final int MAX_MODEL = 200;
  /** Reporter clocks drift; a day ahead is clearly wrong, not drift. */
  static final Duration MAX_FUTURE = Duration.ofDays(1);

  private UsageValidation() {}

  public static UsageReport validate(String reportId, String keyId, String costUsd, String model,
      String provider, long inputTokens, long outputTokens, long cachedInputTokens,
      long cacheWriteTokens, Instant occurredAt, Instant now) {
    return validate(reportId, keyId, costUsd, model, provider, inputTokens, outputTokens,
        cachedInputTokens, cacheWriteTokens, occurredAt, now, "");
  }

  /** @param requestId the reporter's optional request id for correlation; empty means none */
  public static UsageReport validate(String reportId, String keyId, String costUsd, String model,
      String provider, long inputTokens, long outputTokens, long cachedInputTokens,
      long cacheWriteTokens, Instant occurredAt, Instant now, String requestId) {
    checkReportId(reportId);
    if (!requestId.isEmpty() && !isPrintableId(requestId)) {
      throw new IllegalArgumentException("request_id must be at most " + MAX_REPORT_ID
          + " printable ASCII characters");
    }
    long key = KeyIds.parse("key_id", keyId);
    BigDecimal cost = Money.parse("cost_usd", costUsd);
    if (model.length() > MAX_MODEL) {
      throw new IllegalArgumentException("model must be at most " + MAX_MODEL + " characters");
    }
    nonNegative("input_tokens", inputTokens);
    nonNegative("output_tokens", outputTokens);
    nonNegative("cached_input_tokens", cachedInputTokens);
    nonNegative("cache_write_tokens", cacheWriteTokens);
    Instant when = occurredAt == null ? now : occurredAt;
    if (when.isAfter(now.plus(MAX_FUTURE))) {
      throw new IllegalArgumentException("occurred_at must not be more than a day in the future");
    }
    return new UsageReport(reportId, key, cost, model, provider, inputTokens, outputTokens,
        cachedInputTokens, cacheWriteTokens, when, requestId.isEmpty() ? null : requestId);
  }

  /** 1..128 printable ASCII characters: what the ledger keeps as a request id. */
  public static boolean isPrintableId(String id) {
    if (id == null || id.isEmpty() || id.length() > MAX_REPORT_ID) {
      return false;
    }
    for (int i = 0; i < id.length(); i++) {
      char c = id.charAt(i);
      if (c < 0x20 || c > 0x7e) {
        return false;
      }
    }
    return true;
  }

  static void checkReportId(String reportId) {
    if (reportId.isEmpty()) {
      throw new IllegalArgumentException("report_id must not be empty");
    }
    if (reportId.length() > MAX_REPORT_ID) {
      throw new IllegalArgumentException("report_id must be at most " + MAX_REPORT_ID + " characters");
    }
    for (int i = 0; i < reportId.length(); i++) {
      char c = reportId.charAt(i);
      if (c < 0x20 || c > 0x7e) {
        throw new IllegalArgumentException("report_id must be printable ASCII");
      }
    }
  }



  private static void nonNegative(String field, long value) {
    if (value < 0) {
      throw new IllegalArgumentException(field + " must not be negative");
    }
  }
}
