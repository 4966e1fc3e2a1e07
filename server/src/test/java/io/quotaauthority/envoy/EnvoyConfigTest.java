package io.quotaauthority.envoy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors;
import com.google.protobuf.Duration;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.Durations;
import com.google.protobuf.util.JsonFormat;
import com.google.protobuf.util.JsonFormat.TypeRegistry;
import io.envoyproxy.envoy.config.accesslog.v3.AccessLogFilter;
import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.config.cluster.v3.CircuitBreakers;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.ApiVersion;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.config.core.v3.HealthCheck;
import io.envoyproxy.envoy.config.core.v3.RoutingPriority;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.rbac.v3.Policy;
import io.envoyproxy.envoy.config.route.v3.FilterConfig;
import io.envoyproxy.envoy.config.route.v3.HeaderMatcher;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter;
import io.envoyproxy.envoy.extensions.access_loggers.stream.v3.StdoutAccessLog;
import io.envoyproxy.envoy.extensions.filters.http.credential_injector.v3.CredentialInjector;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode;
import io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBAC;
import io.envoyproxy.envoy.extensions.filters.http.router.v3.Router;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.LocalReplyConfig;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.ResponseMapper;
import io.envoyproxy.envoy.extensions.http.injected_credentials.generic.v3.Generic;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.envoyproxy.envoy.type.v3.StatusCode;
import io.quotaauthority.config.Setting;
import io.quotaauthority.provider.GatewayHeaders;
import io.quotaauthority.provider.ProviderError;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Parses envoy/envoy.yaml into Envoy's own Bootstrap proto (field names checked, every typed_config
 * resolved, unknown fields rejected) and checks the properties the quota design relies on.
 */
class EnvoyConfigTest {
  static final String ENVOY_YAML = "envoy/envoy.yaml";
  static final String AUTHORITY_CLUSTER = "quota_authority";
  static final String METERING_CLUSTER = "quota_authority_metering";

  /** What envoy.yaml sends as the metering token; envoy/entrypoint.sh replaces it at start. */
  static final String METERING_TOKEN_PLACEHOLDER = "REPLACE-WITH-QUOTA-METERING-TOKEN";

  /** Every typed_config type the file uses; a type missing here makes the parse fail. */
  static final TypeRegistry REGISTRY =
      TypeRegistry.newBuilder()
          .add(HttpConnectionManager.getDescriptor())
          .add(StdoutAccessLog.getDescriptor())
          .add(ExtAuthz.getDescriptor())
          .add(ExtAuthzPerRoute.getDescriptor())
          .add(ExternalProcessor.getDescriptor())
          // With RBACPerRoute (the same .proto file: add() registers a file's every type).
          .add(RBAC.getDescriptor())
          .add(ExpressionFilter.getDescriptor())
          .add(CredentialInjector.getDescriptor())
          .add(Generic.getDescriptor())
          .add(Router.getDescriptor())
          .add(FilterConfig.getDescriptor())
          .add(HttpProtocolOptions.getDescriptor())
          .add(UpstreamTlsContext.getDescriptor())
          .add(Secret.getDescriptor())
          .build();

  static final Map<String, String> PROVIDER_HOST =
      Map.of(
          "openai", "api.openai.com",
          "anthropic", "api.anthropic.com",
          "gemini", "generativelanguage.googleapis.com");

  /** The header each provider reads its key from. */
  static final Map<String, String> PROVIDER_KEY_HEADER =
      Map.of("openai", "authorization", "anthropic", "x-api-key", "gemini", "x-goog-api-key");

  static Bootstrap bootstrap;

  @BeforeAll
  static void parseOnce() throws Exception {
    bootstrap = parse(RepoFiles.read(ENVOY_YAML));
  }

  static Bootstrap parse(String yaml) throws InvalidProtocolBufferException {
    String json = RepoFiles.yaml(yaml).toString();
    Bootstrap.Builder builder = Bootstrap.newBuilder();
    JsonFormat.parser().usingTypeRegistry(REGISTRY).merge(json, builder);
    return builder.build();
  }

  static <T extends Message> T unpack(Any any, Class<T> type) {
    try {
      return any.unpack(type);
    } catch (InvalidProtocolBufferException e) {
      throw new AssertionError(
          "typed_config " + any.getTypeUrl() + " is not a " + type.getName(), e);
    }
  }

  static Listener listener() {
    assertThat(bootstrap.getStaticResources().getListenersList()).hasSize(1);
    return bootstrap.getStaticResources().getListeners(0);
  }

  static HttpConnectionManager hcm() {
    Listener listener = listener();
    assertThat(listener.getFilterChainsList()).hasSize(1);
    assertThat(listener.getFilterChains(0).getFiltersList()).hasSize(1);
    return unpack(
        listener.getFilterChains(0).getFilters(0).getTypedConfig(), HttpConnectionManager.class);
  }

  static List<HttpFilter> httpFilters() {
    return hcm().getHttpFiltersList();
  }

  static boolean isA(HttpFilter filter, Class<? extends Message> type) {
    return filter.getTypedConfig().is(type);
  }

  static int indexOf(Class<? extends Message> type) {
    List<HttpFilter> filters = httpFilters();
    for (int i = 0; i < filters.size(); i++) {
      if (isA(filters.get(i), type)) {
        return i;
      }
    }
    return fail("no http filter of type " + type.getSimpleName());
  }

  static HttpFilter only(Class<? extends Message> type) {
    List<HttpFilter> found = httpFilters().stream().filter(f -> isA(f, type)).toList();
    assertThat(found).as("http filters of type %s", type.getSimpleName()).hasSize(1);
    return found.get(0);
  }

  static List<HttpFilter> injectors() {
    return httpFilters().stream().filter(f -> isA(f, CredentialInjector.class)).toList();
  }

  static Generic generic(HttpFilter injector) {
    CredentialInjector config = unpack(injector.getTypedConfig(), CredentialInjector.class);
    assertThat(config.getCredential().getTypedConfig().is(Generic.class))
        .as("%s uses the generic credential", injector.getName())
        .isTrue();
    return unpack(config.getCredential().getTypedConfig(), Generic.class);
  }

