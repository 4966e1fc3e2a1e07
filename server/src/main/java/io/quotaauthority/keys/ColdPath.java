package io.quotaauthority.keys;

/** What Check does with a key that is not in the cache: the pure rule, tested in a table. */
public final class ColdPath {
  private ColdPath() {}

  /** The route of an uncached key. */
  public enum Route {
    /** Answer 401 (invalid_api_key) at once: no query. */
    UNKNOWN,
    /** Read the key from the database, on the bounded cold-load path. */
    LOAD
  }

  /**
   * @param setComplete {@link KeySetCompleteness#complete()}: the live-hash set holds every key
   * @param live the hash is in {@link LiveKeyHashes}
   * @param negativeCached the hash was looked up recently and matched no key
   */
  public static Route route(boolean setComplete, boolean live, boolean negativeCached) {
    if (setComplete) {
      // A complete set is the truth: a live hash is worth a query, any other hash is not ours.
      return live ? Route.LOAD : Route.UNKNOWN;
    }
    // Without a complete set, "not live" proves nothing (the key may be newer than what we know);
    // only a recent miss in the database itself spares the query.
    return negativeCached ? Route.UNKNOWN : Route.LOAD;
  }
}
