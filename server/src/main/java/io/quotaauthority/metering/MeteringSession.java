package io.quotaauthority.metering;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.HeadersResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.TrailersResponse;
import io.quotaauthority.keys.KeyIds;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.ModelAllowList;
import io.quotaauthority.provider.Endpoints;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderError;
import io.quotaauthority.text.AsciiDecimal;
import io.quotaauthority.usage.UsageValidation;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.EnumMap;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;

/**
 * Meters one HTTP request as Envoy's ext_proc filter walks it through its phases: request headers
 * (who pays, which provider), request body (which model; ask an OpenAI stream for its usage),
 * response headers (status, framing), response body chunks (usage), then the end of the stream.
 *
 * <p>It is never in the way but for two refusals, both only for a key with a quota and both an
 * immediate response before anything goes upstream: a model the price table cannot price (or whose
 * model cannot be read) gets the provider-shaped 403 {@code model_not_priced} (UsageCharger
 * decides; Gemini at the request headers, the others at the request body), and a background
 * response (OpenAI Responses with {@code "background": true}, whose usage would come on a later GET
 * nobody meters) gets {@code endpoint_not_metered}. Otherwise every phase answers CONTINUE, the
 * response body is never changed, and an internal error turns metering off for the rest of the
 * request and lets it through. The one change it makes is to an OpenAI-style streaming completion
 * request without {@code stream_options.include_usage}, which gets it set (else the stream carries
 * no usage), with content-length updated to match; and it drops the request's accept-encoding so
 * the provider answers in plain text that can be read.
 *
 * <p>Charging happens once: right after the answer to the last response body chunk is sent (see
 * {@link #settle()}), or, if the stream is closed or cancelled before that (client went away,
 * upstream reset), with what had been seen by then. A response that began but ended without the
 * provider's final usage (client gone, upstream reset, an event stream that stopped short) is
 * charged an estimate, marked as such in the ledger: per bucket the larger of what the provider had
 * reported and what {@link TokenEstimate} counts in the request's text and the response text seen.
 * The charge is priced as the model the response names when the table prices it (an alias answered
 * by a dated model), else as the request's model, at the service tier the response (else the
 * request) states. Nothing is charged for a non-2xx response, a complete JSON response without
 * usage, or a request without a valid x-quota-key-id.
 *
 * <p>The charge's report id is made here, one per stream ("m-", the time, 80 random bits), never
 * taken from the request: a client that can choose its x-request-id must not be able to make a
 * second request look like a repeat of its first. The x-request-id is kept beside it, for
 * correlation with Envoy's access log only. Calls come one at a time, in the stream's order
 * (ExtProcService runs each stream's messages serially on the metering executor, off the transport
 * threads); methods are synchronized so that each call sees the previous one's writes whichever
 * pool thread ran it, and so that the memory probe used by tests reads a consistent state.
 */
final class MeteringSession {
  private static final Logger log = LoggerFactory.getLogger(MeteringSession.class);

  static final String REQUEST_ID_HEADER = "x-request-id";

  /** Thread-safe; seeded once from the OS, then non-blocking. */
  private static final SecureRandom RANDOM = new SecureRandom();

  private static final ProcessingResponse CONTINUE_REQUEST_HEADERS =
      ProcessingResponse.newBuilder()
          .setRequestHeaders(
              HeadersResponse.newBuilder().setResponse(CommonResponse.getDefaultInstance()))
          .build();
  private static final ProcessingResponse CONTINUE_REQUEST_BODY =
      ProcessingResponse.newBuilder()
          .setRequestBody(
              BodyResponse.newBuilder().setResponse(CommonResponse.getDefaultInstance()))
          .build();
  private static final ProcessingResponse CONTINUE_RESPONSE_HEADERS =
      ProcessingResponse.newBuilder()
          .setResponseHeaders(
              HeadersResponse.newBuilder().setResponse(CommonResponse.getDefaultInstance()))
          .build();
  private static final ProcessingResponse CONTINUE_RESPONSE_BODY =
      ProcessingResponse.newBuilder()
          .setResponseBody(
              BodyResponse.newBuilder().setResponse(CommonResponse.getDefaultInstance()))
          .build();
  private static final ProcessingResponse CONTINUE_REQUEST_TRAILERS =
      ProcessingResponse.newBuilder()
          .setRequestTrailers(TrailersResponse.getDefaultInstance())
          .build();
  private static final ProcessingResponse CONTINUE_RESPONSE_TRAILERS =
      ProcessingResponse.newBuilder()
          .setResponseTrailers(TrailersResponse.getDefaultInstance())
          .build();

