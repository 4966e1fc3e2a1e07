package io.quotaauthority.admin;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quotaauthority.keys.IpRanges;
import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyNotFoundException;
import io.quotaauthority.keys.KeyPolicies;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.ModelAllowList;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.PeriodBudget;
import io.quotaauthority.keys.RateLimits;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.keys.Secrets;
import io.quotaauthority.keys.SpendWindows;
import io.quotaauthority.keys.UsageWindows;
import io.quotaauthority.store.KeyRepository;
import io.quotaauthority.store.Transactions;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin operations on keys. Each change is one transaction that writes the row, one key_audit
 * row and a change notification; then this instance's cache takes the new row at once, so the very
 * next Check here honours it. Invalid input throws IllegalArgumentException naming the field and
 * writes nothing; an unknown or deleted id throws KeyNotFoundException.
 */
public final class KeyAdmin {
  private static final Logger log = LoggerFactory.getLogger(KeyAdmin.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Transactions tx;
  private final KeyRepository keys;
  private final KeyCache cache;
  private final Clock clock;

  public KeyAdmin(Transactions tx, KeyRepository keys, KeyCache cache, Clock clock) {
    this.tx = tx;
    this.keys = keys;
    this.cache = cache;
    this.clock = clock;
  }

  /** A new key and its secret, which nothing keeps: it is shown once. */
  public record Created(KeyRecord key, String secret) {}

  public record Page(List<KeyRecord> keys, String nextPageToken) {}

  /**
   * The periodic budget fields as a request carries them (README "Key policies"): budget_period
   * (empty or none: no period), budget_reset_time HH:MM (empty: 00:00), budget_time_zone (empty:
   * UTC).
   */
  public record PeriodInput(String period, String resetTime, String timeZone) {
    /** Validated, with the current period as of {@code now}; naming the field on bad input. */
    PeriodBudget budget(Instant now) {
      PeriodBudget.Kind kind = PeriodBudget.Kind.parse("budget_period", period);
      int minute = PeriodBudget.parseResetTime("budget_reset_time", resetTime);
      ZoneId zone = PeriodBudget.parseZone("budget_time_zone", timeZone);
      if (kind == PeriodBudget.Kind.NONE && !(resetTime.isEmpty() && timeZone.isEmpty())) {
        throw new IllegalArgumentException(
            (resetTime.isEmpty() ? "budget_time_zone" : "budget_reset_time")
                + " is set, but budget_period is none; set budget_period too");
      }
      return PeriodBudget.at(kind, minute, zone, now);
    }
  }

  /**
   * A new key with every field: its policy lists (README "Key policies"), each validated here (a
   * bad entry throws IllegalArgumentException naming the field and the entry, and nothing is
   * written), the periodic budget, the reporter hold, the spending windows and the rate limits.
   *
   * @param maxConcurrentRequests 0 (no cap) to {@link KeyRecord#MAX_CONCURRENT_REQUESTS}
   * @param holdUsdPerRequest empty or "0" for no reporter hold at Check (README "Holds for
   *     usage-stream reporters")
   * @param holdExpiry a HoldExpiry name; unspecified is CHARGE
   * @param windows the window amounts as sent; empty or "0" for none
   * @param requestsPerMinute 0 for no limit, as {@code tokensPerMinute}
   */
  public Created create(
      String name,
      String quotaUsd,
      Instant expiresAt,
      int maxConcurrentRequests,
      List<String> ipAllow,
      List<String> ipDeny,
      List<String> modelAllow,
      PeriodInput period,
      String holdUsdPerRequest,
      String holdExpiry,
      Map<SpendWindows.Window, String> windows,
      long requestsPerMinute,
      long tokensPerMinute,
      String actor) {
    KeyPolicies policies =
        policies(ipAllow, ipDeny, modelAllow)
            .withPeriod(period.budget(clock.instant()))
            .withWindows(windows(windows))
            .withRates(
                RateLimits.of(
                    RateLimits.rpm("requests_per_minute", requestsPerMinute),
                    RateLimits.tpm("tokens_per_minute", tokensPerMinute)));
    String validName = KeyUpdate.KeyFields.name(name);
    BigDecimal quota = KeyUpdate.KeyFields.quota(quotaUsd);
    int maxConcurrent = KeyUpdate.KeyFields.maxConcurrentRequests(maxConcurrentRequests);
    BigDecimal hold = KeyUpdate.KeyFields.holdPerRequest(holdUsdPerRequest);
    KeyRecord.HoldExpiry expiry = KeyUpdate.KeyFields.holdExpiry("hold_expiry", holdExpiry, true);
    if (expiresAt != null && !expiresAt.isAfter(clock.instant())) {
      throw new IllegalArgumentException("expires_at must be in the future");
    }
    String secret = Secrets.newSecret();
    KeyRecord row =
        tx.inTransaction(
            c -> {
              KeyRecord r =
                  keys.insert(
                      c,
                      validName,
                      SecretHasher.hash(secret),
                      Secrets.displayPrefix(secret),
                      quota,
                      expiresAt,
                      maxConcurrent,
                      hold,
                      expiry,
                      policies);
              audited(c, r, "create", null, r, actor);
              return r;
            });
    cache.apply(row);
    return new Created(row, secret);
  }

  public KeyRecord get(long id) {
    return tx.inTransaction(c -> keys.findLive(c, id))
        .orElseThrow(() -> new KeyNotFoundException("id", id));
  }

  public Page list(int pageSize, String pageToken) {
    int size = PageTokens.pageSize(pageSize);
    long after = PageTokens.decode("page_token", pageToken, PageTokens.KEYS);
    // One row more than asked tells whether another page follows without a second query.
    List<KeyRecord> rows = tx.inTransaction(c -> keys.page(c, after, size + 1));
    if (rows.size() <= size) {
      return new Page(rows, "");
    }
    List<KeyRecord> page = rows.subList(0, size);
    return new Page(List.copyOf(page), PageTokens.encode(PageTokens.KEYS, page.get(size - 1).id()));
  }

  public KeyRecord update(long id, KeyUpdate update, String actor) {
    return change(
        id,
        "update",
        actor,
        (c, old) -> {
          if (!update.changes(old)) {
            return null;
          }
          KeyRecord fresh = old;
          if (update.changesFields(old)) {
            fresh =
                keys.updateFields(
                    c,
                    id,
                    update.name() == null ? old.name() : update.name(),
                    update.quota() == null ? old.quota() : update.quota(),
                    update.setExpiresAt() ? update.expiresAt() : old.expiresAt(),
                    update.statusOr(old.status()),
                    update.maxConcurrentRequestsOr(old.maxConcurrentRequests()),
                    update.holdPerRequestOr(old.holdUsdPerRequest()),
                    update.holdExpiryOr(old.holdExpiry()));
          }
          if (update.changesPolicies(old)) {
            // Its own statement (one more version step in the same transaction: one audit row and
            // one notification, of the final row, all the same).
            fresh = keys.updatePolicies(c, id, update.policiesOr(old.policies(), clock.instant()));
          }
          return fresh;
        });
  }

  /** Validated window amounts for CreateKey: empty or "0" is no window. */
  static SpendWindows windows(Map<SpendWindows.Window, String> amounts) {
    SpendWindows out = SpendWindows.NONE;
    for (SpendWindows.Window w : SpendWindows.Window.values()) {
      String a = amounts.getOrDefault(w, "");
      if (a != null && !a.isEmpty()) {
        out = out.with(w, Money.parse(w.field(), a));
      }
    }
    return out;
  }

  /**
   * What the key has spent in each of its windows now, counted as Check counts it (by the minute
   * charged, committed usage only): one query over the span of its longest window. Empty for a key
   * without windows.
   */
  public Map<SpendWindows.Window, BigDecimal> windowSpend(KeyRecord key) {
    SpendWindows windows = key.policies().windows();
    if (!windows.active()) {
      return Map.of();
    }
    UsageWindows scratch = new UsageWindows(keys::usageHistory, clock);
    scratch.follow(key);
    UsageWindows.Track t = scratch.track(key.id());
    if (t == null) {
      return Map.of();
    }
    long[] spent = new long[SpendWindows.Window.values().length];
    t.spent(clock.millis(), spent);
    Map<SpendWindows.Window, BigDecimal> out = new EnumMap<>(SpendWindows.Window.class);
    for (SpendWindows.Window w : SpendWindows.Window.values()) {
      if (windows.limit(w) != null) {
        out.put(w, UsageWindows.usd(spent[w.ordinal()]));
      }
    }
    return out;
  }

  /** Validated lists for CreateKey, naming the field and entry of the first bad one. */
  static KeyPolicies policies(List<String> ipAllow, List<String> ipDeny, List<String> modelAllow) {
    KeyPolicies p =
        new KeyPolicies(
            IpRanges.parse("ip_allow", ipAllow),
            IpRanges.parse("ip_deny", ipDeny),
            ModelAllowList.parse("model_allow", modelAllow));
    return p.equals(KeyPolicies.NONE) ? KeyPolicies.NONE : p;
  }

  public KeyRecord delete(long id, String actor) {
    return change(id, "delete", actor, (c, old) -> keys.softDelete(c, id));
  }

  public KeyRecord resetQuota(long id, String actor) {
    return change(id, "reset_quota", actor, (c, old) -> keys.resetQuota(c, id));
  }

  public KeyRecord clearExpiration(long id, String actor) {
    // A key that has no expiry is answered as it is: nothing to clear, nothing written.
    return change(
        id,
        "clear_expiration",
        actor,
        (c, old) ->
            old.expiresAt() == null
                ? null
                : keys.updateFields(
                    c,
                    id,
                    old.name(),
                    old.quota(),
                    null,
                    old.status(),
                    old.maxConcurrentRequests(),
                    old.holdUsdPerRequest(),
                    old.holdExpiry()));
  }

  private interface Change {
    /** The changed row, or null when the change would leave the key as it is (a no-op). */
    KeyRecord apply(Connection c, KeyRecord old) throws SQLException;
  }

  private KeyRecord change(long id, String action, String actor, Change change) {
    KeyRecord row =
        tx.inTransaction(
            c -> {
              KeyRecord old =
                  keys.lockLive(c, id).orElseThrow(() -> new KeyNotFoundException("id", id));
              KeyRecord fresh = change.apply(c, old);
              if (fresh == null) {
                // No-op: no row change, no version bump, no audit row, no NOTIFY; the answer is the
                // key
                // as it is (read under the row lock, so it is current).
                return old;
              }
              audited(c, fresh, action, old, fresh, actor);
              return fresh;
            });
    cache.apply(row);
    return row;
  }

  private void audited(
      Connection c, KeyRecord row, String action, KeyRecord old, KeyRecord fresh, String actor)
      throws SQLException {
    keys.audit(c, row.id(), action, auditJson(old), auditJson(fresh), actor);
    KeyRepository.notifyChange(c, row);
    // Ids and actions only: never a secret, a hash or a token.
    log.info("admin {} key_id={} actor={}", action, row.id(), actor);
  }

  static String auditJson(KeyRecord r) {
    if (r == null) {
      return null;
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", r.name());
    m.put("status", r.status().name().toLowerCase(Locale.ROOT));
    m.put("quota", Money.format(r.quota()));
    m.put("quota_used", Money.format(r.quotaUsed()));
    m.put("expires_at", r.expiresAt() == null ? null : r.expiresAt().toString());
    // The cap only: slots_leased moves with traffic and no admin call sets it (leased, the budget
    // held, is left out for the same reason).
    m.put("max_concurrent_requests", r.maxConcurrentRequests());
    m.put("hold_usd_per_request", Money.format(r.holdUsdPerRequest()));
    m.put("hold_expiry", r.holdExpiry().name().toLowerCase(Locale.ROOT));
    // Policies only when set, so audit rows of keys without any read as before.
    if (!r.policies().ipAllow().isEmpty()) {
      m.put("ip_allow", r.policies().ipAllow().entries());
    }
    if (!r.policies().ipDeny().isEmpty()) {
      m.put("ip_deny", r.policies().ipDeny().entries());
    }
    if (!r.policies().modelAllow().isEmpty()) {
      m.put("model_allow", r.policies().modelAllow().entries());
    }
    PeriodBudget period = r.policies().period();
    if (period.active()) {
      m.put("budget_period", period.kind().wireName());
      m.put("budget_reset_time", period.resetTime());
      m.put("budget_time_zone", period.zoneName());
    }
    if (r.policies().rates().requestsPerMinute() > 0) {
      m.put("requests_per_minute", r.policies().rates().requestsPerMinute());
    }
    if (r.policies().rates().tokensPerMinute() > 0) {
      m.put("tokens_per_minute", r.policies().rates().tokensPerMinute());
    }
    for (SpendWindows.Window w : SpendWindows.Window.values()) {
      if (r.policies().windows().limit(w) != null) {
        m.put(w.field().replace("_usd", ""), Money.format(r.policies().windows().limit(w)));
      }
    }
    m.put("deleted", r.deleted());
    m.put("version", r.version());
    try {
      return JSON.writeValueAsString(m);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
