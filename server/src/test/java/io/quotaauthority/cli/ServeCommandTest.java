package io.quotaauthority.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.config.Setting;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** serve's command line: help from the Setting enum, settings parsed by Settings.load. */
class ServeCommandTest {
  private final CliRunner cli = new CliRunner(Map.of());

  @Test
  void help_listsEverySettingWithFlagEnvAndDefault() {
    CliRunner.Result r = cli.run("serve", "--help");

    assertThat(r.exitCode()).isZero();
    String help = r.out().replaceAll("\\s+", " ");
    for (Setting s : Setting.values()) {
      assertThat(help)
          .contains(s.flag() + "=<value>")
          .contains(
              "env "
                  + s.env()
                  + ", default "
                  + (s.defaultValue().isEmpty() ? "(empty)" : s.defaultValue()));
      assertThat(help).contains(s.doc().replaceAll("\\s+", " "));
      if (s.secret()) {
        // The _FILE variants are not Setting entries: generated for every secret, listed with it.
        assertThat(help)
            .contains("or from a file: env " + s.fileEnv() + " or " + s.fileFlag() + "=<path>");
      }
    }
  }

  @Test
  void serve_secretAndItsFileBothGiven_exitsTwoNamingBoth() {
    CliRunner.Result r =
        cli.withEnv("QUOTA_DB_PASSWORD_FILE", "/run/secrets/db").run("serve", "--db-password", "x");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .isEqualTo(
            "error: --db-password and QUOTA_DB_PASSWORD_FILE are both set;"
                + " give QUOTA_DB_PASSWORD one way only\n");
  }

  @Test
  void serve_badSettingValue_exitsTwoWithTheSettingsMessage() {
    CliRunner.Result r = cli.run("serve", "--db-pool-size", "0");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).isEqualTo("error: QUOTA_DB_POOL_SIZE must be between 1 and 200, got 0\n");
  }

  @Test
  void serve_badSettingInTheEnvironment_exitsTwo() {
    CliRunner.Result r = cli.withEnv("QUOTA_LOG_FORMAT", "xml").run("serve");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).isEqualTo("error: QUOTA_LOG_FORMAT must be text or json, got 'xml'\n");
  }

  @Test
  void serve_unknownFlag_exitsTwo() {
    CliRunner.Result r = cli.run("serve", "--no-such-setting=1");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).isEqualTo("error: unknown option --no-such-setting (see --help)\n");
  }

  @Test
  void noCommand_settingFlagFirst_isServe() {
    CliRunner.Result r = cli.run("--db-pool-size=201");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).startsWith("error: QUOTA_DB_POOL_SIZE must be between 1 and 200");
  }

  @Test
  void version_printsTheName() {
    CliRunner.Result r = cli.run("--version");

    assertThat(r.exitCode()).isZero();
    assertThat(r.out()).startsWith("quota-authority ");
  }
}
