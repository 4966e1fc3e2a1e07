package io.quotaauthority.keys;

/** Key ids as the APIs show them: positive whole numbers in decimal. */
public final class KeyIds {
  private KeyIds() {}

  /** Parses an id or throws IllegalArgumentException whose message starts with the field name. */
  public static long parse(String field, String text) {
    if (text == null || text.isEmpty()) {
      throw new IllegalArgumentException(field + " must not be empty");
    }
    try {
      long id = Long.parseLong(text);
      if (id <= 0) {
        throw new NumberFormatException();
      }
      return id;
    } catch (NumberFormatException e) {
      String shown = text.length() > 32 ? text.substring(0, 32) + "..." : text;
      throw new IllegalArgumentException(field + " must be a key id (a positive whole number), got '" + shown + "'");
    }
  }
}
