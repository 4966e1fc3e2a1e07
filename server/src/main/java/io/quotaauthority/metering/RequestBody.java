package io.quotaauthority.metering;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;

/**
 * What metering needs from a buffered request body (the model, the {@code stream} flag, the output
 * limit and number of choices for {@link MaxCost}, and, when asked, the prompt's text and image or
 * file parts for the estimates), and the rewrite that asks an OpenAI stream to report its usage.
 * Anything that is not one well-formed JSON object (with no duplicate keys) within {@link
 * #CONSTRAINTS} is left alone.
 *
 * <p>The body is parsed once, token by token, from the request's own bytes (no copy, no tree);
 * values that do not matter are skipped without being materialised. The rewrite touches only the
 * stream_options value and hands back a rope over the original bytes. Memory is therefore the body
 * itself plus one string token at a time, whatever the body holds (10 million empty objects, a
 * base64 image, 100,000 levels of nesting: the last is refused at {@link #MAX_DEPTH}).
 */
final class RequestBody {

  /** Deeper than any real chat request (tool schemas nest a dozen levels); refused past this. */
  static final int MAX_DEPTH = 128;

  /**
   * One string may be a whole base64 image, so strings may be as long as the largest body the
   * metering listener takes; the message limit is the bound that matters. Jackson's default (20M
   * chars) would leave a legitimate 30 MiB image prompt unmetered.
   */
  static final int MAX_STRING_CHARS = 40 * 1024 * 1024;

  /** Jackson's default: no real number is longer, and a long one costs a parse per digit. */
  static final int MAX_NUMBER_CHARS = 1000;

  /** Field names are short in every API we meter; a long one is someone probing. */
  static final int MAX_NAME_CHARS = 10_000;

  static final StreamReadConstraints CONSTRAINTS =
      StreamReadConstraints.builder()
          .maxNestingDepth(MAX_DEPTH)
          .maxStringLength(MAX_STRING_CHARS)
          .maxNumberLength(MAX_NUMBER_CHARS)
          .maxNameLength(MAX_NAME_CHARS)
          .build();

  private static final JsonFactory JSON =
      JsonFactory.builder()
          // A body with a key twice means different things to different parsers (the provider might
          // read the other "stream"): such a body is never rewritten.
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .streamReadConstraints(CONSTRAINTS)
          .build();
  private static final ByteString STREAM_OPTIONS =
      ByteString.copyFrom(
          "\"stream_options\":{\"include_usage\":true},", StandardCharsets.US_ASCII);

  /**
   * The largest output limit taken from a request: above it (a billion tokens, ten thousand times
   * any model's maximum output) the value is hostile or a mistake and is read as absent, so the
   * model's own maximum bounds the estimate instead.
   */
  static final long MAX_OUTPUT_LIMIT = 1_000_000_000L;

  /** OpenAI's largest {@code n} (choices per request); a larger one is refused by the provider. */
  static final int MAX_CHOICES = 128;

  /**
   * The request's output-limit fields, every supported API's: OpenAI Chat's {@code max_tokens}
   * (legacy) and {@code max_completion_tokens}, OpenAI Responses' {@code max_output_tokens},
   * Anthropic's required {@code max_tokens}. Gemini's {@code generationConfig.maxOutputTokens} is
   * nested and read by {@link #generationConfig}.
   */
  private static final Set<String> OUTPUT_LIMIT_FIELDS =
      Set.of("max_tokens", "max_completion_tokens", "max_output_tokens");

  /** Room for ',"include_usage":true' added to an options object. */
  private static final int INCLUDE_USAGE_BYTES = 24;

  /** Why a body was not read; counted in {@code quota_metering_unread_bodies_total{reason}}. */
  enum Unread {
    /** Not one JSON object (empty, not JSON, an array, truncated, trailing bytes). */
    NOT_JSON,
    /** Nested deeper than {@link #MAX_DEPTH}. */
    TOO_DEEP,
    /** A string, number or name longer than its limit. */
    TOO_LONG,
    /** An object with the same key twice. */
    DUPLICATE_KEY;

    String tag() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** For a client's error: what is wrong with its body. */
    String describe() {
      return switch (this) {
        case NOT_JSON -> "the request body is not one JSON object";
        case TOO_DEEP -> "the request body is nested deeper than " + MAX_DEPTH;
        case TOO_LONG -> "the request body has a value longer than its limit";
        case DUPLICATE_KEY -> "the request body has a duplicate key";
      };
    }
  }

