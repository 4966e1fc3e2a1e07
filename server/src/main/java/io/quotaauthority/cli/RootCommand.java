package io.quotaauthority.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/** {@code quota-authority [serve|keys|usage] ...}; with no command, serve. */
@Command(
    name = "quota-authority",
    description = {
      "Per-API-key USD quotas and expiry for LLM traffic through Envoy.",
      "Without a command it runs 'serve'. The other commands talk to a running server's admin API."
    },
    subcommands = {ServeCommand.class, KeysCommand.class, UsageCommand.class, TokensCommand.class},
    versionProvider = RootCommand.Version.class,
    footer = {
      "",
      "Exit codes: 0 ok, 1 error, 2 usage error, 3 not found, 4 authentication.",
      "Run 'quota-authority COMMAND --help' for a command's options."
    })
public final class RootCommand {
  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      description = "Show this help and exit.")
  boolean help;

  @Option(
      names = {"-V", "--version"},
      versionHelp = true,
      description = "Print the version and exit.")
  boolean version;

  private final CliContext context;

  public RootCommand(CliContext context) {
    this.context = context;
  }

  /** The context of the command line this (sub)command belongs to. */
  static CliContext context(CommandSpec spec) {
    return ((RootCommand) spec.root().userObject()).context;
  }

  static final class Version implements picocli.CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = RootCommand.class.getPackage().getImplementationVersion();
      return new String[] {"quota-authority " + (v == null ? "(development build)" : v)};
    }
  }
}
