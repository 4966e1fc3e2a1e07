package io.quotaauthority.console;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.MetadataUtils;
import io.quotaauthority.http.HttpListener.Response;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The Connect protocol (unary, JSON) for every RPC of one gRPC service, written once: {@code POST
 * /<package.Service>/<Method>} with a JSON body is parsed by protobuf's own JSON mapping into the
 * method's request message, called on {@code channel} (an in-process server built like the admin
 * port, so the bearer token, the errors and the audit are the admin API's own), and the answer is
 * printed back as JSON; a gRPC error becomes Connect's HTTP status and {@code {"code","message"}}
 * body. The RPCs come from the service descriptor, so an RPC added to the proto is served with no
 * change here.
 */
public final class AdminBridge {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final JsonFormat.Parser PARSER = JsonFormat.parser(); // unknown fields refused
  private static final JsonFormat.Printer PRINTER =
      JsonFormat.printer().includingDefaultValueFields().omittingInsignificantWhitespace();

  static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

  private record Rpc(MethodDescriptor<Object, Object> method, Message prototype) {}

  private final Channel channel;
  private final Map<String, Rpc> rpcs;
  private final Semaphore inFlight;

  /**
   * @param maxInFlight calls past this many at once are refused RESOURCE_EXHAUSTED (429) at once,
   *     so the console cannot queue work without bound
   */
  @SuppressWarnings("unchecked")
  public AdminBridge(Channel channel, ServiceDescriptor service, int maxInFlight) {
    this.channel = channel;
    this.inFlight = new Semaphore(maxInFlight);
    Map<String, Rpc> byPath = new LinkedHashMap<>();
    for (MethodDescriptor<?, ?> m : service.getMethods()) {
      if (m.getType() != MethodDescriptor.MethodType.UNARY
          || !(m.getRequestMarshaller() instanceof MethodDescriptor.PrototypeMarshaller<?> p)
          || !(p.getMessagePrototype() instanceof Message prototype)) {
        continue; // Connect's unary JSON carries unary protobuf RPCs only
      }
      byPath.put(
          "/" + m.getFullMethodName(), new Rpc((MethodDescriptor<Object, Object>) m, prototype));
    }
    this.rpcs = Collections.unmodifiableMap(byPath);
  }

  /** The paths served, {@code /quota.v1.KeyAdminService/CreateKey} and the rest. */
  public Set<String> paths() {
    return rpcs.keySet();
  }

  public boolean serves(String path) {
    return rpcs.containsKey(path);
  }

  /**
   * Calls the RPC at {@code path}. Never blocks: the answer completes when the call does.
   *
   * @param authorization the request's Authorization header, passed on as is (null: none)
   * @param timeoutMs Connect's {@code connect-timeout-ms}, or null; at most {@link
   *     #DEFAULT_TIMEOUT}
   */
  public CompletionStage<Response> call(
      String path, String authorization, String timeoutMs, byte[] body) {
    Rpc rpc = rpcs.get(path);
    if (rpc == null) {
      return done(error(Status.Code.UNIMPLEMENTED, "no such method: " + path, 404));
    }
    Duration timeout = timeout(timeoutMs);
    if (timeout == null) {
      return done(
          error(Status.Code.INVALID_ARGUMENT, "connect-timeout-ms must be 1 to 10 digits", 400));
    }
    Message request;
    try {
      request = parse(rpc.prototype(), body);
    } catch (InvalidProtocolBufferException | CharacterCodingException e) {
      return done(
          error(
              Status.Code.INVALID_ARGUMENT,
              "request body is not valid JSON for "
                  + rpc.prototype().getDescriptorForType().getFullName()
                  + ": "
                  + e.getMessage(),
              400));
    }
    Metadata headers = new Metadata();
    if (authorization != null) {
      try {
        headers.put(
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), authorization);
      } catch (IllegalArgumentException e) {
        // Not ASCII: no token of ours. Leave it out, so the interceptor refuses it as missing.
      }
    }
    if (!inFlight.tryAcquire()) {
      return done(
          error(Status.Code.RESOURCE_EXHAUSTED, "too many console calls in flight; retry", 429));
    }
    CompletableFuture<Response> answer = new CompletableFuture<>();
    try {
      Channel withHeaders =
          ClientInterceptors.intercept(channel, MetadataUtils.newAttachHeadersInterceptor(headers));
      ListenableFuture<Object> call =
          ClientCalls.futureUnaryCall(
              withHeaders.newCall(
                  rpc.method(),
                  CallOptions.DEFAULT.withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)),
              request);
      call.addListener(
          () -> {
            inFlight.release();
            answer.complete(answerOf(call));
          },
          MoreExecutors.directExecutor());
    } catch (RuntimeException e) {
      inFlight.release();
      answer.complete(error(Status.Code.INTERNAL, "internal error", 500));
    }
    return answer;
  }

  private static Message parse(Message prototype, byte[] body)
      throws InvalidProtocolBufferException, CharacterCodingException {
    String text =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(body))
            .toString();
    Message.Builder builder = prototype.newBuilderForType();
    if (!text.isBlank()) {
      PARSER.merge(text, builder);
    }
    return builder.build();
  }

  private static Response answerOf(ListenableFuture<Object> call) {
    try {
      Message reply = (Message) call.get();
      return json(200, PRINTER.print(reply));
    } catch (ExecutionException e) {
      Status status = Status.fromThrowable(e.getCause());
      String message = status.getDescription() == null ? "" : status.getDescription();
      if (!(e.getCause() instanceof StatusRuntimeException)) {
        status = Status.INTERNAL;
        message = "internal error";
      }
      return error(status.getCode(), message, ConnectErrors.httpStatus(status.getCode()));
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      return error(Status.Code.INTERNAL, "internal error", 500);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return error(Status.Code.INTERNAL, "internal error", 500);
    }
  }

  /** Connect's error body: {@code {"code":"invalid_argument","message":"quota_usd ..."}}. */
  static Response error(Status.Code code, String message, int httpStatus) {
    ObjectNode body = JSON.createObjectNode();
    body.put("code", ConnectErrors.name(code));
    body.put("message", message);
    return json(httpStatus, body.toString());
  }

  private static Response json(int status, String body) {
    return Response.of(status, "application/json", body);
  }

  private static CompletionStage<Response> done(Response r) {
    return CompletableFuture.completedFuture(r);
  }

  static Duration timeout(String timeoutMs) {
    if (timeoutMs == null) {
      return DEFAULT_TIMEOUT;
    }
    if (!timeoutMs.matches("[0-9]{1,10}") || Long.parseLong(timeoutMs) == 0) {
      return null;
    }
    Duration asked = Duration.ofMillis(Long.parseLong(timeoutMs));
    return asked.compareTo(DEFAULT_TIMEOUT) < 0 ? asked : DEFAULT_TIMEOUT;
  }
}
