package io.quotaauthority.keys;

import java.util.ArrayList;
import java.util.List;

/**
 * A key's model allow-list: exact model names and prefixes ending in {@code *} ({@code gpt-4o},
 * {@code claude-3-5-*}). Empty means every model. Compared case-sensitively, as the providers name
 * their models.
 */
public final class ModelAllowList {
  /** The most entries one list may hold. */
  public static final int MAX_ENTRIES = 64;

  /** The longest entry. */
  public static final int MAX_ENTRY_LENGTH = 128;

  /**
   * What Check writes upstream between entries of {@link #header()}: no entry contains it (entries
   * are visible ASCII without ',').
   */
  public static final char SEPARATOR = ',';

  public static final ModelAllowList NONE = new ModelAllowList(List.of());

  private final List<String> entries;

  /** {@link #header()}, joined once: Check writes it into every allow of the key. */
  private final String header;

  private ModelAllowList(List<String> entries) {
    this.entries = entries;
    this.header = String.join(String.valueOf(SEPARATOR), entries);
  }

  /**
   * Parses a list as the admin API received it; throws IllegalArgumentException naming the field
   * and the first bad entry. Duplicates are kept once, in the order given.
   */
  public static ModelAllowList parse(String field, List<String> raw) {
    if (raw.isEmpty()) {
      return NONE;
    }
    if (raw.size() > MAX_ENTRIES) {
      throw new IllegalArgumentException(
          field + " has " + raw.size() + " entries; at most " + MAX_ENTRIES + " are allowed");
    }
    List<String> out = new ArrayList<>(raw.size());
    for (int i = 0; i < raw.size(); i++) {
      String e = raw.get(i);
      String problem = problem(e);
      if (problem != null) {
        throw new IllegalArgumentException(field + "[" + i + "] " + problem);
      }
      if (!out.contains(e)) {
        out.add(e);
      }
    }
    return new ModelAllowList(List.copyOf(out));
  }

  /** A list as stored (already valid), or as Check passed it upstream in {@link #header()}. */
  public static ModelAllowList of(List<String> stored) {
    return stored.isEmpty() ? NONE : new ModelAllowList(List.copyOf(stored));
  }

  /** The list Check wrote in its header, or null when the value is malformed. */
  public static ModelAllowList fromHeader(String value) {
    if (value == null || value.isEmpty()) {
      return null;
    }
    List<String> out = new ArrayList<>();
    int start = 0;
    while (start <= value.length()) {
      int end = value.indexOf(SEPARATOR, start);
      if (end < 0) {
        end = value.length();
      }
      String e = value.substring(start, end);
      if (problem(e) != null || out.size() == MAX_ENTRIES) {
        return null;
      }
      out.add(e);
      start = end + 1;
    }
    return new ModelAllowList(List.copyOf(out));
  }

  private static String problem(String e) {
    if (e == null || e.isEmpty()) {
      return "must not be empty";
    }
    if (e.length() > MAX_ENTRY_LENGTH) {
      return "is longer than " + MAX_ENTRY_LENGTH + " characters";
    }
    for (int i = 0; i < e.length(); i++) {
      char ch = e.charAt(i);
      if (ch <= ' ' || ch >= 0x7f || ch == SEPARATOR) {
        return "'"
            + e.substring(0, Math.min(e.length(), 40)).replaceAll("[^\\x21-\\x7e]", "?")
            + "' may hold only visible ASCII other than ',' (character "
            + (i + 1)
            + ")";
      }
      if (ch == '*' && i != e.length() - 1) {
        return "'" + e + "' may have '*' only at its end (a prefix)";
      }
    }
    if (e.equals("*")) {
      return "'*' allows every model; leave the list empty instead";
    }
    return null;
  }

  public List<String> entries() {
    return entries;
  }

  public boolean isEmpty() {
    return entries.isEmpty();
  }

  /**
   * Whether {@code model} is allowed: equal to an entry, or starting with a prefix entry's text.
   */
  public boolean allows(String model) {
    if (entries.isEmpty()) {
      return true;
    }
    if (model == null) {
      return false;
    }
    for (String e : entries) {
      int last = e.length() - 1;
      if (e.charAt(last) == '*') {
        if (model.startsWith(e.substring(0, last))) {
          return true;
        }
      } else if (e.equals(model)) {
        return true;
      }
    }
    return false;
  }

  /** The entries joined by {@link #SEPARATOR}, for the header Check passes to metering. */
  public String header() {
    return header;
  }
}
