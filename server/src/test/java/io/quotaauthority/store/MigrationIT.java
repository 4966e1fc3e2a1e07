package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quotaauthority.testing.TestDatabase;
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
  void migrate_secondTime_isANoOp() {
    long before = db.count("SELECT count(*) FROM flyway_schema_history");

    Database.migrate(db.pool());

    assertThat(db.count("SELECT count(*) FROM flyway_schema_history")).isEqualTo(before);
    assertThat(db.count("SELECT count(*) FROM flyway_schema_history WHERE success"))
        .isEqualTo(before);
  }
}
