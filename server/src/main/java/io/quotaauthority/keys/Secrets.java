package io.quotaauthority.keys;

import java.security.SecureRandom;

/** New API key secrets: "sk-" and 43 base62 characters from SecureRandom (about 256 bits). */
public final class Secrets {
  public static final String PREFIX = "sk-";
  public static final int RANDOM_CHARS = 43;

  /** How much of a secret is kept for display: "sk-" and five characters. */
  public static final int DISPLAY_PREFIX_LENGTH = 8;

  private static final char[] BASE62 =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".toCharArray();
  private static final SecureRandom RANDOM = new SecureRandom();

  private Secrets() {}

  public static String newSecret() {
    StringBuilder sb = new StringBuilder(PREFIX.length() + RANDOM_CHARS).append(PREFIX);
    while (sb.length() < PREFIX.length() + RANDOM_CHARS) {
      // Rejection sampling keeps every character uniform: 248 = 4 * 62, so bytes 248..255 retry.
      int v = RANDOM.nextInt(256);
      if (v < 248) {
        sb.append(BASE62[v % 62]);
      }
    }
    return sb.toString();
  }

  public static String displayPrefix(String secret) {
    return secret.substring(0, Math.min(DISPLAY_PREFIX_LENGTH, secret.length()));
  }
}
