package io.quotaauthority.metering;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A push scanner for JSON that arrives in chunks split at any byte, which reports the usage objects
 * and model names it passes and keeps nothing else. It never holds a string value (a response's
 * text, a base64 image) or a whole document: only the current nesting (one bit a level), the keys
 * of the first few levels, and the usage object being read, so its memory is the same for a 1 KiB
 * and a 1 GiB body. Splitting inside a multi-byte UTF-8 character is harmless because no byte of
 * one is ever a quote, backslash or bracket.
 *
 * <p>Usage objects are found wherever the supported providers put them, whatever the key order:
 * {@code usage}, {@code usageMetadata}, {@code response.usage} (OpenAI Responses stream events),
 * {@code message.usage} (Anthropic {@code message_start}), and {@code usageMetadata} in each
 * element of a top-level array (Gemini's JSON-array stream). Each is reported when it closes, as
 * its numeric leaves by dotted path ({@code "prompt_tokens_details.cached_tokens"}).
 *
 * <p>Anthropic's {@code usage.iterations[]} (one entry per billed sampling pass: compaction,
 * message, ...) is reported summed over its entries, each top-level count of an entry as {@code
 * "iterations.<field>"} ({@code "iterations.input_tokens"} = the sum of every entry's {@code
 * input_tokens}), so that {@link UsageFormat} can charge the passes the top-level counts leave out.
 *
 * <p>OpenAI's {@code service_tier} is reported too, at the top level and under {@code response}
 * (Responses stream events), so that a priority-served request is charged as such.
 *
 * <p>Malformed input stops the scan until {@link #reset()}; it never throws.
 */
final class JsonUsageScanner {

  /** What the scanner found. */
  interface Listener {
    /** A usage object closed; the map holds its whole-number leaves, at most two levels deep. */
    void usage(Map<String, Long> fields);

    /** A model name at one of the model paths (the response's own idea of the model). */
    void model(String model);

    /**
     * Generated text at one of the text paths, as UTF-8 with JSON escapes decoded, in pieces of at
     * most a few hundred bytes (a piece may end inside a character). Only for estimates.
     */
    default void text(byte[] utf8, int offset, int length) {}

    /** OpenAI's service_tier at one of the tier paths (the tier that served the request). */
    default void serviceTier(String tier) {}
  }

  /** Deeper documents are given up on, as Jackson does by default at 1000. */
  static final int MAX_DEPTH = 512;

  /** Keys are remembered for this many levels; every path we match is shallower. */
  private static final int KEY_DEPTH = 8;

  private static final int MAX_KEY_BYTES = 64;
  private static final int MAX_SCALAR_BYTES = 40;
  private static final int MAX_MODEL_BYTES = 200;
  private static final int MAX_USAGE_FIELDS = 32;

  /** A usage object's leaves are kept down to usage.a.b, enough for *_details.cached_tokens. */
  private static final int MAX_USAGE_NESTING = 2;

  private static final String ARRAY = "[]";

  /** The usage key whose array entries are summed, and the prefix their sums are reported under. */
  static final String ITERATIONS = "iterations";

  static final String ITERATIONS_PREFIX = ITERATIONS + ".";
  private static final String[][] USAGE_PATHS = {
    {"usage"},
    {"usageMetadata"},
    {"response", "usage"},
    {"message", "usage"},
    {ARRAY, "usage"},
    {ARRAY, "usageMetadata"}
  };

  /**
   * Where responses put the text they generate, streamed or whole: OpenAI chat deltas (content,
   * reasoning, refusals, tool-call arguments) and messages, legacy completions, the Responses API's
   * delta events (text, arguments, reasoning summaries), Anthropic text, thinking and tool-input
   * deltas and content blocks, Gemini candidate parts (SSE and JSON-array streams). Each path names
   * text that is new: no text is counted twice (a Responses "done" event's whole text, at "text",
   * is not on the list).
   */
  private static final String[][] TEXT_PATHS = {
    {"choices", ARRAY, "delta", "content"},
    {"choices", ARRAY, "delta", "reasoning_content"},
    {"choices", ARRAY, "delta", "refusal"},
    {"choices", ARRAY, "delta", "tool_calls", ARRAY, "function", "arguments"},
    {"choices", ARRAY, "message", "content"},
    {"choices", ARRAY, "text"},
    {"delta"},
    {"delta", "text"},
    {"delta", "thinking"},
    {"delta", "partial_json"},
    {"content", ARRAY, "text"},
    {"candidates", ARRAY, "content", "parts", ARRAY, "text"},
    {ARRAY, "candidates", ARRAY, "content", "parts", ARRAY, "text"}
  };

  /** Text is handed to the listener in pieces of this many bytes. */
  private static final int TEXT_PIECE = 128;

  private static final String[][] MODEL_PATHS = {
    {"model"},
    {"modelVersion"},
    {"response", "model"},
    {"message", "model"},
    {ARRAY, "modelVersion"}
  };

  /** OpenAI: top level (chat, responses, chat stream chunks) and response.* (responses stream). */
  private static final String[][] TIER_PATHS = {{"service_tier"}, {"response", "service_tier"}};

  private static final int VALUE = 0;
  private static final int VALUE_OR_ARRAY_END = 1;
  private static final int KEY_OR_OBJECT_END = 2;
  private static final int KEY = 3;
  private static final int COLON = 4;
  private static final int AFTER_VALUE = 5;
  private static final int STRING = 6;
  private static final int SCALAR = 7;
  private static final int FAILED = 8;

  private final Listener listener;
  private int state = VALUE;
  private int depth;

  /** Bit per level (1-based): set when that level is an array. */
  private final long[] arrayLevels = new long[MAX_DEPTH / 64 + 1];

  /** keys[i] is the current key of the object at level i + 1 (null if unknown or an array). */
  private final String[] keys = new String[KEY_DEPTH];

  private boolean stringIsKey;
  private boolean escaped;
  private boolean capturing;

  /** The string being captured is a service tier, not a model. */
  private boolean capturingTier;

  private boolean captureSpoiled;
  private int captureLimit;
  private final byte[] capture = new byte[MAX_MODEL_BYTES];
  private int captureLen;

  private final byte[] scalar = new byte[MAX_SCALAR_BYTES];
  private int scalarLen;
  private boolean scalarOverflow;

  /** Reading a string at a text path, handed to the listener decoded. */
  private boolean textString;

  /** Hex digits still to come of a backslash-u escape in text, and its value so far. */
  private int hexLeft;

  private int hexValue;

  /** A high surrogate from a backslash-u escape, waiting for its low half; 0 if none. */
  private char highSurrogate;

  private final byte[] text = new byte[TEXT_PIECE];
  private int textLen;

  /** Level of the usage object being read, 0 when outside one. */
  private int usageLevel;

  /** Whether that usage object sits at the top-level {@code usage} key. */
  private boolean usageAtTop;

  private boolean lastUsageAtTop;
  private final Map<String, Long> fields = new LinkedHashMap<>();

  /**
   * The leaves of the {@code usage.iterations[]} entry being read, added to fields when it closes.
   */
  private final Map<String, Long> iteration = new LinkedHashMap<>();

  JsonUsageScanner(Listener listener) {
    this.listener = listener;
  }

  /** Forgets everything, ready for a new document (the next SSE event). */
  void reset() {
    // Text of a string left open is still text the provider generated.
    flushText();
    textString = false;
    hexLeft = 0;
    highSurrogate = 0;
    state = VALUE;
    while (depth > 0) {
      setArray(depth, false);
      depth--;
    }
    Arrays.fill(keys, null);
    escaped = false;
    capturing = false;
    scalarLen = 0;
    usageLevel = 0;
    fields.clear();
    iteration.clear();
  }

  /** True once the input was found malformed; the rest up to {@link #reset()} is ignored. */
  boolean failed() {
    return state == FAILED;
  }

  /** Bytes held between chunks, for the memory bound: fixed buffers plus keys and usage fields. */
  int retainedBytes() {
    int n = arrayLevels.length * 8 + capture.length + scalar.length + text.length;
    for (String k : keys) {
      n += k == null ? 0 : k.length();
    }
    return n + (fields.size() + iteration.size()) * 64;
  }

  void feed(byte[] bytes, int offset, int length) {
    int end = offset + length;
    for (int i = offset; i < end; i++) {
      byte c = bytes[i];
      switch (state) {
        case FAILED:
          return;
        case STRING:
          if (textString) {
            textByte(c);
          } else {
            stringByte(c);
          }
          break;
        case SCALAR:
          if (c == ',' || c == '}' || c == ']' || isWhitespace(c)) {
            endScalar();
            structural(c);
          } else if (scalarLen < scalar.length) {
            scalar[scalarLen++] = c;
          } else {
            scalarOverflow = true;
          }
          break;
        default:
          structural(c);
      }
    }
  }

  private void stringByte(byte c) {
    if (escaped) {
      escaped = false;
      // Escapes are not decoded: a captured key or model containing one is dropped, which only
      // matters for names no provider escapes.
      captureSpoiled = true;
    } else if (c == '\\') {
      escaped = true;
    } else if (c == '"') {
      endString();
    } else if (capturing) {
      if (captureLen < captureLimit) {
        capture[captureLen++] = c;
      } else {
        captureSpoiled = true;
      }
    }
  }

  /** The input ended: text held back is handed on. */
  void end() {
    flushText();
  }

  /** True when the usage object reported last sat at the top-level {@code usage} key. */
  boolean lastUsageAtTop() {
    return lastUsageAtTop;
  }

  /** A byte of a text string: escapes decoded, the rest passed on as it is (UTF-8). */
  private void textByte(byte c) {
    if (hexLeft > 0) {
      int digit = Character.digit(c, 16);
      if (digit < 0) {
        hexLeft = 0; // malformed: dropped; the usage scan does not depend on text
        return;
      }
      hexValue = hexValue * 16 + digit;
      if (--hexLeft == 0) {
        codeUnit((char) hexValue);
      }
      return;
    }
    if (escaped) {
      escaped = false;
      switch (c) {
        case 'n' -> textChar('\n');
        case 't' -> textChar('\t');
        case 'r' -> textChar('\r');
        case 'b' -> textChar('\b');
        case 'f' -> textChar('\f');
        case 'u' -> {
          hexLeft = 4;
          hexValue = 0;
        }
        default -> textChar((char) (c & 0xFF)); // \" \\ \/
      }
    } else if (c == '\\') {
      escaped = true;
    } else if (c == '"') {
      dropSurrogate();
      flushText();
      textString = false;
      state = AFTER_VALUE;
    } else {
      dropSurrogate();
      putText(c);
    }
  }

  /** A UTF-16 code unit from a backslash-u escape; surrogate halves are paired. */
  private void codeUnit(char u) {
    if (Character.isHighSurrogate(u)) {
      dropSurrogate();
      highSurrogate = u;
    } else if (Character.isLowSurrogate(u) && highSurrogate != 0) {
      int cp = Character.toCodePoint(highSurrogate, u);
      highSurrogate = 0;
      putText((byte) (0xF0 | (cp >> 18)));
      putText((byte) (0x80 | ((cp >> 12) & 0x3F)));
      putText((byte) (0x80 | ((cp >> 6) & 0x3F)));
      putText((byte) (0x80 | (cp & 0x3F)));
    } else {
      textChar(Character.isSurrogate(u) ? '\uFFFD' : u);
    }
  }

  /** One BMP character as UTF-8 (an unpaired high surrogate before it becomes U+FFFD). */
  private void textChar(char ch) {
    dropSurrogate();
    if (ch < 0x80) {
      putText((byte) ch);
    } else if (ch < 0x800) {
      putText((byte) (0xC0 | (ch >> 6)));
      putText((byte) (0x80 | (ch & 0x3F)));
    } else {
      putText((byte) (0xE0 | (ch >> 12)));
      putText((byte) (0x80 | ((ch >> 6) & 0x3F)));
      putText((byte) (0x80 | (ch & 0x3F)));
    }
  }

  /** A high surrogate that got no low half is U+FFFD, as a decoder makes it. */
  private void dropSurrogate() {
    if (highSurrogate != 0) {
      highSurrogate = 0;
      textChar('\uFFFD');
    }
  }

  private void putText(byte b) {
    if (textLen == text.length) {
      flushText();
    }
    text[textLen++] = b;
  }

  private void flushText() {
    if (textLen > 0) {
      int n = textLen;
      textLen = 0;
      listener.text(text, 0, n);
    }
  }

  private void structural(byte c) {
    if (isWhitespace(c)) {
      return;
    }
    switch (state) {
      case VALUE_OR_ARRAY_END:
        if (c == ']') {
          close(c);
          return;
        }
        startValue(c);
        return;
      case VALUE:
        startValue(c);
        return;
      case KEY_OR_OBJECT_END:
        if (c == '}') {
          close(c);
          return;
        }
        startKey(c);
        return;
      case KEY:
        startKey(c);
        return;
      case COLON:
        if (c == ':') {
          state = VALUE;
        } else {
          state = FAILED;
        }
        return;
      case AFTER_VALUE:
        if (depth == 0) {
          // Another top-level value: tolerated so that concatenated documents scan too.
          startValue(c);
        } else if (c == ',') {
          state = isArray(depth) ? VALUE : KEY;
        } else if (c == '}' || c == ']') {
          close(c);
        } else {
          state = FAILED;
        }
        return;
      default:
        state = FAILED;
    }
  }

  private void startKey(byte c) {
    if (c != '"') {
      state = FAILED;
      return;
    }
    startString(true);
  }

  private void startValue(byte c) {
    if (c == '{' || c == '[') {
      open(c == '[');
    } else if (c == '"') {
      startString(false);
    } else if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
      scalarLen = 0;
      scalarOverflow = false;
      scalar[scalarLen++] = c;
      state = SCALAR;
    } else {
      state = FAILED;
    }
  }

  private void open(boolean array) {
    if (depth >= MAX_DEPTH) {
      state = FAILED;
      return;
    }
    boolean usageRoot = !array && usageLevel == 0 && matchesAny(USAGE_PATHS);
    depth++;
    setArray(depth, array);
    if (depth <= KEY_DEPTH) {
      keys[depth - 1] = null;
    }
    if (usageRoot) {
      usageLevel = depth;
      usageAtTop = depth == 2 && !isArray(1) && "usage".equals(keys[0]);
      fields.clear();
    }
    if (array
        && usageLevel > 0
        && depth == usageLevel + 1
        && depth <= KEY_DEPTH
        && ITERATIONS.equals(keys[usageLevel - 1])) {
      // A repeated "iterations" key replaces the earlier array, as any repeated key does.
      fields.keySet().removeIf(k -> k.startsWith(ITERATIONS_PREFIX));
    }
    if (inIterationEntry()) {
      iteration.clear();
    }
    state = array ? VALUE_OR_ARRAY_END : KEY_OR_OBJECT_END;
  }

  private void close(byte c) {
    if (depth == 0 || (c == ']') != isArray(depth)) {
      state = FAILED;
      return;
    }
    if (c == '}' && inIterationEntry()) {
      for (Map.Entry<String, Long> e : iteration.entrySet()) {
        String key = ITERATIONS_PREFIX + e.getKey();
        if (fields.size() < MAX_USAGE_FIELDS || fields.containsKey(key)) {
          fields.merge(key, e.getValue(), JsonUsageScanner::saturatingAdd);
        }
      }
      iteration.clear();
    }
    if (depth == usageLevel) {
      usageLevel = 0;
      if (!fields.isEmpty()) {
        Map<String, Long> found = Map.copyOf(fields);
        fields.clear();
        lastUsageAtTop = usageAtTop;
        listener.usage(found);
      }
    }
    if (depth <= KEY_DEPTH) {
      keys[depth - 1] = null;
    }
    setArray(depth, false);
    depth--;
    state = AFTER_VALUE;
  }

  private void startString(boolean key) {
    stringIsKey = key;
    escaped = false;
    captureLen = 0;
    captureSpoiled = false;
    if (key) {
      capturing = depth <= KEY_DEPTH;
      capturingTier = false;
      captureLimit = MAX_KEY_BYTES;
    } else {
      capturingTier = usageLevel == 0 && matchesAny(TIER_PATHS);
      capturing = capturingTier || (usageLevel == 0 && matchesAny(MODEL_PATHS));
      captureLimit = MAX_MODEL_BYTES;
      textString = !capturing && usageLevel == 0 && depth > 0 && matchesAny(TEXT_PATHS);
    }
    state = STRING;
  }

  private void endString() {
    if (stringIsKey) {
      if (depth <= KEY_DEPTH) {
        keys[depth - 1] = captureSpoiled ? null : text();
      }
      state = COLON;
    } else {
      if (capturing && !captureSpoiled && captureLen > 0) {
        if (capturingTier) {
          listener.serviceTier(text());
        } else {
          listener.model(text());
        }
      }
      state = AFTER_VALUE;
    }
    capturing = false;
  }

  private String text() {
    return new String(capture, 0, captureLen, StandardCharsets.UTF_8);
  }

  private void endScalar() {
    if (!scalarOverflow && inIterationEntry()) {
      String key = keys[depth - 1];
      Long value = key == null ? null : wholeNumber();
      if (value != null && (iteration.size() < MAX_USAGE_FIELDS || iteration.containsKey(key))) {
        iteration.put(key, value);
      }
    } else if (usageLevel > 0 && !scalarOverflow) {
      String path = usageRelativePath();
      if (path != null) {
        Long value = wholeNumber();
        if (value != null && (fields.size() < MAX_USAGE_FIELDS || fields.containsKey(path))) {
          fields.put(path, value);
        }
      }
    }
    state = AFTER_VALUE;
  }

  /**
   * True when the innermost open level is an entry (object) of the usage object's {@code
   * iterations} array: {@code usage.iterations[i]}.
   */
  private boolean inIterationEntry() {
    return usageLevel > 0
        && depth == usageLevel + 2
        && depth <= KEY_DEPTH
        && isArray(usageLevel + 1)
        && !isArray(depth)
        && ITERATIONS.equals(keys[usageLevel - 1]);
  }

  /** Sums never wrap: a count past Long.MAX_VALUE stays there (and is refused downstream). */
  private static long saturatingAdd(long a, long b) {
    long sum = a + b;
    return sum < 0 ? Long.MAX_VALUE : sum;
  }

  /** The dotted path of the current scalar inside the usage object, or null when not tracked. */
  private String usageRelativePath() {
    if (depth - usageLevel > MAX_USAGE_NESTING || depth > KEY_DEPTH) {
      return null;
    }
    StringBuilder path = new StringBuilder();
    for (int level = usageLevel; level <= depth; level++) {
      String key = keys[level - 1];
      if (isArray(level) || key == null) {
        return null;
      }
      if (path.length() > 0) {
        path.append('.');
      }
      path.append(key);
    }
    return path.toString();
  }

  /** The scalar as a non-negative whole number ("12", "12.0", "1.2e1"), else null. */
  private Long wholeNumber() {
    boolean digitsOnly = scalarLen > 0 && scalarLen <= 18;
    long n = 0;
    for (int i = 0; i < scalarLen && digitsOnly; i++) {
      byte b = scalar[i];
      if (b < '0' || b > '9') {
        digitsOnly = false;
      } else {
        n = n * 10 + (b - '0');
      }
    }
    if (digitsOnly) {
      return n;
    }
    byte first = scalar[0];
    if (first < '0' || first > '9') {
      return null; // negative, true, false, null
    }
    try {
      BigDecimal d = new BigDecimal(new String(scalar, 0, scalarLen, StandardCharsets.US_ASCII));
      return d.stripTrailingZeros().longValueExact();
    } catch (ArithmeticException | NumberFormatException e) {
      return null;
    }
  }

  private boolean matchesAny(String[][] paths) {
    for (String[] p : paths) {
      if (matches(p)) {
        return true;
      }
    }
    return false;
  }

  /** True when the value about to start sits at this path (one segment per open level). */
  private boolean matches(String[] path) {
    if (path.length != depth || depth > KEY_DEPTH) {
      return false;
    }
    for (int i = 0; i < path.length; i++) {
      int level = i + 1;
      if (ARRAY.equals(path[i])) {
        if (!isArray(level)) {
          return false;
        }
      } else if (isArray(level) || !path[i].equals(keys[i])) {
        return false;
      }
    }
    return true;
  }

  private boolean isArray(int level) {
    return (arrayLevels[level >> 6] & (1L << (level & 63))) != 0;
  }

  private void setArray(int level, boolean array) {
    if (array) {
      arrayLevels[level >> 6] |= 1L << (level & 63);
    } else {
      arrayLevels[level >> 6] &= ~(1L << (level & 63));
    }
  }

  private static boolean isWhitespace(byte c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
  }
}
