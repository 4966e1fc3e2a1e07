package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.quotaauthority.testing.TestDatabase;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The schema as Flyway leaves it in a fresh database on the real PostgreSQL server. */
class MigrationIT {
  private static TestDatabase db;

  @BeforeAll
  static void createDatabase() {
    db = TestDatabase.create();
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
  }

  /** column → "type|nullable|default" from information_schema. */
  private static Map<String, String> columns(String table) {
    return db.transactions()
        .inTransaction(
            c -> {
              Map<String, String> out = new LinkedHashMap<>();
              try (PreparedStatement ps =
                  c.prepareStatement(
                      """
          SELECT column_name,
                 CASE WHEN data_type = 'numeric' THEN 'numeric(' || numeric_precision || ',' || numeric_scale || ')'
                      ELSE data_type END,
                 is_nullable, coalesce(column_default, '')
            FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = ? ORDER BY ordinal_position""")) {
                ps.setString(1, table);
                try (ResultSet rs = ps.executeQuery()) {
                  while (rs.next()) {
                    out.put(
                        rs.getString(1),
                        rs.getString(2) + "|" + rs.getString(3) + "|" + rs.getString(4));
                  }
                }
              }
              return out;
            });
  }

  @Test
  void migrate_freshDatabase_apiKeysHasExactColumns() {
    Map<String, String> cols = columns("api_keys");

    assertThat(cols.keySet())
        .containsExactly(
            "id",
            "name",
            "key_hash",
            "key_prefix",
            "status",
            "quota",
            "quota_used",
            "expires_at",
            "created_at",
            "updated_at",
            "deleted_at",
            "version",
            "leased",
            "max_concurrent_requests",
            "slots_leased",
            "hold_usd_per_request",
            "hold_expiry",
            "ip_allow",
            "ip_deny",
            "model_allow",
            "budget_period",
            "budget_reset_minute",
            "budget_time_zone",
            "period_started_at",
            "period_ends_at",
            "window_5h_usd",
            "window_1d_usd",
            "window_7d_usd",
            "window_30d_usd",
            "spent_usd",
            "requests_per_minute",
            "tokens_per_minute",
            "tokens_used");
    assertThat(cols.get("id")).startsWith("bigint|NO|");
    assertThat(cols.get("name")).isEqualTo("text|NO|");
    assertThat(cols.get("key_hash")).isEqualTo("bytea|NO|");
    assertThat(cols.get("key_prefix")).isEqualTo("text|NO|");
    assertThat(cols.get("status")).isEqualTo("text|NO|'active'::text");
    assertThat(cols.get("quota")).isEqualTo("numeric(20,8)|NO|0");
    assertThat(cols.get("quota_used")).isEqualTo("numeric(20,8)|NO|0");
    assertThat(cols.get("expires_at")).isEqualTo("timestamp with time zone|YES|");
    assertThat(cols.get("created_at")).isEqualTo("timestamp with time zone|NO|now()");
    assertThat(cols.get("updated_at")).isEqualTo("timestamp with time zone|NO|now()");
    assertThat(cols.get("deleted_at")).isEqualTo("timestamp with time zone|YES|");
    assertThat(cols.get("version")).isEqualTo("bigint|NO|1");
    assertThat(cols.get("leased")).isEqualTo("numeric(20,8)|NO|0");
    assertThat(cols.get("max_concurrent_requests")).isEqualTo("integer|NO|0");
    assertThat(cols.get("slots_leased")).isEqualTo("integer|NO|0");
    assertThat(cols.get("hold_usd_per_request")).isEqualTo("numeric(20,8)|NO|0");
    assertThat(cols.get("hold_expiry")).isEqualTo("text|NO|'charge'::text");
    assertThat(cols.get("ip_allow")).isEqualTo("ARRAY|NO|'{}'::text[]");
    assertThat(cols.get("ip_deny")).isEqualTo("ARRAY|NO|'{}'::text[]");
    assertThat(cols.get("model_allow")).isEqualTo("ARRAY|NO|'{}'::text[]");
    assertThat(cols.get("budget_period")).isEqualTo("text|NO|'none'::text");
    assertThat(cols.get("budget_reset_minute")).isEqualTo("smallint|NO|0");
    assertThat(cols.get("budget_time_zone")).isEqualTo("text|NO|'UTC'::text");
    assertThat(cols.get("period_started_at")).isEqualTo("timestamp with time zone|YES|");
    assertThat(cols.get("period_ends_at")).isEqualTo("timestamp with time zone|YES|");
  }

