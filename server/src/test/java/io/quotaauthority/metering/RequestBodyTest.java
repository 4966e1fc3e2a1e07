package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RequestBodyTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void inspect_chatRequest_readsModelAndStream() {
    RequestBody b = RequestBody.inspect(utf8(
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"gpt-4o\",\"stream\":true}"));
    assertThat(b.model()).contains("gpt-4o");
    assertThat(b.stream()).isTrue();
    assertThat(b.needsIncludeUsage()).isTrue();
  }

  @Test
  void inspect_includeUsageAlreadyTrue_needsNothing() {
    RequestBody b = RequestBody.inspect(utf8(
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"));
    assertThat(b.needsIncludeUsage()).isFalse();
  }

  @Test
  void inspect_notStreaming_needsNothing() {
    assertThat(RequestBody.inspect(utf8("{\"model\":\"gpt-4o\",\"stream\":false}")).needsIncludeUsage())
        .isFalse();
    assertThat(RequestBody.inspect(utf8("{\"model\":\"gpt-4o\"}")).needsIncludeUsage()).isFalse();
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "not json", "[1,2]", "{\"model\":\"x\",\"stream\":true",
      "{\"model\":\"x\",\"stream\":true} trailing", "{\"stream\":true,\"stream\":true}"})
  void inspect_notOneJsonObject_isLeftAlone(String body) {
    RequestBody b = RequestBody.inspect(utf8(body));
    assertThat(b.isJsonObject()).isFalse();
    assertThat(b.needsIncludeUsage()).isFalse();
  }

  @Test
  void withIncludeUsage_noStreamOptions_insertsMemberKeepingOtherBytes() throws Exception {
    String body = "  {\"model\":\"gpt-4o\", \"temperature\": 1.0, \"stream\": true,"
        + " \"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9 ☕\"}]}\n";
    RequestBody b = RequestBody.inspect(utf8(body));
    String out = new String(b.withIncludeUsage(utf8(body)), StandardCharsets.UTF_8);
    assertThat(out).isEqualTo("  {\"stream_options\":{\"include_usage\":true},\"model\":\"gpt-4o\","
        + " \"temperature\": 1.0, \"stream\": true,"
        + " \"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9 ☕\"}]}\n");
    assertThat(JSON.readTree(out).at("/stream_options/include_usage").asBoolean()).isTrue();
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":false},\"temperature\":0.70}",
      "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{},\"temperature\":0.70}",
      "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":null,\"temperature\":0.70}",
      "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"x\":[1,{\"y\":2}]},\"temperature\":0.70}"})
  void withIncludeUsage_existingStreamOptions_setsIncludeUsageKeepingTheRest(String body)
      throws Exception {
    RequestBody b = RequestBody.inspect(utf8(body));
    assertThat(b.needsIncludeUsage()).isTrue();
    byte[] out = b.withIncludeUsage(utf8(body));
    JsonNode tree = JSON.readTree(out);
    assertThat(tree.at("/stream_options/include_usage").asBoolean()).isTrue();
    assertThat(tree.get("model").asText()).isEqualTo("gpt-4o");
    // number text kept as sent, not re-rendered from a double
    assertThat(new String(out, StandardCharsets.UTF_8)).contains("\"temperature\":0.70");
    JsonNode original = JSON.readTree(body);
    assertThat(tree.size()).isEqualTo(original.size());
  }
}