  /**
   * Asks Envoy to send nothing more for a request we do not meter. Honoured only when the filter
   * has allow_mode_override; otherwise the later phases come and are answered CONTINUE.
   */
  private static final ProcessingMode NOTHING_MORE =
      ProcessingMode.newBuilder()
          .setRequestBodyMode(ProcessingMode.BodySendMode.NONE)
          .setResponseHeaderMode(ProcessingMode.HeaderSendMode.SKIP)
          .setResponseBodyMode(ProcessingMode.BodySendMode.NONE)
          .build();

  private static final ProcessingMode NO_RESPONSE_BODY =
      ProcessingMode.newBuilder().setResponseBodyMode(ProcessingMode.BodySendMode.NONE).build();

  /**
   * Marks a request as admitted by metering (README "Holds"): Envoy's fail-closed stage after
   * ext_proc refuses a request of a key with a quota that lacks it, so a request whose metering
   * stream failed (Envoy's ext_proc fails open) never reaches a provider unheld. Set only on the
   * answers that admit: a request that needs no hold (not metered), an unlimited key's, and a
   * limited key's once its hold is taken.
   */
  private static final HeaderValueOption ADMITTED_MARK =
      HeaderValueOption.newBuilder()
          .setHeader(
              HeaderValue.newBuilder()
                  .setKey(GatewayHeaders.ADMITTED)
                  .setRawValue(ByteString.copyFromUtf8("1")))
          .setAppendAction(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD)
          .build();

  /**
   * Not metered for want of a usable key id (Check did not run, or something else wrote it): not
   * marked admitted either, so the fail-closed stage refuses it as it would an unheld request.
   */
  private static final ProcessingResponse SKIP_AFTER_REQUEST_HEADERS =
      CONTINUE_REQUEST_HEADERS.toBuilder().setModeOverride(NOTHING_MORE).build();

  /** Not metered (nothing there costs anything): admitted, and nothing more is sent. */
  private static final ProcessingResponse SKIP_ADMITTED =
      ProcessingResponse.newBuilder()
          .setRequestHeaders(
              HeadersResponse.newBuilder()
                  .setResponse(
                      CommonResponse.newBuilder()
                          .setHeaderMutation(
                              HeaderMutation.newBuilder().addSetHeaders(ADMITTED_MARK))))
          .setModeOverride(NOTHING_MORE)
          .build();

  private static final ProcessingResponse SKIP_AFTER_RESPONSE_HEADERS =
      CONTINUE_RESPONSE_HEADERS.toBuilder().setModeOverride(NO_RESPONSE_BODY).build();

  /**
   * Compressed responses cannot be read, so the provider is asked for identity encoding. A key with
   * a quota is not marked admitted yet: its hold is taken at the request body.
   */
  private static final ProcessingResponse METERED_REQUEST_HEADERS =
      ProcessingResponse.newBuilder()
          .setRequestHeaders(
              HeadersResponse.newBuilder()
                  .setResponse(
                      CommonResponse.newBuilder()
                          .setHeaderMutation(
                              HeaderMutation.newBuilder().addRemoveHeaders("accept-encoding"))))
          .build();

  /** As above, for an unlimited key: admitted at once (it needs no hold). */
  private static final ProcessingResponse METERED_REQUEST_HEADERS_ADMITTED =
      ProcessingResponse.newBuilder()
          .setRequestHeaders(
              HeadersResponse.newBuilder()
                  .setResponse(
                      CommonResponse.newBuilder()
                          .setHeaderMutation(
                              HeaderMutation.newBuilder()
                                  .addRemoveHeaders("accept-encoding")
                                  .addSetHeaders(ADMITTED_MARK))))
          .build();

  /** The request body passes unchanged, and a key with a quota is marked admitted on its hold. */
  private static final ProcessingResponse ADMITTED_REQUEST_BODY =
      ProcessingResponse.newBuilder()
          .setRequestBody(
              BodyResponse.newBuilder()
                  .setResponse(
                      CommonResponse.newBuilder()
                          .setHeaderMutation(
                              HeaderMutation.newBuilder().addSetHeaders(ADMITTED_MARK))))
          .build();

  /**
   * A background response (OpenAI Responses, "background": true) for a key with a quota: its usage
   * arrives on a later GET that is never metered, so it is refused here, one reply per provider
   * built at start (README "Endpoints").
   */
  private static final Map<Provider, ProcessingResponse> BACKGROUND_REFUSALS = backgroundRefusals();

  private static Map<Provider, ProcessingResponse> backgroundRefusals() {
    Map<Provider, ProcessingResponse> m = new EnumMap<>(Provider.class);
    for (Provider p : Provider.values()) {
      m.put(
          p,
          ImmediateReplies.refusal(
              p, ProviderError.endpointNotMetered(Endpoints.BACKGROUND_RESPONSES)));
    }
    return m;
  }

