package io.quotaauthority.authz;

/** Whose API a request is for: decides the shape of a denial body. */
public enum Provider {
  OPENAI,
  ANTHROPIC,
  GEMINI,
  /** Not a provider path we know: a plain {"error":{"code","message"}}. */
  GENERIC;

  /**
   * From Envoy's {@code context_extensions.provider} when set (it wins), else from the path.
   *
   * @param extension "openai", "anthropic", "gemini", or null
   */
  public static Provider of(String extension, String path) {
    if (extension != null) {
      switch (extension) {
        case "openai":
          return OPENAI;
        case "anthropic":
          return ANTHROPIC;
        case "gemini":
          return GEMINI;
        default:
          break;
      }
    }
    if (path == null) {
      return GENERIC;
    }
    if (path.startsWith("/v1/messages")) {
      return ANTHROPIC;
    }
    if (path.startsWith("/v1beta/")) {
      return GEMINI;
    }
    if (path.startsWith("/v1/")) {
      return OPENAI;
    }
    return GENERIC;
  }
}
