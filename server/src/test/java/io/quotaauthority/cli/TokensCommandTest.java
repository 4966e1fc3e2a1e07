package io.quotaauthority.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code tokens hash}: the QUOTA_ADMIN_TOKENS_FILE line of a token read from stdin. */
class TokensCommandTest {
  static final String TOKEN = "0123456789abcdef0123456789abcdef";
  // printf %s 0123456789abcdef0123456789abcdef | sha256sum
  static final String DIGEST = "3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9";

  private final CliRunner cli = new CliRunner(Map.of());

  @Test
  void hash_tokenOnStdin_printsItsSha256Hex() {
    CliRunner.Result r = cli.runWithStdin(TOKEN + "\n", "tokens", "hash");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    assertThat(r.out()).isEqualTo(DIGEST + "\n");
  }

  @Test
  void hash_withName_printsTheWholeLine() {
    CliRunner.Result r = cli.runWithStdin(TOKEN, "tokens", "hash", "--name", "alice@ops");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    assertThat(r.out()).isEqualTo("alice@ops:" + DIGEST + "\n");
  }

  @Test
  void hash_shortToken_refusedByTheServersRuleWithoutEchoingIt() {
    CliRunner.Result r = cli.runWithStdin("not-long-enough\n", "tokens", "hash");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.out()).isEmpty();
    assertThat(r.err())
        .isEqualTo(
            "error: the token must be at least 32 characters, got 15"
                + " (generate one with: openssl rand -hex 32)\n");
  }

  @Test
  void hash_tokenWithSpace_refused() {
    CliRunner.Result r = cli.runWithStdin(TOKEN + " " + TOKEN + "\n", "tokens", "hash");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .isEqualTo(
            "error: the token must be printable ASCII without spaces (character 33 is not)\n");
  }

  @Test
  void hash_badName_refusedBeforeReading() {
    CliRunner.Result r = cli.runWithStdin(TOKEN, "tokens", "hash", "--name", "al ice");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).isEqualTo("error: --name must be 1 to 64 characters A-Z a-z 0-9 . _ @ -\n");
  }

  @Test
  void hash_nothingOnStdin_refused() {
    CliRunner.Result r = cli.runWithStdin("", "tokens", "hash");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).isEqualTo("error: no token on standard input\n");
  }
}
