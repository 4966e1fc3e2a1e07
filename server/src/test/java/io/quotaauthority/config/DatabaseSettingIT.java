package io.quotaauthority.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quotaauthority.QuotaAuthority;
import io.quotaauthority.testing.TestDatabase;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A database the server cannot use stops start-up with one line naming QUOTA_DB_URL. */
class DatabaseSettingIT {
  @TempDir Path dataDir;

  private Settings settings(String dbUrl) {
    return Settings.load(
        Map.of(
            "QUOTA_DB_URL",
            dbUrl,
            "QUOTA_DATA_DIR",
            dataDir.toString(),
            "QUOTA_ADMIN_TOKEN",
            "t".repeat(32),
            "QUOTA_REPORTER_TOKEN",
            "r".repeat(32)),
        List.of(
            "--authz-port",
            "0",
            "--metering-port",
            "0",
            "--admin-port",
            "0",
            "--metrics-port",
            "0",
            "--console-port",
            "0"));
  }

  @Test
  void start_unreachableDatabase_configExceptionNamingDbUrl() {
    long started = System.nanoTime();

    assertThatThrownBy(
            () ->
                QuotaAuthority.start(
                    settings("jdbc:postgresql://127.0.0.1:1/x"), Clock.systemUTC()))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_DB_URL: cannot connect to the database: ")
        .hasMessageNotContaining("\n");
    assertThat(System.nanoTime() - started).isLessThan(30_000_000_000L);
  }

  @Test
  void start_sqlAsciiDatabase_refusedNamingDbUrlAndEncodingNothingMigrated() throws Exception {
    String name = "qa_sql_ascii_" + ProcessHandle.current().pid();
    try (Connection c = DriverManager.getConnection(TestDatabase.adminUrl(), "postgres", "");
        Statement s = c.createStatement()) {
      s.execute("DROP DATABASE IF EXISTS " + name);
      s.execute("CREATE DATABASE " + name + " ENCODING 'SQL_ASCII' TEMPLATE template0");
    }
    try {
      assertThatThrownBy(
              () -> QuotaAuthority.start(settings(TestDatabase.urlOf(name)), Clock.systemUTC()))
          .isInstanceOf(ConfigException.class)
          .hasMessageStartingWith(
              "QUOTA_DB_URL: the database's encoding is SQL_ASCII; quota-authority needs UTF8")
          .hasMessageNotContaining("\n");
      try (Connection c = DriverManager.getConnection(TestDatabase.urlOf(name), "postgres", "");
          Statement s = c.createStatement();
          ResultSet rs =
              s.executeQuery("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")) {
        rs.next();
        assertThat(rs.getInt(1)).as("tables created in the refused database").isZero();
      }
    } finally {
      try (Connection c = DriverManager.getConnection(TestDatabase.adminUrl(), "postgres", "");
          Statement s = c.createStatement()) {
        s.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
      }
    }
  }

  @Test
  void start_notAPostgresUrl_configExceptionNamingDbUrl() {
    assertThatThrownBy(
            () -> QuotaAuthority.start(settings("jdbc:mysql://127.0.0.1/x"), Clock.systemUTC()))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_DB_URL must be a jdbc:postgresql: URL");
  }
}
