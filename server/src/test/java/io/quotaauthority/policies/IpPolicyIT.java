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
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * IP allow/deny lists through whole servers (README "Key policies"): Envoy-shaped source addresses
 * on Check, the admin API's validation, and a change made on A honoured by Check on B by the same
 * path as every other admin change, its notification (MultiInstanceIT).
 */
class IpPolicyIT {
  /** A few changes of each kind: each must arrive; the bench measures how fast. */
  private static final int ROUNDS = 3;

  private static TestDatabase db;
  private static TestServer a;
  private static TestServer b;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    a = TestServer.start(db);
    // B refreshes once an hour: a change reaches it only by its notification (MultiInstanceIT).
    b = TestServer.start(db, TestServer.NOTIFIED_ONLY, Clock.systemUTC());
  }

  @AfterAll
  static void stop() throws Exception {
    a.close();
    b.close();
    db.close();
  }

  private static CheckResponse check(TestServer server, String secret, String source) {
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).source(source).build());
  }

  private static CreateKeyResponse create(Consumer<CreateKeyRequest.Builder> policies) {
    CreateKeyRequest.Builder req = CreateKeyRequest.newBuilder().setName("ip");
    policies.accept(req);
    return a.admin().createKey(req.build());
  }

  /** Waits until B answers the key as A does (it heard of it), then returns B's answer. */
  private static CheckResponse onB(String secret, String source, int expectedCode)
      throws InterruptedException {
    long deadline =
        System.nanoTime() + TimeUnit.SECONDS.toNanos(TestServer.PROPAGATION_GUARD_SECONDS);
    CheckResponse r;
    do {
      r = check(b, secret, source);
      if (r.getStatus().getCode() == expectedCode) {
        return r;
      }
      Thread.sleep(2);
    } while (System.nanoTime() < deadline);
    return r;
  }

  @Test
  void check_allowListV4AndV6_insideAllowedOutside403IpNotAllowed() throws Exception {
    CreateKeyResponse key =
        create(r -> r.addIpAllow("203.0.113.0/24").addIpAllow("2001:db8:abcd::/48"));
    String s = key.getSecret();
    assertThat(key.getKey().getIpAllowList())
        .containsExactly("203.0.113.0/24", "2001:db8:abcd::/48");

    assertThat(onB(s, "203.0.113.200", 0).getStatus().getCode()).isZero();
    assertThat(check(b, s, "2001:db8:abcd:12::1").getStatus().getCode()).isZero();
    // A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6.
    assertThat(check(b, s, "::ffff:203.0.113.9").getStatus().getCode()).isZero();

    for (String outside : List.of("203.0.114.1", "10.0.0.7", "2001:db8:abce::1", "::1")) {
      CheckResponse r = check(b, s, outside);
      assertThat(r.getStatus().getCode()).as(outside).isEqualTo(7);
      assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(403);
      assertThat(r.getDeniedResponse().getBody())
          .isEqualTo(
              "{\"error\":{\"message\":\"This API key may not be used from this client address.\","
                  + "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"ip_not_allowed\"}}");
    }
    // No source Check can read: refused for a key with a list (fail closed).
    assertThat(check(b, s, null).getStatus().getCode()).isEqualTo(7);
    assertThat(check(b, s, "").getStatus().getCode()).isEqualTo(7);
  }

  @Test
  void check_denyWinsOverAllow_v4AndV6() throws Exception {
    CreateKeyResponse key =
        create(
            r ->
                r.addIpAllow("198.51.100.0/24")
                    .addIpAllow("2001:db8::/32")
                    .addIpDeny("198.51.100.66")
                    .addIpDeny("2001:db8:bad::/48"));
    String s = key.getSecret();
    assertThat(onB(s, "198.51.100.65", 0).getStatus().getCode()).isZero();
    assertThat(check(b, s, "198.51.100.66").getStatus().getCode()).isEqualTo(7);
    assertThat(check(b, s, "2001:db8:bad:1::5").getStatus().getCode()).isEqualTo(7);
    assertThat(check(b, s, "2001:db8:600d::5").getStatus().getCode()).isZero();
  }

  @Test
  void check_denyListAlone_refusesOnlyItsBlocks() throws Exception {
    CreateKeyResponse key = create(r -> r.addIpDeny("10.0.0.0/8"));
    assertThat(onB(key.getSecret(), "192.0.2.1", 0).getStatus().getCode()).isZero();
    CheckResponse r = check(b, key.getSecret(), "10.20.30.40");
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(403);
  }

  @Test
  void getAndList_showTheListsCanonical_andTheAuditRecordsThem() {
    CreateKeyResponse key = create(r -> r.addIpAllow("2001:DB8:0::/32").addIpDeny("192.0.2.9"));
    ApiKey got =
        a.admin().getKey(GetKeyRequest.newBuilder().setId(key.getKey().getId()).build()).getKey();
    assertThat(got.getIpAllowList()).containsExactly("2001:db8::/32");
    assertThat(got.getIpDenyList()).containsExactly("192.0.2.9/32");
    assertThat(
            a.admin()
                .listKeys(ListKeysRequest.newBuilder().setPageSize(1000).build())
                .getKeysList())
        .filteredOn(k -> k.getId().equals(key.getKey().getId()))
        .singleElement()
        .satisfies(k -> assertThat(k.getIpDenyList()).containsExactly("192.0.2.9/32"));
    Object audit =
        db.scalar(
            "SELECT new_value::text FROM key_audit WHERE key_id = ? AND action = 'create'",
            Long.parseLong(key.getKey().getId()));
    assertThat(audit.toString())
        .contains("\"ip_allow\": [\"2001:db8::/32\"]")
        .contains("\"ip_deny\": [\"192.0.2.9/32\"]");
  }

  @Test
  void update_sameListsInAnotherSpelling_noOpNoVersionBumpNoAudit() {
    CreateKeyResponse key =
        create(r -> r.addIpAllow("2001:db8::/32").addModelAllow("gpt-4o-mini").setQuotaUsd("3"));
    long id = Long.parseLong(key.getKey().getId());
    long audits = rows("key_audit");
    Object version = db.scalar("SELECT version FROM api_keys WHERE id = ?", id);
    ApiKey same =
        a.admin()
            .updateKey(
                UpdateKeyRequest.newBuilder()
                    .setKey(
                        ApiKey.newBuilder()
                            .setId(key.getKey().getId())
                            .addIpAllow("2001:DB8:0:0::/32")
                            .addModelAllow("gpt-4o-mini")
                            .setBudgetPeriod("none"))
                    .setUpdateMask(
                        FieldMask.newBuilder()
                            .addPaths("ip_allow")
                            .addPaths("model_allow")
                            .addPaths("budget_period"))
                    .build())
            .getKey();
    assertThat(same.getIpAllowList()).containsExactly("2001:db8::/32");
    assertThat(db.scalar("SELECT version FROM api_keys WHERE id = ?", id)).isEqualTo(version);
    assertThat(rows("key_audit")).isEqualTo(audits);
  }

  private static long rows(String table) {
    return ((Number) db.scalar("SELECT count(*) FROM " + table)).longValue();
  }

  private static void assertRefusedNothingWritten(Runnable call, String messageStart) {
    long keys = rows("api_keys");
    long audits = rows("key_audit");
    StatusRuntimeException e = catchThrowableOfType(call::run, StatusRuntimeException.class);
    assertThat(e).as("refused").isNotNull();
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription()).startsWith(messageStart);
    assertThat(rows("api_keys")).isEqualTo(keys);
    assertThat(rows("key_audit")).isEqualTo(audits);
  }

  @Test
  void createAndUpdate_malformedOrTooManyEntries_invalidArgumentNamingTheFieldNothingWritten() {
    assertRefusedNothingWritten(
        () -> create(r -> r.addIpAllow("10.0.0.0/8").addIpAllow("10.0.0.300/32")),
        "ip_allow[1] '10.0.0.300/32' is not an IPv4 or IPv6 CIDR block");
    assertRefusedNothingWritten(
        () -> create(r -> r.addIpDeny("10.1.0.0/8")),
        "ip_deny[0] '10.1.0.0/8' has bits set after its /8 prefix");
    List<String> many = new ArrayList<>();
    for (int i = 0; i < 101; i++) {
      many.add("192.0.2." + i);
    }
    assertRefusedNothingWritten(
        () -> create(r -> r.addAllIpAllow(many)), "ip_allow has 101 entries; at most 100");
    assertRefusedNothingWritten(
        () -> create(r -> r.addModelAllow("gpt*mini")), "model_allow[0] 'gpt*mini' may have '*'");

    CreateKeyResponse key = create(r -> {});
    String id = key.getKey().getId();
    assertRefusedNothingWritten(
        () ->
            a.admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(ApiKey.newBuilder().setId(id).addIpAllow("2001:db8::/129"))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("ip_allow"))
                        .build()),
        "key.ip_allow[0] '2001:db8::/129' has prefix length 129; at most 128");
    assertRefusedNothingWritten(
        () ->
            a.admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(
                            ApiKey.newBuilder()
                                .setId(id)
                                .setName("renamed")
                                .addIpDeny("not-an-address"))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("name").addPaths("ip_deny"))
                        .build()),
        "key.ip_deny[0] 'not-an-address' is not an IPv4 or IPv6 CIDR block");
    assertThat(a.admin().getKey(GetKeyRequest.newBuilder().setId(id).build()).getKey().getName())
        .isEqualTo("ip");
  }

  @Test
  void updateOnA_allowListHonouredOnBByItsNotification_andClearingItAdmitsAgain() throws Exception {
    for (int i = 0; i < ROUNDS; i++) {
      CreateKeyResponse key = create(r -> {});
      String id = key.getKey().getId();
      assertThat(onB(key.getSecret(), "192.0.2.10", 0).getStatus().getCode()).isZero();
      a.admin()
          .updateKey(
              UpdateKeyRequest.newBuilder()
                  .setKey(ApiKey.newBuilder().setId(id).addIpAllow("198.51.100.0/24"))
                  .setUpdateMask(FieldMask.newBuilder().addPaths("ip_allow"))
                  .build());
      assertThat(onB(key.getSecret(), "192.0.2.10", 7).getStatus().getCode()).isEqualTo(7);
      if (i == 0) {
        // Naming the path with an empty list removes the list.
        a.admin()
            .updateKey(
                UpdateKeyRequest.newBuilder()
                    .setKey(ApiKey.newBuilder().setId(id))
                    .setUpdateMask(FieldMask.newBuilder().addPaths("ip_allow"))
                    .build());
        assertThat(onB(key.getSecret(), "192.0.2.10", 0).getStatus().getCode()).isZero();
      }
    }
  }

  private static String upstream(CheckResponse r, String name) {
    return r.getOkResponse().getHeadersList().stream()
        .filter(h -> h.getHeader().getKey().equals(name))
        .map(h -> h.getHeader().getValue())
        .findFirst()
        .orElse(null);
  }

  @Test
  void updateOnA_modelListAndPeriodHonouredOnBByItsNotification() throws Exception {
    for (int i = 0; i < ROUNDS; i++) {
      CreateKeyResponse key = create(r -> r.setQuotaUsd("1"));
      String id = key.getKey().getId();
      assertThat(onB(key.getSecret(), "192.0.2.10", 0).getStatus().getCode()).isZero();
      String list = "gpt-4o-mini,m" + i + "-*";
      a.admin()
          .updateKey(
              UpdateKeyRequest.newBuilder()
                  .setKey(ApiKey.newBuilder().setId(id).addAllModelAllow(List.of(list.split(","))))
                  .setUpdateMask(FieldMask.newBuilder().addPaths("model_allow"))
                  .build());
      long deadline =
          System.nanoTime() + TimeUnit.SECONDS.toNanos(TestServer.PROPAGATION_GUARD_SECONDS);
      while (!list.equals(upstream(check(b, key.getSecret(), "192.0.2.10"), "x-quota-key-models"))
          && System.nanoTime() < deadline) {
        Thread.sleep(1);
      }
      assertThat(upstream(check(b, key.getSecret(), "192.0.2.10"), "x-quota-key-models"))
          .isEqualTo(list);

      // Spent on A by hand (a charge's row, as the commit path writes it), then given a period:
      // B must refuse it naming the period.
      db.scalar("UPDATE api_keys SET quota_used = 1 WHERE id = ? RETURNING id", Long.parseLong(id));
      a.admin()
          .updateKey(
              UpdateKeyRequest.newBuilder()
                  .setKey(ApiKey.newBuilder().setId(id).setBudgetPeriod("monthly"))
                  .setUpdateMask(FieldMask.newBuilder().addPaths("budget_period"))
                  .build());
      CheckResponse refused = onB(key.getSecret(), "192.0.2.10", 8);
      assertThat(refused.getStatus().getMessage()).isEqualTo("period_budget_exceeded");
    }
  }
}
