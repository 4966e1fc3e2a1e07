package io.quotaauthority.config;

import io.quotaauthority.text.VisibleAscii;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Optional;

/**
 * The one rule every bearer token meets, wherever it comes from (a setting, a secret file, a
 * generated file, {@code tokens hash}): at least {@value #MIN_LENGTH} characters, each printable
 * ASCII other than space (0x21..0x7E). Also how a token becomes the SHA-256 digest the server
 * keeps.
 */
public final class Tokens {
  /** 32 characters: with the generator's alphabets (hex, base64url) at least 128 bits. */
  public static final int MIN_LENGTH = 32;

  private Tokens() {}

  /**
   * What is wrong with this token, if anything, in words that never repeat the token itself (the
   * answer ends up in logs and on stderr).
   */
  public static Optional<String> problem(String token) {
    int bad = VisibleAscii.firstInvalid(token);
    if (bad >= 0) {
      return Optional.of(
          "must be printable ASCII without spaces (character " + (bad + 1) + " is not)");
    }
    if (token.length() < MIN_LENGTH) {
      return Optional.of(
          "must be at least "
              + MIN_LENGTH
              + " characters, got "
              + token.length()
              + " (generate one with: openssl rand -hex 32)");
    }
    return Optional.empty();
  }

  /** Throws {@link ConfigException} "{@code what} must be ..." when the token breaks the rule. */
  public static String check(String what, String token) {
    problem(token)
        .ifPresent(
            p -> {
              throw new ConfigException(what + " " + p);
            });
    return token;
  }

  /** SHA-256 of the token's bytes: what is kept in memory and in a QUOTA_ADMIN_TOKENS_FILE line. */
  public static byte[] digest(String token) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required of every JVM", e);
    }
  }

  public static String digestHex(String token) {
    return HexFormat.of().formatHex(digest(token));
  }
}
