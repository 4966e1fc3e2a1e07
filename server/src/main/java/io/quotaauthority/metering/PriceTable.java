package io.quotaauthority.metering;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Model prices by name, read from YAML. A name is exact ({@code gpt-4o-2024-05-13}) or a prefix
 * ending in '*' ({@code gpt-4o*}, and {@code *} alone for everything). An exact name beats any
 * prefix; among the prefixes a name starts with, the longest decides. Names compare
 * case-insensitively. Immutable.
 *
 * <p><b>What a prefix covers.</b> A prefix {@code X*} whose X ends in a letter or digit covers X
 * itself and X followed by a <em>snapshot tail</em>, nothing else:
 *
 * <ul>
 *   <li>{@code :} and anything after it (the tail of a fine-tuned name, {@code
 *       ft:gpt-4o-mini-2024-07-18:org::id});
 *   <li>or segments, each introduced by {@code -} or {@code @}: the first a number of three or more
 *       digits ({@code -0613}, {@code -2024-08-06}, {@code -20250929}, {@code @20240620}, {@code
 *       -001}) or a status word ({@code latest}, {@code preview}, {@code exp}); each later one any
 *       number ({@code -08}, {@code -09-2025}) or a status word; then optionally the {@code :}
 *       tail.
 * </ul>
 *
 * Anything else after X is another model: a 1–2 digit number or a directly appended character is a
 * newer family ({@code gpt-5.6} is not {@code gpt-5*}, {@code claude-opus-4-8} is not {@code
 * claude-opus-4*}, {@code gpt-4o2} is not {@code gpt-4o*}), and any other word is a sibling with a
 * price of its own ({@code o1-pro} costs ten times {@code o1}, {@code gpt-4o-realtime-preview}
 * twice {@code gpt-4o}). Such a name is priced only by a row of its own ({@code o1-pro*}, {@code
 * gpt-4o-mini*}); the longest prefix it starts with decides, and when that prefix does not cover it
 * the name is unpriced: no shorter prefix is tried. Unpriced is safe (keys with a quota are
 * refused, see UsageCharger); an older sibling's price is not. A prefix whose X ends in another
 * character ({@code foo-*}, or {@code *} alone) covers every name starting with X, literally.
 *
 * <pre>
 * as_of: "2025-11-20"          # optional, shown in logs
 * models:
 *   "gpt-4o*": {input: "2.50", output: "10.00", cached_input: "1.25", cache_write: "2.50"}
 * </pre>
 *
 * Prices are USD per million tokens, decimal strings (unquoted numbers are read as decimals too,
 * never through a double); cached_input and cache_write default to the input price. The optional
 * {@code max_output} is the model's published maximum output tokens per response, a whole number
 * from 1 to {@link #MAX_OUTPUT_LIMIT} (for {@link MaxCost}; absent: {@link
 * MaxCost#DEFAULT_MAX_OUTPUT}).
 */
public final class PriceTable {

  static final String SHIPPED_RESOURCE = "/metering/prices.yaml";

  private static final ObjectMapper YAML =
      YAMLMapper.builder(new YAMLFactory())
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
          .disable(JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES)
          .build();
  private static final Pattern NAME = Pattern.compile("[a-z0-9._:/@+-]*\\*?");

  /**
   * What may follow a prefix's name for the prefix to cover it: nothing; a fine-tune tail after
   * ':'; or '-'/'@' segments, the first a 3+ digit number or a status word, later ones any number
   * or a status word (dates written -2024-08-06 or -09-2025), then optionally the ':' tail.
   */
  private static final Pattern SNAPSHOT_TAIL =
      Pattern.compile(
          "(?:[-@](?:\\d{3,}|latest|preview|exp)(?:[-@](?:\\d+|latest|preview|exp))*)?(?::.*)?",
          Pattern.DOTALL);

  private static final Pattern WHOLE = Pattern.compile("[1-9]\\d{0,7}");
  private static final Pattern DECIMAL = Pattern.compile("\\d{1,9}(\\.\\d{1,12})?");
  private static final Set<String> TOP_KEYS = Set.of("as_of", "models");
  private static final Set<String> PRICE_KEYS =
      Set.of("input", "output", "cached_input", "cache_write", "max_output");

  /** The largest max_output a row may state: ten times any model's, so a typo is caught. */
  static final long MAX_OUTPUT_LIMIT = 10_000_000;

  private record Prefix(String prefix, ModelPrice price) {}

  private final String asOf;
  private final Map<String, ModelPrice> exact;
  private final List<Prefix> prefixes;

  private PriceTable(String asOf, Map<String, ModelPrice> exact, List<Prefix> prefixes) {
    this.asOf = asOf;
    this.exact = Map.copyOf(exact);
    this.prefixes = List.copyOf(prefixes);
  }

  /** The price of a model, or empty when no name matches it. */
  public Optional<ModelPrice> find(String model) {
    if (model == null) {
      return Optional.empty();
    }
    String name = model.trim().toLowerCase(Locale.ROOT);
    ModelPrice p = exact.get(name);
    if (p != null) {
      return Optional.of(p);
    }
    for (Prefix prefix : prefixes) { // longest first
      if (name.startsWith(prefix.prefix())) {
        // The longest prefix the name starts with decides: a name it does not cover is another
        // model, and a shorter prefix (an older or cheaper sibling) must not price it.
        return covers(prefix.prefix(), name.substring(prefix.prefix().length()))
            ? Optional.of(prefix.price())
            : Optional.empty();
      }
    }
    return Optional.empty();
  }

  /** Whether a prefix covers the name that is it followed by this tail (see the class comment). */
  static boolean covers(String prefix, String tail) {
    if (prefix.isEmpty() || !Character.isLetterOrDigit(prefix.charAt(prefix.length() - 1))) {
      return true; // "*" or "foo-*": the operator asked for a literal prefix
    }
    return SNAPSHOT_TAIL.matcher(tail).matches();
  }

  /** How many names the table has. */
  public int size() {
    return exact.size() + prefixes.size();
  }

  /** The as_of date the file states, or empty. */
  public String asOf() {
    return asOf;
  }

  /** The table shipped in the jar. */
  public static PriceTable shipped() {
    try (InputStream in = PriceTable.class.getResourceAsStream(SHIPPED_RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException("missing resource " + SHIPPED_RESOURCE);
      }
      return parse(in.readAllBytes());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Reads a price table, or throws {@link IllegalArgumentException} with one line saying what is
   * wrong and where.
   */
  public static PriceTable parse(byte[] yaml) {
    JsonNode root;
    try {
      root = YAML.readTree(yaml);
    } catch (IOException e) {
      throw new IllegalArgumentException("not valid YAML: " + firstLine(e.getMessage()), e);
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException("expected a mapping with 'models'");
    }
    for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
      String key = it.next();
      if (!TOP_KEYS.contains(key)) {
        throw new IllegalArgumentException("unknown key '" + key + "' (expected as_of, models)");
      }
    }
    JsonNode models = root.get("models");
    if (models == null || !models.isObject() || models.isEmpty()) {
      throw new IllegalArgumentException(
          "'models' must be a non-empty mapping of model name to prices");
    }
    Map<String, ModelPrice> exact = new HashMap<>();
    List<Prefix> prefixes = new ArrayList<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = models.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String name = e.getKey().trim().toLowerCase(Locale.ROOT);
      if (name.isEmpty() || !NAME.matcher(name).matches()) {
        throw new IllegalArgumentException(
            "model name '"
                + e.getKey()
                + "' must be letters, digits and ._:/@+- with an optional trailing '*'");
      }
      ModelPrice price = price(e.getKey(), e.getValue());
      if (name.endsWith("*")) {
        String prefix = name.substring(0, name.length() - 1);
        if (prefixes.stream().anyMatch(p -> p.prefix().equals(prefix))) {
          throw new IllegalArgumentException("model name '" + e.getKey() + "' appears twice");
        }
        prefixes.add(new Prefix(prefix, price));
      } else if (exact.putIfAbsent(name, price) != null) {
        throw new IllegalArgumentException("model name '" + e.getKey() + "' appears twice");
      }
    }
    prefixes.sort(Comparator.comparingInt((Prefix p) -> p.prefix().length()).reversed());
    JsonNode asOf = root.get("as_of");
    return new PriceTable(asOf == null ? "" : asOf.asText(), exact, prefixes);
  }

  private static ModelPrice price(String model, JsonNode node) {
    if (!node.isObject()) {
      throw new IllegalArgumentException(
          "models."
              + model
              + " must be a mapping with input and output (and optionally cached_input, cache_write)");
    }
    for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
      String key = it.next();
      if (!PRICE_KEYS.contains(key)) {
        throw new IllegalArgumentException(
            "models."
                + model
                + ": unknown key '"
                + key
                + "' (expected input, output, cached_input, cache_write, max_output)");
      }
    }
    BigDecimal input = amount(model, "input", node.get("input"));
    BigDecimal output = amount(model, "output", node.get("output"));
    BigDecimal cached =
        node.has("cached_input") ? amount(model, "cached_input", node.get("cached_input")) : input;
    BigDecimal write =
        node.has("cache_write") ? amount(model, "cache_write", node.get("cache_write")) : input;
    OptionalLong maxOutput =
        node.has("max_output")
            ? OptionalLong.of(maxOutput(model, node.get("max_output")))
            : OptionalLong.empty();
    return new ModelPrice(input, output, cached, write, maxOutput);
  }

  /** A row's max_output: a whole number of tokens, 1 to {@link #MAX_OUTPUT_LIMIT}. */
  private static long maxOutput(String model, JsonNode node) {
    String where = "models." + model + ".max_output";
    // Quoted or not, the text must be digits only: "1e5", "16384.0" and -1 are refused, not
    // rounded, since a misread bound would under-hold every request for the model.
    String text =
        node.isTextual()
            ? node.textValue().trim()
            // An unquoted 1e5 or 16384.0 is a YAML float: refused like its text would be.
            : node.isIntegralNumber() ? node.bigIntegerValue().toString() : "";
    if (!WHOLE.matcher(text).matches()
        || new BigDecimal(text).compareTo(BigDecimal.valueOf(MAX_OUTPUT_LIMIT)) > 0) {
      throw new IllegalArgumentException(
          where
              + " must be a whole number of tokens from 1 to "
              + MAX_OUTPUT_LIMIT
              + ", got '"
              + (node.isValueNode() ? node.asText() : node.toString())
              + "'");
    }
    return Long.parseLong(text);
  }

  private static BigDecimal amount(String model, String field, JsonNode node) {
    String where = "models." + model + "." + field;
    if (node == null || node.isNull()) {
      throw new IllegalArgumentException(where + " is required");
    }
    String text;
    if (node.isTextual()) {
      text = node.textValue().trim();
    } else if (node.isBigDecimal() || node.isIntegralNumber()) {
      // YAML number read as BigDecimal straight from its text (USE_BIG_DECIMAL_FOR_FLOATS).
      text = node.decimalValue().toPlainString();
    } else {
      throw new IllegalArgumentException(where + " must be a decimal string like \"2.50\"");
    }
    if (!DECIMAL.matcher(text).matches()) {
      throw new IllegalArgumentException(
          where
              + " must be a non-negative decimal USD per million tokens like \"2.50\", got '"
              + text
              + "'");
    }
    return new BigDecimal(text);
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
