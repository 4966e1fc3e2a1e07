package io.quotaauthority.cli;

/** The CLI's exit codes: scripts may branch on them. */
public final class ExitCodes {
  public static final int OK = 0;

  /** Anything else: the server unreachable, a declined confirmation, an internal error. */
  public static final int ERROR = 1;

  /** The command line or a value in it is wrong (also the server's INVALID_ARGUMENT). */
  public static final int USAGE = 2;

  /** No such key. */
  public static final int NOT_FOUND = 3;

  /** No admin token, or the server refused it. */
  public static final int AUTHENTICATION = 4;

  private ExitCodes() {}
}