  @Test
  void reporterHolds_constraints_oneChargePerHoldAndOnlyKnownExpiryRules() throws SQLException {
    try (Connection c = DriverManager.getConnection(db.url(), "postgres", "")) {
      try (Statement s = c.createStatement()) {
        s.execute(
            "INSERT INTO api_keys (name, key_hash, key_prefix, quota) VALUES ('holds', decode(repeat('e7', 32), 'hex'), 'sk-holds', 1)");
        s.execute(
            "INSERT INTO usage_events (report_id, key_id, cost, occurred_at, hold_id)"
                + " SELECT 'r-1', id, 0.1, now(), 'h-1' FROM api_keys WHERE name = 'holds'");
        // Reports without a hold are not constrained by it.
        s.execute(
            "INSERT INTO usage_events (report_id, key_id, cost, occurred_at)"
                + " SELECT 'r-' || g, id, 0.1, now() FROM api_keys, generate_series(2, 3) g"
                + " WHERE name = 'holds'");
      }
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute(
                          "INSERT INTO usage_events (report_id, key_id, cost, occurred_at, hold_id)"
                              + " SELECT 'r-9', id, 0.1, now(), 'h-1' FROM api_keys WHERE name = 'holds'"))
          .hasMessageContaining("usage_events_hold_id_idx");
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute("UPDATE api_keys SET hold_expiry = 'refund' WHERE name = 'holds'"))
          .hasMessageContaining("api_keys_hold_expiry_check");
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute(
                          "UPDATE api_keys SET hold_usd_per_request = -0.00000001 WHERE name = 'holds'"))
          .hasMessageContaining("api_keys_hold_usd_per_request_check");
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute("INSERT INTO cluster_secrets (name, secret) VALUES ('x', '\\x00')"))
          .hasMessageContaining("cluster_secrets_secret_check");
    }
    assertThat(db.count("SELECT count(*) FROM usage_events")).isEqualTo(3);
  }

  @Test
  void migrate_freshDatabase_keyLeasesHasExactColumnsAndKey() {
    Map<String, String> cols = columns("key_leases");

    assertThat(cols.keySet()).containsExactly("key_id", "instance_id", "amount", "expires_at");
    assertThat(cols.get("key_id")).isEqualTo("bigint|NO|");
    assertThat(cols.get("instance_id")).isEqualTo("text|NO|");
    assertThat(cols.get("amount")).isEqualTo("numeric(20,8)|NO|");
    assertThat(cols.get("expires_at")).isEqualTo("timestamp with time zone|NO|");
    assertThat(
            (String)
                db.scalar(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                        + " WHERE conrelid = 'key_leases'::regclass AND contype = 'p'"))
        .isEqualTo("PRIMARY KEY (key_id, instance_id)");
  }

  @Test
  void keyLeases_constraints_refuseNegativeAmountsAndEmptyInstance() throws SQLException {
    try (Connection c = DriverManager.getConnection(db.url(), "postgres", "")) {
      try (Statement s = c.createStatement()) {
        s.execute(
            "INSERT INTO api_keys (name, key_hash, key_prefix, quota) VALUES ('leases', decode(repeat('cd', 32), 'hex'), 'sk-lease', 1)");
      }
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute("UPDATE api_keys SET leased = -0.00000001 WHERE name = 'leases'"))
          .hasMessageContaining("api_keys_leased_check");
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute(
                          "INSERT INTO key_leases SELECT id, 'i', -1, now() FROM api_keys WHERE name = 'leases'"))
          .hasMessageContaining("key_leases_amount_check");
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute(
                          "INSERT INTO key_leases SELECT id, '', 1, now() FROM api_keys WHERE name = 'leases'"))
          .hasMessageContaining("key_leases_instance_id_check");
    }
    assertThat(db.count("SELECT count(*) FROM key_leases")).isZero();
  }

  @Test
  void migrate_freshDatabase_idIsGeneratedAlwaysIdentity() {
    assertThat(
            db.scalar(
                """
        SELECT is_identity || '/' || identity_generation FROM information_schema.columns
         WHERE table_name = 'api_keys' AND column_name = 'id'"""))
        .isEqualTo("YES/ALWAYS");
  }

  @Test
  void migrate_freshDatabase_keyAuditHasExactColumns() {
    Map<String, String> cols = columns("key_audit");

    assertThat(cols.keySet())
        .containsExactly("id", "key_id", "action", "old_value", "new_value", "actor", "at");
    assertThat(cols.get("key_id")).isEqualTo("bigint|NO|");
    assertThat(cols.get("action")).isEqualTo("text|NO|");
    assertThat(cols.get("old_value")).isEqualTo("jsonb|YES|");
    assertThat(cols.get("new_value")).isEqualTo("jsonb|YES|");
    assertThat(cols.get("actor")).isEqualTo("text|NO|");
    assertThat(cols.get("at")).isEqualTo("timestamp with time zone|NO|now()");
  }

  @Test
  void migrate_freshDatabase_keyHashIsUnique() {
    assertThat(
            db.count(
                """
        SELECT count(*) FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = 'api_keys'::regclass AND i.indisunique AND i.indnatts = 1
           AND a.attname = 'key_hash'"""))
        .isEqualTo(1);
  }

  @Test
  void migrate_freshDatabase_twoPartialIndexesOnLiveKeys() {
    List<String> defs =
        db.transactions()
            .inTransaction(
                c -> {
                  List<String> out = new ArrayList<>();
                  try (Statement s = c.createStatement();
                      ResultSet rs =
                          s.executeQuery(
                              """
              SELECT indexname || ': ' || indexdef FROM pg_indexes
               WHERE tablename = 'api_keys' AND indexdef LIKE '%WHERE%' ORDER BY indexname""")) {
                    while (rs.next()) {
                      out.add(rs.getString(1));
                    }
                  }
                  return out;
                });

    // V10 dropped api_keys_quota_idx (quota, quota_used): no charge could be a HOT update.
    assertThat(defs).hasSize(2);
    assertThat(defs.get(0))
        .startsWith("api_keys_expires_at_idx: ")
        .contains("(expires_at)")
        .endsWith("WHERE (deleted_at IS NULL)");
    // V9: the budget period sweep's due keys.
    assertThat(defs.get(1))
        .startsWith("api_keys_period_ends_at_idx: ")
        .contains("(period_ends_at)")
        .endsWith("WHERE ((budget_period <> 'none'::text) AND (deleted_at IS NULL))");
  }

  @Test
  void migrate_freshDatabase_moneyAndExpiryColumnsAreDocumented() {
    String sql =
        "SELECT col_description('api_keys'::regclass, attnum) FROM pg_attribute"
            + " WHERE attrelid = 'api_keys'::regclass AND attname = ?";

    assertThat((String) db.scalar(sql, "quota")).isEqualTo("quota in USD; 0 means unlimited");
    assertThat((String) db.scalar(sql, "quota_used"))
        .isEqualTo("USD charged so far, exact to 1e-8; ResetQuota sets it to 0");
    assertThat((String) db.scalar(sql, "expires_at"))
        .isEqualTo("when the key stops working; NULL means never");
  }

  @Test
  void keyAudit_updateOrDelete_raisesAndLeavesTheRow() throws SQLException {
    try (Connection c = DriverManager.getConnection(db.url(), "postgres", "")) {
      try (Statement s = c.createStatement()) {
        s.execute(
            "INSERT INTO api_keys (name, key_hash, key_prefix) VALUES ('audit', decode(repeat('ab', 32), 'hex'), 'sk-abcde')");
        s.execute(
            "INSERT INTO key_audit (key_id, action, actor) SELECT id, 'create', 'test' FROM api_keys WHERE name = 'audit'");
      }
      assertThatThrownBy(
              () -> c.createStatement().executeUpdate("UPDATE key_audit SET actor = 'mallory'"))
          .isInstanceOf(SQLException.class)
          .hasMessageContaining("key_audit is append-only");
      assertThatThrownBy(() -> c.createStatement().executeUpdate("DELETE FROM key_audit"))
          .isInstanceOf(SQLException.class)
          .hasMessageContaining("key_audit is append-only");
    }
    assertThat(
            db.count("SELECT count(*) FROM key_audit WHERE actor = 'test' AND action = 'create'"))
        .isEqualTo(1);
    assertThat(db.count("SELECT count(*) FROM key_audit WHERE actor = 'mallory'")).isZero();
  }

  @Test
  void apiKeys_constraints_refuseNegativeMoneyAndBadHashAndStatus() throws SQLException {
    try (Connection c = DriverManager.getConnection(db.url(), "postgres", "")) {
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute(
                          "INSERT INTO api_keys (name, key_hash, key_prefix, quota) VALUES ('n', decode(repeat('01', 32), 'hex'), 'p', -1)"))
          .hasMessageContaining("api_keys_quota_check");
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute(
                          "INSERT INTO api_keys (name, key_hash, key_prefix, quota_used) VALUES ('n', decode(repeat('02', 32), 'hex'), 'p', -0.00000001)"))
          .hasMessageContaining("api_keys_quota_used_check");
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute(
                          "INSERT INTO api_keys (name, key_hash, key_prefix) VALUES ('n', decode('0102', 'hex'), 'p')"))
          .hasMessageContaining("api_keys_key_hash_check");
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute(
                          "INSERT INTO api_keys (name, key_hash, key_prefix, status) VALUES ('n', decode(repeat('03', 32), 'hex'), 'p', 'expired')"))
          .hasMessageContaining("api_keys_status_check");
      assertThatThrownBy(
              () ->
                  c.createStatement()
                      .execute(
                          "INSERT INTO api_keys (name, key_hash, key_prefix) VALUES ('', decode(repeat('04', 32), 'hex'), 'p')"))
          .hasMessageContaining("api_keys_name_check");
    }
    assertThat(db.count("SELECT count(*) FROM api_keys WHERE key_prefix = 'p'")).isZero();
  }

  /**
   * V11's backfill on a database that already has keys and a ledger: migrated up to V9 (the last
   * version before the windows that every branch has; V10, reserved for the usage-ingest work, then
   * runs with the rest), filled as the product fills it, then migrated to the latest.
   */
  @Test
  void migrateFromV9_keysWithUsage_spentUsdIsEachKeysLedgerAndTokensUsedStartsAtZero()
      throws SQLException {
    String name = "qa_v9_" + ProcessHandle.current().pid() + "_" + System.nanoTime() % 100000;
    try (Connection admin = DriverManager.getConnection(TestDatabase.adminUrl(), "postgres", "");
        Statement s = admin.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    }
    HikariConfig config = new HikariConfig();
    config.setJdbcUrl(TestDatabase.urlOf(name));
    config.setUsername("postgres");
    config.setMaximumPoolSize(2);
    try (HikariDataSource pool = new HikariDataSource(config)) {
      Flyway.configure()
          .dataSource(pool)
          .locations("classpath:db/migration")
          .target("9")
          .load()
          .migrate();
      try (Connection c = pool.getConnection();
          Statement s = c.createStatement()) {
        assertThat(column(s, "api_keys", "spent_usd")).as("before V11").isFalse();
        // Lifetime keys: quota_used is the sum of the key's ledger, as every charge keeps it.
        s.execute(
            """
            INSERT INTO api_keys (name, key_hash, key_prefix, quota, quota_used)
            VALUES ('lifetime', decode(repeat('a1', 32), 'hex'), 'sk-life1', 10, 0.60000001),
                   ('full', decode(repeat('a2', 32), 'hex'), 'sk-full1', 0, 999999999999.99999999),
                   ('idle', decode(repeat('a3', 32), 'hex'), 'sk-idle1', 5, 0),
                   ('reset', decode(repeat('a5', 32), 'hex'), 'sk-reset', 5, 0.5)""");
        // A monthly key: quota_used is the current period's; the ended period is in the history.
        s.execute(
            """
            INSERT INTO api_keys (name, key_hash, key_prefix, quota, quota_used, budget_period,
                                  period_started_at, period_ends_at)
            VALUES ('monthly', decode(repeat('a4', 32), 'hex'), 'sk-month', 999999999999, 0.25,
                    'monthly', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z')""");
        s.execute(
            """
            INSERT INTO key_budget_periods (key_id, period, time_zone, started_at, ended_at,
                                            budget, used)
            SELECT id, 'monthly', 'UTC', '2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z',
                   999999999999, 999999999999.99999999 FROM api_keys WHERE name = 'monthly'""");
        s.execute(
            """
            INSERT INTO usage_events (report_id, key_id, cost, input_tokens, output_tokens,
                                      occurred_at)
            SELECT e.report_id, k.id, e.cost, e.input_tokens, e.output_tokens, now()
              FROM (VALUES ('l-1', 'lifetime', 0.1, 10, 20),
                           ('l-2', 'lifetime', 0.2, 30, 40),
                           ('l-3', 'lifetime', 0.30000001, 0, 0),
                           ('f-1', 'full', 999999999999.99999998, 1, 1),
                           ('f-2', 'full', 0.00000001, 1, 1),
                           ('m-nov', 'monthly', 999999999999.99999999, 100, 200),
                           ('m-dec', 'monthly', 0.25, 5, 5),
                           ('r-1', 'reset', 2, 7, 7),
                           ('r-2', 'reset', 0.5, 7, 7))
                   AS e(report_id, key_name, cost, input_tokens, output_tokens)
              JOIN api_keys k ON k.name = e.key_name""");
      }

      Database.migrate(pool);

      try (Connection c = pool.getConnection();
          Statement s = c.createStatement()) {
        Map<String, BigDecimal> spent = new LinkedHashMap<>();
        Map<String, BigDecimal> ledger = new LinkedHashMap<>();
        Map<String, Long> tokens = new LinkedHashMap<>();
        try (ResultSet rs =
            s.executeQuery(
                """
                SELECT k.name, k.spent_usd, k.tokens_used,
                       (SELECT coalesce(sum(e.cost), 0) FROM usage_events e WHERE e.key_id = k.id)
                  FROM api_keys k ORDER BY k.id""")) {
          while (rs.next()) {
            spent.put(rs.getString(1), rs.getBigDecimal(2));
            tokens.put(rs.getString(1), rs.getLong(3));
            ledger.put(rs.getString(1), rs.getBigDecimal(4));
          }
        }
        // Exact decimals, NUMERIC(24,8): nothing rounded, even past what one quota can hold
        // (the monthly key's ended period plus its current one).
        assertThat(spent)
            .containsExactly(
                Map.entry("lifetime", new BigDecimal("0.60000001")),
                Map.entry("full", new BigDecimal("999999999999.99999999")),
                Map.entry("idle", new BigDecimal("0E-8")),
                Map.entry("reset", new BigDecimal("0.50000000")),
                Map.entry("monthly", new BigDecimal("1000000000000.24999999")));
        // Every key whose counters follow its ledger gets exactly the ledger's sum.
        for (String key : List.of("lifetime", "full", "idle", "monthly")) {
          assertThat(spent.get(key)).as(key).isEqualByComparingTo(ledger.get(key));
        }
        // V11 adds up the counters (quota_used and the ended periods), never the ledger: a key
        // reset by ResetQuota before the migration (2 USD charged, reset, 0.5 charged) starts at
        // what it charged since. Windows only follow spent_usd's growth, so its start does not
        // change what they count (they read their first 30 days from usage_events).
        assertThat(ledger.get("reset")).isEqualByComparingTo("2.5");
        // V12 starts the lifetime token counter at zero: the ledger's tokens are not backfilled,
        // so tokens_per_minute counts from the first charge after the migration.
        assertThat(tokens)
            .containsExactly(
                Map.entry("lifetime", 0L),
                Map.entry("full", 0L),
                Map.entry("idle", 0L),
                Map.entry("reset", 0L),
                Map.entry("monthly", 0L));
        try (ResultSet rs =
            s.executeQuery(
                "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank)"
                    + " FROM flyway_schema_history WHERE version::int >= 11")) {
          rs.next();
          assertThat(rs.getString(1)).isEqualTo("11:true,12:true,13:true");
        }
      }
    } finally {
      try (Connection admin = DriverManager.getConnection(TestDatabase.adminUrl(), "postgres", "");
          Statement s = admin.createStatement()) {
        s.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
      }
    }
  }

  private static boolean column(Statement s, String table, String column) throws SQLException {
    try (ResultSet rs =
        s.executeQuery(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = '"
                + table
                + "' AND column_name = '"
                + column
                + "'")) {
      rs.next();
      return rs.getLong(1) == 1;
    }
  }

  @Test
  void migrate_freshDatabase_noApiKeysIndexHoldsAColumnAChargeOrLeaseChanges() {
    // V10: what a charge or a lease writes is in no index, so those updates can be HOT.
    List<String> indexed =
        db.transactions()
            .inTransaction(
                c -> {
                  List<String> out = new ArrayList<>();
                  try (Statement s = c.createStatement();
                      ResultSet rs =
                          s.executeQuery(
                              """
              SELECT DISTINCT a.attname FROM pg_index i
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
               WHERE i.indrelid = 'api_keys'::regclass ORDER BY 1""")) {
                    while (rs.next()) {
                      out.add(rs.getString(1));
                    }
                  }
                  return out;
                });

    assertThat(indexed).containsExactly("expires_at", "id", "key_hash", "period_ends_at");
    assertThat(
            (Object)
                db.scalar(
                    "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'api_keys'::regclass"))
        .isEqualTo("fillfactor=50");
  }

  @Test
  void chargeUpdate_ofAKeysCounters_isHeapOnly() throws SQLException {
    try (Connection c = DriverManager.getConnection(db.url(), "postgres", "")) {
      c.setAutoCommit(false);
      try (Statement s = c.createStatement()) {
        s.execute(
            "INSERT INTO api_keys (name, key_hash, key_prefix, quota) VALUES ('hot', decode(repeat('c1', 32), 'hex'), 'sk-hot', 10)");
        // The statement UsageRepository's charge makes, three times (three groups).
        for (int i = 0; i < 3; i++) {
          s.execute(
              "UPDATE api_keys SET quota_used = quota_used + 0.00000001, updated_at = now(),"
                  + " version = version + 1 WHERE name = 'hot'");
        }
        // This transaction's own counts: exact at once, unlike pg_stat_user_tables.
        try (ResultSet rs =
            s.executeQuery(
                "SELECT pg_stat_get_xact_tuples_updated('api_keys'::regclass),"
                    + " pg_stat_get_xact_tuples_hot_updated('api_keys'::regclass)")) {
          rs.next();
          assertThat(rs.getLong(1)).isEqualTo(3);
          assertThat(rs.getLong(2)).isEqualTo(3);
        }
      }
      c.rollback();
    }
  }

  @Test
  void apiKeys_deleteOrTruncate_raisesAndLeavesTheRow() throws SQLException {
    try (Connection c = DriverManager.getConnection(db.url(), "postgres", "")) {
      c.createStatement()
          .execute(
              "INSERT INTO api_keys (name, key_hash, key_prefix) VALUES ('kept', decode(repeat('c2', 32), 'hex'), 'sk-kept')");
      assertThatThrownBy(
              () -> c.createStatement().executeUpdate("DELETE FROM api_keys WHERE name = 'kept'"))
          .isInstanceOf(SQLException.class)
          .hasMessageContaining("api_keys rows are never deleted");
      assertThatThrownBy(() -> c.createStatement().execute("TRUNCATE api_keys CASCADE"))
          .isInstanceOf(SQLException.class)
          .hasMessageContaining("api_keys rows are never deleted");
    }
    assertThat(db.count("SELECT count(*) FROM api_keys WHERE name = 'kept'")).isEqualTo(1);
  }

  @Test
  void migrate_freshDatabase_usageEventsKeyIdHasNoForeignKey() {
    // V10: the charge holds the key's row FOR UPDATE and keys are never deleted (above), so the
    // per-row check was redundant.
    assertThat(
            db.count(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = 'usage_events'::regclass"
                    + " AND contype = 'f'"))
        .isZero();
  }

  @Test
  void migrate_freshDatabase_usageEventsHasThreeIndexesAndOnePerKey() {
    // V13: every ledger row is written into each index, so there is one per purpose: the key,
    // report_id's uniqueness, a hold's one charge (partial: only held rows), and one per key that
    // serves both the windows' read-back and ListUsage's pages.
    assertThat(
            db.scalar(
                "SELECT string_agg(indexdef, ' | ' ORDER BY indexname) FROM pg_indexes"
                    + " WHERE tablename = 'usage_events'"))
        .isEqualTo(
            "CREATE UNIQUE INDEX usage_events_hold_id_idx ON public.usage_events USING btree"
                + " (hold_id) WHERE (hold_id IS NOT NULL)"
                + " | CREATE INDEX usage_events_key_received_id_idx ON public.usage_events USING"
                + " btree (key_id, received_at, id)"
                + " | CREATE UNIQUE INDEX usage_events_pkey ON public.usage_events USING btree (id)"
                + " | CREATE UNIQUE INDEX usage_events_report_id_key ON public.usage_events USING"
                + " btree (report_id)");
  }

  @Test
  void migrate_secondTime_isANoOp() {
    long before = db.count("SELECT count(*) FROM flyway_schema_history");

    Database.migrate(db.pool());

    assertThat(db.count("SELECT count(*) FROM flyway_schema_history")).isEqualTo(before);
    assertThat(db.count("SELECT count(*) FROM flyway_schema_history WHERE success"))
        .isEqualTo(before);
  }
}
