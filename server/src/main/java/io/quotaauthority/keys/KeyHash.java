package io.quotaauthority.keys;

import java.nio.ByteBuffer;
import java.util.HexFormat;

/**
 * SHA-256 of an API key's secret: the cache key and the only form in which a secret is kept. Held
 * as four longs rather than a byte[] so that an entry costs one 48-byte object and equals() is four
 * comparisons.
 */
public final class KeyHash {
  private final long a;
  private final long b;
  private final long c;
  private final long d;

  private KeyHash(long a, long b, long c, long d) {
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /** From the 32 bytes of a SHA-256 digest starting at {@code offset}. */
  public static KeyHash of(byte[] digest, int offset) {
    ByteBuffer buf = ByteBuffer.wrap(digest, offset, 32);
    return new KeyHash(buf.getLong(), buf.getLong(), buf.getLong(), buf.getLong());
  }

  public static KeyHash of(byte[] digest) {
    if (digest.length != 32) {
      throw new IllegalArgumentException("a SHA-256 digest has 32 bytes, got " + digest.length);
    }
    return of(digest, 0);
  }

  /** Builds a hash from its four longs, big-endian order (as {@link LiveKeyHashes} stores them). */
  static KeyHash ofLongs(long a, long b, long c, long d) {
    return new KeyHash(a, b, c, d);
  }

  /** The i-th of the four big-endian longs (0..3), for compact storage. */
  long word(int i) {
    return switch (i) {
      case 0 -> a;
      case 1 -> b;
      case 2 -> c;
      case 3 -> d;
      default -> throw new IndexOutOfBoundsException(i);
    };
  }

  public byte[] toBytes() {
    return ByteBuffer.allocate(32).putLong(a).putLong(b).putLong(c).putLong(d).array();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof KeyHash other
        && a == other.a
        && b == other.b
        && c == other.c
        && d == other.d;
  }

  @Override
  public int hashCode() {
    // SHA-256 output is uniform: any 32 of its bits are as good a hash as any other.
    return (int) a;
  }

  /** Hex of the hash (not of the secret): safe to show, still better kept out of logs. */
  @Override
  public String toString() {
    return "KeyHash[" + HexFormat.of().formatHex(toBytes(), 0, 4) + "…]";
  }
}
