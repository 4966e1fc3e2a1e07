package io.quotaauthority.store;

/** The database could not be reached (connection refused, lost, or the pool timed out). */
public final class StoreUnavailableException extends StoreException {
  public StoreUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
