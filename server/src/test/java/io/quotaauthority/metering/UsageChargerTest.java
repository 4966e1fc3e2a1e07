package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderError;
import io.quotaauthority.usage.UsageOutcome;
import io.quotaauthority.usage.UsageReport;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.slf4j.LoggerFactory;

class UsageChargerTest {
  private static final Clock CLOCK =
      Clock.fixed(Instant.parse("2025-06-01T12:00:00Z"), ZoneOffset.UTC);
  private final RecordingUsageSink sink = new RecordingUsageSink();
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();

  /**
   * @param unpriced the operator's unpriced rate, or null for none (the default)
   */
  private UsageCharger charger(String unpriced) {
    return new UsageCharger(
        sink,
        Fixtures::testPrices,
        unpriced == null ? null : new BigDecimal(unpriced),
        registry,
        CLOCK,
        Fixtures.RETRIES,
        null,
        null,
        List.of(Duration.ZERO, Duration.ZERO));
  }

  @ParameterizedTest(name = "{0} limited={1} rate={2}")
  @CsvSource(
      nullValues = "null",
      value = {
        // model,            limited, rate, refused
        "gpt-4o,             true,    null, false",
        "gpt-4o-2024-08-06,  true,    null, false",
        "gpt-5.6-mini,       true,    null, true", // newer family than gpt-5.1*: unpriced
        "gpt-5.6-mini,       false,   null, false", // unlimited keys always pass
        "gpt-5.6-mini,       true,    0,    false", // the operator set a rate: nothing is refused
        "gpt-5.6-mini,       true,    2.5,  false",
        "null,               true,    null, true", // no readable model: fail closed
        "null,               false,   null, false",
        "null,               true,    1,    false",
      })
  void refusal_keyAndModelAndRate_refusesOnlyLimitedKeysWithoutARate(
      String model, boolean limited, String rate, boolean refused) {
    String why = "the request body is not one JSON object";
    Optional<ProviderError> r = charger(rate).refusal(model, limited, why);
    assertThat(r.isPresent()).as("refused").isEqualTo(refused);
    r.ifPresent(
        e -> {
          assertThat(e.http()).isEqualTo(403);
          assertThat(e.code()).isEqualTo("model_not_priced");
          assertThat(e.message()).contains(model == null ? why : "'" + model + "'");
        });
  }

  @ParameterizedTest
  @CsvSource(
      nullValues = "null",
      value = {
        // requested,          reported,                charged as
        "gpt-4o,               gpt-4o-2024-08-06,       gpt-4o-2024-08-06", // the dated model
        "gemini-2.5-flash,     gemini-9-flash,          gemini-2.5-flash", // reported unpriced
        "gpt-4o,               null,                    gpt-4o",
        "null,                 o3-2025-04-16,           o3-2025-04-16",
        "null,                 unknown-model,           unknown-model",
        "null,                 null,                    unknown",
        "llama-3,              also-unpriced,           llama-3",
      })
  void chargedModel_responseNamesAModel_pricedResponseModelWins(
      String requested, String reported, String expected) {
    assertThat(charger("0").chargedModel(requested, Optional.ofNullable(reported)))
        .isEqualTo(expected);
  }

  @ParameterizedTest
  @CsvSource(
      nullValues = "null",
      value = {
        // provider, tier,     cost: 1000 in x 2.50 + 1000 out x 10.00 = 12.5 per million
        "OPENAI,     null,     0.01250000",
        "OPENAI,     default,  0.01250000",
        "OPENAI,     flex,     0.01250000", // cheaper than standard: charged standard
        "OPENAI,     priority, 0.02500000", // twice the row: at least the published priority price
        "ANTHROPIC,  priority, 0.01250000", // committed capacity, billed outside token prices
      })
  void report_serviceTier_priorityChargedAtTwiceTheRow(
      Provider provider, String tier, String cost) {
    assertThat(
            charger(null)
                .report(
                    new Metered(
                        1,
                        "m-t",
                        null,
                        provider,
                        "gpt-4o",
                        tier,
                        new TokenUsage(1000, 1000, 0, 0),
                        false))
                .cost())
        .isEqualTo(new BigDecimal(cost));
  }

  @Test
  void report_unpricedModelWithoutRate_recordsTokensAtZeroAndCounts() {
    UsageReport r =
        charger(null)
            .report(
                1, "m-z", null, Provider.OPENAI, "gpt-5.6-mini", new TokenUsage(1000, 3000, 0, 0));
    assertThat(r.cost()).isEqualByComparingTo("0");
    assertThat(r.outputTokens()).isEqualTo(3000);
    assertThat(
            registry.get("quota.metering.unpriced").tag("model", "gpt-5.6-mini").counter().count())
        .isEqualTo(1.0);
  }

  @Test
  void new_anyCharger_registersTheRefusalCounterAtZero() {
    charger(null);
    assertThat(
            registry
                .get("quota.metering.refused")
                .tag("reason", "model_not_priced")
                .counter()
                .count())
        .isZero();
  }