  /** The provider whose key an injector sends, told by the header it writes. */
  static String providerOfInjector(HttpFilter injector) {
    String header = generic(injector).getHeader().toLowerCase();
    return PROVIDER_KEY_HEADER.entrySet().stream()
        .filter(e -> e.getValue().equals(header))
        .map(Map.Entry::getKey)
        .findFirst()
        .orElseGet(() -> fail(injector.getName() + " writes unexpected header " + header));
  }

  static List<Route> routes() {
    return hcm().getRouteConfig().getVirtualHostsList().stream()
        .flatMap(vh -> vh.getRoutesList().stream())
        .toList();
  }

  static Cluster cluster(String name) {
    return bootstrap.getStaticResources().getClustersList().stream()
        .filter(c -> c.getName().equals(name))
        .findFirst()
        .orElseGet(() -> fail("no cluster " + name));
  }

  static SocketAddress onlyAddress(Cluster cluster) {
    var endpoints = cluster.getLoadAssignment().getEndpointsList();
    assertThat(endpoints).as("%s locality endpoints", cluster.getName()).hasSize(1);
    assertThat(endpoints.get(0).getLbEndpointsList())
        .as("%s endpoints", cluster.getName())
        .hasSize(1);
    return endpoints.get(0).getLbEndpoints(0).getEndpoint().getAddress().getSocketAddress();
  }

  static List<Cluster> providerClusters() {
    return bootstrap.getStaticResources().getClustersList().stream()
        .filter(
            c -> !c.getName().equals(AUTHORITY_CLUSTER) && !c.getName().equals(METERING_CLUSTER))
        .toList();
  }

  static String providerOfCluster(String clusterName) {
    String host = onlyAddress(cluster(clusterName)).getAddress();
    return PROVIDER_HOST.entrySet().stream()
        .filter(e -> e.getValue().equals(host))
        .map(Map.Entry::getKey)
        .findFirst()
        .orElseGet(() -> fail("cluster " + clusterName + " points at unknown host " + host));
  }

  /** What the route's match says its provider must be (independent of where it sends it). */
  static String expectedProvider(Route route) {
    RouteMatch match = route.getMatch();
    boolean anthropicVersionHeader =
        match.getHeadersList().stream()
            .anyMatch(
                h -> h.getName().equalsIgnoreCase("anthropic-version") && h.getPresentMatch());
    String path =
        switch (match.getPathSpecifierCase()) {
          case PREFIX -> match.getPrefix();
          case PATH -> match.getPath();
          case PATH_SEPARATED_PREFIX -> match.getPathSeparatedPrefix();
          case SAFE_REGEX -> {
            // A regex route is Gemini's stable API or OpenAI's upload parts, and not both.
            Pattern regex = Pattern.compile(match.getSafeRegex().getRegex());
            boolean gemini = regex.matcher("/v1/models/gemini-2.0-flash:generateContent").matches();
            boolean parts = regex.matcher("/v1/uploads/upload_abc123/parts").matches();
            assertThat(gemini ^ parts)
                .as(
                    "%s: a regex route is for Gemini's stable API or OpenAI's upload parts",
                    route.getName())
                .isTrue();
            yield gemini ? "/v1/models/{model}:{method}" : "/v1/uploads/{id}/parts";
          }
          default -> fail(route.getName() + ": unexpected match " + match.getPathSpecifierCase());
        };
    if (anthropicVersionHeader || path.startsWith("/v1/messages")) {
      return "anthropic";
    }
    if (path.startsWith("/v1beta/")
        || path.startsWith("/upload/v1beta/")
        || path.equals("/v1/models/{model}:{method}")) {
      return "gemini";
    }
    if (path.startsWith("/v1/")) {
      return "openai";
    }
    return fail(route.getName() + ": no provider serves " + path);
  }

  static String contextProvider(Route route) {
    Any perRoute = route.getTypedPerFilterConfigMap().get(only(ExtAuthz.class).getName());
    assertThat(perRoute)
        .as("route %s has an ext_authz per-route config", route.getName())
        .isNotNull();
    ExtAuthzPerRoute config = unpack(perRoute, ExtAuthzPerRoute.class);
    assertThat(config.hasCheckSettings()).as("%s check_settings", route.getName()).isTrue();
    return config.getCheckSettings().getContextExtensionsMap().get("provider");
  }

  static void assertNotUnder60s(String what, boolean set, Duration duration) {
    if (set) {
      long ms = Durations.toMillis(duration);
      assertThat(ms == 0 || ms >= 60_000)
          .as("%s = %d ms: 0 (none) or at least 60 s", what, ms)
          .isTrue();
    }
  }

  @Test
  void bootstrap_namesItsNode_becauseSdsSecretsRequireIt() {
    // Envoy fails at start ("GenericSecretSdsApi: node 'id' and 'cluster' are required") otherwise.
    assertThat(bootstrap.getNode().getId()).isNotBlank();
    assertThat(bootstrap.getNode().getCluster()).isNotBlank();
  }

  @Test
  void listener_acceptsOnPort10000WithRoomForLargePrompts() {
    assertThat(listener().getAddress().getSocketAddress().getPortValue()).isEqualTo(10000);
    assertThat(listener().getPerConnectionBufferLimitBytes().getValue())
        .as("ext_proc BUFFERED needs more than the 1 MiB default for prompts with images")
        .isGreaterThan(1 << 20);
  }

