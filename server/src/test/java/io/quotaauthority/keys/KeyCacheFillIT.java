package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.quotaauthority.config.Setting;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.sql.PreparedStatement;
import java.time.Clock;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The cache's fill at start: keys already in the database when an instance starts are cached in one
 * streamed query before it is ready, so their first Checks need no cold load; past the cache's
 * size, the rest load on first use as before.
 */
class KeyCacheFillIT {
  static final int KEYS = 3_000;

  private TestDatabase db;

  @BeforeEach
  void keysBeforeStart() throws Exception {
    db = TestDatabase.create();
    // An instance migrates the database; the keys are then written behind every instance's back
    // (no notification), as a restore or another region's import would.
    TestServer.start(db).close();
    db.transactions()
        .inTransaction(
            c -> {
              try (PreparedStatement ps =
                  c.prepareStatement(
                      "INSERT INTO api_keys (name, key_hash, key_prefix, quota) VALUES (?, ?, ?,"
                          + " 10)")) {
                for (int i = 0; i < KEYS; i++) {
                  ps.setString(1, "fill-" + i);
                  ps.setBytes(2, SecretHasher.hash(secret(i)).toBytes());
                  ps.setString(3, Secrets.displayPrefix(secret(i)));
                  ps.addBatch();
                }
                ps.executeBatch();
              }
              return null;
            });
  }

  @AfterEach
  void stop() throws Exception {
    db.close();
  }

  private static String secret(int i) {
    return "sk-qa-fill-%08d-0123456789abcdef".formatted(i);
  }

  private static void awaitReady(TestServer server) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!server.app().operations().readiness().probe().ready()) {
      assertThat(System.nanoTime()).as("ready within 30 s").isLessThan(deadline);
      Thread.sleep(20);
    }
  }

  private static CheckResponse check(TestServer server, int i) {
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret(i)).build());
  }

  @Test
  void start_keysInDatabase_cachedBeforeReadyAndCheckedWithoutLoads() throws Exception {
    try (TestServer server = TestServer.start(db)) {
      awaitReady(server);
      // Ready means filled: the notifications check passes only after the listener's fill.
      KeyCache cache = server.app().cache();
      assertThat(cache.size()).isEqualTo(KEYS);

      for (int i = 0; i < KEYS; i += 97) {
        assertThat(check(server, i).getStatus().getCode()).as("key %d", i).isZero();
      }

      assertThat(cache.loadCount()).isZero();
    }
  }

  @Test
  void start_moreKeysThanCacheHolds_fillsToItsSizeAndLoadsTheRestOnUse() throws Exception {
    try (TestServer server =
        TestServer.start(db, Map.of(Setting.CACHE_MAX_KEYS, "1000"), Clock.systemUTC())) {
      awaitReady(server);
      KeyCache cache = server.app().cache();
      cache.knownCache().cleanUp(); // Caffeine evicts past its size asynchronously
      assertThat(cache.size()).isBetween(900L, 1000L);

      // The fill read the oldest 1,000 keys: the newest is loaded on its first Check, once.
      assertThat(check(server, KEYS - 1).getStatus().getCode()).isZero();
      assertThat(check(server, KEYS - 1).getStatus().getCode()).isZero();

      assertThat(cache.loadCount()).isEqualTo(1);
    }
  }
}
