package io.quotaauthority.usage;

import io.quotaauthority.keys.KeyIds;
import io.quotaauthority.keys.Money;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;

/**
 * The rules a usage report must meet before it is queued, in one place for every path that charges
 * (the usage stream, Envoy metering, and {@link UsageBatcher#submit} as the last gate). Each
 * failure throws IllegalArgumentException with a message naming the field; the report is then
 * REJECTED alone, so no report that PostgreSQL would refuse ever reaches a commit group.
 */
public final class UsageValidation {
  public static final int MAX_REPORT_ID = 128;

  /** Model and provider names: at most this many characters (Unicode code points). */
  public static final int MAX_NAME = 128;

  /**
   * The most tokens one report may carry in any one field: 10^12, a thousand times the tokens a
   * large organisation sends in a day, so a daily roll-up still fits, while an 18-digit count (a
   * broken or hostile response) is refused. Four fields at this bound still sum within a long, and
   * at any plausible price their cost stays far below {@link Money#MAX}.
   */
  public static final long MAX_TOKENS = 1_000_000_000_000L;

  /** Reporter clocks drift; a day ahead is clearly wrong, not drift. */
  static final Duration MAX_FUTURE = Duration.ofDays(1);

  private UsageValidation() {}

  /** Parses and checks a report as the usage stream receives it. */
  public static UsageReport validate(
      String reportId,
      String keyId,
      String costUsd,
      String model,
      String provider,
      long inputTokens,
      long outputTokens,
      long cachedInputTokens,
      long cacheWriteTokens,
      Instant occurredAt,
      Instant now) {
    return validate(
        reportId,
        keyId,
        costUsd,
        model,
        provider,
        inputTokens,
        outputTokens,
        cachedInputTokens,
        cacheWriteTokens,
        occurredAt,
        now,
        "");
  }

  /**
   * @param requestId the reporter's optional request id for correlation; empty means none
   */
  public static UsageReport validate(
      String reportId,
      String keyId,
      String costUsd,
      String model,
      String provider,
      long inputTokens,
      long outputTokens,
      long cachedInputTokens,
      long cacheWriteTokens,
      Instant occurredAt,
      Instant now,
      String requestId) {
    checkReportId(reportId);
    if (!requestId.isEmpty() && !isReportId(requestId)) {
      throw new IllegalArgumentException(
          "request_id must be at most " + MAX_REPORT_ID + " printable ASCII characters");
    }
    long key = KeyIds.parse("key_id", keyId);
    BigDecimal cost = Money.parse("cost_usd", costUsd);
    Instant when = occurredAt == null ? now : occurredAt;
    if (when.isAfter(now.plus(MAX_FUTURE))) {
      throw new IllegalArgumentException("occurred_at must not be more than a day in the future");
    }
    UsageReport report =
        new UsageReport(
            reportId,
            key,
            cost,
            model,
            provider,
            inputTokens,
            outputTokens,
            cachedInputTokens,
            cacheWriteTokens,
            when,
            requestId.isEmpty() ? null : requestId);
    check(report);
    return report;
  }

  /**
   * Checks a report however it was built: every field PostgreSQL stores must be one it accepts, so
   * that a commit group never fails because of one report's content.
   */
  public static void check(UsageReport r) {
    checkReportId(r.reportId());
    if (r.keyId() <= 0) {
      throw new IllegalArgumentException("key_id must be a positive id");
    }
    checkCost(r.cost());
    checkName("model", r.model());
    checkName("provider", r.provider());
    checkTokens("input_tokens", r.inputTokens());
    checkTokens("output_tokens", r.outputTokens());
    checkTokens("cached_input_tokens", r.cachedInputTokens());
    checkTokens("cache_write_tokens", r.cacheWriteTokens());
    if (r.occurredAt() == null) {
      throw new IllegalArgumentException("occurred_at must be set");
    }
    if (r.requestId() != null && !isReportId(r.requestId())) {
      throw new IllegalArgumentException(
          "request_id must be at most " + MAX_REPORT_ID + " printable ASCII characters");
    }
  }

