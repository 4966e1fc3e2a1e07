package io.quotaauthority.authz;

import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.quotaauthority.keys.ColdPath;
import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyDecision;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyState;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.keys.Verdict;
import io.quotaauthority.provider.Endpoints;
import io.quotaauthority.provider.Provider;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Check's logic, free of gRPC: find the key, look it up in memory, decide, pick the response. A
 * cached key is answered on the calling thread with no I/O, and so is a key that is not live (see
 * {@link ColdPath}); any other uncached one is loaded once (shared by concurrent callers) and answered when the load completes or the caller's deadline passes,
 * whichever is first.
 */
public final class Authorizer {
  /** Longest wait for a cold load when the caller set no deadline (Envoy always sets one). */
  static final long DEFAULT_WAIT_NANOS = TimeUnit.SECONDS.toNanos(1);

  private final KeyCache cache;
  private final Clock clock;
  private final CheckRecorder recorder;

  public Authorizer(KeyCache cache, Clock clock, CheckRecorder recorder) {
    this.cache = cache;
    this.clock = clock;
    this.recorder = recorder;
  }

  /**
   * Answers one Check through {@code reply}, exactly once, possibly later on another thread.
   *
   * @param waitNanos how long the caller can wait for the database, or ≤ 0 when it set no deadline
   */
  public void check(CheckRequest request, long waitNanos, Consumer<CheckResponse> reply) {
    long start = System.nanoTime();
    AttributeContext attributes = request.getAttributes();
    AttributeContext.HttpRequest http = attributes.getRequest().getHttp();
    // Classified once (route hint, then path): the key's source, the denial's shape and the ?key=
    // stripping all follow it, and metering reaches the same answer by the same rule.
    Provider provider = KeyExtractor.provider(attributes);
    PresentedKey key = KeyExtractor.extract(http, provider);
    if (key == null) {
      deny(attributes, provider, Verdict.MISSING_KEY, start, reply);
      return;
    }
    if (!plausible(key.secret())) {
      // Never ours: no hashing, no cache entry, no query.
      deny(attributes, provider, Verdict.UNKNOWN_KEY, start, reply);
      return;
    }
    KeyHash hash = SecretHasher.hash(key.secret());
    KeyState state = cache.cached(hash);
    if (state != null) {
      decide(attributes, provider, state, key, start, reply);
      return;
    }
    if (cache.route(hash) == ColdPath.Route.UNKNOWN) {
      // No key by that hash (the live-hash set is complete, or the database said so just now).
      deny(attributes, provider, Verdict.UNKNOWN_KEY, start, reply);
      return;
    }
    long wait = waitNanos > 0 ? answerBy(waitNanos) : DEFAULT_WAIT_NANOS;
    // copy(): the timeout must fail only this caller's view, not the load other callers share.
    cache.load(hash).copy().orTimeout(wait, TimeUnit.NANOSECONDS).whenComplete((loaded, error) -> {
      if (error != null) {
        deny(attributes, provider, Verdict.UNAVAILABLE, start, reply);
      } else if (loaded == null) {
        deny(attributes, provider, Verdict.UNKNOWN_KEY, start, reply);
      } else {
        decide(attributes, provider, loaded, key, start, reply);
      }
    });
  }

  private void decide(AttributeContext attributes, Provider provider, KeyState state, PresentedKey key, long start,
      Consumer<CheckResponse> reply) {
    // Only limited keys can be exhausted, so only they need the pending-usage lookup; and only
    // they can be refused an endpoint, so only they need it classified.
    BigDecimal pending = state.limited() ? cache.pending(state.id()) : BigDecimal.ZERO;
    Endpoints.Row endpoint = state.limited() ? endpoint(attributes, provider) : Endpoints.ANY_READ;
    Verdict verdict = KeyDecision.decide(state, pending, nowMicros(), endpoint);
    if (verdict == Verdict.NOT_METERED) {
      recorder.record(verdict, System.nanoTime() - start);
      reply.accept(CheckResponses.endpointDenial(provider, endpoint));
      return;
    }
    if (verdict != Verdict.ALLOW) {
      deny(attributes, provider, verdict, start, reply);
      return;
    }
    recorder.record(Verdict.ALLOW, System.nanoTime() - start);
    // On Google's paths any ?key= is stripped, even when the key came in a header: a second key in
    // the URL must not travel to the provider either.
    boolean stripQueryKey = key.fromQuery() || provider == Provider.GEMINI;
    reply.accept(allow(state, pending, stripQueryKey));
  }

  /** The request's row of the endpoint table, by the provider Check already chose. */
  private static Endpoints.Row endpoint(AttributeContext attributes, Provider provider) {
    AttributeContext.HttpRequest http = attributes.getRequest().getHttp();
    return Endpoints.classify(provider, KeyExtractor.method(http), KeyExtractor.path(http));
  }

  private static CheckResponse allow(KeyState state, BigDecimal pending, boolean stripQueryKey) {
    boolean reusable = !stripQueryKey && pending.signum() == 0;
    if (reusable) {
      Object cached = state.allowResponse();
      if (cached != null) {
        return (CheckResponse) cached;
      }
    }
    CheckResponse built = CheckResponses.allow(Long.toString(state.id()),
        state.limited() ? state.remaining(pending) : null, stripQueryKey);
    if (reusable) {
      state.allowResponse(built);
    }
    return built;
  }

  private void deny(AttributeContext attributes, Provider provider, Verdict verdict, long start,
      Consumer<CheckResponse> reply) {
    recorder.record(verdict, System.nanoTime() - start);
    reply.accept(CheckResponses.denial(provider, verdict));
  }

  private long nowMicros() {
    Instant now = clock.instant();
    return now.getEpochSecond() * 1_000_000L + now.getNano() / 1_000;
  }

  /**
   * How long to wait for a cold load given the caller's time left: 30% of it (at most 100 ms) is
   * kept back so that our 503, with its body, reaches Envoy before Envoy's own timer fires and it
   * answers an empty 503 instead (with Envoy's 250 ms, we answer by about 175 ms).
   */
  static long answerBy(long remainingNanos) {
    long margin = Math.min(remainingNanos * 3 / 10, TimeUnit.MILLISECONDS.toNanos(100));
    return Math.max(1, remainingNanos - margin);
  }

  /** Printable ASCII of a sane length: anything else cannot be a key we issued. */
  static boolean plausible(String secret) {
    int n = secret.length();
    if (n > SecretHasher.MAX_SECRET_LENGTH) {
      return false;
    }
    for (int i = 0; i < n; i++) {
      char c = secret.charAt(i);
      if (c < 0x21 || c > 0x7e) {
        return false;
      }
    }
    return true;
  }
}
