package io.quotaauthority.usage;

/**
 * Where request permits of keys with requests_per_minute are granted (PostgreSQL in production;
 * store.RateRepository): one transaction per grant, serialized per key, so instances never grant
 * the same permits twice.
 */
public interface RateStore {
  /**
   * What a grant gave.
   *
   * @param granted permits usable from the grant's first to its last second (0: none left)
   * @param retryAtSecond when none were left: the first second a permit can be granted again
   */
  record Grant(int granted, long retryAtSecond) {}

  /**
   * Grants up to {@code wanted} permits of key {@code keyId} usable in seconds {@code first} to
   * {@code last} (epoch seconds, inclusive) if, with them, no 61 consecutive seconds hold more than
   * {@code rpm} permits of grants that can be used in them.
   */
  Grant grant(long keyId, int rpm, long first, long last, int wanted);
}
