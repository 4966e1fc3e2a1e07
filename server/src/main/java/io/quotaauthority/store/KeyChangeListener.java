package io.quotaauthority.store;

import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyRecord;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps this instance's cache in step with every other instance. One thread LISTENs on a dedicated
 * connection for key changes and refreshes the cached keys they name; the same thread refreshes
 * every cached key in bulk each {@code refreshInterval}, the bound on staleness should a
 * notification be lost. After a lost connection it reconnects with backoff and refreshes
 * everything cached before it trusts the cache again.
 */
public final class KeyChangeListener implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(KeyChangeListener.class);
  /** Ids per bulk query: large enough to be one round trip for most deployments. */
  static final int REFRESH_CHUNK = 5_000;
  static final long MAX_BACKOFF_MILLIS = 5_000;

  /** Opens the dedicated LISTEN connection. */
  public interface ConnectionSource {
    Connection open() throws SQLException;
  }

  private final ConnectionSource connections;
  private final KeyRepository keys;
  private final KeyCache cache;
  private final long refreshIntervalNanos;
  private final LongConsumer lagMillis;
  private final Thread thread;
  private volatile boolean connected;
  private volatile boolean stopping;
  private volatile Connection current;

  public KeyChangeListener(ConnectionSource connections, KeyRepository keys, KeyCache cache,
      Duration refreshInterval, LongConsumer lagMillis) {
    this.connections = connections;
    this.keys = keys;
    this.cache = cache;
    this.refreshIntervalNanos = refreshInterval.toNanos();
    this.lagMillis = lagMillis;
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
    while (!stopping) {
      try (Connection c = connections.open()) {
        current = c;
        c.setAutoCommit(true);
        try (Statement s = c.createStatement()) {
          s.execute("LISTEN " + KeyRepository.CHANGE_CHANNEL);
        }
        if (!first) {
          // Changes made while we were away were announced to nobody: check everything cached.
          refreshAll();
        }
        first = false;
        connected = true;
        backoff = 100;
        log.info("listening for key changes");
        listen(c.unwrap(PGConnection.class));
      } catch (SQLException | RuntimeException e) {
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
    connected = false;
  }

  private void listen(PGConnection pg) throws SQLException {
    long nextRefresh = System.nanoTime() + refreshIntervalNanos;
    while (!stopping) {
      long waitMillis = Math.max(1, (nextRefresh - System.nanoTime()) / 1_000_000);
      // Blocks until a notification arrives or the wait ends; also notices a dead connection.
      PGNotification[] batch = pg.getNotifications((int) Math.min(waitMillis, 500));
      if (batch != null && batch.length > 0) {
        apply(batch);
      }
      if (System.nanoTime() - nextRefresh >= 0) {
        refreshAll();
        nextRefresh = System.nanoTime() + refreshIntervalNanos;
      }
    }
  }

  private void apply(PGNotification[] batch) {
    long now = System.currentTimeMillis();
    for (PGNotification n : batch) {
      KeyChange change = KeyChange.parse(n.getParameter());
      if (change == null) {
        log.debug("ignoring a malformed key change notification");
        continue;
      }
      lagMillis.accept(Math.max(0, now - change.sentAtMillis()));
      // The notification carries the new state: no query. Keys not cached here are left alone,
      // and a cached state at this version or newer is kept.
      cache.refresh(change.hash(), change.state());
    }
  }

  /** Re-reads every cached key, a chunk of ids per query. */
  void refreshAll() {
    List<Long> ids = cache.cachedIds();
    for (int from = 0; from < ids.size(); from += REFRESH_CHUNK) {
      for (KeyRecord row : keys.findByIds(ids.subList(from, Math.min(ids.size(), from + REFRESH_CHUNK)))) {
        cache.refresh(row);
      }
    }
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