  private final String model;
  private final boolean stream;

  /** OpenAI Responses' "background": true: the answer comes later, on a GET. */
  private final boolean background;

  private final boolean includeUsage;
  private final boolean hasStreamOptions;

  /** Byte offset of the top-level '{', or -1 when the body was not read. */
  private final long objectStart;

  /** Byte offsets of the stream_options value: its first byte, and just past its last. */
  private final long optionsStart;

  private final long optionsEnd;
  private final Unread unread;

  /** OpenAI's top-level service_tier (flex, priority, ...), lower-cased; null when absent. */
  private final String serviceTier;

  /** The largest valid output limit the request states, or -1 when it states none. */
  private final long outputLimit;

  /** Choices asked for (OpenAI {@code n}, Gemini {@code candidateCount}); 1 unless valid. */
  private final int choices;

  private RequestBody(
      String model,
      boolean stream,
      boolean background,
      boolean includeUsage,
      boolean hasStreamOptions,
      long objectStart,
      long optionsStart,
      long optionsEnd,
      Unread unread,
      String serviceTier,
      long outputLimit,
      int choices) {
    this.serviceTier = serviceTier;
    this.outputLimit = outputLimit;
    this.choices = choices;
    this.model = model;
    this.stream = stream;
    this.background = background;
    this.includeUsage = includeUsage;
    this.hasStreamOptions = hasStreamOptions;
    this.objectStart = objectStart;
    this.optionsStart = optionsStart;
    this.optionsEnd = optionsEnd;
    this.unread = unread;
  }

  private static RequestBody unread(Unread why) {
    return new RequestBody(null, false, false, false, false, -1, -1, -1, why, null, -1, 1);
  }

  /** Top-level fields that hold the prompt's text (every supported API's names). */
  private static final Set<String> PROMPT_FIELDS =
      Set.of(
          "messages",
          "input",
          "prompt",
          "system",
          "instructions",
          "contents",
          "systemInstruction",
          "system_instruction");

  /** Top-level fields holding one message each per array element. */
  private static final Set<String> MESSAGE_LISTS = Set.of("messages", "input", "contents");

  /** Top-level fields of tool definitions, counted by the byte length of their JSON. */
  private static final Set<String> TOOL_FIELDS = Set.of("tools", "functions");

  /**
   * Inside a message, the fields whose strings are text the model reads (content parts, tool
   * results, earlier reasoning and tool-call arguments). Anything else (role, type, ids, image
   * URLs, base64 data, signatures) is skipped as text; an image or file part is counted by {@link
   * #MEDIA_FIELDS}.
   */
  private static final Set<String> TEXT_FIELDS =
      Set.of("text", "content", "parts", "thinking", "arguments", "output", "refusal", "summary");

  /**
   * Field names that make the object holding them one image, file or audio part, counted once per
   * object ({@link TokenEstimate.Prompt#media}): OpenAI Chat's {@code image_url}, {@code file} and
   * {@code input_audio} parts; OpenAI Responses' {@code input_image} ({@code image_url} or {@code
   * file_id}) and {@code input_file} ({@code file_id}, {@code file_data}, {@code file_url}) parts;
   * Anthropic's image and document blocks ({@code source}); Gemini's {@code inline_data} and {@code
   * file_data} parts (either spelling). The base64 or URL itself is skipped unread.
   */
  private static final Set<String> MEDIA_FIELDS =
      Set.of(
          "image_url",
          "file",
          "input_audio",
          "file_id",
          "file_data",
          "file_url",
          "source",
          "inline_data",
          "inlineData",
          "fileData");

  static RequestBody inspect(byte[] body) {
    return inspect(UnsafeByteOperations.unsafeWrap(body));
  }

  /** Reads the top-level fields; never throws (a body that is not a JSON object has none). */
  static RequestBody inspect(ByteString body) {
    return inspect(body, null);
  }

