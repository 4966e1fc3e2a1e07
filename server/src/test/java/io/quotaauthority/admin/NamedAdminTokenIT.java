package io.quotaauthority.admin;

import static io.quotaauthority.admin.AdminFixtures.assertStatus;
import static io.quotaauthority.admin.AdminFixtures.audits;
import static io.quotaauthority.admin.AdminFixtures.snapshot;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.FieldMask;
import io.grpc.ClientInterceptor;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.MetadataUtils;
import io.quotaauthority.admin.AdminFixtures.Audit;
import io.quotaauthority.config.ConfigException;
import io.quotaauthority.config.Tokens;
import io.quotaauthority.grpc.BearerTokenInterceptor;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc.KeyAdminServiceBlockingStub;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.assertj.core.groups.Tuple;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Named admin tokens (QUOTA_ADMIN_TOKENS_FILE) and a shared one read from QUOTA_ADMIN_TOKEN_FILE,
 * on a real server and PostgreSQL: key_audit.actor is the token's name, x-quota-actor only a claim.
 */
class NamedAdminTokenIT {
  static final String ALICE = "alice-token-0123456789abcdef0123456789";
  static final String BOB = "bob-token-0123456789abcdef0123456789ab";
  static final String SHARED = "shared-from-file-0123456789abcdef01234";

  private static TestDatabase db;
  private static TestServer server;
  private static Path dir;

  static Path privateFile(String name, String text) throws IOException {
    Path f = dir.resolve(name);
    Files.writeString(f, text, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
    return f;
  }

  @BeforeAll
  static void start() throws IOException {
    db = TestDatabase.create();
    dir = Files.createTempDirectory("qa-named-tokens");
    Path tokens =
        privateFile(
            "admin-tokens",
            "# who may administer keys\n\nalice:"
                + Tokens.digestHex(ALICE)
                + "\nbob:"
                + Tokens.digestHex(BOB)
                + "\n");
    Path shared = privateFile("admin-token", SHARED + "\n");
    Map<String, String> env = new HashMap<>();
    env.put("QUOTA_ADMIN_TOKENS_FILE", tokens.toString());
    env.put("QUOTA_ADMIN_TOKEN_FILE", shared.toString());
    server = TestServer.fromEnvironment(db, env);
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static KeyAdminServiceBlockingStub as(String token, String claimedActor) {
    List<ClientInterceptor> interceptors = new ArrayList<>(List.of(TestServer.bearer(token)));
    if (claimedActor != null) {
      Metadata md = new Metadata();
      md.put(BearerTokenInterceptor.ACTOR, claimedActor);
      interceptors.add(MetadataUtils.newAttachHeadersInterceptor(md));
    }
    return KeyAdminServiceGrpc.newBlockingStub(server.adminChannel())
        .withInterceptors(interceptors.toArray(ClientInterceptor[]::new));
  }

  private static ApiKey create(KeyAdminServiceBlockingStub stub, String name) {
    return stub.createKey(CreateKeyRequest.newBuilder().setName(name).setQuotaUsd("5").build())
        .getKey();
  }

  @Test
  void createKey_namedToken_auditedUnderItsName() {
    ApiKey k = create(as(ALICE, null), "by-alice");

    assertThat(audits(db, k.getId())).extracting(Audit::actor).containsExactly("admin:alice");
    assertThat(db.scalar("SELECT actor FROM key_audit WHERE key_id = ?", Long.parseLong(k.getId())))
        .isEqualTo("admin:alice");
  }

  @Test
  void updateKey_namedTokenClaimingSomeoneElse_claimRecordedBesideTheName() {
    ApiKey k = create(as(BOB, "bob"), "claims");
    as(ALICE, "bob")
        .updateKey(
            UpdateKeyRequest.newBuilder()
                .setKey(ApiKey.newBuilder().setId(k.getId()).setQuotaUsd("7"))
                .setUpdateMask(FieldMask.newBuilder().addPaths("quota_usd"))
                .build());

    assertThat(audits(db, k.getId()))
        .extracting(Audit::action, Audit::actor)
        .containsExactly(
            Tuple.tuple("create", "admin:bob (claims: bob)"),
            Tuple.tuple("update", "admin:alice (claims: bob)"));
  }

  @Test
  void createKey_sharedTokenReadFromFile_worksAuditedAsAdmin() {
    ApiKey k = create(as(SHARED, "ops"), "by-shared");

    assertThat(audits(db, k.getId()))
        .extracting(Audit::actor)
        .containsExactly("admin (claims: ops)");
    assertThat(as(SHARED, null).listKeys(ListKeysRequest.getDefaultInstance()).getKeysList())
        .extracting(ApiKey::getName)
        .contains("by-shared");
  }

  @Test
  void createKey_tokenNotInTheFile_unauthenticatedNothingWritten() {
    List<String> before = snapshot(db);

    assertStatus(
        () -> create(as("carol-token-0123456789abcdef0123456789", "alice"), "by-carol"),
        Status.Code.UNAUTHENTICATED,
        "wrong admin token");
    assertStatus(
        () -> create(as(Tokens.digestHex(ALICE), null), "digest-as-token"),
        Status.Code.UNAUTHENTICATED,
        "wrong admin token");
    assertThat(snapshot(db)).isEqualTo(before);
  }

  @Test
  void start_duplicateNameInTokensFile_refusedWithTheLineNumber() throws IOException {
    Path dup =
        privateFile(
            "dup-tokens",
            "alice:"
                + Tokens.digestHex(ALICE)
                + "\n# again\nalice:"
                + Tokens.digestHex(BOB)
                + "\n");

    assertThatThrownBy(
            () -> TestServer.fromEnvironment(db, Map.of("QUOTA_ADMIN_TOKENS_FILE", dup.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKENS_FILE: " + dup + " line 3: the name 'alice' is already on line 1");
  }
}
