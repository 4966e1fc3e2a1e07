package io.quotaauthority.store;

import java.security.SecureRandom;
import java.sql.PreparedStatement;
import java.sql.ResultSet;

/**
 * cluster_secrets: keys every instance shares, created by the first instance that needs one (V7).
 * Never logged or shown.
 */
public final class ClusterSecrets {
  /** The first instance's random key wins; every later one inserts nothing. */
  private static final String CREATE =
      """
      INSERT INTO cluster_secrets (name, secret) VALUES (?, ?) ON CONFLICT (name) DO NOTHING""";

  private static final String READ =
      """
      SELECT secret FROM cluster_secrets WHERE name = ?""";

  /** The name of the key reporter hold ids are signed with (usage.HoldIds). */
  public static final String HOLD_IDS = "hold_ids";

  private final Transactions tx;

  public ClusterSecrets(Transactions tx) {
    this.tx = tx;
  }

  /** The shared key by this name: 32 random bytes made now if no instance made it before. */
  public byte[] getOrCreate(String name) {
    byte[] fresh = new byte[32];
    new SecureRandom().nextBytes(fresh);
    return tx.inTransaction(
        c -> {
          try (PreparedStatement ps = c.prepareStatement(CREATE)) {
            ps.setString(1, name);
            ps.setBytes(2, fresh);
            ps.executeUpdate();
          }
          try (PreparedStatement ps = c.prepareStatement(READ)) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
              rs.next();
              return rs.getBytes(1);
            }
          }
        });
  }
}
