package io.quotaauthority.metering;

import io.quotaauthority.keys.Money;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * The most a request can cost, known before the provider is called (the hold taken at admission):
 *
 * <pre>
 * input  = prompt tokens (TokenEstimate's bound) + media parts x MEDIA_TOKENS_PER_ITEM
 * output = choices x min(request's output limit, model's max_output)   when the request states one
 *          choices x model's max_output                                when only the table does
 *          choices x DEFAULT_MAX_OUTPUT                                when neither does
 * USD    = (input x max(input, cached_input, cache_write) + output x output) / 10^6, rounded UP
 *          to 8 decimals
 * </pre>
 *
 * <p>Every input token is priced at the dearest input bucket, since the estimate cannot know which
 * tokens the provider will read from or write to its cache: a cache read never costs more than the
 * input price, a cache write may (Anthropic: 1.25 x input), so the bound holds either way.
 *
 * <p><b>Invariant.</b> For a request whose provider honours its output limit (or the model's
 * published maximum) and whose prompt's token count is within TokenEstimate's bound (media parts
 * within {@link TokenEstimate#MEDIA_TOKENS_PER_ITEM} each), the actual cost of its usage, {@link
 * ModelPrice#costOf} at the same price, is at most {@link Estimate#usd}: each bucket's tokens are
 * at most the estimate's, each at most the estimate's price, and the estimate rounds up where the
 * charge rounds half up. The caller passes the price UsageCharger would charge (the service tier's
 * factor applied), or the bound does not hold.
 *
 * <p>Outside the invariant: a document, audio or video part (counted as one image); server-side
 * loops billed as one response (Anthropic compaction bills a second pass over the context, its
 * output beyond max_tokens; built-in tools that call the model again). See MaxCostFixturesTest.
 */
final class MaxCost {

  /**
   * The output assumed for a model whose price row states no {@code max_output}, when the request
   * states no limit: the largest maximum output any model published as of 2025-11 (gpt-5-pro,
   * 272,000; the next largest are 128,000). A fixed bound rather than "the key's whole remaining
   * budget": it is as safe for every model published then, it keeps the estimate a number that can
   * be compared with the actual charge, and a request without max_tokens does not block every other
   * request of its key. A newer model with a larger output needs its row's max_output.
   */
  static final long DEFAULT_MAX_OUTPUT = 272_000;

  private MaxCost() {}

  /** Where the output tokens assumed came from. */
  enum OutputSource {
    /** The request's own limit (max_tokens and the like), at most the model's maximum. */
    REQUEST,
    /** The model's max_output in the price table: no request limit, or a larger one. */
    PRICE_TABLE,
    /** {@link #DEFAULT_MAX_OUTPUT}: neither states a limit. */
    DEFAULT
  }

  /**
   * A request's maximum cost.
   *
   * @param inputTokens prompt and media tokens assumed, all priced at the dearest input bucket
   * @param outputTokens output tokens assumed (all choices)
   * @param outputSource what bounded the output
   * @param usd the amount, scale {@link Money#SCALE}, rounded up
   */
  record Estimate(long inputTokens, long outputTokens, OutputSource outputSource, BigDecimal usd) {
    Estimate {
      Objects.requireNonNull(outputSource);
      Objects.requireNonNull(usd);
    }

    /**
     * The estimation error, actual ÷ estimate, to 6 decimals (rounded half up): at most 1 while the
     * invariant holds. Empty when the estimate is zero (a free model) and the charge is not.
     */
    Optional<BigDecimal> ratio(BigDecimal actual) {
      if (usd.signum() == 0) {
        return actual.signum() == 0 ? Optional.of(BigDecimal.ONE) : Optional.empty();
      }
      return Optional.of(actual.divide(usd, 6, RoundingMode.HALF_UP));
    }
  }

  /**
   * The maximum cost of a request.
   *
   * @param price what the model costs (as UsageCharger would charge it), with its max_output
   * @param promptTokens the prompt's tokens ({@link TokenEstimate.Prompt#tokens})
   * @param mediaTokens the bound on its image and file parts ({@link
   *     TokenEstimate.Prompt#mediaTokens})
   * @param outputLimit the request's output limit ({@link RequestBody#outputLimit})
   * @param choices responses asked for ({@link RequestBody#choices}), each up to the limit
   */
  static Estimate of(
      ModelPrice price,
      long promptTokens,
      long mediaTokens,
      OptionalLong outputLimit,
      int choices) {
    if (promptTokens < 0 || mediaTokens < 0 || choices < 1) {
      throw new IllegalArgumentException("token counts must not be negative, choices at least 1");
    }
    OptionalLong modelMax = price.maxOutputTokens();
    long perChoice;
    OutputSource source;
    if (outputLimit.isPresent()
        && (modelMax.isEmpty() || outputLimit.getAsLong() <= modelMax.getAsLong())) {
      perChoice = outputLimit.getAsLong();
      source = OutputSource.REQUEST;
    } else if (modelMax.isPresent()) {
      // A request limit above the model's maximum is not honoured past it (or refused).
      perChoice = modelMax.getAsLong();
      source = OutputSource.PRICE_TABLE;
    } else {
      perChoice = DEFAULT_MAX_OUTPUT;
      source = OutputSource.DEFAULT;
    }
    // Both factors are bounded (a billion x 128; counts within UsageValidation's): exact.
    long output = Math.multiplyExact(perChoice, (long) choices);
    long input = Math.addExact(promptTokens, mediaTokens);
    BigDecimal inputPrice =
        price.inputPerMtok().max(price.cachedInputPerMtok()).max(price.cacheWritePerMtok());
    BigDecimal micro =
        inputPrice
            .multiply(BigDecimal.valueOf(input))
            .add(price.outputPerMtok().multiply(BigDecimal.valueOf(output)));
    // UP, never HALF_UP: the charge of the same tokens rounds half up, so the hold is never less.
    BigDecimal usd = micro.movePointLeft(6).setScale(Money.SCALE, RoundingMode.UP);
    return new Estimate(input, output, source, usd);
  }
}
