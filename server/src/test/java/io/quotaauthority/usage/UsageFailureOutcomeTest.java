package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.store.StoreException;
import io.quotaauthority.store.Transactions;
import java.sql.SQLException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** How UsageBatcher answers a report the database failed on alone, and which failures it waits out. */
class UsageFailureOutcomeTest {

  private static StoreException store(String state) {
    // The database's own words quote the row; the answer must not.
    return Transactions.translate(new SQLException("Failing row contains (secret-model, 42)", state));
  }

  @ParameterizedTest
  @CsvSource({
      // SQLSTATE, retryable, wait and retry the whole group
      "22021, false, false",
      "22003, false, false",
      "23514, false, false",
      "57014, true, false",
      "40001, true, false",
      "XX000, true, false",
      "53100, true, true",
      "53300, true, true",
      "08006, true, true"})
  void failureOutcome_bySqlState_rejectedNamingStateOnly(String state, boolean retryable, boolean waits) {
    StoreException e = store(state);
    UsageOutcome outcome = UsageBatcher.failureOutcome(e);
    assertThat(outcome.result()).isEqualTo(UsageOutcome.Result.REJECTED);
    assertThat(outcome.retryable()).isEqualTo(retryable);
    assertThat(outcome.message()).contains("SQLSTATE " + state).contains("not charged")
        .doesNotContain("secret-model");
    assertThat(UsageBatcher.waitAndRetry(e)).isEqualTo(waits);
  }

  @Test
  void failureOutcome_notADatabaseError_internalAndRetryable() {
    UsageOutcome outcome = UsageBatcher.failureOutcome(new IllegalStateException("bug with secret-model"));
    assertThat(outcome.retryable()).isTrue();
    assertThat(outcome.message()).isEqualTo("internal error; not charged, retry the report");
  }
}