  private final UsageCharger charger;
  private final MeteringMetrics metrics;

  /** Null when this request is not metered (or metering was turned off by an error). */
  private ProviderRoute route;

  private long keyId;

  /**
   * Whether the paying key has a quota, as Check said in x-quota-key-limited; true unless Check
   * said "false", so a request Check did not mark is treated with the stricter rules.
   */
  private boolean keyLimited;

  /**
   * Whether Check said the key has a model allow-list (x-quota-key-models): its requests are
   * admitted (marked) only once their model is known to be on it.
   */
  private boolean modelRestricted;

  /** The key's allow-list as Check passed it; null when none, or when the header was malformed. */
  private ModelAllowList models;

  /** Made by {@link #newReportId()} when a metered request's headers arrive. */
  private String reportId;

  /** The request's x-request-id, or null when it had none usable: correlation only. */
  private String requestId;

  /**
   * The hold a limited key's request was admitted on (or {@link UsageCharger.Admission#UNHELD});
   * null before admission and once it was handed to its charge or released.
   */
  private UsageCharger.Admission admission;

  /** The concurrency slot of a capped key's request, held until its stream ends; else null. */
  private UsageCharger.Admission slot;

  /**
   * The request body's answer when its admission waits for the database: taken by ExtProcService,
   * which sends it when it completes ({@link #takeDeferred}).
   */
  private CompletionStage<ProcessingResponse> deferred;

  /** The stream ended ({@link #streamClosed}): an admission decided later only gives back. */
  private boolean streamEnded;

  private boolean requestHasContentLength;
  private boolean requestBodySeen;
  private String model;

  /** The request's input tokens as {@link TokenEstimate} counts them; 0 before its body. */
  private long promptTokens;

  /** The service tier the request asked for (OpenAI service_tier), or null. */
  private String serviceTier;

  /** Reads the response body; null before 2xx response headers and after charging. */
  private UsageExtractor extractor;

  private boolean charged;

  /** The response body ended; charging waits for {@link #settle()}. */
  private boolean bodyEnded;

  /** Request headers arrived on this stream (whether or not the request is metered). */
  private boolean requestHeadersSeen;

  /** This stream has nothing more to meter: the service ends it after sending the answer. */
  private boolean finished;

  MeteringSession(UsageCharger charger) {
    this.charger = charger;
    this.metrics = charger.metrics();
  }

  /** The answer that lets a phase through unchanged, for errors outside a session. */
  static ProcessingResponse passThrough(ProcessingRequest.RequestCase phase) {
    return switch (phase) {
      case REQUEST_HEADERS -> CONTINUE_REQUEST_HEADERS;
      case REQUEST_BODY -> CONTINUE_REQUEST_BODY;
      case RESPONSE_HEADERS -> CONTINUE_RESPONSE_HEADERS;
      case RESPONSE_BODY -> CONTINUE_RESPONSE_BODY;
      case REQUEST_TRAILERS -> CONTINUE_REQUEST_TRAILERS;
      case RESPONSE_TRAILERS -> CONTINUE_RESPONSE_TRAILERS;
      case REQUEST_NOT_SET -> throw new IllegalArgumentException("no phase");
    };
  }

  /**
   * The provider comes from the path (and the anthropic-version header), by the rule Check follows:
   * ext_proc gets no route hint. The forwarded ext_authz metadata is not read for it, because Check
   * puts no provider there (only key_id; the provider is per route and the allow response is built
   * once per key version).
   *
   * <p>Null when a capped key's slot waits for the database ({@link #takeDeferred} then gives the
   * answer).
   */
  synchronized ProcessingResponse requestHeaders(HttpHeaders headers) {
    requestHeadersSeen = true;
    try {
      return onRequestHeaders(headers.getHeaders());
    } catch (RuntimeException e) {
      return failed("request_headers", e, CONTINUE_REQUEST_HEADERS);
    }
  }

