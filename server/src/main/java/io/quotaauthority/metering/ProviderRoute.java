package io.quotaauthority.metering;

import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which provider an HTTP request goes to and how its usage is read. Only POSTs are metered: a GET
 * that fetches a stored response (OpenAI's {@code GET /v1/responses/{id}}) carries the same usage
 * object but consumed no new tokens.
 *
 * @param pathModel the model named in the path (Gemini), else empty
 * @param addsStreamUsage true for OpenAI-style (chat) completions, whose streams carry usage only
 *     when the request asks for {@code stream_options.include_usage}
 */
public record ProviderRoute(
    Provider provider, UsageFormat format, Optional<String> pathModel, boolean addsStreamUsage) {

  /** Gemini's v1 surface shares /v1/ with OpenAI; its model methods are unmistakable. */
  private static final Pattern GEMINI_V1 = Pattern.compile("/v1/models/[^/:]+:[A-Za-z]+");
  private static final Pattern GEMINI_MODEL = Pattern.compile("/models/([^/:]+)(?::|$)");

  /**
   * The route of a request, or empty when it is not one we meter.
   *
   * @param method the {@code :method}
   * @param rawPath the {@code :path}, query included
   * @param hint the provider Envoy's route named (ext_authz dynamic metadata "provider"), or null;
   *     when it names a provider it wins over the path, as it does for Check
   * @param anthropicVersion whether the request carries an {@code anthropic-version} header, which
   *     every Anthropic request and no OpenAI request has
   */
  public static Optional<ProviderRoute> of(
      String method, String rawPath, String hint, boolean anthropicVersion) {
    if (rawPath == null || !"POST".equals(method)) {
      return Optional.empty();
    }
    String path = stripQuery(rawPath);
    Provider provider = fromHint(hint);
    if (provider == null) {
      provider = fromPath(path, anthropicVersion);
    }
    if (provider == null) {
      return Optional.empty();
    }
    return Optional.of(switch (provider) {
      case ANTHROPIC -> new ProviderRoute(provider, UsageFormat.ANTHROPIC, Optional.empty(), false);
      case OPENAI -> new ProviderRoute(provider, UsageFormat.OPENAI, Optional.empty(), isCompletions(path));
      // Gemini's OpenAI-compatible surface: OpenAI bodies and usage, billed by Google.
      case GEMINI -> path.contains("/openai/")
          ? new ProviderRoute(provider, UsageFormat.OPENAI, Optional.empty(), isCompletions(path))
          : new ProviderRoute(provider, UsageFormat.GEMINI, geminiModel(path), false);
    });
  }

  private static Provider fromHint(String hint) {
    if (hint == null) {
      return null;
    }
    return switch (hint.toLowerCase(Locale.ROOT)) {
      case "openai" -> Provider.OPENAI;
      case "anthropic" -> Provider.ANTHROPIC;
      case "gemini" -> Provider.GEMINI;
      default -> null;
    };
  }

  private static Provider fromPath(String path, boolean anthropicVersion) {
    if (path.equals("/v1/messages") || path.startsWith("/v1/messages/")) {
      return Provider.ANTHROPIC;
    }
    if (path.startsWith("/v1beta/") || GEMINI_V1.matcher(path).matches()) {
      return Provider.GEMINI;
    }
    if (path.startsWith("/v1/")) {
      return anthropicVersion ? Provider.ANTHROPIC : Provider.OPENAI;
    }
    return null;
  }

  private static boolean isCompletions(String path) {
    return path.endsWith("/chat/completions") || path.endsWith("/v1/completions");
  }

  /** "/v1beta/models/gemini-2.5-flash:streamGenerateContent" gives "gemini-2.5-flash". */
  static Optional<String> geminiModel(String path) {
    Matcher m = GEMINI_MODEL.matcher(path);
    return m.find() ? Optional.of(m.group(1)) : Optional.empty();
  }

  private static String stripQuery(String path) {
    int end = path.length();
    int q = path.indexOf('?');
    int h = path.indexOf('#');
    if (q >= 0) {
      end = q;
    }
    if (h >= 0 && h < end) {
      end = h;
    }
    return path.substring(0, end);
  }
}
