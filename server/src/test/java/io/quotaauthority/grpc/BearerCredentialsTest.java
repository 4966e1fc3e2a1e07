package io.quotaauthority.grpc;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.config.Tokens;
import io.quotaauthority.grpc.BearerCredentials.Credential;
import io.quotaauthority.grpc.BearerCredentials.Outcome;
import io.quotaauthority.grpc.BearerCredentials.Refusal;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Which credential a header is, and the audit actor it yields: a table. */
class BearerCredentialsTest {
  static final String SHARED = "shared-token-0123456789abcdef0123456789";
  static final String ALICE = "alice-token-0123456789abcdef0123456789";
  static final String BOB = "bob-token-0123456789abcdef0123456789ab";

  static final BearerCredentials ADMIN =
      new BearerCredentials(
          "admin",
          List.of(
              new Credential(Optional.of("alice"), Tokens.digest(ALICE)),
              Credential.of(SHARED),
              new Credential(Optional.of("bob"), Tokens.digest(BOB))));

  static Stream<Arguments> calls() {
    return Stream.of(
        Arguments.of("Bearer " + ALICE, null, new Outcome.Admitted("admin:alice")),
        Arguments.of("bearer " + BOB, "", new Outcome.Admitted("admin:bob")),
        Arguments.of("BEARER " + SHARED, null, new Outcome.Admitted("admin")),
        Arguments.of("Bearer " + ALICE, "bob", new Outcome.Admitted("admin:alice (claims: bob)")),
        Arguments.of(
            "Bearer " + SHARED,
            "carol@example.com",
            new Outcome.Admitted("admin (claims: carol@example.com)")),
        Arguments.of(
            "Bearer " + ALICE,
            "x) (claims: root; DROP",
            new Outcome.Admitted("admin:alice (claims: x___claims__root__DROP)")),
        Arguments.of(
            "Bearer " + ALICE,
            "b".repeat(70),
            new Outcome.Admitted("admin:alice (claims: " + "b".repeat(64) + ")")),
        Arguments.of("Bearer  " + ALICE + " ", null, new Outcome.Admitted("admin:alice")),
        Arguments.of(
            null,
            "bob",
            new Outcome.Refused(Refusal.MISSING, "missing authorization: Bearer <admin token>")),
        Arguments.of(
            "Basic " + ALICE,
            null,
            new Outcome.Refused(Refusal.MALFORMED, "authorization must be 'Bearer <admin token>'")),
        Arguments.of(
            ALICE,
            null,
            new Outcome.Refused(Refusal.MALFORMED, "authorization must be 'Bearer <admin token>'")),
        Arguments.of(
            "Bearer " + ALICE + "x",
            "alice",
            new Outcome.Refused(Refusal.WRONG, "wrong admin token")),
        Arguments.of(
            "Bearer " + Tokens.digestHex(ALICE),
            null,
            new Outcome.Refused(Refusal.WRONG, "wrong admin token")),
        Arguments.of("Bearer ", null, new Outcome.Refused(Refusal.WRONG, "wrong admin token")));
  }

  @ParameterizedTest
  @MethodSource("calls")
  void check_header_outcome(String authorization, String claim, Outcome expected) {
    assertThat(ADMIN.check(authorization, claim)).isEqualTo(expected);
  }

  @Test
  void check_singleReporterToken_actorIsTheRole() {
    BearerCredentials reporter = BearerCredentials.single("reporter", ALICE);

    assertThat(reporter.check("Bearer " + ALICE, null)).isEqualTo(new Outcome.Admitted("reporter"));
    assertThat(reporter.check("Bearer " + SHARED, null))
        .isEqualTo(new Outcome.Refused(Refusal.WRONG, "wrong reporter token"));
  }
}
