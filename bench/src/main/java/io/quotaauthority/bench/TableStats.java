package io.quotaauthority.bench;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * What PostgreSQL's statistics say about the ingest tables at one moment: updates and how many of
 * them were HOT, live and dead tuples, sizes of the heap and of its indexes, and autovacuum's runs.
 * pg_stat_user_tables lags by up to a second (backends flush their counts at most that often).
 */
record TableStats(Map<String, Table> tables) {
  record Table(
      String name,
      long updates,
      long hotUpdates,
      long live,
      long dead,
      long heapBytes,
      long indexBytes,
      long autovacuums,
      String lastAutovacuum) {

    String describe() {
      return String.format(
          Locale.ROOT,
          "%s: heap %s, indexes %s, %s live / %s dead tuples, %s updates (%s HOT), autovacuum %s×%s",
          name,
          mb(heapBytes),
          mb(indexBytes),
          Report.num(live),
          Report.num(dead),
          Report.num(updates),
          Report.num(hotUpdates),
          Report.num(autovacuums),
          lastAutovacuum == null ? "" : " (last " + lastAutovacuum + ")");
    }
  }

  static final String[] NAMES = {"api_keys", "usage_events"};

  static String mb(long bytes) {
    return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
  }

  /** The statistics of {@link #NAMES} as they are now (after a fresh snapshot). */
  static TableStats read(Connection c) throws SQLException {
    Map<String, Table> out = new LinkedHashMap<>();
    try (Statement s = c.createStatement()) {
      s.execute("SELECT pg_stat_clear_snapshot()");
      try (ResultSet rs =
          s.executeQuery(
              """
              SELECT relname, n_tup_upd, n_tup_hot_upd, n_live_tup, n_dead_tup,
                     pg_relation_size(relid), pg_indexes_size(relid), autovacuum_count,
                     to_char(last_autovacuum AT TIME ZONE 'UTC', 'HH24:MI:SS')
                FROM pg_stat_user_tables
               WHERE relname IN ('api_keys', 'usage_events')
               ORDER BY relname""")) {
        while (rs.next()) {
          out.put(
              rs.getString(1),
              new Table(
                  rs.getString(1),
                  rs.getLong(2),
                  rs.getLong(3),
                  rs.getLong(4),
                  rs.getLong(5),
                  rs.getLong(6),
                  rs.getLong(7),
                  rs.getLong(8),
                  rs.getString(9)));
        }
      }
    }
    return new TableStats(out);
  }

  Table keys() {
    return tables.getOrDefault("api_keys", new Table("api_keys", 0, 0, 0, 0, 0, 0, 0, null));
  }

  Table events() {
    return tables.getOrDefault(
        "usage_events", new Table("usage_events", 0, 0, 0, 0, 0, 0, 0, null));
  }

  /** HOT updates of api_keys since {@code before}, as a share of its updates (NaN for none). */
  double hotRatioSince(TableStats before) {
    long upd = keys().updates() - before.keys().updates();
    long hot = keys().hotUpdates() - before.keys().hotUpdates();
    return upd <= 0 ? Double.NaN : (double) hot / upd;
  }

  long updatesSince(TableStats before) {
    return keys().updates() - before.keys().updates();
  }

  String describe() {
    return keys().describe() + "; " + events().describe();
  }
}
