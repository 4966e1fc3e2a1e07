package io.quotaauthority.store;

import java.util.Locale;

/**
 * Whether the connected PostgreSQL's settings make every acknowledged charge survive the loss of
 * the primary (a standby promoted in its place): a usage report is answered ACCEPTED only after its
 * COMMIT returned, and COMMIT waits for a synchronous standby only when {@code synchronous_commit}
 * is {@code on}, {@code remote_apply} or {@code remote_write} and {@code synchronous_standby_names}
 * names one. Read from the session the pool's transactions run in, so a per-role or per-database
 * override counts.
 *
 * @param synchronousCommit {@code current_setting('synchronous_commit')}
 * @param standbyNames {@code current_setting('synchronous_standby_names')}
 * @param syncStandbys standbys {@code pg_stat_replication} shows as sync or quorum, or -1 when this
 *     role may not see that column (it needs {@code pg_read_all_stats}, in {@code pg_monitor})
 */
public record Replication(String synchronousCommit, String standbyNames, int syncStandbys) {

  /** What the settings give. */
  public enum Guarantee {
    /** A COMMIT returns only once a synchronous standby has the WAL. */
    SYNCHRONOUS,
    /**
     * No synchronous standby is named (or {@code synchronous_commit = local}): a COMMIT returns
     * once the primary has flushed it; a charge acknowledged just before the primary is lost can be
     * missing on a promoted standby.
     */
    ASYNCHRONOUS,
    /**
     * {@code synchronous_commit = off}: a COMMIT returns before even the primary has flushed it, so
     * a crash of the primary alone can lose acknowledged charges.
     */
    UNFLUSHED
  }

  public Guarantee guarantee() {
    String commit = synchronousCommit.trim().toLowerCase(Locale.ROOT);
    if (commit.equals("off") || commit.equals("false") || commit.equals("no")) {
      return Guarantee.UNFLUSHED;
    }
    boolean waitsForStandby =
        switch (commit) {
          case "on", "true", "yes", "remote_apply", "remote_write" -> true;
          default -> false;
        };
    return waitsForStandby && !standbyNames.isBlank()
        ? Guarantee.SYNCHRONOUS
        : Guarantee.ASYNCHRONOUS;
  }

  /** The one log line that says what the settings give (and, when it matters, what to change). */
  public String describe() {
    String settings =
        "synchronous_commit="
            + synchronousCommit
            + ", synchronous_standby_names='"
            + standbyNames
            + "'";
    return switch (guarantee()) {
      case SYNCHRONOUS ->
          "database durability: synchronous replication ("
              + settings
              + ", "
              + (syncStandbys < 0
                  ? "synchronous standbys connected: not visible to this role"
                  : syncStandbys + " synchronous standby(s) connected")
              + "): an acknowledged charge survives the loss of the primary"
              + (syncStandbys == 0
                  ? "; with none connected every commit waits, so usage is held, unacknowledged"
                  : "")
              + (synchronousCommit.trim().equalsIgnoreCase("remote_write")
                  ? " (remote_write: unless the standby's OS crashes too)"
                  : "");
      case ASYNCHRONOUS ->
          "database durability: NOT synchronous ("
              + settings
              + "): a charge acknowledged just before the primary is lost can be missing after a"
              + " standby is promoted; set synchronous_standby_names (README, Running PostgreSQL in"
              + " production)";
      case UNFLUSHED ->
          "database durability: synchronous_commit is off ("
              + settings
              + "): a charge acknowledged just before PostgreSQL crashes can be lost even without a"
              + " failover; set synchronous_commit = on for this role";
    };
  }
}
