package io.quotaauthority.text;

/**
 * The rule for a name someone gives for themselves in the audit ({@code x-quota-actor}): the CLI
 * sends the OS user through it, and the server applies it again to whatever a caller claims, since
 * a caller need not be our CLI.
 */
public final class ActorNames {
  /** Longest name kept. */
  public static final int MAX_LENGTH = 64;

  private ActorNames() {}

  /**
   * Characters outside {@code A-Za-z0-9@._-} become {@code _} and at most {@value #MAX_LENGTH} are
   * kept: safe in a header, a log line and a table.
   */
  public static String sanitize(String name) {
    String s = name.replaceAll("[^A-Za-z0-9@._-]", "_");
    return s.length() > MAX_LENGTH ? s.substring(0, MAX_LENGTH) : s;
  }
}