  @Test
  void httpFilters_runExtAuthzThenExtProcThenFailClosedRbacThenCredentialsThenRouter() {
    List<HttpFilter> filters = httpFilters();
    int authz = indexOf(ExtAuthz.class);
    int proc = indexOf(ExternalProcessor.class);
    int rbac = indexOf(RBAC.class);
    int router = indexOf(Router.class);
    assertThat(authz).isZero();
    assertThat(proc).isGreaterThan(authz).isLessThan(router);
    // Right after ext_proc: no filter in between may add or drop the admission mark.
    assertThat(rbac).as("the fail-closed stage follows ext_proc").isEqualTo(proc + 1);
    assertThat(router).isEqualTo(filters.size() - 1);
    assertThat(injectors()).hasSize(3);
    for (HttpFilter injector : injectors()) {
      assertThat(filters.indexOf(injector))
          .as(
              "%s runs after ext_proc (which must never see provider keys) and the fail-closed"
                  + " stage (a refused request gets no key), and before the router",
              injector.getName())
          .isGreaterThan(rbac)
          .isLessThan(router);
    }
    assertThat(filters.stream().map(HttpFilter::getName).distinct().count())
        .as("filter names are unique (routes address filters by name)")
        .isEqualTo(filters.size());
  }

  /** The fail-closed stage's one policy, the deny rule for unadmitted requests of limited keys. */
  static final String FAIL_CLOSED_POLICY = "limited-key-not-admitted";

  static RBAC failClosed() {
    return unpack(only(RBAC.class).getTypedConfig(), RBAC.class);
  }

  /** Request headers as the RBAC engine reads them, from name/value pairs (names may repeat). */
  static EnvoyRbac.RequestHeaders headers(String... nameValues) {
    return name -> {
      List<String> values = new ArrayList<>();
      for (int i = 0; i < nameValues.length; i += 2) {
        if (nameValues[i].equals(name)) {
          values.add(nameValues[i + 1]);
        }
      }
      return values;
    };
  }

  @Test
  void failClosedStage_isOneEnforcedDenyPolicyOnEveryRoute() {
    HttpFilter filter = only(RBAC.class);
    assertThat(filter.getDisabled()).as("on by default").isFalse();
    RBAC rbac = failClosed();
    assertThat(rbac.hasRules()).as("enforced rules").isTrue();
    assertThat(rbac.hasMatcher()).isFalse();
    assertThat(rbac.hasShadowRules() || rbac.hasShadowMatcher())
        .as("no shadow rules: shadow mode would only count, not refuse")
        .isFalse();
    assertThat(rbac.getRules().getAction())
        .isEqualTo(io.envoyproxy.envoy.config.rbac.v3.RBAC.Action.DENY);
    assertThat(rbac.getRules().getPoliciesMap()).containsOnlyKeys(FAIL_CLOSED_POLICY);
    Policy policy = rbac.getRules().getPoliciesMap().get(FAIL_CLOSED_POLICY);
    assertThat(policy.hasCondition() || policy.hasCheckedCondition())
        .as("header matchers only (no CEL condition)")
        .isFalse();
    // No route turns it off or replaces it (RBACPerRoute, at any level): every route's requests
    // pass through it.
    var config = hcm().getRouteConfig();
    assertThat(config.getTypedPerFilterConfigMap()).doesNotContainKey(filter.getName());
    for (var vhost : config.getVirtualHostsList()) {
      assertThat(vhost.getTypedPerFilterConfigMap()).doesNotContainKey(filter.getName());
      for (Route route : vhost.getRoutesList()) {
        assertThat(route.getTypedPerFilterConfigMap())
            .as("route %s configures the fail-closed stage", route.getName())
            .doesNotContainKey(filter.getName());
      }
    }
  }

  @ParameterizedTest(name = "limited={0} admitted={1} cap={3}: denied={2}")
  @CsvSource(
      nullValues = "ABSENT",
      value = {
        // A key with a quota, as Check marks it, is refused unless metering admitted it.
        "true, ABSENT, true, ABSENT",
        "true, 1, false, ABSENT",
        // An unlimited key needs no hold: it passes whatever metering did.
        "false, ABSENT, false, ABSENT",
        "false, 1, false, ABSENT",
        // ...unless it has a concurrency cap: its slot comes from metering as well.
        "false, ABSENT, true, 5",
        "false, 1, false, 5",
        "true, ABSENT, true, 5",
        // Anything but exactly "false" is a key with a quota (GatewayHeaders.limited), including
        // no header at all (an inverted exact matcher would have let that through).
        "ABSENT, ABSENT, true, ABSENT",
        "ABSENT, 1, false, ABSENT",
        "FALSE, ABSENT, true, ABSENT",
        "'', ABSENT, true, ABSENT",
        "'false,false', ABSENT, true, ABSENT",
      })
  void failClosedStage_deniesExactlyKeysWithAQuotaThatMeteringDidNotAdmit(
      String limited, String admitted, boolean denied, String cap) {
    List<String> pairs = new ArrayList<>();
    if (cap != null) {
      pairs.addAll(List.of(GatewayHeaders.KEY_CONCURRENCY, cap));
    }
    if (limited != null) {
      // Two values arrive as two headers; Envoy's matcher reads them joined with ",".
      for (String v :
          limited.equals("false,false") ? List.of("false", "false") : List.of(limited)) {
        pairs.addAll(List.of(GatewayHeaders.KEY_LIMITED, v));
      }
    }
    if (admitted != null) {
      pairs.addAll(List.of(GatewayHeaders.ADMITTED, admitted));
    }
    pairs.addAll(List.of(":path", "/v1/chat/completions", "x-quota-key-id", "42"));
    String policy =
        EnvoyRbac.denyingPolicy(failClosed().getRules(), headers(pairs.toArray(String[]::new)));
    assertThat(policy != null).as("denied").isEqualTo(denied);
    assertThat((GatewayHeaders.limited(limited) || cap != null) && admitted == null)
        .as("the rule metering's GatewayHeaders.limited and the cap state")
        .isEqualTo(denied);
    if (denied) {
      assertThat(policy).isEqualTo(FAIL_CLOSED_POLICY);
    }
  }

