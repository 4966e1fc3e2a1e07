package io.quotaauthority.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.FieldMask;
import com.google.protobuf.Timestamp;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.ClearExpirationRequest;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.time.Clock;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntPredicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Three instances on one PostgreSQL: a change made through A must be honoured by Check on B and C.
 * B and C refresh their keys only once an hour, so within a test's life the change can reach them
 * only by its notification: what these tests prove. How fast it does (p50, p99 against the 100 ms
 * target) is the bench's propagation scenario, not a timed assertion here; the polls' deadlines
 * only stop a test that would otherwise hang.
 */
class MultiInstanceIT {
  /** A few changes of each kind: each must arrive; the bench measures how fast. */
  static final int ROUNDS = 5;

  private static TestDatabase db;
  private static TestServer a;
  private static TestServer b;
  private static TestServer c;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    a = TestServer.start(db);
    b = TestServer.start(db, TestServer.NOTIFIED_ONLY, Clock.systemUTC());
    c = TestServer.start(db, TestServer.NOTIFIED_ONLY, Clock.systemUTC());
  }

  @AfterAll
  static void stop() throws Exception {
    a.close();
    b.close();
    c.close();
    db.close();
  }

  private static int check(TestServer server, String secret) {
    // A generous deadline: a starved machine must not turn a slow Check into an error.
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build())
        .getStatus()
        .getCode();
  }

  /** Makes the change on A, then waits until {@code server} answers {@code expectedCode}. */
  private static void propagation(
      TestServer server, String secret, Runnable changeOnA, int expectedCode) {
    changeOnA.run();
    awaitOn(server, secret, code -> code == expectedCode, "answered " + expectedCode);
  }

  private static void propagation(String secret, Runnable changeOnA, int expectedCode) {
    propagation(b, secret, changeOnA, expectedCode);
  }

  /**
   * A key created on A and cached on B and C. A new key reaches the other instances the way every
   * change does, by its notification (an instance with a complete live-key set answers a hash it
   * has not heard of 401 without a query), so this waits for B and C to allow it.
   */
  private static CreateKeyResponse cachedOnB(String quota) {
    CreateKeyResponse key =
        a.admin()
            .createKey(CreateKeyRequest.newBuilder().setName("multi").setQuotaUsd(quota).build());
    usableOn(b, key.getSecret());
    usableOn(c, key.getSecret());
    return key;
  }

  /** Waits until {@code server} allows the key. */
  private static void usableOn(TestServer server, String secret) {
    awaitOn(server, secret, code -> code == 0, "allowed the key");
  }

  /** Waits until {@code server} no longer answers 401 for the key: it has heard of it. */
  private static void knownOn(TestServer server, String secret) {
    awaitOn(server, secret, code -> code != 16, "heard of the key");
  }

  private static void awaitOn(TestServer server, String secret, IntPredicate done, String what) {
    long deadline =
        System.nanoTime() + TimeUnit.SECONDS.toNanos(TestServer.PROPAGATION_GUARD_SECONDS);
    while (!done.test(check(server, secret))) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("the other instance never " + what);
      }
      LockSupport.parkNanos(1_000_000);
    }
  }

  @Test
  void createKeyOnA_usableOnBByItsNotification() {
    for (int i = 0; i < ROUNDS; i++) {
      CreateKeyResponse key =
          a.admin().createKey(CreateKeyRequest.newBuilder().setName("new").build());
      usableOn(b, key.getSecret());
    }
  }

  @Test
  void updateKeyOnA_disablingHonouredOnBByItsNotification() {
    for (int i = 0; i < ROUNDS; i++) {
      CreateKeyResponse key = cachedOnB("0");
      propagation(
          key.getSecret(),
          () ->
              a.admin()
                  .updateKey(
                      UpdateKeyRequest.newBuilder()
                          .setKey(
                              ApiKey.newBuilder()
                                  .setId(key.getKey().getId())
                                  .setStatus(KeyStatus.KEY_STATUS_DISABLED))
                          .setUpdateMask(FieldMask.newBuilder().addPaths("status"))
                          .build()),
          16);
    }
  }

  @Test
  void deleteKeyOnA_honouredOnBByItsNotification() {
    for (int i = 0; i < ROUNDS; i++) {
      CreateKeyResponse key = cachedOnB("0");
      propagation(
          key.getSecret(),
          () ->
              a.admin()
                  .deleteKey(DeleteKeyRequest.newBuilder().setId(key.getKey().getId()).build()),
          16);
    }
  }

  @Test
  void resetQuotaOnA_exhaustedKeyPassesOnBByItsNotification() throws Exception {
    for (int i = 0; i < ROUNDS; i++) {
      CreateKeyResponse key = cachedOnB("0.01");
      UsageStream st =
          UsageStream.open(a.authzChannel(), TestServer.REPORTER_TOKEN)
              .send(UsageStream.report("reset-" + i, key.getKey().getId(), "0.01"));
      st.finish();
      assertThat(st.responses().get(0).getResult()).isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
      propagation(key.getSecret(), () -> {}, 8);
      propagation(
          key.getSecret(),
          () ->
              a.admin()
                  .resetQuota(ResetQuotaRequest.newBuilder().setId(key.getKey().getId()).build()),
          0);
    }
  }

  @Test
  void clearExpirationOnA_expiredKeyPassesOnBByItsNotification() {
    for (int i = 0; i < ROUNDS; i++) {
      // Expires 150 ms after creation on the real clock; B caches it while valid, then sees 403.
      Instant expires = Instant.now().plusMillis(150);
      CreateKeyResponse key =
          a.admin()
              .createKey(
                  CreateKeyRequest.newBuilder()
                      .setName("exp")
                      .setExpiresAt(
                          Timestamp.newBuilder()
                              .setSeconds(expires.getEpochSecond())
                              .setNanos(expires.getNano()))
                      .build());
      // B hears of the key (allowed, or already expired if that took over 150 ms), then sees 403.
      knownOn(b, key.getSecret());
      propagation(key.getSecret(), () -> {}, 7);
      propagation(
          key.getSecret(),
          () ->
              a.admin()
                  .clearExpiration(
                      ClearExpirationRequest.newBuilder().setId(key.getKey().getId()).build()),
          0);
    }
  }

  @Test
  void usageCommittedThroughA_turnsBAndC429ByItsNotification() throws Exception {
    CreateKeyResponse key = cachedOnB("1");
    UsageStream st =
        UsageStream.open(a.authzChannel(), TestServer.REPORTER_TOKEN)
            .send(UsageStream.report("multi-usage", key.getKey().getId(), "1"));
    st.finish();
    assertThat(st.responses().get(0).getResult()).isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
    propagation(b, key.getSecret(), () -> {}, 8);
    propagation(c, key.getSecret(), () -> {}, 8);
  }
}
