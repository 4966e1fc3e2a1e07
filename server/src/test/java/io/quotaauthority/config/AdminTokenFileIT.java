package io.quotaauthority.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** With no QUOTA_ADMIN_TOKEN the admin token lives in <data dir>/admin-token. */
class AdminTokenFileIT {
  private static TestDatabase db;
  private ListAppender<ILoggingEvent> log;

  @TempDir Path dataDir;

  @BeforeAll
  static void createDatabase() {
    db = TestDatabase.create();
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
  }

  @BeforeEach
  void captureLog() {
    log = new ListAppender<>();
    log.start();
    root().addAppender(log);
  }

  @AfterEach
  void releaseLog() {
    root().detachAppender(log);
  }

  private static Logger root() {
    return (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
  }

  private TestServer startWithoutToken() {
    return TestServer.start(
        db,
        Map.of(Setting.ADMIN_TOKEN, "", Setting.DATA_DIR, dataDir.toString()),
        Clock.systemUTC());
  }

  private static KeyAdminServiceGrpc.KeyAdminServiceBlockingStub stub(
      TestServer server, String token) {
    return KeyAdminServiceGrpc.newBlockingStub(server.adminChannel())
        .withInterceptors(TestServer.bearer(token));
  }

  private List<String> logLines() {
    return log.list.stream().map(ILoggingEvent::getFormattedMessage).toList();
  }

  @Test
  void start_noAdminToken_generatesTokenFileWithMode0600ReusedAtRestart() throws Exception {
    Path file = dataDir.resolve("admin-token");
    String token;
    try (TestServer first = startWithoutToken()) {
      assertThat(file).exists();
      assertThat(Files.getPosixFilePermissions(file))
          .isEqualTo(PosixFilePermissions.fromString("rw-------"))
          .doesNotContain(PosixFilePermission.GROUP_READ, PosixFilePermission.OTHERS_READ);
      token = Files.readString(file, StandardCharsets.UTF_8).trim();
      assertThat(token).matches("[A-Za-z0-9_-]{43}");

      assertThat(
              stub(first, token)
                  .createKey(CreateKeyRequest.newBuilder().setName("with-file-token").build())
                  .getKey()
                  .getName())
          .isEqualTo("with-file-token");
      assertThatThrownBy(
              () ->
                  stub(first, TestServer.ADMIN_TOKEN)
                      .listKeys(ListKeysRequest.getDefaultInstance()))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED));
    }
    FileTime written = Files.getLastModifiedTime(file);

    try (TestServer second = startWithoutToken()) {
      assertThat(Files.readString(file, StandardCharsets.UTF_8).trim()).isEqualTo(token);
      assertThat(Files.getLastModifiedTime(file)).isEqualTo(written);
      assertThat(Files.getPosixFilePermissions(file))
          .isEqualTo(PosixFilePermissions.fromString("rw-------"));
      assertThat(stub(second, token).listKeys(ListKeysRequest.getDefaultInstance()).getKeysList())
          .extracting(k -> k.getName())
          .contains("with-file-token");
    }

    List<String> lines = logLines();
    assertThat(lines)
        .contains(
            "generated a new token into " + file.toAbsolutePath() + " (mode 0600)",
            "using the token in " + file.toAbsolutePath());
    assertThat(lines).noneMatch(l -> l.contains(token));
    assertThat(log.list)
        .noneMatch(
            e ->
                e.getThrowableProxy() != null
                    && e.getThrowableProxy().getMessage() != null
                    && e.getThrowableProxy().getMessage().contains(token));
  }

  @Test
  void resolve_configuredToken_usedAndNoFileWritten() {
    assertThat(TokenFile.resolve(Optional.of("configured"), dataDir, "admin-token"))
        .isEqualTo("configured");
    assertThat(dataDir.resolve("admin-token")).doesNotExist();
  }

  @Test
  void resolve_missingDataDir_createdWithToken() {
    Path nested = dataDir.resolve("a/b");

    String token = TokenFile.resolve(Optional.empty(), nested, "reporter-token");

    assertThat(nested.resolve("reporter-token")).hasContent(token);
    assertThat(logLines()).noneMatch(l -> l.contains(token));
  }

  @Test
  void resolve_twoFiles_differentTokens() {
    assertThat(TokenFile.resolve(Optional.empty(), dataDir, "admin-token"))
        .isNotEqualTo(TokenFile.resolve(Optional.empty(), dataDir, "reporter-token"));
  }

  @Test
  void resolve_emptyTokenFile_configExceptionNamingFile() throws Exception {
    Path file = Files.writeString(dataDir.resolve("admin-token"), "\n");
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));

    assertThatThrownBy(() -> TokenFile.resolve(Optional.empty(), dataDir, "admin-token"))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKEN: " + file + " is empty; delete it to have a new token generated");
  }

  @Test
  void resolve_dataDirIsAFile_configExceptionNamingDataDir() throws Exception {
    Path notADir = Files.writeString(dataDir.resolve("plain-file"), "x");

    assertThatThrownBy(() -> TokenFile.resolve(Optional.empty(), notADir, "admin-token"))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_DATA_DIR: cannot read or create ");
  }
}
