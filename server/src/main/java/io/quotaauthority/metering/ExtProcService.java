package io.quotaauthority.metering;

import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.Objects;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code envoy.service.ext_proc.v3.ExternalProcessor/Process}: one gRPC stream per HTTP request.
 * Served only on the metering listener, behind the metering token (see QuotaAuthority): a stream
 * reaches this class only once its credential was checked.
 * Only translates: each ProcessingRequest becomes a call on that stream's {@link MeteringSession}
 * and its answer is sent back, after which the session may do work that must not delay Envoy
 * (charging the usage of a finished response). The stream is failed only for a message with no phase at all;
 * anything else that goes wrong lets the request through.
 */
public final class ExtProcService extends ExternalProcessorGrpc.ExternalProcessorImplBase {
  private static final Logger log = LoggerFactory.getLogger(ExtProcService.class);

  private final Supplier<MeteringSession> sessions;

  public ExtProcService(UsageCharger charger) {
    this(() -> new MeteringSession(charger));
  }

  ExtProcService(Supplier<MeteringSession> sessions) {
    this.sessions = Objects.requireNonNull(sessions);
  }

  @Override
  public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> responses) {
    MeteringSession session = sessions.get();
    if (responses instanceof ServerCallStreamObserver<ProcessingResponse> call) {
      // With a cancel handler set, a send after cancellation is dropped instead of throwing; the
      // session is closed by onError, which gRPC also calls on cancellation.
      call.setOnCancelHandler(() -> { });
    }
    return new StreamObserver<>() {
      private boolean closed;

      @Override
      public void onNext(ProcessingRequest request) {
        if (closed) {
          return;
        }
        ProcessingRequest.RequestCase phase = request.getRequestCase();
        if (phase == ProcessingRequest.RequestCase.REQUEST_NOT_SET) {
          closed = true;
          session.streamClosed();
          responses.onError(Status.INVALID_ARGUMENT
              .withDescription("ProcessingRequest has no request phase").asRuntimeException());
          return;
        }
        ProcessingResponse response;
        try {
          response = switch (phase) {
            case REQUEST_HEADERS ->
                session.requestHeaders(request.getRequestHeaders(), request.getMetadataContext());
            case REQUEST_BODY -> session.requestBody(request.getRequestBody());
            case RESPONSE_HEADERS -> session.responseHeaders(request.getResponseHeaders());
            case RESPONSE_BODY -> session.responseBody(request.getResponseBody());
            case REQUEST_TRAILERS -> session.requestTrailers();
            case RESPONSE_TRAILERS -> session.responseTrailers();
            case REQUEST_NOT_SET -> throw new AssertionError("handled above");
          };
        } catch (RuntimeException e) {
          log.warn("metering failed in {}; passing it through", phase, e);
          response = MeteringSession.passThrough(phase);
        }
        // In observability mode Envoy ignores answers and asks for none.
        if (!request.getObservabilityMode()) {
          try {
            responses.onNext(response);
          } catch (RuntimeException e) {
            log.debug("ext_proc answer not sent: {}", e.toString());
          }
        }
        session.settle();
      }

      @Override
      public void onError(Throwable t) {
        // Envoy reset the stream: the client went away or the request was cut short.
        closed = true;
        session.streamClosed();
      }

      @Override
      public void onCompleted() {
        closed = true;
        session.streamClosed();
        try {
          responses.onCompleted();
        } catch (RuntimeException e) {
          log.debug("ext_proc stream not completed: {}", e.toString());
        }
      }
    };
  }
}
