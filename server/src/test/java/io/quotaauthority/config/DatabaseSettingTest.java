package io.quotaauthority.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quotaauthority.QuotaAuthority;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A database the server cannot use stops start-up with one line naming QUOTA_DB_URL. */
class DatabaseSettingTest {
  @TempDir
  Path dataDir;

  private Settings settings(String dbUrl) {
    return Settings.load(Map.of("QUOTA_DB_URL", dbUrl, "QUOTA_DATA_DIR", dataDir.toString(),
        "QUOTA_ADMIN_TOKEN", "t".repeat(32), "QUOTA_REPORTER_TOKEN", "r".repeat(32)),
        List.of("--authz-port", "0", "--admin-port", "0", "--metrics-port", "0"));
  }

  @Test
  void start_unreachableDatabase_configExceptionNamingDbUrl() {
    long started = System.nanoTime();

    assertThatThrownBy(() -> QuotaAuthority.start(settings("jdbc:postgresql://127.0.0.1:1/x"), Clock.systemUTC()))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_DB_URL: cannot connect to the database: ")
        .hasMessageNotContaining("\n");
    assertThat(System.nanoTime() - started).isLessThan(30_000_000_000L);
  }

  @Test
  void start_notAPostgresUrl_configExceptionNamingDbUrl() {
    assertThatThrownBy(() -> QuotaAuthority.start(settings("jdbc:mysql://127.0.0.1/x"), Clock.systemUTC()))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_DB_URL must be a jdbc:postgresql: URL");
  }
}
