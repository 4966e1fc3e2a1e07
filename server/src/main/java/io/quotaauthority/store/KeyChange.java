package io.quotaauthority.store;

import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyRecord;
import java.util.HexFormat;

/**
 * One change notification: {@code <id>:<version>:<key hash hex>:<sent at, epoch ms>}. The hash
 * lets a listener see at once whether it caches the key and at which version, so it queries the
 * database only for keys it holds stale; the time gives the notification lag. The hash is of a
 * 256-bit random secret, so it reveals nothing usable.
 */
public record KeyChange(long id, long version, KeyHash hash, long sentAtMillis) {

  static String payload(KeyRecord row, long nowMillis) {
    return row.id() + ":" + row.version() + ":" + HexFormat.of().formatHex(row.keyHash().toBytes()) + ":" + nowMillis;
  }

  /** Parses a payload; null for anything malformed (it is then ignored). */
  public static KeyChange parse(String payload) {
    String[] parts = payload.split(":");
    if (parts.length != 4 || parts[2].length() != 64) {
      return null;
    }
    try {
      return new KeyChange(Long.parseLong(parts[0]), Long.parseLong(parts[1]),
          KeyHash.of(HexFormat.of().parseHex(parts[2])), Long.parseLong(parts[3]));
    } catch (IllegalArgumentException e) {
      return null;
    }
  }
}
