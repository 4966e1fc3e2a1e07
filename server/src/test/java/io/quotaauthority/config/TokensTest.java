package io.quotaauthority.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The one token rule: 32+ characters, printable ASCII, no space. */
class TokensTest {
  static final String OK32 = "0123456789abcdef0123456789abcdef";

  static Stream<Arguments> tokens() {
    return Stream.of(
        Arguments.of(OK32, null),
        Arguments.of("A-Z_a-z~!#$%&'()*+,./:;<=>?@[]^`{|}" + "\"\\", null),
        Arguments.of(
            "0123456789abcdef0123456789abcde",
            "must be at least 32 characters, got 31 (generate one with: openssl rand -hex 32)"),
        Arguments.of(
            "", "must be at least 32 characters, got 0 (generate one with: openssl rand -hex 32)"),
        Arguments.of(OK32 + " x", "must be printable ASCII without spaces (character 33 is not)"),
        Arguments.of("\t" + OK32, "must be printable ASCII without spaces (character 1 is not)"),
        Arguments.of(OK32 + "\n", "must be printable ASCII without spaces (character 33 is not)"),
        Arguments.of(
            OK32 + "\u007f", "must be printable ASCII without spaces (character 33 is not)"),
        Arguments.of(
            OK32 + "\u00a0", "must be printable ASCII without spaces (character 33 is not)"),
        Arguments.of("short\u0000", "must be printable ASCII without spaces (character 6 is not)"));
  }

  @ParameterizedTest
  @MethodSource("tokens")
  void problem_token_expectedAnswer(String token, String expected) {
    assertThat(Tokens.problem(token)).isEqualTo(Optional.ofNullable(expected));
  }

  @Test
  void digestHex_knownToken_sha256OfItsBytes() {
    // printf %s 0123456789abcdef0123456789abcdef | sha256sum
    assertThat(Tokens.digestHex(OK32))
        .isEqualTo("3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9");
  }
}
