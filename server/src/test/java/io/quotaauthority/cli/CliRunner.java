package io.quotaauthority.cli;

import java.io.BufferedReader;
import java.io.PrintWriter;
import java.io.StringReader;
import java.io.StringWriter;
import java.time.Clock;
import java.util.HashMap;
import java.util.Map;

/** Runs the whole picocli command line in-process with a given environment and stdin. */
public final class CliRunner {
  public static final String USER = "alice";

  public record Result(int exitCode, String out, String err) {
    @Override
    public String toString() {
      return "exit " + exitCode + "\n--- stdout\n" + out + "--- stderr\n" + err;
    }
  }

  private final Map<String, String> env;

  public CliRunner(Map<String, String> env) {
    this.env = Map.copyOf(env);
  }

  /** Same environment plus or minus ({@code null} value) some variables. */
  public CliRunner withEnv(String name, String value) {
    Map<String, String> e = new HashMap<>(env);
    if (value == null) {
      e.remove(name);
    } else {
      e.put(name, value);
    }
    return new CliRunner(e);
  }

  public Result run(String... args) {
    return runWithStdin("", args);
  }

  public Result runWithStdin(String stdin, String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CliContext ctx =
        new CliContext(env, new BufferedReader(new StringReader(stdin)), USER, Clock.systemUTC());
    int code = Cli.run(ctx, new PrintWriter(out), new PrintWriter(err), args);
    return new Result(code, out.toString(), err.toString());
  }
}
