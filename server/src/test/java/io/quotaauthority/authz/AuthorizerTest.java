package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.rpc.Code;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyLookup;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.PendingUsage;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.keys.Verdict;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Check's logic without gRPC or a database: a KeyCache over rows in memory, a fixed clock, and
 * requests shaped like Envoy's. The table covers verdict × provider × where the key is sent.
 */
class AuthorizerTest {
  private static final Instant NOW = Instant.parse("2026-12-01T12:00:00Z");
  private static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);
  private static final ExecutorService LOADER = Executors.newSingleThreadExecutor();

  private static final String ACTIVE = "sk-active-0000000000000000000000000000000000000";
  private static final String LIMITED = "sk-limited-000000000000000000000000000000000000";
  private static final String DISABLED = "sk-disabled-00000000000000000000000000000000000";
  private static final String EXPIRED = "sk-expired-000000000000000000000000000000000000";
  private static final String EXHAUSTED = "sk-exhausted-0000000000000000000000000000000000";
  private static final String UNKNOWN = "sk-unknown-000000000000000000000000000000000000";

  @AfterAll
  static void stopLoader() {
    LOADER.shutdownNow();
  }

  /** Rows by hash, as the database would hold them; counts lookups. */
  static final class MemoryLookup implements KeyLookup {
    final Map<KeyHash, KeyRecord> rows = new HashMap<>();
    int lookups;

    MemoryLookup add(
        long id,
        String secret,
        KeyRecord.StoredStatus status,
        String quota,
        String used,
        Instant expires) {
      rows.put(
          SecretHasher.hash(secret),
          new KeyRecord(
              id,
              "k" + id,
              SecretHasher.hash(secret),
              secret.substring(0, 8),
              status,
              new BigDecimal(quota),
              new BigDecimal(used),
              expires,
              NOW.minusSeconds(60),
              NOW.minusSeconds(60),
              null,
              1));
      return this;
    }

    @Override
    public synchronized Optional<KeyRecord> findByHash(KeyHash hash) {
      lookups++;
      return Optional.ofNullable(rows.get(hash));
    }

    @Override
    public List<KeyRecord> findByIds(Collection<Long> ids) {
      return rows.values().stream().filter(r -> ids.contains(r.id())).toList();
    }
  }

  static MemoryLookup keys() {
    return new MemoryLookup()
        .add(1, ACTIVE, KeyRecord.StoredStatus.ACTIVE, "0", "12.5", null)
        .add(2, LIMITED, KeyRecord.StoredStatus.ACTIVE, "10", "2.25", NOW.plusSeconds(3600))
        .add(3, DISABLED, KeyRecord.StoredStatus.DISABLED, "0", "0", null)
        .add(4, EXPIRED, KeyRecord.StoredStatus.ACTIVE, "0", "0", NOW.minusSeconds(1))
        .add(5, EXHAUSTED, KeyRecord.StoredStatus.ACTIVE, "1", "1", null);
  }

  enum Form {
    OPENAI_BEARER,
    ANTHROPIC_X_API_KEY,
    GEMINI_GOOG_HEADER,
    GEMINI_QUERY
  }

  static CheckRequest request(Form form, String secret) {
    AttributeContext.HttpRequest.Builder http =
        AttributeContext.HttpRequest.newBuilder().setMethod("POST");
    switch (form) {
      case OPENAI_BEARER ->
          http.setPath("/v1/chat/completions").putHeaders("authorization", "Bearer " + secret);
      case ANTHROPIC_X_API_KEY ->
          http.setPath("/v1/messages")
              .putHeaders("x-api-key", secret)
              .putHeaders("anthropic-version", "2023-06-01");
      case GEMINI_GOOG_HEADER ->
          http.setPath("/v1beta/models/gemini-2.5-flash:generateContent")
              .putHeaders("x-goog-api-key", secret);
      case GEMINI_QUERY ->
          http.setPath("/v1beta/models/gemini-2.5-flash:generateContent?alt=sse&key=" + secret);
    }
    return CheckRequest.newBuilder()
        .setAttributes(
            AttributeContext.newBuilder()
                .setRequest(AttributeContext.Request.newBuilder().setHttp(http)))
        .build();
  }

  static Stream<Arguments> table() {
    List<Arguments> rows = new ArrayList<>();
    Object[][] verdicts = {
      {ACTIVE, Code.OK, 0, "false"},
      {LIMITED, Code.OK, 0, "true"},
      {DISABLED, Code.UNAUTHENTICATED, 401, null},
      {EXPIRED, Code.PERMISSION_DENIED, 403, null},
      {EXHAUSTED, Code.RESOURCE_EXHAUSTED, 429, null},
      {UNKNOWN, Code.UNAUTHENTICATED, 401, null},
    };
    for (Form form : Form.values()) {
      for (Object[] v : verdicts) {
        rows.add(Arguments.of(form, v[0], v[1], v[2], v[3]));
      }
    }
    return rows.stream();
  }

  /** What one Check answered, and how many times. */
  private static CheckAnswer answer(Authorizer authorizer, CheckRequest request) throws Exception {
    CompletableFuture<CheckAnswer> answer = new CompletableFuture<>();
    authorizer.check(request, TimeUnit.SECONDS.toNanos(2), answer::complete);
    return answer.get(5, TimeUnit.SECONDS);
  }

  static List<CheckResponse> check(Authorizer authorizer, CheckRequest request) throws Exception {
    List<CheckResponse> answers = new CopyOnWriteArrayList<>();
    CompletableFuture<Void> first = new CompletableFuture<>();
    authorizer.check(
        request,
        TimeUnit.SECONDS.toNanos(2),
        r -> {
          answers.add(r.response());
          first.complete(null);
        });
    first.get(5, TimeUnit.SECONDS);
    // Room for a second answer, should one come: there must be none.
    Thread.sleep(20);
    return answers;
  }

  @ParameterizedTest(name = "{0} {1} -> {2}")
  @MethodSource("table")
  void check_keyStateAndForm_answersOnceWithTheVerdictInTheProvidersShape(
      Form form, String secret, Code code, int http, String limitedHeader) throws Exception {
    // Twice: the first Check loads the key (cold path), the second is answered from the cache.
    Authorizer authorizer =
        new Authorizer(
            new KeyCache(keys(), LOADER, 100, Duration.ofSeconds(30)),
            new PendingUsage(),
            CLOCK,
            CheckRecorder.NONE);
    for (int pass = 0; pass < 2; pass++) {
      List<CheckResponse> answers = check(authorizer, request(form, secret));

      assertThat(answers).as("pass %d", pass).hasSize(1);
      CheckResponse r = answers.get(0);
      assertThat(r.getStatus().getCode()).isEqualTo(code.getNumber());
      if (code == Code.OK) {
        assertThat(r.getOkResponse().getHeadersList())
            .anySatisfy(
                h -> {
                  assertThat(h.getHeader().getKey()).isEqualTo("x-quota-key-limited");
                  assertThat(h.getHeader().getValue()).isEqualTo(limitedHeader);
                });
        assertThat(r.getOkResponse().getQueryParametersToRemoveList())
            .as("?key= is stripped on every Gemini route")
            .isEqualTo(
                form == Form.GEMINI_GOOG_HEADER || form == Form.GEMINI_QUERY
                    ? List.of("key")
                    : List.of());
      } else {
        assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(http);
        String body = r.getDeniedResponse().getBody();
        switch (form) {
          case OPENAI_BEARER -> assertThat(body).startsWith("{\"error\":{\"message\":");
          case ANTHROPIC_X_API_KEY -> assertThat(body).startsWith("{\"type\":\"error\"");
          case GEMINI_GOOG_HEADER, GEMINI_QUERY -> assertThat(body).contains("\"code\":" + http);
        }
      }
    }
  }

  @Test
  void check_limitedKeyWithQueuedUsage_countsItAsSpent() throws Exception {
    PendingUsage pending = new PendingUsage();
    Authorizer authorizer =
        new Authorizer(
            new KeyCache(keys(), LOADER, 100, Duration.ofSeconds(30)),
            pending,
            CLOCK,
            CheckRecorder.NONE);
    // Key 2: quota 10, used 2.25. Queued 7.74 leaves 0.01; one more cent exhausts it.
    pending.add(2, new BigDecimal("7.74"));

    CheckResponse admitted = check(authorizer, request(Form.OPENAI_BEARER, LIMITED)).get(0);
    pending.add(2, new BigDecimal("0.01"));
    CheckResponse refused = check(authorizer, request(Form.OPENAI_BEARER, LIMITED)).get(0);
    pending.settle(2, new BigDecimal("7.75"));
    CheckResponse again = check(authorizer, request(Form.OPENAI_BEARER, LIMITED)).get(0);

    assertThat(admitted.getOkResponse().getResponseHeadersToAddList())
        .anySatisfy(h -> assertThat(h.getHeader().getValue()).isEqualTo("0.01"));
    assertThat(refused.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(429);
    assertThat(again.getOkResponse().getResponseHeadersToAddList())
        .anySatisfy(h -> assertThat(h.getHeader().getValue()).isEqualTo("7.75"));
  }

  @Test
  void check_sameSnapshot_sameAllowBytes_aNewVersionAnswersItsFigures() throws Exception {
    MemoryLookup lookup = keys();
    KeyCache cache = new KeyCache(lookup, LOADER, 100, Duration.ofSeconds(30));
    Authorizer authorizer = new Authorizer(cache, new PendingUsage(), CLOCK, CheckRecorder.NONE);

    CheckAnswer first = answer(authorizer, request(Form.OPENAI_BEARER, LIMITED));
    CheckAnswer second = answer(authorizer, request(Form.OPENAI_BEARER, LIMITED));
    KeyRecord old = lookup.rows.get(SecretHasher.hash(LIMITED));
    cache.apply(
        new KeyRecord(
            old.id(),
            old.name(),
            old.keyHash(),
            old.keyPrefix(),
            old.status(),
            old.quota(),
            new BigDecimal("3.25"),
            old.expiresAt(),
            old.createdAt(),
            old.updatedAt(),
            null,
            old.version() + 1));
    CheckAnswer third = answer(authorizer, request(Form.OPENAI_BEARER, LIMITED));

    // Written per Check, nothing kept with the key: equal bytes for the same snapshot.
    assertThat(second.wire()).isEqualTo(first.wire());
    assertThat(third.wire()).isNotEqualTo(first.wire());
    assertThat(third.response().getOkResponse().getResponseHeadersToAddList())
        .anySatisfy(h -> assertThat(h.getHeader().getValue()).isEqualTo("6.75"));
  }

  @Test
  void check_missingKey_is401WithNoLookup() throws Exception {
    MemoryLookup lookup = keys();
    Authorizer authorizer =
        new Authorizer(
            new KeyCache(lookup, LOADER, 100, Duration.ofSeconds(30)),
            new PendingUsage(),
            CLOCK,
            CheckRecorder.NONE);
    CheckRequest none =
        CheckRequest.newBuilder()
            .setAttributes(
                AttributeContext.newBuilder()
                    .setRequest(
                        AttributeContext.Request.newBuilder()
                            .setHttp(
                                AttributeContext.HttpRequest.newBuilder()
                                    .setPath("/v1/chat/completions"))))
            .build();

    List<CheckResponse> answers = check(authorizer, none);

    assertThat(answers).hasSize(1);
    assertThat(answers.get(0).getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(lookup.lookups).isZero();
  }

  @Test
  void check_failureOnTheColdPath_isAnswered503InTheProvidersShape() throws Exception {
    // The recorder throws when the loaded key's verdict is recorded: on the loader's thread,
    // inside the load future's completion, where nothing used to catch it.
    CheckRecorder throwing =
        (verdict, nanos) -> {
          if (verdict == Verdict.ALLOW) {
            throw new IllegalStateException("recorder broke");
          }
        };
    Authorizer authorizer =
        new Authorizer(
            new KeyCache(keys(), LOADER, 100, Duration.ofSeconds(30)),
            new PendingUsage(),
            CLOCK,
            throwing);

    List<CheckResponse> answers = check(authorizer, request(Form.ANTHROPIC_X_API_KEY, ACTIVE));

    assertThat(answers).hasSize(1);
    CheckResponse r = answers.get(0);
    assertThat(r.getStatus().getCode()).isEqualTo(Code.UNAVAILABLE_VALUE);
    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(503);
    assertThat(r.getDeniedResponse().getBody())
        .startsWith("{\"type\":\"error\"")
        .contains("quota_service_unavailable");
  }

  @Test
  void check_lookupThrows_isAnswered503() throws Exception {
    KeyLookup broken =
        new KeyLookup() {
          @Override
          public Optional<KeyRecord> findByHash(KeyHash hash) {
            throw new IllegalStateException("database gone");
          }

          @Override
          public List<KeyRecord> findByIds(Collection<Long> ids) {
            return List.of();
          }
        };
    Authorizer authorizer =
        new Authorizer(
            new KeyCache(broken, LOADER, 100, Duration.ofSeconds(30)),
            new PendingUsage(),
            CLOCK,
            CheckRecorder.NONE);

    List<CheckResponse> answers = check(authorizer, request(Form.OPENAI_BEARER, ACTIVE));

    assertThat(answers).hasSize(1);
    assertThat(answers.get(0).getDeniedResponse().getStatus().getCodeValue()).isEqualTo(503);
    assertThat(answers.get(0).getDeniedResponse().getBody()).contains("\"type\":\"server_error\"");
  }

  @Test
  void check_replyThrowsOnTheFastPath_isNotAnsweredTwice() throws Exception {
    Authorizer authorizer =
        new Authorizer(
            new KeyCache(keys(), LOADER, 100, Duration.ofSeconds(30)),
            new PendingUsage(),
            CLOCK,
            CheckRecorder.NONE);
    List<CheckResponse> answers = new CopyOnWriteArrayList<>();

    authorizer.check(
        request(Form.OPENAI_BEARER, "bad key with spaces"),
        0,
        r -> {
          answers.add(r.response());
          throw new IllegalStateException("transport closed");
        });

    assertThat(answers).hasSize(1);
    assertThat(answers.get(0).getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
  }
}