  @Test
  void everyRoute_showsExtProcTheRequestHeaders_soMeteringCanAdmitIt() {
    // The mark comes from ext_proc's answers: a route where ext_proc is off, or skips the request
    // headers, would refuse every request of a key with a quota.
    ExternalProcessor proc =
        unpack(only(ExternalProcessor.class).getTypedConfig(), ExternalProcessor.class);
    assertThat(proc.getProcessingMode().getRequestHeaderMode()).isEqualTo(HeaderSendMode.SEND);
    String name = only(ExternalProcessor.class).getName();
    var config = hcm().getRouteConfig();
    assertThat(config.getTypedPerFilterConfigMap()).doesNotContainKey(name);
    for (var vhost : config.getVirtualHostsList()) {
      assertThat(vhost.getTypedPerFilterConfigMap()).doesNotContainKey(name);
      for (Route route : vhost.getRoutesList()) {
        Any perRoute = route.getTypedPerFilterConfigMap().get(name);
        if (perRoute == null) {
          continue;
        }
        ExtProcPerRoute ext = unpack(perRoute, ExtProcPerRoute.class);
        assertThat(ext.getDisabled()).as("%s disables ext_proc", route.getName()).isFalse();
        if (ext.getOverrides().hasProcessingMode()) {
          assertThat(ext.getOverrides().getProcessingMode().getRequestHeaderMode())
              .as("%s: ext_proc is sent the request headers", route.getName())
              .isEqualTo(HeaderSendMode.SEND);
        }
      }
    }
  }

  @Test
  void localReply_turnsOnlyTheFailClosedDenialInto503WithTheAuthoritysBody() {
    LocalReplyConfig local = hcm().getLocalReplyConfig();
    assertThat(local.hasBodyFormat())
        .as("no body_format for all local replies: Check's and metering's bodies stay as sent")
        .isFalse();
    assertThat(local.getMappersList()).hasSize(1);
    ResponseMapper mapper = local.getMappers(0);

    // The filter is the RBAC denial of exactly that policy, by its response code details
    // (rbac_access_denied_matched_policy[<policy>],
    // source/extensions/filters/common/rbac/utility.cc).
    AccessLogFilter filter = mapper.getFilter();
    assertThat(filter.getFilterSpecifierCase())
        .isEqualTo(AccessLogFilter.FilterSpecifierCase.EXTENSION_FILTER);
    assertThat(filter.getExtensionFilter().getName())
        .isEqualTo("envoy.access_loggers.extension_filters.cel");
    ExpressionFilter cel =
        unpack(filter.getExtensionFilter().getTypedConfig(), ExpressionFilter.class);
    assertThat(cel.getExpression())
        .isEqualTo(
            "response.code_details == 'rbac_access_denied_matched_policy["
                + FAIL_CLOSED_POLICY
                + "]'");

    assertThat(mapper.getStatusCode().getValue()).isEqualTo(503);
    assertThat(mapper.getBody().getInlineString())
        .as("what the authority answers when it cannot hold a key's quota, plain shape")
        .isEqualTo(ProviderError.holdUnavailable().body(null));
    assertThat(mapper.getBodyFormatOverride().getTextFormatSource().getInlineString())
        .as("the body above, verbatim")
        .isEqualTo("%LOCAL_REPLY_BODY%");
    assertThat(mapper.getBodyFormatOverride().getContentType()).isEqualTo("application/json");
    assertThat(mapper.getHeadersToAddList())
        .singleElement()
        .satisfies(
            (HeaderValueOption h) -> {
              assertThat(h.getHeader().getKey()).isEqualTo("retry-after");
              assertThat(Integer.parseInt(h.getHeader().getValue())).isBetween(1, 10);
              assertThat(h.getAppendAction())
                  .isEqualTo(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD);
            });
  }

  @Test
  void extAuthz_failsClosedWith503Within250MsOnTheAuthorityCluster() {
    ExtAuthz authz = unpack(only(ExtAuthz.class).getTypedConfig(), ExtAuthz.class);
    assertThat(authz.getGrpcService().getEnvoyGrpc().getClusterName()).isEqualTo(AUTHORITY_CLUSTER);
    assertThat(authz.getTransportApiVersion()).isEqualTo(ApiVersion.V3);
    assertThat(authz.getFailureModeAllow()).isFalse();
    assertThat(authz.getStatusOnError().getCode()).isEqualTo(StatusCode.ServiceUnavailable);
    assertThat(authz.getStatusOnError().getCodeValue()).isEqualTo(503);
    assertThat(Durations.toMillis(authz.getGrpcService().getTimeout())).isEqualTo(250);
  }

  @Test
  void extProc_failsOpenBuffersTheRequestAndStreamsTheResponse() {
    ExternalProcessor proc =
        unpack(only(ExternalProcessor.class).getTypedConfig(), ExternalProcessor.class);
    assertThat(proc.getGrpcService().getEnvoyGrpc().getClusterName()).isEqualTo(METERING_CLUSTER);
    assertThat(proc.getGrpcService().hasTimeout())
        .as("a grpc_service timeout would be a deadline on the whole (minutes long) stream")
        .isFalse();
    assertThat(proc.getFailureModeAllow()).isTrue();
    assertThat(proc.getAllowModeOverride()).isFalse();
    assertThat(proc.hasMessageTimeout()).isTrue();
    assertThat(Durations.toMillis(proc.getMessageTimeout())).isBetween(200L, 5_000L);
    ProcessingMode mode = proc.getProcessingMode();
    assertThat(mode.getRequestHeaderMode()).isEqualTo(HeaderSendMode.SEND);
    assertThat(mode.getRequestBodyMode()).isEqualTo(BodySendMode.BUFFERED);
    assertThat(mode.getRequestTrailerMode()).isEqualTo(HeaderSendMode.SKIP);
    assertThat(mode.getResponseHeaderMode()).isEqualTo(HeaderSendMode.SEND);
    assertThat(mode.getResponseBodyMode()).isEqualTo(BodySendMode.STREAMED);
    assertThat(mode.getResponseTrailerMode()).isEqualTo(HeaderSendMode.SKIP);
  }

