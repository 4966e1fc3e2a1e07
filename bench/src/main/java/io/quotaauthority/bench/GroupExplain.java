package io.quotaauthority.bench;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code EXPLAIN (ANALYZE, BUFFERS)} of one usage group's statements (the pgbench reference's,
 * which are the server's done server-side) on the ingest tables as every run left them, in a
 * transaction rolled back: where PostgreSQL's time per group goes (issue 19: the measured reason
 * for a missed ingest target).
 */
final class GroupExplain {
  private GroupExplain() {}

  /** The plans' lines that carry times, buffers and triggers, one block per statement. */
  static String run(Connection c, int group, int keys) throws SQLException {
    String[] statements =
        PgbenchReference.script(group, keys).replace(":client_id", "0").split("\n");
    List<String> out = new ArrayList<>();
    boolean auto = c.getAutoCommit();
    c.setAutoCommit(false);
    try (Statement s = c.createStatement()) {
      for (String sql : statements) {
        String t = sql.strip();
        if (t.isEmpty() || t.equals("BEGIN;") || t.equals("COMMIT;")) {
          continue;
        }
        t = t.endsWith(";") ? t.substring(0, t.length() - 1) : t;
        out.add("-- " + (t.length() > 90 ? t.substring(0, 90) + " ..." : t));
        try (ResultSet rs = s.executeQuery("EXPLAIN (ANALYZE, BUFFERS) " + t)) {
          while (rs.next()) {
            String line = rs.getString(1);
            if (line.contains("actual time")
                || line.contains("Buffers")
                || line.contains("Trigger")
                || line.contains("Execution Time")
                || line.contains("Tuples Inserted")
                || line.contains("Conflicting")) {
              out.add(line.length() > 160 ? line.substring(0, 160) + " ..." : line);
            }
          }
        }
      }
    } finally {
      c.rollback();
      c.setAutoCommit(auto);
    }
    return String.join("\n", out);
  }

  /** The same, or what went wrong: the report says it instead of failing the run. */
  static String tryRun(Connection c, int group, int keys) {
    try {
      return run(c, group, keys);
    } catch (SQLException e) {
      return String.format(Locale.ROOT, "EXPLAIN failed: %s", e.getMessage());
    }
  }
}
