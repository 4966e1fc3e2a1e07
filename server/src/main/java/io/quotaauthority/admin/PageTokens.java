package io.quotaauthority.admin;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/** Opaque keyset page tokens: the last id of the previous page, base64url. */
public final class PageTokens {
  private static final String PREFIX = "after:";

  private PageTokens() {}

  public static String encode(long lastId) {
    return Base64.getUrlEncoder().withoutPadding()
        .encodeToString((PREFIX + lastId).getBytes(StandardCharsets.US_ASCII));
  }

  /** The id in the token, 0 for an empty token; IllegalArgumentException naming the field. */
  public static long decode(String field, String token) {
    if (token == null || token.isEmpty()) {
      return 0;
    }
    try {
      String text = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.US_ASCII);
      if (!text.startsWith(PREFIX)) {
        throw new IllegalArgumentException();
      }
      long id = Long.parseLong(text.substring(PREFIX.length()));
      if (id < 0) {
        throw new IllegalArgumentException();
      }
      return id;
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(field + " is not a token this server issued");
    }
  }

  /** page_size 0 means the default; anything outside 0..max names the field. */
  public static int pageSize(int requested, int defaultSize, int max) {
    if (requested < 0 || requested > max) {
      throw new IllegalArgumentException("page_size must be between 0 and " + max);
    }
    return requested == 0 ? defaultSize : requested;
  }
}
