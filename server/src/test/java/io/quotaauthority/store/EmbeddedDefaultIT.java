package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.quotaauthority.QuotaAuthority;
import io.quotaauthority.config.Settings;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.testing.TestServer;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quick start: no QUOTA_DB_URL starts an embedded PostgreSQL under <data dir>/pg that keeps
 * what it acknowledged (clean restart, PostgreSQL killed with -9), lets no other OS user in, and
 * upgrades a directory of the earlier trust-based version. Seven embedded starts in all: the slow
 * class of the store tests.
 */
class EmbeddedDefaultIT {
  /** One running instance for the tests that only look at it. */
  @TempDir static Path sharedDir;

  private static QuotaAuthority shared;

  @TempDir Path dataDir;

  @BeforeAll
  static void startShared() throws IOException {
    shared = QuotaAuthority.start(settings(sharedDir), Clock.systemUTC());
  }

  @AfterAll
  static void stopShared() {
    if (shared != null) {
      shared.close();
    }
  }

  /** Settings as Main builds them: an environment without QUOTA_DB_URL, and flags. */
  private static Settings settings(Path dir) {
    return Settings.load(
        Map.of("QUOTA_DATA_DIR", dir.toString(), "QUOTA_LOG_FORMAT", "text"),
        List.of(
            "--authz-port",
            "0",
            "--metering-port",
            "0",
            "--admin-port=0",
            "--metrics-port",
            "0",
            "--console-port",
            "0"));
  }

  private static <T> T withAdmin(
      QuotaAuthority app,
      Path dir,
      Function<KeyAdminServiceGrpc.KeyAdminServiceBlockingStub, T> call)
      throws Exception {
    String token = Files.readString(dir.resolve("admin-token"), StandardCharsets.UTF_8).trim();
    ManagedChannel channel =
        ManagedChannelBuilder.forAddress("127.0.0.1", app.adminPort()).usePlaintext().build();
    try {
      return call.apply(
          KeyAdminServiceGrpc.newBlockingStub(channel)
              .withInterceptors(TestServer.bearer(token))
              .withDeadlineAfter(30, TimeUnit.SECONDS));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static List<ApiKey> createKeys(QuotaAuthority app, Path dir, String prefix, int n)
      throws Exception {
    List<ApiKey> created = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String name = prefix + "-" + i;
      created.add(
          withAdmin(
              app,
              dir,
              admin ->
                  admin
                      .createKey(
                          CreateKeyRequest.newBuilder().setName(name).setQuotaUsd("1.25").build())
                      .getKey()));
    }
    return created;
  }

  private static void assertAllThere(QuotaAuthority app, Path dir, List<ApiKey> keys)
      throws Exception {
    for (ApiKey created : keys) {
      ApiKey found =
          withAdmin(
              app,
              dir,
              admin ->
                  admin.getKey(GetKeyRequest.newBuilder().setId(created.getId()).build()).getKey());
      assertThat(found.getKeyPrefix()).as(created.getName()).isEqualTo(created.getKeyPrefix());
      assertThat(found.getName()).isEqualTo(created.getName());
      assertThat(found.getQuotaUsd()).isEqualTo("1.25");
      assertThat(found.getCreatedAt()).isEqualTo(created.getCreatedAt());
    }
  }

  /** The postmaster of {@code <dir>/pg} (first line of postmaster.pid). */
  static ProcessHandle postmaster(Path dir) throws IOException {
    long pid =
        Long.parseLong(
            Files.readAllLines(dir.resolve("pg").resolve("postmaster.pid")).get(0).trim());
    return ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("no postmaster " + pid));
  }

  /**
   * kill -9 of the postmaster and every PostgreSQL process under it, so no WAL writer flushes
   * anything.
   */
  static void killPostgres(Path dir) throws Exception {
    ProcessHandle postmaster = postmaster(dir);
    List<ProcessHandle> all = new ArrayList<>(postmaster.descendants().toList());
    all.add(0, postmaster);
    all.forEach(ProcessHandle::destroyForcibly);
    for (ProcessHandle p : all) {
      p.onExit().get(10, TimeUnit.SECONDS);
    }
  }

