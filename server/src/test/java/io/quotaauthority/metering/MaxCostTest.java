package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quotaauthority.metering.MaxCost.OutputSource;
import java.math.BigDecimal;
import java.util.OptionalLong;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class MaxCostTest {

  private static ModelPrice price(String in, String out, String cached, String write, Long max) {
    return new ModelPrice(
        new BigDecimal(in),
        new BigDecimal(out),
        new BigDecimal(cached),
        new BigDecimal(write),
        max == null ? OptionalLong.empty() : OptionalLong.of(max));
  }

  private static final ModelPrice GPT_4O = price("2.50", "10.00", "1.25", "2.50", 16_384L);
  private static final ModelPrice UNBOUNDED = price("2.50", "10.00", "1.25", "2.50", null);
  private static final ModelPrice SONNET = price("3.00", "15.00", "0.30", "3.75", 64_000L);

  private static OptionalLong limit(long n) {
    return OptionalLong.of(n);
  }

  static Stream<Arguments> table() {
    OptionalLong none = OptionalLong.empty();
    return Stream.of(
        // price, prompt, media, limit, choices -> input, output, source, usd
        // 1000 x 2.50 + 500 x 10.00 = 7500 micro-USD
        Arguments.of(GPT_4O, 1000, 0, limit(500), 1, 1000, 500, OutputSource.REQUEST, "0.00750000"),
        // the limit equal to the model's maximum is the request's
        Arguments.of(
            GPT_4O, 1000, 0, limit(16_384), 1, 1000, 16_384, OutputSource.REQUEST, "0.16634000"),
        // no limit: the table's 16384 x 10.00 + 2500 = 166340 micro-USD
        Arguments.of(
            GPT_4O, 1000, 0, none, 1, 1000, 16_384, OutputSource.PRICE_TABLE, "0.16634000"),
        // a limit past the model's maximum is not honoured past it
        Arguments.of(
            GPT_4O,
            1000,
            0,
            limit(100_000),
            1,
            1000,
            16_384,
            OutputSource.PRICE_TABLE,
            "0.16634000"),
        // neither: 272000 x 10.00 + 2500 = 2722500 micro-USD
        Arguments.of(
            UNBOUNDED, 1000, 0, none, 1, 1000, 272_000, OutputSource.DEFAULT, "2.72250000"),
        // no table maximum: the request's limit stands, even past the default
        Arguments.of(
            UNBOUNDED,
            1000,
            0,
            limit(300_000),
            1,
            1000,
            300_000,
            OutputSource.REQUEST,
            "3.00250000"),
        // n = 3: each choice may use the whole limit; 3 x 100 x 10.00 + 2500 = 5500
        Arguments.of(GPT_4O, 1000, 0, limit(100), 3, 1000, 300, OutputSource.REQUEST, "0.00550000"),
        // 3 x the table's maximum
        Arguments.of(GPT_4O, 0, 0, none, 3, 0, 49_152, OutputSource.PRICE_TABLE, "0.49152000"),
        // media: 10 + 48169 input tokens x 2.50 + 1 x 10 = 120457.5 micro-USD
        Arguments.of(
            GPT_4O,
            10,
            TokenEstimate.MEDIA_TOKENS_PER_ITEM,
            limit(1),
            1,
            48_179,
            1,
            OutputSource.REQUEST,
            "0.12045750"),
        // cache writes dearer than input: every input token at 3.75; 2060 x 3.75 + 95 x 15 = 9150
        Arguments.of(SONNET, 2060, 0, limit(95), 1, 2060, 95, OutputSource.REQUEST, "0.00915000"),
        // a cache read dearer than input (odd, but allowed): priced at it
        Arguments.of(
            price("1", "0", "2", "1", 10L),
            1000,
            0,
            none,
            1,
            1000,
            10,
            OutputSource.PRICE_TABLE,
            "0.00200000"),
        // 1 x 0.333 / 1e6 = 0.000000333: UP to 0.00000034 (the charge rounds it to ...33)
        Arguments.of(
            price("0.333", "0", "0", "0", 1L),
            1,
            0,
            limit(1),
            1,
            1,
            1,
            OutputSource.REQUEST,
            "0.00000034"),
        // 1e-12 USD is still a unit up: 0.00000001
        Arguments.of(
            price("0", "0.000001", "0", "0", 1L),
            0,
            0,
            limit(1),
            1,
            0,
            1,
            OutputSource.REQUEST,
            "0.00000001"),
        // exact at 8 decimals: not bumped
        Arguments.of(
            price("1", "0", "0", "0", 1L),
            1,
            0,
            limit(1),
            1,
            1,
            1,
            OutputSource.REQUEST,
            "0.00000100"),
        // a free model costs nothing
        Arguments.of(
            price("0", "0", "0", "0", null),
            5,
            0,
            none,
            1,
            5,
            272_000,
            OutputSource.DEFAULT,
            "0.00000000"));
  }

  @ParameterizedTest
  @MethodSource("table")
  void of_request_boundsTokensAndRoundsUpToEightDecimals(
      ModelPrice price,
      long prompt,
      long media,
      OptionalLong limit,
      int choices,
      long input,
      long output,
      OutputSource source,
      String usd) {
    MaxCost.Estimate e = MaxCost.of(price, prompt, media, limit, choices);
    assertThat(e.inputTokens()).isEqualTo(input);
    assertThat(e.outputTokens()).isEqualTo(output);
    assertThat(e.outputSource()).isEqualTo(source);
    assertThat(e.usd().scale()).isEqualTo(8);
    assertThat(e.usd()).isEqualByComparingTo(usd);
    assertThat(e.usd().toPlainString()).isEqualTo(usd);
  }

  @Test
  void of_oneUnitAboveTheChargeOfTheSameTokens_whenTheChargeRoundsDown() {
    ModelPrice odd = price("0.333", "0", "0", "0", 1L);
    assertThat(odd.costOf(new TokenUsage(1, 0, 0, 0)).toPlainString()).isEqualTo("0.00000033");
    assertThat(MaxCost.of(odd, 1, 0, limit(1), 1).usd().toPlainString()).isEqualTo("0.00000034");
  }

  @Test
  void of_negativeCountsOrNoChoice_isRefused() {
    assertThatThrownBy(() -> MaxCost.of(GPT_4O, -1, 0, limit(1), 1))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> MaxCost.of(GPT_4O, 1, -1, limit(1), 1))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> MaxCost.of(GPT_4O, 1, 0, limit(1), 0))
        .isInstanceOf(IllegalArgumentException.class);
  }

  /**
   * The invariant over many usages: however the provider splits the prompt's tokens among its
   * buckets (uncached, cache read, cache write) and however much of the limit it uses, the charge
   * is never above the estimate.
   */
  @Test
  void of_anyUsageWithinTheBounds_costsAtMostTheEstimate() {
    Random r = new Random(16);
    ModelPrice[] prices = {
      GPT_4O,
      SONNET,
      UNBOUNDED,
      price("0.333", "0.777", "0.0333", "0.41625", 8192L),
      price("0.000001", "0.000003", "0", "0.000002", 100L)
    };
    for (int i = 0; i < 20_000; i++) {
      ModelPrice p = prices[r.nextInt(prices.length)];
      long prompt = r.nextInt(1_000_000);
      long media = r.nextInt(3) * TokenEstimate.MEDIA_TOKENS_PER_ITEM;
      OptionalLong limit = r.nextBoolean() ? limit(1 + r.nextInt(200_000)) : OptionalLong.empty();
      int choices = 1 + r.nextInt(4);
      MaxCost.Estimate e = MaxCost.of(p, prompt, media, limit, choices);
      long in = prompt + media;
      long cached = in == 0 ? 0 : (long) (r.nextDouble() * in);
      long written = in - cached == 0 ? 0 : (long) (r.nextDouble() * (in - cached));
      long uncached = in - cached - written;
      long output =
          r.nextInt(10) == 0 ? e.outputTokens() : (long) (r.nextDouble() * e.outputTokens());
      BigDecimal actual = p.costOf(new TokenUsage(uncached, output, cached, written));
      assertThat(actual).as("case %d", i).isLessThanOrEqualTo(e.usd());
      assertThat(e.ratio(actual).orElseThrow()).isLessThanOrEqualTo(BigDecimal.ONE);
    }
  }

  @Test
  void ratio_actualOverEstimate_toSixDecimals() {
    MaxCost.Estimate e = MaxCost.of(GPT_4O, 1000, 0, limit(500), 1); // 0.00750000
    assertThat(e.ratio(new BigDecimal("0.00250000"))).hasValue(new BigDecimal("0.333333"));
    assertThat(e.ratio(new BigDecimal("0.00750000"))).hasValue(new BigDecimal("1.000000"));
    MaxCost.Estimate free = MaxCost.of(price("0", "0", "0", "0", 1L), 5, 0, limit(1), 1);
    assertThat(free.ratio(BigDecimal.ZERO)).hasValue(BigDecimal.ONE);
    assertThat(free.ratio(new BigDecimal("0.00000001"))).isEmpty();
  }
}
