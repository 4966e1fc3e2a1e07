package io.quotaauthority.cli;

import io.quotaauthority.QuotaAuthority;
import io.quotaauthority.config.Setting;
import io.quotaauthority.config.Settings;
import io.quotaauthority.ops.Logging;
import java.io.IOException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Help;
import picocli.CommandLine.Help.Column;
import picocli.CommandLine.Help.TextTable;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Unmatched;

/**
 * {@code serve}: runs the server until SIGTERM/SIGINT. Its options are the {@link Setting}s, parsed
 * by {@link Settings#load} (picocli only passes them through), so the flags, their environment
 * variables and validation have one source; {@code --help} lists them all from the same enum.
 */
@Command(
    name = "serve",
    description = "Run the server (the default command) until SIGTERM or SIGINT.",
    customSynopsis = "quota-authority serve [-h] [--SETTING=VALUE | --SETTING VALUE]...")
final class ServeCommand implements Callable<Integer> {
  private static final Logger log = LoggerFactory.getLogger(ServeCommand.class);
  static final String SETTINGS_SECTION = "settings";

  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      description = "Show this help and exit.")
  boolean help;

  @Unmatched List<String> settingArgs = new ArrayList<>();

  @Spec CommandSpec spec;

  @Override
  public Integer call() throws InterruptedException {
    List<String> warnings = new ArrayList<>();
    Settings settings = Settings.load(RootCommand.context(spec).env(), settingArgs, warnings::add);
    Logging.apply(settings.logFormat());
    // Logged only now, so they come out in QUOTA_LOG_FORMAT like every other line.
    warnings.forEach(log::warn);
    QuotaAuthority app;
    try {
      app = QuotaAuthority.start(settings, Clock.systemUTC());
    } catch (IOException e) {
      throw new CliException(ExitCodes.ERROR, "cannot start: " + e.getMessage(), e);
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  app.close();
                  stopped.countDown();
                },
                "shutdown"));
    stopped.await();
    return ExitCodes.OK;
  }

  /** Adds the table of every setting (flag, environment variable, default, doc) to serve's help. */
  static void addSettingsHelp(CommandLine serve) {
    serve.getHelpSectionMap().put(SETTINGS_SECTION, ServeCommand::settingsHelp);
    List<String> keys = new ArrayList<>(serve.getHelpSectionKeys());
    keys.add(
        keys.indexOf(CommandLine.Model.UsageMessageSpec.SECTION_KEY_FOOTER_HEADING),
        SETTINGS_SECTION);
    serve.setHelpSectionKeys(keys);
  }

  static String settingsHelp(Help help) {
    int width = Math.max(60, help.commandSpec().usageMessage().width());
    int first = 30;
    TextTable table =
        TextTable.forColumns(
            help.colorScheme(),
            new Column(first, 2, Column.Overflow.SPAN),
            new Column(width - first, 1, Column.Overflow.WRAP));
    for (Setting s : Setting.values()) {
      table.addRowValues(s.flag() + "=<value>", s.doc());
      String dflt = s.defaultValue().isEmpty() ? "(empty)" : s.defaultValue();
      table.addRowValues("", "env " + s.env() + ", default " + dflt);
      if (s.secret()) {
        table.addRowValues(
            "", "or from a file: env " + s.fileEnv() + " or " + s.fileFlag() + "=<path>");
      }
    }
    String nl = System.lineSeparator();
    return nl
        + "Settings (a flag wins over its environment variable, which wins over the default):"
        + nl
        + table
        + nl
        + "A secret's file (mode 0600, owned by this user, not a symlink) holds only the value;"
        + " trailing newlines are dropped. Give a secret or its file, not both."
        + nl;
  }
}
