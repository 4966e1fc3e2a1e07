package io.quotaauthority.keys;

import java.util.List;

/**
 * A key's optional access policies (README "Key policies"), all empty when unset: who may call (IP
 * allow-list and deny-list) and what it may ask for (model allow-list). Immutable; part of the
 * key's row and its version, so a change reaches every instance like any other admin change.
 *
 * @param ipAllow empty: any address
 * @param ipDeny empty: none refused
 * @param modelAllow empty: any model
 */
public record KeyPolicies(
    IpRanges ipAllow,
    IpRanges ipDeny,
    ModelAllowList modelAllow,
    PeriodBudget period,
    SpendWindows windows,
    RateLimits rates) {

  /** No policy at all, shared by every key that has none. */
  public static final KeyPolicies NONE =
      new KeyPolicies(
          IpRanges.NONE,
          IpRanges.NONE,
          ModelAllowList.NONE,
          PeriodBudget.NONE,
          SpendWindows.NONE,
          RateLimits.NONE);

  public KeyPolicies {
    period = period == null ? PeriodBudget.NONE : period;
    windows = windows == null ? SpendWindows.NONE : windows;
    rates = rates == null ? RateLimits.NONE : rates;
  }

  /** Without rate limits. */
  public KeyPolicies(
      IpRanges ipAllow,
      IpRanges ipDeny,
      ModelAllowList modelAllow,
      PeriodBudget period,
      SpendWindows windows) {
    this(ipAllow, ipDeny, modelAllow, period, windows, RateLimits.NONE);
  }

  /** Without spending windows. */
  public KeyPolicies(
      IpRanges ipAllow, IpRanges ipDeny, ModelAllowList modelAllow, PeriodBudget period) {
    this(ipAllow, ipDeny, modelAllow, period, SpendWindows.NONE);
  }

  /** Access lists only, no periodic budget. */
  public KeyPolicies(IpRanges ipAllow, IpRanges ipDeny, ModelAllowList modelAllow) {
    this(ipAllow, ipDeny, modelAllow, PeriodBudget.NONE);
  }

  /** The same policies with another periodic budget. */
  public KeyPolicies withPeriod(PeriodBudget p) {
    KeyPolicies out = new KeyPolicies(ipAllow, ipDeny, modelAllow, p, windows, rates);
    return out.equals(NONE) ? NONE : out;
  }

  /** The same policies with other spending windows. */
  public KeyPolicies withWindows(SpendWindows w) {
    KeyPolicies out = new KeyPolicies(ipAllow, ipDeny, modelAllow, period, w, rates);
    return out.equals(NONE) ? NONE : out;
  }

  /** The same policies with other rate limits. */
  public KeyPolicies withRates(RateLimits r) {
    KeyPolicies out = new KeyPolicies(ipAllow, ipDeny, modelAllow, period, windows, r);
    return out.equals(NONE) ? NONE : out;
  }

  /**
   * Whether Check needs the key's recent usage in memory ({@link UsageWindows}): only a key with a
   * spending window or a token rate limit does; every other key costs no tracking at all.
   */
  public boolean tracksUsage() {
    return windows.active() || rates.tokensPerMinute() > 0;
  }

  /** From stored columns (canonical entries). */
  public static KeyPolicies stored(List<String> ipAllow, List<String> ipDeny, List<String> models) {
    return stored(ipAllow, ipDeny, models, PeriodBudget.NONE);
  }

  public static KeyPolicies stored(
      List<String> ipAllow, List<String> ipDeny, List<String> models, PeriodBudget period) {
    return stored(ipAllow, ipDeny, models, period, SpendWindows.NONE, RateLimits.NONE);
  }

  public static KeyPolicies stored(
      List<String> ipAllow,
      List<String> ipDeny,
      List<String> models,
      PeriodBudget period,
      SpendWindows windows,
      RateLimits rates) {
    if (ipAllow.isEmpty()
        && ipDeny.isEmpty()
        && models.isEmpty()
        && !period.active()
        && !windows.active()
        && !rates.active()) {
      return NONE;
    }
    return new KeyPolicies(
        IpRanges.of(ipAllow),
        IpRanges.of(ipDeny),
        ModelAllowList.of(models),
        period,
        windows,
        rates);
  }

  /** Whether either IP list is set: only then does Check need the client's address. */
  public boolean restrictsAddresses() {
    return !ipAllow.isEmpty() || !ipDeny.isEmpty();
  }

  public boolean restrictsModels() {
    return !modelAllow.isEmpty();
  }

  /**
   * Whether a client at {@code address} (from {@link IpRanges#address}; null when Envoy sent none
   * Check could read) may use the key. Deny wins over allow; a key with a list refuses an unknown
   * address (fail closed).
   */
  public boolean admitsAddress(byte[] address) {
    if (!restrictsAddresses()) {
      return true;
    }
    if (address == null) {
      return false;
    }
    if (ipDeny.contains(address)) {
      return false;
    }
    return ipAllow.isEmpty() || ipAllow.contains(address);
  }

  /** Equal when the stored entries are (the compiled forms follow from them). */
  @Override
  public boolean equals(Object o) {
    return o instanceof KeyPolicies p
        && ipAllow.entries().equals(p.ipAllow.entries())
        && ipDeny.entries().equals(p.ipDeny.entries())
        && modelAllow.entries().equals(p.modelAllow.entries())
        && samePeriod(period, p.period)
        && windows.equals(p.windows)
        && rates.equals(p.rates);
  }

  /** Periods without one compare equal whatever their unused fields say. */
  private static boolean samePeriod(PeriodBudget a, PeriodBudget b) {
    return (!a.active() && !b.active()) || a.equals(b);
  }

  @Override
  public int hashCode() {
    return ipAllow.entries().hashCode() * 31 * 31
        + ipDeny.entries().hashCode() * 31
        + modelAllow.entries().hashCode()
        + (period.active() ? period.hashCode() : 0)
        + windows.hashCode() * 7
        + rates.hashCode() * 11;
  }
}
