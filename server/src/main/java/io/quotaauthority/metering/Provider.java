package io.quotaauthority.metering;

/** The LLM provider a metered request went to, as written into {@code UsageReport.provider}. */
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
}
