package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.util.OptionalLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ModelPriceTest {

  private static ModelPrice price(String in, String out, String cached, String write) {
    return new ModelPrice(
        new BigDecimal(in), new BigDecimal(out), new BigDecimal(cached), new BigDecimal(write));
  }

  static Stream<Arguments> table() {
    ModelPrice gpt4o = price("2.50", "10.00", "1.25", "2.50");
    ModelPrice sonnet = price("3", "15", "0.30", "3.75");
    ModelPrice odd = price("0.333", "0.000001", "0", "7");
    return Stream.of(
        Arguments.of(gpt4o, new TokenUsage(86, 300, 1920, 0), "0.00561500"),
        Arguments.of(gpt4o, new TokenUsage(0, 0, 0, 0), "0.00000000"),
        Arguments.of(gpt4o, new TokenUsage(1_000_000, 1_000_000, 0, 0), "12.50000000"),
        Arguments.of(sonnet, new TokenUsage(12, 95, 0, 2048), "0.00914100"),
        // 1 x 0.333 / 1e6 = 0.000000333 -> 0.00000033 (down)
        Arguments.of(odd, new TokenUsage(1, 0, 0, 0), "0.00000033"),
        // 15 x 0.333 / 1e6 = 0.000004995 -> 0.00000500 (HALF_UP at exactly .5)
        Arguments.of(odd, new TokenUsage(15, 0, 0, 0), "0.00000500"),
        // 1 output token at 0.000001/Mtok = 1e-12 -> rounds to 0
        Arguments.of(odd, new TokenUsage(0, 1, 0, 0), "0E-8"),
        // buckets summed before the one rounding: 0.0000035 + 0.000007 = 0.0000105 -> 0.00001050
        Arguments.of(price("3.5", "0", "0", "7"), new TokenUsage(1, 0, 0, 1), "0.00001050"),
        // many rounding halves in separate buckets would round differently than the sum
        Arguments.of(
            price("0.005", "0.005", "0.005", "0.005"), new TokenUsage(1, 1, 1, 1), "2E-8"));
  }

  @ParameterizedTest
  @MethodSource("table")
  void costOf_tokens_isExactSumRoundedHalfUpToEightDecimals(
      ModelPrice price, TokenUsage tokens, String expected) {
    BigDecimal cost = price.costOf(tokens);
    assertThat(cost.scale()).isEqualTo(8);
    assertThat(cost.compareTo(new BigDecimal(expected))).isZero();
  }

  @Test
  void times_aDearerTier_keepsTheMaxOutput() {
    ModelPrice p =
        new ModelPrice(
            new BigDecimal("2.50"),
            new BigDecimal("10"),
            new BigDecimal("1.25"),
            new BigDecimal("2.50"),
            OptionalLong.of(16_384));
    ModelPrice priority = p.times(new BigDecimal("2"));
    assertThat(priority.outputPerMtok()).isEqualByComparingTo("20");
    assertThat(priority.maxOutputTokens()).hasValue(16_384);
    assertThat(ModelPrice.flat(BigDecimal.ONE).maxOutputTokens()).isEmpty();
  }
}
