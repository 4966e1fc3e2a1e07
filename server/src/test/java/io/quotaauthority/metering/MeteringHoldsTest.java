package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.quotaauthority.usage.BudgetLeases;
import io.quotaauthority.usage.LeaseStore;
import io.quotaauthority.usage.MemoryLeaseStore;
import io.quotaauthority.usage.UsageLedger;
import io.quotaauthority.usage.UsageOutcome;
import io.quotaauthority.usage.UsageReport;
import io.quotaauthority.usage.UsageSink;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Holds at admission through a real (in-process) ext_proc stream, over budget leases kept in memory
 * as PostgreSQL keeps them (MemoryLeaseStore; the database version is in the *IT suites): who is
 * held, who is refused and how, and that every way a request ends leaves nothing held.
 */
class MeteringHoldsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long KEY = 7;
  private static final String INSTANCE = "test-instance";

  /**
   * gpt-4o-mini (0.15 in, 0.60 out per million) with max_tokens 1000: the output bound is 0.0006
   * USD, the prompt a few tokens more.
   */
  private static final byte[] REQUEST =
      utf8(
          "{\"model\":\"gpt-4o-mini\",\"max_tokens\":1000,"
              + "\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}]}");

  /** 10 in, 50 out: 0.0000015 + 0.00003 = 0.0000315 USD, well within the hold. */
  private static final byte[] RESPONSE =
      utf8(
          "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\","
              + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
              + "\"finish_reason\":\"stop\"}],"
              + "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":50,\"total_tokens\":60}}");

  private final Clock clock = Clock.systemUTC();
  private final MemoryLeaseStore store = new MemoryLeaseStore(clock);
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final List<UsageLedger.HeldBy> heldCharges =
      Collections.synchronizedList(new ArrayList<>());
  private final MeteringExecutor executor = new MeteringExecutor(2, 16);
  private BudgetLeases leases;

  /** Concurrency slots, kept as PostgreSQL keeps key_slot_leases (the cap as the "quota"). */
  private final MemoryLeaseStore slotStore = new MemoryLeaseStore(clock);

  private BudgetLeases slots;
  private Server server;
  private ManagedChannel channel;

  /** Charges as UsageRepository does for a held report: cost to used, the draw off the lease. */
  private final UsageSink sink =
      new UsageSink() {
        @Override
        public CompletionStage<UsageOutcome> submit(UsageReport report) {
          return submit(report, null);
        }

        @Override
        public CompletionStage<UsageOutcome> submit(UsageReport report, UsageLedger.HeldBy held) {
          heldCharges.add(held);
          BigDecimal drawn =
              held == null
                  ? BigDecimal.ZERO
                  : store.charge(report.keyId(), held.instanceId(), report.cost(), held.amount());
          return CompletableFuture.completedFuture(
              new UsageOutcome(
                  UsageOutcome.Result.ACCEPTED, "", store.used(report.keyId()), false, drawn));
        }
      };

  private EnvoyStream start(LeaseStore leaseStore) throws IOException {
    leases =
        new BudgetLeases(
            leaseStore,
            INSTANCE,
            new BigDecimal("0.10"),
            1,
            Duration.ofSeconds(30),
            Duration.ofSeconds(30),
            clock);
    slots =
        BudgetLeases.slots(
            slotStore,
            INSTANCE,
            8,
            1,
            Duration.ofSeconds(30),
            Duration.ofSeconds(30),
            clock,
            BudgetLeases.Recorder.NONE);
    UsageCharger charger =
        new UsageCharger(
            sink,
            Fixtures::testPrices,
            null,
            registry,
            clock,
            Fixtures.RETRIES,
            leases,
            slots,
            List.of(Duration.ZERO));
    String name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name)
            .addService(new ExtProcService(() -> new MeteringSession(charger), executor))
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).build();
    return new EnvoyStream(channel);
  }

  /** The budget store, answering each take only after {@code delayMillis}. */
  private LeaseStore slow(long delayMillis, CountDownLatch asked) {
    return new LeaseStore() {
      @Override
      public Grant take(long keyId, String instanceId, BigDecimal slice, Duration ttl) {
        asked.countDown();
        try {
          Thread.sleep(delayMillis);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return store.take(keyId, instanceId, slice, ttl);
      }

      @Override
      public BigDecimal giveBack(long keyId, String instanceId, BigDecimal amount) {
        return store.giveBack(keyId, instanceId, amount);
      }

      @Override
      public Map<Long, BigDecimal> renew(String instanceId, Duration ttl) {
        return store.renew(instanceId, ttl);
      }

      @Override
      public int reapExpired(Instant now) {
        return store.reapExpired(now);
      }
    };
  }

  @AfterEach
  void stop() {
    if (leases != null) {
      leases.close();
    }
    if (channel != null) {
      channel.shutdownNow();
    }
    if (server != null) {
      server.shutdownNow();
    }
    executor.close(1000);
  }

  private static Map<String, String> headers(String limited) {
    Map<String, String> h =
        EnvoyStream.requestHeaders(
            "/v1/chat/completions", Long.toString(KEY), "r1", REQUEST.length);
    h.put("x-quota-key-limited", limited);
    return h;
  }

  private static boolean marked(CommonResponse r) {
    return r.getHeaderMutation().getSetHeadersList().stream()
        .anyMatch(
            h ->
                h.getHeader().getKey().equals("x-quota-admitted")
                    && h.getHeader().getRawValue().toStringUtf8().equals("1"));
  }

  private BigDecimal held() {
    return leases.leaseAndHeld(KEY)[1];
  }

  /** Waits for the lane to run what the stream's end queued (charging, releasing). */
  private void awaitHeld(BigDecimal expected) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (held().compareTo(expected) != 0 && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(held()).isEqualByComparingTo(expected);
  }

  private double refused(String reason) {
    return registry.get("quota.metering.refused").tag("reason", reason).counter().count();
  }

  @Test
  void requestBody_limitedKeyWithinBudget_isMarkedAdmittedAndItsChargeSettlesTheHold()
      throws Exception {
    store.key(KEY, "1.00", "0");
    EnvoyStream envoy = start(store);
    ProcessingResponse headers = envoy.requestHeaders(headers("true"), false);
    // A key with a quota is not admitted at its headers: its hold comes with the body.
    assertThat(marked(headers.getRequestHeaders().getResponse())).isFalse();
    ProcessingResponse body = envoy.requestBody(REQUEST);
    assertThat(marked(body.getRequestBody().getResponse())).isTrue();
    // gpt-4o-mini, 1000 output tokens at 0.60 per million: the hold is at least 0.0006.
    assertThat(held()).isGreaterThanOrEqualTo(new BigDecimal("0.00060000"));
    assertThat(held()).isLessThan(new BigDecimal("0.00070000"));
    envoy.responseHeaders(200, "application/json");
    envoy.responseBody(RESPONSE, 0, RESPONSE.length, true);
    envoy.complete();
    awaitHeld(BigDecimal.ZERO);
    assertThat(heldCharges)
        .singleElement()
        .satisfies(h -> assertThat(h.instanceId()).isEqualTo(INSTANCE));
    // Charged exactly the usage; the draw left the lease, the rest of the slice is free again.
    assertThat(store.used(KEY)).isEqualByComparingTo("0.00003150");
    assertThat(store.consistent(KEY)).isTrue();
    assertThat(leases.leaseAndHeld(KEY)[0]).isEqualByComparingTo(store.leased(KEY));
    assertThat(registry.get("quota.holds.admitted").counter().count()).isEqualTo(1.0);
    assertThat(registry.get("quota.holds.estimate.ratio").summary().count()).isEqualTo(1);
  }

  @Test
  void requestBody_limitedKeyWhoseRemainingCannotCoverTheMaximumCost_isRefused429BeforeUpstream()
      throws Exception {
    // 0.0005 left; the request may cost 0.0006 and more.
    store.key(KEY, "1.00", "0.9995");
    EnvoyStream envoy = start(store);
    envoy.requestHeaders(headers("true"), false);
    ProcessingResponse answer = envoy.requestBody(REQUEST);
    assertThat(answer.hasImmediateResponse()).isTrue();
    ImmediateResponse refusal = answer.getImmediateResponse();
    assertThat(refusal.getStatus().getCodeValue()).isEqualTo(429);
    assertThat(refusal.getDetails()).isEqualTo("insufficient_quota");
    JsonNode error = JSON.readTree(refusal.getBody().toStringUtf8()).get("error");
    assertThat(error.get("code").asText()).isEqualTo("insufficient_quota");
    assertThat(error.get("type").asText()).isEqualTo("insufficient_quota");
    assertThat(error.get("message").asText())
        .matches(
            "This request may cost up to 0\\.000[67]\\d{4} USD; 0\\.00050000 USD of the key's"
                + " quota remains\\. .*");
    envoy.awaitClosed();
    assertThat(heldCharges).isEmpty();
    assertThat(held()).isEqualByComparingTo("0");
    assertThat(store.leased(KEY)).isEqualByComparingTo("0");
    assertThat(refused("insufficient_quota")).isEqualTo(1.0);
  }

  @Test
  void responseHeaders_errorStatus_releasesTheHoldAndChargesNothing() throws Exception {
    store.key(KEY, "1.00", "0");
    EnvoyStream envoy = start(store);
    envoy.requestHeaders(headers("true"), false);
    envoy.requestBody(REQUEST);
    assertThat(held()).isPositive();
    envoy.responseHeaders(500, "application/json");
    awaitHeld(BigDecimal.ZERO);
    envoy.complete();
    assertThat(heldCharges).isEmpty();
    assertThat(store.used(KEY)).isEqualByComparingTo("0");
    // The slice stays leased to this instance, free for the next hold.
    assertThat(leases.leaseAndHeld(KEY)[0]).isEqualByComparingTo(store.leased(KEY));
  }

  @Test
  void streamClosed_beforeAnyResponse_releasesTheHold() throws Exception {
    store.key(KEY, "1.00", "0");
    EnvoyStream envoy = start(store);
    envoy.requestHeaders(headers("true"), false);
    envoy.requestBody(REQUEST);
    assertThat(held()).isPositive();
    envoy.cancel();
    awaitHeld(BigDecimal.ZERO);
    assertThat(heldCharges).isEmpty();
  }

  @Test
  void requestBody_leaseStoreUnreachable_isRefused503AndNeverMarked() throws Exception {
    LeaseStore down =
        new LeaseStore() {
          @Override
          public Grant take(long keyId, String instanceId, BigDecimal slice, Duration ttl) {
            throw new IllegalStateException("connection refused");
          }

          @Override
          public BigDecimal giveBack(long keyId, String instanceId, BigDecimal amount) {
            throw new IllegalStateException("connection refused");
          }

          @Override
          public Map<Long, BigDecimal> renew(String instanceId, Duration ttl) {
            throw new IllegalStateException("connection refused");
          }

          @Override
          public int reapExpired(Instant now) {
            throw new IllegalStateException("connection refused");
          }
        };
    EnvoyStream envoy = start(down);
    envoy.requestHeaders(headers("true"), false);
    ProcessingResponse answer = envoy.requestBody(REQUEST);
    assertThat(answer.getImmediateResponse().getStatus().getCodeValue()).isEqualTo(503);
    assertThat(answer.getImmediateResponse().getDetails()).isEqualTo("quota_unavailable");
    assertThat(refused("quota_unavailable")).isEqualTo(1.0);
    assertThat(heldCharges).isEmpty();
  }

  @Test
  void requestHeaders_unlimitedKey_isMarkedAtOnceAndTakesNoLease() throws Exception {
    store.key(KEY, "0", "0");
    EnvoyStream envoy = start(store);
    ProcessingResponse headers = envoy.requestHeaders(headers("false"), false);
    assertThat(marked(headers.getRequestHeaders().getResponse())).isTrue();
    assertThat(headers.getRequestHeaders().getResponse().getHeaderMutation().getRemoveHeadersList())
        .containsExactly("accept-encoding");
    ProcessingResponse body = envoy.requestBody(REQUEST);
    assertThat(body.getRequestBody().getResponse()).isEqualTo(CommonResponse.getDefaultInstance());
    envoy.responseHeaders(200, "application/json");
    envoy.responseBody(RESPONSE, 0, RESPONSE.length, true);
    envoy.complete();
    assertThat(store.takes).isZero();
  }

  @Test
  void requestHeaders_cappedKeyAtItsCap_isRefused429WithRetryAfterUntilASlotFrees()
      throws Exception {
    store.key(KEY, "0", "0");
    slotStore.key(KEY, "2", "0");
    EnvoyStream first = start(store);
    Map<String, String> capped = headers("false");
    capped.put("x-quota-key-concurrency", "2");
    assertThat(marked(first.requestHeaders(capped, false).getRequestHeaders().getResponse()))
        .isTrue();
    EnvoyStream second = new EnvoyStream(channel);
    assertThat(marked(second.requestHeaders(capped, false).getRequestHeaders().getResponse()))
        .isTrue();
    assertThat(slots.leaseAndHeld(KEY)[1]).isEqualByComparingTo("2");

    EnvoyStream third = new EnvoyStream(channel);
    ImmediateResponse refusal = third.requestHeaders(capped, false).getImmediateResponse();
    assertThat(refusal.getStatus().getCodeValue()).isEqualTo(429);
    assertThat(refusal.getDetails()).isEqualTo("concurrency_limit_exceeded");
    assertThat(refusal.getHeaders().getSetHeadersList())
        .extracting(h -> h.getHeader().getKey() + "=" + h.getHeader().getRawValue().toStringUtf8())
        .contains("retry-after=1");
    assertThat(JSON.readTree(refusal.getBody().toStringUtf8()).at("/error/message").asText())
        .startsWith("This key allows at most 2 requests in flight at once");
    assertThat(refused("concurrency_limit_exceeded")).isEqualTo(1.0);

    // The first request's stream ends: its slot frees, and the next request is admitted.
    first.requestBody(REQUEST);
    first.responseHeaders(200, "application/json");
    first.responseBody(RESPONSE, 0, RESPONSE.length, true);
    first.complete();
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (slots.leaseAndHeld(KEY)[1].compareTo(BigDecimal.ONE) != 0
        && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(slots.leaseAndHeld(KEY)[1]).isEqualByComparingTo("1");
    EnvoyStream fourth = new EnvoyStream(channel);
    assertThat(marked(fourth.requestHeaders(capped, false).getRequestHeaders().getResponse()))
        .isTrue();
    // Never more slots leased than the cap, and leased is the sum of the leases.
    assertThat(slotStore.consistent(KEY)).isTrue();
  }

  @Test
  void concurrencyCap_anyHeaderValue_isItsPlainDecimalOrElseTheStrictestCap() {
    assertThat(MeteringSession.concurrencyCap(null)).isZero();
    assertThat(MeteringSession.concurrencyCap("5")).isEqualTo(5);
    assertThat(MeteringSession.concurrencyCap("1000000")).isEqualTo(1_000_000);
    // Check writes none of these; a forged or broken value is the strictest cap, never none.
    for (String bad : new String[] {"", "0", "-1", "+3", "1000001", "five", "99999999999999"}) {
      assertThat(MeteringSession.concurrencyCap(bad)).as(bad).isEqualTo(1);
    }
  }

  @Test
  void requestBody_holdWaitingForTheDatabase_isAnsweredOffTheMeteringThreadOnceGranted()
      throws Exception {
    store.key(KEY, "1.00", "0");
    CountDownLatch asked = new CountDownLatch(1);
    EnvoyStream envoy = start(slow(300, asked));
    // Started: a hold that needs a slice is asked for on a lease asker thread.
    leases.start(Duration.ofHours(1));
    EnvoyStream second = new EnvoyStream(channel);
    EnvoyStream third = new EnvoyStream(channel);
    envoy.requestHeaders(headers("true"), false);
    long t0 = System.nanoTime();
    ProcessingResponse body = envoy.requestBody(REQUEST);
    assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(Duration.ofMillis(250).toNanos());
    assertThat(marked(body.getRequestBody().getResponse())).isTrue();
    assertThat(held()).isPositive();
    // The first ask leased only the first hold's need; the second, knowing the remaining, leases
    // a slice (a wait again); the third is held on that slice: no wait at all.
    second.requestHeaders(headers("true"), false);
    long t1 = System.nanoTime();
    assertThat(marked(second.requestBody(REQUEST).getRequestBody().getResponse())).isTrue();
    assertThat(System.nanoTime() - t1).isGreaterThanOrEqualTo(Duration.ofMillis(250).toNanos());
    third.requestHeaders(headers("true"), false);
    long t2 = System.nanoTime();
    assertThat(marked(third.requestBody(REQUEST).getRequestBody().getResponse())).isTrue();
    assertThat(System.nanoTime() - t2).isLessThan(Duration.ofMillis(250).toNanos());
    envoy.cancel();
    second.cancel();
    third.cancel();
    awaitHeld(BigDecimal.ZERO);
  }

  @Test
  void streamClosed_whileItsHoldWaitsForTheDatabase_releasesTheHoldWhenItComes() throws Exception {
    store.key(KEY, "1.00", "0");
    CountDownLatch asked = new CountDownLatch(1);
    EnvoyStream envoy = start(slow(300, asked));
    leases.start(Duration.ofHours(1));
    envoy.requestHeaders(headers("true"), false);
    envoy.sendWithoutAnswer(
        ProcessingRequest.newBuilder()
            .setRequestBody(
                HttpBody.newBuilder().setBody(ByteString.copyFrom(REQUEST)).setEndOfStream(true))
            .build());
    assertThat(asked.await(5, TimeUnit.SECONDS)).isTrue();
    // Envoy gives up on the request while the slice is being leased.
    envoy.cancel();
    Thread.sleep(600);
    awaitHeld(BigDecimal.ZERO);
    assertThat(heldCharges).isEmpty();
    // The slice stays this instance's, free for the next request.
    assertThat(store.consistent(KEY)).isTrue();
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
