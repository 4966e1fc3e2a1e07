package io.quotaauthority.authz;

import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.quotaauthority.keys.ColdPath;
import io.quotaauthority.keys.IpRanges;
import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyDecision;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyPolicies;
import io.quotaauthority.keys.KeyState;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.PendingUsage;
import io.quotaauthority.keys.PeriodBudget;
import io.quotaauthority.keys.RateLimits;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.keys.SpendWindows;
import io.quotaauthority.keys.UsageWindows;
import io.quotaauthority.keys.Verdict;
import io.quotaauthority.provider.Endpoints;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderError;
import io.quotaauthority.text.VisibleAscii;
import io.quotaauthority.usage.RatePermits;
import io.quotaauthority.usage.ReporterHolds;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Check's logic, free of gRPC: find the key, look it up in memory, decide, pick the response. A
 * cached key is answered on the calling thread with no I/O, and so is a key that is not live (see
 * {@link ColdPath}); any other uncached one is loaded once (shared by concurrent callers) and
 * answered when the load completes or the caller's deadline passes, whichever is first.
 */
public final class Authorizer {
  private static final Logger log = LoggerFactory.getLogger(Authorizer.class);

  /** Longest wait for a cold load when the caller set no deadline (Envoy always sets one). */
  static final long DEFAULT_WAIT_NANOS = TimeUnit.SECONDS.toNanos(1);

  private final KeyCache cache;
  private final PendingUsage pendingUsage;
  private final Clock clock;
  private final CheckRecorder recorder;

  /** Holds for usage-stream reporters; null when holds are off. */
  private final ReporterHolds holds;

  /** Request permits for keys with requests_per_minute; null: such limits are not enforced. */
  private final RatePermits permits;

  public Authorizer(
      KeyCache cache, PendingUsage pendingUsage, Clock clock, CheckRecorder recorder) {
    this(cache, pendingUsage, clock, recorder, null);
  }

  /**
   * @param holds takes the hold of a key with hold_usd_per_request before it is allowed; null when
   *     holds are off (then such keys are allowed without one)
   */
  public Authorizer(
      KeyCache cache,
      PendingUsage pendingUsage,
      Clock clock,
      CheckRecorder recorder,
      ReporterHolds holds) {
    this(cache, pendingUsage, clock, recorder, holds, null);
  }

  /**
   * @param permits grants the permits of keys with requests_per_minute; null when not enforced
   *     (tests)
   */
  public Authorizer(
      KeyCache cache,
      PendingUsage pendingUsage,
      Clock clock,
      CheckRecorder recorder,
      ReporterHolds holds,
      RatePermits permits) {
    this.permits = permits;
    this.holds = holds;
    this.cache = cache;
    this.pendingUsage = pendingUsage;
    this.clock = clock;
    this.recorder = recorder;
  }

  /**
   * Answers one Check through {@code reply}, exactly once, possibly later on another thread.
   *
   * @param waitNanos how long the caller can wait for the database, or ≤ 0 when it set no deadline
   */
  public void check(CheckRequest request, long waitNanos, Consumer<CheckAnswer> reply) {
    check(CheckFacts.of(request), waitNanos, reply);
  }

  /**
   * Answers one Check, read as its {@link CheckFacts}, through {@code reply}, exactly once,
   * possibly later on another thread.
   *
   * @param waitNanos how long the caller can wait for the database, or ≤ 0 when it set no deadline
   */
  public void check(CheckFacts request, long waitNanos, Consumer<CheckAnswer> reply) {
    long start = System.nanoTime();
    // Exactly once, whatever throws where: a failure after the answer went out must not send a
    // second one, and a failure before it must still send one.
    AnswerOnce once = new AnswerOnce(reply);
    Provider provider = null;
    try {
      // Classified once (route hint, then path): the key's source, the denial's shape and the ?key=
      // stripping all follow it, and metering reaches the same answer by the same rule.
      provider = KeyExtractor.provider(request);
      checkClassified(request, provider, waitNanos, start, once);
    } catch (RuntimeException e) {
      failed(provider, e, start, once);
    }
  }

