package io.quotaauthority.text;

/**
 * A value quoted back in an error message: anything outside printable ASCII becomes {@code
 * \\u{XXXX}}, so a message stays one line, cannot carry terminal escapes or a right-to-left
 * override into a log or a terminal, and shows what was really sent ("１" and "1" look alike).
 */
public final class Shown {
  /** Longer values are cut: an error message is no place for a whole request. */
  static final int MAX_CODE_POINTS = 40;

  private Shown() {}

  /** The value between single quotes, escaped and cut to {@value #MAX_CODE_POINTS} code points. */
  public static String quoted(String value) {
    StringBuilder b = new StringBuilder("'");
    int count = 0;
    for (int i = 0; i < value.length(); ) {
      int c = value.codePointAt(i);
      i += Character.charCount(c);
      if (count++ == MAX_CODE_POINTS) {
        b.append("...");
        break;
      }
      if (c >= 0x20 && c <= 0x7e && c != '\\') {
        b.append((char) c);
      } else {
        b.append(String.format("\\u{%04X}", c));
      }
    }
    return b.append('\'').toString();
  }

  /** "U+202E", how Unicode names a code point. */
  public static String codePoint(int c) {
    return String.format("U+%04X", c);
  }
}
