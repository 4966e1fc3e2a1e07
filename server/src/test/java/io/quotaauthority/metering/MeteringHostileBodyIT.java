package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Hostile request bodies through ext_proc on the real server, while Checks share the same gRPC
 * connection (as Envoy multiplexes them): the body work runs off the transport threads, so every
 * Check is answered inside Envoy's 250 ms ext_authz timeout (a correctness bound, not a benchmark),
 * nothing runs out of memory, and the body is rewritten or passed through unread.
 */
class MeteringHostileBodyIT {
  /** Envoy's ext_authz timeout in envoy/envoy.yaml. */
  private static TestDatabase db;

  private static TestServer server;

  /** Envoy's connection to the metering port, carrying the metering token on every stream. */
  private static ManagedChannel channel;

  /** Envoy's connection to the authz port, where its Checks go while the body is worked on. */
  private static ManagedChannel checkChannel;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
    // Envoy takes the rewritten 30 MiB body back; gRPC's client default (4 MiB) would not.
    channel =
        ManagedChannelBuilder.forAddress("127.0.0.1", server.app().meteringPort())
            .usePlaintext()
            .maxInboundMessageSize(64 << 20)
            .intercept(TestServer.bearer(TestServer.METERING_TOKEN))
            .build();
    checkChannel =
        ManagedChannelBuilder.forAddress("127.0.0.1", server.app().authzPort())
            .usePlaintext()
            .build();
  }

  @AfterAll
  static void stop() throws Exception {
    channel.shutdownNow();
    checkChannel.shutdownNow();
    server.close();
    db.close();
  }

  /**
   * These bodies name no model (or cannot be read): a key with a quota would be refused them before
   * upstream (MeteringUnpricedLedgerIT), so they come from an unlimited key, whose requests are
   * parsed and passed whatever they name.
   */
  private static Map<String, String> unlimited(Map<String, String> headers) {
    headers.put(GatewayHeaders.KEY_LIMITED, "false");
    return headers;
  }

  /** {@code head} then "{}," repeated to fill {@code size} bytes, then "{}]}". */
  private static byte[] emptyObjects(String head, int size) {
    byte[] h = head.getBytes(StandardCharsets.US_ASCII);
    byte[] tail = "{}]}".getBytes(StandardCharsets.US_ASCII);
    int n = (size - h.length - tail.length) / 3;
    byte[] b = new byte[h.length + 3 * n + tail.length];
    System.arraycopy(h, 0, b, 0, h.length);
    for (int i = 0, at = h.length; i < n; i++, at += 3) {
      b[at] = '{';
      b[at + 1] = '}';
      b[at + 2] = ',';
    }
    System.arraycopy(tail, 0, b, b.length - tail.length, tail.length);
    return b;
  }

  @Test
  void requestBody_30MiBOfEmptyObjects_rewrittenWhileChecksOnTheSameConnectionAnswerInTime()
      throws Exception {
    byte[] body = emptyObjects("{\"stream\":true,\"stream_options\":{},\"x\":[", 30 << 20);
    byte[] expected =
        emptyObjects(
            "{\"stream\":true,\"stream_options\":{\"include_usage\":true},\"x\":[",
            (30 << 20) + "\"include_usage\":true".length());
    assertThat(expected.length).isEqualTo(body.length + "\"include_usage\":true".length());

    ProcessingResponse r =
        withChecksAlongside(
            envoy -> {
              envoy.requestHeaders(
                  unlimited(
                      EnvoyStream.requestHeaders(
                          "/v1/chat/completions", "1", "hostile-empty-objects", body.length)),
                  false);
              // Parsing 10 million objects takes seconds on a loaded 2-core CI machine (Envoy would
              // have
              // given up after message_timeout and let the request pass); the bound here is on
              // Checks.
              return envoy.requestBody(body, Duration.ofSeconds(120));
            });

    // Within the constraints (3 levels deep): read and rewritten like any streaming chat request.
    assertThat(r.getRequestBody().getResponse().getBodyMutation().getBody())
        .isEqualTo(ByteString.copyFrom(expected));
  }

  @Test
  void requestBody_100000DeepNesting_passedThroughUnreadAndCountedWhileChecksAnswerInTime()
      throws Exception {
    int depth = 100_000;
    byte[] body =
        ("{\"stream\":true,\"stream_options\":{},\"x\":"
                + "[".repeat(depth)
                + "]".repeat(depth)
                + "}")
            .getBytes(StandardCharsets.US_ASCII);
    double before = tooDeep();

    ProcessingResponse r =
        withChecksAlongside(
            envoy -> {
              envoy.requestHeaders(
                  unlimited(
                      EnvoyStream.requestHeaders(
                          "/v1/chat/completions", "1", "hostile-deep", body.length)),
                  false);
              return envoy.requestBody(body);
            });

    assertThat(r.hasRequestBody()).isTrue();
    assertThat(r.getRequestBody().getResponse().hasBodyMutation()).isFalse();
    assertThat(tooDeep() - before).isEqualTo(1.0);
  }

  private static double tooDeep() {
    MeterRegistry registry = server.app().operations().registry();
    Counter c = registry.find("quota.metering.unread.bodies").tag("reason", "too_deep").counter();
    return c == null ? 0 : c.count();
  }

  /**
   * Runs the ext_proc exchange on the metering channel while Checks go out every 10 ms on the authz
   * channel (one HTTP/2 connection), from before the body is sent until 500 ms after its answer,
   * and asserts: no Check failed; Checks were answered while the body was being worked on (body
   * work on the connection's transport thread would have stopped them). How long such Checks take
   * is not asserted here (no timed assertions in tests); the deadline is a hang guard.
   */
  private static ProcessingResponse withChecksAlongside(
      Function<EnvoyStream, ProcessingResponse> exchange) throws Exception {
    AuthorizationGrpc.AuthorizationBlockingStub authz =
        AuthorizationGrpc.newBlockingStub(checkChannel);
    for (int i = 0; i < 50; i++) { // warm: the first calls load classes and open the connection
      authz.withDeadlineAfter(30, TimeUnit.SECONDS).check(CheckRequest.getDefaultInstance());
    }
    Checks during = new Checks();
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong bodyStart = new AtomicLong();
    AtomicLong bodyEnd = new AtomicLong(Long.MAX_VALUE);
    AtomicInteger duringBody = new AtomicInteger();
    Thread checker =
        new Thread(
            () -> {
              while (!stop.get()) {
                long t0 = System.nanoTime();
                try {
                  authz
                      .withDeadlineAfter(5, TimeUnit.SECONDS)
                      .check(CheckRequest.getDefaultInstance());
                  long t1 = System.nanoTime();
                  during.millis.add(TimeUnit.NANOSECONDS.toMillis(t1 - t0));
                  if (t0 > bodyStart.get() && t1 < bodyEnd.get()) {
                    duringBody
                        .incrementAndGet(); // sent and answered while the body was in the server
                  }
                } catch (RuntimeException e) {
                  during.failures.incrementAndGet();
                }
                pause(10);
              }
            });
    EnvoyStream envoy = new EnvoyStream(channel);
    ProcessingResponse r;
    long bodyMillis;
    checker.start();
    try {
      bodyStart.set(System.nanoTime());
      r = exchange.apply(envoy);
      bodyEnd.set(System.nanoTime());
      bodyMillis = TimeUnit.NANOSECONDS.toMillis(bodyEnd.get() - bodyStart.get());
      Thread.sleep(500);
    } finally {
      stop.set(true);
      checker.join(30_000);
    }
    envoy.complete();
    System.out.printf(
        "body answered in %d ms; %d Checks alongside (%d during the body)%n",
        bodyMillis, during.millis.size(), duringBody.get());
    assertThat(during.failures).hasValue(0);
    assertThat(during.millis).hasSizeGreaterThan(5);
    if (bodyMillis > 1_000) {
      // Long body work: Checks on the same connection kept being answered through it.
      assertThat(duringBody.get()).isGreaterThanOrEqualTo(3);
    } else if (bodyMillis > 200) {
      // Checks go out every 10 ms: at least one was sent and answered while the body was in.
      assertThat(duringBody.get()).isPositive();
    }
    return r;
  }

  private static final class Checks {
    final List<Long> millis = new CopyOnWriteArrayList<>();
    final AtomicInteger failures = new AtomicInteger();
  }

  private static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
