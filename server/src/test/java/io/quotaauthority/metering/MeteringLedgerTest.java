package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Metering charged through the real usage pipeline (UsageBatcher) into PostgreSQL on
 * 127.0.0.1:5432: the ledger, not a stand-in, decides what "once" means.
 */
class MeteringLedgerTest {
  private static final Clock CLOCK = Clock.fixed(Instant.parse("2025-06-01T12:00:00Z"), ZoneOffset.UTC);

  @Test
  void process_sameRequestIdStreamedTwice_chargesLedgerOnce() throws Exception {
    try (TestDatabase db = TestDatabase.create(); TestServer app = TestServer.start(db);
        MeteringExecutor executor = new MeteringExecutor(2, 16)) {
      long keyId = Long.parseLong(app.admin().createKey(
          CreateKeyRequest.newBuilder().setName("metered").setQuotaUsd("10").build()).getKey().getId());
      SimpleMeterRegistry registry = new SimpleMeterRegistry();
      UsageCharger charger = new UsageCharger(app.app().batcher(), Fixtures::testPrices,
          BigDecimal.ZERO, registry, CLOCK);
      String name = InProcessServerBuilder.generateName();
      Server server = InProcessServerBuilder.forName(name).addService(new ExtProcService(charger, executor)).build().start();
      ManagedChannel channel = InProcessChannelBuilder.forName(name).build();
      try {
        byte[] request = "{\"model\":\"claude-haiku-4-5\",\"stream\":true,\"max_tokens\":256,\"messages\":[]}"
            .getBytes(StandardCharsets.UTF_8);
        // Envoy retried the request (same x-request-id), or two instances metered it.
        for (int attempt = 0; attempt < 2; attempt++) {
          EnvoyStream envoy = new EnvoyStream(channel);
          envoy.requestHeaders(EnvoyStream.requestHeaders("/v1/messages", Long.toString(keyId),
              "9f1c2e7a-metered-once", request.length), false);
          envoy.requestBody(request);
          envoy.responseHeaders(200, "text/event-stream");
          envoy.responseBodyInChunks(Fixtures.bytes("anthropic-messages-stream.sse"),
              new Random(attempt), 120, true, at -> { });
          envoy.complete();
        }
        awaitCharges(registry, 2);
      } finally {
        channel.shutdownNow();
        server.shutdownNow();
      }

      assertThat(db.count("SELECT count(*) FROM usage_events WHERE report_id = ?", "9f1c2e7a-metered-once"))
          .isEqualTo(1);
      // 25 x 1.00 + 153 x 5.00 + 3000 x 0.10 = 1090 per million
      assertThat((BigDecimal) db.scalar("SELECT cost FROM usage_events WHERE report_id = ?", "9f1c2e7a-metered-once"))
          .isEqualTo(new BigDecimal("0.00109000"));
      assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", keyId))
          .isEqualByComparingTo("0.00109");
      assertThat(db.scalar("SELECT provider || '/' || model || '/' || input_tokens || '/' || output_tokens"
          + " || '/' || cached_input_tokens || '/' || cache_write_tokens FROM usage_events WHERE report_id = ?",
          "9f1c2e7a-metered-once")).isEqualTo("anthropic/claude-haiku-4-5/25/153/3000/0");
      assertThat(registry.get("quota.metering.charges").tag("outcome", "accepted").counter().count()).isEqualTo(1.0);
      assertThat(registry.get("quota.metering.charges").tag("outcome", "duplicate").counter().count()).isEqualTo(1.0);
    }
  }

  private static void awaitCharges(SimpleMeterRegistry registry, int n) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    while (System.nanoTime() < deadline) {
      double total = registry.find("quota.metering.charges").counters().stream()
          .mapToDouble(c -> c.count()).sum();
      if (total >= n) {
        return;
      }
      Thread.sleep(20);
    }
  }
}
