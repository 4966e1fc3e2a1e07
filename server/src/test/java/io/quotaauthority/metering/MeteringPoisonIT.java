package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.config.Setting;
import io.quotaauthority.ops.Metrics;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Envoy metering through the real server's ext_proc port into PostgreSQL, one commit group held
 * open (QUOTA_USAGE_COMMIT_INTERVAL=2s) while 21 metered responses arrive, one of them claiming an
 * 18-digit token count: that charge alone is refused (counted lost, reason invalid) and every other
 * one is charged exactly.
 */
class MeteringPoisonIT {
  private static final ModelPrice MINI = Fixtures.testPrices().find("gpt-4o-mini").orElseThrow();

  private static byte[] chatResponse(String model, long prompt, long completion) {
    return ("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\""
            + model
            + "\","
            + "\"choices\":[],\"usage\":{\"prompt_tokens\":"
            + prompt
            + ",\"completion_tokens\":"
            + completion
            + ",\"total_tokens\":"
            + (prompt + completion)
            + "}}")
        .getBytes(StandardCharsets.UTF_8);
  }

  /** One metered OpenAI chat completion, as Envoy walks it through ext_proc. */
  private static void meter(
      TestServer app, long keyId, String requestId, String requestModelJson, byte[] response) {
    meter(app, keyId, requestId, requestModelJson, response, true);
  }

  /**
   * @param limited what Check said in x-quota-key-limited
   */
  private static void meter(
      TestServer app,
      long keyId,
      String requestId,
      String requestModelJson,
      byte[] response,
      boolean limited) {
    byte[] request =
        ("{\"model\":" + requestModelJson + ",\"messages\":[]}").getBytes(StandardCharsets.UTF_8);
    EnvoyStream envoy = new EnvoyStream(app.envoyMetering());
    Map<String, String> headers =
        EnvoyStream.requestHeaders(
            "/v1/chat/completions", Long.toString(keyId), requestId, request.length);
    headers.put(GatewayHeaders.KEY_LIMITED, Boolean.toString(limited));
    envoy.requestHeaders(headers, false);
    envoy.requestBody(request);
    envoy.responseHeaders(200, "application/json");
    envoy.responseBody(response, 0, response.length, true);
    envoy.complete();
  }

  @Test
  void process_eighteenDigitTokenCountAmongMeteredCharges_onlyItLostTheOthersChargedExactly()
      throws Exception {
    Path prices = Path.of(Fixtures.class.getResource("/metering/test-prices.yaml").toURI());
    try (TestDatabase db = TestDatabase.create();
        TestServer app =
            TestServer.start(
                db,
                Map.of(Setting.USAGE_COMMIT_INTERVAL, "2s", Setting.PRICES_FILE, prices.toString()),
                Clock.systemUTC())) {
      List<Long> keys = List.of(newKey(app), newKey(app), newKey(app));
      MeterRegistry registry = app.app().operations().registry();
      DistributionSummary groups = registry.get(Metrics.COMMIT_GROUP_SIZE).summary();
      Map<Long, BigDecimal> expected = new HashMap<>();

      for (int i = 0; i < 20; i++) {
        long key = keys.get(i % 3);
        long prompt = 1_000 + 137L * i;
        long completion = 50 + 11L * i;
        if (i == 10) {
          meter(
              app,
              keys.get(1),
              "poison-tokens",
              "\"gpt-4o-mini\"",
              chatResponse("gpt-4o-mini", 123_456_789_012_345_678L, 5));
        }
        meter(
            app,
            key,
            "metered-" + i,
            "\"gpt-4o-mini\"",
            chatResponse("gpt-4o-mini", prompt, completion));
        expected.merge(key, MINI.costOf(new TokenUsage(prompt, completion, 0, 0)), BigDecimal::add);
      }
      // A client's model name with NUL in it is recorded (under a sanitized name), not lost. The
      // sanitized name is unpriced, so a key with a quota would be refused it before upstream: an
      // unlimited key's request, recorded at 0. (The response's escaped name is not read.)
      meter(
          app,
          keys.get(2),
          "nul-model",
          "\"gpt-4o-mini\\u0000\"",
          chatResponse("gpt-4o-mini\\u0000", 400, 40),
          false);

      awaitAccepted(registry, 21);
      assertThat(db.count("SELECT count(*) FROM usage_events WHERE request_id = 'poison-tokens'"))
          .isZero();
      for (Map.Entry<Long, BigDecimal> e : expected.entrySet()) {
        assertThat(
                (BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", e.getKey()))
            .isEqualByComparingTo(e.getValue());
        assertThat(
                (BigDecimal)
                    db.scalar("SELECT sum(cost) FROM usage_events WHERE key_id = ?", e.getKey()))
            .isEqualByComparingTo(e.getValue());
      }
      assertThat(
              db.scalar(
                  "SELECT model || '/' || cost || '/' || input_tokens FROM usage_events"
                      + " WHERE request_id = 'nul-model'"))
          .isEqualTo("gpt-4o-mini\uFFFD/0.00000000/400");
      assertThat(
              registry
                  .get("quota.metering.charges.lost")
                  .tag("reason", "invalid")
                  .counter()
                  .count())
          .isEqualTo(1.0);
      assertThat(
              registry.get("quota.metering.charges").tag("outcome", "accepted").counter().count())
          .isEqualTo(21.0);
      // The 21 charges that reached the pipeline were one commit group.
      assertThat(groups.count()).isEqualTo(1);
      assertThat(groups.totalAmount()).isEqualTo(21.0);
    }
  }

  private static long newKey(TestServer app) {
    return Long.parseLong(
        app.admin()
            .createKey(CreateKeyRequest.newBuilder().setName("metered").setQuotaUsd("100").build())
            .getKey()
            .getId());
  }

  /** Waits until n charges were answered ACCEPTED (they are committed by then), or 30 s. */
  private static void awaitAccepted(MeterRegistry registry, int n) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (System.nanoTime() < deadline) {
      var accepted = registry.find("quota.metering.charges").tag("outcome", "accepted").counter();
      if (accepted != null && accepted.count() >= n) {
        return;
      }
      Thread.sleep(50);
    }
  }
}
