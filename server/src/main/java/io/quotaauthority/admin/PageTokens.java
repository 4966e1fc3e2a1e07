package io.quotaauthority.admin;

import io.quotaauthority.keys.KeyIds;
import io.quotaauthority.text.AsciiDecimal;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * Keyset page tokens, opaque to callers and bound to the listing that issued them: base64url
 * (unpadded) of {@code <scope>/<position>}, where the scope is {@code keys} for ListKeys and {@code
 * usage:<key_id>} for ListUsage, and the position is the last id of the previous page. A token
 * handed to another call (a ListKeys token to ListUsage, key 1's usage token for key 2) is refused
 * naming page_token, instead of silently starting somewhere in another list.
 *
 * <p>No secret is involved, on purpose: a token must work on every instance behind a load balancer
 * and after a restart, and forging one gains nothing (it only names where a listing the caller may
 * read anyway resumes). Only the canonical encoding of a well-formed token is accepted, so each
 * position has one token.
 */
public final class PageTokens {
  /** The scope of ListKeys tokens. */
  public static final String KEYS = "keys";

  /** Far longer than any token this class issues; longer input is refused before decoding. */
  private static final int MAX_TOKEN = 96;

  private static final String FOREIGN = " is not a token this server issued";

  private PageTokens() {}

  /** The scope of ListUsage tokens for one key. */
  public static String usage(long keyId) {
    return "usage:" + keyId;
  }

  public static String encode(String scope, long position) {
    return Base64.getUrlEncoder()
        .withoutPadding()
        .encodeToString((scope + "/" + position).getBytes(StandardCharsets.US_ASCII));
  }

  /**
   * The position in a token of this scope, 0 for an empty token (the first page);
   * IllegalArgumentException naming the field for anything else.
   */
  public static long decode(String field, String token, String scope) {
    if (token == null || token.isEmpty()) {
      return 0;
    }
    if (token.length() > MAX_TOKEN) {
      throw new IllegalArgumentException(field + FOREIGN);
    }
    byte[] bytes;
    try {
      bytes = Base64.getUrlDecoder().decode(token);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(field + FOREIGN);
    }
    String text =
        new String(bytes, StandardCharsets.ISO_8859_1); // one char per byte, no decoding error
    int slash = text.lastIndexOf('/');
    long position =
        slash < 0 ? AsciiDecimal.MALFORMED : AsciiDecimal.parse(text.substring(slash + 1));
    // Re-encoding must give the token back: padding or stray low bits would be a second spelling.
    if (position <= 0 || !encode(text.substring(0, slash), position).equals(token)) {
      throw new IllegalArgumentException(field + FOREIGN);
    }
    String issuedFor = text.substring(0, slash);
    if (!issuedFor.equals(scope)) {
      String call = describe(issuedFor);
      if (call == null) {
        throw new IllegalArgumentException(field + FOREIGN);
      }
      throw new IllegalArgumentException(
          field
              + " was issued by "
              + call
              + ", not "
              + describe(scope)
              + "; pass back the next_page_token of the same call");
    }
    return position;
  }

  /** "ListKeys", "ListUsage for key_id 7", or null for a scope this class never issues. */
  private static String describe(String scope) {
    if (scope.equals(KEYS)) {
      return "ListKeys";
    }
    if (scope.startsWith("usage:")) {
      long keyId = KeyIds.tryParse(scope.substring("usage:".length()));
      return keyId < 0 ? null : "ListUsage for key_id " + keyId;
    }
    return null;
  }

  /** Rows a page holds when the caller asks for none in particular (page_size 0). */
  public static final int DEFAULT_PAGE_SIZE = 100;

  /** The most rows one page may hold, for every List RPC and the CLI's --page-size. */
  public static final int MAX_PAGE_SIZE = 1000;

  /** page_size 0 means the default; anything outside 0..max names the field. */
  public static int pageSize(int requested) {
    if (requested < 0 || requested > MAX_PAGE_SIZE) {
      throw new IllegalArgumentException("page_size must be between 0 and " + MAX_PAGE_SIZE);
    }
    return requested == 0 ? DEFAULT_PAGE_SIZE : requested;
  }
}
