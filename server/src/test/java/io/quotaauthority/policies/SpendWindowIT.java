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
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.MovableClock;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Rolling spending windows through whole servers whose clock the test moves (README "Key
 * policies"): a 5-hour window spent is refused 429 naming it, with the instant its usage ages out
 * and retry-after until then; a second before that instant still refused, at it admitted again. Two
 * instances on one PostgreSQL: usage charged through A and a window set on A are honoured by B.
 */
class SpendWindowIT {
  /** A few changes: each must arrive; the bench measures how fast. */
  private static final int ROUNDS = 3;

  private static final MovableClock clock = new MovableClock();
  private static TestDatabase db;
  private static TestServer a;
  private static TestServer b;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    a = TestServer.start(db, Map.of(), clock);
    // B refreshes once an hour: a change reaches it only by its notification (MultiInstanceIT).
    b = TestServer.start(db, TestServer.NOTIFIED_ONLY, clock);
  }

  @AfterAll
  static void stop() throws Exception {
    a.close();
    b.close();
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

  private static String allowed(CheckResponse r, String name) {
    return r.getOkResponse().getResponseHeadersToAddList().stream()
        .filter(h -> h.getHeader().getKey().equals(name))
        .map(h -> h.getHeader().getValue())
        .findFirst()
        .orElse(null);
  }

  private static void charge(TestServer server, String reportId, String keyId, String usd)
      throws InterruptedException {
    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
        .send(UsageStream.report(reportId, keyId, usd))
        .finish();
  }

  /** Moves the clock to one second past the start of its next minute; returns that minute. */
  private static long alignToNextMinute() {
    Instant now = clock.instant();
    long next = now.getEpochSecond() / 60 + 1;
    clock.advance(Duration.between(now, Instant.ofEpochSecond(next * 60 + 1)));
    return next;
  }

  @Test
  void fiveHourWindow_spent429UntilItsUsageAgesOut_thenAdmittedAgain() throws Exception {
    CreateKeyResponse key =
        a.admin()
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("5h")
                    .setQuotaUsd("100")
                    .setWindow5HUsd("20")
                    .setWindow7DUsd("50")
                    .build());
    String id = key.getKey().getId();
    assertThat(key.getKey().getWindow5HUsd()).isEqualTo("20");
    assertThat(key.getKey().getWindow1DUsd()).isEqualTo("0");
    assertThat(key.getKey().getWindow7DUsd()).isEqualTo("50");

    long minute = alignToNextMinute();
    charge(a, "w-1", id, "12.5");
    CheckResponse room = check(a, key.getSecret());
    assertThat(room.getStatus().getCode()).isZero();
    assertThat(allowed(room, "x-quota-window-5h-remaining-usd")).isEqualTo("7.5");
    assertThat(allowed(room, "x-quota-window-7d-remaining-usd")).isEqualTo("37.5");
    Instant agesOut = Instant.ofEpochSecond((minute + 1) * 60 + 5 * 3600);
    assertThat(allowed(room, "x-quota-window-5h-resets-at")).isEqualTo(agesOut.toString());
    charge(a, "w-2", id, "7.5");

    Instant before = clock.instant();
    CheckResponse refused = check(a, key.getSecret());
    Instant after = clock.instant();
    assertThat(refused.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(429);
    assertThat(refused.getStatus().getMessage()).isEqualTo("window_limit_exceeded");
    assertThat(refused.getDeniedResponse().getBody())
        .isEqualTo(
            "{\"error\":{\"message\":\"This API key has spent its limit of 20 USD in a rolling 5h"
                + " window; enough of that usage ages out at "
                + agesOut
                + ".\",\"type\":\"insufficient_quota\",\"param\":null,"
                + "\"code\":\"window_limit_exceeded\"}}");
    assertThat(denied(refused, "x-quota-window")).isEqualTo("5h");
    // Whole seconds until agesOut, rounded up, as of the Check's own instant.
    long retryAfter = Long.parseLong(denied(refused, "retry-after"));
    assertThat(retryAfter)
        .isBetween(
            ceilSeconds(Duration.between(after, agesOut)),
            ceilSeconds(Duration.between(before, agesOut)));

    ApiKey shown = a.admin().getKey(GetKeyRequest.newBuilder().setId(id).build()).getKey();
    assertThat(shown.getWindow5HSpentUsd()).isEqualTo("20");
    assertThat(shown.getWindow7DSpentUsd()).isEqualTo("20");
    assertThat(shown.getWindow1DSpentUsd()).isEmpty();

    // A second before the usage ages out: still refused; at that instant: admitted, the whole
    // window free again (the 7-day window still counts it).
    clock.advance(Duration.between(clock.instant(), agesOut.minusSeconds(1)));
    assertThat(check(a, key.getSecret()).getStatus().getMessage())
        .isEqualTo("window_limit_exceeded");
    clock.advance(Duration.between(clock.instant(), agesOut));
    CheckResponse again = check(a, key.getSecret());
    assertThat(again.getStatus().getCode()).isZero();
    assertThat(allowed(again, "x-quota-window-5h-remaining-usd")).isEqualTo("20");
    assertThat(allowed(again, "x-quota-window-5h-resets-at")).isNull();
    assertThat(allowed(again, "x-quota-window-7d-remaining-usd")).isEqualTo("30");
    // Instance B, which had never seen the key, reads its history once and agrees.
    // (B may still be reading the last charge's row from its notification)
    CheckResponse onB = check(b, key.getSecret());
    long deadline =
        System.nanoTime() + TimeUnit.SECONDS.toNanos(TestServer.PROPAGATION_GUARD_SECONDS);
    while (!"30".equals(allowed(onB, "x-quota-window-7d-remaining-usd"))
        && System.nanoTime() < deadline) {
      Thread.sleep(5);
      onB = check(b, key.getSecret());
    }
    assertThat(onB.getStatus().getCode()).isZero();
    assertThat(allowed(onB, "x-quota-window-7d-remaining-usd")).isEqualTo("30");
  }

  private static long ceilSeconds(Duration d) {
    return Math.max(1, (d.toMillis() + 999) / 1000);
  }

  /** Waits until B answers the key with {@code code}. */
  private static void untilOnB(String secret, int code) throws InterruptedException {
    long deadline =
        System.nanoTime() + TimeUnit.SECONDS.toNanos(TestServer.PROPAGATION_GUARD_SECONDS);
    while (check(b, secret).getStatus().getCode() != code) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("B never answered " + code);
      }
      Thread.sleep(1);
    }
  }

  @Test
  void usageThroughA_refusedOnB_windowSetOnA_honouredOnB_byTheirNotifications() throws Exception {
    CreateKeyResponse spent =
        a.admin().createKey(CreateKeyRequest.newBuilder().setName("w").setWindow1DUsd("1").build());
    untilOnB(spent.getSecret(), 0);
    charge(a, "ab-1", spent.getKey().getId(), "1");
    untilOnB(spent.getSecret(), 8);
    assertThat(check(b, spent.getSecret()).getStatus().getMessage())
        .isEqualTo("window_limit_exceeded");

    for (int i = 0; i < ROUNDS; i++) {
      CreateKeyResponse key =
          a.admin().createKey(CreateKeyRequest.newBuilder().setName("w").build());
      String id = key.getKey().getId();
      charge(a, "ab-u-" + i, id, "3");
      untilOnB(key.getSecret(), 0);
      a.admin()
          .updateKey(
              UpdateKeyRequest.newBuilder()
                  .setKey(ApiKey.newBuilder().setId(id).setWindow5HUsd("2"))
                  .setUpdateMask(FieldMask.newBuilder().addPaths("window_5h_usd"))
                  .build());
      untilOnB(key.getSecret(), 8);
      assertThat(check(b, key.getSecret()).getStatus().getMessage())
          .isEqualTo("window_limit_exceeded");
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
  void badWindowInput_invalidArgumentNamingTheFieldNothingWritten_validUpdateAudited() {
    for (String[] bad :
        new String[][] {
          {"-1", "window_5h_usd must be a decimal USD amount"},
          {"1.123456789", "window_5h_usd must be a decimal USD amount"},
          {"1000000000000", "window_5h_usd must be a decimal USD amount"},
          {"1e3", "window_5h_usd must be a decimal USD amount"}
        }) {
      assertRefused(
          () ->
              a.admin()
                  .createKey(
                      CreateKeyRequest.newBuilder().setName("bad").setWindow5HUsd(bad[0]).build()),
          bad[1]);
    }
    String id =
        a.admin().createKey(CreateKeyRequest.newBuilder().setName("u").build()).getKey().getId();
    assertRefused(
        () ->
            a.admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(ApiKey.newBuilder().setId(id))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("window_30d_usd"))
                        .build()),
        "key.window_30d_usd must not be empty when update_mask names it");
    assertRefused(
        () ->
            a.admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(ApiKey.newBuilder().setId(id).setWindow1DUsd("0.000000001"))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("window_1d_usd"))
                        .build()),
        "key.window_1d_usd must be a decimal USD amount");
    assertRefused(
        () ->
            a.admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(ApiKey.newBuilder().setId(id).setWindow1DUsd("1"))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("window_2h_usd"))
                        .build()),
        "update_mask has unknown path 'window_2h_usd'");

    ApiKey updated =
        a.admin()
            .updateKey(
                UpdateKeyRequest.newBuilder()
                    .setKey(ApiKey.newBuilder().setId(id).setWindow30DUsd("999999999999.99999999"))
                    .setUpdateMask(FieldMask.newBuilder().addPaths("window_30d_usd"))
                    .build())
            .getKey();
    assertThat(updated.getWindow30DUsd()).isEqualTo("999999999999.99999999");
    assertThat(
            db.scalar(
                "SELECT new_value->>'window_30d' FROM key_audit WHERE key_id = ? AND action ="
                    + " 'update'",
                Long.parseLong(id)))
        .isEqualTo("999999999999.99999999");
    // The same amount again is a no-op: no audit row.
    long audits = rows("key_audit");
    a.admin()
        .updateKey(
            UpdateKeyRequest.newBuilder()
                .setKey(ApiKey.newBuilder().setId(id).setWindow30DUsd("999999999999.99999999"))
                .setUpdateMask(FieldMask.newBuilder().addPaths("window_30d_usd"))
                .build());
    assertThat(rows("key_audit")).isEqualTo(audits);
    // "0" removes it.
    assertThat(
            a.admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(ApiKey.newBuilder().setId(id).setWindow30DUsd("0"))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("window_30d_usd"))
                        .build())
                .getKey()
                .getWindow30DUsd())
        .isEqualTo("0");
  }
}