  private static String show(QuotaAuthority app, String setting) throws SQLException {
    try (Connection c = app.database().pool().getConnection();
        Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SHOW " + setting)) {
      rs.next();
      return rs.getString(1);
    }
  }

  @Test
  void start_noDbUrl_keysSurviveCleanRestartAndPostgresKilledWithMinus9() throws Exception {
    assertThat(settings(dataDir).dbUrl()).isEmpty();
    List<ApiKey> keys = new ArrayList<>();
    try (QuotaAuthority app = QuotaAuthority.start(settings(dataDir), Clock.systemUTC())) {
      assertThat(app.database().jdbcUrl()).startsWith("jdbc:postgresql://localhost:");
      keys.addAll(createKeys(app, dataDir, "before-restart", 2));
    }
    assertThat(dataDir.resolve("pg").resolve("PG_VERSION")).exists();

    try (QuotaAuthority again = QuotaAuthority.start(settings(dataDir), Clock.systemUTC())) {
      assertAllThere(again, dataDir, keys);
      // Acknowledged, then PostgreSQL dies at once: with synchronous_commit=off these were lost.
      keys.addAll(createKeys(again, dataDir, "before-kill", 5));
      killPostgres(dataDir);
    }

    try (QuotaAuthority recovered = QuotaAuthority.start(settings(dataDir), Clock.systemUTC())) {
      assertAllThere(recovered, dataDir, keys);
    }
  }

  @Test
  void serverSettings_embedded_durableAndOfTheExpectedMajorVersion() throws Exception {
    assertThat(show(shared, "fsync")).isEqualTo("on");
    assertThat(show(shared, "synchronous_commit")).isEqualTo("on");
    assertThat(show(shared, "full_page_writes")).isEqualTo("on");
    assertThat(show(shared, "unix_socket_directories")).isEmpty();
    assertThat(show(shared, "password_encryption")).isEqualTo("scram-sha-256");
    // checkVersion compares PG_VERSION against this constant: it must be what actually runs.
    assertThat(Integer.parseInt(show(shared, "server_version_num")) / 10000)
        .isEqualTo(Integer.parseInt(EmbeddedPostgres.MAJOR_VERSION));
  }

