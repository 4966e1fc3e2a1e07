package io.quotaauthority.testing;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.quotaauthority.store.Database;
import io.quotaauthority.store.Transactions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A fresh, migrated database on the real PostgreSQL server at 127.0.0.1:5432 (user postgres, trust
 * auth), dropped again on close. One per test class.
 */
public final class TestDatabase implements AutoCloseable {
  public static final String HOST = System.getProperty("quota.test.pg", "127.0.0.1:5432");
  private static final AtomicInteger COUNTER = new AtomicInteger();

  private final String name;
  private final HikariDataSource pool;

  private TestDatabase(String name, HikariDataSource pool) {
    this.name = name;
    this.pool = pool;
  }

  public static TestDatabase create() {
    String name =
        "qa_test_"
            + ProcessHandle.current().pid()
            + "_"
            + COUNTER.incrementAndGet()
            + "_"
            + System.nanoTime() % 100000;
    try (Connection c = DriverManager.getConnection(adminUrl(), "postgres", "");
        Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    } catch (SQLException e) {
      throw new IllegalStateException(
          "PostgreSQL must answer on " + HOST + " (user postgres, trust auth)", e);
    }
    HikariConfig config = new HikariConfig();
    config.setJdbcUrl(urlOf(name));
    config.setUsername("postgres");
    config.setMaximumPoolSize(4);
    config.setAutoCommit(false);
    HikariDataSource pool = new HikariDataSource(config);
    Database.migrate(pool);
    return new TestDatabase(name, pool);
  }

  public static String adminUrl() {
    return "jdbc:postgresql://" + HOST + "/postgres";
  }

  public static String urlOf(String database) {
    return "jdbc:postgresql://" + HOST + "/" + database;
  }

  public String url() {
    return urlOf(name);
  }

  public String name() {
    return name;
  }

  public HikariDataSource pool() {
    return pool;
  }

  public Transactions transactions() {
    return new Transactions(pool);
  }

  /** A single value from a query, e.g. {@code scalar("SELECT count(*) FROM key_audit")}. */
  public Object scalar(String sql, Object... args) {
    return transactions()
        .inTransaction(
            c -> {
              try (var ps = c.prepareStatement(sql)) {
                for (int i = 0; i < args.length; i++) {
                  ps.setObject(i + 1, args[i]);
                }
                try (var rs = ps.executeQuery()) {
                  return rs.next() ? rs.getObject(1) : null;
                }
              }
            });
  }

  public long count(String sql, Object... args) {
    return ((Number) scalar(sql, args)).longValue();
  }

  @Override
  public void close() {
    pool.close();
    try (Connection c = DriverManager.getConnection(adminUrl(), "postgres", "");
        Statement s = c.createStatement()) {
      s.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (SQLException e) {
      throw new IllegalStateException("could not drop " + name, e);
    }
  }
}
