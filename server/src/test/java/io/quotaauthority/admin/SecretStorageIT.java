package io.quotaauthority.admin;

import static io.quotaauthority.admin.AdminFixtures.createWithSecret;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.google.protobuf.FieldMask;
import com.google.protobuf.Timestamp;
import io.quotaauthority.proto.v1.ClearExpirationRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** The secret CreateKey returns is kept nowhere: not in any column, not in the log. */
class SecretStorageIT {
  private static TestDatabase db;
  private static TestServer server;
  private static ListAppender<ILoggingEvent> log;
  private static String secret;
  private static String id;

  @BeforeAll
  static void start() {
    log = new ListAppender<>();
    log.start();
    root().addAppender(log);
    db = TestDatabase.create();
    server = TestServer.start(db);
    CreateKeyResponse created = createWithSecret(server.admin(), "secret-holder", "5");
    secret = created.getSecret();
    id = created.getKey().getId();
    // Walk the key through every change so every audit action is written too.
    var admin = server.admin();
    // An expiry too, so that clear-expiration below changes something (a no-op writes no audit
    // row).
    admin.updateKey(
        UpdateKeyRequest.newBuilder()
            .setKey(
                created.getKey().toBuilder()
                    .setName("renamed")
                    .setExpiresAt(Timestamp.newBuilder().setSeconds(4_102_444_800L)))
            .setUpdateMask(FieldMask.newBuilder().addPaths("name").addPaths("expires_at"))
            .build());
    admin.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build());
    admin.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build());
    admin.getKey(GetKeyRequest.newBuilder().setId(id).build());
    admin.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build());
  }

  @AfterAll
  static void stop() throws Exception {
    root().detachAppender(log);
    server.close();
    db.close();
  }

  private static Logger root() {
    return (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
  }

  /** table.column of every text, varchar, jsonb and bytea column in the public schema. */
  private static List<String[]> textColumns() {
    return db.transactions()
        .inTransaction(
            c -> {
              List<String[]> out = new ArrayList<>();
              try (ResultSet rs =
                  c.createStatement()
                      .executeQuery(
                          """
          SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public'
             AND data_type IN ('text', 'character varying', 'character', 'jsonb', 'json', 'bytea')
           ORDER BY table_name, column_name""")) {
                while (rs.next()) {
                  out.add(new String[] {rs.getString(1), rs.getString(2), rs.getString(3)});
                }
              }
              return out;
            });
  }

  private static long rowsContaining(String table, String column, String type, String needle) {
    String predicate =
        type.equals("bytea")
            ? "position(convert_to(?, 'UTF8') IN " + column + ") > 0"
            : "strpos(" + column + "::text, ?) > 0";
    return db.transactions()
        .inTransaction(
            c -> {
              try (PreparedStatement ps =
                  c.prepareStatement("SELECT count(*) FROM " + table + " WHERE " + predicate)) {
                ps.setString(1, needle);
                try (ResultSet rs = ps.executeQuery()) {
                  rs.next();
                  return rs.getLong(1);
                }
              }
            });
  }

  @Test
  void database_everyTextColumn_holdsNeitherSecretNorItsRandomPart() {
    List<String[]> columns = textColumns();
    String randomPart = secret.substring(3);
    String tail = secret.substring(8);

    assertThat(columns)
        .extracting(col -> col[0] + "." + col[1])
        .contains(
            "api_keys.name",
            "api_keys.key_hash",
            "api_keys.key_prefix",
            "api_keys.status",
            "key_audit.action",
            "key_audit.old_value",
            "key_audit.new_value",
            "key_audit.actor");
    // The scan does find what is there: the display prefix, in exactly one row.
    assertThat(rowsContaining("api_keys", "key_prefix", "text", secret.substring(0, 8)))
        .isEqualTo(1);
    for (String[] col : columns) {
      for (String needle : List.of(secret, randomPart, tail)) {
        assertThat(rowsContaining(col[0], col[1], col[2], needle))
            .as("%s.%s contains part of the secret", col[0], col[1])
            .isZero();
      }
    }
  }

  @Test
  void database_auditRows_written() {
    assertThat(db.count("SELECT count(*) FROM key_audit WHERE key_id = ?", Long.parseLong(id)))
        .isEqualTo(5);
  }

  @Test
  void database_keyHash_isSha256OfSecret() throws Exception {
    byte[] expected =
        MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8));

    assertThat((byte[]) db.scalar("SELECT key_hash FROM api_keys WHERE id = ?", Long.parseLong(id)))
        .isEqualTo(expected);
  }

  @Test
  void database_keyPrefix_isFirstEightCharacters() {
    assertThat(db.scalar("SELECT key_prefix FROM api_keys WHERE id = ?", Long.parseLong(id)))
        .isEqualTo(secret.substring(0, 8));
  }

  @Test
  void log_everyLine_holdsNeitherSecretNorAdminToken() {
    assertThat(log.list).isNotEmpty();
    assertThat(log.list)
        .extracting(ILoggingEvent::getFormattedMessage)
        .anyMatch(m -> m.contains("admin create key_id=" + id))
        .noneMatch(m -> m.contains(secret.substring(8)))
        .noneMatch(m -> m.contains(TestServer.ADMIN_TOKEN));
  }
}
