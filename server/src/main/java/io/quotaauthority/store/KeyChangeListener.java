package io.quotaauthority.store;

import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.KeySetCompleteness;
import io.quotaauthority.keys.KeyState;
import io.quotaauthority.keys.LiveKeyHashes;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps this instance's cache in step with the database. One thread LISTENs on a dedicated
 * connection for key changes. A notification is only a hint naming a key: the thread re-reads the
 * rows named (all that have arrived, in one query, on its own connection, never the pool's) and
 * caches what the rows say; see {@link KeyChange}. The same thread checks every cached key once
 * each {@code refreshInterval} (or as many a second as {@code refreshKeysPerSecond} allows, if that
 * takes longer), the bound on staleness should a notification be lost, in chunks spread over the
 * interval with the notifications answered between them ({@link RefreshPass}), reading back only
 * the rows whose version is not the cached one, and reloads the set of live key hashes after every
 * (re)connect and every {@link #HASH_RELOAD_EVERY} passes. After a lost connection it reconnects
 * with backoff and refreshes everything cached before it trusts the cache again.
 */
public final class KeyChangeListener implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(KeyChangeListener.class);

  /** Ids per bulk query: large enough to be one round trip for most deployments. */
  static final int REFRESH_CHUNK = 5_000;

  /**
   * Ids per query of the periodic pass, smaller: a notification arriving meanwhile waits for one
   * such query (a few ms), and the pass makes up the count in more, evenly spread queries.
   */
  static final int PASS_CHUNK = 1_000;

  static final long MAX_BACKOFF_MILLIS = 5_000;

  /**
   * The live-hash set is also reloaded in full every this many bulk refreshes (a minute at the
   * default 5 s): the backstop for keys created without a notification (by hand in SQL), at the
   * cost of one streaming scan of key_hash rather than one every refresh.
   */
  static final int HASH_RELOAD_EVERY = 12;

  /** Opens the dedicated LISTEN connection. */
  public interface ConnectionSource {
    Connection open() throws SQLException;
  }

  /** What the listener reports to metrics. */
  public interface Recorder {
    /** From a change's send time (sender's clock) to its row being re-read here. */
    void lagMillis(long millis);

    /**
     * One notification handled: {@code read}, {@code skipped} (nothing to learn) or {@code
     * malformed}.
     */
    void hint(String result);

    /** One query made to re-read the rows named by notifications. */
    void hintQuery();

    /**
     * The bulk refresh compared {@code keys} cached versions; {@code rowsChanged} were read back.
     */
    void refreshed(int keys, int rowsChanged);
  }

  /** A recorder that records nothing. */
  public static final Recorder NO_METRICS =
      new Recorder() {
        @Override
        public void lagMillis(long millis) {}

        @Override
        public void hint(String result) {}

        @Override
        public void hintQuery() {}

        @Override
        public void refreshed(int keys, int rowsChanged) {}
      };

  private final ConnectionSource connections;
  private final KeyRepository keys;
  private final KeyCache cache;
  private final long refreshIntervalNanos;
  private final int refreshKeysPerSecond;
  private final Recorder recorder;
  private final Runnable afterReconnect;
  private final Thread thread;
  private volatile boolean connected;
  private volatile boolean stopping;
  private volatile Connection current;

  public KeyChangeListener(
      ConnectionSource connections,
      KeyRepository keys,
      KeyCache cache,
      Duration refreshInterval,
      int refreshKeysPerSecond,
      Recorder recorder) {
    this(connections, keys, cache, refreshInterval, refreshKeysPerSecond, recorder, () -> {});
  }

  /**
   * @param afterReconnect run on this thread once the cache is trusted again after a lost
   *     connection (not after the first connect): a reconnect may have followed a failover, and
   *     what else depends on which server is primary can look again
   */
  public KeyChangeListener(
      ConnectionSource connections,
      KeyRepository keys,
      KeyCache cache,
      Duration refreshInterval,
      int refreshKeysPerSecond,
      Recorder recorder,
      Runnable afterReconnect) {
    this.afterReconnect = afterReconnect;
    this.connections = connections;
    this.keys = keys;
    this.cache = cache;
    this.refreshIntervalNanos = refreshInterval.toNanos();
    this.refreshKeysPerSecond = refreshKeysPerSecond;
    this.recorder = recorder;
    this.thread = new Thread(this::run, "key-change-listener");
    this.thread.setDaemon(true);
  }

  public KeyChangeListener start() {
    thread.start();
    return this;
  }

  /** True while LISTEN is in place and the cache was refreshed after the last (re)connect. */
  public boolean connected() {
    return connected;
  }

  private void run() {
    long backoff = 100;
    boolean first = true;
    KeySetCompleteness completeness = cache.completeness();
    while (!stopping) {
      try (Connection c = connections.open()) {
        current = c;
        c.setAutoCommit(true);
        try (Statement s = c.createStatement()) {
          s.execute("LISTEN " + KeyRepository.CHANGE_CHANNEL);
        }
        completeness.listening();
        // LISTEN first, then load: a key created during the load is announced, not missed.
        reloadHashes(c);
        boolean reconnected = !first;
        if (first) {
          fill(c);
        }
        if (reconnected) {
          // Changes made while we were away were announced to nobody: check everything cached.
          refreshAll(c);
        }
        first = false;
        connected = true;
        backoff = 100;
        log.info("listening for key changes; {} live keys known", cache.liveHashes().size());
        if (reconnected) {
          try {
            afterReconnect.run();
          } catch (RuntimeException e) {
            log.warn("after reconnecting the key change listener: {}", e.toString());
          }
        }
        listen(c, c.unwrap(PGConnection.class));
      } catch (SQLException | RuntimeException e) {
        completeness.lost();
        if (stopping) {
          break;
        }
        if (connected) {
          log.warn("key change listener lost its connection ({}); reconnecting", e.getMessage());
        }
        connected = false;
        first = false;
        sleep(backoff);
        backoff = Math.min(MAX_BACKOFF_MILLIS, backoff * 2);
      } finally {
        current = null;
      }
    }
    completeness.lost();
    connected = false;
  }

  private void listen(Connection c, PGConnection pg) throws SQLException {
    RefreshPass<KeyCache.Cached> refresh =
        new RefreshPass<>(
            refreshIntervalNanos, refreshKeysPerSecond, PASS_CHUNK, System.nanoTime());
    while (!stopping) {
      long waitMillis = Math.max(1, (refresh.nextDue() - System.nanoTime()) / 1_000_000);
      // Blocks until a notification arrives or the wait ends; also notices a dead connection.
      PGNotification[] batch = pg.getNotifications((int) Math.min(waitMillis, 500));
      if (batch != null && batch.length > 0) {
        List<PGNotification> all = new ArrayList<>(List.of(batch));
        gather(pg, all);
        apply(c, all);
      }
      long now = System.nanoTime();
      if (refresh.due(now)) {
        if (refresh.betweenPasses()
            && refresh.start(cache.cachedVersions(), now) % HASH_RELOAD_EVERY == 0) {
          reloadHashes(c);
        }
        // One chunk, then back to the notifications: a change waits for one query at most.
        readChanged(c, refresh.take());
        refresh.ran(now, System.nanoTime());
      }
    }
  }

  /**
   * Adds whatever has already arrived to {@code into}, without waiting: a lone change is re-read at
   * once (the staleness bound is what matters), and a burst coalesces by itself, since everything
   * that arrives while one re-read runs goes into the next. A forger's flood therefore costs at
   * most one query at a time, on this thread's own connection.
   */
  private static void gather(PGConnection pg, List<PGNotification> into) throws SQLException {
    PGNotification[] more;
    // The no-argument form returns what the driver can read without blocking.
    while ((more = pg.getNotifications()) != null && more.length > 0) {
      into.addAll(List.of(more));
    }
  }

  /** Re-reads the rows the notifications name (those worth it), in one query per chunk of ids. */
  private void apply(Connection c, List<PGNotification> batch) throws SQLException {
    Set<Long> ids = new LinkedHashSet<>();
    List<KeyChange> read = new ArrayList<>();
    for (PGNotification n : batch) {
      KeyChange hint = KeyChange.parse(n.getParameter());
      if (hint == null) {
        recorder.hint("malformed");
        continue;
      }
      KeyState cached = hint.hash() == null ? null : cache.cached(hint.hash());
      boolean live = hint.hash() != null && cache.liveHashes().contains(hint.hash());
      if (!hint.needsRead(cached, live)) {
        recorder.hint("skipped");
        if (hint.sentAtMillis() > 0) {
          // Handled on arrival: its lag is the notification's own.
          lagMillisFrom(System.currentTimeMillis(), hint.sentAtMillis());
        }
        continue;
      }
      recorder.hint("read");
      ids.add(hint.id());
      read.add(hint);
    }
    if (ids.isEmpty()) {
      return;
    }
    readIds(c, new ArrayList<>(ids));
    long now = System.currentTimeMillis();
    for (KeyChange hint : read) {
      if (hint.sentAtMillis() > 0) {
        lagMillisFrom(now, hint.sentAtMillis());
      }
    }
  }

  private void lagMillisFrom(long now, long sentAt) {
    recorder.lagMillis(Math.max(0, now - sentAt));
  }

  private void readIds(Connection c, List<Long> ids) throws SQLException {
    for (int from = 0; from < ids.size(); from += REFRESH_CHUNK) {
      recorder.hintQuery();
      for (KeyRecord row :
          keys.findByIds(c, ids.subList(from, Math.min(ids.size(), from + REFRESH_CHUNK)))) {
        cache.heard(row);
      }
    }
  }

  /** Re-reads every cached key whose row changed, a chunk per query. */
  void refreshAll(Connection c) throws SQLException {
    List<KeyCache.Cached> cached = cache.cachedVersions();
    for (int from = 0; from < cached.size(); from += REFRESH_CHUNK) {
      readChanged(c, cached.subList(from, Math.min(cached.size(), from + REFRESH_CHUNK)));
    }
  }

  /**
   * Reads back the rows among {@code cached} whose version is not the one cached, and heeds them.
   */
  private void readChanged(Connection c, List<KeyCache.Cached> cached) throws SQLException {
    long[] ids = new long[cached.size()];
    long[] versions = new long[cached.size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = cached.get(i).id();
      versions[i] = cached.get(i).version();
    }
    List<KeyRecord> changed = keys.findChanged(c, ids, versions);
    for (KeyRecord row : changed) {
      cache.heard(row);
    }
    recorder.refreshed(ids.length, changed.size());
  }

  /**
   * Caches every live key (up to the cache's size), a page at a time, before the instance is ready,
   * so that no key's first Check waits for a cold load: with a million keys, 200 pages of 5,000
   * instead of a million queries, each page a statement of its own so that no snapshot is held for
   * the whole fill. Keys changed meanwhile are announced on this connection.
   */
  private void fill(Connection c) throws SQLException {
    long start = System.nanoTime();
    long[] n = {0};
    keys.streamLiveKeys(
        c,
        cache.maxKeys(),
        row -> {
          cache.fill(row);
          n[0]++;
        });
    log.info(
        "cached {} keys in {} ms",
        n[0],
        java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
  }

  /**
   * Streams every live key's hash into a fresh set and swaps it in; it counts as complete only if
   * LISTEN was in place on this connection throughout (see {@link KeySetCompleteness}).
   */
  private void reloadHashes(Connection c) throws SQLException {
    KeySetCompleteness completeness = cache.completeness();
    long token = completeness.loadStarting();
    LiveKeyHashes.Loader loader = cache.liveHashes().beginLoad();
    try {
      keys.streamLiveHashes(c, loader::add);
    } catch (SQLException | RuntimeException e) {
      cache.liveHashes().abandon();
      throw e;
    }
    cache.liveHashes().finish(loader);
    completeness.loaded(token);
  }

  private void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      stopping = true;
    }
  }

  @Override
  public void close() {
    stopping = true;
    Connection c = current;
    if (c != null) {
      try {
        c.close();
      } catch (SQLException e) {
        log.debug("closing the listen connection: {}", e.getMessage());
      }
    }
    thread.interrupt();
    try {
      thread.join(2_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
