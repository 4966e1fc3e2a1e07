package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.time.Instant;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The one set of rules every charged report meets (usage stream, metering, batcher). */
class UsageValidationTest {
  private static final Instant NOW = Instant.parse("2025-06-01T12:00:00Z");

  private record R(
      String reportId,
      long keyId,
      BigDecimal cost,
      String model,
      String provider,
      long in,
      long out,
      long cached,
      long write) {
    UsageReport build() {
      return new UsageReport(reportId, keyId, cost, model, provider, in, out, cached, write, NOW);
    }
  }

  private static final R GOOD =
      new R("req-1", 7, new BigDecimal("0.5"), "gpt-4o", "openai", 1, 2, 3, 4);

  static Stream<Arguments> bad() {
    return Stream.of(
        Arguments.of("model", (UnaryOperator<R>) r -> with(r, "model", "gpt\u00004o")),
        Arguments.of("model", (UnaryOperator<R>) r -> with(r, "model", "line\nbreak")),
        Arguments.of("model", (UnaryOperator<R>) r -> with(r, "model", "c1\u0085control")),
        Arguments.of("model", (UnaryOperator<R>) r -> with(r, "model", "bidi\u202Eoverride")),
        Arguments.of("model", (UnaryOperator<R>) r -> with(r, "model", "lone\uD800surrogate")),
        Arguments.of("model", (UnaryOperator<R>) r -> with(r, "model", "m".repeat(129))),
        Arguments.of("provider", (UnaryOperator<R>) r -> with(r, "provider", "open\u0000ai")),
        Arguments.of("report_id", (UnaryOperator<R>) r -> with(r, "reportId", "")),
        Arguments.of("report_id", (UnaryOperator<R>) r -> with(r, "reportId", "tab\there")),
        Arguments.of("report_id", (UnaryOperator<R>) r -> with(r, "reportId", "x".repeat(129))),
        Arguments.of(
            "input_tokens",
            (UnaryOperator<R>)
                r ->
                    new R(
                        r.reportId,
                        r.keyId,
                        r.cost,
                        r.model,
                        r.provider,
                        123_456_789_012_345_678L,
                        r.out,
                        r.cached,
                        r.write)),
        Arguments.of(
            "output_tokens",
            (UnaryOperator<R>)
                r ->
                    new R(
                        r.reportId,
                        r.keyId,
                        r.cost,
                        r.model,
                        r.provider,
                        r.in,
                        UsageValidation.MAX_TOKENS + 1,
                        r.cached,
                        r.write)),
        Arguments.of(
            "cached_input_tokens",
            (UnaryOperator<R>)
                r ->
                    new R(
                        r.reportId,
                        r.keyId,
                        r.cost,
                        r.model,
                        r.provider,
                        r.in,
                        r.out,
                        -1,
                        r.write)),
        Arguments.of(
            "cache_write_tokens",
            (UnaryOperator<R>)
                r ->
                    new R(
                        r.reportId,
                        r.keyId,
                        r.cost,
                        r.model,
                        r.provider,
                        r.in,
                        r.out,
                        r.cached,
                        Long.MAX_VALUE)),
        Arguments.of("cost_usd", (UnaryOperator<R>) r -> withCost(r, "1000000000000")),
        Arguments.of("cost_usd", (UnaryOperator<R>) r -> withCost(r, "0.000000001")),
        Arguments.of("cost_usd", (UnaryOperator<R>) r -> withCost(r, "-0.01")),
        Arguments.of(
            "key_id",
            (UnaryOperator<R>)
                r ->
                    new R(
                        r.reportId,
                        0,
                        r.cost,
                        r.model,
                        r.provider,
                        r.in,
                        r.out,
                        r.cached,
                        r.write)));
  }

  private static R with(R r, String field, String value) {
    return switch (field) {
      case "model" ->
          new R(r.reportId, r.keyId, r.cost, value, r.provider, r.in, r.out, r.cached, r.write);
      case "provider" ->
          new R(r.reportId, r.keyId, r.cost, r.model, value, r.in, r.out, r.cached, r.write);
      default -> new R(value, r.keyId, r.cost, r.model, r.provider, r.in, r.out, r.cached, r.write);
    };
  }

  private static R withCost(R r, String cost) {
    return new R(
        r.reportId,
        r.keyId,
        new BigDecimal(cost),
        r.model,
        r.provider,
        r.in,
        r.out,
        r.cached,
        r.write);
  }

  @ParameterizedTest
  @MethodSource("bad")
  void check_badField_refusedNamingIt(String field, UnaryOperator<R> change) {
    UsageReport report = change.apply(GOOD).build();
    assertThatThrownBy(() -> UsageValidation.check(report))
        .isInstanceOf(IllegalArgumentException.class)
        .message()
        .startsWith(field + " ");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "gpt-4o",
        "claude-sonnet-4-5@20250929",
        "modèle-français",
        "模型",
        "emoji-\uD83D\uDE80",
        "has space"
      })
  void check_printableModel_accepted(String model) {
    assertThatCode(() -> UsageValidation.check(with(GOOD, "model", model).build()))
        .doesNotThrowAnyException();
  }

  @ParameterizedTest
  @ValueSource(strings = {"0", "999999999999.99999999", "1.500000000"})
  void check_costWithinColumn_accepted(String cost) {
    assertThatCode(() -> UsageValidation.check(withCost(GOOD, cost).build()))
        .doesNotThrowAnyException();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "gpt\u00004o",
        "a\nb",
        "\u202E",
        "x\uD800",
        "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm",
        "ok"
      })
  void sanitizeName_anything_passesTheRule(String name) {
    String clean = UsageValidation.sanitizeName(name);
    assertThatCode(() -> UsageValidation.check(with(GOOD, "model", clean).build()))
        .doesNotThrowAnyException();
    assertThat(clean.codePointCount(0, clean.length()))
        .isLessThanOrEqualTo(UsageValidation.MAX_NAME);
  }

  @ParameterizedTest
  @ValueSource(strings = {"req-1", "has space", "~!@#$%^&*()"})
  void isReportId_printableAscii_true(String id) {
    assertThat(UsageValidation.isReportId(id)).isTrue();
  }
}
