package io.quotaauthority.metering;

import io.quotaauthority.keys.Money;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.Objects;
import java.util.OptionalLong;

/**
 * What a model costs, in USD per million tokens for each {@link TokenUsage} bucket, and the most
 * output tokens it can produce in one response when its price row states it ({@code max_output}:
 * used by {@link MaxCost}, never by a charge). Decimal from the file to the charge: no double ever
 * holds a price.
 */
public record ModelPrice(
    BigDecimal inputPerMtok,
    BigDecimal outputPerMtok,
    BigDecimal cachedInputPerMtok,
    BigDecimal cacheWritePerMtok,
    OptionalLong maxOutputTokens) {

  public ModelPrice {
    Objects.requireNonNull(inputPerMtok);
    Objects.requireNonNull(outputPerMtok);
    Objects.requireNonNull(cachedInputPerMtok);
    Objects.requireNonNull(cacheWritePerMtok);
    Objects.requireNonNull(maxOutputTokens);
  }

  /** A price whose row states no maximum output. */
  public ModelPrice(
      BigDecimal inputPerMtok,
      BigDecimal outputPerMtok,
      BigDecimal cachedInputPerMtok,
      BigDecimal cacheWritePerMtok) {
    this(inputPerMtok, outputPerMtok, cachedInputPerMtok, cacheWritePerMtok, OptionalLong.empty());
  }

  /** One price for every kind of token (the unpriced-model default); no maximum output known. */
  public static ModelPrice flat(BigDecimal perMtok) {
    return new ModelPrice(perMtok, perMtok, perMtok, perMtok);
  }

  /** Every bucket's price multiplied by the factor (a dearer service tier). */
  public ModelPrice times(BigDecimal factor) {
    return new ModelPrice(
        inputPerMtok.multiply(factor),
        outputPerMtok.multiply(factor),
        cachedInputPerMtok.multiply(factor),
        cacheWritePerMtok.multiply(factor),
        maxOutputTokens);
  }

  /**
   * The cost of these tokens in USD: the exact sum of tokens x price over all buckets, divided by
   * one million, then rounded once, HALF_UP, to 8 decimals (the ledger's precision). Rounding the
   * sum rather than each bucket keeps the error under half a unit per request.
   */
  public BigDecimal costOf(TokenUsage t) {
    BigDecimal micro =
        inputPerMtok
            .multiply(BigDecimal.valueOf(t.inputTokens()))
            .add(outputPerMtok.multiply(BigDecimal.valueOf(t.outputTokens())))
            .add(cachedInputPerMtok.multiply(BigDecimal.valueOf(t.cachedInputTokens())))
            .add(cacheWritePerMtok.multiply(BigDecimal.valueOf(t.cacheWriteTokens())));
    return micro.movePointLeft(6).setScale(Money.SCALE, RoundingMode.HALF_UP);
  }
}
