package io.quotaauthority.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * A command that calls the admin API: checks its own arguments ({@link #prepare}), then connects
 * with the {@link AdminOptions} and runs.
 */
abstract class AdminCommand implements Callable<Integer> {
  @Mixin HelpOption help;

  @Mixin AdminOptions connection;

  @Spec CommandSpec spec;

  /** Validates and converts arguments before any connection; throw CliException(USAGE) if wrong. */
  void prepare(CliContext ctx) {}

  abstract int run(KeyActions actions, CliContext ctx);

  @Override
  public Integer call() {
    CliContext ctx = RootCommand.context(spec);
    prepare(ctx);
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    try (AdminClient client = connection.connect(ctx)) {
      return run(new KeyActions(client, out, err, ctx.stdin()), ctx);
    }
  }
}
