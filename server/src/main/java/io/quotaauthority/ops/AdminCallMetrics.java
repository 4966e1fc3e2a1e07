package io.quotaauthority.ops;

import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Counts every call answered on the admin port by method and status code ({@code
 * quota_admin_calls_total}). Installed as a server-wide interceptor, so it sees calls the bearer
 * token check refuses (code UNAUTHENTICATED) too. Admin traffic is light: a map lookup per call is
 * fine here, unlike on the Check path.
 */
public final class AdminCallMetrics implements ServerInterceptor {
  private final Metrics metrics;
  private final ConcurrentHashMap<String, Counter> counters = new ConcurrentHashMap<>();

  public AdminCallMetrics(Metrics metrics) {
    this.metrics = metrics;
  }

  @Override
  public <Q, A> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
    String method = call.getMethodDescriptor().getFullMethodName();
    return next.startCall(
        new SimpleForwardingServerCall<>(call) {
          @Override
          public void close(Status status, Metadata trailers) {
            String code = status.getCode().name();
            counters
                .computeIfAbsent(method + ' ' + code, k -> metrics.adminCall(method, code))
                .increment();
            super.close(status, trailers);
          }
        },
        headers);
  }
}
