package io.quotaauthority.ha;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Runs PostgreSQL's own programs (initdb, pg_ctl, pg_basebackup, pgbouncer) the way they insist on:
 * as the {@code postgres} OS user, never root (the tests run as root in CI). Tools missing is a
 * failure, never a skip: .ci/run installs them.
 */
public final class PostgresUser {
  private PostgresUser() {}

  /** The newest {@code /usr/lib/postgresql/<version>/bin} holding initdb. */
  public static Path binDir() {
    Path root = Path.of("/usr/lib/postgresql");
    try (Stream<Path> versions = Files.list(root)) {
      return versions
          .map(v -> v.resolve("bin"))
          .filter(b -> Files.isExecutable(b.resolve("initdb")))
          .max((a, b) -> Integer.compare(major(a), major(b)))
          .orElseThrow(
              () -> new AssertionError("no initdb under " + root + ": install postgresql"));
    } catch (IOException e) {
      throw new AssertionError("no PostgreSQL binaries under " + root + ": install postgresql", e);
    }
  }

  private static int major(Path bin) {
    try {
      return Integer.parseInt(bin.getParent().getFileName().toString());
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  public static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** A fresh directory under target/, owned by the postgres OS user. */
  public static Path ownedDirectory(String prefix) throws IOException {
    Path target = Path.of("target").toAbsolutePath();
    Files.createDirectories(target);
    Path dir = Files.createTempDirectory(target, prefix);
    chown(dir);
    return dir;
  }

  static void chown(Path path) throws IOException {
    UserPrincipal postgres =
        path.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("postgres");
    Files.setOwner(path, postgres);
  }

  /** The command as the postgres user ({@code runuser} when this is root). */
  public static List<String> as(List<String> command) {
    List<String> full = new ArrayList<>();
    if ("root".equals(System.getProperty("user.name"))) {
      full.addAll(List.of("runuser", "-u", "postgres", "--"));
    }
    full.addAll(command);
    return full;
  }

  /** Runs to completion within {@code seconds}; fails with its output if it does not exit 0. */
  public static String run(long seconds, String... command)
      throws IOException, InterruptedException {
    Path output = Files.createTempFile("pg-command-", ".out");
    ProcessBuilder b =
        new ProcessBuilder(as(List.of(command)))
            .redirectErrorStream(true)
            .redirectOutput(output.toFile());
    b.directory(Path.of("/tmp").toFile()); // the postgres user may not read the build's cwd
    Process p = b.start();
    boolean finished = p.waitFor(seconds, TimeUnit.SECONDS);
    String text = Files.readString(output, StandardCharsets.UTF_8);
    Files.deleteIfExists(output);
    if (!finished) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      throw new AssertionError(
          String.join(" ", command) + " did not finish in " + seconds + " s:\n" + text);
    }
    if (p.exitValue() != 0) {
      throw new AssertionError(
          String.join(" ", command) + " exited " + p.exitValue() + ":\n" + text);
    }
    return text;
  }
}
