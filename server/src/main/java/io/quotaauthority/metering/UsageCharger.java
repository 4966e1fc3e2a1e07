package io.quotaauthority.metering;

import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.keys.Money;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderError;
import io.quotaauthority.usage.BudgetLeases;
import io.quotaauthority.usage.Retries;
import io.quotaauthority.usage.UsageLedger;
import io.quotaauthority.usage.UsageOutcome;
import io.quotaauthority.usage.UsageReport;
import io.quotaauthority.usage.UsageSink;
import io.quotaauthority.usage.UsageValidation;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Prices what a metered response used and hands it to the {@link UsageSink}: one report per request
 * under the report id its metering stream made, so the sink charges it exactly once however often
 * it is retried.
 *
 * <p>The unpriced rule lives here. A model missing from the price table is, when the operator set a
 * flat unpriced rate, charged that rate for every token, whichever the key; when no rate is set
 * (the default), a key with a quota is refused before the provider is called ({@link #refusal}) and
 * an unlimited key's usage is recorded at 0. Either way it is counted in
 * quota_metering_unpriced_total{model} and logged once per model.
 *
 * <p>Service tiers: OpenAI's {@code priority} is charged at {@link #PRIORITY_FACTOR} times the row,
 * at least the priority price OpenAI publishes for every model it offers it on; flex and batch are
 * charged at the standard rate (they cost less); anything else at the standard rate.
 */
public final class UsageCharger {
  private static final Logger log = LoggerFactory.getLogger(UsageCharger.class);

  /**
   * Waits between retries when the sink did not take the report (UsageBatcher's queue was full: it
   * asks the caller to hold the report and try again; or the database stayed unreachable) or
   * refused it for an internal reason ({@link UsageOutcome#retryable()}): 7 attempts over about 30
   * s, then the charge is counted lost.
   */
  static final List<Duration> DEFAULT_RETRY_DELAYS =
      List.of(
          Duration.ofMillis(500),
          Duration.ofSeconds(1),
          Duration.ofSeconds(2),
          Duration.ofSeconds(4),
          Duration.ofSeconds(8),
          Duration.ofSeconds(15));

  /** A client could send anything as "model"; the ledger keeps as much as a reporter may send. */
  static final int MAX_MODEL_CHARS = UsageValidation.MAX_NAME;

  private static final int MAX_LOGGED_UNPRICED = 1000;

  private final UsageSink sink;
  private final Supplier<PriceTable> prices;

  /**
   * OpenAI priority processing costs 1.7-2x standard (https://openai.com/api-priority-processing/).
   */
  static final BigDecimal PRIORITY_FACTOR = BigDecimal.valueOf(2);

  /** The flat rate for unpriced models, or null when none is set (refuse limited keys). */
  private final ModelPrice unpricedPrice;

  private final Clock clock;
  private final MeteringMetrics metrics;
  private final List<Duration> retryDelays;
  private final Retries retries;
  private final Set<String> loggedUnpriced = ConcurrentHashMap.newKeySet();

  /** Where holds are taken; null when QUOTA_HOLDS is off (admitted without a hold). */
  private final BudgetLeases holds;

  /** Where concurrency slots are taken; null when QUOTA_HOLDS is off (no cap enforced). */
  private final BudgetLeases slots;

  /**
   * @param sink where reports go (the usage pipeline)
   * @param prices the price table in force, e.g. a {@link ReloadingPriceTable}
   * @param unpricedUsdPerMtok USD per million tokens for a model the table lacks, charged to every
   *     key; null when the operator set none: keys with a quota are refused such models, unlimited
   *     keys are recorded at 0
   * @param registry where the metering counters are registered
   * @param clock gives each report's occurredAt
   * @param retries where a charge the sink did not take waits for its next attempt: owned by the
   *     composition root, which runs what still waits at shutdown before the sink closes
   */
  public UsageCharger(
      UsageSink sink,
      Supplier<PriceTable> prices,
      BigDecimal unpricedUsdPerMtok,
      MeterRegistry registry,
      Clock clock,
      Retries retries) {
    this(
        sink,
        prices,
        unpricedUsdPerMtok,
        registry,
        clock,
        retries,
        null,
        null,
        DEFAULT_RETRY_DELAYS);
  }

  /**
   * As above, admitting the metered requests of keys with a quota only on a hold of their maximum
   * cost taken from {@code holds} ({@link #admit}), and those of keys with a concurrency cap only
   * on a slot taken from {@code slots} ({@link #admitSlot}); null admits them without.
   */
  public UsageCharger(
      UsageSink sink,
      Supplier<PriceTable> prices,
      BigDecimal unpricedUsdPerMtok,
      MeterRegistry registry,
      Clock clock,
      Retries retries,
      BudgetLeases holds,
      BudgetLeases slots) {
    this(
        sink,
        prices,
        unpricedUsdPerMtok,
        registry,
        clock,
        retries,
        holds,
        slots,
        DEFAULT_RETRY_DELAYS);
  }

  UsageCharger(
      UsageSink sink,
      Supplier<PriceTable> prices,
      BigDecimal unpricedUsdPerMtok,
      MeterRegistry registry,
      Clock clock,
      Retries retries,
      BudgetLeases holds,
      BudgetLeases slots,
      List<Duration> retryDelays) {
    this.holds = holds;
    this.slots = slots;
    this.retries = Objects.requireNonNull(retries);
    this.sink = Objects.requireNonNull(sink);
    this.prices = Objects.requireNonNull(prices);
    if (unpricedUsdPerMtok != null && unpricedUsdPerMtok.signum() < 0) {
      throw new IllegalArgumentException("unpriced model price must not be negative");
    }
    this.unpricedPrice = unpricedUsdPerMtok == null ? null : ModelPrice.flat(unpricedUsdPerMtok);
    this.clock = Objects.requireNonNull(clock);
    this.metrics = new MeteringMetrics(registry);
    this.retryDelays = List.copyOf(retryDelays);
  }

  MeteringMetrics metrics() {
    return metrics;
  }

  /**
   * Whether a request must be refused before it reaches the provider, and with which error: only a
   * key with a quota, only when no unpriced rate is set, and only for a model the table cannot
   * price (or that the request does not name: {@code model} null, {@code why} says why).
   *
   * @param model the model the request names, or null when it names none that could be read
   * @param why when model is null, what kept it from being read (for the client's error)
   */
  Optional<ProviderError> refusal(String model, boolean keyLimited, String why) {
    if (!keyLimited || unpricedPrice != null) {
      return Optional.empty();
    }
    if (model == null) {
      return Optional.of(ProviderError.modelNotNamed(why));
    }
    // The name as report() will price it: the same sanitizing, the same table.
    String name = UsageValidation.sanitizeName(model);
    return prices.get().find(name).isPresent()
        ? Optional.empty()
        : Optional.of(ProviderError.modelNotPriced(name));
  }

  /**
   * The model a response is charged as: the one the response names when the table prices it (an
   * alias or "-latest" request is answered by a dated model, which is what the provider bills),
   * else the one the request named, else whatever the response named ("unknown" if nothing).
   */
  String chargedModel(String requested, Optional<String> reported) {
    if (reported.isPresent()
        && prices.get().find(UsageValidation.sanitizeName(reported.get())).isPresent()) {
      return reported.get();
    }
    return requested != null ? requested : reported.orElse("unknown");
  }

  /**
   * The report for this usage, priced now. The model name is made to pass UsageValidation's name
   * rule (unprintable characters replaced, cut to 128 characters): the request was served, so its
   * charge must not be lost over the name its client gave.
   *
   * @throws IllegalArgumentException naming the field when the report breaks another rule (a token
   *     count past {@link UsageValidation#MAX_TOKENS}, a cost past the ledger's maximum)
   */
  UsageReport report(
      long keyId,
      String reportId,
      String requestId,
      Provider provider,
      String model,
      TokenUsage usage) {
    return report(new Metered(keyId, reportId, requestId, provider, model, null, usage, false));
  }

  /** As above, for one metered response (its tier, and whether its usage is an estimate). */
  UsageReport report(Metered m) {
    Provider provider = m.provider();
    TokenUsage usage = m.usage();
    String serviceTier = m.serviceTier();
    String name = UsageValidation.sanitizeName(m.model());
    BigDecimal cost = priceFor(name, provider, serviceTier, true).costOf(usage);
    UsageReport report =
        new UsageReport(
            m.reportId(),
            m.keyId(),
            cost,
            name,
            provider.wireName(),
            usage.inputTokens(),
            usage.outputTokens(),
            usage.cachedInputTokens(),
            usage.cacheWriteTokens(),
            clock.instant(),
            m.requestId(),
            m.estimated());
    // The same rules as a reported usage: a report the ledger would refuse never reaches a group.
    UsageValidation.check(report);
    return report;
  }

  /**
   * What a model is charged at, by the one rule both the charge and the hold follow: the table's
   * row (OpenAI priority at {@link #PRIORITY_FACTOR} times it), or for a model the table lacks the
   * unpriced rate (0 when none is set; counted and logged once per model).
   *
   * @param name the model's name, already sanitized
   * @param counted count (and log) an unpriced model: once per request, at its charge
   */
  private ModelPrice priceFor(String name, Provider provider, String serviceTier, boolean counted) {
    ModelPrice price = prices.get().find(name).orElse(null);
    if (price == null) {
      ModelPrice flat = unpricedPrice == null ? ModelPrice.flat(BigDecimal.ZERO) : unpricedPrice;
      if (!counted) {
        return flat;
      }
      metrics.unpriced(name);
      if (loggedUnpriced.size() < MAX_LOGGED_UNPRICED && loggedUnpriced.add(name)) {
        log.warn(
            "model '{}' ({}) is not in the price table; charging {} USD per million tokens"
                + " (QUOTA_UNPRICED_MODEL_USD_PER_MTOK{}); logged once per model",
            name,
            provider.wireName(),
            flat.inputPerMtok().toPlainString(),
            unpricedPrice == null ? " unset: keys with a quota are refused it" : "");
      }
      price = flat;
    } else if (provider == Provider.OPENAI && "priority".equals(serviceTier)) {
      // Priority costs more than standard and the table has no column for it: a bound that is
      // at least every published priority price, so a limited key is never undercharged.
      price = price.times(PRIORITY_FACTOR);
    }
    return price;
  }

  /**
   * What admission decided for a metered request of a key with a quota (README "Holds").
   *
   * @param hold the hold it was admitted on; null when refused, or when holds are off
   * @param estimate its maximum cost; null when holds are off
   * @param refusal the provider-shaped error it is refused with, or null when admitted
   */
  record Admission(BudgetLeases.Hold hold, MaxCost.Estimate estimate, ProviderError refusal) {
    /** Admitted without a hold: QUOTA_HOLDS is off. */
    static final Admission UNHELD = new Admission(null, null, null);

    boolean refused() {
      return refusal != null;
    }
  }

  /**
   * Admits a metered request of a key with a quota only on a hold of its maximum cost ({@link
   * MaxCost}, priced as its charge will be): refused with a 429 {@code insufficient_quota} naming
   * both amounts when what remains of the key's budget cannot cover it, and with a 503 when the
   * budget cannot be leased at all (the database is unreachable and this instance's lease is
   * spent): never admitted unheld. Costs no round trip while this instance's lease of the key
   * covers the hold. The caller releases the hold: through {@link #charge(Metered, Admission)}, or
   * {@link #release} when the request ends without a charge.
   */
  CompletableFuture<Admission> admit(
      long keyId,
      Provider provider,
      String model,
      String serviceTier,
      long promptTokens,
      long mediaTokens,
      OptionalLong outputLimit,
      int choices) {
    if (holds == null) {
      return CompletableFuture.completedFuture(Admission.UNHELD);
    }
    String name = UsageValidation.sanitizeName(model);
    MaxCost.Estimate estimate =
        MaxCost.of(
            priceFor(name, provider, serviceTier, false),
            promptTokens,
            mediaTokens,
            outputLimit,
            choices);
    return decided(
        holds.holdSoon(keyId, estimate.usd()),
        keyId,
        "its budget",
        estimate,
        MeteringMetrics.REFUSED_INSUFFICIENT_QUOTA,
        // Both to 8 decimals, the ledger's scale: the cost rounded up, the remaining down.
        () ->
            ProviderError.holdRefused(
                estimate.usd().setScale(Money.SCALE, RoundingMode.UP).toPlainString(),
                holds.available(keyId).setScale(Money.SCALE, RoundingMode.DOWN).toPlainString()));
  }

  /**
   * The admission a hold's outcome makes, by one rule for budget and slots: a store that could not
   * be asked refuses 503 (counted, warned), a hold not granted refuses with {@code whenRefused}
   * (counted as {@code refusedReason}), a hold granted admits.
   *
   * @param what what was to be leased, for the warning ("its budget", "its slots")
   * @param estimate the request's maximum cost, or null for a slot
   */
  private CompletableFuture<Admission> decided(
      CompletableFuture<Optional<BudgetLeases.Hold>> hold,
      long keyId,
      String what,
      MaxCost.Estimate estimate,
      String refusedReason,
      Supplier<ProviderError> whenRefused) {
    return hold.handle(
        (granted, error) -> {
          if (error != null) {
            metrics.refused(MeteringMetrics.REFUSED_QUOTA_UNAVAILABLE);
            Throwable cause = error.getCause() != null ? error.getCause() : error;
            log.warn(
                "no hold for key {}: {} could not be leased ({}); refused with 503",
                keyId,
                what,
                cause.toString());
            return new Admission(null, estimate, ProviderError.holdUnavailable());
          }
          if (granted.isEmpty()) {
            metrics.refused(refusedReason);
            return new Admission(null, estimate, whenRefused.get());
          }
          if (estimate != null) {
            metrics.held();
          }
          return new Admission(granted.get(), estimate, null);
        });
  }

  /**
   * A concurrency slot for a metered request of a key with a cap, or the refusal: 429 {@code
   * concurrency_limit_exceeded} with retry-after when every slot of the key is taken across the
   * instances, 503 when slots cannot be leased (database away). Null hold, no refusal: slots are
   * off. Like {@link #admit}, completes at once unless a slot must be leased. The caller gives the
   * slot back with {@link #releaseSlot} when the request's stream ends.
   *
   * @param cap the key's max_concurrent_requests as Check stated it (at least 1)
   */
  CompletableFuture<Admission> admitSlot(long keyId, int cap) {
    if (slots == null) {
      return CompletableFuture.completedFuture(Admission.UNHELD);
    }
    return decided(
        slots.holdSoon(keyId, BigDecimal.ONE),
        keyId,
        "its slots",
        null,
        MeteringMetrics.REFUSED_CONCURRENCY,
        () -> ProviderError.concurrencyLimitExceeded(cap));
  }

  /** Gives back a request's concurrency slot, once its stream ended. Safe on any admission. */
  void releaseSlot(Admission slot) {
    if (slot != null && slot.hold() != null) {
      slots.release(slot.hold(), BigDecimal.ZERO);
    }
  }

  /** Releases an admitted request's hold when it ends without a charge. Safe on any admission. */
  void release(Admission admission) {
    if (admission != null && admission.hold() != null) {
      holds.release(admission.hold(), BigDecimal.ZERO);
    }
  }

  /**
   * Prices and submits the usage. Never throws; the stage completes with the sink's outcome, or
   * exceptionally if the charge could not be made. A charge lost for good (invalid, rejected,
   * refused or unreachable on every attempt) is counted in quota_metering_charges_lost_total and
   * logged at ERROR with its report id, key id and cost.
   *
   * @param reportId the idempotency key, made by the authority (one per metering stream)
   * @param requestId the request's x-request-id for the ledger, or null
   */
  public CompletionStage<UsageOutcome> charge(
      long keyId,
      String reportId,
      String requestId,
      Provider provider,
      String model,
      TokenUsage usage) {
    return charge(new Metered(keyId, reportId, requestId, provider, model, null, usage, false));
  }

  /**
   * As {@link #charge(long, String, String, Provider, String, TokenUsage)}, for one metered
   * response: priced for the service tier it states, its usage marked when it is an estimate.
   */
  public CompletionStage<UsageOutcome> charge(Metered m) {
    return charge(m, null);
  }

  /**
   * As {@link #charge(Metered)}, for a request admitted on a hold: the charge draws off the hold's
   * lease in its own transaction, and the hold is released with what it drew once the outcome is
   * final (with nothing when the charge was lost). The estimate's error, actual ÷ estimate, is
   * recorded for each charge accepted.
   *
   * @param admission what {@link #admit} gave the request, or null
   */
  CompletionStage<UsageOutcome> charge(Metered m, Admission admission) {
    long keyId = m.keyId();
    String reportId = m.reportId();
    Provider provider = m.provider();
    CompletableFuture<UsageOutcome> done = new CompletableFuture<>();
    BudgetLeases.Hold hold = admission == null ? null : admission.hold();
    UsageLedger.HeldBy held = hold == null ? null : holds.heldBy(hold);
    UsageReport report;
    try {
      report = report(m);
    } catch (IllegalArgumentException e) {
      metrics.charged(provider, "rejected");
      metrics.lost(MeteringMetrics.Lost.INVALID);
      log.error(
          "metered charge lost: report {} for key {} breaks a usage rule: {}",
          reportId,
          keyId,
          e.getMessage());
      release(admission);
      done.completeExceptionally(e);
      return done;
    } catch (RuntimeException e) {
      metrics.error("price");
      metrics.lost(MeteringMetrics.Lost.PRICE);
      log.error("metered charge lost: could not price usage of report {}", reportId, e);
      release(admission);
      done.completeExceptionally(e);
      return done;
    }
    if (hold != null) {
      // Released on every final outcome, committed or lost, and only then.
      done.whenComplete(
          (outcome, error) -> {
            holds.release(hold, outcome == null ? BigDecimal.ZERO : outcome.leaseDrawn());
            if (outcome != null && outcome.result() == UsageOutcome.Result.ACCEPTED) {
              metrics.estimateError(admission.estimate(), report.cost());
            }
          });
    }
    attempt(report, held, provider, 0, done);
    return done;
  }

  private void attempt(
      UsageReport report,
      UsageLedger.HeldBy held,
      Provider provider,
      int attempt,
      CompletableFuture<UsageOutcome> done) {
    CompletionStage<UsageOutcome> stage;
    try {
      stage = sink.submit(report, held);
    } catch (RuntimeException e) {
      // A synchronous refusal is a bug or a bad report, not an outage: retrying cannot help.
      metrics.charged(provider, "failed");
      metrics.lost(MeteringMetrics.Lost.INTERNAL);
      log.error(
          "metered charge lost: usage sink refused report {} for key {}",
          report.reportId(),
          report.keyId(),
          e);
      done.completeExceptionally(e);
      return;
    }
    stage.whenComplete(
        (outcome, error) -> {
          // Not committed (database unreachable, queue full) or refused for an internal reason: the
          // same report id again cannot charge twice, so it is worth another try.
          boolean internal =
              error == null
                  && outcome.result() == UsageOutcome.Result.REJECTED
                  && outcome.retryable();
          if (error == null && !internal) {
            recordOutcome(report, provider, outcome);
            done.complete(outcome);
          } else if (attempt < retryDelays.size()) {
            log.warn(
                "usage report {} not charged (attempt {}), retrying: {}",
                report.reportId(),
                attempt + 1,
                internal ? outcome.message() : error.toString());
            long delay = retryDelays.get(attempt).toMillis();
            try {
              retries.schedule(
                  () -> attempt(report, held, provider, attempt + 1, done),
                  delay,
                  TimeUnit.MILLISECONDS);
            } catch (RejectedExecutionException shuttingDown) {
              // Past the shutdown deadline nothing waits any more: lost, and said so.
              lost(
                  report,
                  provider,
                  "failed",
                  MeteringMetrics.Lost.UNAVAILABLE,
                  "not committed before shutdown");
              done.completeExceptionally(shuttingDown);
            }
          } else if (internal) {
            lost(
                report,
                provider,
                "rejected",
                MeteringMetrics.Lost.INTERNAL,
                "refused after " + (attempt + 1) + " attempts: " + outcome.message());
            done.complete(outcome);
          } else {
            lost(
                report,
                provider,
                "failed",
                MeteringMetrics.Lost.UNAVAILABLE,
                "not committed after " + (attempt + 1) + " attempts: " + error);
            done.completeExceptionally(error);
          }
        });
  }

  /** A charge lost for good: counted with its reason and logged at ERROR with its ids and cost. */
  private void lost(
      UsageReport report,
      Provider provider,
      String outcome,
      MeteringMetrics.Lost reason,
      String why) {
    metrics.charged(provider, outcome);
    metrics.lost(reason);
    log.error(
        "metered charge lost: usage report {} for key {} ({} USD) {}",
        report.reportId(),
        report.keyId(),
        report.cost().toPlainString(),
        why);
  }

  private void recordOutcome(UsageReport report, Provider provider, UsageOutcome outcome) {
    switch (outcome.result()) {
      case ACCEPTED -> {
        metrics.charged(provider, "accepted");
        log.debug(
            "charged report {} key {} {} USD",
            report.reportId(),
            report.keyId(),
            report.cost().toPlainString());
      }
      case DUPLICATE -> {
        metrics.charged(provider, "duplicate");
        log.debug("report {} was already charged", report.reportId());
      }
      case REJECTED -> {
        // Final: the ledger would refuse it again (key gone, quota_used would overflow, bad data).
        metrics.charged(provider, "rejected");
        metrics.lost(MeteringMetrics.Lost.REJECTED);
        log.error(
            "metered charge lost: usage report {} for key {} ({} USD) rejected: {}",
            report.reportId(),
            report.keyId(),
            report.cost().toPlainString(),
            outcome.message());
      }
      case CONFLICT -> {
        // Metering makes a fresh random report id per stream, so this means an id was reused.
        metrics.charged(provider, "conflict");
        metrics.lost(MeteringMetrics.Lost.CONFLICT);
        log.error(
            "metered charge lost: usage report {} for key {} conflicts: {}",
            report.reportId(),
            report.keyId(),
            outcome.message());
      }
    }
  }
}
