package io.quotaauthority.metering;

import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.Objects;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code envoy.service.ext_proc.v3.ExternalProcessor/Process}: one gRPC stream per HTTP request.
 * Served only on the metering listener, behind the metering token (see QuotaAuthority): a stream
 * reaches this class only once its credential was checked. Only translates: each ProcessingRequest
 * becomes a call on that stream's {@link MeteringSession} and its answer is sent back, after which
 * the session may do work that must not delay Envoy (charging the usage of a finished response).
 * The stream is failed only for a message with no phase at all; anything else that goes wrong lets
 * the request through.
 *
 * <p>Nothing runs on the transport thread but hand-off: each message is handled on the stream's
 * {@link MeteringExecutor.Lane}, in order; when the executor is saturated the message is answered
 * unread at once (CONTINUE: the request passes, unmetered, counted as {@code
 * quota_metering_unmetered_total{reason="overloaded"}}).
 *
 * <p>A request the session refuses (an unpriced model on a key with a quota) is answered with an
 * immediate response and the stream is completed by the server right after it, as for a local reply
 * below.
 *
 * <p>A stream whose first message is response headers carries an Envoy local reply (Envoy 1.37+
 * sends our own denials through ext_proc): it is answered CONTINUE and completed at once by the
 * server, counted as {@code quota_metering_unmetered_total{reason="local_reply"}}.
 */
public final class ExtProcService extends ExternalProcessorGrpc.ExternalProcessorImplBase {
  private static final Logger log = LoggerFactory.getLogger(ExtProcService.class);

  private final Supplier<MeteringSession> sessions;
  private final MeteringExecutor executor;

  public ExtProcService(UsageCharger charger, MeteringExecutor executor) {
    this(() -> new MeteringSession(charger), executor);
  }

  ExtProcService(Supplier<MeteringSession> sessions, MeteringExecutor executor) {
    this.sessions = Objects.requireNonNull(sessions);
    this.executor = Objects.requireNonNull(executor);
    // The tokenizer encodings for estimates load in the background from now, not on a request.
    TokenEstimate.warmUp();
  }

  @Override
  public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> responses) {
    MeteringSession session = sessions.get();
    MeteringExecutor.Lane lane = executor.lane();
    ServerCallStreamObserver<ProcessingResponse> call =
        responses instanceof ServerCallStreamObserver<ProcessingResponse> c ? c : null;
    if (call != null) {
      // With a cancel handler set, a send after cancellation is dropped instead of throwing; the
      // session is closed by onError, which gRPC also calls on cancellation.
      call.setOnCancelHandler(() -> {});
      // One message at a time: the next is asked for only once this one is answered, so a stream
      // holds at most one decoded message here, and a fast sender (observability mode, STREAMED
      // response bodies) is held back by HTTP/2 flow control instead of filling a queue. It also
      // means the lane is idle whenever a message arrives, so a refusal can be answered at once.
      call.disableAutoRequest();
      call.request(1);
    }
    return new StreamObserver<>() {
      /** Set on the transport thread (onError/onCompleted) or the lane (a phaseless message). */
      private volatile boolean closed;

      @Override
      public void onNext(ProcessingRequest request) {
        if (closed) {
          return;
        }
        if (!lane.tryExecute(() -> handle(request), this::requestNext)) {
          // Saturated: answer unread (the request passes, metering stops for it, counted). The
          // lane is idle (see request(1) above), so this answer keeps the stream's order.
          ProcessingRequest.RequestCase phase = request.getRequestCase();
          if (phase == ProcessingRequest.RequestCase.REQUEST_NOT_SET) {
            handle(request); // no work: only the stream's failure
          } else {
            answer(request, session.overloaded(phase));
          }
          requestNext();
        }
      }

      /**
       * Set on the lane once the stream was failed. Not {@code closed}: a half-close can arrive
       * while this stream's last message still waits on the lane, and that message must be handled.
       */
      private volatile boolean failed;

      /** Runs on the stream's lane. */
      private void handle(ProcessingRequest request) {
        if (failed) {
          return;
        }
        ProcessingRequest.RequestCase phase = request.getRequestCase();
        if (phase == ProcessingRequest.RequestCase.REQUEST_NOT_SET) {
          failed = true;
          closed = true;
          session.streamClosed();
          responses.onError(
              Status.INVALID_ARGUMENT
                  .withDescription("ProcessingRequest has no request phase")
                  .asRuntimeException());
          return;
        }
        ProcessingResponse response;
        try {
          response =
              switch (phase) {
                case REQUEST_HEADERS -> session.requestHeaders(request.getRequestHeaders());
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
        if (response == null) {
          // The admission waits for the database: answered on this lane once it is decided,
          // after which Envoy sends the next phase (it waits for this answer before going on).
          CompletionStage<ProcessingResponse> later = session.takeDeferred();
          later.whenComplete(
              (r, e) ->
                  lane.execute(
                      () -> {
                        if (failed) {
                          return;
                        }
                        answer(request, r != null ? r : MeteringSession.passThrough(phase));
                        session.settle();
                        if (session.finished()) {
                          end();
                        }
                      }));
          return;
        }
        answer(request, response);
        session.settle();
        if (session.finished()) {
          end();
        }
      }

      /**
       * Runs on the lane: completes the stream from the server side with OK once the session has
       * nothing more to meter. Envoy's ext_proc filter takes a clean close as "processing complete"
       * and lets the rest of the HTTP stream through without sending it here. Messages that were
       * already in flight are ignored, and Envoy's later half-close finds it ended.
       */
      private void end() {
        failed = true;
        closed = true;
        session.streamClosed();
        try {
          responses.onCompleted();
        } catch (RuntimeException e) {
          log.debug("ext_proc stream not completed: {}", e.toString());
        }
      }

      private void answer(ProcessingRequest request, ProcessingResponse response) {
        // In observability mode Envoy ignores answers and asks for none.
        if (!request.getObservabilityMode()) {
          try {
            responses.onNext(response);
          } catch (RuntimeException e) {
            log.debug("ext_proc answer not sent: {}", e.toString());
          }
        }
      }

      private void requestNext() {
        if (call != null && !closed) {
          call.request(1);
        }
      }

      @Override
      public void onError(Throwable t) {
        // Envoy reset the stream: the client went away or the request was cut short. Charged on
        // the lane, after any message of this stream still being handled there.
        closed = true;
        lane.execute(session::streamClosed);
      }

      @Override
      public void onCompleted() {
        closed = true;
        lane.execute(
            () -> {
              session.streamClosed();
              if (failed) {
                return; // already answered with INVALID_ARGUMENT, or ended by end()
              }
              try {
                responses.onCompleted();
              } catch (RuntimeException e) {
                log.debug("ext_proc stream not completed: {}", e.toString());
              }
            });
      }
    };
  }
}
