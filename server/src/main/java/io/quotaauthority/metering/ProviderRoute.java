package io.quotaauthority.metering;

import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderClassifier;
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

  private static final Pattern GEMINI_MODEL = Pattern.compile("/models/([^/:]+)(?::|$)");

  /**
   * The route of a request, or empty when it is not one we meter. The provider comes from {@link
   * ProviderClassifier}, the rule Check follows too, by path: ext_proc gets no route hint (Envoy
   * sends context_extensions to ext_authz only, and Check puts no provider in its dynamic
   * metadata). Which requests are metered, and how their usage reads, is decided here.
   *
   * @param method the {@code :method}
   * @param rawPath the {@code :path}, query included
   * @param anthropicVersion whether the request carries an {@code anthropic-version} header, which
   *     every Anthropic request and no OpenAI request has
   */
  public static Optional<ProviderRoute> of(String method, String rawPath, boolean anthropicVersion) {
    if (rawPath == null || !"POST".equals(method)) {
      return Optional.empty();
    }
    String path = ProviderClassifier.withoutQuery(rawPath);
    // Uploads carry files, not tokens: Check reads their ?key= as Gemini's, metering skips them.
    if (path.startsWith("/upload/")) {
      return Optional.empty();
    }
    Provider provider = ProviderClassifier.classify(null, path, anthropicVersion);
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

  private static boolean isCompletions(String path) {
    return path.endsWith("/chat/completions") || path.endsWith("/v1/completions");
  }

  /** "/v1beta/models/gemini-2.5-flash:streamGenerateContent" gives "gemini-2.5-flash". */
  static Optional<String> geminiModel(String path) {
    Matcher m = GEMINI_MODEL.matcher(path);
    return m.find() ? Optional.of(m.group(1)) : Optional.empty();
  }
}
