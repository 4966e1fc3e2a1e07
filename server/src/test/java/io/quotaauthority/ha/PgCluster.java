package io.quotaauthority.ha;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A PostgreSQL cluster this test builds and owns, from the machine's own binaries, run as the
 * postgres OS user on an ephemeral loopback port with its data under target/: a primary made by
 * initdb, or a streaming standby of one made by pg_basebackup. It can be killed as a machine dies
 * (SIGKILL to the postmaster and every child at once) and promoted. Trust authentication on
 * loopback only.
 */
public final class PgCluster implements AutoCloseable {
  private final Path bin;
  private final Path data;
  private final int port;
  private final String name;
  private boolean running;

  private PgCluster(Path bin, Path data, int port, String name) {
    this.bin = bin;
    this.data = data;
    this.port = port;
    this.name = name;
  }

  /** A new primary, started, replicating asynchronously to whatever standby connects. */
  public static PgCluster primary(Path root) throws IOException, InterruptedException {
    Path bin = PostgresUser.binDir();
    PgCluster c = new PgCluster(bin, root.resolve("primary"), PostgresUser.freePort(), "primary");
    PostgresUser.run(
        120,
        bin.resolve("initdb").toString(),
        "-D",
        c.data.toString(),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync");
    c.start("");
    return c;
  }

  /**
   * From now on COMMIT waits for {@code standby} (synchronous_commit is on, the default). Set once
   * the standby exists (a COMMIT before would wait for it) with ALTER SYSTEM, after the base backup
   * was taken, so the standby's copy of the configuration does not have it and, once promoted, does
   * not wait for a standby that is not there.
   */
  public void requireSynchronousStandby(String standby) throws SQLException {
    execute("postgres", "ALTER SYSTEM SET synchronous_standby_names = '" + standby + "'");
    execute("postgres", "SELECT pg_reload_conf()");
  }

  /** A streaming standby of {@code primary} (pg_basebackup -R), started, named {@code name}. */
  public static PgCluster standbyOf(PgCluster primary, Path root, String name)
      throws IOException, InterruptedException {
    PgCluster c = new PgCluster(primary.bin, root.resolve(name), PostgresUser.freePort(), name);
    PostgresUser.run(
        120,
        primary.bin.resolve("pg_basebackup").toString(),
        "-h",
        "127.0.0.1",
        "-p",
        Integer.toString(primary.port),
        "-U",
        "postgres",
        "-D",
        c.data.toString(),
        "-X",
        "stream",
        "-R",
        "-c",
        "fast",
        "--no-sync");
    // The walreceiver's application_name is cluster_name: what synchronous_standby_names names.
    c.start(" -c cluster_name=" + name);
    return c;
  }

  private void start(String extra) throws IOException, InterruptedException {
    String options =
        "-p "
            + port
            + " -c listen_addresses=127.0.0.1"
            + " -c unix_socket_directories="
            + data
            + " -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on"
            + " -c max_connections=60 -c shared_buffers=32MB -c wal_keep_size=64MB"
            + extra;
    PostgresUser.run(
        60,
        bin.resolve("pg_ctl").toString(),
        "-D",
        data.toString(),
        "-l",
        data.resolveSibling(name + ".log").toString(),
        "-w",
        "-t",
        "50",
        "-o",
        options,
        "start");
    running = true;
  }

  public int port() {
    return port;
  }

  public String url(String database) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/" + database;
  }

  public Connection connect(String database) throws SQLException {
    return DriverManager.getConnection(url(database), "postgres", "");
  }

  public void execute(String database, String sql) throws SQLException {
    try (Connection c = connect(database);
        Statement s = c.createStatement()) {
      s.execute(sql);
    }
  }

  /**
   * Waits until {@code standby} streams from this primary in {@code syncState} ({@code sync} or
   * {@code async}).
   */
  public void awaitStandby(String standby, String syncState)
      throws SQLException, InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    String last = "none";
    while (System.nanoTime() < deadline) {
      try (Connection c = connect("postgres");
          Statement s = c.createStatement();
          ResultSet rs =
              s.executeQuery(
                  "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = '"
                      + standby
                      + "'")) {
        if (rs.next()) {
          last = rs.getString(1) + "/" + rs.getString(2);
          if ("streaming".equals(rs.getString(1)) && syncState.equals(rs.getString(2))) {
            return;
          }
        }
      }
      Thread.sleep(50);
    }
    throw new AssertionError(standby + " not streaming " + syncState + " (last: " + last + ")");
  }

  /** As a machine dies: SIGKILL to the postmaster and all its children at once, no shutdown. */
  public void kill9() throws Exception {
    long pid =
        Long.parseLong(
            Files.readAllLines(data.resolve("postmaster.pid"), StandardCharsets.UTF_8)
                .get(0)
                .trim());
    ProcessHandle postmaster =
        ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("no postmaster " + pid));
    List<ProcessHandle> children = postmaster.descendants().toList();
    postmaster.destroyForcibly();
    children.forEach(ProcessHandle::destroyForcibly);
    postmaster.onExit().get(10, TimeUnit.SECONDS);
    for (ProcessHandle child : children) {
      child.onExit().get(10, TimeUnit.SECONDS);
    }
    running = false;
  }

  /** pg_ctl promote, waiting until it accepts writes. */
  public void promote() throws IOException, InterruptedException {
    PostgresUser.run(60, bin.resolve("pg_ctl").toString(), "-D", data.toString(), "-w", "promote");
  }

  public String log() {
    try {
      return Files.readString(data.resolveSibling(name + ".log"), StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  /** Stops it at once if it runs, then deletes its data directory. */
  @Override
  public void close() throws IOException, InterruptedException {
    try {
      if (running) {
        PostgresUser.run(
            60, bin.resolve("pg_ctl").toString(), "-D", data.toString(), "-m", "immediate", "stop");
      }
    } finally {
      running = false;
      if (Files.exists(data)) {
        try (Stream<Path> files = Files.walk(data)) {
          for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
            Files.deleteIfExists(p);
          }
        }
      }
    }
  }
}
