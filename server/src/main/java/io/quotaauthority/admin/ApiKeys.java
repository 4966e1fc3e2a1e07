package io.quotaauthority.admin;

import com.google.protobuf.Timestamp;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.PeriodBudget;
import io.quotaauthority.keys.ProtoTimes;
import io.quotaauthority.keys.SpendWindows;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.HoldExpiry;
import io.quotaauthority.proto.v1.KeyStatus;
import java.time.Instant;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** KeyRecord → ApiKey (times by {@link ProtoTimes}). */
public final class ApiKeys {
  private static final Logger log = LoggerFactory.getLogger(ApiKeys.class);

  private ApiKeys() {}

  public static ApiKey toProto(KeyRecord r, Instant now) {
    ApiKey.Builder b =
        ApiKey.newBuilder()
            .setId(Long.toString(r.id()))
            .setName(r.name())
            .setKeyPrefix(r.keyPrefix())
            .setStatus(
                switch (r.shownStatus(now)) {
                  case ACTIVE -> KeyStatus.KEY_STATUS_ACTIVE;
                  case DISABLED -> KeyStatus.KEY_STATUS_DISABLED;
                  case EXPIRED -> KeyStatus.KEY_STATUS_EXPIRED;
                  case QUOTA_EXHAUSTED -> KeyStatus.KEY_STATUS_QUOTA_EXHAUSTED;
                })
            .setQuotaUsd(Money.format(r.quota()))
            .setQuotaUsedUsd(Money.format(r.quotaUsed()))
            .setReservedUsd(Money.format(r.leased()))
            .setMaxConcurrentRequests(r.maxConcurrentRequests())
            .setConcurrentRequests(r.slotsLeased())
            .setHoldUsdPerRequest(Money.format(r.holdUsdPerRequest()))
            .setHoldExpiry(
                r.holdExpiry() == KeyRecord.HoldExpiry.CHARGE
                    ? HoldExpiry.HOLD_EXPIRY_CHARGE
                    : HoldExpiry.HOLD_EXPIRY_RELEASE)
            .addAllIpAllow(r.policies().ipAllow().entries())
            .addAllIpDeny(r.policies().ipDeny().entries())
            .addAllModelAllow(r.policies().modelAllow().entries())
            .setCreatedAt(shown(r.id(), "created_at", r.createdAt()))
            .setUpdatedAt(shown(r.id(), "updated_at", r.updatedAt()));
    if (r.expiresAt() != null) {
      b.setExpiresAt(shown(r.id(), "expires_at", r.expiresAt()));
    }
    SpendWindows w = r.policies().windows();
    b.setWindow5HUsd(Money.format(w.stored(SpendWindows.Window.H5)))
        .setWindow1DUsd(Money.format(w.stored(SpendWindows.Window.D1)))
        .setWindow7DUsd(Money.format(w.stored(SpendWindows.Window.D7)))
        .setWindow30DUsd(Money.format(w.stored(SpendWindows.Window.D30)))
        .setRequestsPerMinute(r.policies().rates().requestsPerMinute())
        .setTokensPerMinute(r.policies().rates().tokensPerMinute());
    PeriodBudget p = r.policies().period();
    b.setBudgetPeriod(p.kind().wireName());
    if (p.active()) {
      b.setBudgetResetTime(p.resetTime()).setBudgetTimeZone(p.zoneName());
      if (p.startedAt() != null && p.endsAt() != null) {
        b.setPeriodStartedAt(shown(r.id(), "period_started_at", p.startedAt()))
            .setPeriodResetsAt(shown(r.id(), "period_ends_at", p.endsAt()));
      }
    }
    return b.build();
  }

  /** The key as shown by GetKey: with what it spent in each of its windows. */
  public static ApiKey withWindowSpend(
      ApiKey key, java.util.Map<SpendWindows.Window, java.math.BigDecimal> spend) {
    if (spend.isEmpty()) {
      return key;
    }
    ApiKey.Builder b = key.toBuilder();
    spend.forEach(
        (w, usd) -> {
          String v = Money.format(usd);
          switch (w) {
            case H5 -> b.setWindow5HSpentUsd(v);
            case D1 -> b.setWindow1DSpentUsd(v);
            case D7 -> b.setWindow7DSpentUsd(v);
            case D30 -> b.setWindow30DSpentUsd(v);
          }
        });
    return b.build();
  }

  /**
   * A stored instant as a valid Timestamp. A row written before expires_at was truncated (or by
   * hand) may hold a time outside what a Timestamp can carry (year 10000, 'infinity'): it is shown
   * clamped to {@link ProtoTimes#MIN}..{@link ProtoTimes#MAX}, with a warning, so one such row
   * never breaks a listing for every key. Check keeps deciding on the stored value, and a clamped
   * expiry is as far away as the stored one for any real clock.
   */
  static Timestamp shown(long id, String field, Instant t) {
    Instant clamped = ProtoTimes.clamped(t);
    if (!clamped.equals(t)) {
      log.warn(
          "key {} has {} {} outside the range of a Timestamp; shown as {}", id, field, t, clamped);
    }
    return ProtoTimes.timestamp(clamped);
  }
}
