package io.quotaauthority.admin;

import com.google.protobuf.Timestamp;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.Money;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.KeyStatus;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** KeyRecord → ApiKey, and Timestamp ↔ Instant. */
public final class ApiKeys {
  private static final Logger log = LoggerFactory.getLogger(ApiKeys.class);
  /** The earliest instant a google.protobuf.Timestamp may hold: 0001-01-01T00:00:00Z. */
  public static final Instant MIN = Instant.ofEpochSecond(-62_135_596_800L);
  /**
   * The latest instant accepted and shown: the last microsecond of 9999-12-31 (a Timestamp may
   * hold nanoseconds up to .999999999, but PostgreSQL keeps microseconds and would round that up
   * to year 10000, which no Timestamp can carry).
   */
  public static final Instant MAX = Instant.ofEpochSecond(253_402_300_799L, 999_999_000);

  private ApiKeys() {}

  public static ApiKey toProto(KeyRecord r, Instant now) {
    ApiKey.Builder b = ApiKey.newBuilder()
        .setId(Long.toString(r.id()))
        .setName(r.name())
        .setKeyPrefix(r.keyPrefix())
        .setStatus(switch (r.shownStatus(now)) {
          case ACTIVE -> KeyStatus.KEY_STATUS_ACTIVE;
          case DISABLED -> KeyStatus.KEY_STATUS_DISABLED;
          case EXPIRED -> KeyStatus.KEY_STATUS_EXPIRED;
          case QUOTA_EXHAUSTED -> KeyStatus.KEY_STATUS_QUOTA_EXHAUSTED;
        })
        .setQuotaUsd(Money.format(r.quota()))
        .setQuotaUsedUsd(Money.format(r.quotaUsed()))
        .setCreatedAt(shown(r.id(), "created_at", r.createdAt()))
        .setUpdatedAt(shown(r.id(), "updated_at", r.updatedAt()));
    if (r.expiresAt() != null) {
      b.setExpiresAt(shown(r.id(), "expires_at", r.expiresAt()));
    }
    return b.build();
  }

  /**
   * A stored instant as a valid Timestamp. A row written before expires_at was truncated (or by
   * hand) may hold a time outside what a Timestamp can carry (year 10000, 'infinity'): it is shown
   * clamped to {@link #MIN}..{@link #MAX}, with a warning, so one such row never breaks a listing
   * for every key. Check keeps deciding on the stored value, and a clamped expiry is as far away
   * as the stored one for any real clock.
   */
  static Timestamp shown(long id, String field, Instant t) {
    Instant clamped = t.isAfter(MAX) ? MAX : t.isBefore(MIN) ? MIN : t;
    if (!clamped.equals(t)) {
      log.warn("key {} has {} {} outside the range of a Timestamp; shown as {}", id, field, t, clamped);
    }
    return timestamp(clamped);
  }

  public static Timestamp timestamp(Instant t) {
    return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
  }

  /**
   * A Timestamp as the Instant PostgreSQL will store: truncated to microseconds, so what is
   * accepted reads back unchanged (9999-12-31T23:59:59.999999999Z becomes .999999Z, {@link #MAX},
   * instead of being rounded by PostgreSQL into year 10000). Throws IllegalArgumentException
   * naming the field when the Timestamp is invalid (nanos outside 0..999999999, seconds outside
   * 0001-01-01..9999-12-31).
   */
  public static Instant instant(String field, Timestamp t) {
    if (t.getNanos() < 0 || t.getNanos() > 999_999_999
        || t.getSeconds() < MIN.getEpochSecond() || t.getSeconds() > MAX.getEpochSecond()) {
      throw new IllegalArgumentException(field + " is not a valid timestamp");
    }
    // Truncated, not rounded: rounding up could leave the range checked above.
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos()).truncatedTo(ChronoUnit.MICROS);
  }
}
