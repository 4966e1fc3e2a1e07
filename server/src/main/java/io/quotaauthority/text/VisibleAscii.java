package io.quotaauthority.text;

/**
 * Visible ASCII, 0x21..0x7E: what a bearer token and an API key are made of. A space, tab or
 * control character in one is a copy-paste accident (and gRPC logs a header it drops, value and
 * all), so every reader of a secret checks it by this one rule.
 */
public final class VisibleAscii {
  private VisibleAscii() {}

  /** The index of the first character outside 0x21..0x7E, or -1 when there is none. */
  public static int firstInvalid(CharSequence s) {
    for (int i = 0, n = s.length(); i < n; i++) {
      char c = s.charAt(i);
      if (c < 0x21 || c > 0x7E) {
        return i;
      }
    }
    return -1;
  }
}
