package io.quotaauthority.cli;

import io.quotaauthority.config.AdminTokens;
import io.quotaauthority.config.SecretFile;
import io.quotaauthority.config.Tokens;
import java.io.IOException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code tokens hash}: the line of a QUOTA_ADMIN_TOKENS_FILE for a token, without a server. */
@Command(
    name = "tokens",
    description = "Work with admin tokens offline.",
    subcommands = TokensCommand.Hash.class)
final class TokensCommand {
  @Mixin HelpOption help;

  @Command(
      name = "hash",
      description = {
        "Read a token from standard input (one line) and print the SHA-256 hex digest the server keeps;"
            + " with --name, the whole name:sha256hex line of QUOTA_ADMIN_TOKENS_FILE.",
        "The token is read from stdin, not taken as an argument, so it never shows in the process list:",
        "  openssl rand -hex 32 | tee alice.token | quota-authority tokens hash --name alice >> admin-tokens"
      })
  static final class Hash implements Callable<Integer> {
    @Mixin HelpOption help;

    @Option(
        names = "--name",
        paramLabel = "NAME",
        description = "Print name:sha256hex; 1 to 64 characters A-Z a-z 0-9 . _ @ -.")
    String name;

    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      if (name != null && !AdminTokens.NAME.matcher(name).matches()) {
        throw new CliException(
            ExitCodes.USAGE, "--name must be 1 to 64 characters A-Z a-z 0-9 . _ @ -");
      }
      String line;
      try {
        line = RootCommand.context(spec).stdin().readLine();
      } catch (IOException e) {
        throw new CliException(
            ExitCodes.ERROR, "cannot read the token from standard input: " + e.getMessage(), e);
      }
      if (line == null || line.isEmpty()) {
        throw new CliException(ExitCodes.USAGE, "no token on standard input");
      }
      String token = SecretFile.withoutTrailingNewlines(line);
      // The server's own rule, so a token that hashes here is one the server accepts.
      Tokens.problem(token)
          .ifPresent(
              p -> {
                throw new CliException(ExitCodes.USAGE, "the token " + p);
              });
      String digest = Tokens.digestHex(token);
      spec.commandLine().getOut().println(name == null ? digest : name + ":" + digest);
      return ExitCodes.OK;
    }
  }
}
