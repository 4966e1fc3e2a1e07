package io.quotaauthority.keys;

import java.math.BigDecimal;

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

  private Money() {}

  /**
   * Parses a USD amount or throws {@link IllegalArgumentException} whose message starts with the
   * field name, e.g. {@code "quota_usd must be a decimal USD amount ..."}.
   */
  public static BigDecimal parse(String field, String text) {
    if (text == null || text.isEmpty()) {
      throw new IllegalArgumentException(field + " must not be empty");
    }
    if (!hasShape(text)) {
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
   * Whether {@code text} is 1 to 12 ASCII digits, optionally followed by a point and 1 to 8 digits
   * (the regular expression {@code [0-9]{1,12}(\\.[0-9]{1,8})?}, without its allocations: every
   * usage report's cost passes here).
   */
  static boolean hasShape(String text) {
    int n = text.length();
    int i = 0;
    while (i < n && isDigit(text.charAt(i))) {
      i++;
    }
    if (i < 1 || i > 12) {
      return false;
    }
    if (i == n) {
      return true;
    }
    if (text.charAt(i) != '.') {
      return false;
    }
    int fraction = n - i - 1;
    if (fraction < 1 || fraction > SCALE) {
      return false;
    }
    for (int j = i + 1; j < n; j++) {
      if (!isDigit(text.charAt(j))) {
        return false;
      }
    }
    return true;
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
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
