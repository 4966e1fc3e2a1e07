package io.quotaauthority.ha;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.FieldMask;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.quotaauthority.config.Setting;
import io.quotaauthority.config.Settings;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.store.Database;
import io.quotaauthority.store.Transactions;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The server through a real pgbouncer in transaction pool mode: pgbouncer lends a server connection
 * for one transaction at a time (two server connections for the server's pool of 8, so clients
 * really are multiplexed), so nothing may rely on session state, and server-side prepared
 * statements only work as pgbouncer 1.21+'s protocol-level support allows. The listener, which
 * needs a session, takes QUOTA_DB_LISTEN_URL straight to PostgreSQL.
 */
class PgBouncerIT {
  private static TestDatabase db;
  private static PgBouncer bouncer;

  @BeforeAll
  static void start() throws Exception {
    db = TestDatabase.create();
    bouncer = PgBouncer.start("transaction", 2, 0);
  }

  @AfterAll
  static void stop() throws Exception {
    try {
      if (bouncer != null) {
        bouncer.close();
      }
    } finally {
      db.close();
    }
  }

  private static int check(TestServer server, String secret) {
    CheckResponse r =
        AuthorizationGrpc.newBlockingStub(server.authzChannel())
            .withDeadlineAfter(5, TimeUnit.SECONDS)
            .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build());
    return r.getStatus().getCode() == 0 ? 200 : r.getDeniedResponse().getStatus().getCodeValue();
  }

  private static void await(IntSupplier http, int expected) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    int last;
    while ((last = http.getAsInt()) != expected && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertThat(last).isEqualTo(expected);
  }

  @Test
  void serve_poolThroughPgbouncerTransactionModeListenerDirect_adminCheckUsageFlowAllWork()
      throws Exception {
    long before = bouncer.transactions(db.name());
    try (TestServer server =
        TestServer.start(
            db,
            Map.of(
                Setting.DB_URL,
                bouncer.jdbcUrl(db.name(), "?prepareThreshold=0"),
                Setting.DB_LISTEN_URL,
                db.url()),
            Clock.systemUTC())) {
      CreateKeyResponse key =
          server
              .admin()
              .createKey(
                  CreateKeyRequest.newBuilder().setName("bounced").setQuotaUsd("10").build());
      String id = key.getKey().getId();
      assertThat(check(server, key.getSecret())).isEqualTo(200);

      // 4 streams × 150 reports of 0.01 at once: groups commit on pool connections multiplexed
      // over pgbouncer's two server connections.
      List<UsageStream> streams = new ArrayList<>();
      for (int s = 0; s < 4; s++) {
        UsageStream st = UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN);
        streams.add(st);
        for (int i = 0; i < 150; i++) {
          st.send(UsageStream.report("pgb-" + s + "-" + i, id, "0.01"));
        }
      }
      Map<UsageResult, Integer> tally = new HashMap<>();
      for (UsageStream st : streams) {
        st.finish();
        for (ReportUsageResponse r : st.responses()) {
          tally.merge(r.getResult(), 1, Integer::sum);
        }
      }
      assertThat(tally).isEqualTo(Map.of(UsageResult.USAGE_RESULT_ACCEPTED, 600));
      assertThat(
              (BigDecimal)
                  db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", Long.valueOf(id)))
          .isEqualByComparingTo("6.00");
      assertThat(db.count("SELECT count(*) FROM usage_events WHERE key_id = ?", Long.valueOf(id)))
          .isEqualTo(600);

      // Repeats stay exactly-once through the pooler.
      UsageStream again = UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN);
      again.send(UsageStream.report("pgb-0-0", id, "0.01")).finish();
      assertThat(again.responses()).hasSize(1);
      assertThat(again.responses().get(0).getResult())
          .isEqualTo(UsageResult.USAGE_RESULT_DUPLICATE);

      // Admin changes reach Check through the listener's own session (NOTIFY is sent at COMMIT
      // of a transaction pgbouncer passed on).
      server
          .admin()
          .updateKey(
              UpdateKeyRequest.newBuilder()
                  .setKey(ApiKey.newBuilder().setId(id).setQuotaUsd("6"))
                  .setUpdateMask(FieldMask.newBuilder().addPaths("quota_usd"))
                  .build());
      await(() -> check(server, key.getSecret()), 429);
      server.admin().resetQuota(ResetQuotaRequest.newBuilder().setId(id).build());
      await(() -> check(server, key.getSecret()), 200);
      server
          .admin()
          .updateKey(
              UpdateKeyRequest.newBuilder()
                  .setKey(ApiKey.newBuilder().setId(id).setStatus(KeyStatus.KEY_STATUS_DISABLED))
                  .setUpdateMask(FieldMask.newBuilder().addPaths("status"))
                  .build());
      await(() -> check(server, key.getSecret()), 401);
      assertThat(
              server
                  .admin()
                  .listUsage(ListUsageRequest.newBuilder().setKeyId(id).setPageSize(10).build())
                  .getEventsCount())
          .isEqualTo(10);
      assertThat(server.app().listener().connected()).isTrue();
    }
    assertThat(bouncer.transactions(db.name()) - before)
        .as("transactions pgbouncer passed on")
        .isGreaterThan(20);
    assertThat(bouncer.log()).doesNotContain("prepared statement");
  }

  @Test
  void open_emptyDatabaseThroughPgbouncerTransactionMode_migratedAndListenerCheckPasses()
      throws Exception {
    String name = "qa_pgb_empty_" + ProcessHandle.current().pid();
    try (Connection c = DriverManager.getConnection(TestDatabase.adminUrl(), "postgres", "");
        Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    }
    try {
      Map<Setting, String> raw = new EnumMap<>(Setting.class);
      raw.put(Setting.DB_URL, bouncer.jdbcUrl(name, "?prepareThreshold=0"));
      raw.put(Setting.DB_LISTEN_URL, TestDatabase.urlOf(name));
      try (Database opened = Database.open(Settings.of(raw))) {
        int applied =
            opened
                .transactions()
                .inTransaction(
                    c -> {
                      try (Statement s = c.createStatement();
                          ResultSet rs =
                              s.executeQuery(
                                  "SELECT count(*) FROM flyway_schema_history WHERE success")) {
                        rs.next();
                        return rs.getInt(1);
                      }
                    });
        assertThat(applied).as("migrations applied through pgbouncer").isGreaterThanOrEqualTo(6);
        assertThat(opened.replication().guarantee())
            .isEqualTo(io.quotaauthority.store.Replication.Guarantee.ASYNCHRONOUS);
      }
    } finally {
      try (Connection c = DriverManager.getConnection(TestDatabase.adminUrl(), "postgres", "");
          Statement s = c.createStatement()) {
        s.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
      }
    }
  }

  @Test
  void start_listenUrlAtPgbouncerTransactionMode_refusedNamingTheSetting() {
    long start = System.nanoTime();
    assertThatThrownBy(
            () ->
                TestServer.start(
                    db,
                    Map.of(
                        Setting.DB_URL,
                        db.url(),
                        Setting.DB_LISTEN_URL,
                        bouncer.jdbcUrl(db.name(), "?prepareThreshold=0")),
                    Clock.systemUTC()))
        .rootCause()
        .hasMessageStartingWith(
            "QUOTA_DB_LISTEN_URL: a notification sent through QUOTA_DB_URL did not reach a"
                + " session LISTENing there within 5 s")
        .hasMessageContaining("not at pgbouncer in transaction pool mode");
    assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(30_000);
  }

  @Test
  void start_bothUrlsAtPgbouncerTransactionMode_refusedNamingTheMainUrl() {
    assertThatThrownBy(
            () ->
                TestServer.start(
                    db,
                    Map.of(Setting.DB_URL, bouncer.jdbcUrl(db.name(), "?prepareThreshold=0")),
                    Clock.systemUTC()))
        .rootCause()
        .hasMessageStartingWith("QUOTA_DB_URL (the listener's URL, as QUOTA_DB_LISTEN_URL is not");
  }

  /**
   * The figure behind the README's advice: the Check cold path's query (a key by hash, in its own
   * transaction) from 4 threads, straight to PostgreSQL with pgjdbc's server-side prepared
   * statements (the default: named after 5 uses) and without them (prepareThreshold=0: one unnamed
   * statement per execution), and through pgbouncer (2 server connections) with prepareThreshold=0;
   * pgbouncer 1.21+ also with its protocol-level prepared statements (max_prepared_statements).
   * Printed, not judged; only errors are.
   */
  @Test
  void preparedStatements_directAndThroughPgbouncer_measuredAndErrorFreeWithThresholdZero()
      throws Exception {
    StringBuilder out =
        new StringBuilder("prepared statements, 4 threads × 2000 lookups by hash:\n");
    measure("warm-up", db.url()); // so the first figure is not the JIT's
    out.append(measure("direct, prepareThreshold=5 (default)", db.url()));
    out.append(measure("direct, prepareThreshold=0", db.url() + "?prepareThreshold=0"));
    Measured viaBouncer =
        measure(
            "pgbouncer transaction mode, prepareThreshold=0",
            bouncer.jdbcUrl(db.name(), "?prepareThreshold=0"));
    out.append(viaBouncer);
    int[] v = PgBouncer.version();
    if (v[0] > 1 || v[1] >= 21) {
      try (PgBouncer protocolLevel = PgBouncer.start("transaction", 2, 200)) {
        out.append(
            measure(
                "pgbouncer transaction mode, max_prepared_statements=200, prepareThreshold=5",
                protocolLevel.jdbcUrl(db.name(), "")));
      }
    } else {
      out.append(
          "  pgbouncer "
              + v[0]
              + "."
              + v[1]
              + " has no max_prepared_statements (1.21+): the protocol-level variant is not"
              + " measured here\n");
      out.append(
          measure(
              "pgbouncer "
                  + v[0]
                  + "."
                  + v[1]
                  + " transaction mode, prepareThreshold=5 (what breaks)",
              bouncer.jdbcUrl(db.name(), "")));
    }
    System.out.print(out);
    assertThat(viaBouncer.errors).isZero();
  }

  private record Measured(String name, long ok, long errors, long millis, String firstError) {
    @Override
    public String toString() {
      return String.format(
          "  %-80s %6d ok in %5d ms (%6.0f/s), %d errors%s%n",
          name,
          ok,
          millis,
          ok * 1000.0 / Math.max(1, millis),
          errors,
          firstError == null ? "" : " (first: " + firstError + ")");
    }
  }

  private static Measured measure(String name, String url) throws Exception {
    HikariConfig c = new HikariConfig();
    c.setJdbcUrl(url);
    c.setUsername("postgres");
    c.setMaximumPoolSize(4);
    c.setAutoCommit(false);
    String hash =
        (String) db.scalar("SELECT encode(key_hash, 'hex') FROM api_keys ORDER BY id LIMIT 1");
    try (HikariDataSource pool = new HikariDataSource(c)) {
      Transactions tx = new Transactions(pool);
      AtomicLong ok = new AtomicLong();
      AtomicLong errors = new AtomicLong();
      String[] first = {null};
      List<Thread> threads = new ArrayList<>();
      long start = System.nanoTime();
      for (int t = 0; t < 4; t++) {
        Thread th =
            new Thread(
                () -> {
                  for (int i = 0; i < 2000; i++) {
                    try {
                      tx.inTransaction(
                          conn -> {
                            try (PreparedStatement ps =
                                conn.prepareStatement(
                                    "SELECT id, quota, quota_used, status FROM api_keys"
                                        + " WHERE key_hash = decode(?, 'hex') AND deleted_at IS NULL")) {
                              ps.setString(1, hash == null ? "00" : hash);
                              try (ResultSet rs = ps.executeQuery()) {
                                return rs.next();
                              }
                            }
                          });
                      ok.incrementAndGet();
                    } catch (RuntimeException e) {
                      if (errors.incrementAndGet() == 1) {
                        first[0] = e.getMessage();
                      }
                    }
                  }
                });
        threads.add(th);
        th.start();
      }
      for (Thread th : threads) {
        th.join();
      }
      return new Measured(
          name,
          ok.get(),
          errors.get(),
          TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start),
          first[0]);
    }
  }
}
