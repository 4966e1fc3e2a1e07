package io.quotaauthority.cli;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quotaauthority.config.ConfigException;
import java.io.PrintWriter;

/** Turns whatever ended a command into one readable line on stderr and an exit code. */
final class Errors {
  private Errors() {}

  static int report(Throwable t, PrintWriter err) {
    int code;
    String message;
    if (t instanceof CliException e) {
      code = e.exitCode();
      message = e.getMessage();
    } else if (t instanceof ConfigException e) {
      code = ExitCodes.USAGE;
      message = e.getMessage();
    } else if (t instanceof StatusRuntimeException e) {
      CliException mapped = fromStatus(e, "the server", "the token");
      code = mapped.exitCode();
      message = mapped.getMessage();
    } else {
      code = ExitCodes.ERROR;
      message =
          t.getClass().getSimpleName() + (t.getMessage() == null ? "" : ": " + t.getMessage());
    }
    err.println("error: " + oneLine(message));
    err.flush();
    return code;
  }

  /**
   * The exit code and message for a failed admin call. The message is the server's status
   * description (e.g. "quota_usd must be ..."), which the admin API writes for people.
   *
   * @param target the address called, for "cannot reach"
   * @param tokenSource where the token came from, for "authentication failed"
   */
  static CliException fromStatus(StatusRuntimeException e, String target, String tokenSource) {
    Status s = e.getStatus();
    String description = s.getDescription() == null ? s.getCode().name() : s.getDescription();
    return switch (s.getCode()) {
      case NOT_FOUND -> new CliException(ExitCodes.NOT_FOUND, description, e);
      case INVALID_ARGUMENT, OUT_OF_RANGE -> new CliException(ExitCodes.USAGE, description, e);
      case UNAUTHENTICATED, PERMISSION_DENIED ->
          new CliException(
              ExitCodes.AUTHENTICATION,
              "authentication failed ("
                  + description
                  + "); the admin token came from "
                  + tokenSource,
              e);
      case UNAVAILABLE ->
          new CliException(
              ExitCodes.ERROR,
              "cannot reach the admin API at " + target + ": " + description + rootCause(e),
              e);
      case DEADLINE_EXCEEDED ->
          new CliException(
              ExitCodes.ERROR, "the admin API at " + target + " did not answer in time", e);
      case UNIMPLEMENTED ->
          new CliException(
              ExitCodes.ERROR,
              "the server at " + target + " does not implement this call yet (" + description + ")",
              e);
      default -> new CliException(ExitCodes.ERROR, s.getCode() + ": " + description, e);
    };
  }

  private static String rootCause(Throwable t) {
    Throwable root = t.getCause();
    if (root == null) {
      return "";
    }
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return " ("
        + root.getClass().getSimpleName()
        + (root.getMessage() == null ? "" : ": " + root.getMessage())
        + ")";
  }

  static String oneLine(String s) {
    return s == null ? "" : s.replaceAll("\\s*[\\r\\n]+\\s*", " ").trim();
  }
}