  @Test
  void extProc_sendsTheMeteringTokenPlaceholderAsBearerAuthorization() {
    ExternalProcessor proc =
        unpack(only(ExternalProcessor.class).getTypedConfig(), ExternalProcessor.class);
    assertThat(proc.getGrpcService().getInitialMetadataList())
        .singleElement()
        .satisfies(
            h -> {
              assertThat(h.getKey()).isEqualTo("authorization");
              // A placeholder, never a real token in git: the entrypoint fills it in at deploy
              // time.
              assertThat(h.getValue()).isEqualTo("Bearer " + METERING_TOKEN_PLACEHOLDER);
              assertThat(h.getRawValue().isEmpty())
                  .as("Envoy refuses value and raw_value together")
                  .isTrue();
            });
    ExtAuthz authz = unpack(only(ExtAuthz.class).getTypedConfig(), ExtAuthz.class);
    assertThat(authz.getGrpcService().getInitialMetadataList())
        .as("Check stays credential-free")
        .isEmpty();
  }

  @Test
  void meteringCluster_isTheAuthorityOnItsOwnPortOverHttp2WithHealthChecks() {
    Cluster metering = cluster(METERING_CLUSTER);
    Cluster authority = cluster(AUTHORITY_CLUSTER);
    assertThat(onlyAddress(metering).getAddress()).isEqualTo(onlyAddress(authority).getAddress());
    assertThat(onlyAddress(metering).getPortValue())
        .isEqualTo(Integer.parseInt(Setting.METERING_PORT.defaultValue()))
        .isNotEqualTo(onlyAddress(authority).getPortValue());
    Any protocol =
        metering
            .getTypedExtensionProtocolOptionsMap()
            .get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    assertThat(protocol).as("typed_extension_protocol_options").isNotNull();
    assertThat(
            unpack(protocol, HttpProtocolOptions.class)
                .getExplicitHttpConfig()
                .hasHttp2ProtocolOptions())
        .as("gRPC needs HTTP/2")
        .isTrue();
    assertThat(metering.getType()).isEqualTo(authority.getType());
    assertThat(metering.getHealthChecksList())
        .isNotEmpty()
        .allSatisfy(check -> assertThat(check.hasGrpcHealthCheck()).isTrue());
    CircuitBreakers.Thresholds thresholds =
        metering.getCircuitBreakers().getThresholdsList().stream()
            .filter(t -> t.getPriority() == RoutingPriority.DEFAULT)
            .findFirst()
            .orElseThrow();
    assertThat(thresholds.getMaxRequests().getValue())
        .as("one stream per in-flight LLM request")
        .isGreaterThan(1024);
  }

  @ParameterizedTest
  @CsvSource(
      nullValues = "ABSENT",
      value = {
        // An unlimited key with a model allow-list is admitted by metering only once its model is
        // on the list: without the mark (metering failed) it is refused like a limited key.
        "false, ABSENT, true",
        "false, 1, false",
        "true, ABSENT, true",
        "true, 1, false",
      })
  void failClosedStage_deniesAModelRestrictedKeyThatMeteringDidNotAdmit(
      String limited, String admitted, boolean denied) {
    List<String> pairs =
        new ArrayList<>(
            List.of(
                GatewayHeaders.KEY_MODELS,
                "gpt-4o-mini,claude-3-5-*",
                GatewayHeaders.KEY_LIMITED,
                limited));
    if (admitted != null) {
      pairs.addAll(List.of(GatewayHeaders.ADMITTED, admitted));
    }
    pairs.addAll(List.of(":path", "/v1/chat/completions", "x-quota-key-id", "42"));
    String policy =
        EnvoyRbac.denyingPolicy(failClosed().getRules(), headers(pairs.toArray(String[]::new)));
    assertThat(policy != null).as("denied").isEqualTo(denied);
  }

  @Test
  void connectionManager_clientAddressIsTheTcpPeer_notAClientsXForwardedFor() {
    HttpConnectionManager hcm = hcm();
    // Keys' IP lists match the downstream remote address Envoy hands Check: with
    // use_remote_address and no trusted hops, the connection's peer (README "Key policies").
    assertThat(hcm.getUseRemoteAddress().getValue()).isTrue();
    assertThat(hcm.getXffNumTrustedHops()).isZero();
    assertThat(hcm.getOriginalIpDetectionExtensionsList())
        .as("no other detection extension overrides the peer address")
        .isEmpty();
  }

  @Test
  void connectionManager_trustsNoClientAddressAsInternal() {
    HttpConnectionManager hcm = hcm();
    // Present and empty: no address is internal, so no client keeps its own x-request-id.
    assertThat(hcm.hasInternalAddressConfig()).isTrue();
    assertThat(hcm.getInternalAddressConfig().getCidrRangesList()).isEmpty();
    assertThat(hcm.getInternalAddressConfig().getUnixSockets()).isFalse();
    assertThat(hcm.getPreserveExternalRequestId()).isFalse();
    assertThat(hcm.getUseRemoteAddress().getValue()).isTrue();
  }

  /**
   * Headers that must never reach a provider: what Check and metering add for this side of Envoy
   * (key id, whether it has a quota, the admission mark), and the client's address.
   */
  static final List<String> STRIPPED_BEFORE_PROVIDERS =
      List.of(
          GatewayHeaders.KEY_ID,
          GatewayHeaders.KEY_LIMITED,
          GatewayHeaders.KEY_CONCURRENCY,
          GatewayHeaders.KEY_MODELS,
          GatewayHeaders.ADMITTED,
          GatewayHeaders.HOLD_ID,
          "x-forwarded-for",
          "x-envoy-external-address");

