package io.quotaauthority.store;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.metrics.micrometer.MicrometerMetricsTrackerFactory;
import com.zaxxer.hikari.pool.HikariPool;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.config.ConfigException;
import io.quotaauthority.config.Settings;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;
import java.util.function.BiConsumer;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The connection pool, migrated at open. With no QUOTA_DB_URL it first starts an embedded
 * PostgreSQL whose data lives under {@code <data dir>/pg}, so it survives restarts; {@link
 * #close()} is the only thing that stops it, after the pool (see {@link EmbeddedPostgres}).
 */
public final class Database implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Database.class);

  private final HikariDataSource pool;
  private final EmbeddedPostgres embedded;
  private final String jdbcUrl;
  private final String user;
  private final String password;

  private Database(
      HikariDataSource pool,
      EmbeddedPostgres embedded,
      String jdbcUrl,
      String user,
      String password) {
    this.pool = pool;
    this.embedded = embedded;
    this.jdbcUrl = jdbcUrl;
    this.user = user;
    this.password = password;
  }

  /** Opens the pool and migrates; any failure is a {@link ConfigException} naming the setting. */
  public static Database open(Settings settings) {
    return open(settings, null);
  }

  /**
   * Like {@link #open(Settings)}, with the pool's metrics (hikaricp_*) in {@code metrics} if not
   * null.
   */
  public static Database open(Settings settings, MeterRegistry metrics) {
    EmbeddedPostgres embedded = null;
    String url;
    String user = settings.dbUser();
    String password = settings.dbPassword();
    if (settings.dbUrl().isPresent()) {
      url = settings.dbUrl().get();
      if (!url.startsWith("jdbc:postgresql:")) {
        throw new ConfigException("QUOTA_DB_URL must be a jdbc:postgresql: URL");
      }
    } else {
      embedded = EmbeddedPostgres.start(settings.dataDir());
      url = embedded.jdbcUrl();
      user = embedded.user();
      password = embedded.password();
    }
    HikariDataSource pool;
    try {
      HikariConfig config = poolConfig(url, user, password, settings.dbPoolSize());
      if (metrics != null) {
        // Must be set before the pool starts.
        config.setMetricsTrackerFactory(new MicrometerMetricsTrackerFactory(metrics));
      }
      pool = new HikariDataSource(config);
    } catch (HikariPool.PoolInitializationException e) {
      closeQuietly(embedded);
      throw new ConfigException(
          "QUOTA_DB_URL: cannot connect to the database: " + rootMessage(e), e);
    }
    try {
      requireUtf8(pool);
    } catch (ConfigException e) {
      pool.close();
      closeQuietly(embedded);
      throw e;
    }
    try {
      migrate(pool);
    } catch (FlywayException e) {
      pool.close();
      closeQuietly(embedded);
      throw new ConfigException("QUOTA_DB_URL: database migration failed: " + rootMessage(e), e);
    }
    return new Database(pool, embedded, url, user, password);
  }

  static HikariConfig poolConfig(String url, String user, String password, int size) {
    HikariConfig c = new HikariConfig();
    c.setPoolName("quota-db");
    c.setJdbcUrl(url);
    c.setUsername(user);
    c.setPassword(password);
    c.setMaximumPoolSize(size);
    c.setMinimumIdle(Math.min(2, size));
    c.setAutoCommit(false);
    // Fail fast when the database is away: Check answers 503 for uncached keys and usage waits
    // for the database rather than threads piling up behind a 30 s default.
    c.setConnectionTimeout(3_000);
    c.setValidationTimeout(1_000);
    c.setInitializationFailTimeout(5_000);
    c.addDataSourceProperty("connectTimeout", "3");
    c.addDataSourceProperty("socketTimeout", "30");
    c.addDataSourceProperty("tcpKeepAlive", "true");
    c.addDataSourceProperty("reWriteBatchedInserts", "true");
    c.addDataSourceProperty("ApplicationName", "quota-authority");
    withoutServerErrorDetail(c::addDataSourceProperty);
    return c;
  }

  /**
   * pgjdbc copies PostgreSQL's error Detail into exception messages, and the Detail quotes row
   * values ("Key (key_hash)=(\\x...)" on a unique violation, "Failing row contains (...)" on a
   * check): turned off for every connection, so no log line that prints an SQLException carries
   * them.
   */
  static void withoutServerErrorDetail(BiConsumer<String, String> property) {
    property.accept("logServerErrorDetail", "false");
  }

  private static final String SERVER_ENCODING =
      """
      SHOW server_encoding""";

  /**
   * Refuses a database whose encoding is not UTF8, before anything is migrated: in SQL_ASCII a
   * 150-character name of 'é' counts 300 "characters" and fails a check as INTERNAL, and other
   * encodings cannot store every name the API accepts.
   */
  static void requireUtf8(DataSource dataSource) {
    String encoding;
    try (Connection c = dataSource.getConnection();
        Statement s = c.createStatement();
        ResultSet rs = s.executeQuery(SERVER_ENCODING)) {
      encoding = rs.next() ? rs.getString(1) : "unknown";
      c.rollback();
    } catch (SQLException e) {
      throw new ConfigException(
          "QUOTA_DB_URL: cannot read the database encoding: " + e.getSQLState(), e);
    }
    if (!"UTF8".equalsIgnoreCase(encoding)) {
      throw new ConfigException(
          "QUOTA_DB_URL: the database's encoding is "
              + encoding
              + "; quota-authority needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)");
    }
  }

  public static void migrate(DataSource dataSource) {
    Flyway.configure().dataSource(dataSource).locations("classpath:db/migration").load().migrate();
  }

  public HikariDataSource pool() {
    return pool;
  }

  public Transactions transactions() {
    return new Transactions(pool);
  }

  /** A connection outside the pool, for LISTEN (it must stay on one session). */
  public Connection openDedicatedConnection() throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", user);
    props.setProperty("password", password);
    props.setProperty("connectTimeout", "3");
    // No socketTimeout: this connection mostly waits for notifications. Keep-alives find a dead
    // peer.
    props.setProperty("tcpKeepAlive", "true");
    props.setProperty("ApplicationName", "quota-authority-listener");
    withoutServerErrorDetail(props::setProperty);
    return DriverManager.getConnection(jdbcUrl, props);
  }

  public String jdbcUrl() {
    return jdbcUrl;
  }

  /** True when a trivial query answers within a second. */
  public boolean reachable() {
    try (Connection c = pool.getConnection()) {
      return c.isValid(1);
    } catch (SQLException e) {
      return false;
    }
  }

  @Override
  public void close() {
    pool.close();
    closeQuietly(embedded);
  }

  private static void closeQuietly(EmbeddedPostgres embedded) {
    if (embedded != null) {
      embedded.close();
    }
  }

  static String rootMessage(Throwable t) {
    Throwable root = t;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root.getMessage() == null ? root.getClass().getSimpleName() : root.getMessage();
  }
}
