package io.quotaauthority.authz;

import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderClassifier;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;

/**
 * Finds the API key in a request's {@link CheckFacts}, in this order: {@code authorization: Bearer
 * <key>} (scheme case-insensitive), {@code x-api-key}, {@code x-goog-api-key}, then for Gemini
 * requests only ({@link ProviderClassifier}), the {@code key} query parameter.
 */
public final class KeyExtractor {
  private KeyExtractor() {}

  /**
   * The provider a Check is for: the route's {@code context_extensions.provider} when it names one
   * (any case), else the path and the {@code anthropic-version} header, by the rule metering
   * follows too ({@link ProviderClassifier}); null when none applies (a plain error shape).
   */
  public static Provider provider(CheckFacts request) {
    return ProviderClassifier.classify(
        request.providerExtension(), request.path(), request.anthropicVersion());
  }

  /**
   * The presented key, or null when the request carries none (or only empty ones).
   *
   * @param provider the request's provider (see {@link #provider}), or null: only on Gemini
   *     requests, where Google's API accepts it, is a {@code ?key=} query parameter read
   */
  public static PresentedKey extract(CheckFacts request, Provider provider) {
    String bearer = bearer(request.authorization());
    if (bearer != null) {
      return new PresentedKey(bearer, false);
    }
    String apiKey = nonEmpty(request.apiKey());
    if (apiKey != null) {
      return new PresentedKey(apiKey, false);
    }
    String googKey = nonEmpty(request.googApiKey());
    if (googKey != null) {
      return new PresentedKey(googKey, false);
    }
    if (provider == Provider.GEMINI) {
      String path = request.path();
      String fromQuery = path == null ? null : nonEmpty(queryParameter(path, "key"));
      if (fromQuery != null) {
        return new PresentedKey(fromQuery, true);
      }
    }
    return null;
  }

  private static String bearer(String authorization) {
    if (authorization == null || authorization.length() < 7) {
      return null;
    }
    if (!authorization.regionMatches(true, 0, "bearer ", 0, 7)) {
      return null;
    }
    return nonEmpty(authorization.substring(7).trim());
  }

  private static String nonEmpty(String v) {
    if (v == null) {
      return null;
    }
    String t = v.trim();
    return t.isEmpty() ? null : t;
  }

  static String queryParameter(String path, String name) {
    int q = path.indexOf('?');
    if (q < 0) {
      return null;
    }
    int i = q + 1;
    while (i <= path.length()) {
      int amp = path.indexOf('&', i);
      int end = amp < 0 ? path.length() : amp;
      int eq = path.indexOf('=', i);
      if (eq > i
          && eq < end
          && path.regionMatches(i, name, 0, name.length())
          && eq - i == name.length()) {
        try {
          return URLDecoder.decode(path.substring(eq + 1, end), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException malformed) {
          return path.substring(eq + 1, end);
        }
      }
      if (amp < 0) {
        break;
      }
      i = amp + 1;
    }
    return null;
  }
}
