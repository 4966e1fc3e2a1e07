package io.quotaauthority.keys;

/** No live (undeleted) key has that id. */
public final class KeyNotFoundException extends RuntimeException {
  public KeyNotFoundException(String field, long id) {
    super(field + ": no key with id " + id);
  }
}
