package io.quotaauthority.provider;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ProviderClassifierTest {

  @ParameterizedTest(name = "hint {0}, {1}, anthropic-version {2} -> {3}")
  @CsvSource(
      nullValues = "-",
      value = {
        // hint, path, anthropic-version header, provider (- = none: the plain error shape, not
        // metered)
        // Gemini's stable surface shares /v1/ with OpenAI: its model methods decide (issue 13).
        "-, /v1/models/x:generateContent, false, GEMINI",
        "-, /v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=k, false, GEMINI",
        "-, /v1/models/text-embedding-004:embedContent, false, GEMINI",
        "-, /v1beta/models/x:streamGenerateContent, false, GEMINI",
        "-, /v1beta/models/x:streamGenerateContent?alt=sse, false, GEMINI",
        "-, /v1beta/openai/chat/completions, false, GEMINI",
        "-, /upload/v1beta/files, false, GEMINI",
        "-, /v1/messages, false, ANTHROPIC",
        "-, /v1/messages?beta=true, false, ANTHROPIC",
        "-, /v1/messages/count_tokens, false, ANTHROPIC",
        "-, /v1/messages/batches, false, ANTHROPIC",
        "-, /v1/complete, true, ANTHROPIC",
        "-, /v1/models, true, ANTHROPIC",
        "-, /v1/chat/completions, false, OPENAI",
        "-, /v1/models, false, OPENAI",
        "-, /v1/responses, false, OPENAI",
        // OpenAI fine-tune ids hold colons, but no Gemini method follows them
        "-, /v1/models/ft:gpt-4o-mini:acme::abc, false, OPENAI",
        "-, /v1/models/ft:davinci, false, OPENAI",
        "-, /v1/models/davinci:ft-acme-2023-01-01, false, OPENAI",
        // a path that only looks like one of ours
        "-, /v1/messagesx, false, OPENAI",
        "-, /v2/chat, false, -",
        "-, /healthz, false, -",
        "-, /, false, -",
        "-, -, false, -",
        // the route's hint wins, whatever its case
        "gemini, /v1/chat/completions, false, GEMINI",
        "Gemini, /custom/path, false, GEMINI",
        "OPENAI, /v1beta/models/x:generateContent, false, OPENAI",
        "OpenAI, /v1/messages, true, OPENAI",
        "anthropic, /v1/chat/completions, false, ANTHROPIC",
        "ANTHROPIC, -, false, ANTHROPIC",
        // an unknown or empty hint is ignored: the path decides
        "azure, /v1/messages, false, ANTHROPIC",
        "azure, /v1/models/x:generateContent, false, GEMINI",
        "'', /v1/chat/completions, false, OPENAI",
        "bedrock, /healthz, false, -",
      })
  void classify_hintAndPath_givesProvider(
      String hint, String path, boolean anthropicVersion, Provider expected) {
    assertThat(ProviderClassifier.classify(hint, path, anthropicVersion)).isEqualTo(expected);
  }

  @ParameterizedTest(name = "{0} -> {1}")
  @CsvSource(
      nullValues = "-",
      value = {
        "gemini, GEMINI",
        "GEMINI, GEMINI",
        "' openai ', OPENAI",
        "Anthropic, ANTHROPIC",
        "gemini-pro, -",
        "'', -",
        "-, -",
      })
  void named_anyCase_givesProviderOrNull(String name, Provider expected) {
    assertThat(Provider.named(name)).isEqualTo(expected);
  }
}
