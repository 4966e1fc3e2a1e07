package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.quotaauthority.config.Setting;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.time.Clock;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Usage accepted but not yet committed, and a queue that fills up. */
class UsagePendingIT {

  @Test
  void check_usageQueuedButNotCommitted_alreadyCountsOnThisInstance() throws Exception {
    // Groups wait up to 1.5 s before committing, so the window between "queued" and "acked" is
    // wide.
    try (TestDatabase db = TestDatabase.create();
        TestServer server =
            TestServer.start(
                db, Map.of(Setting.USAGE_COMMIT_INTERVAL, "1500ms"), Clock.systemUTC())) {
      CreateKeyResponse key =
          server
              .admin()
              .createKey(CreateKeyRequest.newBuilder().setName("p").setQuotaUsd("1").build());
      var authz = AuthorizationGrpc.newBlockingStub(server.authzChannel());
      CheckRequest request =
          EnvoyChecks.post("/v1/chat/completions").bearer(key.getSecret()).build();
      assertThat(authz.check(request).getStatus().getCode()).isZero();

      UsageStream st =
          UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
              .send(UsageStream.report("pending-1", key.getKey().getId(), "1"));
      int code = 0;
      for (int i = 0; i < 100 && code == 0; i++) {
        code = authz.check(request).getStatus().getCode();
        Thread.sleep(5);
      }

      assertThat(code).isEqualTo(8);
      assertThat(st.responses()).as("not yet acknowledged while Check already refuses").isEmpty();
      st.finish();
      assertThat(st.responses().get(0).getResult()).isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
      assertThat(authz.check(request).getStatus().getCode()).isEqualTo(8);
      assertThat(server.app().pendingUsage().of(Long.parseLong(key.getKey().getId())))
          .isEqualByComparingTo("0");
    }
  }

  @Test
  void reportUsage_queueFull_streamsHeldBackAndEveryReportStillChargedOnce() throws Exception {
    try (TestDatabase db = TestDatabase.create();
        TestServer server =
            TestServer.start(
                db,
                Map.of(Setting.USAGE_QUEUE_MAX, "8", Setting.USAGE_COMMIT_MAX, "4"),
                Clock.systemUTC())) {
      String key =
          server
              .admin()
              .createKey(CreateKeyRequest.newBuilder().setName("q").build())
              .getKey()
              .getId();
      UsageStream a = UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN);
      UsageStream b = UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN);

      for (int i = 0; i < 600; i++) {
        (i % 2 == 0 ? a : b).send(UsageStream.report("full-" + i, key, "0.001"));
      }
      a.finish();
      b.finish();

      assertThat(a.responses())
          .hasSize(300)
          .allMatch(r -> r.getResult() == UsageResult.USAGE_RESULT_ACCEPTED);
      assertThat(b.responses())
          .hasSize(300)
          .extracting(ReportUsageResponse::getResult)
          .containsOnly(UsageResult.USAGE_RESULT_ACCEPTED);
      assertThat(
              (BigDecimal)
                  db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", Long.parseLong(key)))
          .isEqualByComparingTo("0.6");
      assertThat(db.count("SELECT count(*) FROM usage_events")).isEqualTo(600);
    }
  }
}