  /**
   * True when {@code id} may be a report id: 1..128 characters, each printable ASCII 0x20..0x7e.
   */
  public static boolean isReportId(String id) {
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
    if (reportId == null || reportId.isEmpty()) {
      throw new IllegalArgumentException("report_id must not be empty");
    }
    if (reportId.length() > MAX_REPORT_ID) {
      throw new IllegalArgumentException(
          "report_id must be at most " + MAX_REPORT_ID + " characters");
    }
    if (!isReportId(reportId)) {
      throw new IllegalArgumentException("report_id must be printable ASCII");
    }
  }

  /** The cost column is NUMERIC(20,8): not negative, at most 8 fraction digits, below 10^12. */
  static void checkCost(BigDecimal cost) {
    if (cost == null || cost.signum() < 0) {
      throw new IllegalArgumentException("cost_usd must not be negative");
    }
    // stripTrailingZeros: 1.500000000 (scale 9) is still an exact 8-digit amount.
    if (cost.signum() != 0 && cost.stripTrailingZeros().scale() > Money.SCALE) {
      throw new IllegalArgumentException(
          "cost_usd must have at most " + Money.SCALE + " fraction digits");
    }
    if (cost.compareTo(Money.MAX) > 0) {
      throw new IllegalArgumentException(
          "cost_usd must be at most "
              + Money.MAX.toPlainString()
              + " USD, the most the ledger holds");
    }
  }

  private static void checkTokens(String field, long value) {
    if (value < 0) {
      throw new IllegalArgumentException(field + " must not be negative");
    }
    if (value > MAX_TOKENS) {
      throw new IllegalArgumentException(
          field + " must be at most " + MAX_TOKENS + " (got " + value + ")");
    }
  }

  private static void checkName(String field, String name) {
    if (name == null) {
      throw new IllegalArgumentException(field + " must be set (empty is allowed)");
    }
    int length = name.codePointCount(0, name.length());
    if (length > MAX_NAME) {
      throw new IllegalArgumentException(field + " must be at most " + MAX_NAME + " characters");
    }
    int bad = firstUnprintable(name);
    if (bad >= 0) {
      // The offending character is named by its code point only: the text may be anything.
      throw new IllegalArgumentException(
          String.format(
              "%s must be printable text without control characters (U+%04X at character %d)",
              field, name.codePointAt(bad), name.codePointCount(0, bad) + 1));
    }
  }

  /**
   * The index of the first character a model or provider name must not hold, or -1: control
   * characters (NUL, which PostgreSQL text refuses outright, newlines that would forge log lines,
   * C1 controls), invisible format characters (bidi overrides that make a log line read other than
   * it is), line/paragraph separators, and unpaired surrogates (not valid UTF-8 at all).
   */
  public static int firstUnprintable(String s) {
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      if (!printable(cp)) {
        return i;
      }
      i += Character.charCount(cp);
    }
    return -1;
  }

  private static boolean printable(int cp) {
    return switch (Character.getType(cp)) {
      case Character.CONTROL,
          Character.FORMAT,
          Character.SURROGATE,
          Character.LINE_SEPARATOR,
          Character.PARAGRAPH_SEPARATOR ->
          false;
      default -> true;
    };
  }

  /**
   * A client-supplied name made to pass {@link #check}: each unprintable character replaced by
   * U+FFFD and the result cut to {@link #MAX_NAME} characters. Metering uses this for the model it
   * read from a request: the request was served, so its charge must not be lost over its name.
   */
  public static String sanitizeName(String name) {
    StringBuilder out = new StringBuilder(Math.min(name.length(), MAX_NAME * 2));
    int count = 0;
    for (int i = 0; i < name.length() && count < MAX_NAME; count++) {
      int cp = name.codePointAt(i);
      out.appendCodePoint(printable(cp) ? cp : 0xFFFD);
      i += Character.charCount(cp);
    }
    return out.toString();
  }
}
