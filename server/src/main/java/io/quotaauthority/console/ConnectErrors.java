package io.quotaauthority.console;

import io.grpc.Status;
import java.util.Locale;

/**
 * The Connect protocol's mapping of gRPC codes to HTTP statuses and to the {@code code} string of
 * its JSON error body (connectrpc.com/docs/protocol, "Error Codes"). A plain table, tested as one
 * (ConnectErrorsTest).
 */
public final class ConnectErrors {
  private ConnectErrors() {}

  /** The HTTP status a unary Connect call answers with for {@code code}. */
  public static int httpStatus(Status.Code code) {
    return switch (code) {
      case OK -> 200;
      case CANCELLED -> 499;
      case UNKNOWN, INTERNAL, DATA_LOSS -> 500;
      case INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE -> 400;
      case DEADLINE_EXCEEDED -> 504;
      case NOT_FOUND -> 404;
      case ALREADY_EXISTS, ABORTED -> 409;
      case PERMISSION_DENIED -> 403;
      case RESOURCE_EXHAUSTED -> 429;
      case UNIMPLEMENTED -> 501;
      case UNAVAILABLE -> 503;
      case UNAUTHENTICATED -> 401;
    };
  }

  /**
   * Connect's name of the code: lower snake case ({@code invalid_argument}; CANCELLED is
   * "canceled").
   */
  public static String name(Status.Code code) {
    return code == Status.Code.CANCELLED ? "canceled" : code.name().toLowerCase(Locale.ROOT);
  }
}
