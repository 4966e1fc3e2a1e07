package io.quotaauthority.admin;

import static io.quotaauthority.admin.AdminFixtures.assertStatus;
import static io.quotaauthority.admin.AdminFixtures.create;
import static io.quotaauthority.admin.AdminFixtures.snapshot;
import static io.quotaauthority.admin.AdminFixtures.ts;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import com.google.protobuf.FieldMask;
import com.google.protobuf.Timestamp;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.quotaauthority.keys.KeyIds;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.ClearExpirationRequest;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc.KeyAdminServiceBlockingStub;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.stream.Stream;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every refused admin call: the exact status code, a message starting with the field it names, and
 * api_keys and key_audit exactly as they were.
 */
class KeyAdminRejectionIT {
  private static TestDatabase db;
  private static TestServer server;
  private static KeyAdminServiceBlockingStub admin;

  /** A live key the refused calls aim at. */
  private static ApiKey target;

  /** Another live key, for tokens issued for the target. */
  private static ApiKey other;

  /** A soft-deleted key. */
  private static ApiKey deleted;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
    admin = server.admin();
    target = create(admin, "target", "10");
    other = create(admin, "other", "10");
    deleted = create(admin, "deleted", "10");
    // Two ledger rows for the target, so ListUsage with pages of one issues a token.
    for (String report : List.of("r-1", "r-2")) {
      AdminFixtures.sql(
          db,
          "INSERT INTO usage_events (report_id, key_id, cost, occurred_at) VALUES (?, ?, 0, now())",
          report,
          Long.parseLong(target.getId()));
    }
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
    return UpdateKeyRequest.newBuilder()
        .setKey(key)
        .setUpdateMask(FieldMask.newBuilder().addAllPaths(List.of(paths)))
        .build();
  }

  // ---- authentication ----

  @Test
  void createKey_noAuthorizationHeader_unauthenticatedNothingWritten() {
    KeyAdminServiceBlockingStub anonymous =
        KeyAdminServiceGrpc.newBlockingStub(server.adminChannel());

    refused(
        () -> anonymous.createKey(validCreate()),
        Status.Code.UNAUTHENTICATED,
        "missing authorization: Bearer <admin token>");
  }

  @Test
  void createKey_wrongToken_unauthenticatedNothingWritten() {
    refused(
        () -> withAuthorization("Bearer not-the-token").createKey(validCreate()),
        Status.Code.UNAUTHENTICATED,
        "wrong admin token");
  }

  @Test
  void createKey_tokenWithExtraCharacter_unauthenticated() {
    refused(
        () -> withAuthorization("Bearer " + TestServer.ADMIN_TOKEN + "x").createKey(validCreate()),
        Status.Code.UNAUTHENTICATED,
        "wrong admin token");
  }

  @ParameterizedTest(name = "authorization: ''{0}''")
  @ValueSource(
      strings = {
        "Basic dGVzdC1hZG1pbi10b2tlbg==",
        "Token " + TestServer.ADMIN_TOKEN,
        TestServer.ADMIN_TOKEN,
        "Bearer",
        "Bearer" + TestServer.ADMIN_TOKEN
      })
  void createKey_wrongScheme_unauthenticatedNothingWritten(String header) {
    refused(
        () -> withAuthorization(header).createKey(validCreate()),
        Status.Code.UNAUTHENTICATED,
        "authorization must be 'Bearer <admin token>'");
  }

  @Test
  void createKey_emptyBearerToken_unauthenticated() {
    refused(
        () -> withAuthorization("Bearer ").createKey(validCreate()),
        Status.Code.UNAUTHENTICATED,
        "wrong admin token");
  }

  @Test
  void mutatingCalls_wrongToken_unauthenticatedNothingWritten() {
    KeyAdminServiceBlockingStub wrong = withAuthorization("Bearer wrong");
    String id = target.getId();

    refused(
        () -> wrong.getKey(GetKeyRequest.newBuilder().setId(id).build()),
        Status.Code.UNAUTHENTICATED,
        "wrong");
    refused(
        () -> wrong.listKeys(ListKeysRequest.getDefaultInstance()),
        Status.Code.UNAUTHENTICATED,
        "wrong");
    refused(
        () -> wrong.updateKey(updateOf(target.toBuilder().setName("x").build(), "name")),
        Status.Code.UNAUTHENTICATED,
        "wrong");
    refused(
        () -> wrong.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()),
        Status.Code.UNAUTHENTICATED,
        "wrong");
    refused(
        () -> wrong.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()),
        Status.Code.UNAUTHENTICATED,
        "wrong");
    refused(
        () -> wrong.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()),
        Status.Code.UNAUTHENTICATED,
        "wrong");
  }

  @Test
  void createKey_lowercaseBearerScheme_accepted() {
    ApiKey k =
        withAuthorization("bearer " + TestServer.ADMIN_TOKEN)
            .createKey(CreateKeyRequest.newBuilder().setName("lowercase").build())
            .getKey();

    assertThat(k.getName()).isEqualTo("lowercase");
  }

  // ---- ids ----

  /**
   * Each spelling Long.parseLong reads as a number (or as the target's id) but the id rule refuses.
   * The target is key 1, so "+1", "01" and "١" would have reached it: ResetQuota once ran on them.
   */
  @ParameterizedTest(name = "id ''{0}''")
  @ValueSource(
      strings = {
        "abc",
        "-1",
        "0",
        "1.5",
        " 1",
        "1 ",
        "0x1",
        "99999999999999999999",
        "9223372036854775808",
        "+1",
        "01",
        "0001",
        "-0",
        "1e0",
        "1_0",
        "\u0661", // Arabic-Indic one
        "\u06f1", // extended Arabic-Indic (Persian) one
        "\uff11", // full-width one
        "\u0967", // Devanagari one
        "\u09e7", // Bengali one
        "1\u200b", // a zero-width space after the digit
        "\u202e1"
      })
  void everyIdRpc_malformedId_invalidArgumentNamingId(String id) {
    assertThat(target.getId()).isEqualTo("1");
    refused(
        () -> admin.getKey(GetKeyRequest.newBuilder().setId(id).build()),
        Status.Code.INVALID_ARGUMENT,
        "id " + KeyIds.RULE);
    refused(
        () -> admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()),
        Status.Code.INVALID_ARGUMENT,
        "id " + KeyIds.RULE);
    refused(
        () -> admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()),
        Status.Code.INVALID_ARGUMENT,
        "id " + KeyIds.RULE);
    refused(
        () -> admin.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()),
        Status.Code.INVALID_ARGUMENT,
        "id " + KeyIds.RULE);
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setId(id).setName("x").build(), "name")),
        Status.Code.INVALID_ARGUMENT,
        "key.id " + KeyIds.RULE);
    refused(
        () -> admin.listUsage(ListUsageRequest.newBuilder().setKeyId(id).build()),
        Status.Code.INVALID_ARGUMENT,
        "key_id " + KeyIds.RULE);
  }

  @Test
  void getKey_malformedId_messageShowsTheCodePointsNotTheRawText() {
    StatusRuntimeException e =
        assertStatus(
            () -> admin.getKey(GetKeyRequest.newBuilder().setId("\u202e1\n").build()),
            Status.Code.INVALID_ARGUMENT,
            "id ");

    assertThat(e.getStatus().getDescription()).endsWith("got '\\u{202E}1\\u{000A}'");
  }

  @Test
  void everyIdRpc_largestId_parsedAndLookedUp() {
    String id = Long.toString(Long.MAX_VALUE); // 9223372036854775807: a valid id, just not a key
    String message = "id: no key with id " + id;

    refused(
        () -> admin.getKey(GetKeyRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setId(id).setName("x").build(), "name")),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.listUsage(ListUsageRequest.newBuilder().setKeyId(id).build()),
        Status.Code.NOT_FOUND,
        "key_id: no key with id " + id);
  }

  @Test
  void everyIdRpc_emptyId_invalidArgumentNamingId() {
    refused(
        () -> admin.getKey(GetKeyRequest.getDefaultInstance()),
        Status.Code.INVALID_ARGUMENT,
        "id must not be empty");
    refused(
        () -> admin.deleteKey(DeleteKeyRequest.getDefaultInstance()),
        Status.Code.INVALID_ARGUMENT,
        "id must not be empty");
    refused(
        () -> admin.resetQuota(ResetQuotaRequest.getDefaultInstance()),
        Status.Code.INVALID_ARGUMENT,
        "id must not be empty");
    refused(
        () -> admin.clearExpiration(ClearExpirationRequest.getDefaultInstance()),
        Status.Code.INVALID_ARGUMENT,
        "id must not be empty");
    refused(
        () -> admin.updateKey(updateOf(ApiKey.newBuilder().setName("x").build(), "name")),
        Status.Code.INVALID_ARGUMENT,
        "key.id must not be empty");
  }

  @Test
  void everyIdRpc_unknownId_notFound() {
    String id = "987654321";
    String message = "id: no key with id 987654321";

    refused(
        () -> admin.getKey(GetKeyRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setId(id).setName("x").build(), "name")),
        Status.Code.NOT_FOUND,
        message);
  }

  @Test
  void everyIdRpc_deletedKey_notFound() {
    String id = deleted.getId();
    String message = "id: no key with id " + id;

    refused(
        () -> admin.getKey(GetKeyRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()),
        Status.Code.NOT_FOUND,
        message);
    refused(
        () -> admin.updateKey(updateOf(deleted.toBuilder().setName("revived").build(), "name")),
        Status.Code.NOT_FOUND,
        message);
    assertThat(admin.listKeys(ListKeysRequest.newBuilder().setPageSize(1000).build()).getKeysList())
        .extracting(ApiKey::getId)
        .contains(target.getId())
        .doesNotContain(id);
  }

  // ---- money ----

  @ParameterizedTest(name = "quota_usd ''{0}''")
  @ValueSource(
      strings = {
        "-1",
        "NaN",
        "1e3",
        "1000000000000",
        "0.123456789",
        "1.",
        " 1",
        "+1",
        "-0",
        ".5",
        "1,5",
        "Infinity",
        "12.5 "
      })
  void createAndUpdate_malformedQuota_invalidArgumentNamingQuotaUsd(String quota) {
    refused(
        () ->
            admin.createKey(
                CreateKeyRequest.newBuilder().setName("bad-money").setQuotaUsd(quota).build()),
        Status.Code.INVALID_ARGUMENT,
        "quota_usd must be a decimal USD amount");
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setQuotaUsd(quota).build(), "quota_usd")),
        Status.Code.INVALID_ARGUMENT,
        "quota_usd must be a decimal USD amount");
  }

  // ---- concurrency cap ----

  @ParameterizedTest(name = "max_concurrent_requests {0}")
  @ValueSource(ints = {-1, 1_000_001, Integer.MIN_VALUE, Integer.MAX_VALUE})
  void createAndUpdate_capOutOfRange_invalidArgumentNamingTheFieldNothingChanged(int cap) {
    String message =
        "max_concurrent_requests must be a whole number from 0 (no cap) to 1000000, got " + cap;
    refused(
        () ->
            admin.createKey(
                CreateKeyRequest.newBuilder()
                    .setName("bad-cap")
                    .setMaxConcurrentRequests(cap)
                    .build()),
        Status.Code.INVALID_ARGUMENT,
        message);
    refused(
        () ->
            admin.updateKey(
                updateOf(
                    target.toBuilder().setMaxConcurrentRequests(cap).build(),
                    "max_concurrent_requests")),
        Status.Code.INVALID_ARGUMENT,
        message);
    // With a valid field beside it, still nothing of the update is written.
    refused(
        () ->
            admin.updateKey(
                updateOf(
                    target.toBuilder().setName("renamed").setMaxConcurrentRequests(cap).build(),
                    "name",
                    "max_concurrent_requests")),
        Status.Code.INVALID_ARGUMENT,
        message);
    assertThat(
            admin
                .getKey(GetKeyRequest.newBuilder().setId(target.getId()).build())
                .getKey()
                .getMaxConcurrentRequests())
        .isZero();
  }

  @Test
  void updateKey_emptyQuotaUnderMask_invalidArgumentNamingQuotaUsdNothingChanged() {
    // The fail-open case: an empty amount must not turn the 10 USD quota into 0 (unlimited).
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setQuotaUsd("").build(), "quota_usd")),
        Status.Code.INVALID_ARGUMENT,
        "quota_usd must not be empty when update_mask names quota_usd");
    refused(
        () ->
            admin.updateKey(
                updateOf(
                    target.toBuilder().setName("renamed").setQuotaUsd("").build(),
                    "name",
                    "quota_usd")),
        Status.Code.INVALID_ARGUMENT,
        "quota_usd must not be empty");
    assertThat(
            admin
                .getKey(GetKeyRequest.newBuilder().setId(target.getId()).build())
                .getKey()
                .getQuotaUsd())
        .isEqualTo("10");
  }

  // ---- expiry ----

  @Test
  void updateKey_expiresAtUnsetUnderMask_invalidArgumentNamingExpiresAtNothingChanged() {
    ApiKey expiring =
        admin
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("expiring")
                    .setExpiresAt(ts(Instant.now().plus(1, ChronoUnit.DAYS)))
                    .build())
            .getKey();

    // An unset expiry under the mask would make the key never expire; ClearExpiration does that.
    refused(
        () ->
            admin.updateKey(updateOf(expiring.toBuilder().clearExpiresAt().build(), "expires_at")),
        Status.Code.INVALID_ARGUMENT,
        "key.expires_at must be set when update_mask names expires_at");
  }

  @Test
  void createKey_expiresAtInThePast_invalidArgumentNamingExpiresAt() {
    refused(
        () ->
            admin.createKey(
                CreateKeyRequest.newBuilder()
                    .setName("past")
                    .setExpiresAt(ts(Instant.now().minus(1, ChronoUnit.SECONDS)))
                    .build()),
        Status.Code.INVALID_ARGUMENT,
        "expires_at must be in the future");
  }

  @Test
  void createKey_expiresAtEpoch_invalidArgumentNamingExpiresAt() {
    refused(
        () ->
            admin.createKey(
                CreateKeyRequest.newBuilder()
                    .setName("epoch")
                    .setExpiresAt(Timestamp.getDefaultInstance())
                    .build()),
        Status.Code.INVALID_ARGUMENT,
        "expires_at must be in the future");
  }

  @Test
  void createAndUpdate_invalidTimestamp_invalidArgumentNamingExpiresAt() {
    Timestamp bad =
        Timestamp.newBuilder()
            .setSeconds(Instant.now().getEpochSecond() + 3600)
            .setNanos(-1)
            .build();
    Timestamp tooLate = Timestamp.newBuilder().setSeconds(253_402_300_800L).build();

    refused(
        () ->
            admin.createKey(
                CreateKeyRequest.newBuilder().setName("bad-ts").setExpiresAt(bad).build()),
        Status.Code.INVALID_ARGUMENT,
        "expires_at is not a valid timestamp");
    refused(
        () ->
            admin.createKey(
                CreateKeyRequest.newBuilder().setName("bad-ts").setExpiresAt(tooLate).build()),
        Status.Code.INVALID_ARGUMENT,
        "expires_at is not a valid timestamp");
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setExpiresAt(bad).build(), "expires_at")),
        Status.Code.INVALID_ARGUMENT,
        "key.expires_at is not a valid timestamp");
  }

  // ---- update mask and status ----

  @Test
  void updateKey_emptyMask_invalidArgumentNamingUpdateMask() {
    refused(
        () ->
            admin.updateKey(
                UpdateKeyRequest.newBuilder().setKey(target.toBuilder().setName("x")).build()),
        Status.Code.INVALID_ARGUMENT,
        "update_mask must name at least one of"
            + " [name, quota_usd, expires_at, status, max_concurrent_requests,"
            + " hold_usd_per_request, hold_expiry, ip_allow, ip_deny, model_allow, budget_period,"
            + " budget_reset_time, budget_time_zone, window_5h_usd, window_1d_usd, window_7d_usd,"
            + " window_30d_usd, requests_per_minute, tokens_per_minute]");
  }

  @ParameterizedTest(name = "path ''{0}''")
  @ValueSource(
      strings = {
        "quota",
        "quota_used_usd",
        "id",
        "key_prefix",
        "key.name",
        "Name",
        "",
        "concurrent_requests",
        "maxConcurrentRequests"
      })
  void updateKey_unknownMaskPath_invalidArgumentNamingUpdateMask(String path) {
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setName("x").build(), "name", path)),
        Status.Code.INVALID_ARGUMENT,
        "update_mask has unknown path '" + path + "'");
  }

  @ParameterizedTest(name = "status {0}")
  @ValueSource(
      strings = {"KEY_STATUS_UNSPECIFIED", "KEY_STATUS_EXPIRED", "KEY_STATUS_QUOTA_EXHAUSTED"})
  void updateKey_statusNotSettable_invalidArgumentNamingStatus(String status) {
    refused(
        () ->
            admin.updateKey(
                updateOf(
                    target.toBuilder().setStatus(KeyStatus.valueOf(status)).build(), "status")),
        Status.Code.INVALID_ARGUMENT,
        "key.status must be KEY_STATUS_ACTIVE or KEY_STATUS_DISABLED");
  }

  @Test
  void updateKey_unknownStatusNumber_invalidArgumentNamingStatus() {
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setStatusValue(99).build(), "status")),
        Status.Code.INVALID_ARGUMENT,
        "key.status must be KEY_STATUS_ACTIVE or KEY_STATUS_DISABLED");
  }

  @Test
  void updateKey_validPathThenBadValue_nothingChanged() {
    refused(
        () ->
            admin.updateKey(
                updateOf(
                    target.toBuilder().setName("renamed").setQuotaUsd("-5").build(),
                    "name",
                    "quota_usd")),
        Status.Code.INVALID_ARGUMENT,
        "quota_usd must be a decimal USD amount");
  }

  // ---- names ----

  @ParameterizedTest(name = "name ''{0}''")
  @ValueSource(strings = {"", " ", "   ", "\u00a0", "\u00a0\u00a0", "\u3000", "\u2007\u202f"})
  void createAndUpdate_blankName_invalidArgumentNamingName(String name) {
    refused(
        () -> admin.createKey(CreateKeyRequest.newBuilder().setName(name).build()),
        Status.Code.INVALID_ARGUMENT,
        "name must not be empty");
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setName(name).build(), "name")),
        Status.Code.INVALID_ARGUMENT,
        "name must not be empty");
  }

  private static final String EMOJI = "\ud83d\ude00"; // U+1F600: one code point, two UTF-16 units

  /** Name, and the start of the message: the field first, then what is wrong. */
  static Stream<Arguments> refusedNames() {
    return Stream.of(
        arguments("a\u0000b", "name must not contain control characters (U+0000 at character 2)"),
        arguments("\t", "name must not contain control characters (U+0009"),
        arguments("team\na", "name must not contain control characters (U+000A at character 5)"),
        arguments("team\r", "name must not contain control characters (U+000D"),
        arguments(
            "x\u001b[2Jy", "name must not contain control characters (U+001B at character 2)"),
        arguments("nel\u0085", "name must not contain control characters (U+0085"),
        arguments("c1\u009b", "name must not contain control characters (U+009B"),
        arguments(
            "evil\u202etxt.exe",
            "name must not contain bidirectional override or isolate characters (U+202E"),
        arguments(
            "\u202dx",
            "name must not contain bidirectional override or isolate characters (U+202D"),
        arguments(
            "x\u2067y\u2069",
            "name must not contain bidirectional override or isolate characters (U+2067"),
        arguments("\u200b", "name must not contain invisible format characters"),
        arguments("\u200b\u200c\u200d", "name must not contain invisible format characters"),
        arguments(
            "\ufeffteam",
            "name must not contain invisible format characters (zero-width, BOM and the like)"
                + " (U+FEFF at character 1)"),
        arguments("a\u200eb", "name must not contain invisible format characters"),
        arguments("a\u2060b", "name must not contain invisible format characters"),
        arguments("a\u2028b", "name must not contain line or paragraph separators (U+2028"),
        // (A lone surrogate cannot cross the wire: protobuf sends it as '?'. KeyNamesTest covers
        // it.)
        arguments(" team", "name must not start or end with whitespace"),
        arguments("team ", "name must not start or end with whitespace"),
        arguments("team\u00a0", "name must not start or end with whitespace"),
        arguments(
            "n".repeat(201), "name must be at most 200 characters (Unicode code points), got 201"),
        arguments(
            EMOJI.repeat(201),
            "name must be at most 200 characters (Unicode code points), got 201"),
        arguments(
            "\u00e9".repeat(201),
            "name must be at most 200 characters (Unicode code points), got 201"));
  }

  @ParameterizedTest(name = "[{index}] {1}")
  @MethodSource("refusedNames")
  void createAndUpdate_refusedName_invalidArgumentNamingNameNothingWritten(
      String name, String message) {
    refused(
        () -> admin.createKey(CreateKeyRequest.newBuilder().setName(name).setQuotaUsd("1").build()),
        Status.Code.INVALID_ARGUMENT,
        message);
    refused(
        () -> admin.updateKey(updateOf(target.toBuilder().setName(name).build(), "name")),
        Status.Code.INVALID_ARGUMENT,
        message);
  }

  @Test
  void createKey_nameOf200Characters_accepted() {
    assertThat(create(admin, "n".repeat(200), "0").getName()).hasSize(200);
  }

  @Test
  void createAndUpdate_nameOf200Emoji_storedAndReturnedExactly() {
    String name = EMOJI.repeat(200); // 400 UTF-16 units, 800 UTF-8 bytes, 200 characters

    ApiKey k = create(admin, name, "0");
    assertThat(k.getName()).isEqualTo(name);
    assertThat(
            db.scalar("SELECT length(name) FROM api_keys WHERE id = ?", Long.parseLong(k.getId())))
        .isEqualTo(200);
    String other = "\u00e9".repeat(199) + EMOJI;
    assertThat(
            admin
                .updateKey(updateOf(k.toBuilder().setName(other).build(), "name"))
                .getKey()
                .getName())
        .isEqualTo(other);
    assertThat(admin.getKey(GetKeyRequest.newBuilder().setId(k.getId()).build()).getKey().getName())
        .isEqualTo(other);
  }

  @ParameterizedTest(name = "name ''{0}''")
  @ValueSource(
      strings = {
        "a",
        "team a",
        "a\u00a0b",
        "\u65e5\u672c\u8a9e",
        "\u05e2\u05d1\u05e8\u05d9\u05ea",
        "e\u0301",
        "\u2764\ufe0f"
      })
  void createKey_ordinaryUnicodeName_storedExactly(String name) {
    ApiKey k = create(admin, name, "0");

    assertThat(admin.getKey(GetKeyRequest.newBuilder().setId(k.getId()).build()).getKey().getName())
        .isEqualTo(name);
  }

  // ---- paging ----

  @ParameterizedTest(name = "page_size {0}")
  @ValueSource(ints = {-1, 1001, Integer.MAX_VALUE, Integer.MIN_VALUE})
  void listKeys_pageSizeOutOfRange_invalidArgumentNamingPageSize(int size) {
    refused(
        () -> admin.listKeys(ListKeysRequest.newBuilder().setPageSize(size).build()),
        Status.Code.INVALID_ARGUMENT,
        "page_size must be between 0 and 1000");
  }

  @ParameterizedTest(name = "page_token ''{0}''")
  @ValueSource(
      strings = {
        "abc",
        "!!!",
        "YWZ0ZXI6LTE",
        "YWZ0ZXI6eA",
        "Zm9vOjE",
        "YWZ0ZXI6MQ", // "after:1", the unbound format of earlier versions
        "a2V5cy8rMQ", // "keys/+1"
        "a2V5cy8wMQ", // "keys/01"
        "a2V5cy_ZoQ", // "keys/" + Arabic-Indic one in UTF-8
        "a2V5cy8w", // "keys/0"
        "a2V5cy8x=", // "keys/1" with padding: a second spelling
        "a2V5cy80Mh", // "keys/42" with stray low bits: another second spelling
        "dXNhZ2U6MS8x"
      }) // "usage:1/1" would be a ListUsage token; it is not one for ListKeys either
  void listKeys_foreignPageToken_invalidArgumentNamingPageToken(String token) {
    StatusRuntimeException e =
        assertStatus(
            () -> admin.listKeys(ListKeysRequest.newBuilder().setPageToken(token).build()),
            Status.Code.INVALID_ARGUMENT,
            "page_token ");
    assertThat(e.getStatus().getDescription())
        .isIn(
            "page_token is not a token this server issued",
            "page_token was issued by ListUsage for key_id 1, not ListKeys; pass back the next_page_token of the same call");
  }

  /** A real ListKeys token (two keys, pages of one) and a real ListUsage token of the target. */
  private static String listKeysToken() {
    String token =
        admin.listKeys(ListKeysRequest.newBuilder().setPageSize(1).build()).getNextPageToken();
    assertThat(token).isNotEmpty();
    return token;
  }

  private static String listUsageToken(ApiKey key) {
    String token =
        admin
            .listUsage(ListUsageRequest.newBuilder().setKeyId(key.getId()).setPageSize(1).build())
            .getNextPageToken();
    assertThat(token).isNotEmpty();
    return token;
  }

  @Test
  void listUsage_listKeysToken_invalidArgumentNamingPageToken() {
    refused(
        () ->
            admin.listUsage(
                ListUsageRequest.newBuilder()
                    .setKeyId(target.getId())
                    .setPageToken(listKeysToken())
                    .build()),
        Status.Code.INVALID_ARGUMENT,
        "page_token was issued by ListKeys, not ListUsage for key_id " + target.getId());
  }

  @Test
  void listUsage_otherKeysToken_invalidArgumentNamingPageToken() {
    String token = listUsageToken(target);

    refused(
        () ->
            admin.listUsage(
                ListUsageRequest.newBuilder().setKeyId(other.getId()).setPageToken(token).build()),
        Status.Code.INVALID_ARGUMENT,
        "page_token was issued by ListUsage for key_id "
            + target.getId()
            + ", not ListUsage for key_id "
            + other.getId());
    // The same token still pages the key it was issued for.
    assertThat(
            admin
                .listUsage(
                    ListUsageRequest.newBuilder()
                        .setKeyId(target.getId())
                        .setPageSize(1)
                        .setPageToken(token)
                        .build())
                .getEventsList())
        .hasSize(1);
  }

  @Test
  void listKeys_listUsageToken_invalidArgumentNamingPageToken() {
    refused(
        () ->
            admin.listKeys(
                ListKeysRequest.newBuilder().setPageToken(listUsageToken(target)).build()),
        Status.Code.INVALID_ARGUMENT,
        "page_token was issued by ListUsage for key_id " + target.getId() + ", not ListKeys");
  }

  @ParameterizedTest(name = "page_token ''{0}''")
  @ValueSource(
      strings = {
        "abc",
        "a2V5cy8x",
        "YWZ0ZXI6MQ",
        "dXNhZ2U6KzEvMQ"
      }) // ..., "keys/1", "after:1", "usage:+1/1"
  void listUsage_foreignPageToken_invalidArgumentNamingPageToken(String token) {
    refused(
        () ->
            admin.listUsage(
                ListUsageRequest.newBuilder().setKeyId(target.getId()).setPageToken(token).build()),
        Status.Code.INVALID_ARGUMENT,
        "page_token ");
  }

  @ParameterizedTest(name = "page_size {0}")
  @ValueSource(ints = {-1, 1001, Integer.MIN_VALUE})
  void listUsage_pageSizeOutOfRange_invalidArgumentNamingPageSize(int size) {
    refused(
        () ->
            admin.listUsage(
                ListUsageRequest.newBuilder().setKeyId(target.getId()).setPageSize(size).build()),
        Status.Code.INVALID_ARGUMENT,
        "page_size must be between 0 and 1000");
  }
}
