package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.provider.Provider;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ProviderRouteTest {

  @ParameterizedTest
  @CsvSource(
      nullValues = "-",
      value = {
        // method, path, anthropic-version, provider, format, path model, adds stream usage
        "POST, /v1/chat/completions, false, OPENAI, OPENAI, -, true",
        "POST, /v1/completions, false, OPENAI, OPENAI, -, true",
        "POST, /v1/responses, false, OPENAI, OPENAI, -, false",
        "POST, /v1/embeddings, false, OPENAI, OPENAI, -, false",
        "POST, /v1/messages, true, ANTHROPIC, ANTHROPIC, -, false",
        "POST, /v1/messages?beta=true, false, ANTHROPIC, ANTHROPIC, -, false",
        "POST, /v1beta/models/gemini-2.5-flash:generateContent, false, GEMINI, GEMINI, gemini-2.5-flash, false",
        "POST, /v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=k, false, GEMINI, GEMINI, gemini-2.5-pro, false",
        "POST, /v1/models/gemini-2.0-flash:generateContent, false, GEMINI, GEMINI, gemini-2.0-flash, false",
        "POST, /v1beta/openai/chat/completions, false, GEMINI, OPENAI, -, true",
        "POST, /v1/models/x:generateContent, false, GEMINI, GEMINI, x, false",
        "POST, /v1/chat/completions/, false, OPENAI, OPENAI, -, true",
      })
  void of_meteredRequest_givesRoute(
      String method,
      String path,
      boolean anthropicVersion,
      Provider provider,
      UsageFormat format,
      String model,
      boolean addsStreamUsage) {
    ProviderRoute r = ProviderRoute.of(method, path, anthropicVersion).orElseThrow();
    assertThat(r.provider()).isEqualTo(provider);
    assertThat(r.format()).isEqualTo(format);
    assertThat(r.pathModel().orElse(null)).isEqualTo(model);
    assertThat(r.addsStreamUsage()).isEqualTo(addsStreamUsage);
  }

  @ParameterizedTest
  @CsvSource(
      nullValues = "-",
      value = {
        "GET, /v1/responses/resp_123",
        "GET, /v1/models",
        "POST, /healthz",
        "POST, /v2/chat",
        "POST, -",
        "-, /v1/chat/completions",
        // Gemini's for Check (its ?key= is read), but a file upload carries no tokens
        "POST, /upload/v1beta/files?uploadType=resumable",
        // not METERED in provider.Endpoints: Check refuses them for keys with a quota
        "POST, /v1/complete",
        "POST, /v1/batches",
        "POST, /v1/audio/speech",
        "POST, /v1beta/models/text-embedding-004:embedContent",
        "POST, /v1/models/ft:gpt-4o-mini:acme::abc",
        "POST, /v1/files",
        "POST, /v1/messages/count_tokens",
      })
  void of_otherRequest_isNotMetered(String method, String path) {
    assertThat(ProviderRoute.of(method, path, false)).isEmpty();
  }
}