  private void checkClassified(
      CheckFacts attributes, Provider provider, long waitNanos, long start, AnswerOnce reply) {
    PresentedKey key = KeyExtractor.extract(attributes, provider);
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
    long wait = waitNanos > 0 ? answerBy(waitNanos) : DEFAULT_WAIT_NANOS;
    if (state != null) {
      decide(attributes, provider, state, key, start, start + wait, reply);
      return;
    }
    if (cache.route(hash) == ColdPath.Route.UNKNOWN) {
      // No key by that hash (the live-hash set is complete, or the database said so just now).
      deny(attributes, provider, Verdict.UNKNOWN_KEY, start, reply);
      return;
    }
    // copy(): the timeout must fail only this caller's view, not the load other callers share.
    cache
        .load(hash)
        .copy()
        .orTimeout(wait, TimeUnit.NANOSECONDS)
        .whenComplete(
            (loaded, error) -> {
              // This runs on the loader's (or the timer's) thread, outside check()'s try: a throw
              // here
              // would vanish with the future and leave Envoy waiting out its timer, so it is
              // answered
              // like any other failure.
              try {
                if (error != null) {
                  deny(attributes, provider, Verdict.UNAVAILABLE, start, reply);
                } else if (loaded == null) {
                  deny(attributes, provider, Verdict.UNKNOWN_KEY, start, reply);
                } else {
                  decide(attributes, provider, loaded, key, start, start + wait, reply);
                }
              } catch (RuntimeException e) {
                failed(provider, e, start, reply);
              }
            });
  }

  /** Any failure is the 503 denial in the provider's shape (null: not yet known, the plain one). */
  private void failed(
      Provider provider, RuntimeException e, long start, Consumer<CheckAnswer> reply) {
    // The key is never logged: only the failure's type and message.
    log.error("Check failed; answering 503: {}", e.toString());
    try {
      recorder.record(Verdict.UNAVAILABLE, System.nanoTime() - start);
    } catch (RuntimeException ignored) {
      // The recorder may be what failed; the answer matters more than the count.
    }
    reply.accept(CheckResponses.denial(provider, Verdict.UNAVAILABLE));
  }

  /** Passes on the first answer only (extends the flag itself: one small object per Check). */
  private static final class AnswerOnce extends AtomicBoolean implements Consumer<CheckAnswer> {
    private final transient Consumer<CheckAnswer> reply;

    AnswerOnce(Consumer<CheckAnswer> reply) {
      this.reply = reply;
    }

    @Override
    public void accept(CheckAnswer response) {
      offer(response);
    }

    /** Passes the answer on if it is the first; false when another one went first. */
    boolean offer(CheckAnswer response) {
      if (compareAndSet(false, true)) {
        reply.accept(response);
        return true;
      }
      return false;
    }
  }

