package io.quotaauthority.provider;

import java.util.regex.Pattern;

/**
 * Which provider a request is for: the one rule that Check (where a key may come from, the shape of
 * a denial) and metering (usage format, prices) both follow, so that they can never disagree about
 * a request. The route's hint wins when it names a provider; else the path decides.
 *
 * <p>Path rules, the query and fragment ignored:
 *
 * <ul>
 *   <li>{@code /v1/messages} and below: Anthropic.
 *   <li>{@code /v1beta/...}, {@code /upload/v1beta/...} and Gemini's stable model methods {@code
 *       /v1/models/<model>:<method>}: Gemini (Google's Generative Language API).
 *   <li>Any other {@code /v1/...}: Anthropic when the request carries an {@code anthropic-version}
 *       header (every Anthropic SDK sends it, no OpenAI one does), else OpenAI.
 *   <li>Anything else: no provider (null).
 * </ul>
 */
public final class ProviderClassifier {
  /**
   * Gemini's stable surface shares /v1/ with OpenAI; its model methods are unmistakable: a
   * lower-camel method after the model's colon. OpenAI fine-tune ids hold colons too ({@code
   * ft:gpt-4o-mini:org::id}), hence the excluded {@code ft:} and the method's letters-only rule (an
   * OpenAI id has digits or dashes after its colons).
   */
  private static final Pattern GEMINI_V1 =
      Pattern.compile("/v1/models/(?!ft:)[^/:]+:[a-z][A-Za-z]*");

  private ProviderClassifier() {}

  /**
   * @param hint the provider the route names (Envoy's {@code context_extensions.provider} for
   *     Check), or null; unknown names are ignored
   * @param path the request path, query included or not, or null
   * @param anthropicVersion whether the request carries an {@code anthropic-version} header
   * @return the provider, or null when neither the hint nor the path names one
   */
  public static Provider classify(String hint, String path, boolean anthropicVersion) {
    Provider named = Provider.named(hint);
    if (named != null) {
      return named;
    }
    if (path == null) {
      return null;
    }
    String p = withoutQuery(path);
    if (p.equals("/v1/messages") || p.startsWith("/v1/messages/")) {
      return Provider.ANTHROPIC;
    }
    // The prefix test first: Check runs this on every request, and most never need the regex.
    if (p.startsWith("/v1beta/")
        || p.startsWith("/upload/v1beta/")
        || (p.startsWith("/v1/models/") && GEMINI_V1.matcher(p).matches())) {
      return Provider.GEMINI;
    }
    if (p.startsWith("/v1/")) {
      return anthropicVersion ? Provider.ANTHROPIC : Provider.OPENAI;
    }
    return null;
  }

  /** The path without its query string or fragment. */
  public static String withoutQuery(String path) {
    int end = path.length();
    int q = path.indexOf('?');
    int h = path.indexOf('#');
    if (q >= 0) {
      end = q;
    }
    if (h >= 0 && h < end) {
      end = h;
    }
    return end == path.length() ? path : path.substring(0, end);
  }
}
