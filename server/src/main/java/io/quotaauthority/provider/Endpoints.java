package io.quotaauthority.provider;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What every endpoint Envoy forwards costs, and whether the gateway can meter it: the one table
 * that Check (which refuses keys with a quota on endpoints it cannot meter) and metering (which
 * reads usage only where {@link Kind#METERED}) both follow, so that they cannot disagree. README
 * "Endpoints" shows the same rows; envoy/ReadmeEndpointsTest keeps the two equal.
 *
 * <p>A request is classified by its provider, method and path (query and trailing slashes ignored);
 * the first row that matches wins. Pattern segments are literal, {@code {name}} (one segment of
 * letters, digits and {@code . _ - :}; an encoded character never matches, so an encoded path fails
 * closed), {@code {name}:method} (such a segment followed by a literal colon method, Google's
 * style) and a final {@code **} (the rest of the path, possibly nothing). Gemini rows are written
 * for {@code /v1beta/} and apply to the stable {@code /v1/} surface too; Gemini's OpenAI-compatible
 * {@code /v1beta/openai/...} is classified by OpenAI's rows. Whatever no row names is free for GET
 * and HEAD (reads cost nothing on any of the three APIs) and, for any other method, {@link
 * Kind#NOT_METERED}: an endpoint nobody looked at fails closed.
 *
 * <p>Cheap enough for Check's hot path: a linear scan of a few dozen rows, each a handful of {@code
 * regionMatches}, no regex, no allocation on paths without a trailing slash or query.
 */
public final class Endpoints {

  /** What an endpoint costs as far as the gateway can tell. */
  public enum Kind {
    /** Costs money and the response carries the usage metering reads. */
    METERED,
    /**
     * Costs nothing: listing, retrieving, deleting, cancelling, counting tokens, uploading files.
     */
    FREE,
    /** Costs money the gateway cannot see: refused for keys with a quota. */
    NOT_METERED;

    /** The README's spelling. */
    public String label() {
      return name().toLowerCase(Locale.ROOT).replace('_', ' ');
    }
  }

  /**
   * One row of the table.
   *
   * @param provider whose API the row describes (null for the catch-all rows)
   * @param method the HTTP method, or {@code *} for any
   * @param pattern the path pattern (see the class comment), {@code *} for the catch-alls
   * @param kind what it costs
   * @param what for {@link Kind#NOT_METERED}: the endpoint as the 403 names it ("the Batch API");
   *     for the others, how it is metered or why it is free, as the README says
   * @param index the row's position, for tables built once per row (Check's denials)
   */
  public record Row(
      Provider provider, String method, String pattern, Kind kind, String what, int index) {
    public boolean refusesLimitedKeys() {
      return kind == Kind.NOT_METERED;
    }

    /** "POST /v1/chat/completions", the README's second column. */
    public String endpoint() {
      return method + " " + pattern;
    }

    @Override
    public String toString() {
      return (provider == null ? "any" : provider.wireName())
          + " "
          + endpoint()
          + " -> "
          + kind.label();
    }
  }

  private static final List<Row> ROWS = new ArrayList<>();
  private static final Map<Provider, List<Compiled>> BY_PROVIDER = new EnumMap<>(Provider.class);

  // ---- OpenAI (and Gemini's OpenAI-compatible /v1beta/openai/...)
  public static final Row OPENAI_CHAT =
      row(
          Provider.OPENAI,
          "POST",
          "/v1/chat/completions",
          Kind.METERED,
          "usage in the response; a stream is asked for stream_options.include_usage");

  static {
    row(
        Provider.OPENAI,
        "POST",
        "/v1/chat/completions/{id}",
        Kind.FREE,
        "updates a stored completion's metadata");
    row(
        Provider.OPENAI,
        "DELETE",
        "/v1/chat/completions/{id}",
        Kind.FREE,
        "deletes a stored completion");
  }

  public static final Row OPENAI_COMPLETIONS =
      row(
          Provider.OPENAI,
          "POST",
          "/v1/completions",
          Kind.METERED,
          "usage in the response; a stream is asked for stream_options.include_usage");

  /** Metered, except "background": true, refused for keys with a quota by metering's body phase. */
  public static final Row OPENAI_RESPONSES =
      row(
          Provider.OPENAI,
          "POST",
          "/v1/responses",
          Kind.METERED,
          "usage in the response (or its response.completed event); \"background\": true is refused for"
              + " keys with a quota (endpoint_not_metered: its usage arrives on a later GET)");

  /** What the body phase's refusal of a background response names. */
  public static final String BACKGROUND_RESPONSES = "background responses";

  static {
    row(Provider.OPENAI, "POST", "/v1/responses/input_tokens", Kind.FREE, "counts tokens");
    row(
        Provider.OPENAI,
        "POST",
        "/v1/responses/{id}/cancel",
        Kind.FREE,
        "cancels a background response");
    row(
        Provider.OPENAI,
        "GET",
        "/v1/responses/{id}",
        Kind.FREE,
        "retrieves a stored response (its usage was charged when it was made)");
    row(Provider.OPENAI, "DELETE", "/v1/responses/{id}", Kind.FREE, "deletes a stored response");
  }

  public static final Row OPENAI_EMBEDDINGS =
      row(Provider.OPENAI, "POST", "/v1/embeddings", Kind.METERED, "usage in the response");

  static {
    row(
        Provider.OPENAI,
        "POST",
        "/v1/moderations",
        Kind.FREE,
        "OpenAI does not charge for moderation");
    row(Provider.OPENAI, "DELETE", "/v1/models/{model}", Kind.FREE, "deletes a fine-tuned model");
    row(
        Provider.OPENAI,
        "POST",
        "/v1/files",
        Kind.FREE,
        "uploads a file: no tokens (body not buffered)");
    row(Provider.OPENAI, "DELETE", "/v1/files/{id}", Kind.FREE, "deletes a file");
    row(Provider.OPENAI, "POST", "/v1/uploads", Kind.FREE, "starts a multipart upload");
    row(
        Provider.OPENAI,
        "POST",
        "/v1/uploads/{id}/parts",
        Kind.FREE,
        "uploads a part: no tokens (body not buffered)");
    row(Provider.OPENAI, "POST", "/v1/uploads/{id}/complete", Kind.FREE, "completes an upload");
    row(Provider.OPENAI, "POST", "/v1/uploads/{id}/cancel", Kind.FREE, "cancels an upload");
    row(Provider.OPENAI, "POST", "/v1/batches/{id}/cancel", Kind.FREE, "cancels a batch");
    row(Provider.OPENAI, "POST", "/v1/batches/**", Kind.NOT_METERED, "the Batch API");
    row(
        Provider.OPENAI,
        "POST",
        "/v1/fine_tuning/jobs/{id}/cancel",
        Kind.FREE,
        "cancels a fine-tuning job");
    row(Provider.OPENAI, "POST", "/v1/fine_tuning/**", Kind.NOT_METERED, "fine-tuning");
    row(Provider.OPENAI, "POST", "/v1/images/**", Kind.NOT_METERED, "image generation");
    row(
        Provider.OPENAI,
        "POST",
        "/v1/audio/**",
        Kind.NOT_METERED,
        "audio (speech, transcription, translation)");
    // Any method: the Realtime API is a WebSocket (GET with Upgrade), and its client secrets let a
    // browser talk to OpenAI directly, past the gateway.
    row(Provider.OPENAI, "*", "/v1/realtime/**", Kind.NOT_METERED, "the Realtime API");
    row(Provider.OPENAI, "POST", "/v1/vector_stores/**", Kind.NOT_METERED, "vector stores");
    row(Provider.OPENAI, "POST", "/v1/assistants/**", Kind.NOT_METERED, "the Assistants API");
    row(Provider.OPENAI, "POST", "/v1/threads/**", Kind.NOT_METERED, "the Assistants API");
    row(Provider.OPENAI, "POST", "/v1/videos/**", Kind.NOT_METERED, "video generation");
  }

  // ---- Anthropic
  public static final Row ANTHROPIC_MESSAGES =
      row(
          Provider.ANTHROPIC,
          "POST",
          "/v1/messages",
          Kind.METERED,
          "usage in the response (message_start and message_delta events when streamed)");

  static {
    row(Provider.ANTHROPIC, "POST", "/v1/messages/count_tokens", Kind.FREE, "counts tokens");
    row(
        Provider.ANTHROPIC,
        "POST",
        "/v1/messages/batches/{id}/cancel",
        Kind.FREE,
        "cancels a batch");
    row(Provider.ANTHROPIC, "DELETE", "/v1/messages/batches/{id}", Kind.FREE, "deletes a batch");
    row(Provider.ANTHROPIC, "POST", "/v1/messages/batches/**", Kind.NOT_METERED, "message batches");
    row(
        Provider.ANTHROPIC,
        "POST",
        "/v1/files",
        Kind.FREE,
        "uploads a file: no tokens (body not buffered)");
    row(Provider.ANTHROPIC, "DELETE", "/v1/files/{id}", Kind.FREE, "deletes a file");
    // The legacy Text Completions response has no usage object.
    row(
        Provider.ANTHROPIC,
        "POST",
        "/v1/complete",
        Kind.NOT_METERED,
        "the legacy Text Completions API");
  }

  // ---- Gemini (written for /v1beta/, the same under /v1/)
  public static final Row GEMINI_GENERATE =
      row(
          Provider.GEMINI,
          "POST",
          "/v1beta/models/{model}:generateContent",
          Kind.METERED,
          "usageMetadata in the response");
  public static final Row GEMINI_STREAM =
      row(
          Provider.GEMINI,
          "POST",
          "/v1beta/models/{model}:streamGenerateContent",
          Kind.METERED,
          "usageMetadata in the stream's events");

  static {
    row(
        Provider.GEMINI,
        "POST",
        "/v1beta/tunedModels/{model}:generateContent",
        Kind.METERED,
        "usageMetadata in the response");
    row(
        Provider.GEMINI,
        "POST",
        "/v1beta/tunedModels/{model}:streamGenerateContent",
        Kind.METERED,
        "usageMetadata in the stream's events");
    row(Provider.GEMINI, "POST", "/v1beta/models/{model}:countTokens", Kind.FREE, "counts tokens");
    // Their responses hold the embeddings and no usageMetadata.
    row(
        Provider.GEMINI,
        "POST",
        "/v1beta/models/{model}:embedContent",
        Kind.NOT_METERED,
        "Gemini embeddings");
    row(
        Provider.GEMINI,
        "POST",
        "/v1beta/models/{model}:batchEmbedContents",
        Kind.NOT_METERED,
        "Gemini embeddings");
    row(
        Provider.GEMINI,
        "POST",
        "/v1beta/models/{model}:batchGenerateContent",
        Kind.NOT_METERED,
        "the Batch API");
    row(
        Provider.GEMINI,
        "POST",
        "/v1beta/models/{model}:predict",
        Kind.NOT_METERED,
        "image and video generation (Imagen, Veo)");
    row(
        Provider.GEMINI,
        "POST",
        "/v1beta/models/{model}:predictLongRunning",
        Kind.NOT_METERED,
        "image and video generation (Imagen, Veo)");
    // Cached content is billed per token-hour of storage, which no response reports.
    row(Provider.GEMINI, "POST", "/v1beta/cachedContents/**", Kind.NOT_METERED, "context caching");
    row(
        Provider.GEMINI,
        "DELETE",
        "/v1beta/cachedContents/{id}",
        Kind.FREE,
        "deletes cached content");
    row(Provider.GEMINI, "DELETE", "/v1beta/files/{id}", Kind.FREE, "deletes a file");
    row(
        Provider.GEMINI,
        "POST",
        "/upload/v1beta/files",
        Kind.FREE,
        "uploads a file (resumable protocol): no tokens (body not buffered)");
  }

  // ---- everything else
  public static final Row ANY_READ =
      row(
          null,
          "GET",
          "*",
          Kind.FREE,
          "reads (lists, retrievals, downloads) cost nothing; HEAD likewise");
  public static final Row ANY_OTHER = row(null, "*", "*", Kind.NOT_METERED, "this endpoint");

  private Endpoints() {}

  /** Every row, in the order they are tried (README's order). */
  public static List<Row> rows() {
    return Collections.unmodifiableList(ROWS);
  }

  /**
   * The row for a request; never null, never throws.
   *
   * @param provider the request's provider ({@link ProviderClassifier}), or null
   * @param method the {@code :method}, or null
   * @param rawPath the {@code :path}, query included or not, or null
   */
  public static Row classify(Provider provider, String method, String rawPath) {
    boolean read = "GET".equals(method) || "HEAD".equals(method);
    if (provider == null || rawPath == null || method == null) {
      return read ? ANY_READ : ANY_OTHER;
    }
    String path = trimmed(rawPath);
    Provider table = provider;
    if (provider == Provider.GEMINI) {
      if (path.startsWith("/v1beta/openai/")) {
        // Google's OpenAI-compatible surface: OpenAI's endpoints, one level down.
        table = Provider.OPENAI;
        path = "/v1" + path.substring("/v1beta/openai".length());
      } else if (path.startsWith("/v1/")) {
        // The stable surface is a subset of v1beta's, method for method.
        path = "/v1beta" + path.substring(3);
      }
    }
    // A HEAD is a GET without its body: the GET rows apply.
    String m = "HEAD".equals(method) ? "GET" : method;
    for (Compiled c : BY_PROVIDER.get(table)) {
      if (c.matches(m, path)) {
        return c.row;
      }
    }
    return read ? ANY_READ : ANY_OTHER;
  }

  /** The path without query, fragment or trailing slashes (but "/" stays "/"). */
  static String trimmed(String rawPath) {
    String p = ProviderClassifier.withoutQuery(rawPath);
    int end = p.length();
    while (end > 1 && p.charAt(end - 1) == '/') {
      end--;
    }
    return end == p.length() ? p : p.substring(0, end);
  }

  private static Row row(Provider provider, String method, String pattern, Kind kind, String what) {
    Row r = new Row(provider, method, pattern, kind, what, ROWS.size());
    ROWS.add(r);
    if (provider != null) {
      BY_PROVIDER.computeIfAbsent(provider, p -> new ArrayList<>()).add(new Compiled(r));
    }
    return r;
  }

  /** A row's pattern split into segments once, at class load. */
  private static final class Compiled {
    final Row row;

    /** Per segment: the literal, or null for a {name} wildcard. */
    final String[] literal;

    /** Per wildcard segment: the literal suffix after the wildcard (":generateContent"), or "". */
    final String[] suffix;

    /** Whether the pattern ends in "/**". */
    final boolean rest;

    Compiled(Row row) {
      this.row = row;
      String p = row.pattern();
      boolean r = p.endsWith("/**");
      if (r) {
        p = p.substring(0, p.length() - 3);
      }
      this.rest = r;
      String[] parts = p.substring(1).split("/");
      literal = new String[parts.length];
      suffix = new String[parts.length];
      for (int i = 0; i < parts.length; i++) {
        String s = parts[i];
        if (s.startsWith("{")) {
          int close = s.indexOf('}');
          literal[i] = null;
          suffix[i] = s.substring(close + 1);
        } else {
          literal[i] = s;
          suffix[i] = "";
        }
      }
    }

    boolean matches(String method, String path) {
      if (!row.method().equals("*") && !row.method().equals(method)) {
        return false;
      }
      int pos = 0;
      int n = path.length();
      for (int i = 0; i < literal.length; i++) {
        if (pos >= n || path.charAt(pos) != '/') {
          return false;
        }
        int start = pos + 1;
        int end = path.indexOf('/', start);
        if (end < 0) {
          end = n;
        }
        if (literal[i] != null) {
          if (end - start != literal[i].length()
              || !path.regionMatches(start, literal[i], 0, end - start)) {
            return false;
          }
        } else if (!wildcard(path, start, end, suffix[i])) {
          return false;
        }
        pos = end;
      }
      // Matched every segment: the path must end here, unless the pattern takes the rest.
      return pos == n || (rest && path.charAt(pos) == '/');
    }

    /** A {name}suffix segment: a non-empty id of safe characters, then the literal suffix. */
    private static boolean wildcard(String path, int start, int end, String suffix) {
      int idEnd = end - suffix.length();
      if (idEnd <= start || !path.regionMatches(idEnd, suffix, 0, suffix.length())) {
        return false;
      }
      for (int i = start; i < idEnd; i++) {
        char c = path.charAt(i);
        boolean ok =
            (c >= 'a' && c <= 'z')
                || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9')
                || c == '.'
                || c == '_'
                || c == '-'
                || c == ':';
        if (!ok) {
          return false;
        }
      }
      return true;
    }
  }
}
