package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.micrometer.core.instrument.Counter;
import io.quotaauthority.config.Setting;
import io.quotaauthority.ops.Metrics;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The bulk refresh, the backstop should a notification be lost: a row changed with none (by hand in
 * SQL) reaches Check by the refresh, and a pass over keys that did not change reads none of them
 * back, since the versions are compared in PostgreSQL.
 */
class BulkRefreshIT {
  private static final int KEYS = 40;
  private static final int OK = 0;
  private static final int UNAUTHENTICATED = 16;

  private TestDatabase db;
  private TestServer server;

  @BeforeEach
  void start() {
    db = TestDatabase.create();
    // The shortest refresh the setting takes, so passes come quickly.
    server = TestServer.start(db, Map.of(Setting.REFRESH_INTERVAL, "100ms"), Clock.systemUTC());
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    db.close();
  }

  private int check(String secret) {
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build())
        .getStatus()
        .getCode();
  }

  private double counter(String name) {
    Counter c = server.app().operations().registry().find(name).counter();
    return c == null ? 0 : c.count();
  }

  private static void awaitTrue(BooleanSupplier condition, String what)
      throws InterruptedException {
    // Not a timing assertion: how soon is the bench's; this only keeps a broken build from hanging.
    long deadline =
        System.nanoTime() + TimeUnit.SECONDS.toNanos(TestServer.PROPAGATION_GUARD_SECONDS);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(5);
    }
  }

  @Test
  void refresh_rowDisabledWithoutNotification_checkAnswers401AndOnlyThatRowIsReadBack()
      throws Exception {
    List<CreateKeyResponse> keys = new ArrayList<>();
    for (int i = 0; i < KEYS; i++) {
      keys.add(
          server
              .admin()
              .createKey(CreateKeyRequest.newBuilder().setName("k" + i).setQuotaUsd("5").build()));
    }
    for (CreateKeyResponse k : keys) {
      assertThat(check(k.getSecret())).isEqualTo(OK);
    }
    // Three passes over the cached keys, none of which changed: nothing read back.
    awaitTrue(() -> counter(Metrics.KEY_REFRESH_CHECKED) >= 3 * KEYS, "three refresh passes");
    assertThat(counter(Metrics.KEY_REFRESH_CHANGED)).isZero();

    CreateKeyResponse victim = keys.get(7);
    // A change by hand: the version bumped as every change bumps it, and no notification sent.
    long version =
        (Long)
            db.scalar(
                "UPDATE api_keys SET status = 'disabled', version = version + 1 WHERE id = ?"
                    + " RETURNING version",
                Long.parseLong(victim.getKey().getId()));
    assertThat(version).isEqualTo(2);

    awaitTrue(() -> check(victim.getSecret()) == UNAUTHENTICATED, "the refresh to see the disable");
    double checkedThen = counter(Metrics.KEY_REFRESH_CHECKED);
    awaitTrue(
        () -> counter(Metrics.KEY_REFRESH_CHECKED) >= checkedThen + 2 * KEYS, "two more passes");
    assertThat(counter(Metrics.KEY_REFRESH_CHANGED)).as("rows read back").isEqualTo(1.0);
    assertThat(check(keys.get(8).getSecret())).isEqualTo(OK);
  }
}
