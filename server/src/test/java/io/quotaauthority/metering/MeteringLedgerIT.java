package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.UsageEvent;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Metering through a real server: Envoy's streams on the metering port (with the metering token),
 * charged through the real usage pipeline into PostgreSQL on 127.0.0.1:5432. The ledger, not a
 * stand-in, decides what a charge is.
 */
class MeteringLedgerIT {
  static final byte[] ANTHROPIC_REQUEST =
      "{\"model\":\"claude-haiku-4-5\",\"stream\":true,\"max_tokens\":256,\"messages\":[]}"
          .getBytes(StandardCharsets.UTF_8);

  /** One metered Anthropic streaming request, as Envoy's ext_proc filter walks it. */
  static void meterAnthropicStream(EnvoyStream envoy, long keyId, String requestId, long seed) {
    envoy.requestHeaders(
        EnvoyStream.requestHeaders(
            "/v1/messages", Long.toString(keyId), requestId, ANTHROPIC_REQUEST.length),
        false);
    envoy.requestBody(ANTHROPIC_REQUEST);
    envoy.responseHeaders(200, "text/event-stream");
    envoy.responseBodyInChunks(
        Fixtures.bytes("anthropic-messages-stream.sse"), new Random(seed), 120, true, at -> {});
    envoy.complete();
  }

  static void awaitRows(TestDatabase db, long keyId, long n) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    while (db.count("SELECT count(*) FROM usage_events WHERE key_id = ?", keyId) < n
        && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
  }

  @Test
  void process_sameRequestIdOnThreeRequests_chargesThreeTimesWithRequestIdKept() throws Exception {
    try (TestDatabase db = TestDatabase.create();
        TestServer app = TestServer.start(db)) {
      long keyId =
          Long.parseLong(
              app.admin()
                  .createKey(
                      CreateKeyRequest.newBuilder().setName("metered").setQuotaUsd("10").build())
                  .getKey()
                  .getId());
      // A client repeating one x-request-id (Envoy would keep it for an "internal" client).
      for (int i = 0; i < 3; i++) {
        meterAnthropicStream(new EnvoyStream(app.envoyMetering()), keyId, "9f1c2e7a-same-id", i);
      }
      awaitRows(db, keyId, 3);

      assertThat(db.count("SELECT count(*) FROM usage_events WHERE key_id = ?", keyId))
          .isEqualTo(3);
      assertThat(
              db.count(
                  "SELECT count(DISTINCT report_id) FROM usage_events WHERE key_id = ?"
                      + " AND report_id ~ '^m-[0-9a-f]{12}[A-Za-z0-9_-]{14}$'",
                  keyId))
          .isEqualTo(3);
      assertThat(
              db.count(
                  "SELECT count(*) FROM usage_events WHERE key_id = ?"
                      + " AND request_id = '9f1c2e7a-same-id'",
                  keyId))
          .isEqualTo(3);
      // 25 x 1.00 + 153 x 5.00 + 3000 x 0.10 = 1090 per million, three times
      assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", keyId))
          .isEqualByComparingTo("0.00327");
      assertThat(
              db.scalar(
                  "SELECT string_agg(DISTINCT provider || '/' || model || '/' || cost || '/'"
                      + " || input_tokens || '/' || output_tokens || '/' || cached_input_tokens || '/'"
                      + " || cache_write_tokens, ',') FROM usage_events WHERE key_id = ?",
                  keyId))
          // charged as the model the response names (the request said the alias claude-haiku-4-5)
          .isEqualTo("anthropic/claude-haiku-4-5-20251001/0.00109000/25/153/3000/0");

      List<UsageEvent> events =
          app.admin()
              .listUsage(ListUsageRequest.newBuilder().setKeyId(Long.toString(keyId)).build())
              .getEventsList();
      assertThat(events)
          .hasSize(3)
          .allSatisfy(
              e -> {
                assertThat(e.getRequestId()).isEqualTo("9f1c2e7a-same-id");
                assertThat(e.getReportId()).matches(ExtProcServiceTest.AUTHORITY_REPORT_ID);
                assertThat(e.getCostUsd()).isEqualTo("0.00109");
              });
    }
  }
}