  private ProcessingResponse onRequestHeaders(HeaderMap h) {
    Optional<ProviderRoute> r =
        ProviderRoute.of(
            EnvoyHeaders.single(h, ":method"),
            EnvoyHeaders.single(h, ":path"),
            !EnvoyHeaders.all(h, "anthropic-version").isEmpty());
    if (r.isEmpty()) {
      return SKIP_ADMITTED;
    }
    String provider = r.get().provider().wireName();
    String key = EnvoyHeaders.single(h, GatewayHeaders.KEY_ID);
    // The id rule of every other path (KeyIds): Check writes this header, so anything else is
    // foreign.
    long parsedKeyId = key == null ? -1 : KeyIds.tryParse(key);
    if (parsedKeyId < 0) {
      metrics.unmetered(
          key == null
              ? MeteringMetrics.Unmetered.MISSING_KEY_ID
              : MeteringMetrics.Unmetered.BAD_KEY_ID);
      // The path is not logged: Gemini accepts the API key in its query string.
      log.debug(
          "{} request without a single decimal {}: not metered", provider, GatewayHeaders.KEY_ID);
      return SKIP_AFTER_REQUEST_HEADERS;
    }
    // Metered with or without it: the report id does not come from the request.
    String id = EnvoyHeaders.single(h, REQUEST_ID_HEADER);
    route = r.get();
    keyId = parsedKeyId;
    keyLimited = GatewayHeaders.limited(EnvoyHeaders.single(h, GatewayHeaders.KEY_LIMITED));
    reportId = newReportId();
    // Kept for correlation only when it is what the ledger accepts as an id (one rule for both).
    requestId = UsageValidation.isReportId(id) ? id : null;
    model = route.pathModel().orElse(null);
    requestHasContentLength = !EnvoyHeaders.all(h, "content-length").isEmpty();
    String allowList = EnvoyHeaders.single(h, GatewayHeaders.KEY_MODELS);
    // Present but unreadable (two headers, a bad entry) allows nothing: fail closed.
    modelRestricted =
        allowList != null || !EnvoyHeaders.all(h, GatewayHeaders.KEY_MODELS).isEmpty();
    models = allowList == null ? null : ModelAllowList.fromHeader(allowList);
    if (model != null && modelRestricted && !modelAllowed()) {
      // Gemini names the model in its path: refused before the body is even sent.
      return refuseModel();
    }
    if (model != null) {
      // Gemini names the model in its path: an unpriced one is refused before the body is sent.
      Optional<ProcessingResponse> refused = refuseUnpriced(null);
      if (refused.isPresent()) {
        return refused.get();
      }
    }
    int cap = concurrencyCap(EnvoyHeaders.single(h, GatewayHeaders.KEY_CONCURRENCY));
    if (cap > 0) {
      // Counted from admission to the end of the stream, on every instance (README "Holds").
      return whenDecided(
          charger.admitSlot(keyId, cap),
          charger::releaseSlot,
          this::afterSlot,
          "request_headers",
          CONTINUE_REQUEST_HEADERS);
    }
    return meteredHeaders();
  }

  private ProcessingResponse meteredHeaders() {
    // A model-restricted key is admitted at its body, once its model is known to be allowed (a
    // Gemini path already said which, so it is admitted here when it needs no hold).
    boolean modelPending = modelRestricted && model == null;
    return keyLimited || modelPending ? METERED_REQUEST_HEADERS : METERED_REQUEST_HEADERS_ADMITTED;
  }

  /** Whether a model-restricted key's request must be marked admitted at its body. */
  private boolean admittedAtBody() {
    return keyLimited || modelRestricted;
  }

  private boolean modelAllowed() {
    return models != null && models.allows(model);
  }

  /** 403 model_not_allowed before upstream, naming the model (README "Key policies"). */
  private ProcessingResponse refuseModel() {
    metrics.refused(MeteringMetrics.REFUSED_MODEL_NOT_ALLOWED);
    return refuse(ProviderError.modelNotAllowed(model), true);
  }

  /** The request headers' answer once the slot is decided: refused, or metered. */
  private ProcessingResponse afterSlot(UsageCharger.Admission s) {
    slot = s;
    return s.refused() ? refuseHold(s) : meteredHeaders();
  }

  /** The rest of a phase's answer, once a hold or slot is decided. */
  private interface Decided {
    ProcessingResponse answer(UsageCharger.Admission a) throws IOException;
  }

  /**
   * The answer {@code next} makes of an admission: at once when it is decided already (a hold the
   * lease covers), else null, and {@link #takeDeferred} gives the answer, made on the thread that
   * leased once the database answered. A stream ended meanwhile gets only {@code passThrough} and
   * the hold or slot goes straight back through {@code giveBack}.
   */
  private ProcessingResponse whenDecided(
      CompletableFuture<UsageCharger.Admission> decision,
      Consumer<UsageCharger.Admission> giveBack,
      Decided next,
      String phase,
      ProcessingResponse passThrough) {
    if (decision.isDone()) {
      try {
        return next.answer(decision.join());
      } catch (IOException e) {
        // The phase's own catch turns it into a metering error, as for any other failure.
        throw new UncheckedIOException(e);
      }
    }
    deferred = decision.thenApply(a -> decidedLater(a, giveBack, next, phase, passThrough));
    return null;
  }

  private synchronized ProcessingResponse decidedLater(
      UsageCharger.Admission a,
      Consumer<UsageCharger.Admission> giveBack,
      Decided next,
      String phase,
      ProcessingResponse passThrough) {
    if (streamEnded || route == null) {
      giveBack.accept(a);
      return passThrough;
    }
    try {
      return next.answer(a);
    } catch (RuntimeException | IOException e) {
      return failed(phase, e, passThrough);
    }
  }