  /**
   * @param answerBy System.nanoTime() by which the answer must go out (a hold waiting for the lease
   *     store is answered 503 then)
   */
  private void decide(
      CheckFacts attributes,
      Provider provider,
      KeyState state,
      PresentedKey key,
      long start,
      long answerBy,
      AnswerOnce reply) {
    // Only limited keys can be exhausted, so only they need the pending-usage lookup; and only
    // they can be refused an endpoint, so only they need it classified.
    KeyPolicies policies = state.policies();
    SpendWindows windows = policies.windows();
    BigDecimal pending =
        state.limited() || windows.active() ? pendingUsage.of(state.id()) : BigDecimal.ZERO;
    // A model allow-list is enforced by metering, which can only see a metered endpoint's model;
    // a window's spend too.
    Endpoints.Row endpoint =
        state.limited() || policies.restrictsModels() || windows.active()
            ? endpoint(attributes, provider)
            : Endpoints.ANY_READ;
    // Only a key with an IP list needs the client's address parsed.
    byte[] address = policies.restrictsAddresses() ? clientAddress(attributes) : null;
    Instant now = clock.instant();
    UsageWindows.Track track = null;
    // What the decision and the allow's headers read of the track, read once under its lock.
    long[] figures = null;
    long[] spent = null;
    if (policies.tracksUsage()) {
      UsageWindows tracking = cache.windows();
      track = tracking == null ? null : tracking.track(state.id());
      if (track != null) {
        figures = track.figures(now.toEpochMilli());
        // The spend per window leads the figures (by ordinal), as the decision reads it.
        spent = windows.active() ? figures : null;
      }
    }
    Verdict verdict =
        KeyDecision.decide(state, pending, KeyState.toMicros(now), endpoint, address, spent);
    if (verdict == Verdict.WINDOW_EXCEEDED) {
      SpendWindows.Window full =
          windows.exceeded(spent == null ? new long[UsageWindows.Track.FIGURES] : spent, pending);
      long admitsAt =
          track == null
              ? now.toEpochMilli() + full.minutes() * 60_000L
              : track.belowAt(
                  full,
                  UsageWindows.units(windows.limit(full)),
                  UsageWindows.units(pending),
                  now.toEpochMilli());
      recorder.record(verdict, System.nanoTime() - start);
      reply.accept(
          CheckAnswer.of(
              CheckResponses.windowDenial(
                  provider, full, windows.limit(full), Instant.ofEpochMilli(admitsAt), now)));
      return;
    }
    if (verdict == Verdict.PERIOD_EXHAUSTED) {
      recorder.record(verdict, System.nanoTime() - start);
      reply.accept(
          CheckAnswer.of(
              CheckResponses.periodDenial(provider, policies.period(), state.quota(), now)));
      return;
    }
    if (state.periodOver(KeyState.toMicros(now))) {
      // The period ended and its row is not rolled over yet: nothing of the new one is spent.
      pending = BigDecimal.ZERO;
    }
    if (verdict == Verdict.NOT_METERED) {
      recorder.record(verdict, System.nanoTime() - start);
      reply.accept(CheckResponses.endpointDenial(provider, endpoint));
      return;
    }
    if (verdict != Verdict.ALLOW) {
      deny(attributes, provider, verdict, start, reply);
      return;
    }
    // On Google's paths any ?key= is stripped, even when the key came in a header: a second key in
    // the URL must not travel to the provider either.
    boolean stripQueryKey = key.fromQuery() || provider == Provider.GEMINI;
    boolean periodOver = state.periodOver(KeyState.toMicros(now));
    RateLimits rates = policies.rates();
    if (rates.tokensPerMinute() > 0 && track != null) {
      // Tokens are known only once a request's usage is reported: refused while the last minute's
      // reported tokens (this minute and the one before) reach the limit.
      long tokens = figures[UsageWindows.Track.FIGURE_TOKENS];
      if (tokens >= rates.tokensPerMinute()) {
        recorder.record(Verdict.RATE_LIMITED, System.nanoTime() - start);
        reply.accept(
            CheckAnswer.of(
                CheckResponses.rateDenial(
                    provider,
                    false,
                    rates.tokensPerMinute(),
                    Instant.ofEpochMilli(
                        track.tokensBelowAt(rates.tokensPerMinute(), now.toEpochMilli())),
                    now)));
        return;
      }
    }
    BigDecimal pendingNow = pending;
    // Read once above, for the decision; the allow's headers read the same figures.
    UsageWindows.Track keyTrack = track;
    long[] keyFigures = figures;
    Runnable admit =
        () ->
            admit(
                provider,
                state,
                keyTrack,
                keyFigures,
                pendingNow,
                stripQueryKey,
                periodOver,
                start,
                answerBy,
                reply);
    if (rates.requestsPerMinute() > 0 && permits != null) {
      // Last of every check: it takes a permit, which a refusal after it would waste.
      CompletableFuture<RatePermits.Answer> permit =
          permits.acquire(state.id(), rates.requestsPerMinute());
      if (permit.isDone() && !permit.isCompletedExceptionally()) {
        onPermit(provider, rates, permit.join(), admit, start, reply);
        return;
      }
      permit
          .copy()
          .orTimeout(Math.max(1, answerBy - System.nanoTime()), TimeUnit.NANOSECONDS)
          .whenComplete(
              (answer, error) -> {
                try {
                  if (error != null) {
                    answerUnavailable(provider, start, reply);
                  } else {
                    onPermit(provider, rates, answer, admit, start, reply);
                  }
                } catch (RuntimeException e) {
                  failed(provider, e, start, reply);
                }
              });
      return;
    }
    admit.run();
  }

