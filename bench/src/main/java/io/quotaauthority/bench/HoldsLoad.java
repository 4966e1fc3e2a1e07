package io.quotaauthority.bench;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * The holds group's load generator: plays Envoy's ext_proc filter for one metered OpenAI chat
 * completion after another, {@code inflight} at a time (closed loop), each on a gRPC stream of its
 * own as Envoy opens one per HTTP request (see the server tests' EnvoyStream): the request headers
 * as Envoy sends them once Check has added x-quota-key-id and x-quota-key-limited (header values in
 * raw_value only), the whole request body (BUFFERED), then the provider's response headers and its
 * whole JSON body with usage (end_of_stream), then the half-close, which ends the stream. Each
 * admitted request is therefore charged, and its hold settled, as in production.
 *
 * <p>The admission latency is the time from sending the request body (the message a limited key's
 * hold is taken at) to its answer: admitted when that answer carries x-quota-admitted, refused when
 * it is an immediate response (429 insufficient_quota, 503 when the lease store is away).
 *
 * <p>Callbacks run on the transport threads (directExecutor); each slot has one stream at a time
 * and starts the next from the last one's close.
 */
final class HoldsLoad implements AutoCloseable {
  static final String MODEL = "gpt-4o-mini";
  static final int MAX_TOKENS = 256;

  /** gpt-4o-mini in the shipped price table, in units of 1e-8 USD per token. */
  static final long INPUT_PRICE_E8 = 15;

  static final long OUTPUT_PRICE_E8 = 60;

  static final String ADMITTED = "x-quota-admitted";

  /** A short chat completion with an output limit, as an SDK sends it: not streamed. */
  static final byte[] REQUEST_BODY =
      ("{\"model\":\""
              + MODEL
              + "\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a concise"
              + " assistant.\"},{\"role\":\"user\",\"content\":\"Summarize the plot of Hamlet in"
              + " two sentences.\"}],\"max_tokens\":"
              + MAX_TOKENS
              + ",\"temperature\":0.2}")
          .getBytes(StandardCharsets.UTF_8);

  /** Longest a stream may take: a bench that hangs would measure nothing. */
  private static final long STREAM_DEADLINE_SECONDS = 30;

  /**
   * Picks the key of a slot's next request: {@code previous} is its last key (-1 at first), {@code
   * refused} whether that one was refused with 429. -1: the slot stops (no key left).
   */
  interface Keys {
    long next(long previous, boolean refused);
  }

  /** Every request on one key. */
  static Keys single(long keyId) {
    return (previous, refused) -> keyId;
  }

  /**
   * Keys [from, to), each used until it refuses, then the next one not yet taken; a slot stops when
   * none is left ({@link #ranOut}).
   */
  static final class UntilRefused implements Keys {
    private final AtomicLong next;
    private final long to;
    private volatile boolean ranOut;

    UntilRefused(long from, long to) {
      this.next = new AtomicLong(from);
      this.to = to;
    }

    @Override
    public long next(long previous, boolean refused) {
      if (previous >= 0 && !refused) {
        return previous;
      }
      long k = next.getAndIncrement();
      if (k >= to) {
        ranOut = true;
        return -1;
      }
      return k;
    }

    /** Keys handed out so far. */
    long used(long from) {
      return Math.min(next.get(), to) - from;
    }

    boolean ranOut() {
      return ranOut;
    }
  }

  /** How the requests ended, as running totals (a window is the difference of two). */
  record Counts(
      long admitted,
      long refused429,
      long unavailable503,
      long otherImmediate,
      long unmarked,
      long errors,
      long completed) {
    Counts minus(Counts o) {
      return new Counts(
          admitted - o.admitted,
          refused429 - o.refused429,
          unavailable503 - o.unavailable503,
          otherImmediate - o.otherImmediate,
          unmarked - o.unmarked,
          errors - o.errors,
          completed - o.completed);
    }

    /** Requests that got an answer to their body, admitted or refused. */
    long answered() {
      return admitted + refused429 + unavailable503 + otherImmediate + unmarked;
    }

    /** What should not happen: 503s, other immediate replies, unmarked answers, stream errors. */
    String anomalies() {
      List<String> out = new ArrayList<>();
      if (unavailable503 > 0) {
        out.add(unavailable503 + " refused 503 (lease store unavailable)");
      }
      if (otherImmediate > 0) {
        out.add(otherImmediate + " other immediate replies");
      }
      if (unmarked > 0) {
        out.add(unmarked + " answered without " + ADMITTED + " (metering overloaded?)");
      }
      if (errors > 0) {
        out.add(errors + " stream errors");
      }
      return String.join(", ", out);
    }
  }

  /**
   * One measured window: the requests in it, their admission latencies (admitted, refused) and the
   * totals since the session started (warm-up included), for checking the charges.
   */
  record Result(
      Counts window,
      Counts total,
      double seconds,
      Histogram admittedLatency,
      Histogram refusedLatency,
      boolean allDone) {
    double admittedPerSecond() {
      return seconds <= 0 ? 0 : window.admitted() / seconds;
    }
  }

  private final List<ManagedChannel> channels = new ArrayList<>();
  private final List<ExternalProcessorGrpc.ExternalProcessorStub> stubs = new ArrayList<>();

  HoldsLoad(int port, String meteringToken, int channelCount) {
    for (int c = 0; c < channelCount; c++) {
      ManagedChannel ch =
          NettyChannelBuilder.forAddress(
                  new InetSocketAddress(InetAddress.getLoopbackAddress(), port))
              .usePlaintext()
              .directExecutor()
              // Whole bodies, like Envoy's: the server's metering listener takes large messages.
              .maxInboundMessageSize(16 << 20)
              .build();
      channels.add(ch);
      stubs.add(ExternalProcessorGrpc.newStub(ch).withInterceptors(BenchRun.bearer(meteringToken)));
    }
  }

  /**
   * Starts {@code inflight} slots, each running one request after another on the keys {@code keys}
   * picks, with responses that report {@code promptTokens} input and {@link #MAX_TOKENS} output
   * tokens (so each charge is the request's whole hold when that is what the server counted).
   */
  Session start(int inflight, Keys keys, long promptTokens) {
    Session s = new Session(keys, responseBody(promptTokens), inflight);
    for (int i = 0; i < inflight; i++) {
      Slot slot = new Slot(s, stubs.get(i % stubs.size()));
      slot.next(false);
    }
    return s;
  }

  /**
   * One request's request headers and body on its own stream, waiting for each answer: the answer
   * to the body (the admission), or null if none came within 10 s. The stream is then cancelled
   * (nothing is charged): for the probe that reads what a hold of this request costs.
   */
  ProcessingResponse admissionAnswer(long keyId) throws InterruptedException {
    LinkedBlockingQueue<ProcessingResponse> answers = new LinkedBlockingQueue<>();
    AtomicReference<ClientCallStreamObserver<ProcessingRequest>> out = new AtomicReference<>();
    stubs
        .get(0)
        .withDeadlineAfter(STREAM_DEADLINE_SECONDS, TimeUnit.SECONDS)
        .process(
            new ClientResponseObserver<ProcessingRequest, ProcessingResponse>() {
              @Override
              public void beforeStart(ClientCallStreamObserver<ProcessingRequest> r) {
                out.set(r);
              }

              @Override
              public void onNext(ProcessingResponse value) {
                answers.add(value);
              }

              @Override
              public void onError(Throwable t) {}

              @Override
              public void onCompleted() {}
            });
    out.get().onNext(requestHeaders(keyId, "probe-" + keyId));
    ProcessingResponse h = answers.poll(10, TimeUnit.SECONDS);
    if (h == null || h.hasImmediateResponse()) {
      out.get().cancel("probe done", null);
      return h;
    }
    out.get().onNext(REQUEST_BODY_MESSAGE);
    ProcessingResponse b = answers.poll(10, TimeUnit.SECONDS);
    out.get().cancel("probe done", null);
    return b;
  }

  /** Whether an answer to the request body admits the request: it sets x-quota-admitted. */
  static boolean admits(ProcessingResponse r) {
    if (!r.hasRequestBody()) {
      return false;
    }
    for (HeaderValueOption h :
        r.getRequestBody().getResponse().getHeaderMutation().getSetHeadersList()) {
      if (h.getHeader().getKey().equals(ADMITTED)) {
        return true;
      }
    }
    return false;
  }

  /** Request headers as Envoy sends them after Check allowed a key with a quota. */
  static ProcessingRequest requestHeaders(long keyId, String requestId) {
    HeaderMap.Builder h = HeaderMap.newBuilder();
    header(h, ":authority", "llm-gateway.internal");
    header(h, ":path", "/v1/chat/completions");
    header(h, ":method", "POST");
    header(h, ":scheme", "https");
    header(h, "content-type", "application/json");
    header(h, "content-length", Integer.toString(REQUEST_BODY.length));
    header(h, "accept-encoding", "gzip, deflate, br");
    header(h, "user-agent", "OpenAI/Python 1.82.0");
    header(h, "x-request-id", requestId);
    header(h, "x-quota-key-id", Long.toString(keyId));
    header(h, "x-quota-key-limited", "true");
    return ProcessingRequest.newBuilder()
        .setRequestHeaders(HttpHeaders.newBuilder().setHeaders(h))
        .build();
  }

  private static void header(HeaderMap.Builder b, String key, String value) {
    b.addHeaders(
        HeaderValue.newBuilder()
            .setKey(key)
            .setRawValue(ByteString.copyFrom(value, StandardCharsets.UTF_8)));
  }

  static final ProcessingRequest REQUEST_BODY_MESSAGE =
      ProcessingRequest.newBuilder()
          .setRequestBody(
              HttpBody.newBuilder().setBody(ByteString.copyFrom(REQUEST_BODY)).setEndOfStream(true))
          .build();

  static final ProcessingRequest RESPONSE_HEADERS;

  static {
    HeaderMap.Builder h = HeaderMap.newBuilder();
    header(h, ":status", "200");
    header(h, "content-type", "application/json");
    header(h, "date", "Sun, 01 Jun 2025 12:00:00 GMT");
    header(h, "openai-processing-ms", "412");
    RESPONSE_HEADERS =
        ProcessingRequest.newBuilder()
            .setResponseHeaders(HttpHeaders.newBuilder().setHeaders(h))
            .build();
  }

  /** The provider's whole JSON answer, with its usage, as the last (and only) body chunk. */
  static ProcessingRequest responseBody(long promptTokens) {
    String json =
        String.format(
            Locale.ROOT,
            "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1748779200,"
                + "\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"message\":"
                + "{\"role\":\"assistant\",\"content\":\"Prince Hamlet feigns madness to avenge his"
                + " father, murdered by Claudius. Nearly everyone dies.\",\"refusal\":null},"
                + "\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":%d,"
                + "\"completion_tokens\":%d,\"total_tokens\":%d,\"prompt_tokens_details\":"
                + "{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":"
                + "{\"reasoning_tokens\":0,\"audio_tokens\":0}},\"service_tier\":\"default\","
                + "\"system_fingerprint\":\"fp_bench\"}",
            promptTokens,
            MAX_TOKENS,
            promptTokens + MAX_TOKENS);
    return ProcessingRequest.newBuilder()
        .setResponseBody(
            HttpBody.newBuilder()
                .setBody(ByteString.copyFrom(json, StandardCharsets.UTF_8))
                .setEndOfStream(true))
        .build();
  }

  /** The running slots and what they measured. */
  final class Session {
    final Keys keys;
    final ProcessingRequest responseBody;
    final CountDownLatch done;
    final LongAdder admitted = new LongAdder();
    final LongAdder refused429 = new LongAdder();
    final LongAdder unavailable503 = new LongAdder();
    final LongAdder otherImmediate = new LongAdder();
    final LongAdder unmarked = new LongAdder();
    final LongAdder errors = new LongAdder();
    final LongAdder completed = new LongAdder();
    final AtomicLong requestIds = new AtomicLong();
    final Recorder admittedLatency = new Recorder(3);
    final Recorder refusedLatency = new Recorder(3);
    volatile boolean recording;
    volatile boolean stopping;
    private Counts atStart;
    private Counts atEnd;
    private long windowStart;
    private long windowEnd;

    Session(Keys keys, ProcessingRequest responseBody, int slots) {
      this.keys = keys;
      this.responseBody = responseBody;
      this.done = new CountDownLatch(slots);
    }

    Counts counts() {
      return new Counts(
          admitted.sum(),
          refused429.sum(),
          unavailable503.sum(),
          otherImmediate.sum(),
          unmarked.sum(),
          errors.sum(),
          completed.sum());
    }

    void markStart() {
      admittedLatency.reset();
      refusedLatency.reset();
      atStart = counts();
      windowStart = System.nanoTime();
      recording = true;
    }

    void markEnd() {
      recording = false;
      windowEnd = System.nanoTime();
      atEnd = counts();
    }

    /** Stops starting requests, waits for the ones in flight to end (at most 30 s). */
    Result stopAndDrain() throws InterruptedException {
      stopping = true;
      boolean all = done.await(STREAM_DEADLINE_SECONDS, TimeUnit.SECONDS);
      return new Result(
          atEnd.minus(atStart),
          counts(),
          (windowEnd - windowStart) / 1e9,
          admittedLatency.getIntervalHistogram(),
          refusedLatency.getIntervalHistogram(),
          all);
    }
  }

  /** One request in flight at a time, one after another. */
  private final class Slot {
    private final Session s;
    private final ExternalProcessorGrpc.ExternalProcessorStub stub;
    private long key = -1;

    Slot(Session s, ExternalProcessorGrpc.ExternalProcessorStub stub) {
      this.s = s;
      this.stub = stub;
    }

    /** Starts the next request, or ends the slot. */
    void next(boolean lastRefused) {
      key = s.stopping ? -1 : s.keys.next(key, lastRefused);
      if (key < 0) {
        s.done.countDown();
        return;
      }
      Exchange e = new Exchange(this);
      stub.withDeadlineAfter(STREAM_DEADLINE_SECONDS, TimeUnit.SECONDS).process(e);
      e.out.onNext(requestHeaders(key, "bench-" + s.requestIds.incrementAndGet()));
    }
  }

  private static final int HEADERS = 0;
  private static final int BODY = 1;
  private static final int RESPONSE_HEADERS_SENT = 2;
  private static final int RESPONSE_BODY_SENT = 3;
  private static final int CLOSING = 4;

  /** One request's ext_proc stream, phase by phase; gRPC calls it one callback at a time. */
  private final class Exchange
      implements ClientResponseObserver<ProcessingRequest, ProcessingResponse> {
    private final Slot slot;
    private final Session s;
    private ClientCallStreamObserver<ProcessingRequest> out;
    private int phase = HEADERS;
    private long bodySentAt;
    private boolean refused;

    Exchange(Slot slot) {
      this.slot = slot;
      this.s = slot.s;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<ProcessingRequest> requests) {
      this.out = requests;
    }

    @Override
    public void onNext(ProcessingResponse r) {
      switch (phase) {
        case HEADERS -> {
          if (r.hasImmediateResponse()) {
            // Refused at its headers (an unpriced model, a concurrency cap): not this bench's case.
            s.otherImmediate.increment();
            phase = CLOSING;
            return;
          }
          phase = BODY;
          bodySentAt = System.nanoTime();
          out.onNext(REQUEST_BODY_MESSAGE);
        }
        case BODY -> {
          long t = Math.max(1, System.nanoTime() - bodySentAt);
          if (r.hasImmediateResponse()) {
            int code = r.getImmediateResponse().getStatus().getCodeValue();
            if (code == 429) {
              s.refused429.increment();
              refused = true;
            } else if (code == 503) {
              s.unavailable503.increment();
            } else {
              s.otherImmediate.increment();
            }
            if (s.recording) {
              s.refusedLatency.recordValue(t);
            }
            // The server ends a refused request's stream itself.
            phase = CLOSING;
            return;
          }
          if (admits(r)) {
            s.admitted.increment();
            if (s.recording) {
              s.admittedLatency.recordValue(t);
            }
          } else {
            s.unmarked.increment();
          }
          phase = RESPONSE_HEADERS_SENT;
          out.onNext(RESPONSE_HEADERS);
        }
        case RESPONSE_HEADERS_SENT -> {
          phase = RESPONSE_BODY_SENT;
          out.onNext(s.responseBody);
        }
        case RESPONSE_BODY_SENT -> {
          // The HTTP stream is over: Envoy half-closes, the server charges and closes.
          phase = CLOSING;
          out.onCompleted();
        }
        default -> {
          // Nothing more is expected once closing.
        }
      }
    }

    @Override
    public void onError(Throwable t) {
      s.errors.increment();
      slot.next(false);
    }

    @Override
    public void onCompleted() {
      s.completed.increment();
      slot.next(refused);
    }
  }

  @Override
  public void close() {
    for (ManagedChannel ch : channels) {
      ch.shutdownNow();
    }
  }
}
