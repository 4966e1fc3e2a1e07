package io.quotaauthority.keys;

/**
 * A key's rate limits (README "Key policies"): requests per minute across every instance, and
 * tokens per minute (refused while the last minute's reported tokens reach it). Zero is no limit.
 */
public record RateLimits(int requestsPerMinute, long tokensPerMinute) {
  public static final RateLimits NONE = new RateLimits(0, 0);

  /** The most requests_per_minute can be (the column's CHECK, V12). */
  public static final int MAX_RPM = 100_000_000;

  /** The most tokens_per_minute can be. */
  public static final long MAX_TPM = 1_000_000_000_000_000L;

  public static RateLimits of(int rpm, long tpm) {
    return rpm == 0 && tpm == 0 ? NONE : new RateLimits(rpm, tpm);
  }

  public boolean active() {
    return requestsPerMinute > 0 || tokensPerMinute > 0;
  }

  /** requests_per_minute from the wire; IllegalArgumentException naming {@code field}. */
  public static int rpm(String field, long value) {
    if (value < 0 || value > MAX_RPM) {
      throw new IllegalArgumentException(
          field + " must be a whole number from 0 (no limit) to " + MAX_RPM + ", got " + value);
    }
    return (int) value;
  }

  /** tokens_per_minute from the wire; IllegalArgumentException naming {@code field}. */
  public static long tpm(String field, long value) {
    if (value < 0 || value > MAX_TPM) {
      throw new IllegalArgumentException(
          field + " must be a whole number from 0 (no limit) to " + MAX_TPM + ", got " + value);
    }
    return value;
  }
}
