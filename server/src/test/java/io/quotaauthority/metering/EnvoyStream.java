package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.Channel;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.IntConsumer;

/**
 * Plays Envoy's ext_proc filter on one gRPC stream: sends each phase as Envoy would (header values
 * in raw_value only) and waits for the answer.
 */
final class EnvoyStream {
  private static final Duration WAIT = Duration.ofSeconds(10);

  private final LinkedBlockingQueue<ProcessingResponse> answers = new LinkedBlockingQueue<>();
  private final CountDownLatch closed = new CountDownLatch(1);
  private volatile Throwable error;
  private final StreamObserver<ProcessingRequest> requests;

  EnvoyStream(Channel channel) {
    requests =
        ExternalProcessorGrpc.newStub(channel)
            .process(
                new StreamObserver<>() {
                  @Override
                  public void onNext(ProcessingResponse value) {
                    answers.add(value);
                  }

                  @Override
                  public void onError(Throwable t) {
                    error = t;
                    closed.countDown();
                  }

                  @Override
                  public void onCompleted() {
                    closed.countDown();
                  }
                });
  }

  static HeaderMap headers(Map<String, String> headers) {
    HeaderMap.Builder b = HeaderMap.newBuilder();
    headers.forEach(
        (k, v) ->
            b.addHeaders(
                HeaderValue.newBuilder()
                    .setKey(k)
                    .setRawValue(ByteString.copyFrom(v, StandardCharsets.UTF_8))));
    return b.build();
  }

  /** Request headers as Envoy sends them after ext_authz added x-quota-key-id. */
  static Map<String, String> requestHeaders(
      String path, String keyId, String requestId, int length) {
    Map<String, String> h = new LinkedHashMap<>();
    h.put(":authority", "llm-gateway.internal");
    h.put(":path", path);
    h.put(":method", "POST");
    h.put(":scheme", "https");
    h.put("content-type", "application/json");
    if (length >= 0) {
      h.put("content-length", Integer.toString(length));
    }
    h.put("accept-encoding", "gzip, deflate, br");
    h.put("user-agent", "OpenAI/Python 1.82.0");
    if (requestId != null) {
      h.put("x-request-id", requestId);
    }
    if (keyId != null) {
      h.put("x-quota-key-id", keyId);
    }
    return h;
  }

  ProcessingResponse send(ProcessingRequest request) {
    return send(request, WAIT);
  }

  ProcessingResponse send(ProcessingRequest request, Duration wait) {
    requests.onNext(request);
    try {
      ProcessingResponse r = answers.poll(wait.toMillis(), TimeUnit.MILLISECONDS);
      assertThat(r).as("answer to %s", request.getRequestCase()).isNotNull();
      return r;
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  /** Observability mode: Envoy expects no answer. */
  void sendWithoutAnswer(ProcessingRequest request) {
    requests.onNext(request);
  }

  int unansweredCount() {
    return answers.size();
  }

  ProcessingResponse requestHeaders(Map<String, String> headers, boolean endOfStream) {
    return send(
        ProcessingRequest.newBuilder()
            .setRequestHeaders(
                HttpHeaders.newBuilder().setHeaders(headers(headers)).setEndOfStream(endOfStream))
            .build());
  }

  ProcessingResponse requestBody(byte[] body) {
    return requestBody(body, WAIT);
  }

  ProcessingResponse requestBody(byte[] body, Duration wait) {
    return send(
        ProcessingRequest.newBuilder()
            .setRequestBody(
                HttpBody.newBuilder().setBody(ByteString.copyFrom(body)).setEndOfStream(true))
            .build(),
        wait);
  }

  ProcessingResponse responseHeaders(int status, String contentType) {
    Map<String, String> h = new LinkedHashMap<>();
    h.put(":status", Integer.toString(status));
    h.put("content-type", contentType);
    h.put("date", "Sun, 01 Jun 2025 12:00:00 GMT");
    return responseHeaders(h);
  }

  ProcessingResponse responseHeaders(Map<String, String> headers) {
    return send(
        ProcessingRequest.newBuilder()
            .setResponseHeaders(HttpHeaders.newBuilder().setHeaders(headers(headers)))
            .build());
  }

  ProcessingResponse responseBody(byte[] bytes, int offset, int length, boolean endOfStream) {
    return send(
        ProcessingRequest.newBuilder()
            .setResponseBody(
                HttpBody.newBuilder()
                    .setBody(ByteString.copyFrom(bytes, offset, length))
                    .setEndOfStream(endOfStream))
            .build());
  }

  /**
   * Sends the body as STREAMED mode does, in chunks cut at random offsets, end_of_stream on the
   * last one if asked; asserts every answer leaves the body alone; calls afterEach after each.
   */
  void responseBodyInChunks(
      byte[] body, Random random, int maxChunk, boolean endOfStream, IntConsumer afterEach) {
    int at = 0;
    while (at < body.length) {
      int n = Math.min(body.length - at, 1 + random.nextInt(maxChunk));
      boolean last = at + n == body.length;
      ProcessingResponse r = responseBody(body, at, n, last && endOfStream);
      assertThat(r).isEqualTo(ExtProcServiceTest.CONTINUE_RESPONSE_BODY);
      at += n;
      afterEach.accept(at);
    }
  }

  /** Envoy half-closes the stream (the HTTP stream ended). */
  void complete() {
    requests.onCompleted();
    awaitClosed();
  }

  /** Envoy resets the stream (the client went away). */
  void cancel() {
    requests.onError(new RuntimeException("downstream reset"));
  }

  void awaitClosed() {
    try {
      assertThat(closed.await(WAIT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  Throwable error() {
    return error;
  }
}
