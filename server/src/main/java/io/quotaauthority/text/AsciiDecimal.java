package io.quotaauthority.text;

/**
 * The one parser for whole numbers typed by people or other programs: key ids, ports, page sizes,
 * counts and the number in a duration. Only the canonical form is a number: ASCII digits {@code
 * 0-9}, at least one, no sign, no leading zero (except "0" itself), no spaces. {@link
 * Long#parseLong} and {@link Character#isDigit} also take {@code +1}, Arabic-Indic, Devanagari or
 * full-width digits; a value that means the same thing in several spellings cannot be compared,
 * logged or audited safely, so those spellings are refused here.
 */
public final class AsciiDecimal {
  /** {@link #parse} of text that is not a canonical decimal. */
  public static final long MALFORMED = -1;

  /** {@link #parse} of a canonical decimal above {@link Long#MAX_VALUE}. */
  public static final long TOO_LARGE = -2;

  private AsciiDecimal() {}

  /**
   * The value of a canonical decimal, else {@link #MALFORMED} or {@link #TOO_LARGE}. Sentinels, not
   * exceptions: the callers word their own message naming their field.
   */
  public static long parse(CharSequence text) {
    if (text == null || text.length() == 0) {
      return MALFORMED;
    }
    int n = text.length();
    if (n > 1 && text.charAt(0) == '0') {
      return MALFORMED; // "0001" would be a second spelling of 1
    }
    long value = 0;
    for (int i = 0; i < n; i++) {
      char c = text.charAt(i);
      if (c < '0' || c > '9') {
        return MALFORMED;
      }
      int digit = c - '0';
      // value * 10 + digit > Long.MAX_VALUE, asked without overflowing.
      if (value > (Long.MAX_VALUE - digit) / 10) {
        // Keep scanning: "99999999999999999999x" is malformed, not merely too large.
        for (int j = i + 1; j < n; j++) {
          if (text.charAt(j) < '0' || text.charAt(j) > '9') {
            return MALFORMED;
          }
        }
        return TOO_LARGE;
      }
      value = value * 10 + digit;
    }
    return value;
  }

  /** True for a canonical decimal of any size. */
  public static boolean isCanonical(CharSequence text) {
    return parse(text) != MALFORMED;
  }
}