  private void onPermit(
      Provider provider,
      RateLimits rates,
      RatePermits.Answer answer,
      Runnable admit,
      long start,
      AnswerOnce reply) {
    if (answer.admitted()) {
      admit.run();
      return;
    }
    if (reply.offer(
        CheckAnswer.of(
            CheckResponses.rateDenial(
                provider,
                true,
                rates.requestsPerMinute(),
                Instant.ofEpochMilli(answer.retryAtMillis()),
                clock.instant())))) {
      recorder.record(Verdict.RATE_LIMITED, System.nanoTime() - start);
    }
  }

  /** The last step of an allowed request: its hold if it takes one, then the allow response. */
  private void admit(
      Provider provider,
      KeyState state,
      UsageWindows.Track track,
      long[] figures,
      BigDecimal pending,
      boolean stripQueryKey,
      boolean periodOver,
      long start,
      long answerBy,
      AnswerOnce reply) {
    if (holds != null && state.holdsAtCheck()) {
      allowOnHold(
          provider,
          state,
          track,
          figures,
          pending,
          stripQueryKey,
          periodOver,
          start,
          answerBy,
          reply);
      return;
    }
    CheckAnswer allowed = allow(state, track, figures, pending, stripQueryKey, periodOver);
    // Recorded before the answer goes out, as every verdict is: a recorder that throws is answered
    // 503 (by the caller's catch), not left after an allow already sent.
    recorder.record(Verdict.ALLOW, System.nanoTime() - start);
    reply.offer(allowed);
  }

  private static final String[] NO_HEADERS = {};

  /**
   * The key's window and rate-limit figures as the allow's response headers, encoded: each window's
   * remaining USD and when its oldest usage ages out, the request and token limits and the tokens
   * left this minute.
   *
   * @param track the key's usage track as the decision found it (null when not tracked)
   * @param figures what the decision read of the track ({@link UsageWindows.Track#figures}), null
   *     with the track
   */
  private static byte[] limitHeaders(
      KeyState state, UsageWindows.Track track, long[] figures, BigDecimal pending) {
    KeyPolicies policies = state.policies();
    RateLimits rates = policies.rates();
    if (!policies.tracksUsage()) {
      // A request limit alone: its header is all there is to say.
      return AllowEncoding.responseHeaders(
          rates.requestsPerMinute() > 0
              ? new String[] {
                GatewayHeaders.RATE_LIMIT_REQUESTS, Integer.toString(rates.requestsPerMinute())
              }
              : NO_HEADERS);
    }
    // The headers say the track's figures and the pending usage. They move only when usage is
    // charged or a minute passes, so the headers made for them are kept on the key's track:
    // formatting four amounts and four instants per Check cost more than the rest of a policy
    // key's decision.
    long pendingUnits = UsageWindows.units(pending);
    if (track != null
        && track.memo() instanceof LimitHeaders m
        && m.policies() == policies
        && m.pendingUnits() == pendingUnits
        && Arrays.equals(m.figures(), figures)) {
      return m.encoded();
    }
    List<String> headers = new ArrayList<>(12);
    SpendWindows windows = policies.windows();
    if (windows.active()) {
      windowHeaders(headers, windows, figures, pendingUnits);
    }
    if (rates.requestsPerMinute() > 0) {
      headers.add(GatewayHeaders.RATE_LIMIT_REQUESTS);
      headers.add(Integer.toString(rates.requestsPerMinute()));
    }
    if (rates.tokensPerMinute() > 0) {
      long tokens = figures == null ? 0 : figures[UsageWindows.Track.FIGURE_TOKENS];
      headers.add(GatewayHeaders.RATE_LIMIT_TOKENS);
      headers.add(Long.toString(rates.tokensPerMinute()));
      headers.add(GatewayHeaders.RATE_REMAINING_TOKENS);
      headers.add(Long.toString(Math.max(0, rates.tokensPerMinute() - tokens)));
    }
    byte[] made = AllowEncoding.responseHeaders(headers.toArray(NO_HEADERS));
    if (track != null) {
      track.memo(new LimitHeaders(policies, figures, pendingUnits, made));
    }
    return made;
  }

