package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A key's max_concurrent_requests across three whole instances on one PostgreSQL (issue 16): 50
 * metered requests started at once over the three metering ports, as Envoy streams them, each
 * admitted one staying in flight for a while. The test counts what is in flight itself (admitted
 * and not yet finished) and samples the database's slots_leased meanwhile.
 */
class ConcurrencyCapIT {
  private static final int CAP = 5;
  private static final int REQUESTS = 50;

  /** How long an admitted request stays in flight before its response comes. */
  private static final long IN_FLIGHT_MILLIS = 400;

  private static final byte[] REQUEST =
      ("{\"model\":\"gpt-4o-mini\",\"max_tokens\":100,"
              + "\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}]}")
          .getBytes(StandardCharsets.UTF_8);
  private static final byte[] RESPONSE =
      ("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\","
              + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
              + "\"finish_reason\":\"stop\"}],"
              + "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}")
          .getBytes(StandardCharsets.UTF_8);

  private TestDatabase db;
  private final List<TestServer> servers = new ArrayList<>();

  @BeforeEach
  void start() {
    db = TestDatabase.create();
    for (int i = 0; i < 3; i++) {
      servers.add(TestServer.start(db));
    }
  }

  @AfterEach
  void stop() throws Exception {
    try {
      for (TestServer s : servers) {
        s.close();
      }
    } finally {
      db.close();
    }
  }

  /** An unlimited key with the cap, and the headers Check gives its requests (asserted). */
  private Map<String, String> cappedKey() {
    CreateKeyResponse key =
        servers
            .get(0)
            .admin()
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("capped")
                    .setMaxConcurrentRequests(CAP)
                    .build());
    CheckResponse allowed =
        AuthorizationGrpc.newBlockingStub(servers.get(0).authzChannel())
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .check(EnvoyChecks.post("/v1/chat/completions").bearer(key.getSecret()).build());
    assertThat(allowed.getStatus().getCode()).isZero();
    Map<String, String> set =
        allowed.getOkResponse().getHeadersList().stream()
            .collect(
                Collectors.toMap(
                    h -> h.getHeader().getKey(),
                    h ->
                        h.getHeader().getValue().isEmpty()
                            ? h.getHeader().getRawValue().toStringUtf8()
                            : h.getHeader().getValue()));
    assertThat(set)
        .containsEntry(GatewayHeaders.KEY_CONCURRENCY, Integer.toString(CAP))
        .containsEntry(GatewayHeaders.KEY_LIMITED, "false");
    Map<String, String> headers =
        EnvoyStream.requestHeaders(
            "/v1/chat/completions", key.getKey().getId(), null, REQUEST.length);
    headers.put(GatewayHeaders.KEY_LIMITED, "false");
    headers.put(GatewayHeaders.KEY_CONCURRENCY, Integer.toString(CAP));
    return headers;
  }

  private static boolean marked(ProcessingResponse r) {
    return r.getRequestHeaders().getResponse().getHeaderMutation().getSetHeadersList().stream()
        .anyMatch(h -> h.getHeader().getKey().equals(GatewayHeaders.ADMITTED));
  }

  private int slotsLeased() {
    return (Integer) db.scalar("SELECT coalesce(sum(slots), 0)::int FROM key_slot_leases");
  }

  @Test
  void fiftyConcurrentRequestsOnThreeInstances_neverMoreThanTheCapInFlight_othersGet429()
      throws Exception {
    Map<String, String> headers = cappedKey();
    AtomicInteger inFlight = new AtomicInteger();
    AtomicInteger most = new AtomicInteger();
    AtomicInteger admitted = new AtomicInteger();
    AtomicInteger mostLeased = new AtomicInteger();
    List<String> refusals = Collections.synchronizedList(new ArrayList<>());
    CountDownLatch go = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(REQUESTS);
    List<Future<?>> done = new ArrayList<>();
    for (int i = 0; i < REQUESTS; i++) {
      TestServer at = servers.get(i % 3);
      done.add(
          pool.submit(
              () -> {
                go.await();
                EnvoyStream envoy = new EnvoyStream(at.envoyMetering());
                ProcessingResponse answer = envoy.requestHeaders(headers, false);
                if (answer.hasImmediateResponse()) {
                  ImmediateResponse r = answer.getImmediateResponse();
                  String retryAfter =
                      r.getHeaders().getSetHeadersList().stream()
                          .filter(h -> h.getHeader().getKey().equals("retry-after"))
                          .map(h -> h.getHeader().getRawValue().toStringUtf8())
                          .findFirst()
                          .orElse("none");
                  refusals.add(
                      r.getStatus().getCodeValue() + " " + r.getDetails() + " " + retryAfter);
                  envoy.awaitClosed();
                  return null;
                }
                assertThat(marked(answer)).isTrue();
                admitted.incrementAndGet();
                most.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
                envoy.requestBody(REQUEST);
                Thread.sleep(IN_FLIGHT_MILLIS);
                envoy.responseHeaders(200, "application/json");
                // No longer in flight from here: the client has its answer. The server frees the
                // slot a moment later, when the stream ends, so its count is never below ours.
                inFlight.decrementAndGet();
                envoy.responseBody(RESPONSE, 0, RESPONSE.length, true);
                envoy.complete();
                envoy.awaitClosed();
                return null;
              }));
    }
    go.countDown();
    // The database's view while the requests run: never more slots leased than the cap.
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
    while (System.nanoTime() < until && done.stream().anyMatch(f -> !f.isDone())) {
      mostLeased.accumulateAndGet(slotsLeased(), Math::max);
      Thread.sleep(20);
    }
    for (Future<?> f : done) {
      f.get(60, TimeUnit.SECONDS);
    }
    pool.shutdown();

    System.out.printf(
        "cap %d: %d admitted, %d refused, at most %d in flight, at most %d slots leased%n",
        CAP, admitted.get(), refusals.size(), most.get(), mostLeased.get());
    assertThat(most.get()).isBetween(1, CAP);
    assertThat(mostLeased.get()).isLessThanOrEqualTo(CAP);
    assertThat(admitted.get() + refusals.size()).isEqualTo(REQUESTS);
    assertThat(admitted.get()).isGreaterThanOrEqualTo(CAP);
    assertThat(refusals).isNotEmpty().allMatch("429 concurrency_limit_exceeded 1"::equals);

    // All done: slots go back (scarce, so at release), and the key admits again on any instance.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (slotsLeased() > CAP && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    for (TestServer at : servers) {
      EnvoyStream again = new EnvoyStream(at.envoyMetering());
      assertThat(marked(again.requestHeaders(headers, false))).isTrue();
      again.cancel();
    }
    for (TestServer s : servers) {
      s.close();
    }
    servers.clear();
    // Closed instances give every idle slot back.
    assertThat(slotsLeased()).isZero();
  }
}
