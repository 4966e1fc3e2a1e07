package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.quotaauthority.keys.IpRanges;
import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyLookup;
import io.quotaauthority.keys.KeyPolicies;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.ModelAllowList;
import io.quotaauthority.keys.PendingUsage;
import io.quotaauthority.keys.PeriodBudget;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.keys.SpendWindows;
import io.quotaauthority.keys.UsageWindows;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The decision order of README's table over every policy, through Check's Authorizer, for every
 * provider shape: each row is a key that fails several checks at once, and the first in the table's
 * order must be the one answered, with its HTTP code, body code and headers.
 */
class DecisionOrderTest {
  private static final Instant NOW = Instant.parse("2026-12-31T22:58:30Z");
  private static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);
  private static final ExecutorService LOADER = Executors.newSingleThreadExecutor();
  private static final ObjectMapper JSON = new ObjectMapper();

  private static final String INSIDE = "203.0.113.9";
  private static final String OUTSIDE = "198.51.100.1";

  @AfterAll
  static void stopLoader() {
    LOADER.shutdownNow();
  }

  /** One key of the table: its state and policies. */
  record Key(
      boolean disabled,
      boolean expired,
      String quota,
      String used,
      boolean ipList,
      boolean models,
      boolean monthly,
      String window5h,
      String window5hSpent) {
    Key(
        boolean disabled,
        boolean expired,
        String quota,
        String used,
        boolean ipList,
        boolean models,
        boolean monthly) {
      this(disabled, expired, quota, used, ipList, models, monthly, null, null);
    }
  }

  /** The minute a windowed key's usage was charged in: two hours before NOW. */
  private static final long SPENT_MINUTE = NOW.minus(Duration.ofHours(2)).getEpochSecond() / 60;

  private static KeyRecord row(long id, String secret, Key k) {
    PeriodBudget period =
        k.monthly()
            ? PeriodBudget.at(PeriodBudget.Kind.MONTHLY, 0, ZoneId.of("Europe/Paris"), NOW)
            : PeriodBudget.NONE;
    KeyPolicies policies =
        new KeyPolicies(
            k.ipList() ? IpRanges.parse("ip_allow", List.of("203.0.113.0/24")) : IpRanges.NONE,
            IpRanges.NONE,
            k.models()
                ? ModelAllowList.parse("model_allow", List.of("gpt-4o-mini"))
                : ModelAllowList.NONE,
            period,
            k.window5h() == null
                ? SpendWindows.NONE
                : SpendWindows.of(new BigDecimal(k.window5h()), null, null, null));
    return new KeyRecord(
            id,
            "k" + id,
            SecretHasher.hash(secret),
            secret.substring(0, 8),
            k.disabled() ? KeyRecord.StoredStatus.DISABLED : KeyRecord.StoredStatus.ACTIVE,
            new BigDecimal(k.quota()),
            new BigDecimal(k.used()),
            k.expired() ? NOW.minusSeconds(1) : null,
            NOW.minusSeconds(60),
            NOW.minusSeconds(60),
            null,
            1)
        .withPolicies(policies);
  }

  static final class Lookup implements KeyLookup {
    final Map<KeyHash, KeyRecord> rows = new HashMap<>();

    @Override
    public Optional<KeyRecord> findByHash(KeyHash hash) {
      return Optional.ofNullable(rows.get(hash));
    }

    @Override
    public List<KeyRecord> findByIds(Collection<Long> ids) {
      return rows.values().stream().filter(r -> ids.contains(r.id())).toList();
    }
  }

  enum Shape {
    OPENAI("/v1/chat/completions", "authorization", "Bearer "),
    ANTHROPIC("/v1/messages", "x-api-key", ""),
    GEMINI("/v1beta/models/gemini-2.5-flash:generateContent", "x-goog-api-key", "");

    final String path;
    final String header;
    final String prefix;

    Shape(String path, String header, String prefix) {
      this.path = path;
      this.header = header;
      this.prefix = prefix;
    }
  }

  private static CheckRequest request(Shape shape, String path, String secret, String source) {
    AttributeContext.HttpRequest.Builder http =
        AttributeContext.HttpRequest.newBuilder()
            .setMethod("POST")
            .setPath(path)
            .putHeaders(shape.header, shape.prefix + secret);
    if (shape == Shape.ANTHROPIC) {
      http.putHeaders("anthropic-version", "2023-06-01");
    }
    return CheckRequest.newBuilder()
        .setAttributes(
            AttributeContext.newBuilder()
                .setSource(
                    AttributeContext.Peer.newBuilder()
                        .setAddress(
                            Address.newBuilder()
                                .setSocketAddress(
                                    SocketAddress.newBuilder().setAddress(source).setPortValue(1))))
                .setRequest(AttributeContext.Request.newBuilder().setHttp(http)))
        .build();
  }

  /** key, source, endpoint path (null: the shape's metered one), then what wins. */
  static Stream<Arguments> table() {
    List<Object[]> rows =
        List.of(
            // disabled beats every other failure
            new Object[] {
              new Key(true, true, "1", "1", true, true, true),
              OUTSIDE,
              null,
              401,
              "api_key_disabled",
              null
            },
            // expired beats the address and the budget
            new Object[] {
              new Key(false, true, "1", "1", true, false, true),
              OUTSIDE,
              null,
              403,
              "api_key_expired",
              null
            },
            // the address beats any spending figure
            new Object[] {
              new Key(false, false, "1", "1", true, false, true),
              OUTSIDE,
              null,
              403,
              "ip_not_allowed",
              null
            },
            new Object[] {
              new Key(false, false, "1", "1", true, false, false),
              OUTSIDE,
              null,
              403,
              "ip_not_allowed",
              null
            },
            // inside the list, the spent period: 429 with retry-after until midnight in Paris
            new Object[] {
              new Key(false, false, "1", "1", true, false, true),
              INSIDE,
              null,
              429,
              "period_budget_exceeded",
              "90"
            },
            // a lifetime quota spent
            new Object[] {
              new Key(false, false, "1", "1", true, true, false),
              INSIDE,
              null,
              429,
              "insufficient_quota",
              null
            },
            // budget left, but an endpoint whose cost or model the gateway cannot see
            new Object[] {
              new Key(false, false, "0", "0", false, true, false),
              INSIDE,
              "/v1/batches",
              403,
              "endpoint_not_metered",
              null
            },
            new Object[] {
              new Key(false, false, "5", "1", true, false, true),
              INSIDE,
              "/v1/batches",
              403,
              "endpoint_not_metered",
              null
            },
            // a full 5h window: after the address, after the quota, before the endpoint;
            // retry-after
            // until the usage charged at 20:58 ages out at 01:59:00 (the end of its minute + 5h)
            new Object[] {
              new Key(false, false, "5", "1", true, false, false, "2", "2"),
              OUTSIDE,
              null,
              403,
              "ip_not_allowed",
              null
            },
            new Object[] {
              new Key(false, false, "1", "1", true, false, false, "2", "2"),
              INSIDE,
              null,
              429,
              "insufficient_quota",
              null
            },
            new Object[] {
              new Key(false, false, "5", "1", true, false, false, "2", "2"),
              INSIDE,
              null,
              429,
              "window_limit_exceeded",
              "10830"
            },
            new Object[] {
              new Key(false, false, "0", "0", false, false, false, "2", "2.5"),
              INSIDE,
              "/v1/batches",
              429,
              "window_limit_exceeded",
              "10830"
            },
            new Object[] {
              new Key(false, false, "0", "0", false, false, false, "2", "1"),
              INSIDE,
              "/v1/batches",
              403,
              "endpoint_not_metered",
              null
            },
            // everything passes
            new Object[] {
              new Key(false, false, "5", "1", true, true, true), INSIDE, null, 0, null, null
            },
            // a window with room: its remaining USD and when its oldest usage ages out
            new Object[] {
              new Key(false, false, "5", "1", true, false, false, "2", "0.5"),
              INSIDE,
              null,
              0,
              null,
              null
            });
    List<Arguments> out = new ArrayList<>();
    for (Shape shape : Shape.values()) {
      for (Object[] r : rows) {
        // The batch row is OpenAI's endpoint.
        if (r[2] != null && shape != Shape.OPENAI) {
          continue;
        }
        out.add(Arguments.of(shape, r[0], r[1], r[2], r[3], r[4], r[5]));
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "[{index}] {0} {1} from {2} -> {4} {5}")
  @MethodSource("table")
  void check_keyFailingSeveralChecks_answersTheFirstInTheTablesOrder(
      Shape shape, Key key, String source, String path, int http, String code, String retryAfter)
      throws Exception {
    String secret = "sk-order-" + "0".repeat(38);
    Lookup lookup = new Lookup();
    lookup.rows.put(SecretHasher.hash(secret), row(7, secret, key));
    Authorizer authorizer =
        new Authorizer(
            new KeyCache(lookup, LOADER, 100, Duration.ofSeconds(30))
                .trackingUsage(
                    new UsageWindows(
                        (id, now, minutes) ->
                            key.window5hSpent() == null
                                ? new UsageWindows.Read(BigDecimal.ZERO, new long[0], new long[0])
                                : new UsageWindows.Read(
                                    new BigDecimal(key.window5hSpent()),
                                    new long[] {SPENT_MINUTE},
                                    new long[] {
                                      UsageWindows.units(new BigDecimal(key.window5hSpent()))
                                    }),
                        CLOCK)),
            new PendingUsage(),
            CLOCK,
            CheckRecorder.NONE);
    CompletableFuture<CheckResponse> answer = new CompletableFuture<>();
    authorizer.check(
        request(shape, path == null ? shape.path : path, secret, source),
        TimeUnit.SECONDS.toNanos(2),
        a -> answer.complete(a.response()));
    CheckResponse r = answer.get(5, TimeUnit.SECONDS);

    if (http == 0 && key.window5h() != null) {
      assertThat(r.getStatus().getCode()).isZero();
      Map<String, String> response = headers(r.getOkResponse().getResponseHeadersToAddList());
      assertThat(response)
          .containsEntry("x-quota-window-5h-remaining-usd", "1.5")
          .containsEntry("x-quota-window-5h-resets-at", "2027-01-01T01:59:00Z");
      return;
    }
    if (http == 0) {
      assertThat(r.getStatus().getCode()).isZero();
      Map<String, String> upstream = headers(r.getOkResponse().getHeadersList());
      Map<String, String> response = headers(r.getOkResponse().getResponseHeadersToAddList());
      assertThat(upstream).containsEntry("x-quota-key-models", "gpt-4o-mini");
      assertThat(response)
          .containsEntry("x-quota-remaining-usd", "4")
          .containsEntry("x-quota-budget-resets-at", "2026-12-31T23:00:00Z");
      return;
    }
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(http);
    JsonNode body = JSON.readTree(r.getDeniedResponse().getBody());
    switch (shape) {
      case OPENAI -> assertThat(body.at("/error/code").asText()).isEqualTo(code);
      case ANTHROPIC -> {
        assertThat(body.at("/type").asText()).isEqualTo("error");
        assertThat(r.getStatus().getMessage()).isEqualTo(code);
      }
      case GEMINI -> {
        assertThat(body.at("/error/code").asInt()).isEqualTo(http);
        assertThat(r.getStatus().getMessage()).isEqualTo(code);
      }
    }
    Map<String, String> denied = headers(r.getDeniedResponse().getHeadersList());
    if (retryAfter == null) {
      assertThat(denied).doesNotContainKey("retry-after");
    } else {
      assertThat(denied).containsEntry("retry-after", retryAfter);
    }
    if ("window_limit_exceeded".equals(code)) {
      assertThat(denied).containsEntry("x-quota-window", "5h");
      if (shape == Shape.OPENAI) {
        assertThat(body.at("/error/message").asText())
            .isEqualTo(
                "This API key has spent its limit of 2 USD in a rolling 5h window; enough of that"
                    + " usage ages out at 2027-01-01T01:59:00Z.");
        assertThat(body.at("/error/type").asText()).isEqualTo("insufficient_quota");
      }
    }
  }

  /** key settings for the rate rows: rpm, tpm, tokens reported this minute, 5h window spent. */
  static Stream<Arguments> rateTable() {
    List<Object[]> rows =
        List.of(
            // a full window is named before any rate limit (it takes no permit)
            new Object[] {60, 0L, 0L, "2", 429, "window_limit_exceeded", "10830"},
            // tokens of the last minute at the limit: refused until the end of the next minute
            // (usage of 22:58 ages out at 23:00:00, 90 s after 22:58:30)
            new Object[] {60, 100L, 100L, null, 429, "rate_limit_exceeded", "90"},
            // below the token limit, no request permit left: the store's retry second
            new Object[] {60, 100L, 99L, null, 429, "rate_limit_exceeded", "31"},
            // a permit: allowed, with the limits on the response
            new Object[] {600, 100L, 40L, null, 0, null, null});
    List<Arguments> out = new ArrayList<>();
    for (Shape shape : Shape.values()) {
      for (Object[] r : rows) {
        out.add(Arguments.of(shape, r[0], r[1], r[2], r[3], r[4], r[5], r[6]));
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "[{index}] {0} rpm={1} tpm={2} tokens={3} window={4} -> {5} {6}")
  @MethodSource("rateTable")
  void check_rateLimits_lastInTheOrder_429WithRetryAfterInEveryShape(
      Shape shape,
      int rpm,
      long tpm,
      long tokens,
      String windowSpent,
      int http,
      String code,
      String retryAfter)
      throws Exception {
    String secret = "sk-rate-" + "0".repeat(39);
    KeyRecord base = row(8, secret, new Key(false, false, "0", "0", false, false, false));
    KeyPolicies policies =
        KeyPolicies.NONE
            .withWindows(
                windowSpent == null
                    ? SpendWindows.NONE
                    : SpendWindows.of(new BigDecimal("2"), null, null, null))
            .withRates(io.quotaauthority.keys.RateLimits.of(rpm, tpm));
    KeyRecord r0 = base.withPolicies(policies);
    Lookup lookup = new Lookup();
    lookup.rows.put(SecretHasher.hash(secret), r0);
    long nowMinute = NOW.getEpochSecond() / 60;
    UsageWindows tracking =
        new UsageWindows(
            (id, now, minutes) ->
                new UsageWindows.Read(
                    windowSpent == null ? BigDecimal.ZERO : new BigDecimal(windowSpent),
                    tokens,
                    new long[] {windowSpent == null ? nowMinute : SPENT_MINUTE},
                    new long[] {
                      windowSpent == null ? 0 : UsageWindows.units(new BigDecimal(windowSpent))
                    },
                    new long[] {tokens}),
            CLOCK);
    // The store grants a permit while the limit is 600, none at 60 (retry at 22:59:01).
    io.quotaauthority.usage.RatePermits permits =
        new io.quotaauthority.usage.RatePermits(
            (keyId, limit, first, last, wanted) ->
                limit == 600
                    ? new io.quotaauthority.usage.RateStore.Grant(1, 0)
                    : new io.quotaauthority.usage.RateStore.Grant(0, NOW.getEpochSecond() + 31),
            Runnable::run,
            CLOCK);
    Authorizer authorizer =
        new Authorizer(
            new KeyCache(lookup, LOADER, 100, Duration.ofSeconds(30)).trackingUsage(tracking),
            new PendingUsage(),
            CLOCK,
            CheckRecorder.NONE,
            null,
            permits);
    CompletableFuture<CheckResponse> answer = new CompletableFuture<>();
    authorizer.check(
        request(shape, shape.path, secret, INSIDE),
        TimeUnit.SECONDS.toNanos(2),
        a -> answer.complete(a.response()));
    CheckResponse r = answer.get(5, TimeUnit.SECONDS);
    if (http == 0) {
      assertThat(r.getStatus().getCode()).isZero();
      assertThat(headers(r.getOkResponse().getResponseHeadersToAddList()))
          .containsEntry("x-quota-ratelimit-limit-requests", "600")
          .containsEntry("x-quota-ratelimit-limit-tokens", "100")
          .containsEntry("x-quota-ratelimit-remaining-tokens", "60");
      return;
    }
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(http);
    assertThat(r.getStatus().getMessage()).isEqualTo(code);
    JsonNode body = JSON.readTree(r.getDeniedResponse().getBody());
    switch (shape) {
      case OPENAI -> assertThat(body.at("/error/code").asText()).isEqualTo(code);
      case ANTHROPIC -> assertThat(body.at("/error/type").asText()).isEqualTo("rate_limit_error");
      case GEMINI -> assertThat(body.at("/error/status").asText()).isEqualTo("RESOURCE_EXHAUSTED");
    }
    Map<String, String> denied = headers(r.getDeniedResponse().getHeadersList());
    assertThat(denied).containsEntry("retry-after", retryAfter);
    if (code.equals("rate_limit_exceeded")) {
      assertThat(denied).containsEntry("x-quota-ratelimit", tpm == tokens ? "tokens" : "requests");
      if (shape == Shape.OPENAI) {
        assertThat(body.at("/error/type").asText())
            .isEqualTo(tpm == tokens ? "tokens" : "requests");
      }
    }
  }

  private static Map<String, String> headers(List<HeaderValueOption> options) {
    Map<String, String> out = new HashMap<>();
    for (HeaderValueOption h : options) {
      out.put(h.getHeader().getKey(), h.getHeader().getValue());
    }
    return out;
  }
}
