package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

class PriceTableTest {

  private static final PriceTable TABLE =
      PriceTable.parse(
          ("""
      models:
        "gpt-4o*": {input: "2.50", output: "10"}
        "gpt-4o-mini*": {input: "0.15", output: "0.60"}
        "gpt-4o-2024-05-13": {input: "5", output: "15"}
        "gpt-4o-2024-*": {input: "9", output: "9"}
        "claude-*": {input: "1", output: "1"}
      """)
              .getBytes(StandardCharsets.UTF_8));

  @ParameterizedTest
  @CsvSource({
    "gpt-4o, 2.50",
    "gpt-4o-2024-08-06, 9", // longer (literal) prefix beats gpt-4o*
    "gpt-4o-2024-05-13, 5", // exact beats any prefix
    "gpt-4o-mini, 0.15",
    "gpt-4o-mini-2024-07-18, 0.15", // longest prefix wins
    "GPT-4O-MINI, 0.15", // case-insensitive
    "claude-sonnet-4-5, 1",
  })
  void find_modelName_usesExactThenLongestPrefix(String model, String input) {
    assertThat(TABLE.find(model))
        .hasValueSatisfying(p -> assertThat(p.inputPerMtok()).isEqualByComparingTo(input));
  }

  @Test
  void find_unknownModel_isEmpty() {
    assertThat(TABLE.find("gpt-4")).isEmpty();
    assertThat(TABLE.find("llama-3")).isEmpty();
    assertThat(TABLE.find(null)).isEmpty();
  }

  @Test
  void parse_missingCachePrices_defaultToInput() {
    ModelPrice p = TABLE.find("gpt-4o").orElseThrow();
    assertThat(p.cachedInputPerMtok()).isEqualTo(new BigDecimal("2.50"));
    assertThat(p.cacheWritePerMtok()).isEqualTo(new BigDecimal("2.50"));
  }

  @Test
  void parse_unquotedDecimal_isExactNotDouble() {
    PriceTable t =
        PriceTable.parse(
            "models:\n  m: {input: 0.1, output: 2.675, cached_input: 1.10}\n"
                .getBytes(StandardCharsets.UTF_8));
    ModelPrice p = t.find("m").orElseThrow();
    assertThat(p.inputPerMtok()).isEqualTo(new BigDecimal("0.1"));
    assertThat(p.outputPerMtok()).isEqualTo(new BigDecimal("2.675"));
    assertThat(p.cachedInputPerMtok()).isEqualTo(new BigDecimal("1.10"));
  }

  @Test
  void parse_catchAll_matchesEverything() {
    PriceTable t =
        PriceTable.parse(
            "models:\n  '*': {input: '1', output: '2'}\n".getBytes(StandardCharsets.UTF_8));
    assertThat(t.find("anything")).isPresent();
  }

  static Stream<Arguments> badFiles() {
    return Stream.of(
        Arguments.of("models: [", "not valid YAML"),
        Arguments.of("- a\n- b\n", "expected a mapping"),
        Arguments.of("prices: {}\n", "unknown key 'prices'"),
        Arguments.of("models: {}\n", "non-empty"),
        Arguments.of("models:\n  m: {input: '1'}\n", "models.m.output is required"),
        Arguments.of(
            "models:\n  m: {input: '-1', output: '1'}\n", "models.m.input must be a non-negative"),
        Arguments.of("models:\n  m: {input: 'abc', output: '1'}\n", "models.m.input"),
        Arguments.of("models:\n  m: {input: '1e3', output: '1'}\n", "models.m.input"),
        Arguments.of(
            "models:\n  m: {input: '1', output: '1', cached: '1'}\n", "unknown key 'cached'"),
        Arguments.of("models:\n  m: '1'\n", "models.m must be a mapping"),
        Arguments.of("models:\n  'a*b': {input: '1', output: '1'}\n", "model name 'a*b'"),
        Arguments.of(
            "models:\n  m: {input: '1', output: '1'}\n  m: {input: '2', output: '2'}\n",
            "not valid YAML"),
        Arguments.of(
            "models:\n  m: {input: '1', output: '1'}\n  M: {input: '2', output: '2'}\n",
            "appears twice"));
  }

