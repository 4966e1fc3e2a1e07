package io.quotaauthority.keys;

import io.quotaauthority.text.AsciiDecimal;
import io.quotaauthority.text.Shown;

/**
 * Key ids as the APIs show them: positive whole numbers in canonical ASCII decimal (1 to
 * 9223372036854775807; no sign, no leading zeros, no other digits than 0-9). The admin API, the
 * usage stream, metering and the CLI all read ids here, so "+1", "0001" or "١" is refused
 * everywhere rather than taken as key 1 by some paths.
 */
public final class KeyIds {
  /** What every refusal says after the field name; tests and the README quote it. */
  public static final String RULE =
      "must be a key id (a positive whole number in ASCII digits, no sign or leading zeros)";

  private KeyIds() {}

  /** Parses an id or throws IllegalArgumentException whose message starts with the field name. */
  public static long parse(String field, String text) {
    if (text == null || text.isEmpty()) {
      throw new IllegalArgumentException(field + " must not be empty");
    }
    long id = tryParse(text);
    if (id < 0) {
      throw new IllegalArgumentException(field + " " + RULE + ", got " + Shown.quoted(text));
    }
    return id;
  }

  /** The id, or -1 when the text is not one (for paths that count rather than throw). */
  public static long tryParse(String text) {
    long id = AsciiDecimal.parse(text);
    return id <= 0 ? -1 : id; // 0 is no id: the sequences start at 1
  }
}
