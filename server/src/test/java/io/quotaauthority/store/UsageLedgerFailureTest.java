package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.usage.UsageLedger;
import java.sql.SQLException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** How the store classifies a failed commit for the usage core: by SQLSTATE, never by message. */
class UsageLedgerFailureTest {

  @ParameterizedTest
  @CsvSource({
    "22021, BAD_DATA",
    "22003, BAD_DATA",
    "23514, CONSTRAINT",
    "57014, INTERNAL",
    "40001, UNAVAILABLE",
    "XX000, INTERNAL",
    "53100, UNAVAILABLE",
    "53300, UNAVAILABLE",
    "08006, UNAVAILABLE",
    // a restart or failover: the server shutting down, or a demoted primary refusing writes
    "57P01, UNAVAILABLE",
    "57P02, UNAVAILABLE",
    "57P03, UNAVAILABLE",
    "25006, UNAVAILABLE",
    // still failing after Transactions' own retries: no report causes it, so wait, not split
    "40P01, UNAVAILABLE"
  })
  void failure_bySqlState_kindAndCodeWithoutTheDatabasesWords(
      String state, UsageLedger.Failure.Kind kind) {
    // The database's own words quote the row; the failure's message must not.
    StoreException e =
        Transactions.translate(new SQLException("Failing row contains (secret-model, 42)", state));

    UsageLedger.Failure f = UsageRepository.failure(e);

    assertThat(f.kind()).isEqualTo(kind);
    assertThat(f.code()).isEqualTo("SQLSTATE " + state);
    assertThat(f.getMessage()).doesNotContain("secret-model");
  }
}
