package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.provider.Provider;
import io.quotaauthority.testing.EnvoyChecks;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class KeyExtractorTest {

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(
            "bearer", EnvoyChecks.post("/v1/chat/completions").bearer("sk-a"), "sk-a", false),
        Arguments.of(
            "scheme case-insensitive",
            EnvoyChecks.post("/v1/x").header("authorization", "BEARER sk-b"),
            "sk-b",
            false),
        Arguments.of(
            "bearer wins over x-api-key",
            EnvoyChecks.post("/v1/x").bearer("sk-c").header("x-api-key", "sk-other"),
            "sk-c",
            false),
        Arguments.of(
            "basic auth is not a key; x-api-key next",
            EnvoyChecks.post("/v1/x")
                .header("authorization", "Basic Zm9v")
                .header("x-api-key", "sk-d"),
            "sk-d",
            false),
        Arguments.of(
            "empty bearer falls through",
            EnvoyChecks.post("/v1/x")
                .header("authorization", "Bearer   ")
                .header("x-goog-api-key", "sk-e"),
            "sk-e",
            false),
        Arguments.of(
            "x-api-key before x-goog-api-key",
            EnvoyChecks.post("/v1/x").header("x-api-key", "sk-f").header("x-goog-api-key", "sk-g"),
            "sk-f",
            false),
        Arguments.of(
            "gemini query key",
            EnvoyChecks.post("/v1beta/models/m:generateContent?key=sk-h&alt=sse"),
            "sk-h",
            true),
        Arguments.of(
            "gemini query key, url-encoded",
            EnvoyChecks.post("/v1beta/models/m:generateContent?alt=sse&key=sk%2Di"),
            "sk-i",
            true),
        Arguments.of(
            "query key ignored off /v1beta/",
            EnvoyChecks.post("/v1/chat/completions?key=sk-j"),
            null,
            false),
        Arguments.of(
            "similar parameter name is not key",
            EnvoyChecks.post("/v1beta/m?apikey=sk-k"),
            null,
            false),
        Arguments.of(
            "header beats query",
            EnvoyChecks.post("/v1beta/m?key=sk-l").header("x-goog-api-key", "sk-m"),
            "sk-m",
            false),
        Arguments.of(
            "stable gemini path",
            EnvoyChecks.post("/v1/models/gemini-2.5-flash:generateContent?key=sk-o"),
            "sk-o",
            true),
        Arguments.of(
            "openai fine-tune id has colons: no query key",
            EnvoyChecks.get("/v1/models/ft:gpt-4o-mini:acme::abc?key=sk-p"),
            null,
            false),
        Arguments.of(
            "gemini route by context extension",
            EnvoyChecks.post("/custom/path?key=sk-q").provider("gemini"),
            "sk-q",
            true),
        Arguments.of(
            "openai route by extension ignores query key",
            EnvoyChecks.post("/v1beta/x?key=sk-r").provider("openai"),
            null,
            false),
        Arguments.of(
            "header_map variant",
            EnvoyChecks.post("/v1/x").bearer("sk-n").rawHeaders(),
            "sk-n",
            false),
        Arguments.of("nothing", EnvoyChecks.post("/v1/x"), null, false));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void extract_envoyShapedRequest_findsKeyInOrder(
      String name, EnvoyChecks request, String secret, boolean fromQuery) {
    CheckFacts facts = facts(request);

    PresentedKey key = KeyExtractor.extract(facts, KeyExtractor.provider(facts));

    if (secret == null) {
      assertThat(key).isNull();
    } else {
      assertThat(key).isEqualTo(new PresentedKey(secret, fromQuery));
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("providers")
  void provider_envoyShapedRequest_readsHintPathAndHeader(
      String name, EnvoyChecks request, Provider expected) {
    assertThat(KeyExtractor.provider(facts(request))).isEqualTo(expected);
  }

  /** The request's facts, the same whether read from its bytes or from the parsed message. */
  private static CheckFacts facts(EnvoyChecks request) {
    CheckFacts parsed = CheckFacts.of(request.build());
    assertThat(CheckReader.read(request.build().toByteArray())).isEqualTo(parsed);
    return parsed;
  }

  static Stream<Arguments> providers() {
    return Stream.of(
        Arguments.of("path", EnvoyChecks.post("/v1/models/x:generateContent"), Provider.GEMINI),
        Arguments.of(
            "route hint, any case",
            EnvoyChecks.post("/v1/chat/completions").provider("Gemini"),
            Provider.GEMINI),
        Arguments.of(
            "unknown hint: path",
            EnvoyChecks.post("/v1/messages").provider("azure"),
            Provider.ANTHROPIC),
        Arguments.of(
            "anthropic-version header",
            EnvoyChecks.post("/v1/complete").header("anthropic-version", "2023-06-01"),
            Provider.ANTHROPIC),
        Arguments.of(
            "anthropic-version in header_map",
            EnvoyChecks.get("/v1/models").header("anthropic-version", "2023-06-01").rawHeaders(),
            Provider.ANTHROPIC),
        Arguments.of("no provider's path", EnvoyChecks.get("/healthz"), null));
  }
}
