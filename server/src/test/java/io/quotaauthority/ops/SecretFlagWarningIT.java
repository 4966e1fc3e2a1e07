package io.quotaauthority.ops;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.quotaauthority.QuotaAuthority;
import io.quotaauthority.config.Settings;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A secret passed as a flag works, but draws a WARN naming the flag (it shows in ps); neither that
 * line nor any other of a whole start, admin call and stop holds the value.
 */
class SecretFlagWarningIT {
  static final String ADMIN = "flag-admin-token-0123456789abcdef0123";
  static final String REPORTER = "flag-reporter-token-0123456789abcdef01";
  static final String PASSWORD = "flag-db-password-Zq9";

  @Test
  void serve_secretsAsFlags_warnNamingEachFlagAndNoValueInAnyLine() throws Exception {
    List<ILoggingEvent> events;
    List<String> text;
    List<String> json;
    Path dataDir = Files.createTempDirectory("qa-flags");
    try (TestDatabase db = TestDatabase.create();
        LogCapture logs = new LogCapture()) {
      // The test database trusts 127.0.0.1, so the password is sent but never needed.
      Settings settings =
          Settings.load(
              Map.of("QUOTA_DB_URL", db.url(), "QUOTA_DATA_DIR", dataDir.toString()),
              List.of(
                  "--authz-port=0",
                  "--admin-port=0",
                  "--metrics-port=0",
                  "--admin-token",
                  ADMIN,
                  "--reporter-token=" + REPORTER,
                  "--db-password",
                  PASSWORD));
      assertThat(settings.adminToken()).contains(ADMIN);
      try (QuotaAuthority app = QuotaAuthority.start(settings, Clock.systemUTC())) {
        ManagedChannel channel =
            ManagedChannelBuilder.forAddress("127.0.0.1", app.adminPort()).usePlaintext().build();
        try {
          assertThat(
                  KeyAdminServiceGrpc.newBlockingStub(channel)
                      .withInterceptors(TestServer.bearer(ADMIN))
                      .createKey(CreateKeyRequest.newBuilder().setName("flagged").build())
                      .getKey()
                      .getName())
              .isEqualTo("flagged");
        } finally {
          channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
      }
      events = logs.events();
      text = logs.asText();
      json = logs.asJson();
    }

    List<String> warnings =
        events.stream()
            .filter(e -> e.getLevel() == Level.WARN)
            .filter(e -> e.getLoggerName().equals(Settings.class.getName()))
            .map(ILoggingEvent::getFormattedMessage)
            .toList();
    assertThat(warnings)
        .containsExactlyInAnyOrder(
            "--db-password puts a secret on the command line, where every local user can read it"
                + " (ps, /proc/<pid>/cmdline); use QUOTA_DB_PASSWORD or QUOTA_DB_PASSWORD_FILE instead",
            "--admin-token puts a secret on the command line, where every local user can read it"
                + " (ps, /proc/<pid>/cmdline); use QUOTA_ADMIN_TOKEN or QUOTA_ADMIN_TOKEN_FILE instead",
            "--reporter-token puts a secret on the command line, where every local user can read it"
                + " (ps, /proc/<pid>/cmdline); use QUOTA_REPORTER_TOKEN or QUOTA_REPORTER_TOKEN_FILE instead");
    // The key's creation was logged, so the capture saw the whole run.
    assertThat(text).anyMatch(l -> l.contains("admin create key_id="));
    for (String secret : List.of(ADMIN, REPORTER, PASSWORD)) {
      assertThat(text).noneMatch(l -> l.contains(secret));
      assertThat(json).noneMatch(l -> l.contains(secret));
    }
  }

  @Test
  void load_secretsFromEnvironmentOrEmptyFlag_noWarning() {
    try (LogCapture logs = new LogCapture()) {
      Settings.load(Map.of("QUOTA_ADMIN_TOKEN", ADMIN), List.of("--db-password="));

      assertThat(logs.events()).noneMatch(e -> e.getLevel() == Level.WARN);
    }
  }
}
