package io.quotaauthority.metering;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * What metering needs from a buffered request body (the model and the {@code stream} flag), and
 * the rewrite that asks an OpenAI stream to report its usage. Anything that is not one well-formed
 * JSON object (with no duplicate keys) is left alone.
 */
final class RequestBody {

  private static final JsonFactory JSON = JsonFactory.builder()
      .enable(com.fasterxml.jackson.core.StreamReadFeature.STRICT_DUPLICATE_DETECTION)
      .build();
  // Floats as BigDecimal with their zeros kept, so a rewritten body carries "temperature": 1.0
  // and 0.1 exactly as sent, not as a double's rendering.
  private static final ObjectMapper TREE = JsonMapper.builder()
      .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
      .disable(JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES)
      .build();
  private static final byte[] STREAM_OPTIONS =
      "\"stream_options\":{\"include_usage\":true},".getBytes(StandardCharsets.US_ASCII);

  private static final RequestBody NOT_JSON = new RequestBody(null, false, false, false, -1);

  private final String model;
  private final boolean stream;
  private final boolean includeUsage;
  private final boolean hasStreamOptions;
  /** Byte offset of the top-level '{', or -1 when the body is not a JSON object. */
  private final long objectStart;

  private RequestBody(String model, boolean stream, boolean includeUsage,
      boolean hasStreamOptions, long objectStart) {
    this.model = model;
    this.stream = stream;
    this.includeUsage = includeUsage;
    this.hasStreamOptions = hasStreamOptions;
    this.objectStart = objectStart;
  }

  /** Reads the top-level fields; never throws (a body that is not a JSON object has none). */
  static RequestBody inspect(byte[] body) {
    try (JsonParser p = JSON.createParser(body)) {
      if (p.nextToken() != JsonToken.START_OBJECT) {
        return NOT_JSON;
      }
      long start = p.currentTokenLocation().getByteOffset();
      String model = null;
      boolean stream = false;
      boolean includeUsage = false;
      boolean hasStreamOptions = false;
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String name = p.currentName();
        JsonToken value = p.nextToken();
        switch (name) {
          case "model" -> model = value == JsonToken.VALUE_STRING ? p.getText() : null;
          case "stream" -> stream = value == JsonToken.VALUE_TRUE;
          case "stream_options" -> {
            hasStreamOptions = true;
            if (value == JsonToken.START_OBJECT) {
              while (p.nextToken() == JsonToken.FIELD_NAME) {
                String option = p.currentName();
                JsonToken v = p.nextToken();
                if (option.equals("include_usage")) {
                  includeUsage = v == JsonToken.VALUE_TRUE;
                }
                p.skipChildren();
              }
            } else {
              p.skipChildren();
            }
          }
          default -> p.skipChildren(); // values we skip are never materialised
        }
      }
      if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
        return NOT_JSON;
      }
      return new RequestBody(model, stream, includeUsage, hasStreamOptions, start);
    } catch (IOException | RuntimeException e) {
      return NOT_JSON;
    }
  }

  boolean isJsonObject() {
    return objectStart >= 0;
  }

  Optional<String> model() {
    return Optional.ofNullable(model).filter(m -> !m.isBlank());
  }

  boolean stream() {
    return stream;
  }

  /** True for a stream whose usage would not be reported unless we ask for it. */
  boolean needsIncludeUsage() {
    return isJsonObject() && stream && !includeUsage;
  }

  /**
   * The body with {@code stream_options.include_usage} set to true. When the body has no
   * stream_options the member is inserted right after the opening brace, leaving every other byte
   * as the client sent it; otherwise the object is rewritten through a tree (key order and number
   * text kept).
   */
  byte[] withIncludeUsage(byte[] body) throws IOException {
    if (!hasStreamOptions) {
      int at = Math.toIntExact(objectStart) + 1;
      byte[] out = new byte[body.length + STREAM_OPTIONS.length];
      System.arraycopy(body, 0, out, 0, at);
      System.arraycopy(STREAM_OPTIONS, 0, out, at, STREAM_OPTIONS.length);
      System.arraycopy(body, at, out, at + STREAM_OPTIONS.length, body.length - at);
      return out;
    }
    ObjectNode root = (ObjectNode) TREE.readTree(body);
    JsonNode options = root.get("stream_options");
    ObjectNode fixed = options instanceof ObjectNode o ? o : root.putObject("stream_options");
    fixed.put("include_usage", true);
    return TREE.writeValueAsBytes(root);
  }
}
