package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** How UsageBatcher answers a report the ledger failed on alone. */
class UsageFailureOutcomeTest {

  @ParameterizedTest
  @CsvSource({
    // kind, retryable, message start
    "BAD_DATA, false, the database refused this report's data",
    "CONSTRAINT, false, the report breaks a ledger constraint",
    "INTERNAL, true, internal error",
    "UNAVAILABLE, true, internal error"
  })
  void failureOutcome_byKind_rejectedNamingTheCodeOnly(
      UsageLedger.Failure.Kind kind, boolean retryable, String start) {
    UsageOutcome outcome =
        UsageBatcher.failureOutcome(
            new UsageLedger.Failure(
                kind, "SQLSTATE 22021", new RuntimeException("row (secret-model, 42)")));

    assertThat(outcome.result()).isEqualTo(UsageOutcome.Result.REJECTED);
    assertThat(outcome.retryable()).isEqualTo(retryable);
    assertThat(outcome.message())
        .startsWith(start)
        .contains("(SQLSTATE 22021)")
        .contains("not charged")
        .doesNotContain("secret-model");
  }

  @Test
  void failureOutcome_notALedgerFailure_internalAndRetryable() {
    UsageOutcome outcome =
        UsageBatcher.failureOutcome(new IllegalStateException("bug with secret-model"));
    assertThat(outcome.retryable()).isTrue();
    assertThat(outcome.message()).isEqualTo("internal error; not charged, retry the report");
  }
}
