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

  /** One ask of a batch. */
  record Ask(long keyId, int rpm, long first, long last, int wanted) {}

  /**
   * Every ask of {@code asks} (distinct keys) in one transaction; the grants in the same order. By
   * default one {@link #grant} each.
   */
  default java.util.List<Grant> grantAll(java.util.List<Ask> asks) {
    java.util.List<Grant> out = new java.util.ArrayList<>(asks.size());
    for (Ask a : asks) {
      out.add(grant(a.keyId(), a.rpm(), a.first(), a.last(), a.wanted()));
    }
    return out;
  }
}
