package io.quotaauthority.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Admits a call only with {@code authorization: Bearer <token>}; closes it UNAUTHENTICATED before
 * any message is read otherwise. Tokens are compared as SHA-256 digests with MessageDigest.isEqual,
 * so the comparison takes the same time whatever the presented token's length or content.
 */
public final class BearerTokenInterceptor implements ServerInterceptor {
  public static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  /** Optional: who is acting (the CLI sends the OS user), recorded in the audit. */
  public static final Metadata.Key<String> ACTOR =
      Metadata.Key.of("x-quota-actor", Metadata.ASCII_STRING_MARSHALLER);
  public static final Context.Key<String> ACTOR_KEY = Context.key("quota-actor");

  /** Why a call was refused; told to the refusal listener (metrics, warnings), never the token. */
  public enum Refusal {
    /** No authorization header. */
    MISSING,
    /** An authorization header that is not "Bearer <token>". */
    MALFORMED,
    /** A bearer token other than the expected one. */
    WRONG;

    public String tag() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  private final byte[] expectedDigest;
  private final String role;
  private final Consumer<Refusal> onRefused;

  /** @param role who holds this token ("admin", "reporter"): the default actor and error text */
  public BearerTokenInterceptor(String token, String role) {
    this(token, role, reason -> { });
  }

  /**
   * @param onRefused told of each refused call before it is closed; runs on the transport thread,
   *     so it must not block
   */
  public BearerTokenInterceptor(String token, String role, Consumer<Refusal> onRefused) {
    this.expectedDigest = digest(token);
    this.role = role;
    this.onRefused = Objects.requireNonNull(onRefused);
  }

  @Override
  public <Q, A> ServerCall.Listener<Q> interceptCall(ServerCall<Q, A> call, Metadata headers,
      ServerCallHandler<Q, A> next) {
    String header = headers.get(AUTHORIZATION);
    if (header == null) {
      return refuse(call, Refusal.MISSING, "missing authorization: Bearer <" + role + " token>");
    }
    if (header.length() < 7 || !header.substring(0, 7).toLowerCase(Locale.ROOT).equals("bearer ")) {
      return refuse(call, Refusal.MALFORMED, "authorization must be 'Bearer <" + role + " token>'");
    }
    if (!MessageDigest.isEqual(expectedDigest, digest(header.substring(7).trim()))) {
      return refuse(call, Refusal.WRONG, "wrong " + role + " token");
    }
    String actor = headers.get(ACTOR);
    String who = role + (actor == null || actor.isBlank() ? "" : ":" + sanitize(actor));
    return Contexts.interceptCall(Context.current().withValue(ACTOR_KEY, who), call, headers, next);
  }

  private <Q, A> ServerCall.Listener<Q> refuse(ServerCall<Q, A> call, Refusal reason, String why) {
    try {
      onRefused.accept(reason);
    } catch (RuntimeException e) {
      // Counting a refusal must never turn it into an admitted call or an escaped exception.
    }
    call.close(Status.UNAUTHENTICATED.withDescription(why), new Metadata());
    return new ServerCall.Listener<>() {};
  }

  /** The actor of the current call, as set by this interceptor. */
  public static String actor() {
    String a = ACTOR_KEY.get();
    return a == null ? "unknown" : a;
  }

  private static String sanitize(String actor) {
    String s = actor.replaceAll("[^A-Za-z0-9@._-]", "_");
    return s.length() > 64 ? s.substring(0, 64) : s;
  }

  private static byte[] digest(String token) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
