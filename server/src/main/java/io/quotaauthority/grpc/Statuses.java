package io.quotaauthority.grpc;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quotaauthority.keys.KeyNotFoundException;
import io.quotaauthority.store.StoreUnavailableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The one mapping from domain exceptions to gRPC status, used by every unary handler. */
public final class Statuses {
  private static final Logger log = LoggerFactory.getLogger(Statuses.class);

  private Statuses() {}

  public static StatusRuntimeException of(Throwable t) {
    if (t instanceof StatusRuntimeException s) {
      return s;
    }
    if (t instanceof IllegalArgumentException) {
      return Status.INVALID_ARGUMENT.withDescription(t.getMessage()).asRuntimeException();
    }
    if (t instanceof KeyNotFoundException) {
      return Status.NOT_FOUND.withDescription(t.getMessage()).asRuntimeException();
    }
    if (t instanceof StoreUnavailableException) {
      return Status.UNAVAILABLE
          .withDescription("database unavailable, retry later")
          .asRuntimeException();
    }
    log.error("internal error", t);
    return Status.INTERNAL.withDescription("internal error").asRuntimeException();
  }
}
