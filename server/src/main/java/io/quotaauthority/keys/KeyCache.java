package io.quotaauthority.keys;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.stats.CacheStats;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.LongAdder;

/**
 * Key state for Check, in memory. Known keys stay until evicted by size (changes reach them through
 * {@link #apply} and {@link #heard}, never by expiry). Beside it, the hash of every live key
 * ({@link LiveKeyHashes}): while that set is complete, a hash outside it is answered 401 with no
 * query. While it is not (database down at start, listener disconnected), unknown keys are
 * remembered briefly in a separate, smaller negative cache, so a repeated unknown key does not
 * reach the database again and no unknown key evicts a real one. Concurrent misses for one key
 * share one query.
 *
 * <p>Usage accepted but not yet committed is not kept here: see {@link PendingUsage}.
 */
public final class KeyCache {
  /** Unknown keys remembered at most; a flood beyond it only costs more queries, not memory. */
  static final long MAX_NEGATIVE = 100_000;

  private final Cache<KeyHash, KeyState> known;
  private final Cache<KeyHash, Boolean> unknown;
  private final ConcurrentHashMap<KeyHash, CompletableFuture<KeyState>> loading =
      new ConcurrentHashMap<>();

  /** Every live key's hash, so an unknown key costs no query while the set is complete. */
  private final LiveKeyHashes live = new LiveKeyHashes();

  private final KeySetCompleteness completeness = new KeySetCompleteness();
  private final KeyLookup lookup;
  private final Executor loadExecutor;
  private final long maxKeys;

  /** The recent usage of cached keys with a spending window; null when not kept (tests). */
  private volatile UsageWindows windows;

  /** Store queries made for uncached keys (the cold path). */
  private final LongAdder loads = new LongAdder();

  public KeyCache(KeyLookup lookup, Executor loadExecutor, long maxKeys, Duration negativeTtl) {
    this.lookup = lookup;
    this.loadExecutor = loadExecutor;
    this.maxKeys = maxKeys;
    this.known =
        Caffeine.newBuilder()
            .maximumSize(maxKeys)
            .recordStats()
            // A key evicted stops being tracked (run within the eviction, so no later install of
            // the key can be undone by it).
            .<KeyHash, KeyState>evictionListener(
                (hash, state, cause) -> {
                  UsageWindows w = windows;
                  if (w != null && state != null) {
                    w.drop(state.id());
                  }
                })
            .build();
    this.unknown =
        Caffeine.newBuilder().maximumSize(MAX_NEGATIVE).expireAfterWrite(negativeTtl).build();
  }

  /**
   * Keeps the recent usage of cached keys that have a spending window in {@code w} (README "Key
   * policies"); set once, at start, before any key is cached.
   */
  public KeyCache trackingUsage(UsageWindows w) {
    this.windows = w;
    return this;
  }

  /** The recent usage of cached windowed keys; null when not kept. */
  public UsageWindows windows() {
    return windows;
  }

  /**
   * Lets the usage tracking follow a row about to be cached (or that refreshes a cached key): a key
   * with a spending window is tracked, its history read if it was not yet, on the calling thread (a
   * loader, the listener, an admin or commit thread; never a Check's).
   */
  private void follow(KeyRecord row) {
    UsageWindows w = windows;
    if (w != null && (row.policies().tracksUsage() || w.track(row.id()) != null)) {
      w.follow(row);
    }
  }

  /** The cached state, or null when the key is not cached (it may still exist). */
  public KeyState cached(KeyHash hash) {
    return known.getIfPresent(hash);
  }

  /** True while the hash is remembered as belonging to no key. */
  public boolean knownUnknown(KeyHash hash) {
    return unknown.getIfPresent(hash) != null;
  }

  /** What to do with a hash that is not cached: answer 401 at once, or load it. */
  public ColdPath.Route route(KeyHash hash) {
    boolean complete = completeness.complete();
    // Each lookup only when the rule needs it: the negative cache matters only without a full set.
    return ColdPath.route(
        complete, complete && live.contains(hash), !complete && knownUnknown(hash));
  }

  /** The hash of every live key (kept by the change listener and this instance's admin calls). */
  public LiveKeyHashes liveHashes() {
    return live;
  }

  public KeySetCompleteness completeness() {
    return completeness;
  }

  /**
   * Loads an uncached key from the store; completes with null when no key has that hash (then it is
   * remembered as unknown), or exceptionally when the store failed. One load per hash at a time.
   */
  public CompletableFuture<KeyState> load(KeyHash hash) {
    CompletableFuture<KeyState> mine = new CompletableFuture<>();
    CompletableFuture<KeyState> running = loading.putIfAbsent(hash, mine);
    if (running != null) {
      return running;
    }
    try {
      loadExecutor.execute(() -> runLoad(hash, mine));
    } catch (RuntimeException rejected) {
      // The loader queue is full: fail this load rather than queue without bound.
      loading.remove(hash, mine);
      mine.completeExceptionally(rejected);
    }
    return mine;
  }

