package io.quotaauthority.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class PageTokensTest {
  private static final String FOREIGN = "page_token is not a token this server issued";

  private static String b64(String text) {
    return Base64.getUrlEncoder()
        .withoutPadding()
        .encodeToString(text.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void decode_emptyToken_firstPage() {
    assertThat(PageTokens.decode("page_token", "", PageTokens.KEYS)).isZero();
    assertThat(PageTokens.decode("page_token", null, PageTokens.usage(3))).isZero();
  }

  @Test
  void decode_ownToken_roundTrips() {
    assertThat(
            PageTokens.decode(
                "page_token", PageTokens.encode(PageTokens.KEYS, 42), PageTokens.KEYS))
        .isEqualTo(42);
    assertThat(
            PageTokens.decode(
                "page_token",
                PageTokens.encode(PageTokens.usage(7), Long.MAX_VALUE),
                PageTokens.usage(7)))
        .isEqualTo(Long.MAX_VALUE);
  }

  @Test
  void decode_listKeysTokenForListUsage_refusedNamingBothCalls() {
    assertThatThrownBy(
            () ->
                PageTokens.decode(
                    "page_token", PageTokens.encode(PageTokens.KEYS, 5), PageTokens.usage(1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "page_token was issued by ListKeys, not ListUsage for key_id 1;"
                + " pass back the next_page_token of the same call");
  }

  @Test
  void decode_usageTokenOfAnotherKey_refused() {
    assertThatThrownBy(
            () ->
                PageTokens.decode(
                    "page_token", PageTokens.encode(PageTokens.usage(1), 5), PageTokens.usage(2)))
        .hasMessageStartingWith(
            "page_token was issued by ListUsage for key_id 1, not ListUsage for key_id 2");
    assertThatThrownBy(
            () ->
                PageTokens.decode(
                    "page_token", PageTokens.encode(PageTokens.usage(1), 5), PageTokens.KEYS))
        .hasMessageStartingWith("page_token was issued by ListUsage for key_id 1, not ListKeys");
  }

  @ParameterizedTest(name = "''{0}''")
  @ValueSource(
      strings = {
        "abc",
        "!!!",
        "a b",
        "====",
        "a2V5cy8",
        "YWZ0ZXI6NQ", // "after:5", the format before tokens were bound to their call
        "a2V5cy80Mg==", // "keys/42" padded: a second spelling of a valid token
        "a2V5cy80Mh", // "keys/42" with unused low bits set: the same bytes, another spelling
      })
  void decode_garbage_refusedAsForeign(String token) {
    assertThatThrownBy(() -> PageTokens.decode("page_token", token, PageTokens.KEYS))
        .hasMessage(FOREIGN);
  }

  @Test
  void encode_keysToken_isTheCanonicalBase64urlOfScopeAndPosition() {
    assertThat(PageTokens.encode(PageTokens.KEYS, 42)).isEqualTo("a2V5cy80Mg");
    assertThat(PageTokens.decode("page_token", "a2V5cy80Mg", PageTokens.KEYS)).isEqualTo(42);
  }

  @ParameterizedTest(name = "''{0}''")
  @ValueSource(
      strings = {
        "keys/0",
        "keys/-1",
        "keys/+1",
        "keys/01",
        "keys/\u0661",
        "keys/",
        "keys",
        "keys/9223372036854775808",
        "keys/1/2",
        "foo/1",
        "usage:/1",
        "usage:+1/1",
        "usage:0/1",
        "/1",
        "keys/1\n"
      })
  void decode_wellEncodedButNotIssued_refusedAsForeign(String text) {
    assertThatThrownBy(() -> PageTokens.decode("page_token", b64(text), PageTokens.KEYS))
        .hasMessage(FOREIGN);
  }

  @Test
  void decode_overlongToken_refusedBeforeDecoding() {
    assertThatThrownBy(() -> PageTokens.decode("page_token", "A".repeat(10_000), PageTokens.KEYS))
        .hasMessage(FOREIGN);
  }
}
