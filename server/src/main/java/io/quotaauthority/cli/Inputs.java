package io.quotaauthority.cli;

import io.quotaauthority.keys.KeyIds;
import io.quotaauthority.keys.KeyNames;
import io.quotaauthority.text.AsciiDecimal;
import io.quotaauthority.text.Shown;

/**
 * The CLI's checks of what it is about to send, with the server's own rules (KeyNames, KeyIds,
 * AsciiDecimal): a bad value ends the command with exit code 2 and a message naming the option or
 * argument, before any connection is made.
 */
final class Inputs {
  private Inputs() {}

  static String name(String option, String name) {
    try {
      return KeyNames.check(option, name);
    } catch (IllegalArgumentException e) {
      throw new CliException(ExitCodes.USAGE, e.getMessage(), e);
    }
  }

  /** Checked, but sent as typed: the server parses it again with the same rule. */
  static String id(String field, String id) {
    try {
      KeyIds.parse(field, id);
      return id;
    } catch (IllegalArgumentException e) {
      throw new CliException(ExitCodes.USAGE, e.getMessage(), e);
    }
  }

  /** A whole number in min..max, in ASCII digits (picocli's int would also take "+5" or "٥"). */
  static int count(String option, String text, int min, int max) {
    return (int) wholeNumber(option, text, min, max);
  }

  /** {@link #count} for a range beyond int's (--tpm goes to 10^15). */
  static long wholeNumber(String option, String text, long min, long max) {
    long n = AsciiDecimal.parse(text);
    if (n == AsciiDecimal.MALFORMED) {
      throw new CliException(
          ExitCodes.USAGE,
          option
              + " must be a whole number (ASCII digits, no sign or"
              + " leading zeros), got "
              + Shown.quoted(text));
    }
    if (n < min || n > max) { // TOO_LARGE is negative
      throw new CliException(
          ExitCodes.USAGE,
          option + " must be between " + min + " and " + max + ", got " + Shown.quoted(text));
    }
    return n;
  }

  /**
   * A HOST:PORT target whose port, if it has one, is 1..65535 in ASCII digits. Targets with a
   * scheme ({@code dns:///...}, {@code unix:...}) are left to gRPC.
   *
   * @param source where the address came from (--admin-addr or QUOTA_ADMIN_ADDR), for the message
   */
  static String address(String source, String target) {
    if (target.contains("://") || target.startsWith("unix:")) {
      return target;
    }
    String port = null;
    if (target.startsWith("[")) {
      int close = target.indexOf("]:");
      port = close < 0 ? null : target.substring(close + 2); // [::1]:9192
    } else if (target.indexOf(':') >= 0 && target.indexOf(':') == target.lastIndexOf(':')) {
      port =
          target.substring(target.indexOf(':') + 1); // host:9192; a bare IPv6 literal has no port
    }
    if (port != null) {
      long n = AsciiDecimal.parse(port);
      if (n < 1 || n > 65535) {
        throw new CliException(
            ExitCodes.USAGE,
            source
                + " must be HOST:PORT with a port from 1 to 65535 (ASCII"
                + " digits), got "
                + Shown.quoted(target));
      }
    }
    return target;
  }
}
