package io.quotaauthority.cli;

import picocli.CommandLine.Option;

/** -o/--output text|json. */
public final class OutputOption {
  @Option(
      names = {"-o", "--output"},
      paramLabel = "FORMAT",
      defaultValue = "text",
      description = "text (default, for people) or json (for scripts).")
  Output output;
}
