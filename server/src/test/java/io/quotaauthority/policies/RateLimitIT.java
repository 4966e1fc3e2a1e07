package io.quotaauthority.policies;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.google.protobuf.FieldMask;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.MovableClock;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Rate limits across three real servers on one PostgreSQL whose clock the test moves (README "Key
 * policies", "Rate limits"): with requests_per_minute = 60, the requests admitted by all three in
 * any 60 s of the clock are counted (never more than 60); tokens_per_minute refuses while the last
 * minute's reported tokens reach it, on every instance, with retry-after until they age out.
 */
class RateLimitIT {
  private static final MovableClock clock = new MovableClock();
  private static TestDatabase db;
  private static final List<TestServer> servers = new ArrayList<>();

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    for (int i = 0; i < 3; i++) {
      servers.add(TestServer.start(db, Map.of(), clock));
    }
  }

  @AfterAll
  static void stop() throws Exception {
    for (TestServer s : servers) {
      s.close();
    }
    db.close();
  }

  private static CheckResponse check(TestServer server, String secret) {
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build());
  }

  private static String denied(CheckResponse r, String name) {
    return r.getDeniedResponse().getHeadersList().stream()
        .filter(h -> h.getHeader().getKey().equals(name))
        .map(h -> h.getHeader().getValue())
        .findFirst()
        .orElse(null);
  }

  private static void knownEverywhere(String secret) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    for (TestServer s : servers) {
      while (check(s, secret).getStatus().getCode() == 16) {
        assertThat(System.nanoTime()).isLessThan(deadline);
        Thread.sleep(2);
      }
    }
  }

  @Test
  void rpm60_threeInstancesFor300sOfClock_atMost60InAny60s() throws Exception {
    CreateKeyResponse key =
        servers
            .get(0)
            .admin()
            .createKey(
                CreateKeyRequest.newBuilder().setName("rpm").setRequestsPerMinute(60).build());
    assertThat(key.getKey().getRequestsPerMinute()).isEqualTo(60);
    // Not a single Check before the key is everywhere: then every admission below is counted.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    for (TestServer s : servers) {
      while (!s.app()
          .cache()
          .liveHashes()
          .contains(io.quotaauthority.keys.SecretHasher.hash(key.getSecret()))) {
        assertThat(System.nanoTime()).isLessThan(deadline);
        Thread.sleep(2);
      }
    }

    // A first burst within one second of the clock: exactly 60 admitted of 150, all instances
    // together, and each refusal says when a permit frees up (the first grant's second + 61 s).
    List<Long> admittedAt = new ArrayList<>();
    long burstStart = clock.millis();
    int refused = 0;
    String retryAfter = null;
    for (int i = 0; i < 150; i++) {
      CheckResponse r = check(servers.get(i % 3), key.getSecret());
      if (r.getStatus().getCode() == 0) {
        admittedAt.add(clock.millis());
      } else {
        refused++;
        assertThat(r.getStatus().getMessage()).isEqualTo("rate_limit_exceeded");
        assertThat(denied(r, "x-quota-ratelimit")).isEqualTo("requests");
        retryAfter = denied(r, "retry-after");
      }
    }
    assertThat(admittedAt).hasSize(60);
    assertThat(refused).isEqualTo(90);
    long burstSecond = burstStart / 1000;
    long expected = (burstSecond + 61) * 1000 - clock.millis();
    assertThat(Long.parseLong(retryAfter)).isBetween(expected / 1000 - 2, expected / 1000 + 2);

    // Then 300 s of the clock, a second at a time, one request to each instance per second:
    // the admissions in any 60 s window of the clock are counted.
    for (int step = 0; step < 300; step++) {
      clock.advance(Duration.ofSeconds(1));
      for (TestServer s : servers) {
        if (check(s, key.getSecret()).getStatus().getCode() == 0) {
          admittedAt.add(clock.millis());
        }
      }
    }
    int most = 0;
    for (int i = 0; i < admittedAt.size(); i++) {
      int in = 0;
      for (int j = i;
          j < admittedAt.size() && admittedAt.get(j) < admittedAt.get(i) + 60_000;
          j++) {
        in++;
      }
      most = Math.max(most, in);
    }
    System.out.printf(
        "rpm=60, 3 instances: %d admitted over %d s of clock, at most %d in any 60 s%n",
        admittedAt.size(), (clock.millis() - burstStart) / 1000, most);
    assertThat(most).isLessThanOrEqualTo(60);
    // Permits are not wasted at this rate (a grant of one permit per request): the limit is
    // reached, every 61 s.
    assertThat(most).isEqualTo(60);
  }

  @Test
  void tpm_refusedOnEveryInstanceWhileTheLastMinutesTokensReachIt_admittedOnceTheyAgeOut()
      throws Exception {
    CreateKeyResponse key =
        servers
            .get(0)
            .admin()
            .createKey(
                CreateKeyRequest.newBuilder().setName("tpm").setTokensPerMinute(100).build());
    knownEverywhere(key.getSecret());
    // To one second past the start of a minute: the reports below are charged in that minute.
    Instant now = clock.instant();
    long minute = now.getEpochSecond() / 60 + 1;
    clock.advance(Duration.between(now, Instant.ofEpochSecond(minute * 60 + 1)));
    UsageStream st = UsageStream.open(servers.get(0).authzChannel(), TestServer.REPORTER_TOKEN);
    for (int i = 0; i < 3; i++) {
      st.send(UsageStream.report("tpm-" + i, key.getKey().getId(), "0.001")); // 46 tokens each
    }
    st.finish();
    Instant agesOut = Instant.ofEpochSecond((minute + 2) * 60);
    for (TestServer s : servers) {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
      CheckResponse r = check(s, key.getSecret());
      while (r.getStatus().getCode() == 0 && System.nanoTime() < deadline) {
        Thread.sleep(2);
        r = check(s, key.getSecret());
      }
      assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(429);
      assertThat(r.getStatus().getMessage()).isEqualTo("rate_limit_exceeded");
      assertThat(denied(r, "x-quota-ratelimit")).isEqualTo("tokens");
      long retry = Long.parseLong(denied(r, "retry-after"));
      long most = (Duration.between(clock.instant(), agesOut).toMillis() + 999) / 1000;
      assertThat(retry).isBetween(most - 2, most);
    }
    clock.advance(Duration.between(clock.instant(), agesOut.minusSeconds(1)));
    assertThat(check(servers.get(1), key.getSecret()).getStatus().getCode()).isEqualTo(8);
    clock.advance(Duration.between(clock.instant(), agesOut));
    for (TestServer s : servers) {
      assertThat(check(s, key.getSecret()).getStatus().getCode()).isZero();
    }
  }

  private static long rows(String table) {
    return db.count("SELECT count(*) FROM " + table);
  }

  private static void assertRefused(Runnable call, String message) {
    long keys = rows("api_keys");
    long audits = rows("key_audit");
    StatusRuntimeException e = catchThrowableOfType(call::run, StatusRuntimeException.class);
    assertThat(e).isNotNull();
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription()).startsWith(message);
    assertThat(rows("api_keys")).isEqualTo(keys);
    assertThat(rows("key_audit")).isEqualTo(audits);
  }

  @Test
  void badRateInput_invalidArgumentNamingTheFieldNothingWritten() {
    TestServer a = servers.get(0);
    assertRefused(
        () ->
            a.admin()
                .createKey(
                    CreateKeyRequest.newBuilder().setName("r").setRequestsPerMinute(-1).build()),
        "requests_per_minute must be a whole number from 0 (no limit) to 100000000, got -1");
    assertRefused(
        () ->
            a.admin()
                .createKey(
                    CreateKeyRequest.newBuilder()
                        .setName("r")
                        .setRequestsPerMinute(100_000_001)
                        .build()),
        "requests_per_minute must be a whole number");
    assertRefused(
        () ->
            a.admin()
                .createKey(
                    CreateKeyRequest.newBuilder().setName("r").setTokensPerMinute(-5).build()),
        "tokens_per_minute must be a whole number from 0 (no limit)");
    String id =
        a.admin().createKey(CreateKeyRequest.newBuilder().setName("r").build()).getKey().getId();
    assertRefused(
        () ->
            a.admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(ApiKey.newBuilder().setId(id).setTokensPerMinute(-1))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("tokens_per_minute"))
                        .build()),
        "key.tokens_per_minute must be a whole number");
    ApiKey set =
        a.admin()
            .updateKey(
                UpdateKeyRequest.newBuilder()
                    .setKey(ApiKey.newBuilder().setId(id).setRequestsPerMinute(600))
                    .setUpdateMask(FieldMask.newBuilder().addPaths("requests_per_minute"))
                    .build())
            .getKey();
    assertThat(set.getRequestsPerMinute()).isEqualTo(600);
    assertThat(
            db.scalar(
                "SELECT new_value->>'requests_per_minute' FROM key_audit WHERE key_id = ? AND"
                    + " action = 'update'",
                Long.parseLong(id)))
        .isEqualTo("600");
  }
}
