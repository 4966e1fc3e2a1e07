package io.quotaauthority.admin;

import static io.quotaauthority.admin.AdminFixtures.create;
import static io.quotaauthority.admin.AdminFixtures.instant;
import static io.quotaauthority.admin.AdminFixtures.sql;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.FieldMask;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.Timestamps;
import io.quotaauthority.cli.CliRunner;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc.KeyAdminServiceBlockingStub;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * expires_at at the edge of the Timestamp range: the largest accepted value is stored truncated to
 * microseconds and reads back unchanged; a stored value no Timestamp can carry (a row from before
 * the truncation, or written by hand) is shown clamped and never breaks a listing.
 */
class ExpiryRangeIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * 9999-12-31T23:59:59.999999999Z: valid for a Timestamp, rounded into year 10000 by PostgreSQL.
   */
  private static final Timestamp LAST_NANO =
      Timestamp.newBuilder().setSeconds(253_402_300_799L).setNanos(999_999_999).build();

  private static final Instant LAST_MICRO = Instant.parse("9999-12-31T23:59:59.999999Z");

  private static TestDatabase db;
  private static TestServer server;
  private static KeyAdminServiceBlockingStub admin;
  private static CliRunner cli;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
    admin = server.admin();
    cli =
        new CliRunner(
            Map.of(
                "QUOTA_ADMIN_ADDR",
                "127.0.0.1:" + server.app().adminPort(),
                "QUOTA_ADMIN_TOKEN",
                TestServer.ADMIN_TOKEN));
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static ApiKey get(String id) {
    return admin.getKey(GetKeyRequest.newBuilder().setId(id).build()).getKey();
  }

  private static ApiKey listed(String id) {
    return admin
        .listKeys(ListKeysRequest.newBuilder().setPageSize(1000).build())
        .getKeysList()
        .stream()
        .filter(k -> k.getId().equals(id))
        .findFirst()
        .orElseThrow();
  }

  private static JsonNode cliListed(String id) throws Exception {
    CliRunner.Result r = cli.run("keys", "list", "-o", "json");
    assertThat(r.exitCode()).as(r.toString()).isZero();
    for (JsonNode k : JSON.readTree(r.out())) {
      if (k.get("id").asText().equals(id)) {
        return k;
      }
    }
    throw new AssertionError("key " + id + " not listed:\n" + r.out());
  }

  @Test
  void createKey_lastNanosecondOfYear9999_truncatedToMicrosAndRoundTrips() throws Exception {
    ApiKey k =
        admin
            .createKey(CreateKeyRequest.newBuilder().setName("far").setExpiresAt(LAST_NANO).build())
            .getKey();

    assertThat(instant(k.getExpiresAt())).isEqualTo(LAST_MICRO);
    assertThat(instant(get(k.getId()).getExpiresAt())).isEqualTo(LAST_MICRO);
    assertThat(instant(listed(k.getId()).getExpiresAt())).isEqualTo(LAST_MICRO);
    assertThat(Timestamps.isValid(listed(k.getId()).getExpiresAt())).isTrue();
    assertThat(cliListed(k.getId()).get("expires_at").asText())
        .isEqualTo("9999-12-31T23:59:59.999999Z");
    assertThat(
            db.scalar(
                "SELECT to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
                    + " FROM api_keys WHERE id = ?",
                Long.parseLong(k.getId())))
        .isEqualTo("9999-12-31 23:59:59.999999");
  }

  @Test
  void updateKey_lastNanosecondOfYear9999_truncatedToMicrosAndRoundTrips() {
    ApiKey k = create(admin, "far-update", "1");

    ApiKey u =
        admin
            .updateKey(
                UpdateKeyRequest.newBuilder()
                    .setKey(k.toBuilder().setExpiresAt(LAST_NANO))
                    .setUpdateMask(FieldMask.newBuilder().addPaths("expires_at"))
                    .build())
            .getKey();

    assertThat(instant(u.getExpiresAt())).isEqualTo(LAST_MICRO);
    assertThat(instant(get(k.getId()).getExpiresAt())).isEqualTo(LAST_MICRO);
  }

  @Test
  void listKeys_storedExpiryBeyondTimestampRange_shownClampedAndListingWorks() throws Exception {
    ApiKey year10000 = create(admin, "year-10000", "1");
    ApiKey infinity = create(admin, "infinity", "1");
    ApiKey minusInfinity = create(admin, "minus-infinity", "1");
    ApiKey ordinary = create(admin, "ordinary", "1");
    // What the old server stored for 9999-12-31T23:59:59.999999999Z, and what an operator may
    // write.
    sql(
        db,
        "UPDATE api_keys SET expires_at = '10000-01-01T00:00:00Z' WHERE id = ?",
        Long.parseLong(year10000.getId()));
    sql(
        db,
        "UPDATE api_keys SET expires_at = 'infinity' WHERE id = ?",
        Long.parseLong(infinity.getId()));
    sql(
        db,
        "UPDATE api_keys SET expires_at = '-infinity' WHERE id = ?",
        Long.parseLong(minusInfinity.getId()));

    assertThat(instant(listed(year10000.getId()).getExpiresAt())).isEqualTo(LAST_MICRO);
    assertThat(instant(listed(infinity.getId()).getExpiresAt())).isEqualTo(LAST_MICRO);
    assertThat(instant(listed(minusInfinity.getId()).getExpiresAt()))
        .isEqualTo(Instant.parse("0001-01-01T00:00:00Z"));
    assertThat(instant(get(year10000.getId()).getExpiresAt())).isEqualTo(LAST_MICRO);
    assertThat(cliListed(year10000.getId()).get("expires_at").asText())
        .isEqualTo("9999-12-31T23:59:59.999999Z");
    assertThat(cliListed(ordinary.getId()).get("name").asText()).isEqualTo("ordinary");
    // The key expired in the farthest past is still shown as expired.
    assertThat(listed(minusInfinity.getId()).getStatus().name()).isEqualTo("KEY_STATUS_EXPIRED");
  }
}
