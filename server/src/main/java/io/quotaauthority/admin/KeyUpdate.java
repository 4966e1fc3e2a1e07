package io.quotaauthority.admin;

import io.quotaauthority.keys.IpRanges;
import io.quotaauthority.keys.KeyNames;
import io.quotaauthority.keys.KeyPolicies;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.ModelAllowList;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.PeriodBudget;
import io.quotaauthority.keys.RateLimits;
import io.quotaauthority.keys.SpendWindows;
import java.math.BigDecimal;
import java.time.Instant;
import java.time.ZoneId;
import java.util.Collection;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The fields an UpdateKey changes, from its field-mask paths; a field not named stays as it is.
 *
 * @param name null when unchanged
 * @param quota null when unchanged
 * @param expiresAt the new expiry when {@code setExpiresAt}; null there means never
 * @param status null when unchanged
 * @param maxConcurrentRequests null when unchanged; 0 removes the cap
 * @param ipAllow null when unchanged; empty removes the list (so do the two below)
 * @param ipDeny null when unchanged
 * @param modelAllow null when unchanged
 * @param holdPerRequest null when unchanged; 0 takes no more holds
 * @param holdExpiry null when unchanged
 */
public record KeyUpdate(
    String name,
    BigDecimal quota,
    boolean setExpiresAt,
    Instant expiresAt,
    KeyRecord.StoredStatus status,
    Integer maxConcurrentRequests,
    IpRanges ipAllow,
    IpRanges ipDeny,
    ModelAllowList modelAllow,
    PeriodChange period,
    BigDecimal holdPerRequest,
    KeyRecord.HoldExpiry holdExpiry,
    Map<SpendWindows.Window, BigDecimal> windows,
    Integer requestsPerMinute,
    Long tokensPerMinute) {

  public KeyUpdate {
    windows = windows == null ? Map.of() : Map.copyOf(windows);
  }

  /**
   * The periodic budget paths named in a mask; each field null when its path is not named.
   *
   * @param kind budget_period
   * @param resetMinute budget_reset_time as minute of the day
   * @param zone budget_time_zone
   */
  public record PeriodChange(PeriodBudget.Kind kind, Integer resetMinute, ZoneId zone) {
    /** The spec after this change; bounds are computed by the caller at its time. */
    PeriodBudget.Kind kindOr(PeriodBudget current) {
      return kind == null ? current.kind() : kind;
    }

    int minuteOr(PeriodBudget current) {
      return resetMinute == null ? current.resetMinute() : resetMinute;
    }

    ZoneId zoneOr(PeriodBudget current) {
      return zone == null ? current.zone() : zone;
    }

    /** Whether the spec (not the bounds) would change. */
    boolean changes(PeriodBudget current) {
      PeriodBudget.Kind k = kindOr(current);
      if (k != current.kind()) {
        return true;
      }
      return k != PeriodBudget.Kind.NONE
          && (minuteOr(current) != current.resetMinute()
              || !zoneOr(current).equals(current.zone()));
    }
  }

  public static final List<String> PATHS =
      List.of(
          "name",
          "quota_usd",
          "expires_at",
          "status",
          "max_concurrent_requests",
          "hold_usd_per_request",
          "hold_expiry",
          "ip_allow",
          "ip_deny",
          "model_allow",
          "budget_period",
          "budget_reset_time",
          "budget_time_zone",
          "window_5h_usd",
          "window_1d_usd",
          "window_7d_usd",
          "window_30d_usd",
          "requests_per_minute",
          "tokens_per_minute");

  /**
   * Reads the named paths from the given values; throws IllegalArgumentException naming the field
   * for an unknown path, an empty mask or a bad value.
   *
   * <ul>
   *   <li>A named policy list (README "Key policies") replaces the stored one whole; empty removes
   *       it (a repeated field has no "unset" to tell apart).
   *   <li>budget_period must name a period under the mask ("none" removes it, an empty value is
   *       refused), budget_reset_time HH:MM, budget_time_zone an IANA name.
   *   <li>An empty hold_usd_per_request under the mask is refused ("0" stops the holds), an
   *       unspecified hold_expiry too (README "Holds for usage-stream reporters").
   *   <li>A named window_*_usd must carry an amount, "0" removing the window; an empty one is
   *       refused.
   *   <li>The rate limits are read as given under the mask (an integer has no "unset"; 0 removes
   *       the limit).
   * </ul>
   *
   * @param status "ACTIVE" or "DISABLED" (the KeyStatus name without its prefix)
   * @param maxConcurrentRequests read as given: an int32 has no "unset", and 0 (no cap) is a value
   *     a client asks for by naming the path
   * @param holdExpiry a HoldExpiry name
   * @param windows the request's window amounts (absent reads as empty)
   */
  public static KeyUpdate fromPaths(
      Collection<String> paths,
      String name,
      String quotaUsd,
      Instant expiresAt,
      String status,
      int maxConcurrentRequests,
      List<String> ipAllow,
      List<String> ipDeny,
      List<String> modelAllow,
      KeyAdmin.PeriodInput period,
      String holdUsdPerRequest,
      String holdExpiry,
      Map<SpendWindows.Window, String> windows,
      long requestsPerMinute,
      long tokensPerMinute) {
    if (paths.isEmpty()) {
      throw new IllegalArgumentException("update_mask must name at least one of " + PATHS);
    }
    String newName = null;
    BigDecimal newQuota = null;
    boolean setExpiry = false;
    KeyRecord.StoredStatus newStatus = null;
    Integer newMax = null;
    IpRanges newAllow = null;
    IpRanges newDeny = null;
    ModelAllowList newModels = null;
    PeriodBudget.Kind newKind = null;
    Integer newMinute = null;
    ZoneId newZone = null;
    BigDecimal newHold = null;
    KeyRecord.HoldExpiry newExpiry = null;
    Map<SpendWindows.Window, BigDecimal> newWindows = new EnumMap<>(SpendWindows.Window.class);
    Integer newRpm = null;
    Long newTpm = null;
    for (String path : paths) {
      if (path.equals("requests_per_minute")) {
        newRpm = RateLimits.rpm("key.requests_per_minute", requestsPerMinute);
        continue;
      }
      if (path.equals("tokens_per_minute")) {
        newTpm = RateLimits.tpm("key.tokens_per_minute", tokensPerMinute);
        continue;
      }
      SpendWindows.Window window = windowOf(path);
      if (window != null) {
        String field = "key." + window.field();
        String amount = windows.getOrDefault(window, "");
        if (amount == null || amount.isEmpty()) {
          throw new IllegalArgumentException(
              field + " must not be empty when update_mask names it; send \"0\" for no window");
        }
        newWindows.put(window, Money.parse(field, amount));
        continue;
      }
      switch (path) {
        case "name" -> newName = KeyFields.name(name);
        // Under the mask an empty amount is refused, not read as 0 (unlimited): a client that
        // forgot the value must not lift a key's limit. Unlimited is asked for explicitly, "0".
        case "quota_usd" -> newQuota = KeyFields.updatedQuota(quotaUsd);
        case "expires_at" -> {
          // Same rule: an unset expiry under the mask would make the key never expire. Removing
          // an expiry is its own explicit call, ClearExpiration.
          if (expiresAt == null) {
            throw new IllegalArgumentException(
                "key.expires_at must be set when update_mask names expires_at;"
                    + " use ClearExpiration to remove an expiry");
          }
          setExpiry = true;
        }
        case "status" ->
            newStatus =
                switch (status) {
                  case "ACTIVE" -> KeyRecord.StoredStatus.ACTIVE;
                  case "DISABLED" -> KeyRecord.StoredStatus.DISABLED;
                  default ->
                      throw new IllegalArgumentException(
                          "key.status must be KEY_STATUS_ACTIVE or KEY_STATUS_DISABLED, got "
                              + status);
                };
        case "max_concurrent_requests" ->
            newMax = KeyFields.maxConcurrentRequests(maxConcurrentRequests);
        case "hold_usd_per_request" -> {
          // As with the quota: an empty amount under the mask is refused, "0" stops the holds.
          if (holdUsdPerRequest == null || holdUsdPerRequest.isEmpty()) {
            throw new IllegalArgumentException(
                "key.hold_usd_per_request must not be empty when update_mask names it;"
                    + " send \"0\" for no hold");
          }
          newHold = Money.parse("key.hold_usd_per_request", holdUsdPerRequest);
        }
        case "hold_expiry" ->
            newExpiry = KeyFields.holdExpiry("key.hold_expiry", holdExpiry, false);
        case "ip_allow" -> newAllow = IpRanges.parse("key.ip_allow", ipAllow);
        case "ip_deny" -> newDeny = IpRanges.parse("key.ip_deny", ipDeny);
        case "model_allow" -> newModels = ModelAllowList.parse("key.model_allow", modelAllow);
        case "budget_period" -> {
          if (period.period().isEmpty()) {
            throw new IllegalArgumentException(
                "key.budget_period must not be empty when update_mask names budget_period;"
                    + " send \"none\" to remove the period");
          }
          newKind = PeriodBudget.Kind.parse("key.budget_period", period.period());
        }
        case "budget_reset_time" ->
            newMinute = PeriodBudget.parseResetTime("key.budget_reset_time", period.resetTime());
        case "budget_time_zone" ->
            newZone = PeriodBudget.parseZone("key.budget_time_zone", period.timeZone());
        default ->
            throw new IllegalArgumentException(
                "update_mask has unknown path '" + path + "'; allowed: " + PATHS);
      }
    }
    return new KeyUpdate(
        newName,
        newQuota,
        setExpiry,
        setExpiry ? expiresAt : null,
        newStatus,
        newMax,
        newAllow,
        newDeny,
        newModels,
        newKind == null && newMinute == null && newZone == null
            ? null
            : new PeriodChange(newKind, newMinute, newZone),
        newHold,
        newExpiry,
        newWindows,
        newRpm,
        newTpm);
  }

  /** The key's rate limits after this update. */
  RateLimits ratesOr(RateLimits current) {
    return RateLimits.of(
        requestsPerMinute == null ? current.requestsPerMinute() : requestsPerMinute,
        tokensPerMinute == null ? current.tokensPerMinute() : tokensPerMinute);
  }

  /** The window a window_*_usd path names, or null for another path. */
  static SpendWindows.Window windowOf(String path) {
    for (SpendWindows.Window w : SpendWindows.Window.values()) {
      if (w.field().equals(path)) {
        return w;
      }
    }
    return null;
  }

  /** The key's windows after this update. */
  SpendWindows windowsOr(SpendWindows current) {
    SpendWindows out = current;
    for (Map.Entry<SpendWindows.Window, BigDecimal> e : windows.entrySet()) {
      out = out.with(e.getKey(), e.getValue());
    }
    return out;
  }

  /**
   * The key's policies after this update: the named lists replaced, the others as they are; a
   * changed periodic budget starts its current period as of {@code now} (quota_used is kept).
   */
  KeyPolicies policiesOr(KeyPolicies current, Instant now) {
    if (ipAllow == null
        && ipDeny == null
        && modelAllow == null
        && period == null
        && windows.isEmpty()
        && requestsPerMinute == null
        && tokensPerMinute == null) {
      return current;
    }
    PeriodBudget p = current.period();
    if (period != null && period.changes(p)) {
      p = PeriodBudget.at(period.kindOr(p), period.minuteOr(p), period.zoneOr(p), now);
    }
    KeyPolicies out =
        new KeyPolicies(
            ipAllow == null ? current.ipAllow() : ipAllow,
            ipDeny == null ? current.ipDeny() : ipDeny,
            modelAllow == null ? current.modelAllow() : modelAllow,
            p,
            windowsOr(current.windows()),
            ratesOr(current.rates()));
    return out.equals(KeyPolicies.NONE) ? KeyPolicies.NONE : out;
  }

  /** True when the update changes the stored fields other than the policy lists. */
  boolean changesFields(KeyRecord current) {
    return (name != null && !name.equals(current.name()))
        || (quota != null && quota.compareTo(current.quota()) != 0)
        || (setExpiresAt && !Objects.equals(expiresAt, current.expiresAt()))
        || (status != null && status != current.status())
        || (maxConcurrentRequests != null
            && maxConcurrentRequests != current.maxConcurrentRequests())
        || (holdPerRequest != null && holdPerRequest.compareTo(current.holdUsdPerRequest()) != 0)
        || (holdExpiry != null && holdExpiry != current.holdExpiry());
  }

  /** True when the update changes a policy list. */
  boolean changesPolicies(KeyRecord current) {
    KeyPolicies p = current.policies();
    return (ipAllow != null && !ipAllow.entries().equals(p.ipAllow().entries()))
        || (ipDeny != null && !ipDeny.entries().equals(p.ipDeny().entries()))
        || (modelAllow != null && !modelAllow.entries().equals(p.modelAllow().entries()))
        || (period != null && period.changes(p.period()))
        || !windowsOr(p.windows()).equals(p.windows())
        || !ratesOr(p.rates()).equals(p.rates());
  }

  KeyRecord.StoredStatus statusOr(KeyRecord.StoredStatus current) {
    return status == null ? current : status;
  }

  int maxConcurrentRequestsOr(int current) {
    return maxConcurrentRequests == null ? current : maxConcurrentRequests;
  }

  BigDecimal holdPerRequestOr(BigDecimal current) {
    return holdPerRequest == null ? current : holdPerRequest;
  }

  KeyRecord.HoldExpiry holdExpiryOr(KeyRecord.HoldExpiry current) {
    return holdExpiry == null ? current : holdExpiry;
  }

  /**
   * True when applying this update to {@code current} would change a stored field. A no-op update
   * writes nothing (no row change, no version bump, no audit row, no notification). Amounts compare
   * by value ("10" equals "10.00"); instants are compared as stored (microseconds, see {@link
   * ApiKeys#instant}).
   */
  boolean changes(KeyRecord current) {
    return changesFields(current) || changesPolicies(current);
  }

  /** Shared field rules for create and update. */
  static final class KeyFields {
    private KeyFields() {}

    /**
     * The one name rule, shared with the CLI (NUL, which PostgreSQL cannot store, is a control).
     */
    static String name(String name) {
      return KeyNames.check("name", name);
    }

    /** The quota on UpdateKey: a valid amount is required, "0" for unlimited. */
    static BigDecimal updatedQuota(String quotaUsd) {
      if (quotaUsd == null || quotaUsd.isEmpty()) {
        throw new IllegalArgumentException(
            "quota_usd must not be empty when update_mask names quota_usd;"
                + " send \"0\" for unlimited");
      }
      return Money.parse("quota_usd", quotaUsd);
    }

    /**
     * The cap on CreateKey and UpdateKey alike: 0 (no cap) to {@link
     * KeyRecord#MAX_CONCURRENT_REQUESTS}. Refused here rather than left to the column's CHECK, so
     * the message names the field and the range.
     */
    static int maxConcurrentRequests(int value) {
      if (value < 0 || value > KeyRecord.MAX_CONCURRENT_REQUESTS) {
        throw new IllegalArgumentException(
            "max_concurrent_requests must be a whole number from 0 (no cap) to "
                + KeyRecord.MAX_CONCURRENT_REQUESTS
                + ", got "
                + value);
      }
      return value;
    }

    /**
     * A hold's expiry rule by its HoldExpiry name ("HOLD_EXPIRY_CHARGE"); unspecified is the
     * default (CHARGE) on CreateKey and refused on UpdateKey, where naming the path must set a
     * value.
     */
    static KeyRecord.HoldExpiry holdExpiry(String field, String name, boolean defaultAllowed) {
      switch (name == null ? "" : name) {
        case "HOLD_EXPIRY_CHARGE":
          return KeyRecord.HoldExpiry.CHARGE;
        case "HOLD_EXPIRY_RELEASE":
          return KeyRecord.HoldExpiry.RELEASE;
        case "HOLD_EXPIRY_UNSPECIFIED":
          if (defaultAllowed) {
            return KeyRecord.HoldExpiry.CHARGE;
          }
        // fall through
        default:
          throw new IllegalArgumentException(
              field + " must be HOLD_EXPIRY_CHARGE or HOLD_EXPIRY_RELEASE, got " + name);
      }
    }

    /** The hold per request on CreateKey: empty means none (0). */
    static BigDecimal holdPerRequest(String amount) {
      return amount == null || amount.isEmpty()
          ? BigDecimal.ZERO
          : Money.parse("hold_usd_per_request", amount);
    }

    /** The quota on CreateKey: empty means unlimited (0), as documented for CreateKey. */
    static BigDecimal quota(String quotaUsd) {
      return quotaUsd == null || quotaUsd.isEmpty()
          ? BigDecimal.ZERO
          : Money.parse("quota_usd", quotaUsd);
    }
  }
}
