package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.quotaauthority.config.Setting;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TcpProxy;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.time.Clock;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Check while PostgreSQL is unreachable: a real TCP proxy between the server and the database is
 * cut.
 */
class CheckOutageIT {
  private TestDatabase db;
  private TcpProxy proxy;
  private TestServer server;

  @BeforeEach
  void start() throws Exception {
    db = TestDatabase.create();
    proxy = TcpProxy.toPostgres();
    server =
        TestServer.start(db, Map.of(Setting.DB_URL, proxy.jdbcUrl(db.name())), Clock.systemUTC());
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    proxy.close();
    db.close();
  }

  private CheckResponse check(String secret, long deadlineMillis) {
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(deadlineMillis, TimeUnit.MILLISECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build());
  }

  @Test
  void check_databaseUnreachable_cachedKeyStillAllowedAndUncachedKeyGets503() throws Exception {
    CreateKeyResponse cached =
        server.admin().createKey(CreateKeyRequest.newBuilder().setName("cached").build());
    CreateKeyResponse uncached =
        server.admin().createKey(CreateKeyRequest.newBuilder().setName("uncached").build());
    assertThat(check(cached.getSecret(), 2000).getStatus().getCode()).isZero();
    server.app().cache().invalidateAll();
    assertThat(check(cached.getSecret(), 2000).getStatus().getCode()).isZero();
    // Only `cached` is in memory now; `uncached` was dropped with everything else and not asked for
    // since.

    proxy.cut();
    CheckResponse stillAllowed = check(cached.getSecret(), 2000);
    // The caller's 300 ms deadline, ten times shorter than the pool's 3 s connection timeout: a
    // Check that waited for the pool would reach the caller as DEADLINE_EXCEEDED, not as this
    // answer.
    CheckResponse unavailable = check(uncached.getSecret(), 300);

    assertThat(stillAllowed.getStatus().getCode()).isZero();
    assertThat(unavailable.getStatus().getCode()).isEqualTo(14);
    assertThat(unavailable.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(503);
    assertThat(unavailable.getDeniedResponse().getBody())
        .contains("\"code\":\"quota_service_unavailable\"");

    proxy.restore();
    CheckResponse recovered = null;
    for (int i = 0; i < 50; i++) {
      recovered = check(uncached.getSecret(), 2000);
      if (recovered.getStatus().getCode() == 0) {
        break;
      }
      Thread.sleep(100);
    }
    assertThat(recovered.getStatus().getCode()).isZero();
  }
}