  @Test
  void passwordFile_embedded_privateAndPgHbaHasNoTrust() throws Exception {
    Path file = sharedDir.resolve(EmbeddedPostgres.PASSWORD_FILE);
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file)))
        .isEqualTo("rw-------");
    assertThat(Files.readString(file, StandardCharsets.UTF_8).trim()).matches("[A-Za-z0-9_-]{32,}");
    String hba =
        Files.readString(sharedDir.resolve("pg").resolve("pg_hba.conf"), StandardCharsets.UTF_8);
    assertThat(hba).isEqualTo(EmbeddedPostgres.PG_HBA).doesNotContain("trust\n");
  }

  @Test
  void connect_otherOsUserWithoutPassword_refusedOverTcpAndSocket() throws Exception {
    int port = URI.create(shared.database().jdbcUrl().substring("jdbc:".length())).getPort();
    String password =
        Files.readString(sharedDir.resolve(EmbeddedPostgres.PASSWORD_FILE), StandardCharsets.UTF_8)
            .trim();

    Psql tcp = psqlAsNobody(null, "-h", "127.0.0.1", "-p", Integer.toString(port));
    Psql tcp6 = psqlAsNobody(null, "-h", "::1", "-p", Integer.toString(port));
    // The socket directory PostgreSQL used before (and psql's default): there is no socket at all.
    Psql socket = psqlAsNobody(null, "-h", "/tmp", "-p", Integer.toString(port));
    Psql socketDefault = psqlAsNobody(null, "-p", Integer.toString(port));
    // The control: the same user with the password gets in, so the refusals above are the
    // password's.
    Psql withPassword = psqlAsNobody(password, "-h", "127.0.0.1", "-p", Integer.toString(port));

    assertThat(tcp.exit).as(tcp.output).isNotZero();
    assertThat(tcp.output).contains("password");
    assertThat(tcp6.exit).as(tcp6.output).isNotZero();
    assertThat(socket.exit).as(socket.output).isNotZero();
    assertThat(socket.output).contains("No such file or directory");
    assertThat(socketDefault.exit).as(socketDefault.output).isNotZero();
    assertThat(Path.of("/tmp/.s.PGSQL." + port)).doesNotExist();
    assertThat(withPassword.exit).as(withPassword.output).isZero();
    assertThat(withPassword.output.trim()).isEqualTo("1");
    // And without psql: a JDBC login as postgres with no password (any local process can try it).
    assertThatThrownBy(
            () -> DriverManager.getConnection(shared.database().jdbcUrl(), "postgres", "").close())
        .isInstanceOf(SQLException.class)
        .hasMessageContaining("password");
  }

  private record Psql(int exit, String output) {}

  /**
   * psql as the OS user nobody; the password, if any, through the environment, never in arguments.
   */
  private static Psql psqlAsNobody(String password, String... connection) throws Exception {
    List<String> command =
        new ArrayList<>(
            List.of(
                "runuser",
                "-u",
                "nobody",
                "--",
                "psql",
                "-w",
                "-X",
                "-A",
                "-t",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                "SELECT 1"));
    command.addAll(List.of(connection));
    ProcessBuilder builder =
        new ProcessBuilder(command).redirectErrorStream(true).directory(new File("/"));
    builder.environment().keySet().removeIf(k -> k.startsWith("PG"));
    if (password != null) {
      builder.environment().put("PGPASSWORD", password);
    }
    Process p = builder.start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    return new Psql(p.exitValue(), output);
  }

  @Test
  void start_trustDirectoryOfEarlierVersionThenPasswordFileDeleted_newPasswordSetAndDataKept()
      throws Exception {
    Path pg = dataDir.resolve("pg");
    // What the earlier version did: zonky's defaults (initdb --auth=trust, no password), data kept.
    try (io.zonky.test.db.postgres.embedded.EmbeddedPostgres old =
            io.zonky.test.db.postgres.embedded.EmbeddedPostgres.builder()
                .setDataDirectory(pg)
                .setCleanDataDirectory(false)
                .start();
        Connection c = old.getPostgresDatabase().getConnection();
        Statement s = c.createStatement()) {
      // Outside public, where Flyway would refuse a non-empty schema without its history table.
      s.execute("CREATE SCHEMA earlier");
      s.execute("CREATE TABLE earlier.notes (note text)");
      s.execute("INSERT INTO earlier.notes VALUES ('kept')");
    }
    assertThat(Files.readString(pg.resolve("pg_hba.conf"), StandardCharsets.UTF_8))
        .contains("trust");

    try (QuotaAuthority app = QuotaAuthority.start(settings(dataDir), Clock.systemUTC());
        Connection c = app.database().pool().getConnection();
        Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SELECT note FROM earlier.notes")) {
      assertThat(rs.next()).isTrue();
      assertThat(rs.getString(1)).isEqualTo("kept");
      assertThat(Files.readString(pg.resolve("pg_hba.conf"), StandardCharsets.UTF_8))
          .isEqualTo(EmbeddedPostgres.PG_HBA);
      assertThatThrownBy(
              () -> DriverManager.getConnection(app.database().jdbcUrl(), "postgres", "").close())
          .isInstanceOf(SQLException.class)
          .hasMessageContaining("password");
    }

    // An operator who deletes the file gets a new password, set at the next start.
    Path passwordFile = dataDir.resolve(EmbeddedPostgres.PASSWORD_FILE);
    String first = Files.readString(passwordFile, StandardCharsets.UTF_8).trim();
    Files.delete(passwordFile);
    try (QuotaAuthority app = QuotaAuthority.start(settings(dataDir), Clock.systemUTC());
        Connection c = app.database().pool().getConnection();
        Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SELECT note FROM earlier.notes")) {
      assertThat(Files.readString(passwordFile, StandardCharsets.UTF_8).trim()).isNotEqualTo(first);
      assertThat(rs.next()).isTrue();
      assertThat(rs.getString(1)).isEqualTo("kept");
      assertThatThrownBy(
              () ->
                  DriverManager.getConnection(app.database().jdbcUrl(), "postgres", first).close())
          .isInstanceOf(SQLException.class)
          .hasMessageContaining("password");
    }
  }
}
