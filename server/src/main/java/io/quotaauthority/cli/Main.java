package io.quotaauthority.cli;

import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.Charset;

/**
 * Entry point: {@code java -jar quota-authority.jar [serve|keys|usage] ...}; with no command it
 * serves (see {@link RootCommand}). It lives with the commands, above the composition root ({@code
 * io.quotaauthority.QuotaAuthority}, which {@code serve} starts), so the two packages never import
 * each other.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    PrintWriter out =
        new PrintWriter(new OutputStreamWriter(System.out, Charset.defaultCharset()), true);
    PrintWriter err =
        new PrintWriter(new OutputStreamWriter(System.err, Charset.defaultCharset()), true);
    System.exit(Cli.run(CliContext.system(), out, err, args));
  }
}