  /**
   * The answer to the request body, or null when it waits for the database ({@link #takeDeferred}
   * then gives it).
   */
  synchronized ProcessingResponse requestBody(HttpBody body) {
    try {
      return onRequestBody(body);
    } catch (RuntimeException | IOException e) {
      return failed("request_body", e, CONTINUE_REQUEST_BODY);
    }
  }

  private ProcessingResponse onRequestBody(HttpBody body) throws IOException {
    if (route == null || requestBodySeen) {
      return CONTINUE_REQUEST_BODY;
    }
    // BUFFERED mode sends the whole body in one message; should more come, only the first is read.
    requestBodySeen = true;
    // Read in place: the message already holds the body, and a copy would double it.
    ByteString bytes = body.getBody();
    // The prompt's text is gathered in the same pass, for the estimate a cut stream is charged.
    TokenEstimate.Prompt prompt = new TokenEstimate.Prompt();
    RequestBody request = RequestBody.inspect(bytes, prompt);
    // Passed through unread (metering goes on: the response may still name the model and usage).
    request.unread().ifPresent(metrics::unreadBody);
    if (model == null) {
      model = request.model().orElse(null);
      // The allow-list before the price: a model the key may not use is refused as that.
      if (modelRestricted && !modelAllowed()) {
        return refuseModel();
      }
      // Not known from the path: the body was the last chance to learn it.
      Optional<ProcessingResponse> refused =
          refuseUnpriced(
              request
                  .unread()
                  .map(RequestBody.Unread::describe)
                  .orElse("the request body has no \"model\" string"));
      if (refused.isPresent()) {
        return refused.get();
      }
    }
    // An unread body may say "background": true to the provider (a duplicate key, say): for a key
    // with a quota it is refused like a background response, since nobody could tell.
    if (keyLimited
        && (request.background() || request.unread().isPresent())
        && route.endpoint() == Endpoints.OPENAI_RESPONSES) {
      return refuseBackground();
    }
    // Counted now, once the model (which may follow the messages) is known; only the count is kept.
    // Exactly for a stream only: a whole-body answer is almost never cut after it began, so the
    // cheap byte bound serves it and the tokenizer's cost is paid where estimates happen.
    // A key with a quota is held on this count, so it is exact there too (the tokenizer's).
    promptTokens =
        prompt.tokens(
            request.stream() || keyLimited
                ? TokenEstimate.Tokenizer.of(route.provider(), model)
                : TokenEstimate.Tokenizer.BYTE_BOUND);
    serviceTier = request.serviceTier().orElse(null);
    if (keyLimited) {
      // A body that could not be read gave no prompt text: every byte may be a token (a token is
      // at least one byte of its text), which bounds any prompt it holds.
      boolean unread = request.unread().isPresent();
      return whenDecided(
          charger.admit(
              keyId,
              route.provider(),
              model,
              serviceTier,
              unread ? bytes.size() : promptTokens,
              unread ? 0 : prompt.mediaTokens(),
              request.outputLimit(),
              request.choices()),
          charger::release,
          a -> afterAdmission(a, request, bytes),
          "request_body",
          CONTINUE_REQUEST_BODY);
    }
    return afterAdmission(null, request, bytes);
  }

  /**
   * The request body's answer after admission: refused, or passed (marked admitted for a limited
   * key, with an OpenAI stream asked for its usage).
   *
   * @param a the limited key's admission, or null for a key that needs none
   */
  private ProcessingResponse afterAdmission(
      UsageCharger.Admission a, RequestBody request, ByteString bytes) throws IOException {
    if (a != null) {
      admission = a;
      if (a.refused()) {
        return refuseHold(a);
      }
    }
    if (!route.addsStreamUsage() || !request.needsIncludeUsage()) {
      return admittedAtBody() ? ADMITTED_REQUEST_BODY : CONTINUE_REQUEST_BODY;
    }
    ByteString rewritten = request.withIncludeUsage(bytes);
    CommonResponse.Builder common =
        CommonResponse.newBuilder().setBodyMutation(BodyMutation.newBuilder().setBody(rewritten));
    HeaderMutation.Builder headerMutation = HeaderMutation.newBuilder();
    if (admittedAtBody()) {
      headerMutation.addSetHeaders(ADMITTED_MARK);
    }
    if (requestHasContentLength) {
      // BUFFERED body + SEND headers: Envoy keeps content-length and rejects a body mutation whose
      // length differs, so the processor sets it here (header mutations in a body response apply
      // in BUFFERED mode). raw_value only: Envoy refuses a HeaderValue with both value fields.
      headerMutation.addSetHeaders(
          HeaderValueOption.newBuilder()
              .setHeader(
                  HeaderValue.newBuilder()
                      .setKey("content-length")
                      .setRawValue(
                          ByteString.copyFrom(
                              Integer.toString(rewritten.size()), StandardCharsets.US_ASCII)))
              .setAppendAction(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD));
    }
    if (headerMutation.getSetHeadersCount() > 0) {
      common.setHeaderMutation(headerMutation);
    }
    return ProcessingResponse.newBuilder()
        .setRequestBody(BodyResponse.newBuilder().setResponse(common))
        .build();
  }