  @Test
  void charge_pricedModel_submitsExactReport() throws Exception {
    UsageOutcome outcome =
        charger("0")
            .charge(42, "m-1", "req-1", Provider.OPENAI, "gpt-4o", new TokenUsage(86, 300, 1920, 0))
            .toCompletableFuture()
            .get(5, TimeUnit.SECONDS);
    assertThat(outcome.result()).isEqualTo(UsageOutcome.Result.ACCEPTED);
    assertThat(sink.charged())
        .containsExactly(
            new UsageReport(
                "m-1",
                42,
                new BigDecimal("0.00561500"),
                "gpt-4o",
                "openai",
                86,
                300,
                1920,
                0,
                CLOCK.instant(),
                "req-1"));
  }

  @Test
  void charge_sameReportIdTwice_isDuplicateTheSecondTime() throws Exception {
    UsageCharger c = charger("0");
    TokenUsage t = new TokenUsage(1, 1, 0, 0);
    c.charge(1, "same", null, Provider.ANTHROPIC, "claude-haiku-4-5", t)
        .toCompletableFuture()
        .get();
    UsageOutcome second =
        c.charge(1, "same", null, Provider.ANTHROPIC, "claude-haiku-4-5", t)
            .toCompletableFuture()
            .get();
    assertThat(second.result()).isEqualTo(UsageOutcome.Result.DUPLICATE);
    assertThat(sink.charged()).hasSize(1);
    assertThat(registry.get("quota.metering.charges").tag("outcome", "duplicate").counter().count())
        .isEqualTo(1.0);
  }

  @Test
  void charge_unpricedModelWithDefaultPrice_chargesFlatRateAndCounts() throws Exception {
    charger("0.5")
        .charge(7, "r", null, Provider.OPENAI, "mystery-model", new TokenUsage(1000, 3000, 0, 0))
        .toCompletableFuture()
        .get();
    // 4000 tokens x 0.5 / 1e6
    assertThat(sink.charged().get(0).cost()).isEqualTo(new BigDecimal("0.00200000"));
    assertThat(
            registry.get("quota.metering.unpriced").tag("model", "mystery-model").counter().count())
        .isEqualTo(1.0);
  }

