package io.quotaauthority.store;

import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.KeyState;
import java.math.BigDecimal;
import java.util.HexFormat;

/**
 * One change notification, carrying the key's whole Check state so that a listener updates its
 * cache without a query: {@code id:version:hash:sentAtMillis:state:quota:quotaUsed:expiresAtMicros}
 * with state {@code a} (active), {@code d} (disabled) or {@code x} (deleted) and {@code -} for no
 * expiry. The hash is of a 256-bit random secret, so it reveals nothing usable; the send time gives
 * the notification lag. About 140 bytes, far below PostgreSQL's 8000-byte payload limit.
 */
public record KeyChange(KeyHash hash, KeyState state, long sentAtMillis) {

  static String payload(KeyRecord row, long nowMillis) {
    char state = row.deleted() ? 'x' : row.status() == KeyRecord.StoredStatus.DISABLED ? 'd' : 'a';
    return row.id() + ":" + row.version() + ":" + HexFormat.of().formatHex(row.keyHash().toBytes())
        + ":" + nowMillis + ":" + state + ":" + row.quota().toPlainString() + ":"
        + row.quotaUsed().toPlainString() + ":"
        + (row.expiresAt() == null ? "-" : Long.toString(KeyState.toMicros(row.expiresAt())));
  }

  /** Parses a payload; null for anything malformed (it is then ignored). */
  public static KeyChange parse(String payload) {
    String[] p = payload.split(":");
    if (p.length != 8 || p[2].length() != 64 || p[4].length() != 1) {
      return null;
    }
    try {
      char state = p[4].charAt(0);
      if (state != 'a' && state != 'd' && state != 'x') {
        return null;
      }
      KeyState s = new KeyState(Long.parseLong(p[0]), Long.parseLong(p[1]), state == 'x', state == 'd',
          new BigDecimal(p[5]), new BigDecimal(p[6]), p[7].equals("-") ? KeyState.NEVER : Long.parseLong(p[7]));
      return new KeyChange(KeyHash.of(HexFormat.of().parseHex(p[2])), s, Long.parseLong(p[3]));
    } catch (IllegalArgumentException e) {
      return null;
    }
  }
}
