package io.quotaauthority.authz;

import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderClassifier;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * Finds the API key in a request as Envoy describes it, in this order: {@code authorization: Bearer
 * <key>} (scheme case-insensitive), {@code x-api-key}, {@code x-goog-api-key}, then for Gemini
 * requests only ({@link ProviderClassifier}), the {@code key} query parameter. Envoy lowercases
 * header names and fills either {@code headers} or, with {@code encode_raw_headers}, {@code
 * header_map} with raw bytes.
 */
public final class KeyExtractor {
  private KeyExtractor() {}

  /**
   * The provider a Check is for: the route's {@code context_extensions.provider} when it names one
   * (any case), else the path and the {@code anthropic-version} header, by the rule metering
   * follows too ({@link ProviderClassifier}); null when none applies (a plain error shape).
   */
  public static Provider provider(AttributeContext attributes) {
    AttributeContext.HttpRequest http = attributes.getRequest().getHttp();
    Map<String, String> headers = http.getHeadersMap();
    List<HeaderValue> raw = http.hasHeaderMap() ? http.getHeaderMap().getHeadersList() : List.of();
    return ProviderClassifier.classify(
        attributes.getContextExtensionsMap().get("provider"),
        path(http, headers, raw),
        header(headers, raw, "anthropic-version") != null);
  }

  /**
   * The presented key, or null when the request carries none (or only empty ones).
   *
   * @param provider the request's provider (see {@link #provider}), or null: only on Gemini
   *     requests, where Google's API accepts it, is a {@code ?key=} query parameter read
   */
  public static PresentedKey extract(AttributeContext.HttpRequest http, Provider provider) {
    Map<String, String> headers = http.getHeadersMap();
    List<HeaderValue> raw = http.hasHeaderMap() ? http.getHeaderMap().getHeadersList() : List.of();
    String bearer = bearer(header(headers, raw, "authorization"));
    if (bearer != null) {
      return new PresentedKey(bearer, false);
    }
    String apiKey = nonEmpty(header(headers, raw, "x-api-key"));
    if (apiKey != null) {
      return new PresentedKey(apiKey, false);
    }
    String googKey = nonEmpty(header(headers, raw, "x-goog-api-key"));
    if (googKey != null) {
      return new PresentedKey(googKey, false);
    }
    if (provider == Provider.GEMINI) {
      String path = path(http, headers, raw);
      String fromQuery = path == null ? null : nonEmpty(queryParameter(path, "key"));
      if (fromQuery != null) {
        return new PresentedKey(fromQuery, true);
      }
    }
    return null;
  }

  /**
   * The request method: Envoy's {@code method} field, else the {@code :method} header (or null).
   */
  public static String method(AttributeContext.HttpRequest http) {
    if (!http.getMethod().isEmpty()) {
      return http.getMethod();
    }
    return header(
        http.getHeadersMap(),
        http.hasHeaderMap() ? http.getHeaderMap().getHeadersList() : List.of(),
        ":method");
  }

  /** The request path with its query: Envoy's {@code path} field, else the {@code :path} header. */
  public static String path(AttributeContext.HttpRequest http) {
    return path(
        http,
        http.getHeadersMap(),
        http.hasHeaderMap() ? http.getHeaderMap().getHeadersList() : List.of());
  }

  private static String path(
      AttributeContext.HttpRequest http, Map<String, String> headers, List<HeaderValue> raw) {
    if (!http.getPath().isEmpty()) {
      return http.getPath();
    }
    return header(headers, raw, ":path");
  }

  /** First value of a (lowercase) header from either representation. */
  static String header(Map<String, String> headers, List<HeaderValue> raw, String name) {
    String v = headers.get(name);
    if (v != null) {
      return v;
    }
    for (int i = 0, n = raw.size(); i < n; i++) {
      HeaderValue h = raw.get(i);
      if (h.getKey().equalsIgnoreCase(name)) {
        // raw_value holds bytes that need not be UTF-8; ISO-8859-1 maps each byte to one char,
        // so odd bytes survive as characters that simply never match a key.
        return h.getRawValue().isEmpty()
            ? h.getValue()
            : h.getRawValue().toString(StandardCharsets.ISO_8859_1);
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
