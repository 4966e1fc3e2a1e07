package io.quotaauthority.bench;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyIn;

/**
 * The bench's own database work on the PostgreSQL server under test: create and drop the bench
 * database, fill api_keys, and read the statistics the report quotes. Every URL is loopback.
 */
final class PgAdmin {
  final String hostPort;
  final String user;

  PgAdmin(String hostPort, String user) {
    this.hostPort = hostPort;
    this.user = user;
  }

  String url(String database) {
    return "jdbc:postgresql://"
        + hostPort
        + "/"
        + database
        + "?sslmode=disable&ApplicationName=quota-bench";
  }

  Connection connect(String database) throws SQLException {
    return DriverManager.getConnection(url(database), user, "");
  }

  void createDatabase(String name) throws SQLException {
    try (Connection c = connect("postgres");
        Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    }
  }

  void dropDatabase(String name) throws SQLException {
    try (Connection c = connect("postgres");
        Statement s = c.createStatement()) {
      s.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    }
  }

  /**
   * Drops bench databases left by a bench that was killed before it could clean up: names are
   * qa_bench_<pid>_<n>, and a database whose pid is not running on this machine is an orphan.
   */
  List<String> dropOrphans() {
    List<String> dropped = new ArrayList<>();
    try (Connection c = connect("postgres");
        Statement s = c.createStatement();
        ResultSet rs =
            s.executeQuery("SELECT datname FROM pg_database WHERE datname LIKE 'qa\\_bench\\_%'")) {
      List<String> names = new ArrayList<>();
      while (rs.next()) {
        names.add(rs.getString(1));
      }
      for (String name : names) {
        String[] parts = name.split("_");
        if (parts.length == 4
            && parts[2].matches("\\d+")
            && ProcessHandle.of(Long.parseLong(parts[2])).isEmpty()) {
          dropDatabase(name);
          dropped.add(name);
        }
      }
    } catch (SQLException e) {
      // Best effort: createDatabase reports a real connection problem.
    }
    return dropped;
  }

  String serverVersion() {
    try (Connection c = connect("postgres");
        Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SHOW server_version")) {
      rs.next();
      return rs.getString(1);
    } catch (SQLException e) {
      return "unknown (" + e.getMessage() + ")";
    }
  }

  /**
   * Inserts keys [0, count) with COPY (ids given explicitly; COPY writes identity columns as
   * given), their SHA-256 hashes computed here, then moves the id sequence past them.
   */
  /** Writes keys [from, to): a later phase that needs more keys adds only the missing ones. */
  void copyKeys(Connection c, long from, long to, Instant now) throws SQLException {
    c.setAutoCommit(true);
    HexFormat hex = HexFormat.of();
    CopyIn copy =
        c.unwrap(PGConnection.class)
            .getCopyAPI()
            .copyIn(
                "COPY api_keys (id, name, key_hash, key_prefix, status, quota, quota_used, expires_at) FROM STDIN");
    try {
      StringBuilder sb = new StringBuilder(1 << 20);
      for (long i = from; i < to; i++) {
        Instant expires = BenchKeys.expiresAt(i, now);
        sb.append(BenchKeys.id(i))
            .append('\t')
            .append("bench-")
            .append(i)
            .append('\t')
            .append("\\\\x")
            .append(hex.formatHex(BenchKeys.sha256(BenchKeys.secret(i))))
            .append('\t')
            .append("sk-bench")
            .append('\t')
            .append("active")
            .append('\t')
            .append(BenchKeys.quota(i))
            .append('\t')
            .append(BenchKeys.quotaUsed(i))
            .append('\t')
            .append(expires == null ? "\\N" : expires.toString())
            .append('\n');
        if (sb.length() > (1 << 20) - 512) {
          byte[] b = sb.toString().getBytes(StandardCharsets.US_ASCII);
          copy.writeToCopy(b, 0, b.length);
          sb.setLength(0);
        }
      }
      byte[] b = sb.toString().getBytes(StandardCharsets.US_ASCII);
      copy.writeToCopy(b, 0, b.length);
      copy.endCopy();
    } finally {
      if (copy.isActive()) {
        copy.cancelCopy();
      }
    }
    try (Statement s = c.createStatement()) {
      s.execute(
          "SELECT setval(pg_get_serial_sequence('api_keys', 'id'), (SELECT max(id) FROM api_keys))");
      s.execute("ANALYZE api_keys");
    }
    // A running server answers keys missing from its live-key set 401 without a query; COPY sends
    // no change notification, so hint every new key (a bare id is a valid hint) as an admin
    // change would.
    try (PreparedStatement ps =
        c.prepareStatement(
            "SELECT count(pg_notify('quota_key_changes', id::text)) FROM generate_series(?::bigint, ?::bigint) id")) {
      ps.setLong(1, BenchKeys.id(from));
      ps.setLong(2, BenchKeys.id(to - 1));
      ps.executeQuery().close();
    }
  }

  /**
   * Writes {@code count} active keys with ids from {@code fromId}, each with the same quota and
   * quota_used (USD, 8 decimals) and a secret nobody presents (the holds group meters them by id,
   * as Envoy does once Check has run): a range of its own, apart from the bench keys' ids.
   */
  void copyLimitedKeys(Connection c, long fromId, long count, String quota, String quotaUsed)
      throws SQLException {
    c.setAutoCommit(true);
    HexFormat hex = HexFormat.of();
    CopyIn copy =
        c.unwrap(PGConnection.class)
            .getCopyAPI()
            .copyIn(
                "COPY api_keys (id, name, key_hash, key_prefix, status, quota, quota_used) FROM STDIN");
    try {
      StringBuilder sb = new StringBuilder();
      for (long id = fromId; id < fromId + count; id++) {
        sb.append(id)
            .append("\tholds-")
            .append(id)
            .append("\t\\\\x")
            .append(hex.formatHex(BenchKeys.sha256("sk-holds-" + id)))
            .append("\tsk-holds\tactive\t")
            .append(quota)
            .append('\t')
            .append(quotaUsed)
            .append('\n');
      }
      byte[] b = sb.toString().getBytes(StandardCharsets.US_ASCII);
      copy.writeToCopy(b, 0, b.length);
      copy.endCopy();
    } finally {
      if (copy.isActive()) {
        copy.cancelCopy();
      }
    }
  }

  /** Committed transactions of a database, read from another one so the reading is not counted. */
  static long xactCommit(Connection postgresDb, String database) throws SQLException {
    try (PreparedStatement ps =
        postgresDb.prepareStatement("SELECT xact_commit FROM pg_stat_database WHERE datname = ?")) {
      ps.setString(1, database);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? rs.getLong(1) : -1;
      }
    }
  }

  /** Backend pids connected to a database (for CPU accounting). */
  static List<Long> backendPids(Connection postgresDb, String database) {
    List<Long> pids = new ArrayList<>();
    try (PreparedStatement ps =
        postgresDb.prepareStatement("SELECT pid FROM pg_stat_activity WHERE datname = ?")) {
      ps.setString(1, database);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          pids.add(rs.getLong(1));
        }
      }
    } catch (SQLException e) {
      // Accounting only: an empty list just leaves PostgreSQL's share in "other".
    }
    return pids;
  }

  static long scalarLong(Connection c, String sql) throws SQLException {
    try (Statement s = c.createStatement();
        ResultSet rs = s.executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }
}
