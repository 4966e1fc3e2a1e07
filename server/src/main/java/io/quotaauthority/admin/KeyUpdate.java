package io.quotaauthority.admin;

import io.quotaauthority.keys.KeyNames;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.Money;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.Collection;
import java.util.List;

/**
 * The fields an UpdateKey changes, from its field-mask paths; a field not named stays as it is.
 *
 * @param name null when unchanged
 * @param quota null when unchanged
 * @param expiresAt the new expiry when {@code setExpiresAt}; null there means never
 * @param status null when unchanged
 */
public record KeyUpdate(String name, BigDecimal quota, boolean setExpiresAt, Instant expiresAt,
    KeyRecord.StoredStatus status) {

  public static final List<String> PATHS = List.of("name", "quota_usd", "expires_at", "status");

  /**
   * Reads the named paths from the given values; throws IllegalArgumentException naming the
   * field for an unknown path, an empty mask or a bad value.
   *
   * @param status "ACTIVE" or "DISABLED" (the KeyStatus name without its prefix)
   */
  public static KeyUpdate fromPaths(Collection<String> paths, String name, String quotaUsd,
      Instant expiresAt, String status) {
    if (paths.isEmpty()) {
      throw new IllegalArgumentException("update_mask must name at least one of " + PATHS);
    }
    String newName = null;
    BigDecimal newQuota = null;
    boolean setExpiry = false;
    KeyRecord.StoredStatus newStatus = null;
    for (String path : paths) {
      switch (path) {
        case "name" -> newName = KeyFields.name(name);
        case "quota_usd" -> newQuota = KeyFields.quota(quotaUsd);
        case "expires_at" -> setExpiry = true;
        case "status" -> newStatus = switch (status) {
          case "ACTIVE" -> KeyRecord.StoredStatus.ACTIVE;
          case "DISABLED" -> KeyRecord.StoredStatus.DISABLED;
          default -> throw new IllegalArgumentException(
              "key.status must be KEY_STATUS_ACTIVE or KEY_STATUS_DISABLED, got " + status);
        };
        default -> throw new IllegalArgumentException(
            "update_mask has unknown path '" + path + "'; allowed: " + PATHS);
      }
    }
    return new KeyUpdate(newName, newQuota, setExpiry, setExpiry ? expiresAt : null, newStatus);
  }

  KeyRecord.StoredStatus statusOr(KeyRecord.StoredStatus current) {
    return status == null ? current : status;
  }

  /** Shared field rules for create and update. */
  static final class KeyFields {
    private KeyFields() {}

    /** The one name rule, shared with the CLI (NUL, which PostgreSQL cannot store, is a control). */
    static String name(String name) {
      return KeyNames.check("name", name);
    }

    /** An empty quota means unlimited (0). */
    static BigDecimal quota(String quotaUsd) {
      return quotaUsd == null || quotaUsd.isEmpty() ? BigDecimal.ZERO : Money.parse("quota_usd", quotaUsd);
    }
  }
}
