package io.quotaauthority.store;

import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.KeyState;
import java.util.HexFormat;

/**
 * One change notification on {@link KeyRepository#CHANGE_CHANNEL}: a <em>hint</em> that a key
 * changed, never a state to apply. Any role that can connect to the database can send one, so a
 * listener only uses it to decide which rows to re-read from api_keys, and caches what the rows
 * say, with their own versions.
 *
 * <p>Payload as sent by this service (unchanged, so instances of the previous release keep working
 * during a rolling upgrade): {@code
 * id:version:hash:sentAtMillis:state:quota:quotaUsed:expiresAtMicros}, state {@code a} (active),
 * {@code d} (disabled) or {@code x} (deleted). A listener reads only the first five fields, and
 * accepts any prefix of them down to the bare id ({@code 42}), which is all a hand-made
 * notification needs. The hint's version, hash and state only ever let the listener skip a re-read
 * that could change nothing it holds ({@link #needsRead}); a false one can at most cause a re-read.
 *
 * @param version {@link #UNKNOWN_VERSION} when the payload carries none
 * @param hash null when the payload carries none
 * @param state {@code a}, {@code d}, {@code x}, or {@code ?} when the payload carries none
 * @param sentAtMillis the sender's clock, or -1: only for the notification-lag metric
 */
public record KeyChange(long id, long version, KeyHash hash, char state, long sentAtMillis) {
  public static final long UNKNOWN_VERSION = Long.MAX_VALUE;

  static String payload(KeyRecord row, long nowMillis) {
    char state = row.deleted() ? 'x' : row.status() == KeyRecord.StoredStatus.DISABLED ? 'd' : 'a';
    return row.id()
        + ":"
        + row.version()
        + ":"
        + HexFormat.of().formatHex(row.keyHash().toBytes())
        + ":"
        + nowMillis
        + ":"
        + state
        + ":"
        + row.quota().toPlainString()
        + ":"
        + row.quotaUsed().toPlainString()
        + ":"
        + (row.expiresAt() == null ? "-" : Long.toString(KeyState.toMicros(row.expiresAt())));
  }

  /** Parses a payload; null for anything malformed (it is then ignored). */
  public static KeyChange parse(String payload) {
    if (payload == null || payload.isEmpty() || payload.length() > 1_000) {
      return null;
    }
    String[] p = payload.split(":", -1);
    try {
      long id = Long.parseLong(p[0]);
      if (id <= 0) {
        return null;
      }
      long version = p.length > 1 ? Long.parseLong(p[1]) : UNKNOWN_VERSION;
      KeyHash hash = null;
      if (p.length > 2) {
        if (p[2].length() != 64) {
          return null;
        }
        hash = KeyHash.of(HexFormat.of().parseHex(p[2]));
      }
      long sentAt = p.length > 3 ? Long.parseLong(p[3]) : -1;
      char state = '?';
      if (p.length > 4) {
        if (p[4].length() != 1 || "adx".indexOf(p[4].charAt(0)) < 0) {
          return null;
        }
        state = p[4].charAt(0);
      }
      return new KeyChange(id, version, hash, state, sentAt);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  /**
   * Whether this hint calls for re-reading its row: false only when, were the hint true, the row
   * would change nothing this instance holds. Skipping on a false hint is harmless, since every
   * real change sends its own notification.
   *
   * @param cached the cached state under the hint's hash, or null
   * @param live whether the hint's hash is in the live-hash set
   */
  public boolean needsRead(KeyState cached, boolean live) {
    if (hash == null) {
      return true;
    }
    if (cached != null) {
      // Cached at this version or newer (the cache holds only versions read from the database).
      return cached.id() != id || cached.version() < version;
    }
    // Not cached: all we hold is whether the hash is live; a live key staying live changes nothing.
    return !(live && (state == 'a' || state == 'd'));
  }
}
