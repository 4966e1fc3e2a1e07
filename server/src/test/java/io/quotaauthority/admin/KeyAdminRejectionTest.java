package io.quotaauthority.admin;

import static io.quotaauthority.admin.AdminFixtures.assertStatus;
import static io.quotaauthority.admin.AdminFixtures.create;
import static io.quotaauthority.admin.AdminFixtures.snapshot;
import static io.quotaauthority.admin.AdminFixtures.ts;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.FieldMask;
import com.google.protobuf.Timestamp;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.MetadataUtils;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.ClearExpirationRequest;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc.KeyAdminServiceBlockingStub;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every refused admin call: the exact status code, a message starting with the field it names, and
 * api_keys and key_audit exactly as they were.
 */
class KeyAdminRejectionTest {
  private static TestDatabase db;
  private static TestServer server;
  private static KeyAdminServiceBlockingStub admin;
  /** A live key the refused calls aim at. */
  private static ApiKey target;
  /** A soft-deleted key. */
  private static ApiKey deleted;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
    admin = server.admin();
    target = create(admin, "target", "10");
    deleted = create(admin, "deleted", "10");
    admin.deleteKey(DeleteKeyRequest.newBuilder().setId(deleted.getId()).build());
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  /** Asserts the call is refused with this code and message prefix, and wrote nothing. */
  private static void refused(ThrowingCallable call, Status.Code code, String prefix) {
    List<String> before = snapshot(db);
    assertStatus(call, code, prefix);
    assertThat(snapshot(db)).isEqualTo(before);
  }

