package io.quotaauthority.keys;

import java.nio.charset.StandardCharsets;
import java.security.DigestException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Turns a presented secret into its {@link KeyHash}. Runs on every Check, so each thread keeps its
 * own digest and scratch buffers: the only allocation per call is the 48-byte KeyHash itself.
 */
public final class SecretHasher {
  /** Longer secrets are not keys we issued; hashing them would only cost CPU. */
  public static final int MAX_SECRET_LENGTH = 256;

  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  private SecretHasher() {}

  /**
   * The hash of a secret; fast (no allocation but the result) for ASCII secrets of at most {@link
   * #MAX_SECRET_LENGTH} characters, exact but slower for anything else.
   */
  public static KeyHash hash(CharSequence secret) {
    int n = secret.length();
    if (n > MAX_SECRET_LENGTH) {
      // Longer than the scratch buffer: not a key we issued, but its hash must still be right.
      return hashUtf8(secret.toString().getBytes(StandardCharsets.UTF_8));
    }
    Scratch s = SCRATCH.get();
    byte[] in = s.input;
    for (int i = 0; i < n; i++) {
      char ch = secret.charAt(i);
      if (ch >= 0x80) {
        // Our secrets are base62; anything else hashes the slow, exact way and will simply miss.
        return hashUtf8(secret.toString().getBytes(StandardCharsets.UTF_8));
      }
      in[i] = (byte) ch;
    }
    MessageDigest md = s.digest;
    md.update(in, 0, n);
    try {
      md.digest(s.output, 0, 32);
    } catch (DigestException e) {
      throw new IllegalStateException(e);
    }
    return KeyHash.of(s.output, 0);
  }

  public static KeyHash hashUtf8(byte[] secret) {
    return KeyHash.of(newDigest().digest(secret));
  }

  private static MessageDigest newDigest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }

  private static final class Scratch {
    final MessageDigest digest = newDigest();
    final byte[] input = new byte[MAX_SECRET_LENGTH];
    final byte[] output = new byte[32];
  }
}
