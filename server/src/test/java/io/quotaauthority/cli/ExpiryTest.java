package io.quotaauthority.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class ExpiryTest {
  private static final Instant NOW = Instant.parse("2026-03-01T10:00:00Z");

  @Test
  void parse_days_addsThemToNow() {
    assertThat(Expiry.parse("--expires-in", "7d", NOW)).isEqualTo(NOW.plus(Duration.ofDays(7)));
    assertThat(Expiry.parse("--expires-in", "90d", NOW)).isEqualTo(NOW.plus(Duration.ofDays(90)));
    assertThat(Expiry.parse("--expires-in", "365d", NOW)).isEqualTo(NOW.plus(Duration.ofDays(365)));
  }

  @Test
  void parse_hours_addsThemToNow() {
    assertThat(Expiry.parse("--expires-in", "12h", NOW)).isEqualTo(NOW.plus(Duration.ofHours(12)));
  }

  @Test
  void parse_rfc3339WithOffset_isThatInstant() {
    assertThat(Expiry.parse("--expires-in", "2030-01-31T01:00:00+01:00", NOW))
        .isEqualTo(Instant.parse("2030-01-31T00:00:00Z"));
  }

  @Test
  void parse_zeroDays_isAUsageError() {
    assertThatThrownBy(() -> Expiry.parse("--expires-in", "0d", NOW))
        .isInstanceOfSatisfying(
            CliException.class, e -> assertThat(e.exitCode()).isEqualTo(ExitCodes.USAGE));
  }

  @Test
  void parse_garbageOrMissingOffset_isAUsageErrorNamingTheOption() {
    for (String bad : new String[] {"7", "7w", "tomorrow", "2030-01-31T00:00:00", "-1d"}) {
      assertThatThrownBy(() -> Expiry.parse("--expires-in", bad, NOW))
          .isInstanceOf(CliException.class)
          .hasMessage("--expires-in must be " + Expiry.FORMS + ", got '" + bad + "'");
    }
  }
}