  @Test
  void providerRoutes_eachRemovesTheGatewayHeadersAndTheClientsAddress() {
    var config = hcm().getRouteConfig();
    assertThat(routes()).isNotEmpty();
    for (var vhost : config.getVirtualHostsList()) {
      for (Route route : vhost.getRoutesList()) {
        // The router applies all three levels as the request leaves (finalizeRequestHeaders).
        Set<String> removed = new HashSet<>();
        for (List<String> level :
            List.of(
                config.getRequestHeadersToRemoveList(),
                vhost.getRequestHeadersToRemoveList(),
                route.getRequestHeadersToRemoveList())) {
          level.forEach(name -> removed.add(name.toLowerCase(Locale.ROOT)));
        }
        assertThat(removed)
            .as("route %s removes", route.getName())
            .containsAll(STRIPPED_BEFORE_PROVIDERS);
        // Nothing is added back: no header, let alone one carrying %DOWNSTREAM_...% addresses.
        assertThat(
                config.getRequestHeadersToAddCount()
                    + vhost.getRequestHeadersToAddCount()
                    + route.getRequestHeadersToAddCount())
            .as("route %s adds request headers", route.getName())
            .isZero();
        assertThat(vhost.getIncludeRequestAttemptCount()).isFalse();
        assertThat(route.getRoute().getAppendXForwardedHost())
            .as("%s x-forwarded-host", route.getName())
            .isFalse();
      }
    }
  }

  @Test
  void router_addsNoEnvoyHeadersAndTheConnectionManagerNoVia() {
    Router router = unpack(only(Router.class).getTypedConfig(), Router.class);
    // x-envoy-expected-rq-timeout-ms and the other router-made x-envoy-* headers stay home.
    assertThat(router.getSuppressEnvoyHeaders()).isTrue();
    HttpConnectionManager hcm = hcm();
    assertThat(hcm.getVia()).isEmpty();
    assertThat(hcm.getEarlyHeaderMutationExtensionsCount()).isZero();
  }

  @Test
  void bootstrap_setsNoDeprecatedField() {
    List<String> deprecated = new ArrayList<>();
    collectDeprecated(bootstrap, "", deprecated);
    assertThat(deprecated).as("deprecated fields set in envoy.yaml").isEmpty();
  }

  /** Walks every set field, unpacking typed_config Anys, and records the deprecated ones. */
  private static void collectDeprecated(Message message, String path, List<String> out) {
    var type = message.getDescriptorForType();
    // Unpacked Anys are DynamicMessages, whose own nested Anys are not Any instances: go by name.
    if (type.getFullName().equals(Any.getDescriptor().getFullName())) {
      String url = (String) message.getField(type.findFieldByName("type_url"));
      var value = (ByteString) message.getField(type.findFieldByName("value"));
      if (url.isEmpty()) {
        return; // an empty Any (a route's FilterConfig `config: {}`): nothing in it
      }
      try {
        var descriptor = REGISTRY.find(url.substring(url.lastIndexOf('/') + 1));
        assertThat(descriptor).as("%s: typed_config %s in the registry", path, url).isNotNull();
        Message unpacked = DynamicMessage.parseFrom(descriptor, value);
        collectDeprecated(unpacked, path, out);
      } catch (InvalidProtocolBufferException e) {
        throw new AssertionError(path, e);
      }
      return;
    }
    for (var entry : message.getAllFields().entrySet()) {
      var field = entry.getKey();
      String at = path + "/" + field.getName();
      if (field.getOptions().getDeprecated()) {
        out.add(at);
      }
      if (field.getJavaType() != Descriptors.FieldDescriptor.JavaType.MESSAGE) {
        continue;
      }
      if (field.isRepeated()) {
        for (Object item : (List<?>) entry.getValue()) {
          collectDeprecated((Message) item, at, out);
        }
      } else {
        collectDeprecated((Message) entry.getValue(), at, out);
      }
    }
  }

  @Test
  void bootstrap_deprecatedFieldCheck_findsDnsRefreshRate() {
    // The walk above can fail: the field this file used to set is caught.
    Cluster withRate =
        cluster(AUTHORITY_CLUSTER).toBuilder().setDnsRefreshRate(Durations.fromSeconds(5)).build();
    List<String> deprecated = new ArrayList<>();
    collectDeprecated(
        bootstrap.toBuilder()
            .setStaticResources(bootstrap.getStaticResources().toBuilder().addClusters(withRate))
            .build(),
        "",
        deprecated);
    assertThat(deprecated).containsExactly("/static_resources/clusters/dns_refresh_rate");
  }

  @Test
  void authorityCluster_speaksHttp2WithGrpcHealthChecksAndRaisedCircuitBreakers() {
    Cluster authority = cluster(AUTHORITY_CLUSTER);
    Any protocol =
        authority
            .getTypedExtensionProtocolOptionsMap()
            .get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    assertThat(protocol).as("typed_extension_protocol_options").isNotNull();
    assertThat(
            unpack(protocol, HttpProtocolOptions.class)
                .getExplicitHttpConfig()
                .hasHttp2ProtocolOptions())
        .as("gRPC needs HTTP/2")
        .isTrue();
    assertThat(authority.getType())
        .isIn(Cluster.DiscoveryType.STRICT_DNS, Cluster.DiscoveryType.LOGICAL_DNS);

    assertThat(authority.getHealthChecksList()).isNotEmpty();
    for (HealthCheck check : authority.getHealthChecksList()) {
      assertThat(check.hasGrpcHealthCheck()).isTrue();
      assertThat(check.hasInterval()).isTrue();
      assertThat(check.hasTimeout()).isTrue();
      assertThat(check.getUnhealthyThreshold().getValue()).isPositive();
      assertThat(check.getHealthyThreshold().getValue()).isPositive();
    }

    List<CircuitBreakers.Thresholds> defaults =
        authority.getCircuitBreakers().getThresholdsList().stream()
            .filter(t -> t.getPriority() == RoutingPriority.DEFAULT)
            .toList();
    assertThat(defaults).as("DEFAULT priority thresholds").hasSize(1);
    CircuitBreakers.Thresholds thresholds = defaults.get(0);
    assertThat(thresholds.getMaxConnections().getValue()).isGreaterThan(1024);
    assertThat(thresholds.getMaxPendingRequests().getValue()).isGreaterThan(1024);
    assertThat(thresholds.getMaxRequests().getValue()).isGreaterThan(1024);
  }

