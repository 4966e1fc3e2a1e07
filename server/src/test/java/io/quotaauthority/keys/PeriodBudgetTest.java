package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.time.ZoneId;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PeriodBudgetTest {

  @ParameterizedTest(name = "{0} {1} {2} at {3}")
  @CsvSource({
    // months end on the calendar, in the key's zone
    "MONTHLY, 00:00, UTC, 2026-02-14T10:00:00Z, 2026-02-01T00:00:00Z, 2026-03-01T00:00:00Z",
    "MONTHLY, 00:00, UTC, 2024-02-29T23:59:59Z, 2024-02-01T00:00:00Z, 2024-03-01T00:00:00Z",
    "MONTHLY, 00:00, Europe/Paris, 2026-12-31T22:59:59Z, 2026-11-30T23:00:00Z, 2026-12-31T23:00:00Z",
    "MONTHLY, 00:00, Europe/Paris, 2026-12-31T23:00:00Z, 2026-12-31T23:00:00Z, 2027-01-31T23:00:00Z",
    // a month across the spring change is an hour shorter in UTC
    "MONTHLY, 00:00, Europe/Paris, 2026-03-15T12:00:00Z, 2026-02-28T23:00:00Z, 2026-03-31T22:00:00Z",
    // a reset time later in the day: before it, the period began the month before
    "MONTHLY, 09:30, America/New_York, 2026-06-01T13:00:00Z, 2026-05-01T13:30:00Z, 2026-06-01T13:30:00Z",
    // days, and the 23-hour day of a daylight saving change
    "DAILY, 00:00, UTC, 2026-07-04T00:00:00Z, 2026-07-04T00:00:00Z, 2026-07-05T00:00:00Z",
    "DAILY, 00:00, Europe/Paris, 2026-03-29T12:00:00Z, 2026-03-28T23:00:00Z, 2026-03-29T22:00:00Z",
    "DAILY, 06:00, Asia/Tokyo, 2026-07-04T20:59:59Z, 2026-07-03T21:00:00Z, 2026-07-04T21:00:00Z",
    // weeks start on Monday
    "WEEKLY, 00:00, UTC, 2026-12-02T12:00:00Z, 2026-11-30T00:00:00Z, 2026-12-07T00:00:00Z",
    "WEEKLY, 00:00, UTC, 2026-11-30T00:00:00Z, 2026-11-30T00:00:00Z, 2026-12-07T00:00:00Z",
    "WEEKLY, 00:00, UTC, 2026-11-29T23:59:59Z, 2026-11-23T00:00:00Z, 2026-11-30T00:00:00Z",
  })
  void bounds_kindTimeZoneAndInstant_calendarPeriodHoldingIt(
      PeriodBudget.Kind kind, String reset, String zone, String now, String start, String end) {
    Instant[] b =
        PeriodBudget.bounds(
            kind,
            PeriodBudget.parseResetTime("t", reset),
            PeriodBudget.parseZone("z", zone),
            Instant.parse(now));
    assertThat(b[0]).isEqualTo(Instant.parse(start));
    assertThat(b[1]).isEqualTo(Instant.parse(end));
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "yearly|budget_period must be one of none, daily, weekly, monthly, got 'yearly'",
        "Monthly|budget_period must be one of none, daily, weekly, monthly, got 'Monthly'",
      })
  void kind_unknown_refusedNamingTheField(String value, String message) {
    assertThatThrownBy(() -> PeriodBudget.Kind.parse("budget_period", value)).hasMessage(message);
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"24:00", "9:30", "09:60", "0930", "ab:cd", "09:30:00"})
  void resetTime_malformed_refused(String value) {
    assertThatThrownBy(() -> PeriodBudget.parseResetTime("budget_reset_time", value))
        .hasMessageStartingWith("budget_reset_time must be a time of day HH:MM");
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"Mars/Olympus_Mons", "+02:00", "UTC+1", "europe/paris", "CET+", "Etc/Nowhere"})
  void zone_notAnIanaName_refusedNamingTheField(String value) {
    assertThatThrownBy(() -> PeriodBudget.parseZone("budget_time_zone", value))
        .hasMessageEndingWith("is not an IANA time zone name (Europe/Paris, America/New_York, UTC)")
        .hasMessageStartingWith("budget_time_zone '");
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"Europe/Paris", "America/New_York", "UTC", "Asia/Kolkata"})
  void zone_ianaName_accepted(String value) {
    assertThat(PeriodBudget.parseZone("z", value).getId())
        .isEqualTo(value.equals("UTC") ? "Z" : ZoneId.of(value).getId());
  }
}
