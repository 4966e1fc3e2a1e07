package io.quotaauthority.cli;

import java.io.PrintWriter;
import java.util.Set;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;

/** Builds and runs the command line; {@code Main} and the tests both go through {@link #run}. */
public final class Cli {
  private static final Set<String> ROOT_OPTIONS = Set.of("-h", "--help", "-V", "--version");

  private Cli() {}

  public static int run(CliContext ctx, PrintWriter out, PrintWriter err, String... args) {
    CommandLine cl = commandLine(ctx);
    cl.setOut(out);
    cl.setErr(err);
    try {
      return cl.execute(withDefaultCommand(cl, args));
    } finally {
      out.flush();
      err.flush();
    }
  }

  static CommandLine commandLine(CliContext ctx) {
    CommandLine cl = new CommandLine(new RootCommand(ctx));
    cl.setCaseInsensitiveEnumValuesAllowed(true);
    cl.setUsageHelpAutoWidth(true);
    cl.setParameterExceptionHandler(Cli::usageError);
    cl.setExecutionExceptionHandler(
        (e, command, parseResult) -> Errors.report(e, command.getErr()));
    ServeCommand.addSettingsHelp(cl.getSubcommands().get("serve"));
    return cl;
  }

  /** No command, or a first argument that is no command (e.g. {@code --db-url=...}): serve. */
  static String[] withDefaultCommand(CommandLine cl, String[] args) {
    if (args.length > 0
        && (cl.getSubcommands().containsKey(args[0]) || ROOT_OPTIONS.contains(args[0]))) {
      return args;
    }
    String[] withServe = new String[args.length + 1];
    withServe[0] = "serve";
    System.arraycopy(args, 0, withServe, 1, args.length);
    return withServe;
  }

  private static int usageError(ParameterException e, String[] args) {
    CommandLine c = e.getCommandLine();
    c.getErr()
        .println(
            "error: "
                + Errors.oneLine(e.getMessage())
                + " (see '"
                + c.getCommandSpec().qualifiedName()
                + " --help')");
    c.getErr().flush();
    return ExitCodes.USAGE;
  }
}
