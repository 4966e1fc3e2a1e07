package io.quotaauthority.metering;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.provider.Provider;
import java.math.BigDecimal;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Metering's counters. In Prometheus they read {@code quota_metering_unpriced_total{model}}, {@code
 * quota_metering_unmetered_total{reason}}, {@code quota_metering_charges_total{provider, outcome}},
 * {@code quota_metering_charges_lost_total{reason}}, {@code quota_metering_errors_total{phase}},
 * {@code quota_metering_unread_bodies_total{reason}}, {@code
 * quota_metering_estimated_total{provider}} and {@code quota_metering_refused_total{reason}}.
 */
final class MeteringMetrics {
  /** Model names come from clients: past this many distinct ones the tag reads "other". */
  static final int MAX_MODEL_TAGS = 100;

  /** Why a request was not charged. */
  enum Unmetered {
    MISSING_KEY_ID,
    BAD_KEY_ID,
    ERROR_STATUS,
    ENCODED_BODY,
    NO_USAGE,
    /**
     * The metering executor was saturated: the message was answered unread (see ExtProcService).
     */
    OVERLOADED,
    /**
     * A stream whose first message was response headers: an Envoy local reply (Envoy 1.37+ sends
     * our own 401/403/429/503 denials through ext_proc). Nothing reached a provider; the stream is
     * answered and ended at once.
     */
    LOCAL_REPLY;

    String tag() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  private final MeterRegistry registry;
  private final Map<String, Counter> unpriced = new ConcurrentHashMap<>();

  /** Why metering refused a request before it reached the provider (the tag of the counter). */
  static final String REFUSED_MODEL_NOT_PRICED = "model_not_priced";

  /**
   * A background response (OpenAI Responses, "background": true) for a key with a quota: its usage
   * would arrive on a later GET nobody meters.
   */
  static final String REFUSED_ENDPOINT_NOT_METERED = "endpoint_not_metered";

  /** A key with a quota whose remaining budget cannot cover the request's maximum cost. */
  static final String REFUSED_INSUFFICIENT_QUOTA = "insufficient_quota";

  /** A key with a quota whose budget could not be leased (database unreachable, lease spent). */
  static final String REFUSED_QUOTA_UNAVAILABLE = "quota_unavailable";

  /** A key with a concurrency cap whose every slot is taken by a request in flight. */
  static final String REFUSED_CONCURRENCY = "concurrency_limit_exceeded";

  /** A model outside the key's model allow-list (README "Key policies"). */
  static final String REFUSED_MODEL_NOT_ALLOWED = "model_not_allowed";

  private Counter heldCounter;
  private DistributionSummary estimateRatio;

  MeteringMetrics(MeterRegistry registry) {
    this.registry = registry;
    // At 0 from the start, so a rate or an alert on estimates has a series before the first one.
    for (Provider p : Provider.values()) {
      estimatedCounter(p);
    }
    // Registered up front, so the series reads 0 (not absent) and an alert on rate() works at once.
    refusedCounter(REFUSED_MODEL_NOT_PRICED);
    refusedCounter(REFUSED_ENDPOINT_NOT_METERED);
    refusedCounter(REFUSED_INSUFFICIENT_QUOTA);
    refusedCounter(REFUSED_QUOTA_UNAVAILABLE);
    refusedCounter(REFUSED_CONCURRENCY);
    refusedCounter(REFUSED_MODEL_NOT_ALLOWED);
    heldCounter =
        Counter.builder("quota.holds.admitted")
            .description("metered requests of keys with a quota admitted on a hold of their cost")
            .register(registry);
    estimateRatio =
        DistributionSummary.builder("quota.holds.estimate.ratio")
            .description(
                "actual cost / held maximum cost of each charged request admitted on a hold:"
                    + " at most 1 while estimates bound costs; the closer to 1, the tighter")
            .serviceLevelObjectives(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.5, 2.0)
            .register(registry);
  }

  /** A request admitted on a hold. */
  void held() {
    heldCounter.increment();
  }

  /**
   * The estimate's error for one charge admitted on a hold: actual ÷ estimate (a free estimate with
   * a paid charge is recorded as 2, past the last bucket that matters).
   */
  void estimateError(MaxCost.Estimate estimate, BigDecimal actual) {
    if (estimate == null) {
      return;
    }
    estimateRatio.record(estimate.ratio(actual).map(BigDecimal::doubleValue).orElse(2.0));
  }

  /** A response cut short before its final usage, charged an estimate (see TokenEstimate). */
  void estimated(Provider provider) {
    estimatedCounter(provider).increment();
  }

  private Counter estimatedCounter(Provider provider) {
    return Counter.builder("quota.metering.estimated")
        .description("metered responses cut short before their final usage, charged an estimate")
        .tag("provider", provider.wireName())
        .register(registry);
  }

  /** A request refused with an immediate response before Envoy sent it upstream. */
  void refused(String reason) {
    refusedCounter(reason).increment();
  }

  private Counter refusedCounter(String reason) {
    return Counter.builder("quota.metering.refused")
        .description("requests refused by metering before they reached the provider, by reason")
        .tag("reason", reason)
        .register(registry);
  }

  void unpriced(String model) {
    String tag = unpriced.containsKey(model) || unpriced.size() < MAX_MODEL_TAGS ? model : "other";
    unpriced
        .computeIfAbsent(
            tag,
            m ->
                Counter.builder("quota.metering.unpriced")
                    .description("metered responses of a model missing from the price table")
                    .tag("model", m)
                    .register(registry))
        .increment();
  }

  void unmetered(Unmetered reason) {
    Counter.builder("quota.metering.unmetered")
        .description("metered-path responses that were not charged, by reason")
        .tag("reason", reason.tag())
        .register(registry)
        .increment();
  }

  void charged(Provider provider, String outcome) {
    Counter.builder("quota.metering.charges")
        .description("usage reports from Envoy metering, by outcome")
        .tag("provider", provider.wireName())
        .tag("outcome", outcome)
        .register(registry)
        .increment();
  }

  /** Why a metered request's charge was lost for good (the request was served, never charged). */
  enum Lost {
    /** The usage could not be priced. */
    PRICE,
    /** The report broke a rule of UsageValidation (e.g. a token count past its bound). */
    INVALID,
    /** The ledger refused it for what it says (key gone, quota_used would overflow, bad data). */
    REJECTED,
    /** Its report id was charged before with another key or cost (ids are random: a bug). */
    CONFLICT,
    /** Refused for an internal reason on every attempt. */
    INTERNAL,
    /** The database stayed unreachable (or the queue full) through every attempt. */
    UNAVAILABLE;

    String tag() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  void lost(Lost reason) {
    Counter.builder("quota.metering.charges.lost")
        .description("metered charges lost for good, by reason; each is logged with its report id")
        .tag("reason", reason.tag())
        .register(registry)
        .increment();
  }

  void error(String phase) {
    Counter.builder("quota.metering.errors")
        .description("internal metering errors; the request or response passed through unchanged")
        .tag("phase", phase)
        .register(registry)
        .increment();
  }

  /** A request body metering did not read (it passed through unchanged). */
  void unreadBody(RequestBody.Unread reason) {
    Counter.builder("quota.metering.unread.bodies")
        .description(
            "request bodies passed through unread: not JSON, too deep, too long, duplicate key")
        .tag("reason", reason.tag())
        .register(registry)
        .increment();
  }
}
