package io.quotaauthority.admin;

import static io.quotaauthority.admin.AdminFixtures.as;
import static io.quotaauthority.admin.AdminFixtures.assertStatus;
import static io.quotaauthority.admin.AdminFixtures.audits;
import static io.quotaauthority.admin.AdminFixtures.create;
import static io.quotaauthority.admin.AdminFixtures.instant;
import static io.quotaauthority.admin.AdminFixtures.lastAudit;
import static io.quotaauthority.admin.AdminFixtures.sql;
import static io.quotaauthority.admin.AdminFixtures.state;
import static io.quotaauthority.admin.AdminFixtures.ts;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.FieldMask;
import io.grpc.Status;
import io.quotaauthority.admin.AdminFixtures.Audit;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.ClearExpirationRequest;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.DeleteKeyResponse;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc.KeyAdminServiceBlockingStub;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.math.BigDecimal;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The admin API's happy paths over real gRPC against a real PostgreSQL database. */
class KeyAdminServiceIT {
  private static TestDatabase db;
  private static TestServer server;
  private static KeyAdminServiceBlockingStub admin;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
    admin = server.admin();
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static ApiKey get(String id) {
    return admin.getKey(GetKeyRequest.newBuilder().setId(id).build()).getKey();
  }

  private static ApiKey update(ApiKey key, String... paths) {
    return admin
        .updateKey(
            UpdateKeyRequest.newBuilder()
                .setKey(key)
                .setUpdateMask(FieldMask.newBuilder().addAllPaths(List.of(paths)))
                .build())
        .getKey();
  }

  private static BigDecimal dbDecimal(String column, String id) {
    return (BigDecimal)
        db.scalar("SELECT " + column + " FROM api_keys WHERE id = ?", Long.parseLong(id));
  }

  @Test
  void createKey_validRequest_returnsKeyAndSecretOnce() {
    Instant expires = Instant.now().plus(30, ChronoUnit.DAYS).truncatedTo(ChronoUnit.MICROS);

    CreateKeyResponse r =
        admin.createKey(
            CreateKeyRequest.newBuilder()
                .setName("team-a")
                .setQuotaUsd("12.50")
                .setExpiresAt(ts(expires))
                .build());

    ApiKey k = r.getKey();
    assertThat(r.getSecret()).matches("sk-[0-9A-Za-z]{43}");
    assertThat(k.getId()).matches("[1-9][0-9]*");
    assertThat(k.getName()).isEqualTo("team-a");
    assertThat(k.getKeyPrefix()).isEqualTo(r.getSecret().substring(0, 8));
    assertThat(k.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_ACTIVE);
    assertThat(k.getQuotaUsd()).isEqualTo("12.5");
    assertThat(k.getQuotaUsedUsd()).isEqualTo("0");
    assertThat(instant(k.getExpiresAt())).isEqualTo(expires);
    assertThat(k.hasCreatedAt()).isTrue();
    assertThat(k.getUpdatedAt()).isEqualTo(k.getCreatedAt());
    assertThat(get(k.getId())).isEqualTo(k);
    assertThat(db.count("SELECT count(*) FROM api_keys WHERE id = ?", Long.parseLong(k.getId())))
        .isEqualTo(1);
  }

  @Test
  void createKey_noQuotaNoExpiry_unlimitedAndNeverExpires() {
    ApiKey k = create(admin, "free", "");

    assertThat(k.getQuotaUsd()).isEqualTo("0");
    assertThat(k.hasExpiresAt()).isFalse();
    assertThat(dbDecimal("quota", k.getId()).compareTo(BigDecimal.ZERO)).isZero();
    assertThat(db.scalar("SELECT expires_at FROM api_keys WHERE id = ?", Long.parseLong(k.getId())))
        .isNull();
  }

  @Test
  void createKey_any_writesOneCreateAudit() {
    Instant expires = Instant.now().plus(1, ChronoUnit.DAYS).truncatedTo(ChronoUnit.MICROS);
    ApiKey k =
        admin
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("audited")
                    .setQuotaUsd("7")
                    .setExpiresAt(ts(expires))
                    .build())
            .getKey();

    List<Audit> rows = audits(db, k.getId());

