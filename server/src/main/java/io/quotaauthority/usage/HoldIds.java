package io.quotaauthority.usage;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Ids of reporter holds (README, "Holds for usage-stream reporters"): what Check hands upstream in
 * x-quota-hold-id and a usage report names to settle the hold, on any instance.
 *
 * <p>The id carries what a settling instance needs without asking the holder: the key, the holding
 * instance (whose lease the charge draws on), the amount held and the expiry, plus a nonce, signed
 * with HMAC-SHA256 under the key every instance shares (cluster_secrets). A settlement draws on the
 * named instance's lease, so an id that no instance issued must never be honoured: a forged one
 * could shrink any instance's lease behind its back. Layout, base64url without padding after {@code
 * qh1_}: version (1), key id (8), expiry in epoch seconds (8), nonce (8), amount's length (1) and
 * unscaled value at 8 decimals (big-endian), instance id (UTF-8, the rest), then the first 16 bytes
 * of the MAC over all of that.
 */
public final class HoldIds {
  /** What every id starts with: the format's version, visible to an operator reading a header. */
  static final String PREFIX = "qh1_";

  /** The longest id this format can produce (instance ids are at most 128 bytes): the column's. */
  public static final int MAX_LENGTH = 256;

  private static final int MAC_BYTES = 16;
  private static final byte VERSION = 1;
  private static final Base64.Encoder ENCODER = Base64.getUrlEncoder().withoutPadding();
  private static final Base64.Decoder DECODER = Base64.getUrlDecoder();

  /** A hold as its id tells it. */
  public record Parsed(
      String id, long keyId, String instanceId, BigDecimal amount, Instant expiresAt) {}

  private final SecretKeySpec key;
  private final SecureRandom random = new SecureRandom();

  /**
   * @param secret the cluster's shared signing key, at least 32 bytes
   */
  public HoldIds(byte[] secret) {
    if (secret.length < 32) {
      throw new IllegalArgumentException("hold id signing key must be at least 32 bytes");
    }
    this.key = new SecretKeySpec(secret.clone(), "HmacSHA256");
  }

  /**
   * A new, signed id for a hold of {@code amount} (at most 8 decimals) on {@code keyId}, with what
   * it says as {@link #parse} reads it back (the expiry to the second), so the issuer need not
   * parse (and sign) it a second time.
   */
  public Parsed issue(long keyId, String instanceId, BigDecimal amount, Instant expiresAt) {
    byte[] unscaled = amount.setScale(8).unscaledValue().toByteArray();
    byte[] instance = instanceId.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(1 + 8 + 8 + 8 + 1 + unscaled.length + instance.length);
    b.put(VERSION).putLong(keyId).putLong(expiresAt.getEpochSecond()).putLong(random.nextLong());
    b.put((byte) unscaled.length).put(unscaled).put(instance);
    byte[] body = b.array();
    byte[] all = Arrays.copyOf(body, body.length + MAC_BYTES);
    System.arraycopy(mac(body), 0, all, body.length, MAC_BYTES);
    return new Parsed(
        PREFIX + ENCODER.encodeToString(all),
        keyId,
        instanceId,
        amount.setScale(8),
        Instant.ofEpochSecond(expiresAt.getEpochSecond()));
  }

  /**
   * The hold an id names, if an instance of this cluster issued it.
   *
   * @throws IllegalArgumentException naming hold_id when it is malformed or its signature is wrong
   */
  public Parsed parse(String id) {
    if (id.length() > MAX_LENGTH || !id.startsWith(PREFIX)) {
      throw invalid("is not a hold id this service issued");
    }
    byte[] all;
    try {
      all = DECODER.decode(id.substring(PREFIX.length()));
    } catch (IllegalArgumentException e) {
      throw invalid("is not a hold id this service issued");
    }
    int minimum = 1 + 8 + 8 + 8 + 1 + 1 + 1 + MAC_BYTES;
    if (all.length < minimum || all[0] != VERSION) {
      throw invalid("is not a hold id this service issued");
    }
    byte[] body = Arrays.copyOf(all, all.length - MAC_BYTES);
    byte[] given = Arrays.copyOfRange(all, body.length, all.length);
    // Constant time: the comparison must not tell a forger how many bytes were right.
    if (!MessageDigest.isEqual(Arrays.copyOf(mac(body), MAC_BYTES), given)) {
      throw invalid("has a wrong signature: not issued by this service");
    }
    ByteBuffer b = ByteBuffer.wrap(body, 1, body.length - 1);
    long keyId = b.getLong();
    long expires = b.getLong();
    b.getLong();
    int length = b.get();
    if (length < 1 || length > b.remaining() - 1) {
      throw invalid("is malformed");
    }
    byte[] unscaled = new byte[length];
    b.get(unscaled);
    byte[] instance = new byte[b.remaining()];
    b.get(instance);
    return new Parsed(
        id,
        keyId,
        new String(instance, StandardCharsets.UTF_8),
        new BigDecimal(new BigInteger(unscaled), 8),
        Instant.ofEpochSecond(expires));
  }

  /**
   * A report id for the charge of a hold at its expiry: derived from the hold id (report ids are at
   * most 128 characters), so a second attempt of that charge is a DUPLICATE, never a second charge.
   */
  public static String expiryReportId(String holdId) {
    try {
      byte[] digest =
          MessageDigest.getInstance("SHA-256").digest(holdId.getBytes(StandardCharsets.UTF_8));
      return "hold-expired:" + HexFormat.of().formatHex(digest);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private byte[] mac(byte[] body) {
    try {
      Mac m = Mac.getInstance("HmacSHA256");
      m.init(key);
      return m.doFinal(body);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 unavailable", e);
    }
  }

  private static IllegalArgumentException invalid(String why) {
    return new IllegalArgumentException("hold_id " + why);
  }
}