  /**
   * Reads the top-level fields and, when {@code prompt} is given, gathers the prompt's text into it
   * in the same pass (for the estimate a stream cut short is charged; see TokenEstimate). Never
   * throws.
   */
  static RequestBody inspect(ByteString body, TokenEstimate.Prompt prompt) {
    // newInput reads the message's own bytes: no copy of the body is made to parse it.
    try (JsonParser p = JSON.createParser(body.newInput())) {
      if (p.nextToken() != JsonToken.START_OBJECT) {
        return unread(Unread.NOT_JSON);
      }
      long start = p.currentTokenLocation().getByteOffset();
      String model = null;
      String serviceTier = null;
      boolean stream = false;
      boolean background = false;
      boolean includeUsage = false;
      boolean hasStreamOptions = false;
      long optionsStart = -1;
      long optionsEnd = -1;
      long outputLimit = -1;
      int choices = 1;
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String name = p.currentName();
        JsonToken value = p.nextToken();
        switch (name) {
          case "model" -> model = value == JsonToken.VALUE_STRING ? p.getText() : null;
          case "stream" -> stream = value == JsonToken.VALUE_TRUE;
          case "background" -> background = value == JsonToken.VALUE_TRUE;
          case "service_tier" ->
              serviceTier =
                  value == JsonToken.VALUE_STRING ? p.getText().toLowerCase(Locale.ROOT) : null;
          case "max_tokens", "max_completion_tokens", "max_output_tokens" ->
              // Two limits in one body (max_tokens and max_completion_tokens): the larger holds.
              outputLimit = Math.max(outputLimit, whole(p, MAX_OUTPUT_LIMIT));
          case "n" -> choices = (int) Math.max(1, whole(p, MAX_CHOICES));
          case "generationConfig", "generation_config" -> {
            long[] limitAndChoices = generationConfig(p);
            outputLimit = Math.max(outputLimit, limitAndChoices[0]);
            choices = (int) Math.max(choices, limitAndChoices[1]);
          }
          case "stream_options" -> {
            hasStreamOptions = true;
            optionsStart = p.currentTokenLocation().getByteOffset();
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
            // Just past the value's last byte ('}', ']', or the end of a scalar).
            optionsEnd = p.currentLocation().getByteOffset();
          }
          // Skipped values are never materialised, but still checked: depth, duplicates, syntax.
          default -> {
            if (prompt != null && PROMPT_FIELDS.contains(name)) {
              promptText(p, prompt, MESSAGE_LISTS.contains(name));
            } else if (prompt != null && TOOL_FIELDS.contains(name)) {
              long from = p.currentTokenLocation().getByteOffset();
              p.skipChildren();
              prompt.json(p.currentLocation().getByteOffset() - from);
            } else {
              p.skipChildren();
            }
          }
        }
      }
      if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
        return unread(Unread.NOT_JSON);
      }
      return new RequestBody(
          model,
          stream,
          background,
          includeUsage,
          hasStreamOptions,
          start,
          optionsStart,
          optionsEnd,
          null,
          serviceTier,
          outputLimit,
          choices);
    } catch (StreamConstraintsException e) {
      // Jackson names the limit only in its message; RequestBodyTest pins both texts.
      String m = String.valueOf(e.getMessage()).toLowerCase(Locale.ROOT);
      return unread(m.contains("nesting depth") ? Unread.TOO_DEEP : Unread.TOO_LONG);
    } catch (JsonParseException e) {
      return unread(
          String.valueOf(e.getMessage()).startsWith("Duplicate field")
              ? Unread.DUPLICATE_KEY
              : Unread.NOT_JSON);
    } catch (IOException | RuntimeException e) {
      return unread(Unread.NOT_JSON);
    }
  }

  /**
   * The integer at the parser's current token when it is a whole number from 1 to {@code max}, else
   * -1: a negative, zero, fractional ({@code 100.0}, {@code 1e3}), quoted, null or larger value is
   * invalid and read as absent (the provider refuses most of them; either way the model's maximum
   * then bounds the estimate, which is never lower). Skips a non-scalar value.
   */
  private static long whole(JsonParser p, long max) throws IOException {
    if (p.currentToken() != JsonToken.VALUE_NUMBER_INT) {
      p.skipChildren();
      return -1;
    }
    // BIG_INTEGER past a long: getLongValue would throw; such a value is past max anyway.
    if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
      return -1;
    }
    long v = p.getLongValue();
    return v >= 1 && v <= max ? v : -1;
  }

  /**
   * Gemini's generationConfig object, the parser on its first token: its {@code maxOutputTokens}
   * and {@code candidateCount} (either spelling), each -1 when absent or invalid; everything else
   * skipped, token by token, as the top level is (no buffering).
   */
  private static long[] generationConfig(JsonParser p) throws IOException {
    long[] limitAndChoices = {-1, -1};
    if (p.currentToken() != JsonToken.START_OBJECT) {
      p.skipChildren();
      return limitAndChoices;
    }
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String name = p.currentName();
      p.nextToken();
      switch (name) {
        case "maxOutputTokens", "max_output_tokens" ->
            limitAndChoices[0] = Math.max(limitAndChoices[0], whole(p, MAX_OUTPUT_LIMIT));
        case "candidateCount", "candidate_count" ->
            limitAndChoices[1] = Math.max(limitAndChoices[1], whole(p, MAX_CHOICES));
        default -> p.skipChildren();
      }
    }
    return limitAndChoices;
  }

  /**
   * A top-level prompt field's value, the parser on its first token: a string is text; an array's
   * strings are text and its objects are read by {@link #textIn}; with {@code messageList} each
   * element is one message.
   */
  private static void promptText(JsonParser p, TokenEstimate.Prompt prompt, boolean messageList)
      throws IOException {
    JsonToken t = p.currentToken();
    if (t == JsonToken.VALUE_STRING) {
      prompt.text(p.getTextCharacters(), p.getTextOffset(), p.getTextLength());
      if (messageList) {
        prompt.message(); // "input": "..." is one user message
      }
    } else if (t == JsonToken.START_ARRAY) {
      JsonToken e;
      while ((e = p.nextToken()) != JsonToken.END_ARRAY && e != null) {
        if (messageList) {
          prompt.message();
        }
        textIn(p, prompt, true);
      }
    } else if (t == JsonToken.START_OBJECT) {
      textIn(p, prompt, false);
    } else {
      p.skipChildren();
    }
  }

  /**
   * The text in the value at the parser's current token: a string counts when {@code isText} (it
   * sits under a text field or in a text array); in an object only {@link #TEXT_FIELDS} are read,
   * the rest skipped. Recursion is bounded by the parser's {@link #MAX_DEPTH}.
   */
  private static void textIn(JsonParser p, TokenEstimate.Prompt prompt, boolean isText)
      throws IOException {
    JsonToken t = p.currentToken();
    if (t == JsonToken.VALUE_STRING) {
      if (isText) {
        // The parser's own buffer: no String is made for the (possibly long) text.
        prompt.text(p.getTextCharacters(), p.getTextOffset(), p.getTextLength());
      }
    } else if (t == JsonToken.START_ARRAY) {
      JsonToken e;
      while ((e = p.nextToken()) != JsonToken.END_ARRAY && e != null) {
        textIn(p, prompt, isText);
      }
    } else if (t == JsonToken.START_OBJECT) {
      boolean media = false;
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String name = p.currentName();
        boolean text = TEXT_FIELDS.contains(name);
        media |= MEDIA_FIELDS.contains(name);
        p.nextToken();
        if (text) {
          textIn(p, prompt, true);
        } else {
          p.skipChildren();
        }
      }
      if (media) {
        prompt.media(); // one part, however many of its fields name the image or file
      }
    }
  }

  boolean isJsonObject() {
    return objectStart >= 0;
  }

  /** Why the body was not read: empty for a JSON object within the limits. */
  Optional<Unread> unread() {
    return Optional.ofNullable(unread);
  }

  Optional<String> model() {
    return Optional.ofNullable(model).filter(m -> !m.isBlank());
  }

  boolean stream() {
    return stream;
  }

  /** {@code "background": true} at the top level (OpenAI Responses: usage only on a later GET). */
  boolean background() {
    return background;
  }

  /** The service tier the request asks for (OpenAI's service_tier), lower-cased. */
  Optional<String> serviceTier() {
    return Optional.ofNullable(serviceTier);
  }

  /**
   * The output limit the request states (see {@link #OUTPUT_LIMIT_FIELDS}; the larger when it
   * states two), or empty when it states none that is a whole number from 1 to {@link
   * #MAX_OUTPUT_LIMIT}. A body that was not read has none.
   */
  OptionalLong outputLimit() {
    return outputLimit > 0 ? OptionalLong.of(outputLimit) : OptionalLong.empty();
  }

  /**
   * How many responses the request asks for (OpenAI's {@code n}, Gemini's {@code candidateCount}):
   * each may use the whole output limit. 1 when absent or not a whole number from 1 to {@link
   * #MAX_CHOICES}.
   */
  int choices() {
    return choices;
  }

  /** True for a stream whose usage would not be reported unless we ask for it. */
  boolean needsIncludeUsage() {
    return isJsonObject() && stream && !includeUsage;
  }

  byte[] withIncludeUsage(byte[] body) throws IOException {
    return withIncludeUsage(UnsafeByteOperations.unsafeWrap(body)).toByteArray();
  }

  /**
   * The body with {@code stream_options.include_usage} set to true, every byte outside
   * stream_options exactly as the client sent it, and nothing copied: the answer is a rope over the
   * original bytes. Without stream_options the member is inserted right after the opening brace.
   * Otherwise only the stream_options value (located by the inspecting pass) is rewritten, by
   * copying its tokens to a generator and changing include_usage alone (in place if present, else
   * appended): so the body is parsed once, whatever its size, and the work and memory of the
   * rewrite are those of the options object.
   */
  ByteString withIncludeUsage(ByteString body) throws IOException {
    if (!hasStreamOptions) {
      int at = Math.toIntExact(objectStart) + 1;
      return body.substring(0, at).concat(STREAM_OPTIONS).concat(body.substring(at));
    }
    int start = Math.toIntExact(optionsStart);
    int end = Math.toIntExact(optionsEnd);
    ByteString options = body.substring(start, end);
    Output out = new Output(options.size() + INCLUDE_USAGE_BYTES);
    try (JsonParser p = JSON.createParser(options.newInput());
        JsonGenerator g = JSON.createGenerator(out, JsonEncoding.UTF8)) {
      rewriteOptions(p, g);
    }
    return body.substring(0, start).concat(out.toByteString()).concat(body.substring(end));
  }

  /** The stream_options value (any JSON value) as an object with include_usage true. */
  private static void rewriteOptions(JsonParser p, JsonGenerator g) throws IOException {
    JsonToken first = p.nextToken();
    g.writeStartObject();
    boolean written = false;
    if (first == JsonToken.START_OBJECT) {
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String option = p.currentName();
        p.nextToken();
        g.writeFieldName(option);
        if (option.equals("include_usage")) {
          p.skipChildren(); // whatever it was (false, null, an object): now true, in place
          g.writeBoolean(true);
          written = true;
        } else {
          copyValue(p, g);
        }
      }
    }
    // stream_options: null (or any non-object) becomes an object holding only include_usage.
    if (!written) {
      g.writeBooleanField("include_usage", true);
    }
    g.writeEndObject();
  }

  /**
   * Copies the value at the parser's current token, whole. Not Jackson's copyCurrentStructure: that
   * re-renders a float through double (0.70 would become 0.7); numbers are copied as text.
   */
  private static void copyValue(JsonParser p, JsonGenerator g) throws IOException {
    int depth = 0;
    do {
      JsonToken t = p.currentToken();
      if (t == null) {
        throw new IOException("body ended inside a value");
      }
      switch (t) {
        case START_OBJECT -> {
          g.writeStartObject();
          depth++;
        }
        case START_ARRAY -> {
          g.writeStartArray();
          depth++;
        }
        case END_OBJECT -> {
          g.writeEndObject();
          depth--;
        }
        case END_ARRAY -> {
          g.writeEndArray();
          depth--;
        }
        case FIELD_NAME -> g.writeFieldName(p.currentName());
        // The parser's own char buffer: no String is made for a (possibly huge) value.
        case VALUE_STRING ->
            g.writeString(p.getTextCharacters(), p.getTextOffset(), p.getTextLength());
        // The number's text exactly as sent; it was validated (and length-limited) by the parser.
        case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> g.writeNumber(p.getText());
        case VALUE_TRUE -> g.writeBoolean(true);
        case VALUE_FALSE -> g.writeBoolean(false);
        case VALUE_NULL -> g.writeNull();
        default -> throw new IOException("unexpected token " + t);
      }
    } while (depth > 0 && p.nextToken() != null);
    if (depth > 0) {
      throw new IOException("body ended inside a value");
    }
  }

  /** A byte buffer handed to protobuf without the copy ByteArrayOutputStream.toByteArray makes. */
  private static final class Output extends ByteArrayOutputStream {
    Output(int size) {
      super(size);
    }

    ByteString toByteString() {
      // The buffer is never written again once wrapped, which is what unsafeWrap requires.
      return UnsafeByteOperations.unsafeWrap(buf, 0, count);
    }
  }
}
