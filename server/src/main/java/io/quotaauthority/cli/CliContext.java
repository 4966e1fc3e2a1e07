package io.quotaauthority.cli;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.Charset;
import java.time.Clock;
import java.util.Map;

/**
 * What a command may read from its surroundings, passed in so tests can supply their own: the
 * environment, standard input (for confirmations), the OS user (sent as x-quota-actor) and a clock
 * (for --expires-in). Standard output and error are the CommandLine's out and err writers.
 */
public record CliContext(Map<String, String> env, BufferedReader stdin, String user, Clock clock) {

  public static CliContext system() {
    return new CliContext(
        System.getenv(),
        new BufferedReader(new InputStreamReader(System.in, Charset.defaultCharset())),
        System.getProperty("user.name", "unknown"),
        Clock.systemUTC());
  }
}
