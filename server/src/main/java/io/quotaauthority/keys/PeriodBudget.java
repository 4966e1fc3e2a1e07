package io.quotaauthority.keys;

import java.time.DateTimeException;
import java.time.DayOfWeek;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.temporal.TemporalAdjusters;
import java.util.Locale;

/**
 * A key's periodic budget (README "Key policies"): its quota_usd is spent per period, and at each
 * boundary the period's usage (quota_used) starts again from 0. Periods are calendar periods in the
 * key's IANA time zone: a day starts at the reset time, a week on Monday at the reset time, a month
 * on its first day at the reset time (so months are 28 to 31 days, and a day across a daylight
 * saving change 23 or 25 hours).
 *
 * @param kind NONE for a key without periods (then the other fields are unused)
 * @param resetMinute minute of the day the period starts, 0..1439
 * @param zone the zone the calendar is read in
 * @param startedAt the current period's start as stored, null for NONE
 * @param endsAt the current period's end (exclusive) as stored, null for NONE
 */
public record PeriodBudget(
    Kind kind, int resetMinute, ZoneId zone, Instant startedAt, Instant endsAt) {

  public static final PeriodBudget NONE =
      new PeriodBudget(Kind.NONE, 0, ZoneOffset.UTC, null, null);

  public enum Kind {
    NONE,
    DAILY,
    WEEKLY,
    MONTHLY;

    /** The stored and wire name: lower case. */
    public String wireName() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** "monthly" → "month", for messages. */
    public String unit() {
      return switch (this) {
        case NONE -> "";
        case DAILY -> "day";
        case WEEKLY -> "week";
        case MONTHLY -> "month";
      };
    }

    /** Reads a wire name; IllegalArgumentException naming {@code field} otherwise. */
    public static Kind parse(String field, String value) {
      if (value == null || value.isEmpty()) {
        return NONE;
      }
      for (Kind k : values()) {
        if (k.wireName().equals(value)) {
          return k;
        }
      }
      throw new IllegalArgumentException(
          field + " must be one of none, daily, weekly, monthly, got '" + Shown.cut(value) + "'");
    }
  }

  public boolean active() {
    return kind != Kind.NONE;
  }

  /** The reset time as HH:MM. */
  public String resetTime() {
    return String.format(Locale.ROOT, "%02d:%02d", resetMinute / 60, resetMinute % 60);
  }

  /** A budget of {@code kind} whose current period is the one holding {@code now}. */
  public static PeriodBudget at(Kind kind, int resetMinute, ZoneId zone, Instant now) {
    if (kind == Kind.NONE) {
      return new PeriodBudget(Kind.NONE, resetMinute, zone, null, null);
    }
    Instant[] b = bounds(kind, resetMinute, zone, now);
    return new PeriodBudget(kind, resetMinute, zone, b[0], b[1]);
  }

  /** The same budget moved on to the period holding {@code now}. */
  public PeriodBudget rolledTo(Instant now) {
    return at(kind, resetMinute, zone, now);
  }

  /**
   * The [start, end) of the period of {@code kind} that holds {@code now}. A reset time that a
   * daylight saving change skips on some day is read as ZonedDateTime does (moved later by the
   * gap); one it repeats, as its first occurrence.
   */
  public static Instant[] bounds(Kind kind, int resetMinute, ZoneId zone, Instant now) {
    LocalTime at = LocalTime.of(resetMinute / 60, resetMinute % 60);
    LocalDate today = now.atZone(zone).toLocalDate();
    LocalDate first =
        switch (kind) {
          case DAILY -> today;
          case WEEKLY -> today.with(TemporalAdjusters.previousOrSame(DayOfWeek.MONDAY));
          case MONTHLY -> today.withDayOfMonth(1);
          case NONE -> throw new IllegalArgumentException("no period");
        };
    if (start(first, at, zone).isAfter(now)) {
      first = step(kind, first, -1);
    }
    return new Instant[] {start(first, at, zone), start(step(kind, first, 1), at, zone)};
  }

  private static Instant start(LocalDate day, LocalTime at, ZoneId zone) {
    return ZonedDateTime.of(day, at, zone).toInstant();
  }

  private static LocalDate step(Kind kind, LocalDate d, int n) {
    return switch (kind) {
      case DAILY -> d.plusDays(n);
      case WEEKLY -> d.plusWeeks(n);
      case MONTHLY -> d.plusMonths(n);
      case NONE -> d;
    };
  }

  /** "HH:MM" → minute of day; IllegalArgumentException naming the field otherwise. */
  public static int parseResetTime(String field, String value) {
    if (value == null || value.isEmpty()) {
      return 0;
    }
    if (value.length() != 5
        || value.charAt(2) != ':'
        || !digits(value.substring(0, 2))
        || !digits(value.substring(3))) {
      throw new IllegalArgumentException(
          field
              + " must be a time of day HH:MM from 00:00 to 23:59, got '"
              + Shown.cut(value)
              + "'");
    }
    int h = Integer.parseInt(value.substring(0, 2));
    int m = Integer.parseInt(value.substring(3));
    if (h > 23 || m > 59) {
      throw new IllegalArgumentException(
          field + " must be a time of day HH:MM from 00:00 to 23:59, got '" + value + "'");
    }
    return h * 60 + m;
  }

  private static boolean digits(String s) {
    return s.chars().allMatch(c -> c >= '0' && c <= '9');
  }

  /**
   * An IANA zone name (Europe/Paris, America/New_York) or UTC; empty means UTC. Fixed offsets
   * (+02:00) are refused: they have no calendar of their own and hide daylight saving.
   */
  public static ZoneId parseZone(String field, String value) {
    if (value == null || value.isEmpty() || value.equals("UTC")) {
      return ZoneOffset.UTC;
    }
    try {
      ZoneId z = ZoneId.of(value);
      if (z instanceof ZoneOffset || !z.getId().equals(value) || value.length() > 64) {
        throw new DateTimeException("offset");
      }
      return z;
    } catch (DateTimeException e) {
      throw new IllegalArgumentException(
          field
              + " '"
              + Shown.cut(value)
              + "' is not an IANA time zone name (Europe/Paris, America/New_York, UTC)");
    }
  }

  /** The zone as stored: "UTC" or the IANA name. */
  public String zoneName() {
    return zone instanceof ZoneOffset ? "UTC" : zone.getId();
  }

  /** Values shown in messages, cut and reduced to visible ASCII. */
  static final class Shown {
    private Shown() {}

    static String cut(String s) {
      String c = s.length() > 64 ? s.substring(0, 64) + "..." : s;
      return c.replaceAll("[^\\x20-\\x7e]", "?");
    }
  }
}