  @ParameterizedTest
  @MethodSource("badFiles")
  void parse_badFile_throwsSayingWhy(String yaml, String message) {
    assertThatThrownBy(() -> PriceTable.parse(yaml.getBytes(StandardCharsets.UTF_8)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(message);
  }

  @ParameterizedTest
  @CsvSource({
    "gpt-4o-2024-08-06, 2.50",
    "gpt-4o-mini-2024-07-18, 0.15",
    "gpt-4.1-2025-04-14, 2.00",
    "gpt-4.1-mini, 0.40",
    "gpt-4.1-nano, 0.10",
    "o3-2025-04-16, 2.00",
    "o3-mini, 1.10",
    "o4-mini-2025-04-16, 1.10",
    "gpt-5, 1.25",
    "gpt-5-mini-2025-08-07, 0.25",
    "gpt-5-nano, 0.05",
    "claude-sonnet-4-5-20250929, 3.00",
    "claude-sonnet-4-20250514, 3.00",
    "claude-opus-4-1-20250805, 15.00",
    "claude-opus-4-5-20251101, 5.00",
    "claude-haiku-4-5-20251001, 1.00",
    "claude-3-7-sonnet-20250219, 3.00",
    "claude-3-5-sonnet-20241022, 3.00",
    "claude-3-5-haiku-20241022, 0.80",
    "gemini-2.5-pro, 1.25",
    "gemini-2.5-flash, 0.30",
    "gemini-2.5-flash-lite, 0.10",
    "gemini-2.0-flash-001, 0.10",
  })
  void shipped_mainstreamModels_arePriced(String model, String input) {
    assertThat(PriceTable.shipped().find(model))
        .hasValueSatisfying(p -> assertThat(p.inputPerMtok()).isEqualByComparingTo(input));
  }

  @Test
  void shipped_statesItsDate() {
    assertThat(PriceTable.shipped().asOf()).matches("\\d{4}-\\d{2}(-\\d{2})?");
  }

  /** Each published price in the fixture, with its source: model, input, output, cached, write. */
  static Stream<Arguments> publishedPrices() {
    String csv = new String(Fixtures.bytes("published-prices.csv"), StandardCharsets.UTF_8);
    return csv.lines()
        .filter(l -> !l.isBlank() && !l.startsWith("#"))
        .map(
            l -> {
              String[] f = l.split(",");
              assertThat(f).as(l).hasSize(6);
              return Arguments.of(f[0], f[1], f[2], f[3], f[4], f[5]);
            });
  }

  @ParameterizedTest(name = "{0} ({5})")
  @MethodSource("publishedPrices")
  void shipped_publishedModel_isPricedExactlyAsPublished(
      String model, String input, String output, String cached, String write, String source) {
    // No prefix rule may price a model whose published price differs from the prefix's row.
    assertThat(PriceTable.shipped().find(model))
        .as(model)
        .hasValueSatisfying(
            p -> {
              assertThat(p.inputPerMtok()).as("%s input", model).isEqualByComparingTo(input);
              assertThat(p.outputPerMtok()).as("%s output", model).isEqualByComparingTo(output);
              assertThat(p.cachedInputPerMtok())
                  .as("%s cached input", model)
                  .isEqualByComparingTo(cached);
              assertThat(p.cacheWritePerMtok())
                  .as("%s cache write", model)
                  .isEqualByComparingTo(write);
            });
  }

  @ParameterizedTest
  @CsvSource({
    "gpt-5.6-mini", // newer family: not gpt-5*, not gpt-5-mini*
    "gpt-5.6",
    "gpt-5.2",
    "gpt-6",
    "gpt-4o2", // appended character
    "gpt-4o-realtime-preview", // a sibling word with its own (higher) price
    "gpt-4o-mini-tts",
    "gpt-4o-search-preview", // per-call search fees not modelled
    "gpt-4-0125-previewx",
    "gpt-4-vision-previewer",
    "o1-pro2",
    "o3-deep-research2",
    "o5-mini",
    "claude-opus-4-8", // 1-2 digit number: newer than claude-opus-4-5
    "claude-opus-4-6-20260101",
    "claude-sonnet-4-6",
    "claude-haiku-4-6",
    "claude-opus-5",
    "claude-3-5-sonnet-v2@20241022",
    "gemini-2.6-flash",
    "gemini-2.5-flash-live",
    "gemini-2.5-flash-native-audio-preview-09-2025",
    "gemini-3.5-flash-lite",
    "gemini-2.0-flash-thinking-exp-01-21",
    "gemini-ultra-latest",
    "ft:gpt-5-2025-08-07:acme::x", // a fine-tune of a base without an ft: row
    "ft:gpt-4o2:acme::x",
    "tunedModels/my-model",
  })
  void shipped_newerFamilyOrSiblingWithoutRow_isUnpriced(String model) {
    assertThat(PriceTable.shipped().find(model)).as(model).isEmpty();
  }

  @Test
  void find_priceOfAnOlderSibling_isNeverTaken() {
    // Only o1* and gpt-5*: names they do not cover stay unpriced instead of falling back.
    PriceTable t =
        PriceTable.parse(
            """
        models:
          "o1*": {input: "15", output: "60"}
          "gpt-5*": {input: "1.25", output: "10"}
          "gpt-5-mini*": {input: "0.25", output: "2"}
        """
                .getBytes(StandardCharsets.UTF_8));
    assertThat(t.find("o1-pro")).isEmpty();
    assertThat(t.find("o1-pro-2099-01-01")).isEmpty();
    assertThat(t.find("gpt-5.6-mini")).isEmpty();
    // the longest prefix decides: gpt-5-mini* does not cover it, and gpt-5* is not tried
    assertThat(t.find("gpt-5-mini-tts")).isEmpty();
    assertThat(t.find("o1-2024-12-17"))
        .hasValueSatisfying(p -> assertThat(p.inputPerMtok()).isEqualByComparingTo("15"));
    assertThat(t.find("gpt-5-mini-2025-08-07@001")).isPresent();
  }

  @ParameterizedTest
  @CsvSource({
    "'', true",
    "-2024-08-06, true",
    "-0613, true",
    "@20240620, true",
    "-001, true",
    "-latest, true",
    "-preview-09-2025, true",
    "-exp, true",
    ":acme::id, true",
    "-20241022:acme:x:y, true",
    "-8, false",
    "-12, false",
    "-08-06, false",
    ".6, false",
    "2, false",
    "-pro, false",
    "-mini, false",
    "-preview-tts, false",
    "-2024-08-06-mini, false",
    "-, false",
  })
  void covers_tailAfterAPrefix_onlySnapshotsAndStatusWords(String tail, boolean covered) {
    assertThat(PriceTable.covers("gpt-4o", tail)).as("gpt-4o%s", tail).isEqualTo(covered);
  }

  @Test
  void covers_prefixEndingInOtherCharacter_isLiteral() {
    assertThat(PriceTable.covers("llama-", "3.3-70b")).isTrue();
    assertThat(PriceTable.covers("", "anything")).isTrue();
  }

  @ParameterizedTest
  @CsvSource({"16384, 16384", "'\"16384\"', 16384", "1, 1", "10000000, 10000000"})
  void parse_maxOutput_isAWholeNumberOfTokens(String yaml, long expected) {
    PriceTable t =
        PriceTable.parse(
            ("models:\n  m: {input: '1', output: '2', max_output: " + yaml + "}\n")
                .getBytes(StandardCharsets.UTF_8));
    assertThat(t.find("m").orElseThrow().maxOutputTokens()).hasValue(expected);
  }

  @Test
  void parse_noMaxOutput_isEmpty() {
    assertThat(TABLE.find("gpt-4o").orElseThrow().maxOutputTokens()).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "-1",
        "0",
        "16384.5",
        "16384.0",
        "1e5",
        "'1e5'",
        "10000001",
        "99999999999",
        "true",
        "'abc'",
        "[1]",
        "{a: 1}",
        "null",
        "''"
      })
  void parse_badMaxOutput_throwsOneLineNamingTheRowAndField(String yaml) {
    assertThatThrownBy(
            () ->
                PriceTable.parse(
                    ("models:\n  m-1: {input: '1', output: '2', max_output: " + yaml + "}\n")
                        .getBytes(StandardCharsets.UTF_8)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith(
            "models.m-1.max_output must be a whole number of tokens from 1 to 10000000, got '")
        .hasMessageNotContaining("\n");
  }

  @ParameterizedTest
  @CsvSource({
    "gpt-4o-2024-08-06, 16384",
    "gpt-4o-mini, 16384",
    "gpt-4.1, 32768",
    "gpt-5, 128000",
    "gpt-5-pro, 272000",
    "o3-2025-04-16, 100000",
    "o4-mini, 100000",
    "claude-sonnet-4-5-20250929, 64000",
    "claude-opus-4-5, 64000",
    "claude-opus-4-1-20250805, 32000",
    "claude-3-5-haiku-20241022, 8192",
    "gemini-2.5-pro, 65536",
    "gemini-2.5-flash, 65536",
    "gemini-2.0-flash-001, 8192",
  })
  void shipped_mainstreamModels_stateTheirMaxOutput(String model, long maxOutput) {
    ModelPrice p = PriceTable.shipped().find(model).orElseThrow();
    assertThat(p.maxOutputTokens()).as(model).hasValue(maxOutput);
    // The default for rows without one is at least every published maximum.
    assertThat(maxOutput).isLessThanOrEqualTo(MaxCost.DEFAULT_MAX_OUTPUT);
  }

  @Test
  void shipped_everyPublishedModel_statesItsMaxOutputUnlessItGeneratesNothing() {
    publishedPrices()
        .map(a -> (String) a.get()[0])
        .forEach(
            model -> {
              ModelPrice p = PriceTable.shipped().find(model).orElseThrow();
              if (p.outputPerMtok().signum() > 0) {
                assertThat(p.maxOutputTokens()).as(model).isPresent();
                assertThat(p.maxOutputTokens().getAsLong())
                    .as(model)
                    .isLessThanOrEqualTo(MaxCost.DEFAULT_MAX_OUTPUT);
              }
            });
  }
}
