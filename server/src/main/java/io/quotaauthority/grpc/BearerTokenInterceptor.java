package io.quotaauthority.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.quotaauthority.grpc.BearerCredentials.Refusal;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Admits a call only with {@code authorization: Bearer <token>} of one of its {@link
 * BearerCredentials}; closes it UNAUTHENTICATED before any message is read otherwise. The decision
 * (and the audit actor it yields) is BearerCredentials'; this class only moves it in and out of
 * gRPC.
 */
public final class BearerTokenInterceptor implements ServerInterceptor {
  public static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  /** Optional: who the caller says is acting (the CLI sends the OS user), recorded as a claim. */
  public static final Metadata.Key<String> ACTOR =
      Metadata.Key.of("x-quota-actor", Metadata.ASCII_STRING_MARSHALLER);

  public static final Context.Key<String> ACTOR_KEY = Context.key("quota-actor");

  private final BearerCredentials credentials;
  private final Consumer<Refusal> onRefused;

  public BearerTokenInterceptor(BearerCredentials credentials) {
    this(credentials, reason -> {});
  }

  /**
   * @param onRefused told of each refused call before it is closed; runs on the transport thread,
   *     so it must not block
   */
  public BearerTokenInterceptor(BearerCredentials credentials, Consumer<Refusal> onRefused) {
    this.credentials = Objects.requireNonNull(credentials);
    this.onRefused = Objects.requireNonNull(onRefused);
  }

  /**
   * @param role who holds this token ("admin", "reporter"): the actor and the error text
   */
  public BearerTokenInterceptor(String token, String role) {
    this(BearerCredentials.single(role, token));
  }

  /**
   * As {@link #BearerTokenInterceptor(String, String)}, telling {@code onRefused} of each refusal.
   */
  public BearerTokenInterceptor(String token, String role, Consumer<Refusal> onRefused) {
    this(BearerCredentials.single(role, token), onRefused);
  }

  @Override
  public <Q, A> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
    BearerCredentials.Outcome outcome =
        credentials.check(headers.get(AUTHORIZATION), headers.get(ACTOR));
    if (outcome instanceof BearerCredentials.Outcome.Admitted admitted) {
      return Contexts.interceptCall(
          Context.current().withValue(ACTOR_KEY, admitted.actor()), call, headers, next);
    }
    BearerCredentials.Outcome.Refused refused = (BearerCredentials.Outcome.Refused) outcome;
    try {
      onRefused.accept(refused.reason());
    } catch (RuntimeException e) {
      // Counting a refusal must never turn it into an admitted call or an escaped exception.
    }
    call.close(Status.UNAUTHENTICATED.withDescription(refused.why()), new Metadata());
    return new ServerCall.Listener<>() {};
  }

  /** The actor of the current call, as set by this interceptor. */
  public static String actor() {
    String a = ACTOR_KEY.get();
    return a == null ? "unknown" : a;
  }
}
