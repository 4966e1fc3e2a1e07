package io.quotaauthority.faults;

import io.quotaauthority.store.Transactions;
import io.quotaauthority.testing.TestDatabase;
import java.math.BigDecimal;
import java.util.HashMap;
import java.util.Map;

/**
 * What PostgreSQL holds for one key: usage_events rows per report_id, their exact sum, and
 * quota_used.
 */
record Ledger(Map<String, Long> rowsPerReport, long rows, BigDecimal sum, BigDecimal quotaUsed) {

  static Ledger of(TestDatabase db, String keyId) {
    return of(db.transactions(), keyId);
  }

  static Ledger of(Transactions transactions, String keyId) {
    long id = Long.parseLong(keyId);
    return transactions.inTransaction(
        c -> {
          Map<String, Long> perReport = new HashMap<>();
          long rows = 0;
          BigDecimal sum = BigDecimal.ZERO;
          try (var ps =
              c.prepareStatement("SELECT report_id, cost FROM usage_events WHERE key_id = ?")) {
            ps.setLong(1, id);
            try (var rs = ps.executeQuery()) {
              while (rs.next()) {
                perReport.merge(rs.getString(1), 1L, Long::sum);
                sum = sum.add(rs.getBigDecimal(2));
                rows++;
              }
            }
          }
          BigDecimal used;
          try (var ps = c.prepareStatement("SELECT quota_used FROM api_keys WHERE id = ?")) {
            ps.setLong(1, id);
            try (var rs = ps.executeQuery()) {
              rs.next();
              used = rs.getBigDecimal(1);
            }
          }
          return new Ledger(perReport, rows, sum, used);
        });
  }

  /** Rows for this report_id: 1 if charged, 0 if not; anything else is a double charge. */
  long rowsOf(String reportId) {
    return rowsPerReport.getOrDefault(reportId, 0L);
  }
}
