package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.quotaauthority.QuotaAuthority;
import io.quotaauthority.config.Settings;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.testing.TestServer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quick start: no QUOTA_DB_URL starts an embedded PostgreSQL under <data dir>/pg, and what was
 * written there is still there after a restart. The one slow test (about 10 s).
 */
class EmbeddedDefaultTest {
  @TempDir
  Path dataDir;

  /** Settings as Main builds them: an environment without QUOTA_DB_URL, and flags. */
  private Settings settings() {
    return Settings.load(Map.of("QUOTA_DATA_DIR", dataDir.toString(), "QUOTA_LOG_FORMAT", "text"),
        List.of("--authz-port", "0", "--metering-port", "0", "--admin-port=0", "--metrics-port", "0"));
  }

  private static <T> T withAdmin(QuotaAuthority app, String token,
      java.util.function.Function<KeyAdminServiceGrpc.KeyAdminServiceBlockingStub, T> call) throws Exception {
    ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", app.adminPort()).usePlaintext().build();
    try {
      return call.apply(KeyAdminServiceGrpc.newBlockingStub(channel).withInterceptors(TestServer.bearer(token))
          .withDeadlineAfter(30, TimeUnit.SECONDS));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void start_noDbUrl_embeddedDatabaseUnderDataDirSurvivesRestart() throws Exception {
    assertThat(settings().dbUrl()).isEmpty();
    ApiKey created;
    String token;
    try (QuotaAuthority app = QuotaAuthority.start(settings(), Clock.systemUTC())) {
      assertThat(app.database().jdbcUrl()).startsWith("jdbc:postgresql://localhost:");
      token = Files.readString(dataDir.resolve("admin-token"), StandardCharsets.UTF_8).trim();
      created = withAdmin(app, token, admin -> admin.createKey(
          CreateKeyRequest.newBuilder().setName("persisted").setQuotaUsd("1.25").build()).getKey());
    }
    assertThat(dataDir.resolve("pg").resolve("PG_VERSION")).exists();

    try (QuotaAuthority again = QuotaAuthority.start(settings(), Clock.systemUTC())) {
      ApiKey found = withAdmin(again, token, admin -> admin.getKey(
          GetKeyRequest.newBuilder().setId(created.getId()).build()).getKey());

      assertThat(found.getKeyPrefix()).isEqualTo(created.getKeyPrefix());
      assertThat(found.getName()).isEqualTo("persisted");
      assertThat(found.getQuotaUsd()).isEqualTo("1.25");
      assertThat(found.getCreatedAt()).isEqualTo(created.getCreatedAt());
    }
  }
}
