package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quotaauthority.config.ConfigException;
import io.quotaauthority.config.Settings;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the embedded default checks before it starts PostgreSQL; none of these starts one. */
class EmbeddedPostgresIT {
  @TempDir Path dataDir;

  private Settings settings() {
    return Settings.load(Map.of("QUOTA_DATA_DIR", dataDir.toString()), List.of());
  }

  @Test
  void open_dataDirectoryOfPostgres13_oneLineNamingBothVersions() throws Exception {
    Path pg = Files.createDirectories(dataDir.resolve("pg"));
    Files.writeString(pg.resolve("PG_VERSION"), "13\n", StandardCharsets.US_ASCII);

    assertThatThrownBy(() -> Database.open(settings()))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_DATA_DIR: "
                + pg
                + " holds a PostgreSQL 13 data directory, but the embedded"
                + " PostgreSQL is 14; point QUOTA_DB_URL at a PostgreSQL 13 server, or move "
                + pg
                + " aside to start an empty one");
    // Refused before anything ran: no password generated, nothing started.
    assertThat(dataDir.resolve(EmbeddedPostgres.PASSWORD_FILE)).doesNotExist();
    assertThat(pg.resolve("postmaster.pid")).doesNotExist();
  }

  @Test
  void open_directoryLockedByAnotherAuthority_oneLineAndNothingStopped() throws Exception {
    Path pg = Files.createDirectories(dataDir.resolve("pg"));
    Files.writeString(pg.resolve("PG_VERSION"), "14\n", StandardCharsets.US_ASCII);
    Process other = new ProcessBuilder("sleep", "60").start();
    try (FileChannel channel =
            FileChannel.open(
                pg.resolve("epg-lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock lock = channel.lock()) {
      Files.writeString(pg.resolve("postmaster.pid"), other.pid() + "\n" + pg + "\n");

      assertThatThrownBy(() -> Database.open(settings()))
          .isInstanceOf(ConfigException.class)
          .hasMessage(
              "QUOTA_DATA_DIR: "
                  + pg
                  + " is in use by another running quota-authority; give each"
                  + " instance its own QUOTA_DATA_DIR, or QUOTA_DB_URL for a shared database");
      assertThat(other.isAlive()).isTrue();
    } finally {
      other.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void stopOrphan_pidFileNamingAProcessThatIsNotPostgres_leavesItRunning() throws Exception {
    Path pg = Files.createDirectories(dataDir.resolve("pg"));
    // After a reboot the pid in a stale postmaster.pid may belong to anything.
    Process unrelated = new ProcessBuilder("sleep", "60").start();
    try {
      Files.writeString(pg.resolve("postmaster.pid"), unrelated.pid() + "\n" + pg + "\n");

      EmbeddedPostgres.stopOrphan(pg);

      assertThat(unrelated.isAlive()).isTrue();
    } finally {
      unrelated.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void stopOrphan_pidFileOfDeadProcess_returnsWithoutError() throws Exception {
    Path pg = Files.createDirectories(dataDir.resolve("pg"));
    Process gone = new ProcessBuilder("true").start();
    gone.waitFor(5, TimeUnit.SECONDS);
    Files.writeString(pg.resolve("postmaster.pid"), gone.pid() + "\n" + pg + "\n");

    EmbeddedPostgres.stopOrphan(pg);

    // PostgreSQL replaces a stale file itself; it stays for it to see.
    assertThat(pg.resolve("postmaster.pid")).exists();
  }
}