  /**
   * Refuses a limited key's request whose hold was not granted (429 insufficient_quota, or 503 when
   * its budget could not be leased): nothing reached the provider, nothing is held or charged.
   */
  private ProcessingResponse refuseHold(UsageCharger.Admission refused) {
    // The refused admission holds nothing; the request's slot, if any, goes back with it.
    admission = null;
    return refuse(refused.refusal(), true);
  }

  /**
   * Refuses this request before upstream with {@code error}, as an immediate response: nothing
   * reached the provider, so nothing is charged, its hold and slot go back, metering ends and so
   * does the stream.
   *
   * @param routine a refusal of budget or concurrency, as common as traffic at a key's edge: logged
   *     at DEBUG (counted either way); an unpriced model is logged at INFO
   */
  private ProcessingResponse refuse(ProviderError error, boolean routine) {
    log.atLevel(routine ? Level.DEBUG : Level.INFO)
        .log(
            "{} request for report {} refused before upstream: {}",
            route.provider().wireName(),
            reportId,
            error.message());
    ProcessingResponse reply = ImmediateReplies.refusal(route.provider(), error);
    route = null;
    stopMetering();
    releaseSlot();
    finished = true;
    return reply;
  }

  /** Gives the request's concurrency slot back, if it has one: the request is over. */
  private void releaseSlot() {
    UsageCharger.Admission s = slot;
    slot = null;
    charger.releaseSlot(s);
  }

  /** Ends metering for a refused background response; Envoy answers the client for us. */
  private ProcessingResponse refuseBackground() {
    metrics.refused(MeteringMetrics.REFUSED_ENDPOINT_NOT_METERED);
    ProcessingResponse refusal = BACKGROUND_REFUSALS.get(route.provider());
    // Envoy answers the client and ends the request; whatever it still sends passes unmetered.
    route = null;
    stopMetering();
    return refusal;
  }

  synchronized ProcessingResponse responseHeaders(HttpHeaders headers) {
    if (!requestHeadersSeen) {
      // A response with no request before it is a local reply (Envoy 1.37+ runs the encoder side
      // of ext_proc for it; a denial by Check never reached ext_proc's request side). No provider
      // answered, so there is nothing to charge: let it through and end the stream, instead of
      // holding it open for body chunks we would only pass on. (With request_header_mode SKIP
      // every response would land here; nothing is metered then anyway, as the route and key id
      // come from the request headers.)
      metrics.unmetered(MeteringMetrics.Unmetered.LOCAL_REPLY);
      route = null;
      stopMetering();
      finished = true;
      return CONTINUE_RESPONSE_HEADERS;
    }
    try {
      return onResponseHeaders(headers);
    } catch (RuntimeException e) {
      return failed("response_headers", e, CONTINUE_RESPONSE_HEADERS);
    }
  }

  private ProcessingResponse onResponseHeaders(HttpHeaders headers) {
    if (route == null || charged) {
      return SKIP_AFTER_RESPONSE_HEADERS;
    }
    HeaderMap h = headers.getHeaders();
    String status = EnvoyHeaders.single(h, ":status");
    if (status != null && !(status.length() == 3 && status.charAt(0) == '2')) {
      metrics.unmetered(MeteringMetrics.Unmetered.ERROR_STATUS);
      stopMetering();
      return SKIP_AFTER_RESPONSE_HEADERS;
    }
    String encoding = EnvoyHeaders.single(h, "content-encoding");
    if (encoding != null
        && !encoding.isBlank()
        && !encoding.trim().toLowerCase(Locale.ROOT).equals("identity")) {
      metrics.unmetered(MeteringMetrics.Unmetered.ENCODED_BODY);
      log.warn(
          "{} response for report {} is {}-encoded despite no accept-encoding: not metered",
          route.provider().wireName(),
          reportId,
          encoding);
      stopMetering();
      return SKIP_AFTER_RESPONSE_HEADERS;
    }
    if (headers.getEndOfStream()) {
      metrics.unmetered(MeteringMetrics.Unmetered.NO_USAGE);
      stopMetering();
      return CONTINUE_RESPONSE_HEADERS;
    }
    // A missing :status (response headers skipped by config) is metered: error bodies carry no
    // usage.
    extractor = newExtractor(UsageExtractor.Framing.of(EnvoyHeaders.single(h, "content-type")));
    return CONTINUE_RESPONSE_HEADERS;
  }