  @Test
  void providerClusters_useVerifiedTlsWithSniEqualToTheirHost() {
    assertThat(providerClusters().stream().map(c -> providerOfCluster(c.getName())))
        .containsExactlyInAnyOrderElementsOf(PROVIDER_HOST.keySet());
    for (Cluster cluster : providerClusters()) {
      SocketAddress address = onlyAddress(cluster);
      assertThat(address.getPortValue()).as("%s port", cluster.getName()).isEqualTo(443);
      assertThat(cluster.getType())
          .isIn(Cluster.DiscoveryType.LOGICAL_DNS, Cluster.DiscoveryType.STRICT_DNS);
      assertThat(cluster.hasConnectTimeout()).isTrue();
      assertThat(cluster.getTransportSocket().getName()).isEqualTo("envoy.transport_sockets.tls");
      UpstreamTlsContext tls =
          unpack(cluster.getTransportSocket().getTypedConfig(), UpstreamTlsContext.class);
      assertThat(tls.getSni()).as("%s sni", cluster.getName()).isEqualTo(address.getAddress());
      var validation = tls.getCommonTlsContext().getValidationContext();
      assertThat(validation.hasTrustedCa())
          .as("%s verifies the certificate chain", cluster.getName())
          .isTrue();
      assertThat(validation.getMatchTypedSubjectAltNamesList())
          .as("%s verifies the certificate is for its host", cluster.getName())
          .extracting(SubjectAltNameMatcher::getMatcher)
          .extracting(m -> m.getExact())
          .containsExactly(address.getAddress());
    }
  }

  @Test
  void routes_eachSetsTheProviderContextExtensionItsPathBelongsTo() {
    assertThat(routes()).isNotEmpty();
    for (Route route : routes()) {
      assertThat(contextProvider(route))
          .as("route %s context_extensions.provider", route.getName())
          .isIn(PROVIDER_HOST.keySet())
          .isEqualTo(expectedProvider(route));
    }
  }

  @Test
  void routes_eachReachesItsProviderAndInjectsOnlyThatProvidersKey() {
    Map<String, HttpFilter> injectorByName =
        injectors().stream().collect(Collectors.toMap(HttpFilter::getName, f -> f));
    for (Route route : routes()) {
      String provider = contextProvider(route);
      RouteAction action = route.getRoute();
      assertThat(providerOfCluster(action.getCluster()))
          .as("route %s goes to the cluster of %s", route.getName(), provider)
          .isEqualTo(provider);
      assertThat(action.getHostRewriteLiteral()).isEqualTo(PROVIDER_HOST.get(provider));

      List<String> enabled =
          route.getTypedPerFilterConfigMap().keySet().stream()
              .filter(injectorByName::containsKey)
              .toList();
      assertThat(enabled).as("injectors enabled on route %s", route.getName()).hasSize(1);
      assertThat(providerOfInjector(injectorByName.get(enabled.get(0))))
          .as("route %s injects the key of", route.getName())
          .isEqualTo(provider);
      FilterConfig enable =
          unpack(route.getTypedPerFilterConfigMap().get(enabled.get(0)), FilterConfig.class);
      assertThat(enable.getDisabled()).isFalse();
      assertThat(enable.hasConfig())
          .as("an empty FilterConfig.config is what turns a default-disabled filter on")
          .isTrue();
    }
  }

  @Test
  void routing_sampleRequests_reachTheirProvider() {
    record Sample(String path, Set<String> headers, String provider) {}
    List<Sample> samples =
        List.of(
            new Sample("/v1/chat/completions", Set.of(), "openai"),
            new Sample("/v1/completions", Set.of(), "openai"),
            new Sample("/v1/responses", Set.of(), "openai"),
            new Sample("/v1/responses/resp_123", Set.of(), "openai"),
            new Sample("/v1/embeddings", Set.of(), "openai"),
            new Sample("/v1/models", Set.of(), "openai"),
            new Sample("/v1/models/ft:gpt-4o-mini:acme::abc123", Set.of(), "openai"),
            new Sample("/v1/audio/speech", Set.of(), "openai"),
            new Sample("/v1/messages", Set.of(), "anthropic"),
            new Sample("/v1/messages?beta=true", Set.of(), "anthropic"),
            new Sample("/v1/messages/count_tokens", Set.of("anthropic-version"), "anthropic"),
            new Sample("/v1/models", Set.of("anthropic-version"), "anthropic"),
            new Sample("/v1beta/models/gemini-2.0-flash:generateContent", Set.of(), "gemini"),
            new Sample(
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                Set.of(),
                "gemini"),
            new Sample("/v1/models/gemini-2.0-flash:generateContent", Set.of(), "gemini"),
            new Sample("/upload/v1beta/files", Set.of(), "gemini"),
            new Sample("/v1/files", Set.of(), "openai"),
            new Sample("/v1/files", Set.of("anthropic-version"), "anthropic"),
            new Sample("/v1/uploads/upload_abc123/parts", Set.of(), "openai"));
    for (Sample sample : samples) {
      Route route =
          routes().stream()
              .filter(r -> matches(r.getMatch(), sample.path(), sample.headers()))
              .findFirst()
              .orElseGet(() -> fail("no route for " + sample.path()));
      assertThat(contextProvider(route))
          .as("%s %s is routed by %s", sample.path(), sample.headers(), route.getName())
          .isEqualTo(sample.provider());
    }
  }

  /** Envoy's first-match semantics for the match kinds this file uses (others fail the test). */
  static boolean matches(RouteMatch match, String pathAndQuery, Set<String> headers) {
    for (HeaderMatcher header : match.getHeadersList()) {
      assertThat(header.getHeaderMatchSpecifierCase())
          .isEqualTo(HeaderMatcher.HeaderMatchSpecifierCase.PRESENT_MATCH);
      if (header.getPresentMatch() != headers.contains(header.getName().toLowerCase())) {
        return false;
      }
    }
    int query = pathAndQuery.indexOf('?');
    String path = query < 0 ? pathAndQuery : pathAndQuery.substring(0, query);
    return switch (match.getPathSpecifierCase()) {
      case PREFIX -> pathAndQuery.startsWith(match.getPrefix());
      case PATH -> path.equals(match.getPath());
      case PATH_SEPARATED_PREFIX ->
          path.equals(match.getPathSeparatedPrefix())
              || path.startsWith(match.getPathSeparatedPrefix() + "/");
      case SAFE_REGEX -> Pattern.compile(match.getSafeRegex().getRegex()).matcher(path).matches();
      default -> fail("unsupported match " + match.getPathSpecifierCase());
    };
  }

