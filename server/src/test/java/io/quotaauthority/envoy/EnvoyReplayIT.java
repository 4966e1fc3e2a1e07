package io.quotaauthority.envoy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.FieldMask;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.Durations;
import com.google.rpc.Code;
import io.envoyproxy.envoy.config.accesslog.v3.AccessLogFilter;
import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.FilterConfig;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter;
import io.envoyproxy.envoy.extensions.filters.http.credential_injector.v3.CredentialInjector;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.BufferSettings;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.CheckSettings;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode;
import io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBAC;
import io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBACPerRoute;
import io.envoyproxy.envoy.extensions.filters.http.router.v3.Router;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.LocalReplyConfig;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.ResponseMapper;
import io.envoyproxy.envoy.extensions.http.injected_credentials.generic.v3.Generic;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.auth.v3.OkHttpResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.type.matcher.v3.ListStringMatcher;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.quotaauthority.keys.Secrets;
import io.quotaauthority.metering.ProviderRoute;
import io.quotaauthority.ops.Metrics;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.provider.Endpoints;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderClassifier;
import io.quotaauthority.provider.ProviderError;
import io.quotaauthority.testing.MovableClock;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.sql.DriverManager;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Replays Check requests shaped as envoy/envoy.yaml makes Envoy send them, against a whole running
 * authority (real gRPC, real PostgreSQL, keys made through the admin API), and checks what Envoy
 * would then do with each answer.
 *
 * <p>Nothing about the request shape is written by hand except what a provider's SDK puts on the
 * wire (method, path, its usual headers). Everything Envoy adds or decides comes from the parsed
 * envoy.yaml: which route a request lands on (first match over the route config), that route's
 * {@code context_extensions}, which headers ext_authz forwards ({@code allowed_headers}, {@code
 * disallowed_headers}) and how ({@code encode_raw_headers}: {@code headers} map or {@code
 * header_map} raw values), the body ({@code with_request_body}, per-route overrides), the peer
 * certificate, the headers the connection manager adds before any filter runs, the deadline ({@code
 * grpc_service.timeout}), and what Envoy does with an RPC error ({@code failure_mode_allow}, {@code
 * status_on_error}). Where a client puts its key is derived too: in the header the route's own
 * credential injector writes, in the form of that provider's example secret ("Bearer ..." for
 * OpenAI), since an SDK sends our key exactly where it sends the provider's.
 *
 * <p>After an allow, the request is walked through the http_filters in envoy.yaml's order, applying
 * Check's mutations as Envoy's ext_authz filter applies them, to see what ext_proc is shown; then
 * the real metering processor is asked (or a failing one, to see Envoy fail open) and its answers
 * applied as Envoy's ext_proc filter applies them; the fail-closed RBAC stage judges the result by
 * the policy as envoy.yaml states it; and local replies (Check's denials, metering's refusals, the
 * RBAC denial) pass the connection manager's local_reply_config, to see what the client gets or
 * what finally leaves for the provider. Settings the replay does not model make it fail rather than
 * silently send something Envoy would not.
 */
class EnvoyReplayIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The client, as Envoy sees it from its listener socket. */
  private static final String CLIENT_IP = "203.0.113.7";

  private static final int CLIENT_PORT = 52814;

  /** The Host the README's curl (and any SDK pointed at Envoy) sends. */
  private static final String DOWNSTREAM_AUTHORITY = "localhost:10000";

  /** Gemini's query-string key parameter (Google's API, not anything in envoy.yaml). */
  private static final String GEMINI_QUERY_KEY = "key";

  private static final String KEY_ID_HEADER = "x-quota-key-id";

  /** What a client might put in x-quota-key-id itself, hoping to be metered as someone else. */
  private static final String FORGED_KEY_ID = "999999";

  /** The namespace Envoy's ext_authz filter stores CheckResponse.dynamic_metadata under. */
  private static final String EXT_AUTHZ_METADATA_NAMESPACE = "envoy.filters.http.ext_authz";

  // ------------------------------------------------------------------ what the SDKs send

  /**
   * One request as a provider's SDK (or its REST documentation) sends it, before Envoy and without
   * the key. {@code keyInQuery}: the key goes in {@code ?key=} rather than in the SDK's header.
   */
  record SdkRequest(
      String provider,
      String client,
      String method,
      String pathAndQuery,
      Map<String, String> headers,
      String body,
      boolean keyInQuery) {
    @Override
    public String toString() {
      return client + " " + method + " " + pathAndQuery;
    }
  }

  private static final Map<String, String> OPENAI_SDK =
      ordered(
          "accept", "application/json",
          "content-type", "application/json",
          "user-agent", "OpenAI/Python 1.51.0",
          "x-stainless-lang", "python",
          "x-stainless-package-version", "1.51.0",
          "x-stainless-retry-count", "0");
  private static final Map<String, String> ANTHROPIC_SDK =
      ordered(
          "accept", "application/json",
          "anthropic-version", "2023-06-01",
          "content-type", "application/json",
          "user-agent", "Anthropic/Python 0.39.0",
          "x-stainless-lang", "python");
  private static final Map<String, String> GENAI_SDK =
      ordered(
          "content-type", "application/json",
          "user-agent", "google-genai-sdk/1.20.0 gl-python/3.12.3",
          "x-goog-api-client", "google-genai-sdk/1.20.0 gl-python/3.12.3");
  private static final Map<String, String> GEMINI_UPLOAD =
      ordered(
          "content-type", "application/json",
          "user-agent", "google-genai-sdk/1.20.0 gl-python/3.12.3",
          "x-goog-api-client", "google-genai-sdk/1.20.0 gl-python/3.12.3",
          "x-goog-upload-protocol", "resumable",
          "x-goog-upload-command", "start",
          "x-goog-upload-header-content-type", "application/pdf");

  /** A multipart file upload from OpenAI's SDK (files.create, uploads.parts.create). */
  private static final Map<String, String> OPENAI_UPLOAD =
      ordered(
          "accept", "application/json",
          "content-type", "multipart/form-data; boundary=4f1a9c2e7b3d",
          "user-agent", "OpenAI/Python 1.51.0",
          "x-stainless-lang", "python");

  /** Anthropic's SDK uploading to its Files API (a beta header names it). */
  private static final Map<String, String> ANTHROPIC_UPLOAD =
      ordered(
          "accept", "application/json",
          "anthropic-version", "2023-06-01",
          "anthropic-beta", "files-api-2025-04-14",
          "content-type", "multipart/form-data; boundary=4f1a9c2e7b3d",
          "user-agent", "Anthropic/Python 0.39.0");

  private static final Map<String, String> CURL =
      ordered(
          "content-type", "application/json",
          "user-agent", "curl/8.5.0",
          "accept", "*/*");

  private static final String OPENAI_CHAT =
      "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}";
  private static final String ANTHROPIC_MESSAGE =
      "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}";
  private static final String GEMINI_CONTENT =
      "{\"contents\":[{\"parts\":[{\"text\":\"Hello\"}]}]}";

  private static final List<SdkRequest> SDK_REQUESTS =
      List.of(
          openai("POST", "/v1/chat/completions", OPENAI_CHAT),
          openai(
              "POST",
              "/v1/completions",
              "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Hello\"}"),
          openai("POST", "/v1/responses", "{\"model\":\"gpt-4o-mini\",\"input\":\"Hello\"}"),
          openai("GET", "/v1/responses/resp_67ccd2bed1ec8190b14f964abc054267", null),
          openai(
              "POST",
              "/v1/embeddings",
              "{\"model\":\"text-embedding-3-small\",\"input\":\"Hello\"}"),
          openai("GET", "/v1/models", null),
          openai("GET", "/v1/models/ft:gpt-4o-mini:acme::abc123", null),
          openai(
              "POST",
              "/v1/moderations",
              "{\"model\":\"omni-moderation-latest\",\"input\":\"Hello\"}"),
          upload("openai", OPENAI_UPLOAD, "POST", "/v1/files"),
          upload("openai", OPENAI_UPLOAD, "POST", "/v1/uploads/upload_abc123/parts"),
          anthropic("POST", "/v1/messages", ANTHROPIC_MESSAGE),
          anthropic("POST", "/v1/messages?beta=true", ANTHROPIC_MESSAGE),
          anthropic("POST", "/v1/messages/count_tokens", ANTHROPIC_MESSAGE),
          anthropic("GET", "/v1/models", null),
          upload("anthropic", ANTHROPIC_UPLOAD, "POST", "/v1/files"),
          gemini(
              GENAI_SDK, "POST", "/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_CONTENT),
          gemini(
              GENAI_SDK,
              "POST",
              "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
              GEMINI_CONTENT),
          gemini(
              GEMINI_UPLOAD,
              "POST",
              "/upload/v1beta/files",
              "{\"file\":{\"display_name\":\"report.pdf\"}}"),
          gemini(GENAI_SDK, "POST", "/v1/models/gemini-2.5-flash:generateContent", GEMINI_CONTENT),
          // Google's REST examples put the key in the query string instead of x-goog-api-key.
          geminiQueryKey("POST", "/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_CONTENT),
          geminiQueryKey(
              "POST",
              "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
              GEMINI_CONTENT),
          geminiQueryKey(
              "POST", "/upload/v1beta/files", "{\"file\":{\"display_name\":\"report.pdf\"}}"),
          geminiQueryKey("POST", "/v1/models/gemini-2.5-flash:generateContent", GEMINI_CONTENT));

  private static SdkRequest openai(String method, String path, String body) {
    return new SdkRequest("openai", "OpenAI SDK", method, path, OPENAI_SDK, body, false);
  }

  private static SdkRequest anthropic(String method, String path, String body) {
    return new SdkRequest("anthropic", "Anthropic SDK", method, path, ANTHROPIC_SDK, body, false);
  }

  private static SdkRequest gemini(
      Map<String, String> headers, String method, String path, String body) {
    return new SdkRequest("gemini", "Gen AI SDK", method, path, headers, body, false);
  }

  /**
   * A small multipart body: the 40 MiB case is {@link
   * #uploadOf40MiB_streamsPastExtProc_unbuffered}.
   */
  private static SdkRequest upload(
      String provider, Map<String, String> headers, String method, String path) {
    String body =
        "--4f1a9c2e7b3d\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\nuser_data\r\n"
            + "--4f1a9c2e7b3d\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n"
            + "content-type: application/pdf\r\n\r\n%PDF-1.7\r\n--4f1a9c2e7b3d--\r\n";
    return new SdkRequest(provider, provider + " upload", method, path, headers, body, false);
  }

  private static SdkRequest geminiQueryKey(String method, String path, String body) {
    return new SdkRequest("gemini", "Gemini REST ?key=", method, path, CURL, body, true);
  }

  // ------------------------------------------------------------------ what envoy.yaml says

  /** A request as it arrives at a route, and which route of envoy.yaml takes it. */
  record Replay(SdkRequest sdk, VirtualHost vhost, Route route, String provider) {
    @Override
    public String toString() {
      return route.getName() + " <- " + sdk;
    }
  }

  private static final Bootstrap BOOTSTRAP = parseEnvoyYaml();
  private static final Listener LISTENER = BOOTSTRAP.getStaticResources().getListeners(0);
  private static final HttpConnectionManager HCM =
      EnvoyConfigTest.unpack(
          LISTENER.getFilterChains(0).getFilters(0).getTypedConfig(), HttpConnectionManager.class);
  private static final List<HttpFilter> FILTERS = HCM.getHttpFiltersList();
  private static final HttpFilter AUTHZ_FILTER = onlyFilter(ExtAuthz.class);
  private static final ExtAuthz AUTHZ =
      EnvoyConfigTest.unpack(AUTHZ_FILTER.getTypedConfig(), ExtAuthz.class);
  private static final HttpFilter PROC_FILTER = onlyFilter(ExternalProcessor.class);
  private static final ExternalProcessor PROC =
      EnvoyConfigTest.unpack(PROC_FILTER.getTypedConfig(), ExternalProcessor.class);
  private static final HttpFilter RBAC_FILTER = onlyFilter(RBAC.class);
  private static final RBAC FAIL_CLOSED =
      EnvoyConfigTest.unpack(RBAC_FILTER.getTypedConfig(), RBAC.class);

  /** Envoy's wait for each ext_proc answer: message_timeout, 200 ms when unset. */
  private static final long MESSAGE_TIMEOUT_MILLIS =
      PROC.hasMessageTimeout() ? Durations.toMillis(PROC.getMessageTimeout()) : 200;

  /** Envoy's ext_authz deadline: grpc_service.timeout, 200 ms when unset. */
  private static final long CHECK_TIMEOUT_MILLIS =
      AUTHZ.getGrpcService().hasTimeout()
          ? Durations.toMillis(AUTHZ.getGrpcService().getTimeout())
          : 200;

  private static final List<Replay> REPLAYS =
      SDK_REQUESTS.stream().map(EnvoyReplayIT::route).toList();

  private static Bootstrap parseEnvoyYaml() {
    try {
      return EnvoyConfigTest.parse(RepoFiles.read(EnvoyConfigTest.ENVOY_YAML));
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("envoy.yaml does not parse (EnvoyConfigTest says why)", e);
    }
  }

  private static HttpFilter onlyFilter(Class<? extends Message> type) {
    List<HttpFilter> found = FILTERS.stream().filter(f -> f.getTypedConfig().is(type)).toList();
    if (found.size() != 1) {
      throw new IllegalStateException(
          found.size() + " http filters of type " + type.getSimpleName());
    }
    return found.get(0);
  }

  static Stream<Replay> replays() {
    return REPLAYS.stream();
  }

  /**
   * The replays where the authority should find the key: all of them, ?key= on every Gemini route
   * included.
   */
  static Stream<Replay> keyedReplays() {
    return REPLAYS.stream();
  }

  /** Envoy's route selection: the virtual host for the Host, then the first route that matches. */
  private static Replay route(SdkRequest sdk) {
    RouteConfiguration config = HCM.getRouteConfig();
    VirtualHost vhost =
        config.getVirtualHostsList().stream()
            .filter(
                v ->
                    v.getDomainsList().stream()
                        .anyMatch(d -> domainMatches(d, DOWNSTREAM_AUTHORITY)))
            .findFirst()
            .orElseThrow(
                () -> new IllegalStateException("no virtual host for " + DOWNSTREAM_AUTHORITY));
    // Envoy picks the route when ext_authz first asks for it, before Check can change anything. No
    // route matches on a key header or on what the connection manager adds (asserted in
    // everyRouteOfEnvoyYaml...), so the SDK's own headers decide, with or without a key.
    Set<String> headerNames = sdk.headers().keySet();
    for (Route route : vhost.getRoutesList()) {
      assertOnlyModelledMatch(route);
      if (EnvoyConfigTest.matches(route.getMatch(), sdk.pathAndQuery(), headerNames)) {
        return new Replay(sdk, vhost, route, contextExtensions(vhost, route).get("provider"));
      }
    }
    throw new IllegalStateException("no route in envoy.yaml takes " + sdk + ": Envoy answers 404");
  }

  private static boolean domainMatches(String domain, String host) {
    if (domain.equals("*")) {
      return true;
    }
    if (domain.startsWith("*")) {
      return host.endsWith(domain.substring(1));
    }
    if (domain.endsWith("*")) {
      return host.startsWith(domain.substring(0, domain.length() - 1));
    }
    return domain.equalsIgnoreCase(host)
        || domain.equalsIgnoreCase(host.replaceFirst(":\\d+$", ""));
  }

  private static void assertOnlyModelledMatch(Route route) {
    Set<String> set = setFields(route.getMatch());
    set.removeAll(Set.of("prefix", "path", "path_separated_prefix", "safe_regex", "headers"));
    if (!set.isEmpty()) {
      throw new IllegalStateException(
          "route " + route.getName() + " matches on " + set + ", which this replay does not model");
    }
  }

  /**
   * ext_authz's per-route settings for a route, merged as Envoy merges them (virtual host, then
   * route; the more specific wins per key). A route that disables ext_authz fails here: its
   * requests would reach the provider without a Check.
   */
  private static Map<String, String> contextExtensions(VirtualHost vhost, Route route) {
    Map<String, String> merged = new LinkedHashMap<>();
    for (ExtAuthzPerRoute perRoute : authzPerRoute(vhost, route)) {
      if (perRoute.getDisabled()) {
        throw new IllegalStateException(
            "route " + route.getName() + " disables ext_authz: no Check, no quota");
      }
      merged.putAll(perRoute.getCheckSettings().getContextExtensionsMap());
    }
    return merged;
  }

  private static List<ExtAuthzPerRoute> authzPerRoute(VirtualHost vhost, Route route) {
    List<ExtAuthzPerRoute> levels = new ArrayList<>();
    for (Map<String, Any> perFilter :
        List.of(
            HCM.getRouteConfig().getTypedPerFilterConfigMap(),
            vhost.getTypedPerFilterConfigMap(),
            route.getTypedPerFilterConfigMap())) {
      Any any = perFilter.get(AUTHZ_FILTER.getName());
      if (any != null) {
        levels.add(EnvoyConfigTest.unpack(any, ExtAuthzPerRoute.class));
      }
    }
    return levels;
  }

  /** The most specific per-route CheckSettings, which is what Envoy reads body settings from. */
  private static CheckSettings checkSettings(Replay r) {
    List<ExtAuthzPerRoute> levels = authzPerRoute(r.vhost(), r.route());
    return levels.isEmpty()
        ? CheckSettings.getDefaultInstance()
        : levels.get(levels.size() - 1).getCheckSettings();
  }

  /** Whether a filter runs on this route: disabled filters run only where a route enables them. */
  private static boolean runsOn(HttpFilter filter, Replay r) {
    boolean enabled = !filter.getDisabled();
    for (Map<String, Any> perFilter :
        List.of(
            HCM.getRouteConfig().getTypedPerFilterConfigMap(),
            r.vhost().getTypedPerFilterConfigMap(),
            r.route().getTypedPerFilterConfigMap())) {
      Any any = perFilter.get(filter.getName());
      if (any != null && any.is(FilterConfig.class)) {
        enabled = !EnvoyConfigTest.unpack(any, FilterConfig.class).getDisabled();
      }
    }
    return enabled;
  }

  /** The credential injector this route switches on (each route enables exactly one). */
  private static HttpFilter injectorOf(Replay r) {
    List<HttpFilter> on =
        FILTERS.stream()
            .filter(f -> f.getTypedConfig().is(CredentialInjector.class) && runsOn(f, r))
            .toList();
    assertThat(on).as("credential injectors running on route %s", r.route().getName()).hasSize(1);
    return on.get(0);
  }

  private static Generic genericCredential(HttpFilter injector) {
    CredentialInjector config =
        EnvoyConfigTest.unpack(injector.getTypedConfig(), CredentialInjector.class);
    return EnvoyConfigTest.unpack(config.getCredential().getTypedConfig(), Generic.class);
  }

  /** The provider key as the example secret holds it: what the injector puts on the wire. */
  private static String exampleSecret(HttpFilter injector) {
    return EXAMPLE_SECRETS.computeIfAbsent(injector.getName(), n -> readExampleSecret(injector));
  }

  private static final Map<String, String> EXAMPLE_SECRETS = new ConcurrentHashMap<>();

  private static String readExampleSecret(HttpFilter injector) {
    String path =
        genericCredential(injector).getCredential().getSdsConfig().getPathConfigSource().getPath();
    String example = "envoy/" + path.substring("/etc/envoy/".length()) + ".example";
    return RepoFiles.yamlFile(example)
        .at("/resources/0/generic_secret/secret/inline_string")
        .asText();
  }

  /** Where a client sends its key on this route: the header the route's injector writes. */
  private static String keyHeader(Replay r) {
    return genericCredential(injectorOf(r)).getHeader().toLowerCase(Locale.ROOT);
  }

  /**
   * The key in the form the provider's own key takes in that header ("Bearer " + key for OpenAI).
   */
  private static String keyHeaderValue(Replay r, String secret) {
    String example = exampleSecret(injectorOf(r));
    int space = example.indexOf(' ');
    return space > 0 ? example.substring(0, space + 1) + secret : secret;
  }

  // ------------------------------------------------------------------ the authority

  private static final MovableClock CLOCK = new MovableClock();
  private static TestDatabase db;
  private static TestServer server;
  private static AuthorizationGrpc.AuthorizationBlockingStub authzStub;

  enum KeyKind {
    UNLIMITED,
    LIMITED,
    DISABLED,
    EXPIRED,
    EXHAUSTED
  }

  private static final Map<KeyKind, CreateKeyResponse> KEYS = new EnumMap<>(KeyKind.class);
  private static final String UNKNOWN_SECRET = Secrets.newSecret();

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db, Map.of(), CLOCK);
    authzStub = AuthorizationGrpc.newBlockingStub(server.authzChannel());

    KEYS.put(KeyKind.UNLIMITED, createKey("replay-unlimited", "0", null));
    KEYS.put(KeyKind.LIMITED, createKey("replay-limited", "10", null));
    KEYS.put(KeyKind.DISABLED, createKey("replay-disabled", "0", null));
    KEYS.put(
        KeyKind.EXPIRED,
        createKey("replay-expired", "0", CLOCK.instant().plus(Duration.ofMinutes(1))));
    KEYS.put(KeyKind.EXHAUSTED, createKey("replay-exhausted", "1.5", null));
    server
        .admin()
        .updateKey(
            UpdateKeyRequest.newBuilder()
                .setKey(
                    ApiKey.newBuilder()
                        .setId(KEYS.get(KeyKind.DISABLED).getKey().getId())
                        .setStatus(KeyStatus.KEY_STATUS_DISABLED))
                .setUpdateMask(FieldMask.newBuilder().addPaths("status"))
                .build());
    // Usage is charged behind the server's back (the usage stream has its own tests), then the
    // cache is dropped as the change listener does after a reconnect.
    setQuotaUsed(KEYS.get(KeyKind.LIMITED), "2.25");
    setQuotaUsed(KEYS.get(KeyKind.EXHAUSTED), "1.5");
    server.app().cache().invalidateAll();
    CLOCK.advance(Duration.ofMinutes(2));

    // Steady state: Check answers from memory. Load every key (and the unknown one) once with a
    // generous deadline, so the replays below, which use Envoy's own deadline, measure the
    // in-memory path and not the JIT or the first database round trip.
    Replay warm = REPLAYS.get(0);
    for (CreateKeyResponse key : KEYS.values()) {
      authzStub
          .withDeadlineAfter(10, TimeUnit.SECONDS)
          .check(envoyCheck(warm, key.getSecret()).request());
    }
    authzStub
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(envoyCheck(warm, UNKNOWN_SECRET).request());

    startBrokenProcessors();
    // The same for metering, which Envoy waits for message_timeout per message: each provider's
    // metered requests (tokenizer, price table, the limited key's first lease) once, unhurried.
    for (String provider : EnvoyConfigTest.PROVIDER_HOST.keySet()) {
      Replay r =
          meteredReplays().filter(x -> x.provider().equals(provider)).findFirst().orElseThrow();
      for (KeyKind kind : List.of(KeyKind.LIMITED, KeyKind.UNLIMITED)) {
        EnvoyCheck check = envoyCheck(r, KEYS.get(kind).getSecret());
        CheckResponse ok = authzStub.withDeadlineAfter(10, TimeUnit.SECONDS).check(check.request());
        forward(r, check.headers(), ok, Metering.WORKING, 10_000);
      }
    }
  }

  @AfterAll
  static void stop() throws Exception {
    if (unreachable != null) {
      unreachable.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (stalling != null) {
      stallingChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      stalling.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (server != null) {
      server.close();
    }
    if (db != null) {
      db.close();
    }
  }

  private static CreateKeyResponse createKey(String name, String quota, Instant expires) {
    CreateKeyRequest.Builder b = CreateKeyRequest.newBuilder().setName(name).setQuotaUsd(quota);
    if (expires != null) {
      b.setExpiresAt(
          Timestamp.newBuilder().setSeconds(expires.getEpochSecond()).setNanos(expires.getNano()));
    }
    return server.admin().createKey(b.build());
  }

  private static void setQuotaUsed(CreateKeyResponse key, String used) {
    db.transactions()
        .inTransaction(
            c -> {
              try (var ps =
                  c.prepareStatement(
                      "UPDATE api_keys SET quota_used = ?::numeric, version = version + 1 WHERE id = ?")) {
                ps.setString(1, used);
                ps.setLong(2, Long.parseLong(key.getKey().getId()));
                return ps.executeUpdate();
              }
            });
  }

  // ------------------------------------------------------------------ Envoy, up to the Check

  /** What Envoy sends Check, and the request headers as they stand when ext_authz runs. */
  record EnvoyCheck(CheckRequest request, Headers headers) {}

  /**
   * The request as ext_authz sees it, and the CheckRequest it makes of it.
   *
   * @param secret the client's key, or null for a request without one
   */
  static EnvoyCheck envoyCheck(Replay r, String secret) {
    return envoyCheck(r, secret, Map.of());
  }

  /** As {@link #envoyCheck(Replay, String)}, with more headers from the client. */
  static EnvoyCheck envoyCheck(Replay r, String secret, Map<String, String> extraHeaders) {
    SdkRequest sdk = r.sdk();
    String path = sdk.pathAndQuery();
    if (secret != null && sdk.keyInQuery()) {
      path += (path.contains("?") ? "&" : "?") + GEMINI_QUERY_KEY + "=" + secret;
    }
    boolean tls = LISTENER.getFilterChains(0).hasTransportSocket();
    Headers h = new Headers();
    h.add(":authority", DOWNSTREAM_AUTHORITY);
    h.add(":path", path);
    h.add(":method", sdk.method());
    h.add(":scheme", tls ? "https" : "http");
    sdk.headers().forEach(h::add);
    if (secret != null && !sdk.keyInQuery()) {
      h.add(keyHeader(r), keyHeaderValue(r, secret));
    }
    extraHeaders.forEach(h::add);
    // A client may send its own x-quota-key-id; Check must overwrite it, not append to it.
    h.add(KEY_ID_HEADER, FORGED_KEY_ID);
    // And claim its key is unlimited: Check's value must replace it.
    h.add(GatewayHeaders.KEY_LIMITED, "false");
    if (sdk.body() != null) {
      h.add("content-length", Integer.toString(sdk.body().getBytes(StandardCharsets.UTF_8).length));
    }
    connectionManager(h);
    assertThat(normalized(h.get(":path")))
        .as(
            "%s: the path Envoy normalizes (normalize_path, merge_slashes) is the one the SDK sent",
            r)
        .isEqualTo(h.get(":path"));

    assertOnlyModelledAuthzSettings();
    AttributeContext.HttpRequest.Builder http =
        AttributeContext.HttpRequest.newBuilder()
            .setId("11720351298384617035")
            .setMethod(h.get(":method"))
            .setPath(h.get(":path"))
            .setHost(h.get(":authority"))
            .setScheme(h.get(":scheme"))
            .setProtocol("HTTP/1.1");
    Headers sent = new Headers();
    for (String[] e : h.entries) {
      if (sentToAuthz(e[0])) {
        sent.add(e[0], e[1]);
      }
    }
    if (AUTHZ.getEncodeRawHeaders()) {
      // Raw bytes, one entry per header line, repeated names kept apart.
      HeaderMap.Builder raw = HeaderMap.newBuilder();
      for (String[] e : sent.entries) {
        raw.addHeaders(
            HeaderValue.newBuilder()
                .setKey(e[0])
                .setRawValue(ByteString.copyFrom(e[1], StandardCharsets.UTF_8)));
      }
      http.setHeaderMap(raw);
    } else {
      // Sanitized strings, repeated names joined with ",".
      Map<String, String> joined = new LinkedHashMap<>();
      for (String[] e : sent.entries) {
        joined.merge(e[0], e[1], (a, b) -> a + "," + b);
      }
      http.putAllHeaders(joined);
    }
    BufferSettings body = bodySettings(r);
    if (body != null && sdk.body() != null) {
      byte[] bytes = sdk.body().getBytes(StandardCharsets.UTF_8);
      int n = Math.min(bytes.length, body.getMaxRequestBytes());
      if (body.getPackAsBytes()) {
        http.setRawBody(ByteString.copyFrom(bytes, 0, n));
      } else {
        http.setBody(new String(bytes, 0, n, StandardCharsets.UTF_8));
      }
    }
    AttributeContext.Peer.Builder source =
        AttributeContext.Peer.newBuilder().setAddress(address(CLIENT_IP, CLIENT_PORT));
    if (tls && AUTHZ.getIncludePeerCertificate()) {
      fail(
          "include_peer_certificate on a TLS listener: teach the replay to present a client certificate");
    }
    SocketAddress listen = LISTENER.getAddress().getSocketAddress();
    CheckRequest request =
        CheckRequest.newBuilder()
            .setAttributes(
                AttributeContext.newBuilder()
                    .setSource(source)
                    .setDestination(
                        AttributeContext.Peer.newBuilder()
                            .setAddress(address("172.18.0.3", listen.getPortValue())))
                    .setRequest(AttributeContext.Request.newBuilder().setHttp(http))
                    .putAllContextExtensions(contextExtensions(r.vhost(), r.route())))
            .build();
    return new EnvoyCheck(request, h);
  }

  /** What the connection manager does to request headers before the first http filter. */
  private static void connectionManager(Headers h) {
    assertThat(HCM.getEarlyHeaderMutationExtensionsCount())
        .as("early_header_mutation_extensions are not modelled")
        .isZero();
    if (HCM.getUseRemoteAddress().getValue()) {
      // The edge: x-forwarded-for gets the socket's peer and x-forwarded-proto the listener's
      // scheme.
      if (!HCM.getSkipXffAppend()) {
        String xff = h.get("x-forwarded-for");
        h.set("x-forwarded-for", xff == null ? CLIENT_IP : xff + "," + CLIENT_IP);
      }
      h.set("x-forwarded-proto", h.get(":scheme"));
      // ConnectionManagerUtility::mutateRequestHeaders: an external client's address goes in
      // x-envoy-external-address (set, so a client's own value is replaced); an internal client
      // gets x-envoy-internal instead.
      if (clientIsInternal()) {
        h.set("x-envoy-internal", "true");
      } else {
        h.set("x-envoy-external-address", CLIENT_IP);
      }
    }
    if (!HCM.hasGenerateRequestId() || HCM.getGenerateRequestId().getValue()) {
      if (!HCM.getPreserveExternalRequestId() || h.get("x-request-id") == null) {
        h.set("x-request-id", UUID.randomUUID().toString());
      }
    }
    if (!HCM.getVia().isEmpty()) {
      h.add("via", HCM.getVia());
    }
  }

  /**
   * Whether Envoy counts CLIENT_IP (a public address) as internal under internal_address_config.
   */
  private static boolean clientIsInternal() {
    if (!HCM.hasInternalAddressConfig()) {
      return false; // unset: RFC 1918 and loopback only, and CLIENT_IP is neither
    }
    assertThat(HCM.getInternalAddressConfig().getCidrRangesList())
        .as("internal cidr_ranges are not modelled")
        .isEmpty();
    return false;
  }

  /** Envoy's normalize_path (RFC 3986 dot segments) and merge_slashes, on the path only. */
  private static String normalized(String pathAndQuery) {
    int q = pathAndQuery.indexOf('?');
    String path = q < 0 ? pathAndQuery : pathAndQuery.substring(0, q);
    String query = q < 0 ? "" : pathAndQuery.substring(q);
    if (HCM.getMergeSlashes()) {
      path = path.replaceAll("/{2,}", "/");
    }
    if (HCM.getNormalizePath().getValue()) {
      path = URI.create(path).normalize().getRawPath();
    }
    return path + query;
  }

  /**
   * ExtAuthz fields the replay honours; any other set field fails it (it may change the request).
   */
  private static void assertOnlyModelledAuthzSettings() {
    Set<String> set = setFields(AUTHZ);
    set.removeAll(
        Set.of(
            "grpc_service",
            "transport_api_version",
            "failure_mode_allow",
            "status_on_error",
            "with_request_body",
            "allowed_headers",
            "disallowed_headers",
            "encode_raw_headers",
            "include_peer_certificate",
            "include_tls_session",
            "stat_prefix",
            "charge_cluster_response_stats",
            "emit_filter_state_stats",
            "filter_enabled"));
    assertThat(set).as("ext_authz settings the replay does not model").isEmpty();
    if (AUTHZ.hasFilterEnabled()) {
      var pct = AUTHZ.getFilterEnabled().getDefaultValue();
      assertThat(pct.getNumerator())
          .as("filter_enabled below 100%% lets requests through unchecked")
          .isEqualTo(pct.getDenominator().getNumber() == 0 ? 100 : pct.getNumerator());
    }
    assertThat(AUTHZ_FILTER.getDisabled()).as("ext_authz disabled by default").isFalse();
  }

  /**
   * Which request headers go to Check: all, unless allowed_headers narrows them (pseudo-headers
   * still go: Envoy fills method, path, host and scheme from them regardless), minus
   * disallowed_headers.
   */
  private static boolean sentToAuthz(String name) {
    boolean pseudo = name.startsWith(":");
    if (AUTHZ.hasAllowedHeaders() && !pseudo && !anyMatches(AUTHZ.getAllowedHeaders(), name)) {
      return false;
    }
    return !(AUTHZ.hasDisallowedHeaders() && anyMatches(AUTHZ.getDisallowedHeaders(), name));
  }

  /**
   * with_request_body for this route: the filter's, a route's own, or none when a route turns it
   * off.
   */
  private static BufferSettings bodySettings(Replay r) {
    CheckSettings perRoute = checkSettings(r);
    if (perRoute.getDisableRequestBodyBuffering()) {
      return null;
    }
    if (perRoute.hasWithRequestBody()) {
      return perRoute.getWithRequestBody();
    }
    return AUTHZ.hasWithRequestBody() ? AUTHZ.getWithRequestBody() : null;
  }

  // ------------------------------------------------------------------ Envoy, acting on the answer

  /**
   * What Envoy does with Check's outcome; {@code forwarded}: the request continues up the chain.
   */
  record EnvoyAnswer(
      boolean forwarded,
      boolean rpcError,
      int status,
      Map<String, String> headers,
      String body,
      CheckResponse response) {}

  /**
   * Calls Check with Envoy's deadline and plays Envoy's part (ext_authz_grpc_impl onSuccess and
   * onFailure, ext_authz onComplete): a CheckResponse with status OK forwards; any other status
   * denies with denied_response's status (403 if unset), headers and body; an RPC error (including
   * the deadline) forwards unchecked under failure_mode_allow, else is status_on_error with NO
   * body. Both refusals are local replies, so they pass local_reply_config's mappers (with
   * ext_authz's response code details, ext_authz_denied and ext_authz_error), as the client gets
   * them.
   */
  static EnvoyAnswer replay(CheckRequest request) {
    CheckResponse r;
    try {
      r = authzStub.withDeadlineAfter(CHECK_TIMEOUT_MILLIS, TimeUnit.MILLISECONDS).check(request);
    } catch (StatusRuntimeException e) {
      if (AUTHZ.getFailureModeAllow()) {
        return new EnvoyAnswer(true, true, 0, Map.of(), "", null);
      }
      int code = AUTHZ.getStatusOnError().getCodeValue();
      LocalReply error =
          localReply(
              code > 0 ? code : 403, Map.of(), "", "ext_authz_error", requestHeadersOf(request));
      return new EnvoyAnswer(false, true, error.status(), error.headers(), error.body(), null);
    }
    if (r.getStatus().getCode() == Code.OK_VALUE) {
      return new EnvoyAnswer(true, false, 0, Map.of(), "", r);
    }
    int status = 403;
    Map<String, String> headers = new LinkedHashMap<>();
    String body = "";
    if (r.hasDeniedResponse()) {
      int code = r.getDeniedResponse().getStatus().getCodeValue();
      if (code > 0) {
        status = code;
      }
      for (HeaderValueOption o : r.getDeniedResponse().getHeadersList()) {
        // Envoy reads HeaderValue.value here; a raw_value-only header would arrive empty.
        headers.put(o.getHeader().getKey().toLowerCase(Locale.ROOT), o.getHeader().getValue());
      }
      body = r.getDeniedResponse().getBody();
    }
    LocalReply denied =
        localReply(status, headers, body, "ext_authz_denied", requestHeadersOf(request));
    return new EnvoyAnswer(false, false, denied.status(), denied.headers(), denied.body(), r);
  }

  /**
   * The request headers behind a CheckRequest (what ext_authz was sent of them; the local reply
   * mappers read request headers, and a denial is answered before any filter changed them).
   */
  private static Headers requestHeadersOf(CheckRequest request) {
    Headers h = new Headers();
    var http = request.getAttributes().getRequest().getHttp();
    if (http.hasHeaderMap()) {
      http.getHeaderMap()
          .getHeadersList()
          .forEach(v -> h.add(v.getKey(), v.getRawValue().toStringUtf8()));
    } else {
      http.getHeadersMap().forEach(h::add);
    }
    return h;
  }

  /**
   * What each filter after ext_authz is shown, and what becomes of the request: either it leaves
   * for the provider ({@code upstream}, and {@code localReply} null) or Envoy answers it itself
   * ({@code localReply}, as the client gets it, and {@code upstream} null).
   *
   * @param extProcSees the request headers ext_proc is sent
   * @param atRbac the request headers the fail-closed stage judges (after ext_proc's mutations);
   *     null when ext_proc answered the request itself
   */
  record Forwarded(Headers extProcSees, Headers atRbac, Headers upstream, LocalReply localReply) {}

  /** As {@link #forward(Replay, Headers, CheckResponse, Metering, long)}, metering working. */
  static Forwarded forward(Replay r, Headers atAuthz, CheckResponse ok) {
    return forward(r, atAuthz, ok, Metering.WORKING, MESSAGE_TIMEOUT_MILLIS);
  }

  /** As {@link #forward(Replay, Headers, CheckResponse, Metering, long)}, at Envoy's timeout. */
  static Forwarded forward(Replay r, Headers atAuthz, CheckResponse ok, Metering metering) {
    return forward(r, atAuthz, ok, metering, MESSAGE_TIMEOUT_MILLIS);
  }

  /**
   * Walks an allowed request through the http_filters in envoy.yaml's order: ext_authz applies
   * Check's mutations (ext_authz.cc onComplete); ext_proc is shown the headers (minus its
   * forward_rules) and the body on a stream to {@code metering}, and Envoy applies the processor's
   * answers (or answers the client with its immediate response, or goes on without it when the
   * stream fails); the RBAC stage judges the headers as they then stand and refuses with a local
   * reply; each credential injector the route enables writes the provider key; and the router
   * applies the route-config, virtual-host and route request_headers_to_remove and the host rewrite
   * (finalizeRequestHeaders) as the request leaves.
   *
   * @param messageTimeoutMillis how long each ext_proc answer is waited for (Envoy's
   *     message_timeout, but for the warm-up)
   */
  static Forwarded forward(
      Replay r, Headers atAuthz, CheckResponse ok, Metering metering, long messageTimeoutMillis) {
    Headers h = null;
    Headers extProcSees = null;
    Headers atRbac = null;
    Headers upstream = null;
    boolean beforeAuthz = true;
    for (HttpFilter filter : FILTERS) {
      if (filter.getTypedConfig().is(ExtAuthz.class)) {
        h = atAuthz.copy();
        applyCheck(h, ok.getOkResponse());
        beforeAuthz = false;
      } else if (beforeAuthz) {
        fail(
            "filter " + filter.getName() + " runs before ext_authz: teach the replay what it does");
      } else if (filter.getTypedConfig().is(ExternalProcessor.class)) {
        assertThat(runsOn(filter, r)).as("ext_proc runs on %s", r.route().getName()).isTrue();
        assertThat(effectiveProcessingMode(r).getRequestHeaderMode())
            .as("ext_proc is sent the request headers on %s", r.route().getName())
            .isNotEqualTo(HeaderSendMode.SKIP);
        extProcSees = new Headers();
        for (String[] e : h.entries) {
          if (forwardedToExtProc(e[0])) {
            extProcSees.add(e[0], e[1]);
          }
        }
        LocalReply answered = extProc(r, h, extProcSees, ok, metering, messageTimeoutMillis);
        if (answered != null) {
          return new Forwarded(extProcSees, null, null, answered);
        }
      } else if (filter.getTypedConfig().is(RBAC.class)) {
        Headers judged = h.copy();
        atRbac = judged;
        String denied =
            rbacRules(filter, r)
                .map(rules -> EnvoyRbac.denyingPolicy(rules, judged::getAll))
                .orElse(null);
        if (denied != null) {
          // rbac_filter.cc: a 403 with this body and details (common/rbac/utility.cc).
          return new Forwarded(
              extProcSees,
              atRbac,
              null,
              localReply(
                  403,
                  Map.of(),
                  "RBAC: access denied",
                  "rbac_access_denied_matched_policy[" + denied.replaceAll("\\s", "_") + "]",
                  h));
        }
      } else if (filter.getTypedConfig().is(CredentialInjector.class)) {
        if (runsOn(filter, r)) {
          CredentialInjector config =
              EnvoyConfigTest.unpack(filter.getTypedConfig(), CredentialInjector.class);
          String header = genericCredential(filter).getHeader().toLowerCase(Locale.ROOT);
          if (config.getOverwrite() || h.get(header) == null) {
            h.set(header, exampleSecret(filter));
          }
        }
      } else if (filter.getTypedConfig().is(Router.class)) {
        RouteConfiguration config = HCM.getRouteConfig();
        for (var level :
            List.<List<String>>of(
                config.getRequestHeadersToRemoveList(),
                r.vhost().getRequestHeadersToRemoveList(),
                r.route().getRequestHeadersToRemoveList())) {
          for (String name : level) {
            h.remove(name);
          }
        }
        assertThat(
                config.getRequestHeadersToAddCount()
                    + r.vhost().getRequestHeadersToAddCount()
                    + r.route().getRequestHeadersToAddCount())
            .as("request_headers_to_add is not modelled")
            .isZero();
        assertThat(r.route().getRoute().hasWeightedClusters())
            .as("weighted_clusters are not modelled")
            .isFalse();
        if (!r.route().getRoute().getHostRewriteLiteral().isEmpty()) {
          h.set(":authority", r.route().getRoute().getHostRewriteLiteral());
        }
        Router router = EnvoyConfigTest.unpack(filter.getTypedConfig(), Router.class);
        if (!router.getSuppressEnvoyHeaders()) {
          // The router's own x-envoy-* request headers (router.cc), unless suppressed.
          h.set(
              "x-envoy-expected-rq-timeout-ms",
              Long.toString(Durations.toMillis(r.route().getRoute().getTimeout())));
          if (r.vhost().getIncludeRequestAttemptCount()) {
            h.set("x-envoy-attempt-count", "1");
          }
        }
        upstream = h.copy();
      } else {
        fail(
            "filter "
                + filter.getName()
                + " is not modelled: teach the replay what it does to headers");
      }
    }
    assertThat(extProcSees).as("ext_proc ran after ext_authz").isNotNull();
    assertThat(atRbac).as("the fail-closed stage ran").isNotNull();
    assertThat(upstream).as("the router ran").isNotNull();
    return new Forwarded(extProcSees, atRbac, upstream, null);
  }

  /**
   * The RBAC rules enforced on this route (rbac_filter.cc engine()): the most specific
   * RBACPerRoute's, where one is set, else the filter's; empty when there are none ("no engine,
   * allowed by default"). Shadow rules only count and are not modelled.
   */
  private static Optional<io.envoyproxy.envoy.config.rbac.v3.RBAC> rbacRules(
      HttpFilter filter, Replay r) {
    assertThat(runsOn(filter, r)).as("RBAC runs on %s", r.route().getName()).isTrue();
    RBAC rbac = EnvoyConfigTest.unpack(filter.getTypedConfig(), RBAC.class);
    for (Map<String, Any> perFilter :
        List.of(
            r.route().getTypedPerFilterConfigMap(),
            r.vhost().getTypedPerFilterConfigMap(),
            HCM.getRouteConfig().getTypedPerFilterConfigMap())) {
      Any any = perFilter.get(filter.getName());
      if (any != null && any.is(RBACPerRoute.class)) {
        rbac = EnvoyConfigTest.unpack(any, RBACPerRoute.class).getRbac();
        break;
      }
    }
    assertThat(rbac.hasMatcher()).as("RBAC matcher trees are not modelled").isFalse();
    return rbac.hasRules() ? Optional.of(rbac.getRules()) : Optional.empty();
  }

  /**
   * Envoy's ext_proc filter on the request side (ext_proc.cc, processor_state.cc) against the
   * processor {@code metering}: it sends the request headers (end_of_stream when there is no body),
   * applies the answer's header mutation, then, in BUFFERED body mode, sends the whole body and
   * applies that answer's header mutation to the request headers, which it has held back so far: so
   * the next filter's decodeHeaders sees them. An immediate response ends the request there. If an
   * answer does not come within message_timeout, or the stream fails or closes, processing stops
   * and, under failure_mode_allow, the request goes on with the mutations applied so far. The
   * processor's mode_override is ignored (allow_mode_override is false, asserted).
   *
   * @param h the request headers, mutated as Envoy mutates them
   * @param shown the request headers ext_proc is sent
   * @return the client's answer when the processor answered in Envoy's place, else null
   */
  private static LocalReply extProc(
      Replay r,
      Headers h,
      Headers shown,
      CheckResponse ok,
      Metering metering,
      long messageTimeoutMillis) {
    assertThat(PROC.getAllowModeOverride()).as("mode_override is not modelled").isFalse();
    assertThat(PROC.getFailureModeAllow())
        .as("failure_mode_allow: false (a 500 on every metering failure) is not modelled")
        .isTrue();
    assertThat(setFields(PROC.getMutationRules()))
        .as("mutation_rules the replay models")
        .isSubsetOf("disallow_system");
    ProcessingMode mode = effectiveProcessingMode(r);
    String body = r.sdk().body();
    // What Check put in dynamic metadata, under ext_authz's namespace (metadata_options).
    io.envoyproxy.envoy.config.core.v3.Metadata metadata =
        io.envoyproxy.envoy.config.core.v3.Metadata.newBuilder()
            .putFilterMetadata(EXT_AUTHZ_METADATA_NAMESPACE, ok.getDynamicMetadata())
            .build();
    try (MeteringStream stream = metering.open()) {
      Optional<ProcessingResponse> headers =
          stream.exchange(
              ExtProcStream.requestHeadersMessage(shown, body == null).toBuilder()
                  .setMetadataContext(metadata)
                  .build(),
              messageTimeoutMillis);
      if (headers.isEmpty()) {
        return null; // failure_mode_allow: on, unmutated
      }
      if (headers.get().hasImmediateResponse()) {
        return immediateReply(headers.get().getImmediateResponse(), h);
      }
      assertThat(headers.get().getResponseCase())
          .isEqualTo(ProcessingResponse.ResponseCase.REQUEST_HEADERS);
      applyProcessorMutation(h, headers.get().getRequestHeaders().getResponse());
      if (body == null || mode.getRequestBodyMode() == BodySendMode.NONE) {
        return null;
      }
      assertThat(mode.getRequestBodyMode())
          .as("%s: only BUFFERED request bodies are modelled", r.route().getName())
          .isEqualTo(BodySendMode.BUFFERED);
      Optional<ProcessingResponse> answer =
          stream.exchange(
              ExtProcStream.requestBodyMessage(body).toBuilder()
                  .setMetadataContext(metadata)
                  .build(),
              messageTimeoutMillis);
      if (answer.isEmpty()) {
        return null; // on with what the headers answer changed
      }
      if (answer.get().hasImmediateResponse()) {
        return immediateReply(answer.get().getImmediateResponse(), h);
      }
      assertThat(answer.get().getResponseCase())
          .isEqualTo(ProcessingResponse.ResponseCase.REQUEST_BODY);
      // BUFFERED: the headers are still held (processor_state.cc handleBodyResponse), so the
      // body answer's header mutation applies to them.
      applyProcessorMutation(h, answer.get().getRequestBody().getResponse());
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** One answer's header mutation, as MutationUtils::applyHeaderMutations applies it. */
  private static void applyProcessorMutation(Headers h, CommonResponse common) {
    assertThat(common.getStatus())
        .as("CONTINUE_AND_REPLACE is not modelled")
        .isEqualTo(CommonResponse.ResponseStatus.CONTINUE);
    assertThat(common.getClearRouteCache()).as("clear_route_cache is not modelled").isFalse();
    applyProcessorMutation(h, common.getHeaderMutation());
  }

  /**
   * Removals first, then sets; headers mutation_rules protect are left alone (disallow_system:
   * pseudo-headers and host; and, without allow_envoy, x-envoy-*).
   */
  private static void applyProcessorMutation(Headers h, HeaderMutation m) {
    for (String name : m.getRemoveHeadersList()) {
      if (processorMayChange(name)) {
        h.remove(name);
      }
    }
    for (HeaderValueOption o : m.getSetHeadersList()) {
      if (processorMayChange(o.getHeader().getKey())) {
        // ext_proc sends raw_value (a HeaderValue with both is refused).
        String value =
            o.getHeader().getRawValue().isEmpty()
                ? o.getHeader().getValue()
                : o.getHeader().getRawValue().toStringUtf8();
        applyHeaderOption(h, o, value);
      }
    }
  }

  private static boolean processorMayChange(String name) {
    String n = name.toLowerCase(Locale.ROOT);
    boolean system = n.startsWith(":") || n.equals("host");
    return !(system && PROC.getMutationRules().getDisallowSystem().getValue())
        && !n.startsWith("x-envoy-");
  }

  /** ext_proc's sendImmediateResponse: a local reply with the processor's status and headers. */
  private static LocalReply immediateReply(ImmediateResponse immediate, Headers request) {
    // 200 when unset (DefaultImmediateStatus).
    int status = immediate.hasStatus() ? immediate.getStatus().getCodeValue() : 200;
    Headers set = new Headers();
    applyProcessorMutation(set, immediate.getHeaders());
    Map<String, String> headers = new LinkedHashMap<>();
    set.entries.forEach(e -> headers.put(e[0], e[1]));
    return localReply(
        status,
        headers,
        immediate.getBody().toStringUtf8(),
        immediate.getDetails().replaceAll("\\s", "_"),
        request);
  }

  /** A response Envoy makes itself (sendLocalReply), as the client gets it. */
  record LocalReply(int status, Map<String, String> headers, String body, String details) {}

  /**
   * Envoy's local reply (filter_manager.cc sendLocalReply, http/utility.cc prepareLocalReply,
   * local_reply.cc): the filter's status, headers and body, rewritten by the first
   * local_reply_config mapper whose filter matches (status_code, headers_to_add, body,
   * body_format_override); then content-length, and content-type when the filter set none or a
   * mapper changed the body without setting one (text/plain unless the formatter says otherwise);
   * an empty body goes without either.
   *
   * @param details the response code details the filter gives, which the mappers can read
   * @param request the request headers as they stand when the reply is made
   */
  static LocalReply localReply(
      int status, Map<String, String> filterHeaders, String body, String details, Headers request) {
    LocalReplyConfig config = HCM.getLocalReplyConfig();
    assertThat(setFields(config)).as("local_reply_config fields modelled").isSubsetOf("mappers");
    Headers headers = new Headers();
    filterHeaders.forEach(headers::add);
    String originalBody = body;
    String contentTypeBefore = headers.get("content-type");
    String contentType = "text/plain";
    for (ResponseMapper mapper : config.getMappersList()) {
      assertThat(setFields(mapper))
          .as("response mapper fields modelled")
          .isSubsetOf("filter", "status_code", "body", "headers_to_add", "body_format_override");
      if (!mapperMatches(mapper.getFilter(), status, details, request)) {
        continue;
      }
      if (mapper.hasBody()) {
        assertThat(mapper.getBody().hasInlineString()).as("inline bodies only").isTrue();
        body = mapper.getBody().getInlineString();
      }
      for (HeaderValueOption o : mapper.getHeadersToAddList()) {
        applyHeaderOption(headers, o, o.getHeader().getValue());
      }
      if (mapper.hasStatusCode()) {
        status = mapper.getStatusCode().getValue();
      }
      if (mapper.hasBodyFormatOverride()) {
        var format = mapper.getBodyFormatOverride();
        assertThat(format.getTextFormatSource().getInlineString())
            .as("only the body itself as the format is modelled")
            .isEqualTo("%LOCAL_REPLY_BODY%");
        contentType = format.getContentType().isEmpty() ? "text/plain" : format.getContentType();
      }
      break; // the first match wins
    }
    boolean customContentType =
        !java.util.Objects.equals(contentTypeBefore, headers.get("content-type"));
    if (body.isEmpty()) {
      headers.remove("content-length");
      headers.remove("content-type");
    } else {
      headers.set("content-length", Integer.toString(body.getBytes(StandardCharsets.UTF_8).length));
      if (headers.get("content-type") == null
          || (!body.equals(originalBody) && !customContentType)) {
        headers.set("content-type", contentType);
      }
    }
    Map<String, String> out = new LinkedHashMap<>();
    headers.entries.forEach(e -> out.put(e[0], e[1]));
    return new LocalReply(status, out, body, details);
  }

  /**
   * An AccessLogFilter as a local reply mapper evaluates it, for the kinds envoy.yaml uses; CEL
   * only in the one form {@code response.code_details == '<details>'}.
   */
  private static boolean mapperMatches(
      AccessLogFilter f, int status, String details, Headers request) {
    return switch (f.getFilterSpecifierCase()) {
      case AND_FILTER ->
          f.getAndFilter().getFiltersList().stream()
              .allMatch(x -> mapperMatches(x, status, details, request));
      case OR_FILTER ->
          f.getOrFilter().getFiltersList().stream()
              .anyMatch(x -> mapperMatches(x, status, details, request));
      case STATUS_CODE_FILTER -> {
        var c = f.getStatusCodeFilter().getComparison();
        long v = c.getValue().getDefaultValue();
        yield switch (c.getOp()) {
          case EQ -> status == v;
          case GE -> status >= v;
          case LE -> status <= v;
          default -> fail("comparison " + c.getOp());
        };
      }
      case HEADER_FILTER -> EnvoyRbac.matches(f.getHeaderFilter().getHeader(), request::getAll);
      case EXTENSION_FILTER -> {
        assertThat(f.getExtensionFilter().getName())
            .isEqualTo("envoy.access_loggers.extension_filters.cel");
        String expression =
            EnvoyConfigTest.unpack(f.getExtensionFilter().getTypedConfig(), ExpressionFilter.class)
                .getExpression();
        Matcher m = Pattern.compile("response\\.code_details == '([^'\\\\]*)'").matcher(expression);
        if (!m.matches()) {
          fail("CEL expression not modelled: " + expression);
        }
        yield m.group(1).equals(details);
      }
      default -> fail("access log filter " + f.getFilterSpecifierCase() + " is not modelled");
    };
  }

  /** Check's OkHttpResponse applied to the request headers as Envoy applies it. */
  private static void applyCheck(Headers h, OkHttpResponse ok) {
    for (HeaderValueOption o : ok.getHeadersList()) {
      applyHeaderOption(h, o, o.getHeader().getValue());
    }
    for (String name : ok.getHeadersToRemoveList()) {
      String n = name.toLowerCase(Locale.ROOT);
      // Envoy refuses to remove pseudo-headers and Host.
      if (!n.startsWith(":") && !n.equals("host")) {
        h.remove(n);
      }
    }
    if (ok.getQueryParametersToRemoveCount() > 0) {
      h.set(
          ":path",
          withoutQueryParameters(h.get(":path"), Set.copyOf(ok.getQueryParametersToRemoveList())));
    }
    assertThat(ok.getQueryParametersToSetCount())
        .as("query_parameters_to_set is not modelled")
        .isZero();
  }

  /** One HeaderValueOption: the legacy {@code append} when set, else append_action. */
  private static void applyHeaderOption(Headers h, HeaderValueOption o, String value) {
    String name = o.getHeader().getKey().toLowerCase(Locale.ROOT);
    if (o.hasAppend()) {
      if (o.getAppend().getValue()) {
        h.add(name, value);
      } else {
        h.set(name, value);
      }
      return;
    }
    switch (o.getAppendAction()) {
      case APPEND_IF_EXISTS_OR_ADD -> h.add(name, value);
      case ADD_IF_ABSENT -> {
        if (h.get(name) == null) {
          h.add(name, value);
        }
      }
      case OVERWRITE_IF_EXISTS -> {
        if (h.get(name) != null) {
          h.set(name, value);
        }
      }
      case OVERWRITE_IF_EXISTS_OR_ADD -> h.set(name, value);
      default -> fail("append_action " + o.getAppendAction());
    }
  }

  private static boolean forwardedToExtProc(String name) {
    if (!PROC.hasForwardRules()) {
      return true;
    }
    var rules = PROC.getForwardRules();
    if (rules.hasAllowedHeaders() && !anyMatches(rules.getAllowedHeaders(), name)) {
      return false;
    }
    return !(rules.hasDisallowedHeaders() && anyMatches(rules.getDisallowedHeaders(), name));
  }

  private static String withoutQueryParameters(String pathAndQuery, Set<String> remove) {
    int q = pathAndQuery.indexOf('?');
    if (q < 0) {
      return pathAndQuery;
    }
    String kept =
        Stream.of(pathAndQuery.substring(q + 1).split("&"))
            .filter(p -> !p.isEmpty())
            .filter(
                p ->
                    !remove.contains(URLDecoder.decode(p.split("=", 2)[0], StandardCharsets.UTF_8)))
            .collect(Collectors.joining("&"));
    return pathAndQuery.substring(0, q) + (kept.isEmpty() ? "" : "?" + kept);
  }

  // ------------------------------------------------------------------ the replays

  @Test
  void everyRouteOfEnvoyYaml_isReplayed_byTheSdkOfItsOwnProvider() {
    Set<String> replayed =
        REPLAYS.stream().map(r -> r.route().getName()).collect(Collectors.toSet());
    assertThat(replayed)
        .as("routes with a realistic SDK request in SDK_REQUESTS (add one for a new route)")
        .containsExactlyInAnyOrderElementsOf(
            HCM.getRouteConfig().getVirtualHostsList().stream()
                .flatMap(v -> v.getRoutesList().stream())
                .map(Route::getName)
                .toList());
    for (Replay r : REPLAYS) {
      assertThat(r.provider())
          .as(
              "%s lands on route %s, whose context_extensions.provider must be the SDK's",
              r.sdk(), r.route().getName())
          .isEqualTo(r.sdk().provider());
      assertThat(r.route().getMatch().getHeadersList())
          .as("%s: no route matches on a key header, so a keyless request routes the same", r)
          .noneMatch(
              m ->
                  Set.of("authorization", "x-api-key", "x-goog-api-key")
                      .contains(m.getName().toLowerCase(Locale.ROOT)));
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("keyedReplays")
  void validKey_isAllowed_keyIdReachesExtProc_andTheClientKeyNeverLeavesEnvoy(Replay r)
      throws Exception {
    for (KeyKind kind : List.of(KeyKind.UNLIMITED, KeyKind.LIMITED)) {
      CreateKeyResponse key = KEYS.get(kind);
      String id = key.getKey().getId();
      EnvoyCheck check = envoyCheck(r, key.getSecret());

      EnvoyAnswer answer = replay(check.request());

      assertThat(answer.rpcError())
          .as("%s: answered within Envoy's %d ms", r, CHECK_TIMEOUT_MILLIS)
          .isFalse();
      assertThat(answer.forwarded())
          .as("%s with a %s key: body %s", r, kind, answer.body())
          .isTrue();
      var ok = answer.response().getOkResponse();
      HeaderValueOption keyId =
          ok.getHeadersList().stream()
              .filter(o -> o.getHeader().getKey().equalsIgnoreCase(KEY_ID_HEADER))
              .findFirst()
              .orElseGet(() -> fail(r + ": no " + KEY_ID_HEADER));
      assertThat(keyId.getHeader().getValue())
          .as("read from HeaderValue.value by Envoy")
          .isEqualTo(id);
      // Overwrite under both Envoy readings: the legacy `append` (unset = false = set) and
      // append_action.
      assertThat(keyId.hasAppend()).isFalse();
      assertThat(keyId.getAppendAction())
          .isEqualTo(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD);
      // Every header a credential injector writes is one a client may put its key in: all go.
      Set<String> keyHeaders =
          FILTERS.stream()
              .filter(f -> f.getTypedConfig().is(CredentialInjector.class))
              .map(f -> genericCredential(f).getHeader().toLowerCase(Locale.ROOT))
              .collect(Collectors.toSet());
      assertThat(ok.getHeadersToRemoveList()).containsAll(keyHeaders);
      if (r.provider().equals("gemini")) {
        // Every allow on a Gemini route strips ?key=, wherever the key came from.
        assertThat(ok.getQueryParametersToRemoveList()).containsExactly(GEMINI_QUERY_KEY);
      } else {
        assertThat(ok.getQueryParametersToRemoveList()).isEmpty();
      }
      assertThat(
              answer.response().getDynamicMetadata().getFieldsMap().get("key_id").getStringValue())
          .isEqualTo(id);
      if (kind == KeyKind.LIMITED) {
        assertThat(ok.getResponseHeadersToAddList())
            .anySatisfy(
                o -> {
                  assertThat(o.getHeader().getKey()).isEqualTo("x-quota-remaining-usd");
                  assertThat(o.getHeader().getValue()).isEqualTo("7.75");
                });
      }

      Forwarded f = forward(r, check.headers(), answer.response());

      assertThat(f.localReply())
          .as("%s with a %s key: answered by Envoy instead of forwarded", r, kind)
          .isNull();
      // Metering admitted it (a limited key's on its hold, at the body; an unlimited key's at the
      // headers), the fail-closed stage let it through, and the mark stays on this side.
      assertThat(f.atRbac().getAll(GatewayHeaders.ADMITTED))
          .as("%s: metering's admission mark", r)
          .containsExactly("1");
      assertThat(f.upstream().get(GatewayHeaders.ADMITTED))
          .as("%s: x-quota-admitted stays on this side of Envoy", r)
          .isNull();
      assertThat(f.extProcSees().getAll(KEY_ID_HEADER))
          .as("%s: ext_proc sees Check's key id, not the client's own x-quota-key-id", r)
          .containsExactly(id);
      assertThat(f.extProcSees().toString())
          .as("%s: ext_proc never sees the client's key", r)
          .doesNotContain(key.getSecret());
      assertThat(f.upstream().get(KEY_ID_HEADER))
          .as("%s: x-quota-key-id stays on this side of Envoy", r)
          .isNull();
      assertThat(f.extProcSees().getAll(GatewayHeaders.KEY_LIMITED))
          .as("%s: ext_proc learns whether the %s key has a quota, from Check only", r, kind)
          .containsExactly(kind == KeyKind.LIMITED ? "true" : "false");
      assertThat(f.upstream().get(GatewayHeaders.KEY_LIMITED))
          .as("%s: x-quota-key-limited stays on this side of Envoy", r)
          .isNull();
      assertThat(f.upstream().toString())
          .as("%s: the client's key never reaches the provider", r)
          .doesNotContain(key.getSecret());
      HttpFilter injector = injectorOf(r);
      assertThat(
              f.upstream().getAll(genericCredential(injector).getHeader().toLowerCase(Locale.ROOT)))
          .as("%s: the provider gets its own key, once", r)
          .containsExactly(exampleSecret(injector));
      assertThat(f.upstream().get(":authority"))
          .isEqualTo(r.route().getRoute().getHostRewriteLiteral());
      if (r.sdk().keyInQuery()) {
        assertThat(f.upstream().get(":path")).isEqualTo(r.sdk().pathAndQuery());
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("keyedReplays")
  void allowedRequest_reachesTheProviderWithoutClientAddressOrEnvoyHeaders(Replay r)
      throws Exception {
    String claimed = "198.51.100.23";
    EnvoyCheck check =
        envoyCheck(
            r,
            KEYS.get(KeyKind.UNLIMITED).getSecret(),
            Map.of("x-forwarded-for", claimed, "x-envoy-external-address", claimed));
    // Envoy, at the edge, has recorded the client's address: Check sees it.
    assertThat(check.headers().get("x-forwarded-for")).isEqualTo(claimed + "," + CLIENT_IP);
    assertThat(check.headers().get("x-envoy-external-address")).isEqualTo(CLIENT_IP);

    EnvoyAnswer answer = replay(check.request());
    assertThat(answer.forwarded()).as("%s: body %s", r, answer.body()).isTrue();
    Forwarded f = forward(r, check.headers(), answer.response());
    assertThat(f.localReply()).as("%s: forwarded", r).isNull();

    assertThat(f.upstream().entries)
        .as("%s: what leaves for the provider:\n%s", r, f.upstream())
        .noneMatch(e -> e[0].startsWith("x-envoy-"))
        .noneMatch(e -> e[0].equals("x-forwarded-for"))
        .noneMatch(e -> e[1].contains(CLIENT_IP) || e[1].contains(claimed));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("replays")
  void missingKey_is401_inTheShapeOfTheRoutesProvider(Replay r) throws Exception {
    EnvoyAnswer answer = replay(envoyCheck(r, null).request());

    assertDenial(r, answer, Decision.MISSING_KEY);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("keyedReplays")
  void unknownKey_is401InvalidApiKey(Replay r) throws Exception {
    EnvoyAnswer answer = replay(envoyCheck(r, UNKNOWN_SECRET).request());

    assertDenial(r, answer, Decision.UNKNOWN_KEY);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("keyedReplays")
  void disabledExpiredAndExhaustedKeys_areDeniedWithABody(Replay r) throws Exception {
    assertDenial(
        r,
        replay(envoyCheck(r, KEYS.get(KeyKind.DISABLED).getSecret()).request()),
        Decision.DISABLED);
    assertDenial(
        r,
        replay(envoyCheck(r, KEYS.get(KeyKind.EXPIRED).getSecret()).request()),
        Decision.EXPIRED);
    assertDenial(
        r,
        replay(envoyCheck(r, KEYS.get(KeyKind.EXHAUSTED).getSecret()).request()),
        Decision.EXHAUSTED);
  }

  /** The wire facts of each denial that clients (and the README) rely on. */
  enum Decision {
    MISSING_KEY(
        401,
        Code.UNAUTHENTICATED,
        "api_key_required",
        "invalid_request_error",
        "authentication_error"),
    UNKNOWN_KEY(
        401,
        Code.UNAUTHENTICATED,
        "invalid_api_key",
        "invalid_request_error",
        "authentication_error"),
    DISABLED(
        401,
        Code.UNAUTHENTICATED,
        "api_key_disabled",
        "invalid_request_error",
        "authentication_error"),
    EXPIRED(
        403,
        Code.PERMISSION_DENIED,
        "api_key_expired",
        "invalid_request_error",
        "permission_error"),
    EXHAUSTED(
        429,
        Code.RESOURCE_EXHAUSTED,
        "insufficient_quota",
        "insufficient_quota",
        "rate_limit_error"),
    NOT_METERED(
        403,
        Code.PERMISSION_DENIED,
        "endpoint_not_metered",
        "invalid_request_error",
        "permission_error"),
    UNAVAILABLE(503, Code.UNAVAILABLE, "quota_service_unavailable", "server_error", "api_error");

    final int http;
    final Code grpc;
    final String code;
    final String openAiType;
    final String anthropicType;

    Decision(int http, Code grpc, String code, String openAiType, String anthropicType) {
      this.http = http;
      this.grpc = grpc;
      this.code = code;
      this.openAiType = openAiType;
      this.anthropicType = anthropicType;
    }
  }

  /**
   * A denial as the client gets it from Envoy: the status, content-type: application/json, and a
   * body in the error shape of the provider whose SDK the route serves. An empty body would mean
   * Envoy answered on its own (an RPC error under failure_mode_allow: false, i.e. status_on_error),
   * which no decision of ours may cause.
   */
  private static JsonNode assertDenial(Replay r, EnvoyAnswer answer, Decision d) throws Exception {
    assertThat(answer.rpcError())
        .as(
            "%s, %s: answered within Envoy's %d ms; an RPC error is Envoy's bodiless %d",
            r, d, CHECK_TIMEOUT_MILLIS, AUTHZ.getStatusOnError().getCodeValue())
        .isFalse();
    assertThat(answer.forwarded()).as("%s, %s: denied", r, d).isFalse();
    assertThat(answer.response().getStatus().getCode()).isEqualTo(d.grpc.getNumber());
    assertThat(answer.response().getStatus().getMessage()).isEqualTo(d.code);
    assertThat(answer.response().hasDeniedResponse())
        .as("without denied_response Envoy sends a bodiless 403")
        .isTrue();
    assertThat(answer.status()).as("%s, %s", r, d).isEqualTo(d.http);
    assertThat(answer.headers()).containsEntry("content-type", "application/json");
    assertThat(answer.body()).as("%s, %s: every denial has a body", r, d).isNotEmpty();
    JsonNode body = JSON.readTree(answer.body());
    switch (r.provider()) {
      case "openai" -> {
        assertThat(fieldNames(body)).containsExactly("error");
        JsonNode e = body.get("error");
        assertThat(fieldNames(e)).containsExactlyInAnyOrder("message", "type", "param", "code");
        assertThat(e.get("message").asText()).isNotBlank();
        assertThat(e.get("type").asText()).isEqualTo(d.openAiType);
        assertThat(e.get("param").isNull()).isTrue();
        assertThat(e.get("code").asText()).isEqualTo(d.code);
      }
      case "anthropic" -> {
        assertThat(fieldNames(body)).containsExactlyInAnyOrder("type", "error");
        assertThat(body.get("type").asText()).isEqualTo("error");
        JsonNode e = body.get("error");
        assertThat(fieldNames(e)).containsExactlyInAnyOrder("type", "message");
        assertThat(e.get("type").asText()).isEqualTo(d.anthropicType);
        assertThat(e.get("message").asText()).endsWith("(" + d.code + ")");
      }
      case "gemini" -> {
        assertThat(fieldNames(body)).containsExactly("error");
        JsonNode e = body.get("error");
        assertThat(fieldNames(e)).containsExactlyInAnyOrder("code", "message", "status");
        assertThat(e.get("code").isInt()).isTrue();
        assertThat(e.get("code").asInt()).isEqualTo(d.http);
        assertThat(e.get("status").asText()).isEqualTo(d.grpc.name());
        assertThat(e.get("message").asText()).endsWith("(" + d.code + ")");
      }
      default -> fail("route " + r.route().getName() + " has provider " + r.provider());
    }
    return body;
  }

  @Test
  void envoyYaml_rpcErrorsAreTheOnlyBodilessAnswers_andNeverLetARequestThrough() {
    // Envoy answers with no body only when it got no CheckResponse (RPC error, deadline, no healthy
    // host): then failure_mode_allow: false makes it status_on_error. Every decision of ours is a
    // CheckResponse with a denied_response body (asserted per replay above, under Envoy's
    // deadline).
    assertThat(AUTHZ.getFailureModeAllow())
        .as("an RPC error must not let a request through unchecked")
        .isFalse();
    assertThat(AUTHZ.hasStatusOnError()).isTrue();
    assertThat(AUTHZ.getStatusOnError().getCodeValue()).as("status_on_error").isBetween(500, 599);
    assertThat(AUTHZ.getGrpcService().hasEnvoyGrpc()).as("the gRPC Check API").isTrue();
  }

  @Test
  void whatCheckSets_reachesExtProc_andIsDroppedOnlyByTheRouter() {
    int authz = FILTERS.indexOf(AUTHZ_FILTER);
    int proc = FILTERS.indexOf(PROC_FILTER);
    int router = FILTERS.size() - 1;
    assertThat(FILTERS.get(router).getTypedConfig().is(Router.class)).isTrue();
    assertThat(authz).isLessThan(proc);
    // Nothing between ext_authz and ext_proc may touch request headers.
    assertThat(FILTERS.subList(authz + 1, proc)).isEmpty();
    // ext_proc's own filter on what it is shown.
    assertThat(forwardedToExtProc(KEY_ID_HEADER))
        .as("forward_rules let x-quota-key-id through")
        .isTrue();
    // Check's dynamic metadata (key_id) is forwarded to the processor under ext_authz's namespace.
    assertThat(PROC.getMetadataOptions().getForwardingNamespaces().getUntypedList())
        .contains(EXT_AUTHZ_METADATA_NAMESPACE);
    assertThat(AUTHZ_FILTER.getName()).isEqualTo(EXT_AUTHZ_METADATA_NAMESPACE);
    // The virtual host's request_headers_to_remove: [x-quota-key-id] is NOT a strip before
    // ext_proc.
    // Route-config, virtual-host and route request_headers_to_add/remove are applied by the router
    // filter (Router::Filter::decodeHeaders -> RouteEntry::finalizeRequestHeaders) when it forwards
    // the request upstream. The router is the last http filter, so ext_authz has set the header,
    // ext_proc has been shown it and the credential injectors have run before it goes; only the
    // provider never sees it. That is the intended order: the processor needs the id, the provider
    // must not get it. (No cluster-level header removal exists in this envoy.yaml.)
    Set<String> removedToProvider =
        new LinkedHashSet<>(HCM.getRouteConfig().getRequestHeadersToRemoveList());
    for (VirtualHost v : HCM.getRouteConfig().getVirtualHostsList()) {
      removedToProvider.addAll(v.getRequestHeadersToRemoveList());
      v.getRoutesList().forEach(rt -> removedToProvider.addAll(rt.getRequestHeadersToRemoveList()));
    }
    assertThat(removedToProvider)
        .contains(KEY_ID_HEADER, GatewayHeaders.KEY_LIMITED, GatewayHeaders.ADMITTED);
  }

  @Test
  void geminiHeaderKeyPlusQueryKey_queryKeyStrippedBeforeGoogle() throws Exception {
    Replay r = REPLAYS.stream().filter(x -> x.sdk().keyInQuery()).findFirst().orElseThrow();
    String headerKey = KEYS.get(KeyKind.UNLIMITED).getSecret();
    String queryKey = KEYS.get(KeyKind.LIMITED).getSecret();
    EnvoyCheck check = envoyCheck(r, queryKey, Map.of(keyHeader(r), keyHeaderValue(r, headerKey)));

    EnvoyAnswer answer = replay(check.request());
    assertThat(answer.forwarded()).isTrue();
    Forwarded f = forward(r, check.headers(), answer.response());

    // The header key wins, and Check strips `key` on every allow of a Gemini route, so the second
    // quota key never travels to generativelanguage.googleapis.com in the URL.
    assertThat(answer.response().getOkResponse().getQueryParametersToRemoveList())
        .containsExactly("key");
    assertThat(f.upstream().get(":path")).doesNotContain(queryKey);
  }

  @Test
  void coldKeyWhileTheDatabaseHangs_answers503WithBodyBeforeEnvoysTimeout() throws Exception {
    String secret = createKey("slow-db", "0", null).getSecret();
    server.app().cache().invalidateAll();
    Replay r = REPLAYS.get(0);
    // A lock queue in front of api_keys (a migration, a long ALTER TABLE): the key lookup hangs.
    // An unreachable database does the same once the pool has no connection left to fail fast on
    // (Hikari waits connectionTimeout, 3 s); that case is not replayed here because whether a dead
    // pooled connection fails first is up to timing. CheckOutageIT's 300 ms deadline is looser
    // than Envoy's.
    EnvoyAnswer answer;
    try (var lock = DriverManager.getConnection(db.url(), "postgres", "")) {
      lock.setAutoCommit(false);
      lock.createStatement().execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE");
      answer = replay(envoyCheck(r, secret).request());
      lock.rollback();
    }
    // The server-side deadline starts after Envoy's own, so Authorizer answers a margin (30% of the
    // time left, at most 100 ms) before it: the 503 with its body reaches Envoy in time.
    assertThat(answer.rpcError())
        .as("Envoy got a CheckResponse within %d ms", CHECK_TIMEOUT_MILLIS)
        .isFalse();
    assertDenial(r, answer, Decision.UNAVAILABLE);
  }

  @Test
  void readme_runWithEnvoy_showsTheBodiesTheAuthoritySendsOnAnOpenAiPath() throws Exception {
    Replay openai =
        REPLAYS.stream().filter(r -> r.provider().equals("openai")).findFirst().orElseThrow();
    Map<String, String> actual = new LinkedHashMap<>();
    Map<String, Integer> statusOf = new LinkedHashMap<>();
    Map<Decision, String> secrets = new EnumMap<>(Decision.class);
    secrets.put(Decision.MISSING_KEY, null);
    secrets.put(Decision.UNKNOWN_KEY, UNKNOWN_SECRET);
    secrets.put(Decision.DISABLED, KEYS.get(KeyKind.DISABLED).getSecret());
    secrets.put(Decision.EXPIRED, KEYS.get(KeyKind.EXPIRED).getSecret());
    secrets.put(Decision.EXHAUSTED, KEYS.get(KeyKind.EXHAUSTED).getSecret());
    for (var e : secrets.entrySet()) {
      EnvoyAnswer answer = replay(envoyCheck(openai, e.getValue()).request());
      assertDenial(openai, answer, e.getKey());
      actual.put(e.getKey().code, answer.body());
      statusOf.put(e.getKey().code, answer.status());
    }

    String readme = RepoFiles.read("README.md");
    int start = readme.indexOf("## Run with Envoy");
    assertThat(start).isNotNegative();
    int end = readme.indexOf("\n## ", start + 1);
    String section = readme.substring(start, end < 0 ? readme.length() : end);
    assertThat(section).doesNotContain("\"...\"");

    Matcher block =
        Pattern.compile(
                "HTTP/1\\.1 (\\d{3}) [^\\n]*\\ncontent-type: application/json\\n\\n(\\{[^\\n]*\\})")
            .matcher(section);
    Set<Integer> shown = new LinkedHashSet<>();
    while (block.find()) {
      int status = Integer.parseInt(block.group(1));
      String body = block.group(2);
      String code = JSON.readTree(body).at("/error/code").asText();
      assertThat(actual).as("README shows a body for code %s", code).containsKey(code);
      assertThat(body).as("README body for %s", code).isEqualTo(actual.get(code));
      assertThat(status).as("README status for %s", code).isEqualTo(statusOf.get(code));
      shown.add(status);
    }
    assertThat(shown).as("README shows a real body for each status").contains(401, 403, 429);

    // The table's message column, where there is one, matches the bodies too.
    Matcher row = Pattern.compile("\\| (\\d{3}) \\| `([a-z_]+)` \\| ([^|]+) \\|").matcher(section);
    int rows = 0;
    while (row.find()) {
      rows++;
      String code = row.group(2);
      if (actual.containsKey(code)) {
        assertThat(Integer.parseInt(row.group(1))).isEqualTo(statusOf.get(code));
        assertThat(row.group(3).trim())
            .isEqualTo(JSON.readTree(actual.get(code)).at("/error/message").asText());
      }
    }
    assertThat(rows).as("README's table of refusals").isGreaterThanOrEqualTo(actual.size());

    // The Anthropic and Gemini examples are the unknown-key bodies of those routes, verbatim.
    for (String provider : List.of("anthropic", "gemini")) {
      Replay r =
          REPLAYS.stream().filter(x -> x.provider().equals(provider)).findFirst().orElseThrow();
      EnvoyAnswer answer = replay(envoyCheck(r, UNKNOWN_SECRET).request());
      assertDenial(r, answer, Decision.UNKNOWN_KEY);
      assertThat(section).as("README's %s example", provider).contains("`" + answer.body() + "`");
    }
  }

  // ------------------------------------------------------------------ the fail-closed stage

  /** Each way a metering stream fails, on each metered route. */
  static Stream<Arguments> failingMeteringOnMeteredRoutes() {
    return Stream.of(Metering.PLACEHOLDER_TOKEN, Metering.UNREACHABLE, Metering.STALLS_AT_BODY)
        .flatMap(m -> meteredReplays().map(r -> Arguments.of(m, r)));
  }

  /** The 503 the client gets from the fail-closed stage: its RBAC 403, through the mapper. */
  private static void assertFailClosedReply(Object what, LocalReply reply) throws Exception {
    assertThat(reply).as("%s: Envoy answered it itself", what).isNotNull();
    assertThat(reply.details())
        .as("%s: refused by the fail-closed stage", what)
        .isEqualTo("rbac_access_denied_matched_policy[" + EnvoyConfigTest.FAIL_CLOSED_POLICY + "]");
    assertThat(reply.status()).as("%s", what).isEqualTo(503);
    assertThat(reply.headers())
        .containsEntry("content-type", "application/json")
        .containsEntry("retry-after", "1");
    assertThat(reply.body())
        .as("the authority's own answer when it cannot hold a key's quota")
        .isEqualTo(ProviderError.holdUnavailable().body(null));
    JsonNode error = JSON.readTree(reply.body()).get("error");
    assertThat(error.get("code").asText()).isEqualTo("quota_unavailable");
    assertThat(error.get("message").asText()).isNotBlank();
  }

  /**
   * A key with a quota whose metering stream fails (refused for the placeholder token, nothing
   * listening, or no answer to the body within message_timeout): ext_proc fails open and the
   * request goes on unmarked, so the fail-closed stage refuses it before any provider key is added,
   * with a 503.
   */
  @ParameterizedTest(name = "{0}: {1}")
  @MethodSource("failingMeteringOnMeteredRoutes")
  void limitedKey_meteringStreamFails_isRefused503_andNeverReachesTheProvider(
      Metering metering, Replay r) throws Exception {
    EnvoyCheck check = envoyCheck(r, KEYS.get(KeyKind.LIMITED).getSecret());
    EnvoyAnswer answer = replay(check.request());
    assertThat(answer.forwarded()).as("%s: Check allows it: %s", r, answer.body()).isTrue();

    Forwarded f = forward(r, check.headers(), answer.response(), metering);

    assertThat(f.upstream()).as("%s, %s: nothing leaves for the provider", r, metering).isNull();
    assertThat(f.atRbac()).as("%s: ext_proc failed open, the request went on", r).isNotNull();
    assertThat(f.atRbac().get(GatewayHeaders.KEY_LIMITED)).isEqualTo("true");
    assertThat(f.atRbac().get(GatewayHeaders.ADMITTED)).as("%s: never admitted", r).isNull();
    assertFailClosedReply(r + ", " + metering, f.localReply());
  }

  @Test
  void placeholderToken_isTheAuthoritysOwnRefusal_countedAsSuch() throws Exception {
    // Metering.PLACEHOLDER_TOKEN is no simulation: the authority refuses that stream and counts it.
    var registry = server.app().operations().registry();
    Supplier<Double> refused =
        () ->
            registry.find("quota.metering.streams.refused").counters().stream()
                .mapToDouble(c -> c.count())
                .sum();
    double before = refused.get();
    Replay r = meteredReplays().findFirst().orElseThrow();
    EnvoyCheck check = envoyCheck(r, KEYS.get(KeyKind.LIMITED).getSecret());
    Forwarded f =
        forward(r, check.headers(), replay(check.request()).response(), Metering.PLACEHOLDER_TOKEN);
    assertFailClosedReply(r, f.localReply());
    assertThat(refused.get() - before).isEqualTo(1.0);
  }

  /**
   * A key with a quota whose hold metering granted: the body answer marks it, the stage lets it
   * through, and the provider sees neither the mark nor whether the key has a quota.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("meteredReplays")
  void limitedKey_holdGranted_passes_andTheProviderNeverSeesTheMark(Replay r) throws Exception {
    EnvoyCheck check = envoyCheck(r, KEYS.get(KeyKind.LIMITED).getSecret());
    EnvoyAnswer answer = replay(check.request());
    assertThat(answer.forwarded()).as("%s: Check allows it: %s", r, answer.body()).isTrue();

    Forwarded f = forward(r, check.headers(), answer.response(), Metering.WORKING);

    assertThat(f.localReply()).as("%s: forwarded", r).isNull();
    assertThat(f.atRbac().getAll(GatewayHeaders.ADMITTED)).containsExactly("1");
    assertThat(f.upstream().get(GatewayHeaders.ADMITTED)).isNull();
    assertThat(f.upstream().get(GatewayHeaders.KEY_LIMITED)).isNull();
    assertThat(f.upstream().toString())
        .as("%s: no gateway header leaves", r)
        .doesNotContain("x-quota-");
  }

  /** An unlimited key needs no hold: it passes whichever way metering fails. */
  @ParameterizedTest(name = "{0}: {1}")
  @MethodSource("failingMeteringOnMeteredRoutes")
  void unlimitedKey_meteringStreamFails_stillReachesTheProvider(Metering metering, Replay r)
      throws Exception {
    EnvoyCheck check = envoyCheck(r, KEYS.get(KeyKind.UNLIMITED).getSecret());
    EnvoyAnswer answer = replay(check.request());
    assertThat(answer.forwarded()).as("%s: Check allows it: %s", r, answer.body()).isTrue();

    Forwarded f = forward(r, check.headers(), answer.response(), metering);

    assertThat(f.localReply()).as("%s, %s: forwarded", r, metering).isNull();
    assertThat(f.atRbac().get(GatewayHeaders.KEY_LIMITED)).isEqualTo("false");
    if (metering != Metering.STALLS_AT_BODY) {
      // The stream failed before any answer: it passes unmarked.
      assertThat(f.atRbac().get(GatewayHeaders.ADMITTED)).isNull();
    }
    assertThat(f.upstream().get(GatewayHeaders.ADMITTED)).isNull();
    assertThat(f.upstream().getAll(keyHeader(r))).as("%s: with the provider's key", r).hasSize(1);
  }

  /**
   * A client that sends x-quota-admitted itself gains nothing: Check removes it, so with metering
   * failing the request of a key with a quota is refused all the same.
   */
  @ParameterizedTest(name = "{0}")
  @EnumSource(
      value = Metering.class,
      names = {"PLACEHOLDER_TOKEN", "UNREACHABLE", "STALLS_AT_BODY"})
  void forgedAdmissionMark_limitedKeyWithFailingMetering_isStillRefused(Metering metering)
      throws Exception {
    Replay r = meteredReplays().findFirst().orElseThrow();
    EnvoyCheck check =
        envoyCheck(r, KEYS.get(KeyKind.LIMITED).getSecret(), Map.of(GatewayHeaders.ADMITTED, "1"));
    assertThat(check.headers().get(GatewayHeaders.ADMITTED))
        .as("the client sent it")
        .isEqualTo("1");
    EnvoyAnswer answer = replay(check.request());
    assertThat(answer.forwarded()).isTrue();
    assertThat(answer.response().getOkResponse().getHeadersToRemoveList())
        .contains(GatewayHeaders.ADMITTED);

    Forwarded f = forward(r, check.headers(), answer.response(), metering);

    assertThat(f.extProcSees().get(GatewayHeaders.ADMITTED)).as("gone before ext_proc").isNull();
    assertThat(f.upstream()).isNull();
    assertFailClosedReply(metering, f.localReply());
  }

  /**
   * Metering's own refusals are local replies too, of a limited key's unmarked request: the very
   * headers the stage refuses. The mapper tells them apart by the response code details, so the
   * client still gets metering's 403 and its body.
   */
  @Test
  void meteringRefusal403_keepsItsStatusAndBody_throughTheFailClosedMapper() throws Exception {
    String body =
        "{\"model\":\"gpt-4o-mini\",\"input\":\"Write a long essay\",\"background\":true}";
    Replay r = route(openai("POST", "/v1/responses", body));
    EnvoyCheck check = envoyCheck(r, KEYS.get(KeyKind.LIMITED).getSecret());
    EnvoyAnswer answer = replay(check.request());
    assertThat(answer.forwarded()).isTrue();

    Forwarded f = forward(r, check.headers(), answer.response(), Metering.WORKING);

    assertThat(f.upstream()).isNull();
    assertThat(f.atRbac()).as("answered by ext_proc, before the stage").isNull();
    LocalReply reply = f.localReply();
    assertThat(reply.details()).isEqualTo("endpoint_not_metered");
    assertThat(reply.status()).isEqualTo(403);
    assertThat(JSON.readTree(reply.body()).at("/error/code").asText())
        .isEqualTo("endpoint_not_metered");
    assertThat(reply.headers())
        .containsEntry("content-type", "application/json")
        .doesNotContainKey("retry-after");
  }

  /**
   * Check's 403s likewise: an expired key's request that claims a quota and carries no mark is one
   * the stage's policy would deny, yet the client gets Check's 403 with its body.
   */
  @Test
  void checkDenial403_withHeadersTheStageWouldDeny_isNotRewritten() throws Exception {
    Replay r = meteredReplays().findFirst().orElseThrow();
    EnvoyCheck check =
        envoyCheck(
            r, KEYS.get(KeyKind.EXPIRED).getSecret(), Map.of(GatewayHeaders.KEY_LIMITED, "true"));
    Headers sent = requestHeadersOf(check.request());
    assertThat(EnvoyRbac.denyingPolicy(FAIL_CLOSED.getRules(), sent::getAll))
        .as("these request headers match the stage's policy")
        .isEqualTo(EnvoyConfigTest.FAIL_CLOSED_POLICY);

    EnvoyAnswer answer = replay(check.request());

    assertDenial(r, answer, Decision.EXPIRED);
    assertThat(answer.headers()).doesNotContainKey("retry-after");
  }

  // ------------------------------------------------------------------ ext_proc per route

  /**
   * ext_proc's processing mode on a route, as Envoy works it out (ext_proc.cc mergePerRouteConfig):
   * the filter's, replaced whole by the most specific ExtProcPerRoute that sets
   * overrides.processing_mode (route config, virtual host, route). allow_mode_override plays no
   * part: it concerns the processor's own mode_override only. A per-route setting the replay does
   * not model (disabled, another grpc_service, ...) fails it.
   */
  static ProcessingMode effectiveProcessingMode(Replay r) {
    ProcessingMode mode = PROC.getProcessingMode();
    for (Map<String, Any> perFilter :
        List.of(
            HCM.getRouteConfig().getTypedPerFilterConfigMap(),
            r.vhost().getTypedPerFilterConfigMap(),
            r.route().getTypedPerFilterConfigMap())) {
      Any any = perFilter.get(PROC_FILTER.getName());
      if (any == null) {
        continue;
      }
      ExtProcPerRoute perRoute = EnvoyConfigTest.unpack(any, ExtProcPerRoute.class);
      assertThat(setFields(perRoute))
          .as("%s: ExtProcPerRoute fields the replay models", r.route().getName())
          .containsExactly("overrides");
      assertThat(setFields(perRoute.getOverrides()))
          .as("%s: ext_proc overrides the replay models", r.route().getName())
          .containsExactly("processing_mode");
      mode = perRoute.getOverrides().getProcessingMode();
    }
    return mode;
  }

  /** The ext_proc side of the real server, as Envoy's filter drives one stream. */
  static final class ExtProcStream implements AutoCloseable {
    private final LinkedBlockingQueue<ProcessingResponse> answers = new LinkedBlockingQueue<>();
    private final StreamObserver<ProcessingRequest> requests;

    ExtProcStream() {
      requests =
          ExternalProcessorGrpc.newStub(server.envoyMetering())
              .process(
                  new StreamObserver<>() {
                    @Override
                    public void onNext(ProcessingResponse value) {
                      answers.add(value);
                    }

                    @Override
                    public void onError(Throwable t) {}

                    @Override
                    public void onCompleted() {}
                  });
    }

    /**
     * Sends one phase (as Envoy does, header values in raw_value only) and waits for its answer.
     */
    ProcessingResponse send(ProcessingRequest request) throws InterruptedException {
      requests.onNext(request);
      ProcessingResponse answer = answers.poll(10, TimeUnit.SECONDS);
      assertThat(answer).as("ext_proc answered %s", request.getRequestCase()).isNotNull();
      return answer;
    }

    ProcessingResponse requestHeaders(Headers h, boolean endOfStream) throws InterruptedException {
      return send(requestHeadersMessage(h, endOfStream));
    }

    ProcessingResponse requestBody(String body) throws InterruptedException {
      return send(requestBodyMessage(body));
    }

    /** The request headers as Envoy sends them: values in raw_value only. */
    static ProcessingRequest requestHeadersMessage(Headers h, boolean endOfStream) {
      HeaderMap.Builder map = HeaderMap.newBuilder();
      for (String[] e : h.entries) {
        map.addHeaders(
            HeaderValue.newBuilder().setKey(e[0]).setRawValue(ByteString.copyFromUtf8(e[1])));
      }
      return ProcessingRequest.newBuilder()
          .setRequestHeaders(HttpHeaders.newBuilder().setHeaders(map).setEndOfStream(endOfStream))
          .build();
    }

    /** A whole (BUFFERED) request body in one message. */
    static ProcessingRequest requestBodyMessage(String body) {
      return ProcessingRequest.newBuilder()
          .setRequestBody(
              HttpBody.newBuilder().setBody(ByteString.copyFromUtf8(body)).setEndOfStream(true))
          .build();
    }

    @Override
    public void close() {
      requests.onCompleted();
    }
  }

  /** How the ext_proc stream fares, each as Envoy's filter would meet it. */
  enum Metering {
    /**
     * The authority's metering port, sent envoy.yaml's initial_metadata with the token filled in as
     * entrypoint.sh fills it in.
     */
    WORKING,
    /**
     * The same, with initial_metadata as committed (the placeholder token, an Envoy started without
     * entrypoint.sh): the authority refuses the stream.
     */
    PLACEHOLDER_TOKEN,
    /** Nothing listens where the stream goes (the authority restarting): the stream fails. */
    UNREACHABLE,
    /**
     * A processor that answers the request headers (relaying the authority's answer) and then never
     * the body (stalled, overloaded): Envoy gives up after message_timeout.
     */
    STALLS_AT_BODY;

    MeteringStream open() {
      return new MeteringStream(
          switch (this) {
            case WORKING -> withInitialMetadata(server.meteringChannel(), true);
            case PLACEHOLDER_TOKEN -> withInitialMetadata(server.meteringChannel(), false);
            case UNREACHABLE -> withInitialMetadata(unreachable, true);
            case STALLS_AT_BODY -> withInitialMetadata(stallingChannel, true);
          });
    }
  }

  /** A channel to nothing, and a processor that stalls (Metering.UNREACHABLE, STALLS_AT_BODY). */
  private static ManagedChannel unreachable;

  private static Server stalling;
  private static ManagedChannel stallingChannel;

  private static void startBrokenProcessors() {
    int closedPort;
    try (ServerSocket s = new ServerSocket(0)) {
      closedPort = s.getLocalPort();
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
    // Closed again at once: connecting to it is refused (nobody else binds ephemeral ports here).
    unreachable = ManagedChannelBuilder.forAddress("127.0.0.1", closedPort).usePlaintext().build();
    try {
      stalling = ServerBuilder.forPort(0).addService(new StallingProcessor()).build().start();
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
    stallingChannel =
        ManagedChannelBuilder.forAddress("127.0.0.1", stalling.getPort()).usePlaintext().build();
  }

  /**
   * grpc_service.initial_metadata as envoy.yaml states it, on every stream; {@code filledIn}: with
   * the placeholder replaced by the authority's metering token, as entrypoint.sh does at start.
   */
  private static Channel withInitialMetadata(Channel channel, boolean filledIn) {
    Metadata md = new Metadata();
    for (HeaderValue v : PROC.getGrpcService().getInitialMetadataList()) {
      String value = v.getValue();
      if (filledIn) {
        assertThat(value).contains(EnvoyConfigTest.METERING_TOKEN_PLACEHOLDER);
        value =
            value.replace(EnvoyConfigTest.METERING_TOKEN_PLACEHOLDER, TestServer.METERING_TOKEN);
      }
      md.put(Metadata.Key.of(v.getKey(), Metadata.ASCII_STRING_MARSHALLER), value);
    }
    return ClientInterceptors.intercept(channel, MetadataUtils.newAttachHeadersInterceptor(md));
  }

  /**
   * One ext_proc stream as Envoy's filter holds it: a message is answered within the timeout or the
   * stream is given up (as on an error or a close), and nothing more is sent on it.
   */
  static final class MeteringStream implements AutoCloseable {
    private static final Object CLOSED = new Object();
    private final LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
    private final StreamObserver<ProcessingRequest> requests;
    private boolean givenUp;

    MeteringStream(Channel channel) {
      requests =
          ExternalProcessorGrpc.newStub(channel)
              .process(
                  new StreamObserver<>() {
                    @Override
                    public void onNext(ProcessingResponse value) {
                      events.add(value);
                    }

                    @Override
                    public void onError(Throwable t) {
                      events.add(t);
                    }

                    @Override
                    public void onCompleted() {
                      events.add(CLOSED);
                    }
                  });
    }

    /** The answer, or empty: an error, a close, or nothing within the timeout. */
    Optional<ProcessingResponse> exchange(ProcessingRequest request, long timeoutMillis)
        throws InterruptedException {
      if (givenUp) {
        return Optional.empty();
      }
      requests.onNext(request);
      Object event = events.poll(timeoutMillis, TimeUnit.MILLISECONDS);
      if (event instanceof ProcessingResponse answer) {
        return Optional.of(answer);
      }
      givenUp = true;
      return Optional.empty();
    }

    @Override
    public void close() {
      if (givenUp) {
        // Envoy resets a stream it gave up on (closeStream).
        requests.onError(Status.CANCELLED.withDescription("given up").asRuntimeException());
      } else {
        // The request went on: the replay has no response to show it, so the stream ends here.
        requests.onCompleted();
      }
    }
  }

  /**
   * A processor that relays a stream's request headers to the authority (with the metering token)
   * and the authority's answer back, then swallows everything else: its body answer never comes.
   */
  static final class StallingProcessor extends ExternalProcessorGrpc.ExternalProcessorImplBase {
    @Override
    public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> toEnvoy) {
      StreamObserver<ProcessingRequest> toAuthority =
          ExternalProcessorGrpc.newStub(server.envoyMetering())
              .process(
                  new StreamObserver<>() {
                    @Override
                    public void onNext(ProcessingResponse value) {
                      toEnvoy.onNext(value);
                    }

                    @Override
                    public void onError(Throwable t) {}

                    @Override
                    public void onCompleted() {}
                  });
      return new StreamObserver<>() {
        @Override
        public void onNext(ProcessingRequest value) {
          if (value.hasRequestHeaders()) {
            toAuthority.onNext(value);
          }
        }

        @Override
        public void onError(Throwable t) {
          toAuthority.onError(Status.CANCELLED.asRuntimeException());
        }

        @Override
        public void onCompleted() {
          toAuthority.onCompleted();
          toEnvoy.onCompleted();
        }
      };
    }
  }

  /** The replays ext_proc meters (a hold is taken for a limited key), one per route. */
  static Stream<Replay> meteredReplays() {
    Set<String> routes = new LinkedHashSet<>();
    return REPLAYS.stream()
        .filter(
            r ->
                ProviderRoute.of(
                        r.sdk().method(),
                        r.sdk().pathAndQuery(),
                        r.sdk().headers().containsKey("anthropic-version"))
                    .isPresent())
        .filter(r -> routes.add(r.route().getName()));
  }

  /** The request headers ext_proc is shown after Check allowed this request with this key. */
  private static Headers extProcHeaders(Replay r, String secret, Map<String, String> extra) {
    EnvoyCheck check = envoyCheck(r, secret, extra);
    EnvoyAnswer answer = replay(check.request());
    assertThat(answer.forwarded()).as("%s: body %s", r, answer.body()).isTrue();
    return forward(r, check.headers(), answer.response()).extProcSees();
  }

  // ------------------------------------------------------------------ the endpoint table

  /**
   * One request per row of README "Endpoints" (provider.Endpoints), as the provider's SDK sends it.
   *
   * @param row the row it must land on: provider ("any" for the catch-alls) and endpoint, as the
   *     README writes them
   */
  record EndpointSample(String row, SdkRequest sdk) {
    @Override
    public String toString() {
      return row + " <- " + sdk;
    }
  }

  private static final String OPENAI_RESPONSE = "{\"model\":\"gpt-4o-mini\",\"input\":\"Hello\"}";

  private static final List<EndpointSample> ENDPOINT_SAMPLES =
      List.of(
          sample(
              "openai POST /v1/chat/completions",
              openai("POST", "/v1/chat/completions", OPENAI_CHAT)),
          sample(
              "openai POST /v1/chat/completions/{id}",
              openai(
                  "POST",
                  "/v1/chat/completions/chatcmpl-abc123",
                  "{\"metadata\":{\"team\":\"a\"}}")),
          sample(
              "openai DELETE /v1/chat/completions/{id}",
              openai("DELETE", "/v1/chat/completions/chatcmpl-abc123", null)),
          sample(
              "openai POST /v1/completions",
              openai(
                  "POST",
                  "/v1/completions",
                  "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Hello\"}")),
          sample("openai POST /v1/responses", openai("POST", "/v1/responses", OPENAI_RESPONSE)),
          sample(
              "openai POST /v1/responses/input_tokens",
              openai("POST", "/v1/responses/input_tokens", OPENAI_RESPONSE)),
          sample(
              "openai POST /v1/responses/{id}/cancel",
              openai("POST", "/v1/responses/resp_abc123/cancel", null)),
          sample("openai GET /v1/responses/{id}", openai("GET", "/v1/responses/resp_abc123", null)),
          sample(
              "openai DELETE /v1/responses/{id}",
              openai("DELETE", "/v1/responses/resp_abc123", null)),
          sample(
              "openai POST /v1/embeddings",
              openai(
                  "POST",
                  "/v1/embeddings",
                  "{\"model\":\"text-embedding-3-small\",\"input\":\"Hello\"}")),
          sample(
              "openai POST /v1/moderations",
              openai("POST", "/v1/moderations", "{\"input\":\"Hello\"}")),
          sample(
              "openai DELETE /v1/models/{model}",
              openai("DELETE", "/v1/models/ft:gpt-4o-mini:acme::abc123", null)),
          sample("openai POST /v1/files", upload("openai", OPENAI_UPLOAD, "POST", "/v1/files")),
          sample("openai DELETE /v1/files/{id}", openai("DELETE", "/v1/files/file-abc123", null)),
          sample(
              "openai POST /v1/uploads",
              openai(
                  "POST",
                  "/v1/uploads",
                  "{\"purpose\":\"batch\",\"filename\":\"b.jsonl\",\"bytes\":41943040,\"mime_type\":\"text/jsonl\"}")),
          sample(
              "openai POST /v1/uploads/{id}/parts",
              upload("openai", OPENAI_UPLOAD, "POST", "/v1/uploads/upload_abc123/parts")),
          sample(
              "openai POST /v1/uploads/{id}/complete",
              openai(
                  "POST", "/v1/uploads/upload_abc123/complete", "{\"part_ids\":[\"part_abc\"]}")),
          sample(
              "openai POST /v1/uploads/{id}/cancel",
              openai("POST", "/v1/uploads/upload_abc123/cancel", null)),
          sample(
              "openai POST /v1/batches/{id}/cancel",
              openai("POST", "/v1/batches/batch_abc123/cancel", null)),
          sample(
              "openai POST /v1/batches/**",
              openai(
                  "POST",
                  "/v1/batches",
                  "{\"input_file_id\":\"file-abc\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}")),
          sample(
              "openai POST /v1/fine_tuning/jobs/{id}/cancel",
              openai("POST", "/v1/fine_tuning/jobs/ftjob-abc123/cancel", null)),
          sample(
              "openai POST /v1/fine_tuning/**",
              openai(
                  "POST",
                  "/v1/fine_tuning/jobs",
                  "{\"model\":\"gpt-4o-mini-2024-07-18\",\"training_file\":\"file-abc\"}")),
          sample(
              "openai POST /v1/images/**",
              openai(
                  "POST",
                  "/v1/images/generations",
                  "{\"model\":\"gpt-image-1\",\"prompt\":\"a cat\"}")),
          sample(
              "openai POST /v1/audio/**",
              openai(
                  "POST",
                  "/v1/audio/speech",
                  "{\"model\":\"tts-1\",\"input\":\"Hello\",\"voice\":\"alloy\"}")),
          sample(
              "openai * /v1/realtime/**",
              openai(
                  "POST",
                  "/v1/realtime/client_secrets",
                  "{\"session\":{\"type\":\"realtime\",\"model\":\"gpt-realtime\"}}")),
          sample(
              "openai POST /v1/vector_stores/**",
              openai("POST", "/v1/vector_stores", "{\"name\":\"docs\"}")),
          sample(
              "openai POST /v1/assistants/**",
              openai("POST", "/v1/assistants", "{\"model\":\"gpt-4o\"}")),
          sample(
              "openai POST /v1/threads/**",
              openai("POST", "/v1/threads/thread_abc/runs", "{\"assistant_id\":\"asst_abc\"}")),
          sample(
              "openai POST /v1/videos/**",
              openai("POST", "/v1/videos", "{\"model\":\"sora-2\",\"prompt\":\"a cat\"}")),
          sample(
              "anthropic POST /v1/messages", anthropic("POST", "/v1/messages", ANTHROPIC_MESSAGE)),
          sample(
              "anthropic POST /v1/messages/count_tokens",
              anthropic("POST", "/v1/messages/count_tokens", ANTHROPIC_MESSAGE)),
          sample(
              "anthropic POST /v1/messages/batches/{id}/cancel",
              anthropic("POST", "/v1/messages/batches/msgbatch_abc/cancel", null)),
          sample(
              "anthropic DELETE /v1/messages/batches/{id}",
              anthropic("DELETE", "/v1/messages/batches/msgbatch_abc", null)),
          sample(
              "anthropic POST /v1/messages/batches/**",
              anthropic(
                  "POST",
                  "/v1/messages/batches",
                  "{\"requests\":[{\"custom_id\":\"a\",\"params\":" + ANTHROPIC_MESSAGE + "}]}")),
          sample(
              "anthropic POST /v1/files",
              upload("anthropic", ANTHROPIC_UPLOAD, "POST", "/v1/files")),
          sample(
              "anthropic DELETE /v1/files/{id}",
              anthropic("DELETE", "/v1/files/file_abc123", null)),
          sample(
              "anthropic POST /v1/complete",
              anthropic(
                  "POST",
                  "/v1/complete",
                  "{\"model\":\"claude-2.1\",\"max_tokens_to_sample\":64,\"prompt\":\"\\n\\nHuman: Hi\\n\\nAssistant:\"}")),
          sample(
              "gemini POST /v1beta/models/{model}:generateContent",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1beta/models/gemini-2.5-flash:generateContent",
                  GEMINI_CONTENT)),
          sample(
              "gemini POST /v1beta/models/{model}:streamGenerateContent",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                  GEMINI_CONTENT)),
          sample(
              "gemini POST /v1beta/tunedModels/{model}:generateContent",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1beta/tunedModels/my-model-abc:generateContent",
                  GEMINI_CONTENT)),
          sample(
              "gemini POST /v1beta/tunedModels/{model}:streamGenerateContent",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1beta/tunedModels/my-model-abc:streamGenerateContent?alt=sse",
                  GEMINI_CONTENT)),
          sample(
              "gemini POST /v1beta/models/{model}:countTokens",
              gemini(GENAI_SDK, "POST", "/v1/models/gemini-2.5-flash:countTokens", GEMINI_CONTENT)),
          sample(
              "gemini POST /v1beta/models/{model}:embedContent",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1beta/models/text-embedding-004:embedContent",
                  "{\"content\":{\"parts\":[{\"text\":\"Hello\"}]}}")),
          sample(
              "gemini POST /v1beta/models/{model}:batchEmbedContents",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1/models/text-embedding-004:batchEmbedContents",
                  "{\"requests\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"}]}}]}")),
          sample(
              "gemini POST /v1beta/models/{model}:batchGenerateContent",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
                  "{\"batch\":{\"display_name\":\"b\"}}")),
          sample(
              "gemini POST /v1beta/models/{model}:predict",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1beta/models/imagen-4.0-generate-001:predict",
                  "{\"instances\":[{\"prompt\":\"a cat\"}]}")),
          sample(
              "gemini POST /v1beta/models/{model}:predictLongRunning",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1beta/models/veo-3.0-generate-001:predictLongRunning",
                  "{\"instances\":[{\"prompt\":\"a cat\"}]}")),
          sample(
              "gemini POST /v1beta/cachedContents/**",
              gemini(
                  GENAI_SDK,
                  "POST",
                  "/v1beta/cachedContents",
                  "{\"model\":\"models/gemini-2.5-flash\",\"contents\":[],\"ttl\":\"3600s\"}")),
          sample(
              "gemini DELETE /v1beta/cachedContents/{id}",
              gemini(GENAI_SDK, "DELETE", "/v1beta/cachedContents/abc123", null)),
          sample(
              "gemini DELETE /v1beta/files/{id}",
              gemini(GENAI_SDK, "DELETE", "/v1beta/files/abc123", null)),
          sample(
              "gemini POST /upload/v1beta/files",
              gemini(
                  GEMINI_UPLOAD,
                  "POST",
                  "/upload/v1beta/files",
                  "{\"file\":{\"display_name\":\"report.pdf\"}}")),
          // Google's OpenAI-compatible surface follows OpenAI's rows.
          sample(
              "openai POST /v1/chat/completions",
              new SdkRequest(
                  "gemini",
                  "OpenAI SDK on Gemini",
                  "POST",
                  "/v1beta/openai/chat/completions",
                  OPENAI_SDK,
                  OPENAI_CHAT,
                  false)),
          sample("any GET *", openai("GET", "/v1/batches/batch_abc123", null)),
          sample("any * *", openai("POST", "/v1/containers", "{\"name\":\"c\"}")));

  private static EndpointSample sample(String row, SdkRequest sdk) {
    return new EndpointSample(row, sdk);
  }

  static Stream<EndpointSample> endpointSamples() {
    return ENDPOINT_SAMPLES.stream();
  }

  private static String rowName(Endpoints.Row row) {
    return (row.provider() == null ? "any" : row.provider().wireName()) + " " + row.endpoint();
  }

  @Test
  void everyRowOfTheEndpointsTable_hasAReplay() {
    Set<String> sampled =
        ENDPOINT_SAMPLES.stream().map(EndpointSample::row).collect(Collectors.toSet());
    assertThat(sampled)
        .as(
            "README 'Endpoints' rows with an SDK request in ENDPOINT_SAMPLES (add one for a new row)")
        .containsExactlyInAnyOrderElementsOf(
            Endpoints.rows().stream().map(EnvoyReplayIT::rowName).toList());
  }

  /**
   * The row's request through the shipped envoy.yaml: the route it lands on, Check's answer for a
   * key with a quota (refused exactly on not-metered rows, with the 403 naming the row) and for an
   * unlimited key (always let through), and ext_proc's reading of the same request (metered exactly
   * on metered rows; the body buffered exactly where it may carry tokens).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("endpointSamples")
  void endpointRow_limitedKeyRefusedExactlyWhereNotMetered_unlimitedKeyPasses(EndpointSample s)
      throws Exception {
    Replay r = route(s.sdk());
    assertThat(r.provider())
        .as("%s lands on %s", s, r.route().getName())
        .isEqualTo(s.sdk().provider());
    String method = s.sdk().method();
    String path = s.sdk().pathAndQuery();
    // Check's classification (the route's provider) and metering's (the path's) are the same row.
    Endpoints.Row byCheck = Endpoints.classify(Provider.named(r.provider()), method, path);
    Provider byPath =
        ProviderClassifier.classify(null, path, s.sdk().headers().containsKey("anthropic-version"));
    Endpoints.Row byMetering = Endpoints.classify(byPath, method, path);
    assertThat(rowName(byCheck)).as("%s: Check's row", s).isEqualTo(s.row());
    assertThat(byMetering).as("%s: metering's row", s).isSameAs(byCheck);
    assertThat(
            ProviderRoute.of(method, path, s.sdk().headers().containsKey("anthropic-version"))
                .isPresent())
        .as("%s: ext_proc meters it exactly when the table says metered", s)
        .isEqualTo(byCheck.kind() == Endpoints.Kind.METERED);

    EnvoyAnswer limited = replay(envoyCheck(r, KEYS.get(KeyKind.LIMITED).getSecret()).request());
    if (byCheck.refusesLimitedKeys()) {
      JsonNode body = assertDenial(r, limited, Decision.NOT_METERED);
      // Every provider's shape has error.message (Anthropic's and Google's end in the code).
      String message = body.at("/error/message").asText();
      assertThat(message)
          .as("%s: the 403 names the endpoint", s)
          .startsWith(
              "This gateway cannot meter "
                  + byCheck.what()
                  + ", so keys with a quota cannot use it.");
    } else {
      assertThat(limited.forwarded())
          .as("%s with a limited key: body %s", s, limited.body())
          .isTrue();
    }
    EnvoyAnswer unlimited =
        replay(envoyCheck(r, KEYS.get(KeyKind.UNLIMITED).getSecret()).request());
    assertThat(unlimited.forwarded())
        .as("%s with an unlimited key: body %s", s, unlimited.body())
        .isTrue();
    forward(
        r, envoyCheck(r, KEYS.get(KeyKind.UNLIMITED).getSecret()).headers(), unlimited.response());

    // Bodies are buffered for metering where they may carry tokens, and only there: upload routes
    // stream theirs.
    boolean uploadRoute = effectiveProcessingMode(r).getRequestBodyMode() == BodySendMode.NONE;
    if (byCheck.kind() == Endpoints.Kind.METERED) {
      assertThat(uploadRoute).as("%s: a metered endpoint's body reaches ext_proc", s).isFalse();
    }
    if (byCheck.what().contains("body not buffered")) {
      assertThat(uploadRoute)
          .as("%s: an upload is not buffered (route %s)", s, r.route().getName())
          .isTrue();
    }
  }

  @Test
  void endpointRefusal_isCountedAsNotMetered_onlyForTheLimitedKey() {
    Replay r =
        route(
            ENDPOINT_SAMPLES.stream()
                .filter(x -> x.row().equals("openai POST /v1/batches/**"))
                .findFirst()
                .orElseThrow()
                .sdk());
    var registry = server.app().operations().registry();
    Supplier<Double> notMetered =
        () -> registry.find(Metrics.CHECK_DECISIONS).tag("result", "not_metered").counter().count();
    Supplier<Double> allowed =
        () -> registry.find(Metrics.CHECK_DECISIONS).tag("result", "allow").counter().count();
    double refusedBefore = notMetered.get();
    double allowedBefore = allowed.get();

    assertThat(replay(envoyCheck(r, KEYS.get(KeyKind.LIMITED).getSecret()).request()).forwarded())
        .isFalse();
    assertThat(replay(envoyCheck(r, KEYS.get(KeyKind.UNLIMITED).getSecret()).request()).forwarded())
        .isTrue();

    assertThat(notMetered.get() - refusedBefore).isEqualTo(1.0);
    assertThat(allowed.get() - allowedBefore).isEqualTo(1.0);
  }

  /**
   * Every upload route (the rows the table marks "body not buffered") takes a 40 MiB body: the
   * listener's buffer limit is below it, so under ext_proc's BUFFERED mode it would be Envoy's 413;
   * on these routes no filter buffers the body, and the real ext_proc server answers the headers
   * without asking for it. ext_authz (a Check), the provider's key and the header strips still
   * apply.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("uploadSamples")
  void uploadOf40MiB_streamsPastExtProc_unbuffered(EndpointSample s) throws Exception {
    long size = 40L * 1024 * 1024;
    assertThat((long) LISTENER.getPerConnectionBufferLimitBytes().getValue())
        .as("the limit BUFFERED bodies hit (so this test means something)")
        .isLessThan(size);
    SdkRequest big =
        new SdkRequest(
            s.sdk().provider(),
            s.sdk().client(),
            s.sdk().method(),
            s.sdk().pathAndQuery(),
            s.sdk().headers(),
            null,
            s.sdk().keyInQuery());
    Replay r = route(big);

    ProcessingMode mode = effectiveProcessingMode(r);
    assertThat(mode.getRequestBodyMode()).as("%s: request body", r).isEqualTo(BodySendMode.NONE);
    assertThat(mode.getResponseBodyMode()).as("%s: response body", r).isEqualTo(BodySendMode.NONE);
    assertThat(mode.getRequestHeaderMode())
        .as("%s: ext_proc still sees the headers", r)
        .isEqualTo(HeaderSendMode.SEND);
    assertThat(bodySettings(r)).as("%s: ext_authz does not buffer the body either", r).isNull();
    assertThat(r.route().getRoute().getRequestMirrorPoliciesCount())
        .as("%s: no mirror buffers it", r)
        .isZero();
    assertThat(r.route().hasPerRequestBufferLimitBytes())
        .as("%s: no lower per-route limit", r)
        .isFalse();

    Headers seen =
        extProcHeaders(
            r,
            KEYS.get(KeyKind.LIMITED).getSecret(),
            Map.of("content-length", Long.toString(size)));
    try (ExtProcStream ext = new ExtProcStream()) {
      ProcessingResponse headers = ext.requestHeaders(seen, false);
      assertThat(headers.getResponseCase())
          .as("%s: a headers answer", r)
          .isEqualTo(ProcessingResponse.ResponseCase.REQUEST_HEADERS);
      assertThat(headers.hasImmediateResponse()).isFalse();
      assertThat(headers.getRequestHeaders().getResponse().getStatus())
          .as("%s: CONTINUE", r)
          .isEqualTo(CommonResponse.ResponseStatus.CONTINUE);
      // The processor never asks for the body back (and could not: allow_mode_override is off).
      assertThat(headers.getModeOverride().getRequestBodyMode()).isEqualTo(BodySendMode.NONE);
      assertThat(PROC.getAllowModeOverride()).isFalse();
    }
  }

  static Stream<EndpointSample> uploadSamples() {
    return ENDPOINT_SAMPLES.stream()
        .filter(
            s ->
                s.row().endsWith("/v1/files")
                    || s.row().endsWith("/parts")
                    || s.row().contains("/upload/"));
  }

  /**
   * A background response for a key with a quota is refused in the request body phase (its usage
   * would come on a later, unmetered GET); the same request for an unlimited key, or without
   * "background", goes on.
   */
  @Test
  void backgroundResponse_limitedKeyRefusedByExtProc_unlimitedKeyPasses() throws Exception {
    String body =
        "{\"model\":\"gpt-4o-mini\",\"input\":\"Write a long essay\",\"background\":true}";
    Replay r = route(openai("POST", "/v1/responses", body));
    assertThat(effectiveProcessingMode(r).getRequestBodyMode()).isEqualTo(BodySendMode.BUFFERED);
    Map<String, String> length = Map.of("content-length", Integer.toString(body.length()));

    try (ExtProcStream ext = new ExtProcStream()) {
      ext.requestHeaders(extProcHeaders(r, KEYS.get(KeyKind.LIMITED).getSecret(), length), false);
      ProcessingResponse refused = ext.requestBody(body);
      assertThat(refused.hasImmediateResponse()).as("refused before the provider").isTrue();
      var immediate = refused.getImmediateResponse();
      assertThat(immediate.getStatus().getCodeValue()).isEqualTo(403);
      JsonNode error = JSON.readTree(immediate.getBody().toStringUtf8()).get("error");
      assertThat(error.get("code").asText()).isEqualTo("endpoint_not_metered");
      assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
      assertThat(error.get("message").asText()).contains("background responses");
      assertThat(immediate.getDetails()).isEqualTo("endpoint_not_metered");
    }
    try (ExtProcStream ext = new ExtProcStream()) {
      ext.requestHeaders(extProcHeaders(r, KEYS.get(KeyKind.UNLIMITED).getSecret(), length), false);
      assertThat(ext.requestBody(body).hasImmediateResponse()).as("unlimited keys pass").isFalse();
    }
    String foreground = body.replace("true", "false");
    try (ExtProcStream ext = new ExtProcStream()) {
      ext.requestHeaders(extProcHeaders(r, KEYS.get(KeyKind.LIMITED).getSecret(), length), false);
      assertThat(ext.requestBody(foreground).hasImmediateResponse())
          .as("\"background\": false passes")
          .isFalse();
    }
  }

  // ------------------------------------------------------------------ small helpers

  /** An Envoy request header map: ordered, lowercase names, names may repeat. */
  static final class Headers {
    final List<String[]> entries = new ArrayList<>();

    Headers copy() {
      Headers c = new Headers();
      entries.forEach(e -> c.entries.add(e.clone()));
      return c;
    }

    void add(String name, String value) {
      entries.add(new String[] {name.toLowerCase(Locale.ROOT), value});
    }

    /** Envoy's setCopy: the first entry of that name takes the value, the others go. */
    void set(String name, String value) {
      remove(name);
      add(name, value);
    }

    void remove(String name) {
      entries.removeIf(e -> e[0].equals(name.toLowerCase(Locale.ROOT)));
    }

    String get(String name) {
      return entries.stream()
          .filter(e -> e[0].equals(name))
          .map(e -> e[1])
          .findFirst()
          .orElse(null);
    }

    List<String> getAll(String name) {
      return entries.stream().filter(e -> e[0].equals(name)).map(e -> e[1]).toList();
    }

    @Override
    public String toString() {
      return entries.stream().map(e -> e[0] + ": " + e[1]).collect(Collectors.joining("\n"));
    }
  }

  private static boolean anyMatches(ListStringMatcher list, String value) {
    return list.getPatternsList().stream().anyMatch(m -> matches(m, value));
  }

  private static boolean matches(StringMatcher m, String value) {
    String v = m.getIgnoreCase() ? value.toLowerCase(Locale.ROOT) : value;
    UnaryOperator<String> c = s -> m.getIgnoreCase() ? s.toLowerCase(Locale.ROOT) : s;
    return switch (m.getMatchPatternCase()) {
      case EXACT -> v.equals(c.apply(m.getExact()));
      case PREFIX -> v.startsWith(c.apply(m.getPrefix()));
      case SUFFIX -> v.endsWith(c.apply(m.getSuffix()));
      case CONTAINS -> v.contains(c.apply(m.getContains()));
      case SAFE_REGEX -> Pattern.compile(m.getSafeRegex().getRegex()).matcher(value).matches();
      default -> fail("string matcher " + m.getMatchPatternCase() + " is not modelled");
    };
  }

  private static Set<String> setFields(Message m) {
    return m.getAllFields().keySet().stream()
        .map(FieldDescriptor::getName)
        .collect(Collectors.toCollection(LinkedHashSet::new));
  }

  private static List<String> fieldNames(JsonNode node) {
    List<String> names = new ArrayList<>();
    node.fieldNames().forEachRemaining(names::add);
    return names;
  }

  private static Address address(String ip, int port) {
    return Address.newBuilder()
        .setSocketAddress(SocketAddress.newBuilder().setAddress(ip).setPortValue(port))
        .build();
  }

  private static Map<String, String> ordered(String... kv) {
    Map<String, String> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put(kv[i], kv[i + 1]);
    }
    return m;
  }
}