  /** A reader of the response body that also counts its text, by the model's tokenizer. */
  private UsageExtractor newExtractor(UsageExtractor.Framing framing) {
    return new UsageExtractor(
        route.format(),
        framing,
        new TokenEstimate.Output(TokenEstimate.Tokenizer.of(route.provider(), model)));
  }

  synchronized ProcessingResponse responseBody(HttpBody body) {
    try {
      if (route != null && !charged) {
        if (extractor == null) {
          // No response headers seen (header mode SKIP): read the body by sniffing its framing.
          extractor = newExtractor(UsageExtractor.Framing.SNIFF);
        }
        extractor.feed(body.getBody());
        if (body.getEndOfStream()) {
          // Charged in settle(), once this answer is on its way: the sink must never hold back
          // the end of the client's response.
          bodyEnded = true;
        }
      }
      return CONTINUE_RESPONSE_BODY;
    } catch (RuntimeException e) {
      return failed("response_body", e, CONTINUE_RESPONSE_BODY);
    }
  }

  /**
   * The metering executor had no room for this message: it is answered unread, so the request
   * passes, and metering stops for the rest of it (a response chunk not read would leave the usage
   * scan mid-document; a request body not read leaves an OpenAI stream without usage).
   */
  synchronized ProcessingResponse overloaded(ProcessingRequest.RequestCase phase) {
    if (phase == ProcessingRequest.RequestCase.REQUEST_HEADERS) {
      // Answered unread, but seen: the response that follows is not a local reply.
      requestHeadersSeen = true;
    }
    // Before the request headers are read nobody knows whether the request would be metered:
    // counted as if it were, so an overload is never invisible.
    if (phase == ProcessingRequest.RequestCase.REQUEST_HEADERS || (route != null && !charged)) {
      metrics.unmetered(MeteringMetrics.Unmetered.OVERLOADED);
      log.debug("metering executor saturated in {} for report {}: not metered", phase, requestId);
    }
    if (extractor != null && route != null && !charged) {
      // A response chunk left unread: what was seen so far is charged now (an estimate where
      // the provider's final usage had not come), rather than nothing.
      try {
        chargeSeen(false);
      } catch (RuntimeException e) {
        failed("overloaded_charge", e, null);
      }
    }
    route = null;
    stopMetering();
    return passThrough(phase);
  }

  synchronized ProcessingResponse requestTrailers() {
    return CONTINUE_REQUEST_TRAILERS;
  }

  synchronized ProcessingResponse responseTrailers() {
    // Trailers come after the last body chunk: the body is complete.
    if (extractor != null) {
      bodyEnded = true;
    }
    return CONTINUE_RESPONSE_TRAILERS;
  }

  /**
   * Work that must not delay Envoy, run after each answer was sent: once the response body has
   * ended, charge it.
   */
  synchronized void settle() {
    if (!bodyEnded) {
      return;
    }
    bodyEnded = false;
    try {
      chargeSeen(true);
    } catch (RuntimeException e) {
      failed("charge", e, null);
    }
  }

  /** The answer {@link #requestHeaders} or {@link #requestBody} deferred (once), or null. */
  synchronized CompletionStage<ProcessingResponse> takeDeferred() {
    CompletionStage<ProcessingResponse> d = deferred;
    deferred = null;
    return d;
  }

  /**
   * The ext_proc stream ended, cleanly or not. If the response body had not ended, charge the usage
   * seen so far (a stream cut short still used what it reported); whatever it still holds (a hold
   * that reached no charge, a slot) goes back.
   */
  synchronized void streamClosed() {
    streamEnded = true;
    try {
      chargeSeen(false);
    } catch (RuntimeException e) {
      failed("stream_closed", e, null);
    } finally {
      // Whatever did not reach a charge (no response, an error status, nothing seen) holds no more.
      releaseHold();
      // The request is over: its concurrency slot is free for the next one.
      releaseSlot();
    }
  }

  /**
   * True once this stream has nothing left to meter and should be ended by the server right after
   * the answer just returned (a local reply: Envoy treats a stream closed with OK as "processing
   * complete" and sends nothing more on it).
   */
  synchronized boolean finished() {
    return finished;
  }

  /** Bytes this session keeps between body chunks (tests assert it stays flat). */
  synchronized int retainedBytes() {
    return extractor == null ? 0 : extractor.retainedBytes();
  }