  private void runLoad(KeyHash hash, CompletableFuture<KeyState> future) {
    try {
      loads.increment();
      Optional<KeyRecord> row = lookup.findByHash(hash);
      KeyState state = null;
      if (row.isPresent()) {
        follow(row.get());
        state = install(hash, KeyState.of(row.get()));
      } else {
        unknown.put(hash, Boolean.TRUE);
      }
      future.complete(state);
    } catch (RuntimeException e) {
      future.completeExceptionally(e);
    } finally {
      loading.remove(hash, future);
    }
  }

  /** Records a change this instance made; older versions never replace newer ones. */
  public void apply(KeyRecord row) {
    track(row);
    follow(row);
    install(row.keyHash(), KeyState.of(row));
  }

  /**
   * Records a row just read from the database because a notification or the bulk refresh named it:
   * the live-hash set follows it; a key the set had not seen (just created elsewhere) is cached at
   * once so its first Check here needs no query; any other row only refreshes a cached entry. The
   * row's own version decides, never a number from a notification.
   */
  public void heard(KeyRecord row) {
    if (track(row)) {
      follow(row);
      install(row.keyHash(), KeyState.of(row));
    } else {
      refresh(row);
    }
  }

  /** Keeps the live-hash set in step with one row from the store; true if it was a new key. */
  private boolean track(KeyRecord row) {
    if (row.deleted()) {
      live.remove(row.keyHash());
      return false;
    }
    return live.add(row.keyHash());
  }

  /**
   * Caches a key read by the fill at start (see {@code KeyChangeListener}), unless a newer version
   * arrived meanwhile; its hash is already in the live set.
   */
  public void fill(KeyRecord row) {
    if (!row.deleted()) {
      // A windowed key's history is read here too (one query per such key, before ready).
      follow(row);
      install(row.keyHash(), KeyState.of(row));
    }
  }

  /** The most keys this cache holds. */
  public long maxKeys() {
    return maxKeys;
  }

  /**
   * Like {@link #apply} but only for keys already cached: refreshes must not fill the cache with
   * keys no request asked for.
   */
  public void refresh(KeyRecord row) {
    if (!known.asMap().containsKey(row.keyHash())) {
      return;
    }
    follow(row);
    refresh(row.keyHash(), KeyState.of(row));
  }

  private void refresh(KeyHash hash, KeyState state) {
    known.asMap().computeIfPresent(hash, (h, old) -> state.version() > old.version() ? state : old);
  }

  private KeyState install(KeyHash hash, KeyState state) {
    unknown.invalidate(hash);
    return known
        .asMap()
        .merge(hash, state, (old, fresh) -> fresh.version() > old.version() ? fresh : old);
  }

  /**
   * A version no row has (versions start at 1 and only grow): sent for a key whose row must be read
   * back whatever it holds.
   */
  public static final long READ_ANYWAY = -1;

  /**
   * One cached key as the bulk refresh sees it: its id and the version cached, or {@link
   * #READ_ANYWAY}.
   */
  public record Cached(long id, long version) {}

  /**
   * Every cached key's id and cached version, in id order, for the bulk refresh, which reads back
   * only the rows whose version is another. A key with a spending window or a token limit whose
   * recent usage is not tracked here (its history could not be read when it was cached) is sent as
   * {@link #READ_ANYWAY}, so each pass tries again, as reading every row back used to.
   */
  public List<Cached> cachedVersions() {
    Collection<KeyState> states = known.asMap().values();
    List<Cached> out = new ArrayList<>(states.size());
    UsageWindows w = windows;
    for (KeyState s : states) {
      boolean untracked = w != null && s.policies().tracksUsage() && w.track(s.id()) == null;
      out.add(new Cached(s.id(), untracked ? READ_ANYWAY : s.version()));
    }
    // In id order, the table's own: each chunk's lookups then walk the primary key and the heap
    // in order, where the map's hash order sent them to random pages (8 µs of PostgreSQL CPU per
    // key with a million keys, against 2 µs in order).
    out.sort(Comparator.comparingLong(Cached::id));
    return out;
  }

  /**
   * Forgets every cached key (after a lost notification connection nothing cached can be trusted).
   */
  public void invalidateAll() {
    known.invalidateAll();
    unknown.invalidateAll();
    UsageWindows w = windows;
    if (w != null) {
      w.clear();
    }
  }

  /** How many times an uncached key was looked up in the store. */
  public long loadCount() {
    return loads.sum();
  }

  public long size() {
    return known.estimatedSize();
  }

  public CacheStats stats() {
    return known.stats();
  }

  public Cache<KeyHash, KeyState> knownCache() {
    return known;
  }
}
