package io.quotaauthority.admin;

import com.google.protobuf.Timestamp;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.Money;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.KeyStatus;
import java.time.Instant;

/** KeyRecord → ApiKey, and Timestamp ↔ Instant. */
public final class ApiKeys {
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
        .setCreatedAt(timestamp(r.createdAt()))
        .setUpdatedAt(timestamp(r.updatedAt()));
    if (r.expiresAt() != null) {
      b.setExpiresAt(timestamp(r.expiresAt()));
    }
    return b.build();
  }

  public static Timestamp timestamp(Instant t) {
    return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
  }

  /** A Timestamp as an Instant; throws IllegalArgumentException naming the field when invalid. */
  public static Instant instant(String field, Timestamp t) {
    if (t.getNanos() < 0 || t.getNanos() > 999_999_999
        || t.getSeconds() < -62_135_596_800L || t.getSeconds() > 253_402_300_799L) {
      throw new IllegalArgumentException(field + " is not a valid timestamp");
    }
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }
}
