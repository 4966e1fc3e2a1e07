package io.quotaauthority.provider;

import java.util.Locale;

/**
 * The LLM provider a request is for. Check uses it for the key's source and the denial's shape,
 * metering for the usage format and prices, and {@link #wireName()} is what {@code
 * UsageReport.provider} and the metrics carry. Which provider a request is for is decided in one
 * place only: {@link ProviderClassifier}.
 */
public enum Provider {
  OPENAI("openai"),
  ANTHROPIC("anthropic"),
  GEMINI("gemini");

  private final String wireName;

  Provider(String wireName) {
    this.wireName = wireName;
  }

  /** The lower-case name stored with the report. */
  public String wireName() {
    return wireName;
  }

  /**
   * The provider a route names ({@code context_extensions.provider}), case-insensitive, or null
   * when the name is absent or not one of ours (then the path decides).
   */
  public static Provider named(String name) {
    if (name == null) {
      return null;
    }
    return switch (name.trim().toLowerCase(Locale.ROOT)) {
      case "openai" -> OPENAI;
      case "anthropic" -> ANTHROPIC;
      case "gemini" -> GEMINI;
      default -> null;
    };
  }
}