  /** Headers encoded from these figures under these policies, kept on the key's track. */
  private record LimitHeaders(
      KeyPolicies policies, long[] figures, long pendingUnits, byte[] encoded) {}

  /**
   * Each of the key's windows' remaining USD and, while it holds usage, when its oldest usage ages
   * out (README "Key policies").
   *
   * @param figures the track's figures, or null when the key is not tracked (nothing spent yet)
   */
  private static void windowHeaders(
      List<String> headers, SpendWindows windows, long[] figures, long pendingUnits) {
    int n = SpendWindows.Window.values().length;
    for (SpendWindows.Window w : SpendWindows.Window.values()) {
      long limit = windows.limitUnits(w);
      if (limit == 0) {
        continue;
      }
      long used =
          figures == null
              ? pendingUnits
              : UsageWindows.saturatedAdd(figures[w.ordinal()], pendingUnits);
      headers.add(GatewayHeaders.windowRemaining(w.label()));
      headers.add(Money.format(UsageWindows.usd(Math.max(0, limit - used))));
      long resets = figures == null ? -1 : figures[n + w.ordinal()];
      if (resets > 0) {
        headers.add(GatewayHeaders.windowResetsAt(w.label()));
        headers.add(Instant.ofEpochMilli(resets).toString());
      }
    }
  }

  /**
   * The downstream client's address as Envoy determined it (attributes.source.address: the peer of
   * the connection, or with use_remote_address and xff_num_trusted_hops the address Envoy took from
   * x-forwarded-for; see envoy/README.md), or null when there is none Check can read.
   */
  static byte[] clientAddress(CheckFacts attributes) {
    return IpRanges.address(attributes.sourceAddress());
  }

  /**
   * Allows a key with hold_usd_per_request only on a hold of that amount for its reporter (README
   * "Holds for usage-stream reporters"), whose id goes upstream: at once while this instance's
   * lease covers it, else when the lease store answered (on a lease asker's thread, never this
   * one), or 503 at {@code answerBy}. Too little budget left for the hold is 429 insufficient_quota
   * saying what the hold is and what remains. A hold taken after the answer went out is given back.
   */
  private void allowOnHold(
      Provider provider,
      KeyState state,
      UsageWindows.Track track,
      long[] figures,
      BigDecimal pending,
      boolean stripQueryKey,
      boolean periodOver,
      long start,
      long answerBy,
      AnswerOnce reply) {
    CompletableFuture<Optional<String>> held =
        holds.hold(state.id(), state.holdPerRequest(), state.chargeHoldAtExpiry());
    if (!held.isDone()) {
      // Only the timer's copy times out: the hold itself still completes, and is given back then.
      held.copy()
          .orTimeout(Math.max(1, answerBy - System.nanoTime()), TimeUnit.NANOSECONDS)
          .whenComplete(
              (id, error) -> {
                if (error != null) {
                  answerUnavailable(provider, start, reply);
                }
              });
    }
    held.whenComplete(
        (id, error) -> {
          try {
            if (error != null) {
              answerUnavailable(provider, start, reply);
            } else if (id.isEmpty()) {
              recorder.record(Verdict.EXHAUSTED, System.nanoTime() - start);
              reply.offer(
                  CheckAnswer.of(
                      CheckResponses.refusal(
                          provider,
                          // 8 decimals, the ledger's scale; what remains rounded down.
                          ProviderError.checkHoldRefused(
                              state.holdPerRequest().setScale(Money.SCALE).toPlainString(),
                              holds
                                  .available(state.id())
                                  .setScale(Money.SCALE, RoundingMode.DOWN)
                                  .toPlainString()))));
            } else {
              CheckAnswer allowed =
                  CheckAnswer.ofWire(
                      allowBytes(
                          state, track, figures, pending, stripQueryKey, periodOver, id.get()));
              if (reply.offer(allowed)) {
                recorder.record(Verdict.ALLOW, System.nanoTime() - start);
              } else {
                holds.abandon(id.get());
              }
            }
          } catch (RuntimeException e) {
            id.ifPresent(holds::abandon);
            failed(provider, e, start, reply);
          }
        });
  }

