package io.quotaauthority.admin;

import io.quotaauthority.keys.KeyNames;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.Money;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.Collection;
import java.util.List;
import java.util.Objects;

/**
 * The fields an UpdateKey changes, from its field-mask paths; a field not named stays as it is.
 *
 * @param name null when unchanged
 * @param quota null when unchanged
 * @param expiresAt the new expiry when {@code setExpiresAt}; null there means never
 * @param status null when unchanged
 */
public record KeyUpdate(
    String name,
    BigDecimal quota,
    boolean setExpiresAt,
    Instant expiresAt,
    KeyRecord.StoredStatus status) {

  public static final List<String> PATHS = List.of("name", "quota_usd", "expires_at", "status");

  /**
   * Reads the named paths from the given values; throws IllegalArgumentException naming the field
   * for an unknown path, an empty mask or a bad value.
   *
   * @param status "ACTIVE" or "DISABLED" (the KeyStatus name without its prefix)
   */
  public static KeyUpdate fromPaths(
      Collection<String> paths, String name, String quotaUsd, Instant expiresAt, String status) {
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
        // Under the mask an empty amount is refused, not read as 0 (unlimited): a client that
        // forgot the value must not lift a key's limit. Unlimited is asked for explicitly, "0".
        case "quota_usd" -> newQuota = KeyFields.updatedQuota(quotaUsd);
        case "expires_at" -> {
          // Same rule: an unset expiry under the mask would make the key never expire. Removing
          // an expiry is its own explicit call, ClearExpiration.
          if (expiresAt == null) {
            throw new IllegalArgumentException(
                "key.expires_at must be set when update_mask names expires_at;"
                    + " use ClearExpiration to remove an expiry");
          }
          setExpiry = true;
        }
        case "status" ->
            newStatus =
                switch (status) {
                  case "ACTIVE" -> KeyRecord.StoredStatus.ACTIVE;
                  case "DISABLED" -> KeyRecord.StoredStatus.DISABLED;
                  default ->
                      throw new IllegalArgumentException(
                          "key.status must be KEY_STATUS_ACTIVE or KEY_STATUS_DISABLED, got "
                              + status);
                };
        default ->
            throw new IllegalArgumentException(
                "update_mask has unknown path '" + path + "'; allowed: " + PATHS);
      }
    }
    return new KeyUpdate(newName, newQuota, setExpiry, setExpiry ? expiresAt : null, newStatus);
  }

  KeyRecord.StoredStatus statusOr(KeyRecord.StoredStatus current) {
    return status == null ? current : status;
  }

  /**
   * True when applying this update to {@code current} would change a stored field. A no-op update
   * writes nothing (no row change, no version bump, no audit row, no notification). Amounts compare
   * by value ("10" equals "10.00"); instants are compared as stored (microseconds, see {@link
   * ApiKeys#instant}).
   */
  boolean changes(KeyRecord current) {
    return (name != null && !name.equals(current.name()))
        || (quota != null && quota.compareTo(current.quota()) != 0)
        || (setExpiresAt && !Objects.equals(expiresAt, current.expiresAt()))
        || (status != null && status != current.status());
  }

  /** Shared field rules for create and update. */
  static final class KeyFields {
    private KeyFields() {}

    /**
     * The one name rule, shared with the CLI (NUL, which PostgreSQL cannot store, is a control).
     */
    static String name(String name) {
      return KeyNames.check("name", name);
    }

    /** The quota on UpdateKey: a valid amount is required, "0" for unlimited. */
    static BigDecimal updatedQuota(String quotaUsd) {
      if (quotaUsd == null || quotaUsd.isEmpty()) {
        throw new IllegalArgumentException(
            "quota_usd must not be empty when update_mask names quota_usd;"
                + " send \"0\" for unlimited");
      }
      return Money.parse("quota_usd", quotaUsd);
    }

    /** The quota on CreateKey: empty means unlimited (0), as documented for CreateKey. */
    static BigDecimal quota(String quotaUsd) {
      return quotaUsd == null || quotaUsd.isEmpty()
          ? BigDecimal.ZERO
          : Money.parse("quota_usd", quotaUsd);
    }
  }
}
