package io.quotaauthority.metering;

import io.quotaauthority.provider.Endpoints;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderClassifier;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which provider an HTTP request goes to and how its usage is read. Only the endpoints the one
 * table ({@link Endpoints}, which Check follows too) calls {@link Endpoints.Kind#METERED} are
 * metered: a GET that fetches a stored response (OpenAI's {@code GET /v1/responses/{id}}) carries
 * the same usage object but consumed no new tokens, and an upload carries files, not tokens.
 *
 * @param endpoint the request's row of {@link Endpoints}
 * @param pathModel the model named in the path (Gemini), else empty
 * @param addsStreamUsage true for OpenAI-style (chat) completions, whose streams carry usage only
 *     when the request asks for {@code stream_options.include_usage}
 */
public record ProviderRoute(
    Provider provider,
    Endpoints.Row endpoint,
    UsageFormat format,
    Optional<String> pathModel,
    boolean addsStreamUsage) {

  private static final Pattern GEMINI_MODEL = Pattern.compile("/models/([^/:]+)(?::|$)");

  /**
   * The route of a request, or empty when it is not one we meter. The provider comes from {@link
   * ProviderClassifier}, the rule Check follows too, by path: ext_proc gets no route hint (Envoy
   * sends context_extensions to ext_authz only, and Check puts no provider in its dynamic
   * metadata). Which requests are metered is {@link Endpoints}' answer; how their usage reads is
   * decided here.
   *
   * @param method the {@code :method}
   * @param rawPath the {@code :path}, query included
   * @param anthropicVersion whether the request carries an {@code anthropic-version} header, which
   *     every Anthropic request and no OpenAI request has
   */
  public static Optional<ProviderRoute> of(
      String method, String rawPath, boolean anthropicVersion) {
    if (rawPath == null || method == null) {
      return Optional.empty();
    }
    String path = ProviderClassifier.withoutQuery(rawPath);
    Provider provider = ProviderClassifier.classify(null, path, anthropicVersion);
    if (provider == null) {
      return Optional.empty();
    }
    Endpoints.Row endpoint = Endpoints.classify(provider, method, path);
    if (endpoint.kind() != Endpoints.Kind.METERED) {
      return Optional.empty();
    }
    // Chat and legacy completions, OpenAI's or Google's OpenAI-compatible ones.
    boolean completions =
        endpoint == Endpoints.OPENAI_CHAT || endpoint == Endpoints.OPENAI_COMPLETIONS;
    return Optional.of(
        switch (provider) {
          case ANTHROPIC ->
              new ProviderRoute(provider, endpoint, UsageFormat.ANTHROPIC, Optional.empty(), false);
          case OPENAI ->
              new ProviderRoute(
                  provider, endpoint, UsageFormat.OPENAI, Optional.empty(), completions);
          // Gemini's OpenAI-compatible surface: OpenAI bodies and usage, billed by Google.
          case GEMINI ->
              endpoint.provider() == Provider.OPENAI
                  ? new ProviderRoute(
                      provider, endpoint, UsageFormat.OPENAI, Optional.empty(), completions)
                  : new ProviderRoute(
                      provider, endpoint, UsageFormat.GEMINI, geminiModel(path), false);
        });
  }

  /** "/v1beta/models/gemini-2.5-flash:streamGenerateContent" gives "gemini-2.5-flash". */
  static Optional<String> geminiModel(String path) {
    Matcher m = GEMINI_MODEL.matcher(path);
    return m.find() ? Optional.of(m.group(1)) : Optional.empty();
  }
}
