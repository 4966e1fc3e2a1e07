package io.quotaauthority.provider;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

class ProviderErrorTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void modelNotPriced_openAi_hasOpenAisErrorShape() throws Exception {
    JsonNode e =
        JSON.readTree(ProviderError.modelNotPriced("gpt-9").body(Provider.OPENAI)).get("error");

    assertThat(e.get("code").asText()).isEqualTo("model_not_priced");
    assertThat(e.get("type").asText()).isEqualTo("invalid_request_error");
    assertThat(e.get("param").isNull()).isTrue();
    assertThat(e.get("message").asText()).contains("'gpt-9'");
  }

  @Test
  void modelNotPriced_anthropic_hasAnthropicsErrorShape() throws Exception {
    JsonNode root =
        JSON.readTree(ProviderError.modelNotPriced("claude-x").body(Provider.ANTHROPIC));

    assertThat(root.get("type").asText()).isEqualTo("error");
    assertThat(root.at("/error/type").asText()).isEqualTo("permission_error");
    assertThat(root.at("/error/message").asText())
        .contains("'claude-x'")
        .endsWith("(model_not_priced)");
  }

  @Test
  void endpointNotMetered_gemini_hasGooglesErrorShape() throws Exception {
    JsonNode e =
        JSON.readTree(ProviderError.endpointNotMetered("the Batch API").body(Provider.GEMINI))
            .get("error");

    assertThat(e.get("code").asInt()).isEqualTo(403);
    assertThat(e.get("status").asText()).isEqualTo("PERMISSION_DENIED");
    assertThat(e.get("message").asText())
        .contains("the Batch API")
        .endsWith("(endpoint_not_metered)");
  }

  @Test
  void body_noProvider_isThePlainShape() throws Exception {
    JsonNode e = JSON.readTree(ProviderError.endpointNotMetered("x").body(null)).get("error");

    assertThat(e.get("code").asText()).isEqualTo("endpoint_not_metered");
    assertThat(e.size()).isEqualTo(2);
  }

  @Test
  void body_modelWithQuotesAndNewlines_isStillOneValidJsonDocument() throws Exception {
    String hostile = "m\"},\"x\":{\"y\n\u0000";

    JsonNode e =
        JSON.readTree(ProviderError.modelNotPriced(hostile).body(Provider.OPENAI)).get("error");

    assertThat(e.get("message").asText()).contains(hostile);
    assertThat(e.size()).isEqualTo(4);
  }

  @Test
  void limited_onlyTheExactFalseMeansUnlimited() {
    assertThat(GatewayHeaders.limited("false")).isFalse();
    assertThat(GatewayHeaders.limited("true")).isTrue();
    assertThat(GatewayHeaders.limited(null)).isTrue();
    assertThat(GatewayHeaders.limited("FALSE")).isTrue();
    assertThat(GatewayHeaders.limited("")).isTrue();
  }
}
