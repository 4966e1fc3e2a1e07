package io.quotaauthority.store;

/** A database operation failed for a reason other than the caller's input. */
public class StoreException extends RuntimeException {
  public StoreException(String message, Throwable cause) {
    super(message, cause);
  }
}