  @Test
  void charge_unpricedModelWithZeroPrice_recordsTokensAtNoCost() throws Exception {
    charger("0")
        .charge(7, "r", null, Provider.GEMINI, "gemini-9-ultra", new TokenUsage(10, 20, 0, 0))
        .toCompletableFuture()
        .get();
    UsageReport r = sink.charged().get(0);
    assertThat(r.cost()).isEqualByComparingTo("0");
    assertThat(r.inputTokens()).isEqualTo(10);
    assertThat(
            registry
                .get("quota.metering.unpriced")
                .tag("model", "gemini-9-ultra")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @Test
  void unpricedCounter_inPrometheus_isQuotaMeteringUnpricedTotal() throws Exception {
    PrometheusMeterRegistry prometheus = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    new UsageCharger(
            sink, Fixtures::testPrices, BigDecimal.ZERO, prometheus, CLOCK, Fixtures.RETRIES)
        .charge(1, "r", null, Provider.OPENAI, "nope", new TokenUsage(1, 1, 0, 0))
        .toCompletableFuture()
        .get();
    assertThat(prometheus.scrape()).contains("quota_metering_unpriced_total{model=\"nope\"} 1.0");
  }

  @Test
  void charge_manyDistinctUnpricedModels_boundsTagValues() throws Exception {
    UsageCharger c = charger("0");
    for (int i = 0; i < MeteringMetrics.MAX_MODEL_TAGS + 20; i++) {
      c.charge(1, "r" + i, null, Provider.OPENAI, "junk-" + i, new TokenUsage(1, 0, 0, 0))
          .toCompletableFuture()
          .get();
    }
    assertThat(registry.find("quota.metering.unpriced").counters())
        .hasSize(MeteringMetrics.MAX_MODEL_TAGS + 1);
    assertThat(registry.get("quota.metering.unpriced").tag("model", "other").counter().count())
        .isEqualTo(20.0);
  }

  @Test
  void charge_databaseUnreachableOnce_retriesWithSameReportId() throws Exception {
    sink.failNext(1);
    UsageOutcome outcome =
        charger("0")
            .charge(3, "retry-me", null, Provider.OPENAI, "gpt-4o", new TokenUsage(1, 1, 0, 0))
            .toCompletableFuture()
            .get(5, TimeUnit.SECONDS);
    assertThat(outcome.result()).isEqualTo(UsageOutcome.Result.ACCEPTED);
    assertThat(sink.submitted())
        .extracting(UsageReport::reportId)
        .containsExactly("retry-me", "retry-me");
  }

  @Test
  void charge_databaseUnreachableEveryTime_givesUpAfterRetries() {
    sink.failNext(10);
    var stage =
        charger("0")
            .charge(3, "lost", null, Provider.OPENAI, "gpt-4o", new TokenUsage(1, 1, 0, 0))
            .toCompletableFuture();
    assertThat(stage).failsWithin(Duration.ofSeconds(5));
    assertThat(sink.submitted()).hasSize(3);
    assertThat(registry.get("quota.metering.charges").tag("outcome", "failed").counter().count())
        .isEqualTo(1.0);
  }

  @Test
  void charge_refusedForAnInternalReasonOnce_retriedAndChargedOnce() throws Exception {
    sink.refuseNext(1);
    UsageOutcome outcome =
        charger("0")
            .charge(3, "internal-once", null, Provider.OPENAI, "gpt-4o", new TokenUsage(1, 1, 0, 0))
            .toCompletableFuture()
            .get(5, TimeUnit.SECONDS);
    assertThat(outcome.result()).isEqualTo(UsageOutcome.Result.ACCEPTED);
    assertThat(sink.submitted())
        .extracting(UsageReport::reportId)
        .containsExactly("internal-once", "internal-once");
    assertThat(sink.charged()).hasSize(1);
    assertThat(registry.find("quota.metering.charges.lost").counters()).isEmpty();
    assertThat(registry.get("quota.metering.charges").tag("outcome", "accepted").counter().count())
        .isEqualTo(1.0);
  }

  @Test
  void charge_refusedForAnInternalReasonEveryTime_countedLostWithReasonAndLogged()
      throws Exception {
    sink.refuseNext(10);
    ch.qos.logback.classic.Logger logger =
        (ch.qos.logback.classic.Logger) LoggerFactory.getLogger(UsageCharger.class);
    ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> logs =
        new ch.qos.logback.core.read.ListAppender<>();
    logs.start();
    logger.addAppender(logs);
    UsageOutcome outcome;
    try {
      outcome =
          charger("0")
              .charge(
                  3, "internal-always", null, Provider.OPENAI, "gpt-4o", new TokenUsage(1, 1, 0, 0))
              .toCompletableFuture()
              .get(5, TimeUnit.SECONDS);
    } finally {
      logger.detachAppender(logs);
    }
    assertThat(outcome.result()).isEqualTo(UsageOutcome.Result.REJECTED);
    // One attempt and the two retries the test charger allows.
    assertThat(sink.submitted()).hasSize(3);
    assertThat(sink.charged()).isEmpty();
    assertThat(
            registry.get("quota.metering.charges.lost").tag("reason", "internal").counter().count())
        .isEqualTo(1.0);
    assertThat(logs.list)
        .anySatisfy(
            e -> {
              assertThat(e.getLevel()).isEqualTo(ch.qos.logback.classic.Level.ERROR);
              assertThat(e.getFormattedMessage()).contains("lost").contains("internal-always");
            });
  }

  @Test
  void charge_databaseUnreachableEveryTime_countedLostUnavailable() {
    sink.failNext(10);
    var stage =
        charger("0")
            .charge(3, "lost-2", null, Provider.OPENAI, "gpt-4o", new TokenUsage(1, 1, 0, 0))
            .toCompletableFuture();
    assertThat(stage).failsWithin(Duration.ofSeconds(5));
    assertThat(
            registry
                .get("quota.metering.charges.lost")
                .tag("reason", "unavailable")
                .counter()
                .count())
        .isEqualTo(1.0);
  }

  @Test
  void charge_eighteenDigitTokenCount_neverSubmittedCountedLostInvalidNamingTheField() {
    var stage =
        charger("0")
            .charge(
                3,
                "huge",
                null,
                Provider.OPENAI,
                "gpt-4o",
                new TokenUsage(123_456_789_012_345_678L, 1, 0, 0))
            .toCompletableFuture();
    assertThat(stage)
        .failsWithin(Duration.ofSeconds(5))
        .withThrowableThat()
        .havingRootCause()
        .withMessageStartingWith("input_tokens must be at most 1000000000000");
    assertThat(sink.submitted()).isEmpty();
    assertThat(
            registry.get("quota.metering.charges.lost").tag("reason", "invalid").counter().count())
        .isEqualTo(1.0);
  }

  @Test
  void charge_modelWithControlCharacters_chargedUnderASanitizedName() throws Exception {
    charger("0")
        .charge(3, "nul-model", null, Provider.OPENAI, "gpt-4o\u0000\n", new TokenUsage(1, 1, 0, 0))
        .toCompletableFuture()
        .get(5, TimeUnit.SECONDS);
    assertThat(sink.charged())
        .singleElement()
        .satisfies(r -> assertThat(r.model()).isEqualTo("gpt-4o\uFFFD\uFFFD"));
  }

  @Test
  void report_longModelName_isCut() {
    UsageReport r =
        charger("0")
            .report(1, "r", null, Provider.OPENAI, "m".repeat(500), new TokenUsage(1, 1, 0, 0));
    assertThat(r.model()).hasSize(UsageCharger.MAX_MODEL_CHARS);
  }
}