    assertThat(rows).hasSize(1);
    assertThat(rows.get(0).action()).isEqualTo("create");
    assertThat(rows.get(0).actor()).isEqualTo("admin");
    assertThat(rows.get(0).oldValue()).isNull();
    assertThat(rows.get(0).newValue())
        .isEqualTo(state("audited", "active", "7", "0", expires, false, 1));
  }

  @Test
  void createKey_actorHeader_recordedInAudit() {
    ApiKey k =
        as(server, "alice@example.com")
            .createKey(CreateKeyRequest.newBuilder().setName("by-alice").build())
            .getKey();

    assertThat(lastAudit(db, k.getId()).actor()).isEqualTo("admin (claims: alice@example.com)");
  }

  @Test
  void createKey_actorHeaderWithOddCharacters_sanitizedInAudit() {
    ApiKey k =
        as(server, "bob; DROP TABLE x")
            .createKey(CreateKeyRequest.newBuilder().setName("by-bob").build())
            .getKey();

    assertThat(lastAudit(db, k.getId()).actor()).isEqualTo("admin (claims: bob__DROP_TABLE_x)");
  }

  @ParameterizedTest(name = "quota ''{0}'' is shown as ''{1}''")
  @CsvSource(
      delimiter = ';',
      value = {
        "0.00000001; 0.00000001; 0.00000001",
        "999999999999.99999999; 999999999999.99999999; 999999999999.99999999",
        "12.5; 12.5; 12.50000000",
        "12.50; 12.5; 12.50000000",
        "0; 0; 0.00000000",
        "100; 100; 100.00000000",
      })
  void createKey_amount_roundTripsExactly(String given, String shown, String stored) {
    ApiKey k = create(admin, "amount", given);

    assertThat(k.getQuotaUsd()).isEqualTo(shown);
    assertThat(get(k.getId()).getQuotaUsd()).isEqualTo(shown);
    assertThat(dbDecimal("quota", k.getId()).toPlainString()).isEqualTo(stored);
  }

  @Test
  void getKey_quotaUsedSetInDatabase_shownExactly() {
    ApiKey k = create(admin, "used", "10");
    sql(db, "UPDATE api_keys SET quota_used = 3.14159265 WHERE id = ?", Long.parseLong(k.getId()));

    assertThat(get(k.getId()).getQuotaUsedUsd()).isEqualTo("3.14159265");
  }

  @Test
  void updateKey_namePath_changesOnlyNameAndAuditsOnce() {
    ApiKey k = create(admin, "old-name", "5");

    ApiKey u = update(k.toBuilder().setName("new-name").setQuotaUsd("99").build(), "name");

    assertThat(u.getName()).isEqualTo("new-name");
    assertThat(u.getQuotaUsd()).isEqualTo("5");
    assertThat(get(k.getId())).isEqualTo(u);
    List<Audit> rows = audits(db, k.getId());
    assertThat(rows).hasSize(2);
    assertThat(rows.get(1).action()).isEqualTo("update");
    assertThat(rows.get(1).actor()).isEqualTo("admin");
    assertThat(rows.get(1).oldValue())
        .isEqualTo(state("old-name", "active", "5", "0", null, false, 1));
    assertThat(rows.get(1).newValue())
        .isEqualTo(state("new-name", "active", "5", "0", null, false, 2));
  }

  @Test
  void updateKey_quotaPath_changesQuotaExactlyAndAuditsOnce() {
    ApiKey k = create(admin, "quota", "5");

    ApiKey u =
        update(k.toBuilder().setName("ignored").setQuotaUsd("0.00000001").build(), "quota_usd");

    assertThat(u.getQuotaUsd()).isEqualTo("0.00000001");
    assertThat(u.getName()).isEqualTo("quota");
    assertThat(dbDecimal("quota", k.getId())).isEqualByComparingTo("0.00000001");
    List<Audit> rows = audits(db, k.getId());
    assertThat(rows).hasSize(2);
    assertThat(rows.get(1).action()).isEqualTo("update");
    assertThat(rows.get(1).oldValue())
        .isEqualTo(state("quota", "active", "5", "0", null, false, 1));
    assertThat(rows.get(1).newValue())
        .isEqualTo(state("quota", "active", "0.00000001", "0", null, false, 2));
  }

  @Test
  void updateKey_expiresAtPathWithValue_setsExpiryAndAuditsOnce() {
    ApiKey k = create(admin, "expiry", "0");
    Instant expires = Instant.now().plus(2, ChronoUnit.DAYS).truncatedTo(ChronoUnit.MICROS);

    ApiKey u = update(k.toBuilder().setExpiresAt(ts(expires)).build(), "expires_at");

    assertThat(instant(u.getExpiresAt())).isEqualTo(expires);
    assertThat(u.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_ACTIVE);
    List<Audit> rows = audits(db, k.getId());
    assertThat(rows).hasSize(2);
    assertThat(rows.get(1).oldValue())
        .isEqualTo(state("expiry", "active", "0", "0", null, false, 1));
    assertThat(rows.get(1).newValue())
        .isEqualTo(state("expiry", "active", "0", "0", expires, false, 2));
  }

  @Test
  void updateKey_sameValuesAsStored_noAuditNoVersionBumpKeyAsItIs() {
    Instant expires = Instant.now().plus(3, ChronoUnit.DAYS).truncatedTo(ChronoUnit.MICROS);
    ApiKey k =
        admin
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("same")
                    .setQuotaUsd("10")
                    .setExpiresAt(ts(expires))
                    .build())
            .getKey();
    List<String> before = AdminFixtures.snapshot(db);

    // "10.00" is the stored 10 written differently: still no change.
    ApiKey u =
        update(
            k.toBuilder().setQuotaUsd("10.00").setStatus(KeyStatus.KEY_STATUS_ACTIVE).build(),
            "name",
            "quota_usd",
            "expires_at",
            "status");

    assertThat(u).isEqualTo(k);
    assertThat(AdminFixtures.snapshot(db)).isEqualTo(before);
    assertThat(audits(db, k.getId())).hasSize(1);
    assertThat(db.scalar("SELECT version FROM api_keys WHERE id = ?", Long.parseLong(k.getId())))
        .isEqualTo(1L);
  }

  @Test
  void clearExpiration_keyWithoutExpiry_noAuditNoVersionBump() {
    ApiKey k = create(admin, "never-expires", "3");
    List<String> before = AdminFixtures.snapshot(db);

    ApiKey c =
        admin
            .clearExpiration(ClearExpirationRequest.newBuilder().setId(k.getId()).build())
            .getKey();

    assertThat(c).isEqualTo(k);
    assertThat(AdminFixtures.snapshot(db)).isEqualTo(before);
  }

  @Test
  void updateKey_expiresAtInThePast_allowedAndKeyExpired() {
    ApiKey k = create(admin, "expire-now", "0");
    Instant past = Instant.now().minus(1, ChronoUnit.MINUTES).truncatedTo(ChronoUnit.MICROS);

    ApiKey u = update(k.toBuilder().setExpiresAt(ts(past)).build(), "expires_at");

    assertThat(instant(u.getExpiresAt())).isEqualTo(past);
    assertThat(u.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_EXPIRED);
  }

  @Test
  void updateKey_statusPath_disablesThenReenables() {
    ApiKey k = create(admin, "status", "1");

    ApiKey disabled =
        update(k.toBuilder().setStatus(KeyStatus.KEY_STATUS_DISABLED).build(), "status");
    ApiKey active = update(k.toBuilder().setStatus(KeyStatus.KEY_STATUS_ACTIVE).build(), "status");

    assertThat(disabled.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_DISABLED);
    assertThat(active.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_ACTIVE);
    List<Audit> rows = audits(db, k.getId());
    assertThat(rows).extracting(Audit::action).containsExactly("create", "update", "update");
    assertThat(rows.get(1).newValue())
        .isEqualTo(state("status", "disabled", "1", "0", null, false, 2));
    assertThat(rows.get(2).newValue())
        .isEqualTo(state("status", "active", "1", "0", null, false, 3));
  }

  @Test
  void updateKey_everyPathAtOnce_oneAuditRow() {
    ApiKey k = create(admin, "all", "1");
    Instant expires = Instant.now().plus(3, ChronoUnit.DAYS).truncatedTo(ChronoUnit.MICROS);

    ApiKey u =
        update(
            k.toBuilder()
                .setName("all-new")
                .setQuotaUsd("2.5")
                .setExpiresAt(ts(expires))
                .setStatus(KeyStatus.KEY_STATUS_DISABLED)
                .build(),
            "name",
            "quota_usd",
            "expires_at",
            "status");

    assertThat(u.getName()).isEqualTo("all-new");
    assertThat(u.getQuotaUsd()).isEqualTo("2.5");
    assertThat(instant(u.getExpiresAt())).isEqualTo(expires);
    assertThat(u.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_DISABLED);
    assertThat(audits(db, k.getId())).hasSize(2);
    assertThat(lastAudit(db, k.getId()).newValue())
        .isEqualTo(state("all-new", "disabled", "2.5", "0", expires, false, 2));
  }

  // ---- concurrency cap ----

  private static ApiKey createCapped(String name, int cap) {
    return admin
        .createKey(
            CreateKeyRequest.newBuilder()
                .setName(name)
                .setQuotaUsd("5")
                .setMaxConcurrentRequests(cap)
                .build())
        .getKey();
  }

  private static Object storedCap(String id) {
    return db.scalar(
        "SELECT max_concurrent_requests FROM api_keys WHERE id = ?", Long.parseLong(id));
  }

  @Test
  void createKey_withConcurrencyCap_storedShownByGetAndListAndAudited() {
    ApiKey k = createCapped("capped", 8);

    assertThat(k.getMaxConcurrentRequests()).isEqualTo(8);
    assertThat(k.getConcurrentRequests()).isZero();
    assertThat(storedCap(k.getId())).isEqualTo(8);
    assertThat(get(k.getId())).isEqualTo(k);
    assertThat(listed(k.getId())).isEqualTo(k);
    List<Audit> rows = audits(db, k.getId());
    assertThat(rows).hasSize(1);
    assertThat(rows.get(0).newValue())
        .isEqualTo(state("capped", "active", "5", "0", null, 8, false, 1));
  }

  @Test
  void createKey_capOmittedOrAtTheLimits_storedAsGiven() {
    ApiKey none = create(admin, "no-cap", "5");
    ApiKey max = createCapped("max-cap", 1_000_000);

    assertThat(none.getMaxConcurrentRequests()).isZero();
    assertThat(storedCap(none.getId())).isEqualTo(0);
    assertThat(lastAudit(db, none.getId()).newValue()).containsEntry("max_concurrent_requests", 0);
    assertThat(max.getMaxConcurrentRequests()).isEqualTo(1_000_000);
    assertThat(storedCap(max.getId())).isEqualTo(1_000_000);
  }

  @Test
  void updateKey_maxConcurrentRequestsPath_setsChangesThenClearsCapOneAuditEach() {
    ApiKey k = create(admin, "cap-updates", "5");

    ApiKey set =
        update(
            k.toBuilder().setName("ignored").setMaxConcurrentRequests(3).build(),
            "max_concurrent_requests");
    ApiKey raised =
        update(k.toBuilder().setMaxConcurrentRequests(50).build(), "max_concurrent_requests");
    ApiKey cleared =
        update(k.toBuilder().setMaxConcurrentRequests(0).build(), "max_concurrent_requests");

    assertThat(set.getMaxConcurrentRequests()).isEqualTo(3);
    assertThat(set.getName()).isEqualTo("cap-updates");
    assertThat(set.getQuotaUsd()).isEqualTo("5");
    assertThat(raised.getMaxConcurrentRequests()).isEqualTo(50);
    assertThat(cleared.getMaxConcurrentRequests()).isZero();
    assertThat(get(k.getId())).isEqualTo(cleared);
    assertThat(storedCap(k.getId())).isEqualTo(0);
    List<Audit> rows = audits(db, k.getId());
    assertThat(rows)
        .extracting(Audit::action)
        .containsExactly("create", "update", "update", "update");
    assertThat(rows.get(1).oldValue())
        .isEqualTo(state("cap-updates", "active", "5", "0", null, 0, false, 1));
    assertThat(rows.get(1).newValue())
        .isEqualTo(state("cap-updates", "active", "5", "0", null, 3, false, 2));
    assertThat(rows.get(2).newValue())
        .isEqualTo(state("cap-updates", "active", "5", "0", null, 50, false, 3));
    assertThat(rows.get(3).oldValue())
        .isEqualTo(state("cap-updates", "active", "5", "0", null, 50, false, 3));
    assertThat(rows.get(3).newValue())
        .isEqualTo(state("cap-updates", "active", "5", "0", null, 0, false, 4));
  }

  @Test
  void updateKey_capNotInMask_capKeptWhateverTheKeyCarries() {
    ApiKey k = createCapped("cap-kept", 6);

    // The message's 0 is its default, not a request: only the mask names what changes.
    ApiKey u = update(k.toBuilder().setName("renamed").setMaxConcurrentRequests(0).build(), "name");

    assertThat(u.getName()).isEqualTo("renamed");
    assertThat(u.getMaxConcurrentRequests()).isEqualTo(6);
    assertThat(storedCap(k.getId())).isEqualTo(6);
    assertThat(lastAudit(db, k.getId()).newValue())
        .isEqualTo(state("renamed", "active", "5", "0", null, 6, false, 2));
  }

  @Test
  void updateKey_sameCapAsStored_noAuditNoVersionBump() {
    ApiKey k = createCapped("cap-same", 9);
    List<String> before = AdminFixtures.snapshot(db);

    ApiKey u = update(k.toBuilder().setMaxConcurrentRequests(9).build(), "max_concurrent_requests");

    assertThat(u).isEqualTo(k);
    assertThat(AdminFixtures.snapshot(db)).isEqualTo(before);
  }

  @Test
  void getKey_slotsLeased_shownAsConcurrentRequestsWithoutAVersionBump() {
    ApiKey k = createCapped("in-flight", 10);
    // As the leasing leaves it for requests in flight on other instances.
    sql(db, "UPDATE api_keys SET slots_leased = 4 WHERE id = ?", Long.parseLong(k.getId()));

    ApiKey g = get(k.getId());

    assertThat(g.getConcurrentRequests()).isEqualTo(4);
    assertThat(g.getMaxConcurrentRequests()).isEqualTo(10);
    assertThat(listed(k.getId()).getConcurrentRequests()).isEqualTo(4);
    assertThat(g.getUpdatedAt()).isEqualTo(k.getUpdatedAt());
  }

  @Test
  void resetQuotaAndClearExpiration_cappedKey_keepTheCap() {
    ApiKey k =
        admin
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("cap-survives")
                    .setMaxConcurrentRequests(12)
                    .setExpiresAt(ts(Instant.now().plus(1, ChronoUnit.DAYS)))
                    .build())
            .getKey();

    ApiKey reset =
        admin.resetQuota(ResetQuotaRequest.newBuilder().setId(k.getId()).build()).getKey();
    ApiKey cleared =
        admin
            .clearExpiration(ClearExpirationRequest.newBuilder().setId(k.getId()).build())
            .getKey();

    assertThat(reset.getMaxConcurrentRequests()).isEqualTo(12);
    assertThat(cleared.getMaxConcurrentRequests()).isEqualTo(12);
    assertThat(cleared.hasExpiresAt()).isFalse();
    assertThat(storedCap(k.getId())).isEqualTo(12);
    assertThat(lastAudit(db, k.getId()).newValue()).containsEntry("max_concurrent_requests", 12);
  }

  @Test
  void resetQuota_usedAmount_exactlyZeroAndAuditedOnce() {
    ApiKey k = create(admin, "reset", "10");
    sql(db, "UPDATE api_keys SET quota_used = 3.25 WHERE id = ?", Long.parseLong(k.getId()));

    ApiKey r = admin.resetQuota(ResetQuotaRequest.newBuilder().setId(k.getId()).build()).getKey();

    assertThat(r.getQuotaUsedUsd()).isEqualTo("0");
    assertThat(r.getQuotaUsd()).isEqualTo("10");
    assertThat(dbDecimal("quota_used", k.getId()).compareTo(BigDecimal.ZERO)).isZero();
    List<Audit> rows = audits(db, k.getId());
    assertThat(rows).hasSize(2);
    assertThat(rows.get(1).action()).isEqualTo("reset_quota");
    assertThat(rows.get(1).actor()).isEqualTo("admin");
    assertThat(rows.get(1).oldValue())
        .isEqualTo(state("reset", "active", "10", "3.25", null, false, 1));
    assertThat(rows.get(1).newValue())
        .isEqualTo(state("reset", "active", "10", "0", null, false, 2));
  }

  @Test
  void resetQuota_exhaustedKey_activeAgain() {
    ApiKey k = create(admin, "exhausted", "1");
    sql(db, "UPDATE api_keys SET quota_used = 1 WHERE id = ?", Long.parseLong(k.getId()));
    assertThat(get(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_QUOTA_EXHAUSTED);

    ApiKey r = admin.resetQuota(ResetQuotaRequest.newBuilder().setId(k.getId()).build()).getKey();

    assertThat(r.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_ACTIVE);
  }

  @Test
  void clearExpiration_expiringKey_neverExpiresAndAuditedOnce() {
    Instant expires = Instant.now().plus(1, ChronoUnit.HOURS).truncatedTo(ChronoUnit.MICROS);
    ApiKey k =
        admin
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("clear")
                    .setQuotaUsd("4")
                    .setExpiresAt(ts(expires))
                    .build())
            .getKey();

    ApiKey c =
        admin
            .clearExpiration(ClearExpirationRequest.newBuilder().setId(k.getId()).build())
            .getKey();

    assertThat(c.hasExpiresAt()).isFalse();
    assertThat(db.scalar("SELECT expires_at FROM api_keys WHERE id = ?", Long.parseLong(k.getId())))
        .isNull();
    List<Audit> rows = audits(db, k.getId());
    assertThat(rows).hasSize(2);
    assertThat(rows.get(1).action()).isEqualTo("clear_expiration");
    assertThat(rows.get(1).oldValue())
        .isEqualTo(state("clear", "active", "4", "0", expires, false, 1));
    assertThat(rows.get(1).newValue())
        .isEqualTo(state("clear", "active", "4", "0", null, false, 2));
  }

  @Test
  void clearExpiration_expiredKey_activeAgain() {
    ApiKey k = create(admin, "was-expired", "0");
    sql(
        db,
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = ?",
        Long.parseLong(k.getId()));
    assertThat(get(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_EXPIRED);

    ApiKey c =
        admin
            .clearExpiration(ClearExpirationRequest.newBuilder().setId(k.getId()).build())
            .getKey();

    assertThat(c.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_ACTIVE);
  }

  @Test
  void deleteKey_liveKey_softDeletedAuditedAndInvisibleEverywhere() {
    ApiKey k = create(admin, "doomed", "3");
    String id = k.getId();

    DeleteKeyResponse r = admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build());

    assertThat(r).isEqualTo(DeleteKeyResponse.getDefaultInstance());
    assertThat(
            db.scalar(
                "SELECT deleted_at IS NOT NULL FROM api_keys WHERE id = ?", Long.parseLong(id)))
        .isEqualTo(true);
    List<Audit> rows = audits(db, id);
    assertThat(rows).hasSize(2);
    assertThat(rows.get(1).action()).isEqualTo("delete");
    assertThat(rows.get(1).oldValue())
        .isEqualTo(state("doomed", "active", "3", "0", null, false, 1));
    assertThat(rows.get(1).newValue())
        .isEqualTo(state("doomed", "active", "3", "0", null, true, 2));

    String notFound = "id: no key with id " + id;
    assertStatus(() -> get(id), Status.Code.NOT_FOUND, notFound);
    assertStatus(
        () -> update(k.toBuilder().setName("x").build(), "name"), Status.Code.NOT_FOUND, notFound);
    assertStatus(
        () -> admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        notFound);
    assertStatus(
        () -> admin.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        notFound);
    assertStatus(
        () -> admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        notFound);
    assertThat(allListedIds()).doesNotContain(id);
    assertThat(audits(db, id)).hasSize(2);
  }

  @Test
  void getKey_expiresAtPassed_expired() {
    ApiKey k = create(admin, "expired", "0");
    sql(
        db,
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = ?",
        Long.parseLong(k.getId()));

    assertThat(get(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_EXPIRED);
    assertThat(listed(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_EXPIRED);
  }

  @Test
  void getKey_quotaUsedReachesQuota_quotaExhausted() {
    ApiKey k = create(admin, "spent", "2.5");
    sql(db, "UPDATE api_keys SET quota_used = 2.49999999 WHERE id = ?", Long.parseLong(k.getId()));
    assertThat(get(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_ACTIVE);

    sql(db, "UPDATE api_keys SET quota_used = 2.5 WHERE id = ?", Long.parseLong(k.getId()));

    assertThat(get(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_QUOTA_EXHAUSTED);
    assertThat(listed(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_QUOTA_EXHAUSTED);
  }

  @Test
  void getKey_unlimitedWithHugeUsage_active() {
    ApiKey k = create(admin, "unlimited", "0");
    sql(
        db,
        "UPDATE api_keys SET quota_used = 999999999999.99999999 WHERE id = ?",
        Long.parseLong(k.getId()));

    ApiKey g = get(k.getId());

    assertThat(g.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_ACTIVE);
    assertThat(g.getQuotaUsedUsd()).isEqualTo("999999999999.99999999");
  }

  @Test
  void getKey_expiredAndExhausted_expired() {
    ApiKey k = create(admin, "both", "1");
    sql(
        db,
        "UPDATE api_keys SET quota_used = 5, expires_at = now() - interval '1 minute' WHERE id = ?",
        Long.parseLong(k.getId()));

    assertThat(get(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_EXPIRED);
  }

  @Test
  void getKey_disabledExpiredExhausted_disabled() {
    ApiKey k = create(admin, "off", "1");
    sql(
        db,
        "UPDATE api_keys SET status = 'disabled', quota_used = 5, expires_at = now() - interval '1 minute'"
            + " WHERE id = ?",
        Long.parseLong(k.getId()));

    assertThat(get(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_DISABLED);
  }

  @Test
  void keyLifecycle_createGetListUpdateResetClearDelete_oneAuditRowPerChange() {
    ApiKey k =
        as(server, "ops")
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("life")
                    .setQuotaUsd("1.5")
                    .setExpiresAt(ts(Instant.now().plus(1, ChronoUnit.DAYS)))
                    .build())
            .getKey();
    KeyAdminServiceBlockingStub ops = as(server, "ops");

    assertThat(get(k.getId())).isEqualTo(k);
    assertThat(listed(k.getId())).isEqualTo(k);
    ops.updateKey(
        UpdateKeyRequest.newBuilder()
            .setKey(k.toBuilder().setQuotaUsd("2"))
            .setUpdateMask(FieldMask.newBuilder().addPaths("quota_usd"))
            .build());
    sql(db, "UPDATE api_keys SET quota_used = 0.5 WHERE id = ?", Long.parseLong(k.getId()));
    ops.resetQuota(ResetQuotaRequest.newBuilder().setId(k.getId()).build());
    ops.clearExpiration(ClearExpirationRequest.newBuilder().setId(k.getId()).build());
    ops.deleteKey(DeleteKeyRequest.newBuilder().setId(k.getId()).build());

    List<Audit> rows = audits(db, k.getId());
    assertThat(rows)
        .extracting(Audit::action)
        .containsExactly("create", "update", "reset_quota", "clear_expiration", "delete");
    assertThat(rows).extracting(Audit::actor).containsOnly("admin (claims: ops)");
    assertThat(rows).extracting(a -> a.newValue().get("version")).containsExactly(1, 2, 3, 4, 5);
    assertThat(db.scalar("SELECT version FROM api_keys WHERE id = ?", Long.parseLong(k.getId())))
        .isEqualTo(5L);
  }

  private static ApiKey listed(String id) {
    return allListed().stream().filter(k -> k.getId().equals(id)).findFirst().orElseThrow();
  }

  private static List<String> allListedIds() {
    return allListed().stream().map(ApiKey::getId).toList();
  }

  private static List<ApiKey> allListed() {
    List<ApiKey> out = new ArrayList<>();
    String token = "";
    do {
      var page =
          admin.listKeys(
              ListKeysRequest.newBuilder().setPageSize(1000).setPageToken(token).build());
      out.addAll(page.getKeysList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return out;
  }
}