  @Test
  void routes_noneTimesOutInUnder60Seconds() {
    HttpConnectionManager hcm = hcm();
    assertNotUnder60s(
        "stream_idle_timeout", hcm.hasStreamIdleTimeout(), hcm.getStreamIdleTimeout());
    assertNotUnder60s("request_timeout", hcm.hasRequestTimeout(), hcm.getRequestTimeout());
    for (Route route : routes()) {
      RouteAction action = route.getRoute();
      assertThat(action.hasTimeout())
          .as("route %s sets its timeout (Envoy's default is 15 s)", route.getName())
          .isTrue();
      assertNotUnder60s(route.getName() + " timeout", true, action.getTimeout());
      assertNotUnder60s(
          route.getName() + " idle_timeout", action.hasIdleTimeout(), action.getIdleTimeout());
      assertNotUnder60s(
          route.getName() + " max_stream_duration",
          action.getMaxStreamDuration().hasMaxStreamDuration(),
          action.getMaxStreamDuration().getMaxStreamDuration());
    }
  }

  @Test
  void credentialInjectors_areOffUnlessARouteEnablesThemAndReplaceTheClientsHeader() {
    assertThat(injectors().stream().map(EnvoyConfigTest::providerOfInjector))
        .containsExactlyInAnyOrderElementsOf(PROVIDER_KEY_HEADER.keySet());
    for (HttpFilter injector : injectors()) {
      CredentialInjector config = unpack(injector.getTypedConfig(), CredentialInjector.class);
      assertThat(injector.getDisabled()).as("%s disabled by default", injector.getName()).isTrue();
      assertThat(config.getOverwrite()).isTrue();
      assertThat(config.getAllowRequestWithoutCredential())
          .as("%s: no key configured means no request, not a keyless one", injector.getName())
          .isFalse();
    }
  }

  @Test
  void secretExamples_existForEverySecretEnvoyReadsAndNameIt() throws Exception {
    TypeRegistry secrets = TypeRegistry.newBuilder().add(Secret.getDescriptor()).build();
    for (HttpFilter injector : injectors()) {
      var sds = generic(injector).getCredential();
      String path = sds.getSdsConfig().getPathConfigSource().getPath();
      assertThat(path).startsWith("/etc/envoy/secrets/").endsWith(".yaml");
      // docker-compose.yml mounts ./envoy at /etc/envoy (DockerComposeTest checks the mount).
      String example = "envoy/" + path.substring("/etc/envoy/".length()) + ".example";
      assertThat(RepoFiles.file(example)).as("example for %s", path).isRegularFile();

      DiscoveryResponse.Builder response = DiscoveryResponse.newBuilder();
      JsonFormat.parser()
          .usingTypeRegistry(secrets)
          .merge(RepoFiles.yamlFile(example).toString(), response);
      assertThat(response.getResourcesList()).hasSize(1);
      Secret secret = unpack(response.getResources(0), Secret.class);
      assertThat(secret.getName()).isEqualTo(sds.getName());
      String value = secret.getGenericSecret().getSecret().getInlineString();
      assertThat(value).isNotBlank();
      if (providerOfInjector(injector).equals("openai")) {
        assertThat(value).as("injected verbatim into authorization").startsWith("Bearer ");
      }
    }
  }

  @Test
  void secretsDirectory_isGitIgnoredExceptTheExamples() throws Exception {
    List<String> lines = Files.readAllLines(RepoFiles.file(".gitignore"));
    assertThat(lines).contains("envoy/secrets/*", "!envoy/secrets/*.example");
  }

  @Test
  void accessLog_neverRecordsKeysOrQueryStrings() {
    HttpConnectionManager hcm = hcm();
    assertThat(hcm.getGenerateRequestId().getValue()).isTrue();
    assertThat(hcm.getAccessLogList()).isNotEmpty();
    List<String> values = new ArrayList<>();
    for (var log : hcm.getAccessLogList()) {
      StdoutAccessLog stdout = unpack(log.getTypedConfig(), StdoutAccessLog.class);
      stdout
          .getLogFormat()
          .getJsonFormat()
          .getFieldsMap()
          .values()
          .forEach(v -> values.add(v.getStringValue()));
    }
    assertThat(values).isNotEmpty();
    for (String value : values) {
      assertThat(value.toUpperCase())
          .doesNotContain("AUTHORIZATION", "X-API-KEY", "X-GOOG-API-KEY", "%REQ(:PATH)%");
    }
    assertThat(values).contains("%PATH(NQ:ORIG_OR_PATH)%");
  }

  @ParameterizedTest
  @CsvSource({
    // a misspelt field in the bootstrap itself
    "'port_value: 10000', 'port_valu: 10000'",
    // a misspelt field inside a filter's typed_config
    "'failure_mode_allow: false', 'failure_mode_alow: false'",
    // a misspelt field inside a per-route typed_config
    "'context_extensions: { provider: openai }', 'context_extension: { provider: openai }'",
    // a typed_config type that does not exist
    "'ext_proc.v3.ExternalProcessor', 'ext_proc.v3.ExternalProcesor'",
    // a misspelt field in the fail-closed stage and in the local reply mapper
    "'present_match: true', 'present_mach: true'",
    "'body_format_override:', 'body_format_overide:'",
  })
  void parse_misspeltFieldOrType_fails(String original, String misspelt) {
    String yaml = RepoFiles.read(ENVOY_YAML);
    assertThat(yaml).contains(original);
    String broken = yaml.replaceFirst(Pattern.quote(original), misspelt);
    assertThatThrownBy(() -> parse(broken)).isInstanceOf(InvalidProtocolBufferException.class);
  }
}
