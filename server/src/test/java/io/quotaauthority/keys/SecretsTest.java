package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SecretsTest {

  static byte[] sha256(String s) throws Exception {
    return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void newSecret_always_skDashAnd43Base62Characters() {
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < 1000; i++) {
      String secret = Secrets.newSecret();
      assertThat(secret).matches("sk-[0-9A-Za-z]{43}");
      seen.add(secret);
    }
    assertThat(seen).hasSize(1000);
  }

  @Test
  void newSecret_manySecrets_useEveryBase62Character() {
    Set<Character> chars = new HashSet<>();
    for (int i = 0; i < 200; i++) {
      for (char ch : Secrets.newSecret().substring(3).toCharArray()) {
        chars.add(ch);
      }
    }
    assertThat(chars).hasSize(62);
  }

  @Test
  void displayPrefix_secret_firstEightCharacters() {
    String secret = Secrets.newSecret();

    assertThat(Secrets.displayPrefix(secret))
        .isEqualTo(secret.substring(0, 8))
        .startsWith("sk-")
        .hasSize(8);
  }

  @Test
  void hash_secret_equalsSha256OfItsUtf8Bytes() throws Exception {
    String secret = Secrets.newSecret();

    assertThat(SecretHasher.hash(secret).toBytes()).isEqualTo(sha256(secret));
    assertThat(SecretHasher.hash(secret)).isEqualTo(KeyHash.of(sha256(secret)));
  }

  @Test
  void hash_nonAsciiText_equalsSha256OfItsUtf8Bytes() throws Exception {
    assertThat(SecretHasher.hash("sk-é✓").toBytes()).isEqualTo(sha256("sk-é✓"));
  }

  @Test
  void hash_emptyAndMaximumLength_equalsSha256() throws Exception {
    String longest = "a".repeat(SecretHasher.MAX_SECRET_LENGTH);

    assertThat(SecretHasher.hash("").toBytes()).isEqualTo(sha256(""));
    assertThat(SecretHasher.hash(longest).toBytes()).isEqualTo(sha256(longest));
  }

  @Test
  void hash_longerThanMaximum_equalsSha256() throws Exception {
    String tooLong = "b".repeat(SecretHasher.MAX_SECRET_LENGTH + 1);

    assertThat(SecretHasher.hash(tooLong).toBytes()).isEqualTo(sha256(tooLong));
  }

  @Test
  void hash_sameThreadTwice_scratchBuffersDoNotLeak() throws Exception {
    SecretHasher.hash("sk-" + "z".repeat(100));

    assertThat(SecretHasher.hash("sk-a").toBytes()).isEqualTo(sha256("sk-a"));
  }

  @Test
  void keyHash_wrongLength_refused() {
    assertThatThrownBy(() -> KeyHash.of(new byte[31]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("a SHA-256 digest has 32 bytes, got 31");
  }

  @Test
  void keyHash_toString_showsNoMoreThanFourBytes() throws Exception {
    KeyHash h = KeyHash.of(sha256("sk-abc"));

    assertThat(h.toString()).matches("KeyHash\\[[0-9a-f]{8}…\\]");
  }
}
