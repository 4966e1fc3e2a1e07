package io.quotaauthority.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.keys.KeyIds;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The CLI refuses what the server would, before it connects: the address points at a closed port,
 * so a command that tried to send would exit 1 ("cannot reach"); exit 2 naming the option or
 * argument shows the value never left the process.
 */
class CliInputRulesTest {
  private static final CliRunner cli =
      new CliRunner(
          Map.of("QUOTA_ADMIN_ADDR", "127.0.0.1:1", "QUOTA_ADMIN_TOKEN", "test-admin-token"));

  private static void refused(String messageStart, String... args) {
    CliRunner.Result r = cli.run(args);

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).as(r.toString()).startsWith("error: " + messageStart).hasLineCount(1);
    assertThat(r.out()).isEmpty();
  }

  @ParameterizedTest(name = "--name ''{0}''")
  @CsvSource(
      delimiter = ';',
      quoteCharacter = '"',
      value = {
        "\"\"; --name must not be empty",
        "\" \"; --name must not be empty or only whitespace",
        "\u00a0\u00a0; --name must not be empty or only whitespace",
        "\u200b\u200b; --name must not contain invisible format characters",
        "\ufeffteam; --name must not contain invisible format characters",
        "team\u202etxt; --name must not contain bidirectional override or isolate characters (U+202E at character 5)",
        "x\u001b[2J; --name must not contain control characters (U+001B at character 2)",
        "x\u0085; --name must not contain control characters (U+0085",
        "\" team\"; --name must not start or end with whitespace",
      })
  void createAndUpdate_refusedName_exitsTwoNamingTheOption(String name, String message) {
    refused(message, "keys", "create", "--name", name);
    refused(message, "keys", "update", "1", "--name", name);
  }

  @Test
  void create_nameWithNewlineOrOver200CodePoints_exitsTwo() {
    refused(
        "--name must not contain control characters (U+000A at character 2)",
        "keys",
        "create",
        "--name",
        "a\nb");
    refused(
        "--name must be at most 200 characters (Unicode code points), got 201",
        "keys",
        "create",
        "--name",
        "\ud83d\ude00".repeat(201));
  }

  @ParameterizedTest(name = "id ''{0}''")
  @ValueSource(
      strings = {
        "+1",
        "01",
        "0001",
        "0",
        "-1",
        "1.0",
        "\u0661",
        "\uff11",
        "\u0967",
        "\u06f1",
        "9223372036854775808",
        "abc"
      })
  void everyIdCommand_malformedId_exitsTwoNamingId(String id) {
    String message = "id " + KeyIds.RULE;
    refused(message, "keys", "get", id);
    refused(message, "keys", "update", id, "--status", "disabled");
    refused(message, "keys", "reset-quota", id, "--yes");
    refused(message, "keys", "delete", id, "--yes");
    refused(message, "keys", "clear-expiration", id);
    refused("key_id " + KeyIds.RULE, "usage", "list", id);
  }

  @ParameterizedTest(name = "--page-size ''{0}''")
  @CsvSource(
      delimiter = ';',
      quoteCharacter = '"',
      value = {
        "+5; --page-size must be a whole number (ASCII digits, no sign or leading zeros), got '+5'",
        "05; --page-size must be a whole number (ASCII digits, no sign or leading zeros), got '05'",
        "\u0665; --page-size must be a whole number (ASCII digits, no sign or leading zeros), got '\\u{0665}'",
        "\uff15; --page-size must be a whole number (ASCII digits, no sign or leading zeros), got '\\u{FF15}'",
        "0; --page-size must be between 1 and 1000, got '0'",
        "1001; --page-size must be between 1 and 1000, got '1001'",
        "99999999999999999999; --page-size must be between 1 and 1000",
      })
  void list_badPageSize_exitsTwoNamingTheOption(String size, String message) {
    refused(message, "keys", "list", "--page-size", size);
  }

  @ParameterizedTest(name = "--max-concurrent ''{0}''")
  @CsvSource(
      delimiter = ';',
      quoteCharacter = '"',
      value = {
        "-1; --max-concurrent must be a whole number (ASCII digits, no sign or leading zeros), got '-1'",
        "+5; --max-concurrent must be a whole number (ASCII digits, no sign or leading zeros), got '+5'",
        "05; --max-concurrent must be a whole number (ASCII digits, no sign or leading zeros), got '05'",
        "\"\"; --max-concurrent must be a whole number (ASCII digits, no sign or leading zeros), got ''",
        "1e3; --max-concurrent must be a whole number (ASCII digits, no sign or leading zeros), got '1e3'",
        "\u0665; --max-concurrent must be a whole number (ASCII digits, no sign or leading zeros), got '\\u{0665}'",
        "1000001; --max-concurrent must be between 0 and 1000000, got '1000001'",
        "99999999999999999999; --max-concurrent must be between 0 and 1000000",
      })
  void createAndUpdate_badMaxConcurrent_exitsTwoNamingTheOption(String cap, String message) {
    refused(message, "keys", "create", "--name", "capped", "--max-concurrent", cap);
    refused(message, "keys", "update", "1", "--max-concurrent", cap);
  }

  @ParameterizedTest(name = "--limit ''{0}''")
  @ValueSource(strings = {"+5", "-1", "05", "\u0665", "1e3"})
  void usageList_badLimit_exitsTwoNamingTheOption(String limit) {
    refused(
        "--limit must be a whole number (ASCII digits, no sign or leading zeros)",
        "usage",
        "list",
        "1",
        "--limit",
        limit);
  }

  @ParameterizedTest(name = "--admin-addr ''{0}''")
  @ValueSource(
      strings = {
        "localhost:+9192",
        "localhost:09192",
        "localhost:\u0669\u0661\u0669\u0662",
        "localhost:70000",
        "localhost:0",
        "localhost:",
        "[::1]:x"
      })
  void anyCommand_badAdminAddrPort_exitsTwoNamingTheOption(String addr) {
    refused(
        "--admin-addr must be HOST:PORT with a port from 1 to 65535",
        "keys",
        "get",
        "1",
        "--admin-addr",
        addr);
    CliRunner.Result env = cli.withEnv("QUOTA_ADMIN_ADDR", addr).run("keys", "get", "1");
    assertThat(env.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(env.err()).startsWith("error: QUOTA_ADMIN_ADDR must be HOST:PORT");
  }

  @ParameterizedTest(name = "--admin-addr ''{0}''")
  @ValueSource(strings = {"127.0.0.1:1", "[::1]:1", "dns:///127.0.0.1:1"})
  void anyCommand_wellFormedAdminAddr_triesToConnect(String addr) {
    CliRunner.Result r = cli.run("keys", "get", "1", "--admin-addr", addr);

    // Exit 1: the address was accepted and the (closed) port was called.
    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.ERROR);
    assertThat(r.err()).startsWith("error: cannot reach the admin API");
  }
}
