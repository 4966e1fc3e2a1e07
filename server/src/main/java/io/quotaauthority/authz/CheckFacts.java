package io.quotaauthority.authz;

import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * All that Check's decision reads of an Envoy CheckRequest: the route's {@code provider} context
 * extension, the method and path, the key headers, {@code anthropic-version}, and the downstream
 * address. Check builds it straight from the request's bytes ({@link CheckReader}); {@link #of}
 * builds it from a parsed message, and is the rule the byte reader must agree with.
 *
 * <p>A header is read from Envoy's {@code headers} map (lowercase names, the last entry of a name
 * wins as in any protobuf map) or, when the map lacks it, from the first {@code header_map} entry
 * whose name matches ignoring ASCII case ({@code encode_raw_headers}): its {@code raw_value} as
 * ISO-8859-1 (any byte survives as a character that simply matches no key), else its {@code value}.
 *
 * @param providerExtension {@code context_extensions["provider"]}, or null when absent
 * @param method Envoy's {@code method}, else the {@code :method} header, or null
 * @param path Envoy's {@code path} (query included), else the {@code :path} header, or null
 * @param authorization the {@code authorization} header, or null
 * @param apiKey the {@code x-api-key} header, or null
 * @param googApiKey the {@code x-goog-api-key} header, or null
 * @param anthropicVersion whether an {@code anthropic-version} header is present
 * @param sourceAddress {@code source.address.socket_address.address}, or null when the source has
 *     no socket address (none, a pipe, an internal address)
 */
public record CheckFacts(
    String providerExtension,
    String method,
    String path,
    String authorization,
    String apiKey,
    String googApiKey,
    boolean anthropicVersion,
    String sourceAddress) {

  /** The header names Check reads, in {@link Header} order (lowercase, ASCII). */
  static final String[] HEADER_NAMES = {
    "authorization", "x-api-key", "x-goog-api-key", "anthropic-version", ":method", ":path"
  };

  /** Indexes into {@link #HEADER_NAMES}. */
  static final int AUTHORIZATION = 0;

  static final int API_KEY = 1;
  static final int GOOG_API_KEY = 2;
  static final int ANTHROPIC_VERSION = 3;
  static final int METHOD = 4;
  static final int PATH = 5;

  /** The facts of a parsed request (the reference {@link CheckReader} is tested against). */
  public static CheckFacts of(CheckRequest request) {
    AttributeContext attributes = request.getAttributes();
    AttributeContext.HttpRequest http = attributes.getRequest().getHttp();
    Map<String, String> headers = http.getHeadersMap();
    List<HeaderValue> raw = http.hasHeaderMap() ? http.getHeaderMap().getHeadersList() : List.of();
    String[] values = new String[HEADER_NAMES.length];
    for (int i = 0; i < values.length; i++) {
      values[i] = header(headers, raw, HEADER_NAMES[i]);
    }
    String source =
        attributes.getSource().getAddress().hasSocketAddress()
            ? attributes.getSource().getAddress().getSocketAddress().getAddress()
            : null;
    return of(
        attributes.getContextExtensionsMap().get("provider"),
        http.getMethod(),
        http.getPath(),
        values,
        source);
  }

  /**
   * @param method Envoy's method field ("" when unset)
   * @param path Envoy's path field ("" when unset)
   * @param headers the values of {@link #HEADER_NAMES}, null where absent
   */
  static CheckFacts of(
      String providerExtension, String method, String path, String[] headers, String source) {
    return new CheckFacts(
        providerExtension,
        method.isEmpty() ? headers[METHOD] : method,
        path.isEmpty() ? headers[PATH] : path,
        headers[AUTHORIZATION],
        headers[API_KEY],
        headers[GOOG_API_KEY],
        headers[ANTHROPIC_VERSION] != null,
        source);
  }

  private static String header(Map<String, String> headers, List<HeaderValue> raw, String name) {
    String v = headers.get(name);
    if (v != null) {
      return v;
    }
    for (int i = 0, n = raw.size(); i < n; i++) {
      HeaderValue h = raw.get(i);
      if (asciiEqualsIgnoreCase(h.getKey(), name)) {
        return h.getRawValue().isEmpty()
            ? h.getValue()
            : h.getRawValue().toString(StandardCharsets.ISO_8859_1);
      }
    }
    return null;
  }

  /**
   * Header names are ASCII: only A-Z and a-z are folded, so "x-api-\u212Aey" (a Kelvin sign, which
   * String.equalsIgnoreCase would fold to k) is no x-api-key.
   */
  static boolean asciiEqualsIgnoreCase(String a, String lowercase) {
    if (a.length() != lowercase.length()) {
      return false;
    }
    for (int i = 0; i < a.length(); i++) {
      char c = a.charAt(i);
      if (c >= 'A' && c <= 'Z') {
        c = (char) (c + ('a' - 'A'));
      }
      if (c != lowercase.charAt(i)) {
        return false;
      }
    }
    return true;
  }

  @Override
  public String toString() {
    // The key headers are secrets: a logged or asserted-on record must never print them.
    return "CheckFacts[provider="
        + providerExtension
        + ", method="
        + method
        + ", path="
        + (path == null ? null : path.replaceAll("([?&]key=)[^&]*", "$1…"))
        + ", keys present="
        + (authorization != null)
        + "/"
        + (apiKey != null)
        + "/"
        + (googApiKey != null)
        + ", anthropicVersion="
        + anthropicVersion
        + ", source="
        + sourceAddress
        + "]";
  }
}
