package io.quotaauthority.cli;

import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reads --expires-in / --expires-at: a span from now ("7d", "90d", "12h") or an RFC 3339 time. */
final class Expiry {
  private static final Pattern SPAN = Pattern.compile("(\\d{1,6})([dh])");
  static final String FORMS =
      "like 7d, 30d, 90d, <n>d, <n>h or an RFC 3339 time such as 2030-01-31T00:00:00Z";

  private Expiry() {}

  static Instant parse(String option, String text, Instant now) {
    String v = text.trim();
    Matcher m = SPAN.matcher(v);
    if (m.matches()) {
      long n = Long.parseLong(m.group(1));
      if (n == 0) {
        throw new CliException(
            ExitCodes.USAGE, option + " must be in the future, got '" + text + "'");
      }
      return now.plus(m.group(2).equals("d") ? Duration.ofDays(n) : Duration.ofHours(n));
    }
    return time(option, v);
  }

  static Instant time(String option, String text) {
    try {
      return OffsetDateTime.parse(text.trim()).toInstant();
    } catch (DateTimeParseException e) {
      throw new CliException(
          ExitCodes.USAGE, option + " must be " + FORMS + ", got '" + text + "'");
    }
  }
}
