package io.quotaauthority.admin;

import static io.quotaauthority.admin.AdminFixtures.assertStatus;
import static io.quotaauthority.admin.AdminFixtures.lastAudit;
import static io.quotaauthority.admin.AdminFixtures.snapshot;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.FieldMask;
import io.grpc.Status;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.HoldExpiry;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc.KeyAdminServiceBlockingStub;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.util.List;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The reporter-hold fields of a key (README "Holds for usage-stream reporters") through the admin
 * API: set by CreateKey, changed by UpdateKey's two mask paths, shown by GetKey and ListKeys,
 * audited; bad values refused naming the field, with nothing written.
 */
class ReporterHoldAdminIT {
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

  private static UpdateKeyRequest updateOf(ApiKey key, String... paths) {
    return UpdateKeyRequest.newBuilder()
        .setKey(key)
        .setUpdateMask(FieldMask.newBuilder().addAllPaths(List.of(paths)))
        .build();
  }

  private static void refused(ThrowingCallable call, String prefix) {
    List<String> before = snapshot(db);
    assertStatus(call, Status.Code.INVALID_ARGUMENT, prefix);
    assertThat(snapshot(db)).isEqualTo(before);
  }

  @Test
  void createKey_withoutHoldFields_noHoldAndChargeAtExpiry() {
    ApiKey k = admin.createKey(CreateKeyRequest.newBuilder().setName("plain").build()).getKey();
    assertThat(k.getHoldUsdPerRequest()).isEqualTo("0");
    assertThat(k.getHoldExpiry()).isEqualTo(HoldExpiry.HOLD_EXPIRY_CHARGE);
  }

  @Test
  void createAndUpdate_holdFields_storedShownAndAudited() {
    ApiKey k =
        admin
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("held")
                    .setQuotaUsd("5")
                    .setHoldUsdPerRequest("0.12345678")
                    .setHoldExpiry(HoldExpiry.HOLD_EXPIRY_RELEASE)
                    .build())
            .getKey();
    assertThat(k.getHoldUsdPerRequest()).isEqualTo("0.12345678");
    assertThat(k.getHoldExpiry()).isEqualTo(HoldExpiry.HOLD_EXPIRY_RELEASE);
    assertThat(lastAudit(db, k.getId()).newValue())
        .containsEntry("hold_usd_per_request", "0.12345678")
        .containsEntry("hold_expiry", "release");
    assertThat(
            db.scalar(
                "SELECT hold_usd_per_request::text || ' ' || hold_expiry FROM api_keys WHERE id = ?",
                Long.parseLong(k.getId())))
        .isEqualTo("0.12345678 release");

    ApiKey u =
        admin
            .updateKey(
                updateOf(
                    k.toBuilder()
                        .setHoldUsdPerRequest("0.5")
                        .setHoldExpiry(HoldExpiry.HOLD_EXPIRY_CHARGE)
                        .build(),
                    "hold_usd_per_request",
                    "hold_expiry"))
            .getKey();
    assertThat(u.getHoldUsdPerRequest()).isEqualTo("0.5");
    assertThat(u.getHoldExpiry()).isEqualTo(HoldExpiry.HOLD_EXPIRY_CHARGE);
    assertThat(lastAudit(db, k.getId()).oldValue()).containsEntry("hold_expiry", "release");
    assertThat(lastAudit(db, k.getId()).newValue())
        .containsEntry("hold_usd_per_request", "0.5")
        .containsEntry("hold_expiry", "charge");
    assertThat(admin.getKey(GetKeyRequest.newBuilder().setId(k.getId()).build()).getKey())
        .isEqualTo(u);
    assertThat(admin.listKeys(ListKeysRequest.getDefaultInstance()).getKeysList()).contains(u);

    // Not in the mask: kept, whatever the message carries.
    ApiKey renamed =
        admin
            .updateKey(
                updateOf(
                    u.toBuilder().setName("renamed").setHoldUsdPerRequest("9").build(), "name"))
            .getKey();
    assertThat(renamed.getHoldUsdPerRequest()).isEqualTo("0.5");
    // "0" stops the holds.
    assertThat(
            admin
                .updateKey(
                    updateOf(
                        renamed.toBuilder().setHoldUsdPerRequest("0").build(),
                        "hold_usd_per_request"))
                .getKey()
                .getHoldUsdPerRequest())
        .isEqualTo("0");
  }

  @ParameterizedTest(name = "hold {0}")
  @ValueSource(strings = {"-1", "0.000000001", "1e3", "abc", "1000000000000"})
  void createAndUpdate_badHoldAmount_invalidArgumentNamingTheFieldNothingWritten(String bad) {
    refused(
        () ->
            admin.createKey(
                CreateKeyRequest.newBuilder().setName("bad").setHoldUsdPerRequest(bad).build()),
        "hold_usd_per_request");
    ApiKey k = admin.createKey(CreateKeyRequest.newBuilder().setName("target").build()).getKey();
    refused(
        () ->
            admin.updateKey(
                updateOf(k.toBuilder().setHoldUsdPerRequest(bad).build(), "hold_usd_per_request")),
        "key.hold_usd_per_request");
  }

  @Test
  void updateKey_emptyHoldOrUnspecifiedExpiryUnderTheMask_invalidArgumentNothingWritten() {
    ApiKey k =
        admin
            .createKey(
                CreateKeyRequest.newBuilder().setName("t").setHoldUsdPerRequest("0.10").build())
            .getKey();
    refused(
        () ->
            admin.updateKey(
                updateOf(k.toBuilder().setHoldUsdPerRequest("").build(), "hold_usd_per_request")),
        "key.hold_usd_per_request must not be empty");
    refused(
        () ->
            admin.updateKey(
                updateOf(
                    k.toBuilder().setHoldExpiry(HoldExpiry.HOLD_EXPIRY_UNSPECIFIED).build(),
                    "hold_expiry")),
        "key.hold_expiry must be HOLD_EXPIRY_CHARGE or HOLD_EXPIRY_RELEASE");
    refused(
        () ->
            admin.createKey(
                CreateKeyRequest.newBuilder().setName("x").setHoldExpiryValue(7).build()),
        "hold_expiry must be HOLD_EXPIRY_CHARGE or HOLD_EXPIRY_RELEASE");
  }
}
