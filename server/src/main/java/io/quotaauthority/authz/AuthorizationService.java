package io.quotaauthority.authz;

import com.google.protobuf.InvalidProtocolBufferException;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.BindableService;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Drainable;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import io.quotaauthority.grpc.MalformedRequests;
import io.quotaauthority.keys.Verdict;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * envoy.service.auth.v3.Authorization over gRPC. It only translates: the request's bytes in (read
 * by {@link CheckReader}, never built into a CheckRequest unless they are unusual), the deadline
 * in, the {@link Authorizer}'s answer out as bytes encoded once per answer ({@link CheckAnswer}).
 *
 * <p>Nothing may escape as a gRPC error, which Envoy would turn into a bodiless 403: any failure
 * becomes the 503 denial. The one gRPC error is for bytes that are no CheckRequest at all (Envoy
 * never sends them): INVALID_ARGUMENT naming the field when a string is not UTF-8.
 */
public final class AuthorizationService implements BindableService {
  private static final Logger log = LoggerFactory.getLogger(AuthorizationService.class);

  /** Check with the request as bytes and the answer as its encoding; same name, same schema. */
  static final MethodDescriptor<byte[], CheckAnswer> CHECK =
      AuthorizationGrpc.getCheckMethod().toBuilder(MalformedRequests.BYTES, new AnswerBytes())
          .build();

  private final Authorizer authorizer;

  public AuthorizationService(Authorizer authorizer) {
    this.authorizer = authorizer;
  }

  @Override
  public ServerServiceDefinition bindService() {
    ServiceDescriptor original = AuthorizationGrpc.getServiceDescriptor();
    // The schema descriptor keeps server reflection describing the real CheckRequest.
    ServiceDescriptor descriptor =
        ServiceDescriptor.newBuilder(original.getName())
            .setSchemaDescriptor(original.getSchemaDescriptor())
            .addMethod(CHECK)
            .build();
    return ServerServiceDefinition.builder(descriptor)
        .addMethod(CHECK, ServerCalls.asyncUnaryCall(this::check))
        .build();
  }

  void check(byte[] request, StreamObserver<CheckAnswer> out) {
    CheckFacts facts = CheckReader.read(request);
    if (facts == null) {
      // Unusual bytes: the full parse decides whether they are a request at all.
      try {
        facts = CheckFacts.of(CheckRequest.parseFrom(request));
      } catch (InvalidProtocolBufferException e) {
        out.onError(
            Status.INVALID_ARGUMENT
                .withDescription(
                    MalformedRequests.describe(AuthorizationGrpc.getCheckMethod(), request))
                .asRuntimeException());
        return;
      }
    }
    Deadline deadline = Context.current().getDeadline();
    // An expired deadline still gets an answer (503 if the key must be loaded), never a wait.
    long waitNanos =
        deadline == null ? 0 : Math.max(1, deadline.timeRemaining(TimeUnit.NANOSECONDS));
    try {
      authorizer.check(facts, waitNanos, answer -> send(out, answer));
    } catch (RuntimeException e) {
      // The key is never logged: only the failure's type and message.
      log.error("Check failed; answering 503: {}", e.toString());
      send(out, CheckResponses.denial(null, Verdict.UNAVAILABLE));
    }
  }

  private static void send(StreamObserver<CheckAnswer> out, CheckAnswer answer) {
    // A late answer after the caller gave up (deadline, cancel) must not throw.
    if (out instanceof ServerCallStreamObserver<CheckAnswer> call && call.isCancelled()) {
      return;
    }
    try {
      out.onNext(answer);
      out.onCompleted();
    } catch (IllegalStateException alreadyClosed) {
      log.debug("Check answered after its call closed");
    }
  }

  /** The answer as its encoding, written straight into gRPC's frame (Drainable). */
  static final class AnswerBytes implements MethodDescriptor.Marshaller<CheckAnswer> {
    @Override
    public InputStream stream(CheckAnswer value) {
      return new Encoded(value.wire());
    }

    @Override
    public CheckAnswer parse(InputStream stream) {
      try {
        return CheckAnswer.of(CheckResponse.parseFrom(stream));
      } catch (IOException e) {
        throw Status.INTERNAL
            .withDescription("not a CheckResponse")
            .withCause(e)
            .asRuntimeException();
      }
    }
  }

  /** Bytes gRPC can size (KnownLength) and copy in one write (Drainable). */
  private static final class Encoded extends ByteArrayInputStream
      implements KnownLength, Drainable {
    Encoded(byte[] bytes) {
      super(bytes);
    }

    @Override
    public int drainTo(OutputStream target) throws IOException {
      int n = count - pos;
      target.write(buf, pos, n);
      pos = count;
      return n;
    }
  }
}
