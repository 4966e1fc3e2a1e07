package io.quotaauthority.keys;

import java.math.BigDecimal;
import java.util.regex.Pattern;

/**
 * US dollars as they travel: decimal strings with at most 12 integer and 8 fraction digits, never
 * negative, no sign, no exponent; held as {@link BigDecimal} and stored as NUMERIC(20,8). Nothing
 * here ever rounds: an amount that does not fit is refused.
 */
public final class Money {
  public static final int SCALE = 8;

  /** 0.00000001, the smallest amount that can be charged. */
  public static final BigDecimal UNIT = BigDecimal.ONE.movePointLeft(SCALE);

  /** 999999999999.99999999, the largest amount NUMERIC(20,8) holds. */
  public static final BigDecimal MAX = new BigDecimal("999999999999.99999999");

  private static final Pattern SHAPE = Pattern.compile("\\d{1,12}(\\.\\d{1,8})?");

  private Money() {}

  /**
   * Parses a USD amount or throws {@link IllegalArgumentException} whose message starts with the
   * field name, e.g. {@code "quota_usd must be a decimal USD amount ..."}.
   */
  public static BigDecimal parse(String field, String text) {
    if (text == null || text.isEmpty()) {
      throw new IllegalArgumentException(field + " must not be empty");
    }
    if (text.length() > 21 || !SHAPE.matcher(text).matches()) {
      throw new IllegalArgumentException(
          field
              + " must be a decimal USD amount with at most 12 integer and 8 fraction digits,"
              + " not negative, no exponent (got '"
              + abbreviate(text)
              + "')");
    }
    return new BigDecimal(text);
  }

  /**
   * The canonical text of an amount: no trailing zeros, no exponent ("12.5", "0", "0.00000001").
   */
  public static String format(BigDecimal amount) {
    if (amount.signum() == 0) {
      return "0";
    }
    return amount.stripTrailingZeros().toPlainString();
  }

  private static String abbreviate(String text) {
    return text.length() <= 32 ? text : text.substring(0, 32) + "...";
  }
}
