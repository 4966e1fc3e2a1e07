package io.quotaauthority.policies;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.google.protobuf.FieldMask;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quotaauthority.keys.ProtoTimes;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.BudgetPeriodRecord;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.ListBudgetPeriodsRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A monthly budget in Europe/Paris through a whole server whose clock the test sets (README "Key
 * policies"): spent, refused 429 naming the month with retry-after until midnight in Paris; a
 * second past that midnight admitted again, the ended month kept in the history.
 */
class PeriodBudgetIT {
  /** A clock the test moves: the real one shifted by an offset. */
  static final class MovableClock extends Clock {
    private final AtomicReference<Duration> offset = new AtomicReference<>(Duration.ZERO);

    void setNow(Instant now) {
      offset.set(Duration.between(Instant.now(), now));
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return Instant.now().plus(offset.get());
    }
  }

  /** Midnight of 1 January 2027 in Paris (UTC+1 in winter). */
  private static final Instant NEW_YEAR_PARIS = Instant.parse("2026-12-31T23:00:00Z");

  private final MovableClock clock = new MovableClock();
  private TestDatabase db;
  private TestServer server;

  @BeforeEach
  void start() {
    clock.setNow(NEW_YEAR_PARIS.minusSeconds(90));
    db = TestDatabase.create();
    server = TestServer.start(db, Map.of(), clock);
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    db.close();
  }

  private CheckResponse check(String secret) {
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build());
  }

  private static String header(CheckResponse r, String name) {
    return r.getDeniedResponse().getHeadersList().stream()
        .filter(h -> h.getHeader().getKey().equals(name))
        .map(h -> h.getHeader().getValue())
        .findFirst()
        .orElse(null);
  }

  private ApiKey get(String id) {
    return server.admin().getKey(GetKeyRequest.newBuilder().setId(id).build()).getKey();
  }

  @Test
  void monthlyBudgetInParis_spent429UntilMidnightThere_thenAdmittedAndTheMonthKept()
      throws Exception {
    CreateKeyResponse key =
        server
            .admin()
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("monthly")
                    .setQuotaUsd("2")
                    .setBudgetPeriod("monthly")
                    .setBudgetTimeZone("Europe/Paris")
                    .build());
    String id = key.getKey().getId();
    assertThat(key.getKey().getBudgetPeriod()).isEqualTo("monthly");
    assertThat(key.getKey().getBudgetResetTime()).isEqualTo("00:00");
    assertThat(ProtoTimes.instant("t", key.getKey().getPeriodStartedAt()))
        .isEqualTo(Instant.parse("2026-11-30T23:00:00Z"));
    assertThat(ProtoTimes.instant("t", key.getKey().getPeriodResetsAt())).isEqualTo(NEW_YEAR_PARIS);

    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
        .send(UsageStream.report("dec-1", id, "1.25"))
        .send(UsageStream.report("dec-2", id, "0.75"))
        .finish();

    CheckResponse refused = check(key.getSecret());
    assertThat(refused.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(429);
    assertThat(refused.getDeniedResponse().getBody())
        .isEqualTo(
            "{\"error\":{\"message\":\"This API key has used its monthly budget of 2 USD for this"
                + " month; it resets at 2027-01-01T00:00+01:00 (Europe/Paris).\","
                + "\"type\":\"insufficient_quota\",\"param\":null,"
                + "\"code\":\"period_budget_exceeded\"}}");
    long retryAfter = Long.parseLong(header(refused, "retry-after"));
    assertThat(retryAfter).isBetween(85L, 91L);
    assertThat(header(refused, "x-quota-budget-resets-at")).isEqualTo("2026-12-31T23:00:00Z");

    // One second past midnight in Paris: admitted at once (in memory), the row follows.
    clock.setNow(NEW_YEAR_PARIS.plusSeconds(1));
    CheckResponse admitted = check(key.getSecret());
    assertThat(admitted.getStatus().getCode()).isZero();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    ApiKey rolled = get(id);
    while (!rolled.getQuotaUsedUsd().equals("0") && System.nanoTime() < deadline) {
      Thread.sleep(50);
      rolled = get(id);
    }
    assertThat(rolled.getQuotaUsedUsd()).isEqualTo("0");
    assertThat(ProtoTimes.instant("t", rolled.getPeriodStartedAt())).isEqualTo(NEW_YEAR_PARIS);
    assertThat(ProtoTimes.instant("t", rolled.getPeriodResetsAt()))
        .isEqualTo(Instant.parse("2027-01-31T23:00:00Z"));

    List<BudgetPeriodRecord> history =
        server
            .admin()
            .listBudgetPeriods(ListBudgetPeriodsRequest.newBuilder().setKeyId(id).build())
            .getPeriodsList();
    assertThat(history).hasSize(1);
    BudgetPeriodRecord december = history.get(0);
    assertThat(december.getBudgetPeriod()).isEqualTo("monthly");
    assertThat(december.getTimeZone()).isEqualTo("Europe/Paris");
    assertThat(december.getUsedUsd()).isEqualTo("2");
    assertThat(december.getBudgetUsd()).isEqualTo("2");
    assertThat(ProtoTimes.instant("t", december.getStartedAt()))
        .isEqualTo(Instant.parse("2026-11-30T23:00:00Z"));
    assertThat(ProtoTimes.instant("t", december.getEndedAt())).isEqualTo(NEW_YEAR_PARIS);

    // January's usage counts in January only.
    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
        .send(UsageStream.report("jan-1", id, "0.5"))
        .finish();
    assertThat(get(id).getQuotaUsedUsd()).isEqualTo("0.5");
    assertThat(check(key.getSecret()).getStatus().getCode()).isZero();
  }

  @Test
  void usageChargedAfterTheBoundaryBeforeTheSweep_countsInTheNewPeriod() throws Exception {
    CreateKeyResponse key =
        server
            .admin()
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("daily")
                    .setQuotaUsd("10")
                    .setBudgetPeriod("daily")
                    .setBudgetResetTime("00:00")
                    .setBudgetTimeZone("Europe/Paris")
                    .build());
    String id = key.getKey().getId();
    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
        .send(UsageStream.report("old", id, "3"))
        .finish();
    clock.setNow(NEW_YEAR_PARIS.plusMillis(10));
    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
        .send(UsageStream.report("new", id, "1"))
        .finish();
    assertThat(get(id).getQuotaUsedUsd()).isEqualTo("1");
    assertThat(
            server
                .admin()
                .listBudgetPeriods(ListBudgetPeriodsRequest.newBuilder().setKeyId(id).build())
                .getPeriods(0)
                .getUsedUsd())
        .isEqualTo("3");
  }

  private long rows(String table) {
    return ((Number) db.scalar("SELECT count(*) FROM " + table)).longValue();
  }

  private void assertRefused(Runnable call, String message) {
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
  void badPeriodInput_invalidArgumentNamingTheFieldNothingWritten() {
    assertRefused(
        () ->
            server
                .admin()
                .createKey(
                    CreateKeyRequest.newBuilder().setName("p").setBudgetPeriod("yearly").build()),
        "budget_period must be one of none, daily, weekly, monthly, got 'yearly'");
    assertRefused(
        () ->
            server
                .admin()
                .createKey(
                    CreateKeyRequest.newBuilder()
                        .setName("p")
                        .setBudgetPeriod("monthly")
                        .setBudgetTimeZone("Europe/Atlantis")
                        .build()),
        "budget_time_zone 'Europe/Atlantis' is not an IANA time zone name");
    assertRefused(
        () ->
            server
                .admin()
                .createKey(
                    CreateKeyRequest.newBuilder()
                        .setName("p")
                        .setBudgetPeriod("daily")
                        .setBudgetResetTime("25:00")
                        .build()),
        "budget_reset_time must be a time of day HH:MM");
    String id =
        server
            .admin()
            .createKey(CreateKeyRequest.newBuilder().setName("p").build())
            .getKey()
            .getId();
    assertRefused(
        () ->
            server
                .admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(ApiKey.newBuilder().setId(id))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("budget_period"))
                        .build()),
        "key.budget_period must not be empty when update_mask names budget_period");
    // A valid update sets the period; its bounds follow the server's clock.
    ApiKey updated =
        server
            .admin()
            .updateKey(
                UpdateKeyRequest.newBuilder()
                    .setKey(ApiKey.newBuilder().setId(id).setBudgetPeriod("weekly"))
                    .setUpdateMask(FieldMask.newBuilder().addPaths("budget_period"))
                    .build())
            .getKey();
    assertThat(updated.getBudgetPeriod()).isEqualTo("weekly");
    assertThat(ProtoTimes.instant("t", updated.getPeriodResetsAt()))
        .isEqualTo(Instant.parse("2027-01-04T00:00:00Z"));
  }
}
