package io.quotaauthority.bench;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;

/**
 * The bench's API keys, all derived from their index {@code i} (id {@code i + 1}): the secret is
 * {@code sk-bench-} and {@code i} zero-padded to 46 characters (the length of an issued secret), so
 * the load generator can write any key's secret into a request without keeping a table of them.
 *
 * <p>The mix is fixed by {@code i mod 20}: 7 is exhausted (quota 1, used 1: 429), 13 is expired
 * (403), the other 18 of 20 are allowed, a quarter of them unlimited and two thirds of the limited
 * ones with some usage. A uniform pick over any range of 20+ keys is therefore ~90/5/5.
 */
final class BenchKeys {
  static final String PREFIX = "sk-bench-";

  /** "sk-" and 43 characters, like a secret the server issues. */
  static final int LENGTH = 46;

  static final int DIGITS = LENGTH - PREFIX.length();

  enum Kind {
    LIMITED(0),
    UNLIMITED(0),
    EXHAUSTED(8), // RESOURCE_EXHAUSTED: HTTP 429
    EXPIRED(7); // PERMISSION_DENIED: HTTP 403

    /** The google.rpc code of CheckResponse.status that Check must answer. */
    final int checkCode;

    Kind(int checkCode) {
      this.checkCode = checkCode;
    }
  }

  private BenchKeys() {}

  static long id(long index) {
    return index + 1;
  }

  static Kind kind(long i) {
    long m = i % 20;
    if (m == 7) {
      return Kind.EXHAUSTED;
    }
    if (m == 13) {
      return Kind.EXPIRED;
    }
    return i % 4 == 0 ? Kind.UNLIMITED : Kind.LIMITED;
  }

  static String secret(long i) {
    byte[] b = new byte[LENGTH];
    byte[] p = PREFIX.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(p, 0, b, 0, p.length);
    writeDigits(b, p.length, i);
    return new String(b, StandardCharsets.US_ASCII);
  }

  /** Writes {@code i} as {@link #DIGITS} ASCII digits at {@code offset}. */
  static void writeDigits(byte[] buf, int offset, long i) {
    long v = i;
    for (int k = offset + DIGITS - 1; k >= offset; k--) {
      buf[k] = (byte) ('0' + (v % 10));
      v /= 10;
    }
  }

  static byte[] sha256(String secret) {
    try {
      return MessageDigest.getInstance("SHA-256")
          .digest(secret.getBytes(StandardCharsets.US_ASCII));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Quota in USD with 8 decimals, as NUMERIC(20,8) hands it back; "0.00000000" is unlimited. */
  static String quota(long i) {
    return switch (kind(i)) {
      case EXHAUSTED -> "1.00000000";
      case UNLIMITED -> "0.00000000";
      default -> (10 + i % 490) + "." + pad8((i * 7_919L) % 100_000_000L);
    };
  }

  /** Usage so far: below 0.05 USD for allowed keys, so none of them is near its quota. */
  static String quotaUsed(long i) {
    if (kind(i) == Kind.EXHAUSTED) {
      return "1.00000000";
    }
    return i % 3 == 0 ? "0.00000000" : "0." + pad8((i * 104_729L) % 5_000_000L);
  }

  /** Expired keys a day in the past, half the others in a year, the rest never. */
  static Instant expiresAt(long i, Instant now) {
    if (kind(i) == Kind.EXPIRED) {
      return now.minus(Duration.ofDays(1));
    }
    return i % 2 == 0 ? null : now.plus(Duration.ofDays(365));
  }

  static BigDecimal decimal(String s) {
    return new BigDecimal(s);
  }

  private static String pad8(long v) {
    String s = Long.toString(v);
    return "00000000".substring(s.length()) + s;
  }
}