  private static KeyAdminServiceBlockingStub withAuthorization(String value) {
    Metadata md = new Metadata();
    md.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), value);
    return KeyAdminServiceGrpc.newBlockingStub(server.adminChannel())
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));
  }

  private static CreateKeyRequest validCreate() {
    return CreateKeyRequest.newBuilder().setName("should-not-exist").setQuotaUsd("1").build();
  }

  private static UpdateKeyRequest updateOf(ApiKey key, String... paths) {
    return UpdateKeyRequest.newBuilder().setKey(key)
        .setUpdateMask(FieldMask.newBuilder().addAllPaths(List.of(paths))).build();
  }

  // ---- authentication ----

  @Test
  void createKey_noAuthorizationHeader_unauthenticatedNothingWritten() {
    KeyAdminServiceBlockingStub anonymous = KeyAdminServiceGrpc.newBlockingStub(server.adminChannel());

    refused(() -> anonymous.createKey(validCreate()), Status.Code.UNAUTHENTICATED,
        "missing authorization: Bearer <admin token>");
  }

  @Test
  void createKey_wrongToken_unauthenticatedNothingWritten() {
    refused(() -> withAuthorization("Bearer not-the-token").createKey(validCreate()),
        Status.Code.UNAUTHENTICATED, "wrong admin token");
  }

  @Test
  void createKey_tokenWithExtraCharacter_unauthenticated() {
    refused(() -> withAuthorization("Bearer " + TestServer.ADMIN_TOKEN + "x").createKey(validCreate()),
        Status.Code.UNAUTHENTICATED, "wrong admin token");
  }

  @ParameterizedTest(name = "authorization: ''{0}''")
  @ValueSource(strings = {"Basic dGVzdC1hZG1pbi10b2tlbg==", "Token " + TestServer.ADMIN_TOKEN,
      TestServer.ADMIN_TOKEN, "Bearer", "Bearer" + TestServer.ADMIN_TOKEN})
  void createKey_wrongScheme_unauthenticatedNothingWritten(String header) {
    refused(() -> withAuthorization(header).createKey(validCreate()), Status.Code.UNAUTHENTICATED,
        "authorization must be 'Bearer <admin token>'");
  }

  @Test
  void createKey_emptyBearerToken_unauthenticated() {
    refused(() -> withAuthorization("Bearer ").createKey(validCreate()), Status.Code.UNAUTHENTICATED,
        "wrong admin token");
  }

  @Test
  void mutatingCalls_wrongToken_unauthenticatedNothingWritten() {
    KeyAdminServiceBlockingStub wrong = withAuthorization("Bearer wrong");
    String id = target.getId();

    refused(() -> wrong.getKey(GetKeyRequest.newBuilder().setId(id).build()), Status.Code.UNAUTHENTICATED, "wrong");
    refused(() -> wrong.listKeys(ListKeysRequest.getDefaultInstance()), Status.Code.UNAUTHENTICATED, "wrong");
    refused(() -> wrong.updateKey(updateOf(target.toBuilder().setName("x").build(), "name")),
        Status.Code.UNAUTHENTICATED, "wrong");
    refused(() -> wrong.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()),
        Status.Code.UNAUTHENTICATED, "wrong");
    refused(() -> wrong.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()),
        Status.Code.UNAUTHENTICATED, "wrong");
    refused(() -> wrong.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()),
        Status.Code.UNAUTHENTICATED, "wrong");
  }

  @Test
  void createKey_lowercaseBearerScheme_accepted() {
    ApiKey k = withAuthorization("bearer " + TestServer.ADMIN_TOKEN).createKey(
        CreateKeyRequest.newBuilder().setName("lowercase").build()).getKey();

    assertThat(k.getName()).isEqualTo("lowercase");
  }

  // ---- ids ----

  @ParameterizedTest(name = "id ''{0}''")
  @ValueSource(strings = {"abc", "-1", "0", "1.5", " 1", "0x1", "99999999999999999999"})
  void everyIdRpc_malformedId_invalidArgumentNamingId(String id) {
    refused(() -> admin.getKey(GetKeyRequest.newBuilder().setId(id).build()),
        Status.Code.INVALID_ARGUMENT, "id must be a key id (a positive whole number)");
    refused(() -> admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()),
        Status.Code.INVALID_ARGUMENT, "id must be a key id (a positive whole number)");
    refused(() -> admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()),
        Status.Code.INVALID_ARGUMENT, "id must be a key id (a positive whole number)");
    refused(() -> admin.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()),
        Status.Code.INVALID_ARGUMENT, "id must be a key id (a positive whole number)");
    refused(() -> admin.updateKey(updateOf(target.toBuilder().setId(id).setName("x").build(), "name")),
        Status.Code.INVALID_ARGUMENT, "key.id must be a key id (a positive whole number)");
  }

  @Test
  void everyIdRpc_emptyId_invalidArgumentNamingId() {
    refused(() -> admin.getKey(GetKeyRequest.getDefaultInstance()), Status.Code.INVALID_ARGUMENT,
        "id must not be empty");
    refused(() -> admin.deleteKey(DeleteKeyRequest.getDefaultInstance()), Status.Code.INVALID_ARGUMENT,
        "id must not be empty");
    refused(() -> admin.resetQuota(ResetQuotaRequest.getDefaultInstance()), Status.Code.INVALID_ARGUMENT,
        "id must not be empty");
    refused(() -> admin.clearExpiration(ClearExpirationRequest.getDefaultInstance()),
        Status.Code.INVALID_ARGUMENT, "id must not be empty");
    refused(() -> admin.updateKey(updateOf(ApiKey.newBuilder().setName("x").build(), "name")),
        Status.Code.INVALID_ARGUMENT, "key.id must not be empty");
  }

  @Test
  void everyIdRpc_unknownId_notFound() {
    String id = "987654321";
    String message = "id: no key with id 987654321";

    refused(() -> admin.getKey(GetKeyRequest.newBuilder().setId(id).build()), Status.Code.NOT_FOUND, message);
    refused(() -> admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()), Status.Code.NOT_FOUND, message);
    refused(() -> admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()), Status.Code.NOT_FOUND,
        message);
    refused(() -> admin.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND, message);
    refused(() -> admin.updateKey(updateOf(target.toBuilder().setId(id).setName("x").build(), "name")),
        Status.Code.NOT_FOUND, message);
  }

  @Test
  void everyIdRpc_deletedKey_notFound() {
    String id = deleted.getId();
    String message = "id: no key with id " + id;

    refused(() -> admin.getKey(GetKeyRequest.newBuilder().setId(id).build()), Status.Code.NOT_FOUND, message);
    refused(() -> admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()), Status.Code.NOT_FOUND, message);
    refused(() -> admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()), Status.Code.NOT_FOUND,
        message);
    refused(() -> admin.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND, message);
    refused(() -> admin.updateKey(updateOf(deleted.toBuilder().setName("revived").build(), "name")),
        Status.Code.NOT_FOUND, message);
    assertThat(admin.listKeys(ListKeysRequest.newBuilder().setPageSize(1000).build()).getKeysList())
        .extracting(ApiKey::getId).contains(target.getId()).doesNotContain(id);
  }

  // ---- money ----

  @ParameterizedTest(name = "quota_usd ''{0}''")
  @ValueSource(strings = {"-1", "NaN", "1e3", "1000000000000", "0.123456789", "1.", " 1", "+1", "-0", ".5",
      "1,5", "Infinity", "12.5 "})
  void createAndUpdate_malformedQuota_invalidArgumentNamingQuotaUsd(String quota) {
    refused(() -> admin.createKey(CreateKeyRequest.newBuilder().setName("bad-money").setQuotaUsd(quota).build()),
        Status.Code.INVALID_ARGUMENT, "quota_usd must be a decimal USD amount");
    refused(() -> admin.updateKey(updateOf(target.toBuilder().setQuotaUsd(quota).build(), "quota_usd")),
        Status.Code.INVALID_ARGUMENT, "quota_usd must be a decimal USD amount");
  }

  // ---- expiry ----

  @Test
  void createKey_expiresAtInThePast_invalidArgumentNamingExpiresAt() {
    refused(() -> admin.createKey(CreateKeyRequest.newBuilder().setName("past")
            .setExpiresAt(ts(Instant.now().minus(1, ChronoUnit.SECONDS))).build()),
        Status.Code.INVALID_ARGUMENT, "expires_at must be in the future");
  }

  @Test
  void createKey_expiresAtEpoch_invalidArgumentNamingExpiresAt() {
    refused(() -> admin.createKey(CreateKeyRequest.newBuilder().setName("epoch")
            .setExpiresAt(Timestamp.getDefaultInstance()).build()),
        Status.Code.INVALID_ARGUMENT, "expires_at must be in the future");
  }

  @Test
  void createAndUpdate_invalidTimestamp_invalidArgumentNamingExpiresAt() {
    Timestamp bad = Timestamp.newBuilder().setSeconds(Instant.now().getEpochSecond() + 3600).setNanos(-1).build();
    Timestamp tooLate = Timestamp.newBuilder().setSeconds(253_402_300_800L).build();

    refused(() -> admin.createKey(CreateKeyRequest.newBuilder().setName("bad-ts").setExpiresAt(bad).build()),
        Status.Code.INVALID_ARGUMENT, "expires_at is not a valid timestamp");
    refused(() -> admin.createKey(CreateKeyRequest.newBuilder().setName("bad-ts").setExpiresAt(tooLate).build()),
        Status.Code.INVALID_ARGUMENT, "expires_at is not a valid timestamp");
    refused(() -> admin.updateKey(updateOf(target.toBuilder().setExpiresAt(bad).build(), "expires_at")),
        Status.Code.INVALID_ARGUMENT, "key.expires_at is not a valid timestamp");
  }

  // ---- update mask and status ----

  @Test
  void updateKey_emptyMask_invalidArgumentNamingUpdateMask() {
    refused(() -> admin.updateKey(UpdateKeyRequest.newBuilder().setKey(target.toBuilder().setName("x")).build()),
        Status.Code.INVALID_ARGUMENT, "update_mask must name at least one of [name, quota_usd, expires_at, status]");
  }

  @ParameterizedTest(name = "path ''{0}''")
  @ValueSource(strings = {"quota", "quota_used_usd", "id", "key_prefix", "key.name", "Name", ""})
  void updateKey_unknownMaskPath_invalidArgumentNamingUpdateMask(String path) {
    refused(() -> admin.updateKey(updateOf(target.toBuilder().setName("x").build(), "name", path)),
        Status.Code.INVALID_ARGUMENT, "update_mask has unknown path '" + path + "'");
  }

  @ParameterizedTest(name = "status {0}")
  @ValueSource(strings = {"KEY_STATUS_UNSPECIFIED", "KEY_STATUS_EXPIRED", "KEY_STATUS_QUOTA_EXHAUSTED"})
  void updateKey_statusNotSettable_invalidArgumentNamingStatus(String status) {
    refused(() -> admin.updateKey(updateOf(target.toBuilder().setStatus(KeyStatus.valueOf(status)).build(),
            "status")),
        Status.Code.INVALID_ARGUMENT, "key.status must be KEY_STATUS_ACTIVE or KEY_STATUS_DISABLED");
  }

  @Test
  void updateKey_unknownStatusNumber_invalidArgumentNamingStatus() {
    refused(() -> admin.updateKey(updateOf(target.toBuilder().setStatusValue(99).build(), "status")),
        Status.Code.INVALID_ARGUMENT, "key.status must be KEY_STATUS_ACTIVE or KEY_STATUS_DISABLED");
  }

  @Test
  void updateKey_validPathThenBadValue_nothingChanged() {
    refused(() -> admin.updateKey(updateOf(target.toBuilder().setName("renamed").setQuotaUsd("-5").build(),
            "name", "quota_usd")),
        Status.Code.INVALID_ARGUMENT, "quota_usd must be a decimal USD amount");
  }

  // ---- names ----

  @ParameterizedTest(name = "name ''{0}''")
  @ValueSource(strings = {"", " ", "\t"})
  void createAndUpdate_blankName_invalidArgumentNamingName(String name) {
    refused(() -> admin.createKey(CreateKeyRequest.newBuilder().setName(name).build()),
        Status.Code.INVALID_ARGUMENT, "name must not be empty");
    refused(() -> admin.updateKey(updateOf(target.toBuilder().setName(name).build(), "name")),
        Status.Code.INVALID_ARGUMENT, "name must not be empty");
  }

  @Test
  void createKey_nameOver200Characters_invalidArgumentNamingName() {
    refused(() -> admin.createKey(CreateKeyRequest.newBuilder().setName("n".repeat(201)).build()),
        Status.Code.INVALID_ARGUMENT, "name must be at most 200 characters");
  }

  @Test
  void createKey_nameOf200Characters_accepted() {
    assertThat(create(admin, "n".repeat(200), "0").getName()).hasSize(200);
  }

  @Test
  void createKey_nameWithNulCharacter_invalidArgumentNamingName() {
    refused(() -> admin.createKey(CreateKeyRequest.newBuilder().setName("a\u0000b").build()),
        Status.Code.INVALID_ARGUMENT, "name must not contain");
  }

  // ---- paging ----

  @ParameterizedTest(name = "page_size {0}")
  @ValueSource(ints = {-1, 1001, Integer.MAX_VALUE, Integer.MIN_VALUE})
  void listKeys_pageSizeOutOfRange_invalidArgumentNamingPageSize(int size) {
    refused(() -> admin.listKeys(ListKeysRequest.newBuilder().setPageSize(size).build()),
        Status.Code.INVALID_ARGUMENT, "page_size must be between 0 and 1000");
  }

  @ParameterizedTest(name = "page_token ''{0}''")
  @ValueSource(strings = {"abc", "!!!", "YWZ0ZXI6LTE", "YWZ0ZXI6eA", "Zm9vOjE"})
  void listKeys_foreignPageToken_invalidArgumentNamingPageToken(String token) {
    refused(() -> admin.listKeys(ListKeysRequest.newBuilder().setPageToken(token).build()),
        Status.Code.INVALID_ARGUMENT, "page_token is not a token this server issued");
  }
}
