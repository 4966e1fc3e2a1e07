package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.FieldMask;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.micrometer.core.instrument.Counter;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyState;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.ops.Metrics;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A database role that may only connect sends forged key change notifications. Two instances: A
 * takes the admin calls, B hears of them only through notifications, so B's cache is what a forged
 * notification would pin.
 */
class ForgedNotificationIT {
  private final String role =
      "qa_forger_" + ProcessHandle.current().pid() + "_" + System.nanoTime() % 100_000;
  private TestDatabase db;
  private TestServer a;
  private TestServer b;

  @BeforeEach
  void start() throws Exception {
    db = TestDatabase.create();
    a = TestServer.start(db);
    b = TestServer.start(db);
    try (Connection c = DriverManager.getConnection(TestDatabase.adminUrl(), "postgres", "");
        Statement s = c.createStatement()) {
      // Trust auth on the test server: the role needs no password, only CONNECT on this database.
      s.execute("CREATE ROLE " + role + " LOGIN");
      s.execute("GRANT CONNECT ON DATABASE " + db.name() + " TO " + role);
    }
  }

  @AfterEach
  void stop() throws Exception {
    a.close();
    b.close();
    db.close();
    try (Connection c = DriverManager.getConnection(TestDatabase.adminUrl(), "postgres", "");
        Statement s = c.createStatement()) {
      s.execute("DROP ROLE IF EXISTS " + role);
    }
  }

  private static CheckResponse check(TestServer server, String secret) {
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build());
  }

  private void forge(String payload) throws Exception {
    try (Connection c = DriverManager.getConnection(db.url(), role, "");
        PreparedStatement ps = c.prepareStatement("SELECT pg_notify('quota_key_changes', ?)")) {
      ps.setString(1, payload);
      ps.execute();
    }
  }

  private double hints(TestServer server, String result) {
    Counter c =
        server
            .app()
            .operations()
            .registry()
            .find(Metrics.KEY_HINTS)
            .tag("result", result)
            .counter();
    return c == null ? 0 : c.count();
  }

  private static void awaitTrue(BooleanSupplier condition, String what)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(5);
    }
  }

  private static void setStatus(TestServer server, String id, KeyStatus status) {
    server
        .admin()
        .updateKey(
            UpdateKeyRequest.newBuilder()
                .setKey(ApiKey.newBuilder().setId(id).setStatus(status))
                .setUpdateMask(FieldMask.newBuilder().addPaths("status"))
                .build());
  }

  @Test
  void forgedNotify_disabledKeyAsActiveWithHugeVersion_stillDisabledAndNextAdminChangeApplies()
      throws Exception {
    CreateKeyResponse key =
        a.admin()
            .createKey(CreateKeyRequest.newBuilder().setName("victim").setQuotaUsd("5").build());
    String id = key.getKey().getId();
    KeyHash hash = SecretHasher.hash(key.getSecret());
    // B hears of the new key by its notification and caches it.
    awaitTrue(() -> check(b, key.getSecret()).getStatus().getCode() == 0, "B to allow the new key");
    setStatus(a, id, KeyStatus.KEY_STATUS_DISABLED);
    awaitTrue(() -> check(b, key.getSecret()).getStatus().getCode() == 16, "B to see the disable");
    long realVersion =
        (Long) db.scalar("SELECT version FROM api_keys WHERE id = ?", Long.parseLong(id));

    // Active, unlimited, never expiring, version Long.MAX_VALUE: what the old listener cached as
    // is.
    double readBefore = hints(b, "read");
    forge(
        id
            + ":"
            + Long.MAX_VALUE
            + ":"
            + HexFormat.of().formatHex(hash.toBytes())
            + ":"
            + System.currentTimeMillis()
            + ":a:0:0:-");
    awaitTrue(() -> hints(b, "read") > readBefore, "B to re-read the row the forged hint named");

    CheckResponse r = check(b, key.getSecret());
    assertThat(r.getStatus().getCode()).isEqualTo(16);
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(r.getDeniedResponse().getBody()).contains("api_key_disabled");
    KeyState cached = b.app().cache().cached(hash);
    assertThat(cached.version())
        .as("the row's real version, not the forged one")
        .isEqualTo(realVersion);
    assertThat(cached.disabled()).isTrue();

    // The next admin change (a higher real version) still reaches B.
    setStatus(a, id, KeyStatus.KEY_STATUS_ACTIVE);
    awaitTrue(() -> check(b, key.getSecret()).getStatus().getCode() == 0, "B to see the enable");
    assertThat(b.app().cache().cached(hash).version()).isEqualTo(realVersion + 1);
  }

  @Test
  void forgedNotify_newHashOrGarbage_noKeyAppearsAndNothingChanges() throws Exception {
    CreateKeyResponse key =
        a.admin().createKey(CreateKeyRequest.newBuilder().setName("bystander").build());
    awaitTrue(() -> check(b, key.getSecret()).getStatus().getCode() == 0, "B to allow the new key");
    String secret = "sk-forged-" + "0".repeat(40);
    KeyHash forgedHash = SecretHasher.hash(secret);
    int liveBefore = b.app().cache().liveHashes().size();

    double readBefore = hints(b, "read");
    double malformedBefore = hints(b, "malformed");
    // A made-up key under an id that does not exist, another under the bystander's id, and junk.
    forge("999999:1:" + HexFormat.of().formatHex(forgedHash.toBytes()) + ":0:a:0:0:-");
    forge(
        key.getKey().getId()
            + ":"
            + Long.MAX_VALUE
            + ":"
            + HexFormat.of().formatHex(forgedHash.toBytes())
            + ":0:a:0:0:-");
    forge(new String(new byte[] {'x', ':', 'y'}, StandardCharsets.US_ASCII));
    awaitTrue(
        () -> hints(b, "read") >= readBefore + 2 && hints(b, "malformed") > malformedBefore,
        "B to handle the three notifications");

    CheckResponse r = check(b, secret);
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(r.getDeniedResponse().getBody()).contains("invalid_api_key");
    assertThat(b.app().cache().liveHashes().size()).isEqualTo(liveBefore);
    assertThat(b.app().cache().liveHashes().contains(forgedHash)).isFalse();
    assertThat(check(b, key.getSecret()).getStatus().getCode()).isZero();
  }
}
