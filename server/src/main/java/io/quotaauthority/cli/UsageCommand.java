package io.quotaauthority.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code usage list KEY_ID}: a key's charged usage events, newest first. */
@Command(
    name = "usage",
    description = "Read the usage ledger through the admin API.",
    subcommands = UsageCommand.ListUsage.class)
final class UsageCommand {
  @Mixin HelpOption help;

  @Command(name = "list", description = "A key's usage events, newest first.")
  static final class ListUsage extends AdminCommand {
    @Parameters(paramLabel = "KEY_ID", description = "The key's id.")
    String keyId;

    // A String, read by Inputs.count: picocli's int conversion would take "+5" and non-ASCII
    // digits.
    @Option(
        names = "--limit",
        paramLabel = "N",
        defaultValue = "100",
        description = "At most this many events (default: ${DEFAULT-VALUE}; 0: all).")
    String limitText;

    @Mixin OutputOption output;

    private int limit;

    @Override
    void prepare(CliContext ctx) {
      Inputs.id("key_id", keyId);
      limit = Inputs.count("--limit", limitText, 0, Integer.MAX_VALUE);
    }

    @Override
    int run(KeyActions keys, CliContext ctx) {
      return keys.usage(keyId, limit, output.output);
    }
  }
}
