package io.quotaauthority.keys;

import io.quotaauthority.text.Shown;

/**
 * The rule for a key's name, applied by CreateKey and UpdateKey and by the CLI before it sends one.
 * A name is shown in tables, prompts ("Delete key 7 "team-a"?"), logs and audit rows, so it must
 * look like what it is:
 *
 * <ul>
 *   <li>1 to {@value #MAX_CODE_POINTS} Unicode code points (PostgreSQL's {@code length()} counts
 *       the same way, so 200 emoji fit, as do 200 ASCII letters);
 *   <li>no control characters (Unicode category Cc: NUL, newline, tab, ESC, U+0085 ...), no line or
 *       paragraph separators (U+2028, U+2029), no format characters (Cf: the bidi overrides and
 *       isolates U+202A–U+202E and U+2066–U+2069, zero-width U+200B–U+200F, U+2060, the BOM U+FEFF,
 *       soft hyphen, tag characters ...), no lone surrogates. Cf includes the zero-width joiner, so
 *       emoji ZWJ sequences are refused too: a name is a label, not a place for invisible
 *       characters;
 *   <li>not blank: at least one code point that is not whitespace in Unicode's sense (NBSP, U+3000
 *       and the other space separators count as whitespace);
 *   <li>no whitespace at the start or the end. It is refused, not trimmed: what is stored is
 *       exactly what was sent, and "team-a" and "team-a " never look like the same key in a list.
 * </ul>
 */
public final class KeyNames {
  public static final int MAX_CODE_POINTS = 200;

  private KeyNames() {}

  /**
   * The name unchanged if it keeps the rule, else IllegalArgumentException whose message starts
   * with {@code field} and names the first offending code point by position (1-based) and U+ value,
   * never echoing the name itself.
   */
  public static String check(String field, String name) {
    if (name == null || name.isEmpty()) {
      throw new IllegalArgumentException(field + " must not be empty");
    }
    int count = name.codePointCount(0, name.length());
    if (count > MAX_CODE_POINTS) {
      throw new IllegalArgumentException(
          field
              + " must be at most "
              + MAX_CODE_POINTS
              + " characters (Unicode code points), got "
              + count);
    }
    boolean blank = true;
    int position = 0;
    for (int i = 0; i < name.length(); ) {
      int c = name.codePointAt(i);
      i += Character.charCount(c);
      position++;
      String refused = refusal(c);
      if (refused != null) {
        throw new IllegalArgumentException(
            field
                + " must not contain "
                + refused
                + " ("
                + Shown.codePoint(c)
                + " at character "
                + position
                + ")");
      }
      blank &= isSpace(c);
    }
    if (blank) {
      throw new IllegalArgumentException(field + " must not be empty or only whitespace");
    }
    if (isSpace(name.codePointAt(0)) || isSpace(name.codePointBefore(name.length()))) {
      throw new IllegalArgumentException(field + " must not start or end with whitespace");
    }
    return name;
  }

  /** True for a code point no name may hold (for display code that must neutralise old rows). */
  public static boolean isRefused(int c) {
    return refusal(c) != null;
  }

  /** What kind of refused character c is, or null if a name may hold it. */
  private static String refusal(int c) {
    if (isBidiControl(c)) {
      // Checked before Cf (which holds them) for a message that says why: they reorder the text
      // shown around them, e.g. the CLI's table and its delete prompt.
      return "bidirectional override or isolate characters";
    }
    return switch (Character.getType(c)) {
      case Character.CONTROL -> "control characters";
      case Character.FORMAT -> "invisible format characters (zero-width, BOM and the like)";
      case Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR ->
          "line or paragraph separators";
      // A lone surrogate is not text; PostgreSQL would store a '?' in its place.
      case Character.SURROGATE -> "unpaired surrogates";
      default -> null;
    };
  }

  private static boolean isBidiControl(int c) {
    return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
  }

  /** Whitespace in Unicode's sense: Java's isWhitespace leaves out NBSP, U+2007 and U+202F. */
  private static boolean isSpace(int c) {
    return Character.isWhitespace(c) || Character.isSpaceChar(c);
  }
}
