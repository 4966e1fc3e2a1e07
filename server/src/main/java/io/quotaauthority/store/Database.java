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
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Properties;
import java.util.UUID;
import java.util.function.BiConsumer;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
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
  private final String listenUrl;
  private final String user;
  private final String password;

  /**
   * What the last check of the server's replication settings found; null before one or embedded.
   */
  private volatile Replication replication;

  private Database(
      HikariDataSource pool,
      EmbeddedPostgres embedded,
      String jdbcUrl,
      String listenUrl,
      String user,
      String password) {
    this.pool = pool;
    this.embedded = embedded;
    this.jdbcUrl = jdbcUrl;
    this.listenUrl = listenUrl;
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
    Database db =
        new Database(pool, embedded, url, settings.dbListenUrl().orElse(url), user, password);
    try {
      db.requireListenSession(
          settings.dbListenUrl().isPresent()
              ? "QUOTA_DB_LISTEN_URL"
              : "QUOTA_DB_URL (the" + " listener's URL, as QUOTA_DB_LISTEN_URL is not set)",
          LISTEN_CHECK_WAIT);
    } catch (ConfigException e) {
      db.close();
      throw e;
    }
    db.checkReplication();
    return db;
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
    // With several hosts in the URL (a:5432,b:5432) only the writable one will do: every path
    // writes. A parameter in the URL wins over these properties, so an operator can still say.
    c.addDataSourceProperty("targetServerType", "primary");
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

  /**
   * A connection outside the pool, for LISTEN (it must stay on one session), to {@code
   * QUOTA_DB_LISTEN_URL} (else {@code QUOTA_DB_URL}); with several hosts, to the primary, where
   * NOTIFY is sent.
   */
  public Connection openDedicatedConnection() throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", user);
    props.setProperty("password", password);
    props.setProperty("connectTimeout", "3");
    // The wait for notifications sets its own timeout (getNotifications(ms)); this one bounds the
    // re-reads, so a primary that vanished without a reset (a partition, a dead host) is noticed
    // within 30 s and the listener reconnects to whichever host is primary now.
    props.setProperty("socketTimeout", "30");
    props.setProperty("tcpKeepAlive", "true");
    props.setProperty("targetServerType", "primary");
    props.setProperty("ApplicationName", "quota-authority-listener");
    withoutServerErrorDetail(props::setProperty);
    return DriverManager.getConnection(listenUrl, props);
  }

  /** Channel of the start-up round trip below; no instance listens on it for anything else. */
  static final String LISTEN_CHECK_CHANNEL = "quota_listen_check";

  static final Duration LISTEN_CHECK_WAIT = Duration.ofSeconds(5);

  /**
   * Proves, before anything serves, that a NOTIFY committed through the pool reaches a session
   * LISTENing on the listener's URL. Behind pgbouncer in transaction (or statement) pool mode the
   * LISTEN runs on whichever server connection the pooler lent for that one statement, and the
   * notification goes to that connection, not to the listener: it would wait forever while its
   * cache went stale but for the bulk refresh. Refused with one line naming the setting.
   */
  void requireListenSession(String setting, Duration wait) {
    String token = "check-" + UUID.randomUUID();
    try (Connection listen = openDedicatedConnection()) {
      listen.setAutoCommit(true);
      try (Statement s = listen.createStatement()) {
        s.execute("LISTEN " + LISTEN_CHECK_CHANNEL);
      }
      transactions()
          .inTransaction(
              c -> {
                try (PreparedStatement ps = c.prepareStatement(NOTIFY_CHECK)) {
                  ps.setString(1, LISTEN_CHECK_CHANNEL);
                  ps.setString(2, token);
                  ps.executeQuery().close();
                }
                return null;
              });
      PGConnection pg = listen.unwrap(PGConnection.class);
      long deadline = System.nanoTime() + wait.toNanos();
      long left;
      while ((left = deadline - System.nanoTime()) > 0) {
        PGNotification[] got = pg.getNotifications((int) Math.max(1, left / 1_000_000));
        if (got != null) {
          for (PGNotification n : got) {
            if (token.equals(n.getParameter())) {
              return;
            }
          }
        }
      }
    } catch (SQLException e) {
      throw new ConfigException(
          setting + ": cannot listen for key changes: " + Transactions.redacted(e).getMessage(), e);
    } catch (StoreException e) {
      throw new ConfigException(setting + ": cannot send a notification: " + e.getMessage(), e);
    }
    throw new ConfigException(
        setting
            + ": a notification sent through QUOTA_DB_URL did not reach a session LISTENing there"
            + " within "
            + wait.toSeconds()
            + " s; the listener needs a session of its own: point QUOTA_DB_LISTEN_URL at"
            + " PostgreSQL itself (or a pgbouncer in session pool mode), not at pgbouncer in"
            + " transaction pool mode");
  }

  private static final String NOTIFY_CHECK =
      """
      SELECT pg_notify(?, ?)""";

  private static final String REPLICATION =
      """
      SELECT current_setting('synchronous_commit'), current_setting('synchronous_standby_names'),
             CASE WHEN pg_has_role('pg_read_all_stats', 'USAGE')
                  THEN (SELECT count(*) FROM pg_stat_replication
                         WHERE sync_state IN ('sync', 'quorum'))
             END""";

  /**
   * Reads whether the server the pool reaches (the primary) waits for a synchronous standby at
   * COMMIT, logs it in one line (INFO if so, WARN if not) the first time and whenever it changes (a
   * failover can land on a server configured otherwise), and keeps it for {@link #replication()}. A
   * failure to read is logged and changes nothing.
   */
  public void checkReplication() {
    if (embedded != null) {
      return; // one development instance: no standby to promote
    }
    Replication now;
    try {
      now =
          transactions()
              .inTransaction(
                  c -> {
                    try (Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery(REPLICATION)) {
                      rs.next();
                      long standbys = rs.getLong(3);
                      int visible = rs.wasNull() ? -1 : (int) standbys;
                      return new Replication(rs.getString(1), rs.getString(2), visible);
                    }
                  });
    } catch (StoreException e) {
      log.warn("could not read the database's replication settings: {}", e.getMessage());
      return;
    }
    Replication before = replication;
    replication = now;
    if (before == null || !before.equals(now)) {
      if (now.guarantee() == Replication.Guarantee.SYNCHRONOUS) {
        log.info(now.describe());
      } else {
        log.warn(now.describe());
      }
    }
  }

  /** The last replication check's finding, or null (none yet, or the embedded database). */
  public Replication replication() {
    return replication;
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