  /**
   * @param complete the response body ended (else the stream was closed before its end)
   */
  private void chargeSeen(boolean complete) {
    if (route == null || charged || extractor == null) {
      return;
    }
    charged = true;
    extractor.end();
    Optional<TokenUsage> usage = extractor.usage();
    // The response's model when priced (an alias answered by a dated model), else the request's.
    String name = charger.chargedModel(model, extractor.reportedModel());
    // The tier that served it, as the response says; else the one the request asked for.
    String tier = extractor.reportedServiceTier().orElse(serviceTier);
    boolean estimate =
        TokenEstimate.needed(
            route.format(),
            extractor.started(),
            extractor.finalUsageSeen(),
            complete,
            extractor.framing() == UsageExtractor.Framing.SSE);
    long outputTokens = estimate ? extractor.outputTokens() : 0;
    extractor = null;
    if (estimate) {
      TokenUsage estimated = TokenEstimate.charge(usage, promptTokens, outputTokens);
      if (estimated.totalTokens() > 0) {
        metrics.estimated(route.provider());
        log.debug(
            "{} response for report {} ended without its final usage: charging an estimate"
                + " of {} input and {} output tokens",
            route.provider().wireName(),
            reportId,
            estimated.inputTokens() + estimated.cachedInputTokens() + estimated.cacheWriteTokens(),
            estimated.outputTokens());
        charger.charge(
            new Metered(keyId, reportId, requestId, route.provider(), name, tier, estimated, true),
            takeAdmission());
        return;
      }
    }
    if (usage.isEmpty()) {
      metrics.unmetered(MeteringMetrics.Unmetered.NO_USAGE);
      log.debug(
          "{} response for report {} had no usage: not charged",
          route.provider().wireName(),
          reportId);
      releaseHold();
      return;
    }
    charger.charge(
        new Metered(keyId, reportId, requestId, route.provider(), name, tier, usage.get(), false),
        takeAdmission());
  }

  /**
   * The cap Check wrote in x-quota-key-concurrency, or 0 when there is none. Check writes only a
   * plain decimal from 1 to {@link KeyRecord#MAX_CONCURRENT_REQUESTS}; anything else (which only a
   * misconfiguration could bring) is read as a cap of 1, the strictest, rather than as none.
   */
  static int concurrencyCap(String value) {
    if (value == null) {
      return 0;
    }
    long n = AsciiDecimal.parse(value);
    return n >= 1 && n <= KeyRecord.MAX_CONCURRENT_REQUESTS ? (int) n : 1;
  }

  /** The admission, handed to its charge: from now on the charge releases its hold. */
  private UsageCharger.Admission takeAdmission() {
    UsageCharger.Admission a = admission;
    admission = null;
    return a;
  }

  /** Releases the request's hold, if it still has one: it ended without a charge. */
  private void releaseHold() {
    charger.release(takeAdmission());
  }

  /**
   * The immediate response that refuses this request before it reaches the provider, when
   * UsageCharger's unpriced rule says so (a key with a quota, an unpriced or unreadable model, no
   * unpriced rate set); empty to let it pass. A refusal ends metering and the stream, like a local
   * reply: nothing reached the provider, nothing is charged.
   *
   * @param why when {@link #model} is null, what kept it from being read
   */
  private Optional<ProcessingResponse> refuseUnpriced(String why) {
    Optional<ProviderError> error = charger.refusal(model, keyLimited, why);
    if (error.isEmpty()) {
      return Optional.empty();
    }
    metrics.refused(MeteringMetrics.REFUSED_MODEL_NOT_PRICED);
    return Optional.of(refuse(error.get(), false));
  }

  /**
   * "m-", the wall clock's milliseconds as 12 hex digits, then 80 random bits in base64url: 28
   * characters, unguessable and never repeated. The time comes first so that ids made later sort
   * later: the ledger's unique index on report_id then takes each new id near the last one instead
   * of on a random page (README "Usage reports": half again as many rows a second into a large
   * ledger). 12 hex digits of milliseconds last until the year 10889.
   */
  static String newReportId() {
    byte[] bytes = new byte[10];
    RANDOM.nextBytes(bytes);
    // toHexDigits gives 16 digits; the top 4 are zero for any time before the year 10889.
    return "m-"
        + HexFormat.of().toHexDigits(System.currentTimeMillis()).substring(4)
        + Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
  }

  private void stopMetering() {
    charged = true;
    extractor = null;
    releaseHold();
  }

  private ProcessingResponse failed(String phase, Exception e, ProcessingResponse passThrough) {
    metrics.error(phase);
    log.warn("metering error in {} for report {}; request passes unmetered", phase, reportId, e);
    route = null;
    extractor = null;
    // Metering is off for the rest of this request: its hold goes back (the error is counted).
    releaseHold();
    return passThrough;
  }
}
