package io.quotaauthority.metering;

import java.util.Optional;

/**
 * Which provider an HTTP request goes to and how its usage is read, from its method and
 * {@code :path}. Only POSTs are metered: a GET that fetches a stored response (OpenAI's
 * {@code GET /v1/responses/{id}}) carries the same usage object but consumed no new tokens.
 *
 * @param pathModel the model named in the path (Gemini), else empty
 * @param addsStreamUsage true for OpenAI-style (chat) completions, whose streams carry usage only
 *     when the request asks for {@code stream_options.include_usage}
 */
public record ProviderRoute(
    Provider provider, UsageFormat format, Optional<String> pathModel, boolean addsStreamUsage) {

  /** The route of a request, or empty when it is not one we meter. */
  public static Optional<ProviderRoute> of(String method, String rawPath) {
    if (rawPath == null || !"POST".equals(method)) {
      return Optional.empty();
    }
    String path = stripQuery(rawPath);
    if (path.equals("/v1/messages") || path.startsWith("/v1/messages/")) {
      return Optional.of(new ProviderRoute(
          Provider.ANTHROPIC, UsageFormat.ANTHROPIC, Optional.empty(), false));
    }
    if (path.startsWith("/v1beta/")) {
      if (path.startsWith("/v1beta/openai/")) {
        // Gemini's OpenAI-compatible surface: OpenAI bodies and usage, billed by Google.
        return Optional.of(new ProviderRoute(
            Provider.GEMINI, UsageFormat.OPENAI, Optional.empty(), isCompletions(path)));
      }
      return Optional.of(new ProviderRoute(
          Provider.GEMINI, UsageFormat.GEMINI, geminiModel(path), false));
    }
    if (path.startsWith("/v1/")) {
      return Optional.of(new ProviderRoute(
          Provider.OPENAI, UsageFormat.OPENAI, Optional.empty(), isCompletions(path)));
    }
    return Optional.empty();
  }

  private static boolean isCompletions(String path) {
    return path.endsWith("/chat/completions") || path.endsWith("/v1/completions");
  }

  /** "/v1beta/models/gemini-2.5-flash:streamGenerateContent" gives "gemini-2.5-flash". */
  static Optional<String> geminiModel(String path) {
    int start = path.indexOf("/models/");
    if (start < 0) {
      return Optional.empty();
    }
    start += "/models/".length();
    int end = path.indexOf(':', start);
    if (end < 0) {
      end = path.length();
    }
    String model = path.substring(start, end);
    return model.isEmpty() || model.indexOf('/') >= 0 ? Optional.empty() : Optional.of(model);
  }

  private static String stripQuery(String path) {
    int q = path.indexOf('?');
    int h = path.indexOf('#');
    int end = path.length();
    if (q >= 0) {
      end = q;
    }
    if (h >= 0 && h < end) {
      end = h;
    }
    return path.substring(0, end);
  }
}