  private void answerUnavailable(Provider provider, long start, AnswerOnce reply) {
    if (reply.offer(CheckResponses.denial(provider, Verdict.UNAVAILABLE))) {
      recorder.record(Verdict.UNAVAILABLE, System.nanoTime() - start);
    }
  }

  /** The request's row of the endpoint table, by the provider Check already chose. */
  private static Endpoints.Row endpoint(CheckFacts attributes, Provider provider) {
    return Endpoints.classify(provider, attributes.method(), attributes.path());
  }

  /**
   * The allow answer, written as bytes for this Check (see {@link AllowEncoding}): nothing is kept
   * per key, which would cost every cached key more heap than its own state.
   */
  private CheckAnswer allow(
      KeyState state,
      UsageWindows.Track track,
      long[] figures,
      BigDecimal pending,
      boolean stripQueryKey,
      boolean periodOver) {
    return CheckAnswer.ofWire(
        allowBytes(state, track, figures, pending, stripQueryKey, periodOver, null));
  }

  private byte[] allowBytes(
      KeyState state,
      UsageWindows.Track track,
      long[] figures,
      BigDecimal pending,
      boolean stripQueryKey,
      boolean periodOver,
      String holdId) {
    int cap = state.maxConcurrentRequests();
    return AllowEncoding.encode(
        Long.toString(state.id()),
        state.limited()
            ? Money.format(periodOver ? state.quota() : state.remaining(pending))
            : null,
        stripQueryKey,
        cap > 0 ? Integer.toString(cap) : null,
        state.policies().restrictsModels() ? state.policies().modelAllow().header() : null,
        resetsAt(state, periodOver),
        holdId,
        limitHeaders(state, track, figures, pending));
  }

  private void deny(
      CheckFacts attributes,
      Provider provider,
      Verdict verdict,
      long start,
      Consumer<CheckAnswer> reply) {
    recorder.record(verdict, System.nanoTime() - start);
    reply.accept(CheckResponses.denial(provider, verdict));
  }

  /** When the key's current budget period ends, for x-quota-budget-resets-at; else null. */
  private String resetsAt(KeyState state, boolean periodOver) {
    PeriodBudget p = state.policies().period();
    if (!state.limited() || !p.active() || p.endsAt() == null) {
      return null;
    }
    // Over in memory: the next period's end is not in the row yet, so none is promised.
    return periodOver ? null : periodEndText(p.endsAt());
  }

  /** The last period end formatted, and its text: keys on one calendar share their period's end. */
  private record PeriodEnd(Instant at, String text) {}

  private volatile PeriodEnd lastPeriodEnd = new PeriodEnd(Instant.EPOCH, Instant.EPOCH.toString());

  /**
   * RFC 3339 text of a period's end. Formatting an Instant costs more than the rest of a budget
   * key's allow; every key on the same period and zone shares one end, so the last one is kept.
   */
  private String periodEndText(Instant endsAt) {
    PeriodEnd last = lastPeriodEnd;
    if (last.at().equals(endsAt)) {
      return last.text();
    }
    PeriodEnd made = new PeriodEnd(endsAt, endsAt.toString());
    lastPeriodEnd = made;
    return made.text();
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

  /** Visible ASCII of a sane length: anything else cannot be a key we issued. */
  static boolean plausible(String secret) {
    return secret.length() <= SecretHasher.MAX_SECRET_LENGTH
        && VisibleAscii.firstInvalid(secret) < 0;
  }
}
