package io.quotaauthority.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** PgProxy's reading of statements: their class, and the kind of transaction they ran in. */
class PgProxyTest {
  private final Map<String, Long> counted = new TreeMap<>();
  private final PgProxy.TxTally tally =
      new PgProxy.TxTally((k, n) -> counted.merge(k, n, Long::sum));

  private void statements(String... sql) {
    for (String s : sql) {
      tally.statement(s);
    }
  }

  @Test
  void txTally_leaseGrant_creditsItsFourStatementsToOneLeaseTransaction() {
    statements(
        "BEGIN",
        "UPDATE api_keys SET leased = leased + $1\n WHERE id = $2 AND quota > 0",
        "INSERT INTO key_leases (key_id, instance_id, amount, expires_at) VALUES ($1, $2, $3, now())",
        "COMMIT");

    assertThat(counted)
        .containsExactlyInAnyOrderEntriesOf(
            Map.of("(lease statements)", 4L, "(lease transactions)", 1L));
  }

  @Test
  void txTally_usageCommitDrawingOnLeases_isAUsageCommit() {
    statements(
        "BEGIN",
        "SELECT id, quota_used FROM api_keys WHERE id = ANY ($1) FOR UPDATE",
        "SELECT l.key_id, l.instance_id, l.amount FROM key_leases l FOR UPDATE OF l",
        "UPDATE key_leases l SET amount = l.amount - v.amount",
        "UPDATE api_keys k SET leased = k.leased - v.amount FROM unnest($1, $2)",
        "INSERT INTO usage_events (report_id) SELECT * FROM unnest($1)",
        "COMMIT");

    assertThat(counted)
        .containsExactlyInAnyOrderEntriesOf(
            Map.of("(usage commit statements)", 7L, "(usage commit transactions)", 1L));
  }

  @Test
  void txTally_giveBackLockingTheKeyFirst_isALeaseTransaction() {
    statements(
        "BEGIN",
        "SELECT id FROM api_keys WHERE id = $1 FOR UPDATE",
        "SELECT amount FROM key_leases WHERE key_id = $1 AND instance_id = $2 FOR UPDATE",
        "DELETE FROM key_leases WHERE key_id = $1 AND instance_id = $2",
        "UPDATE api_keys SET leased = leased - $1 WHERE id = $2",
        "COMMIT");

    assertThat(counted).containsEntry("(lease statements)", 6L).hasSize(2);
  }

  @Test
  void txTally_keyLoadReadingTheLeasedColumn_isOther() {
    statements(
        "BEGIN",
        "SELECT id, name, key_hash, quota, quota_used, version, leased FROM api_keys WHERE id = $1",
        "ROLLBACK");
    statements("SELECT 1");

    assertThat(counted)
        .containsExactlyInAnyOrderEntriesOf(
            Map.of("(other statements)", 4L, "(other transactions)", 2L));
  }

  @Test
  void txTally_rollbackToSavepoint_keepsTheTransactionOpen() {
    statements(
        "BEGIN",
        "SAVEPOINT s",
        "ROLLBACK TO SAVEPOINT s",
        "INSERT INTO usage_events (report_id) VALUES ($1)");
    assertThat(counted).isEmpty();

    statements("COMMIT");

    assertThat(counted).containsEntry("(usage commit statements)", 5L);
  }

  @Test
  void classify_reapNamingBothTables_isTheLeaseTables() {
    assertThat(
            PgProxy.classify(
                "SELECT id FROM api_keys WHERE id IN (SELECT key_id FROM key_leases WHERE"
                    + " expires_at <= $1) FOR UPDATE SKIP LOCKED"))
        .isEqualTo("SELECT key_leases");
    assertThat(PgProxy.classify("DELETE FROM key_slot_leases WHERE key_id = $1"))
        .isEqualTo("DELETE key_slot_leases");
  }
}
