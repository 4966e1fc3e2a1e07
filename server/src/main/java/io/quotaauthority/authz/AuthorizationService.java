package io.quotaauthority.authz;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.quotaauthority.keys.Verdict;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * envoy.service.auth.v3.Authorization over gRPC. It only translates: the deadline in, the {@link
 * Authorizer}'s answer out. Nothing may escape as a gRPC error, which Envoy would turn into a
 * bodiless 403: any failure becomes the 503 denial.
 */
public final class AuthorizationService extends AuthorizationGrpc.AuthorizationImplBase {
  private static final Logger log = LoggerFactory.getLogger(AuthorizationService.class);

  private final Authorizer authorizer;

  public AuthorizationService(Authorizer authorizer) {
    this.authorizer = authorizer;
  }

  @Override
  public void check(CheckRequest request, StreamObserver<CheckResponse> out) {
    Deadline deadline = Context.current().getDeadline();
    // An expired deadline still gets an answer (503 if the key must be loaded), never a wait.
    long waitNanos =
        deadline == null ? 0 : Math.max(1, deadline.timeRemaining(TimeUnit.NANOSECONDS));
    try {
      authorizer.check(request, waitNanos, response -> send(out, response));
    } catch (RuntimeException e) {
      // The key is never logged: only the failure's type and message.
      log.error("Check failed; answering 503: {}", e.toString());
      send(out, CheckResponses.denial(null, Verdict.UNAVAILABLE));
    }
  }

  private static void send(StreamObserver<CheckResponse> out, CheckResponse response) {
    // A late answer after the caller gave up (deadline, cancel) must not throw.
    if (out instanceof ServerCallStreamObserver<CheckResponse> call && call.isCancelled()) {
      return;
    }
    try {
      out.onNext(response);
      out.onCompleted();
    } catch (IllegalStateException alreadyClosed) {
      log.debug("Check answered after its call closed");
    }
  }
}
