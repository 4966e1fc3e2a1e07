package io.quotaauthority.keys;

import com.google.protobuf.Timestamp;
import java.time.Instant;
import java.time.temporal.ChronoUnit;

/**
 * google.protobuf.Timestamp ↔ Instant, by the one rule every API that takes or shows a time follows
 * (admin, usage reports, the CLI): a leaf, like {@link Money} and {@link KeyIds}.
 */
public final class ProtoTimes {
  /** The earliest instant a google.protobuf.Timestamp may hold: 0001-01-01T00:00:00Z. */
  public static final Instant MIN = Instant.ofEpochSecond(-62_135_596_800L);

  /**
   * The latest instant accepted and shown: the last microsecond of 9999-12-31 (a Timestamp may hold
   * nanoseconds up to .999999999, but PostgreSQL keeps microseconds and would round that up to year
   * 10000, which no Timestamp can carry).
   */
  public static final Instant MAX = Instant.ofEpochSecond(253_402_300_799L, 999_999_000);

  private ProtoTimes() {}

  public static Timestamp timestamp(Instant t) {
    return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
  }

  /**
   * A Timestamp as the Instant PostgreSQL will store: truncated to microseconds, so what is
   * accepted reads back unchanged (9999-12-31T23:59:59.999999999Z becomes .999999Z, {@link #MAX},
   * instead of being rounded by PostgreSQL into year 10000). Throws IllegalArgumentException naming
   * the field when the Timestamp is invalid (nanos outside 0..999999999, seconds outside
   * 0001-01-01..9999-12-31).
   */
  public static Instant instant(String field, Timestamp t) {
    if (t.getNanos() < 0
        || t.getNanos() > 999_999_999
        || t.getSeconds() < MIN.getEpochSecond()
        || t.getSeconds() > MAX.getEpochSecond()) {
      throw new IllegalArgumentException(field + " is not a valid timestamp");
    }
    // Truncated, not rounded: rounding up could leave the range checked above.
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos()).truncatedTo(ChronoUnit.MICROS);
  }

  /** {@code t} clamped into {@link #MIN}..{@link #MAX}, so it can always be shown. */
  public static Instant clamped(Instant t) {
    return t.isAfter(MAX) ? MAX : t.isBefore(MIN) ? MIN : t;
  }
}
