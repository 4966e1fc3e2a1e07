package io.quotaauthority.ha;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real pgbouncer (Debian's package) on an ephemeral loopback port in front of the test
 * PostgreSQL, run as the postgres OS user, in transaction pool mode unless told otherwise. Clients
 * log in as anyone; pgbouncer logs in to PostgreSQL as postgres.
 */
final class PgBouncer implements AutoCloseable {
  static final Path BINARY = Path.of("/usr/sbin/pgbouncer");

  private final Process process;
  private final int port;
  private final Path dir;

  private PgBouncer(Process process, int port, Path dir) {
    this.process = process;
    this.port = port;
    this.dir = dir;
  }

  /**
   * @param serverPoolSize server connections per database and user (default_pool_size)
   * @param maxPreparedStatements pgbouncer's protocol-level prepared statements (1.21+), 0 off
   */
  static PgBouncer start(String poolMode, int serverPoolSize, int maxPreparedStatements)
      throws IOException, InterruptedException {
    if (!Files.isExecutable(BINARY)) {
      throw new AssertionError(BINARY + " is missing: apt-get install pgbouncer (.ci/run does)");
    }
    Path dir = PostgresUser.ownedDirectory("pgbouncer-");
    int port = PostgresUser.freePort();
    String[] pg = io.quotaauthority.testing.TestDatabase.HOST.split(":");
    String ini =
        String.join(
            "\n",
            "[databases]",
            "* = host=" + pg[0] + " port=" + pg[1] + " user=postgres",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            "listen_port = " + port,
            "unix_socket_dir =",
            "auth_type = any",
            "pool_mode = " + poolMode,
            "default_pool_size = " + serverPoolSize,
            "max_client_conn = 500",
            // pgjdbc sends extra_float_digits at start-up; pgbouncer refuses unknown parameters.
            "ignore_startup_parameters = extra_float_digits",
            maxPreparedStatements > 0 ? "max_prepared_statements = " + maxPreparedStatements : "",
            "logfile = " + dir.resolve("pgbouncer.log"),
            "pidfile = " + dir.resolve("pgbouncer.pid"),
            "admin_users = postgres",
            "");
    Path conf = dir.resolve("pgbouncer.ini");
    Files.writeString(conf, ini, StandardCharsets.UTF_8);
    ProcessBuilder b =
        new ProcessBuilder(PostgresUser.as(List.of(BINARY.toString(), conf.toString())))
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("stdout").toFile());
    b.directory(dir.toFile());
    PgBouncer bouncer = new PgBouncer(b.start(), port, dir);
    try {
      bouncer.awaitAccepting();
    } catch (AssertionError | IOException | InterruptedException e) {
      bouncer.close();
      throw e;
    }
    return bouncer;
  }

  /** pgbouncer's version, e.g. {1, 18}. */
  static int[] version() throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(BINARY.toString(), "--version").redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor(10, TimeUnit.SECONDS);
    Matcher m = Pattern.compile("PgBouncer (\\d+)\\.(\\d+)").matcher(out);
    if (!m.find()) {
      throw new AssertionError("cannot read pgbouncer's version: " + out);
    }
    return new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))};
  }

  private void awaitAccepting() throws InterruptedException, IOException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    String last = "";
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new AssertionError("pgbouncer exited " + process.exitValue() + ":\n" + log());
      }
      Console answer = console("SHOW VERSION");
      if (answer.exit == 0) {
        return;
      }
      last = answer.output;
      Thread.sleep(50);
    }
    throw new AssertionError("pgbouncer did not accept within 15 s: " + last + "\n" + log());
  }

  private record Console(int exit, String output) {}

  /**
   * One command on pgbouncer's admin console, through psql: the console speaks the simple query
   * protocol only, and refuses the extra_float_digits pgjdbc sets at login.
   */
  private Console console(String command) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(
                "psql",
                "-w",
                "-X",
                "-A",
                "-t",
                "-F",
                "|",
                "-h",
                "127.0.0.1",
                "-p",
                Integer.toString(port),
                "-U",
                "postgres",
                "-d",
                "pgbouncer",
                "-c",
                command)
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(10, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      return new Console(-1, "psql timed out");
    }
    return new Console(p.exitValue(), out);
  }

  /** Transactions pgbouncer has passed to {@code database} so far (SHOW STATS). */
  long transactions(String database) throws IOException, InterruptedException {
    Console stats = console("SHOW STATS");
    if (stats.exit != 0) {
      throw new AssertionError("SHOW STATS failed: " + stats.output);
    }
    for (String line : stats.output.split("\n")) {
      String[] cols = line.split("\\|");
      if (cols.length > 1 && cols[0].equals(database)) {
        return Long.parseLong(cols[1].trim());
      }
    }
    return 0;
  }

  String jdbcUrl(String database, String parameters) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/" + database + parameters;
  }

  String log() {
    try {
      return Files.readString(dir.resolve("pgbouncer.log"), StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  /** Stops pgbouncer itself (by its pidfile: runuser does not pass SIGTERM on), then runuser. */
  @Override
  public void close() throws InterruptedException {
    try {
      Path pidfile = dir.resolve("pgbouncer.pid");
      if (Files.exists(pidfile)) {
        long pid = Long.parseLong(Files.readString(pidfile, StandardCharsets.UTF_8).trim());
        ProcessHandle.of(pid)
            .ifPresent(
                h -> {
                  h.destroy();
                  h.onExit().orTimeout(5, TimeUnit.SECONDS).exceptionally(t -> null).join();
                  h.destroyForcibly();
                });
      }
    } catch (IOException | NumberFormatException e) {
      // no pidfile yet: it never got as far as listening
    }
    process.descendants().forEach(ProcessHandle::destroyForcibly);
    process.destroyForcibly();
    process.waitFor(5, TimeUnit.SECONDS);
  }
}
