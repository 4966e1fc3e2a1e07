package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ProviderRouteTest {

  @ParameterizedTest
  @CsvSource(nullValues = "-", value = {
      // method, path, provider, format, path model, adds stream usage
      "POST, /v1/chat/completions, OPENAI, OPENAI, -, true",
      "POST, /v1/completions, OPENAI, OPENAI, -, true",
      "POST, /v1/responses, OPENAI, OPENAI, -, false",
      "POST, /v1/embeddings, OPENAI, OPENAI, -, false",
      "POST, /v1/messages, ANTHROPIC, ANTHROPIC, -, false",
      "POST, /v1/messages?beta=true, ANTHROPIC, ANTHROPIC, -, false",
      "POST, /v1beta/models/gemini-2.5-flash:generateContent, GEMINI, GEMINI, gemini-2.5-flash, false",
      "POST, /v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=k, GEMINI, GEMINI, gemini-2.5-pro, false",
      "POST, /v1beta/openai/chat/completions, GEMINI, OPENAI, -, true",
  })
  void of_meteredPath_givesRoute(String method, String path, Provider provider,
      UsageFormat format, String model, boolean addsStreamUsage) {
    ProviderRoute r = ProviderRoute.of(method, path).orElseThrow();
    assertThat(r.provider()).isEqualTo(provider);
    assertThat(r.format()).isEqualTo(format);
    assertThat(r.pathModel().orElse(null)).isEqualTo(model);
    assertThat(r.addsStreamUsage()).isEqualTo(addsStreamUsage);
  }

  @ParameterizedTest
  @CsvSource(nullValues = "-", value = {
      "GET, /v1/responses/resp_123",
      "GET, /v1/models",
      "POST, /healthz",
      "POST, /v2/chat",
      "POST, -",
      "-, /v1/chat/completions",
  })
  void of_otherRequest_isNotMetered(String method, String path) {
    assertThat(ProviderRoute.of(method, path)).isEmpty();
  }
}
