package io.quotaauthority.config;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;

/**
 * Reads a file that holds a secret (a token, the database password, the admin tokens list) and
 * refuses one that others could read or swap: it must be a regular file, not a symlink, owned by
 * the user running the server, with no permission bit for group or others (mode 0600 or 0400).
 * Every refusal is one {@link ConfigException} line naming the setting, the file and what is wrong,
 * never the content.
 */
public final class SecretFile {
  /** Far above any token or list of digests; stops a wrong path (a log, a disk image) early. */
  static final int MAX_BYTES = 1024 * 1024;

  private static final Set<PosixFilePermission> GROUP_OR_OTHERS =
      EnumSet.of(
          PosixFilePermission.GROUP_READ,
          PosixFilePermission.GROUP_WRITE,
          PosixFilePermission.GROUP_EXECUTE,
          PosixFilePermission.OTHERS_READ,
          PosixFilePermission.OTHERS_WRITE,
          PosixFilePermission.OTHERS_EXECUTE);

  private SecretFile() {}

  /**
   * The file's text with trailing newlines removed (a Kubernetes secret or {@code echo > file} ends
   * with one).
   *
   * @param setting what the file is for, e.g. "QUOTA_ADMIN_TOKEN_FILE": the start of every error
   */
  public static String read(String setting, Path file) {
    String value = withoutTrailingNewlines(readRaw(setting, file));
    if (value.isEmpty()) {
      throw refused(setting, file, "is empty");
    }
    return value;
  }

  /** The text without the line ends at its end; anything else (spaces too) is kept. */
  public static String withoutTrailingNewlines(String text) {
    int end = text.length();
    while (end > 0 && (text.charAt(end - 1) == '\n' || text.charAt(end - 1) == '\r')) {
      end--;
    }
    return text.substring(0, end);
  }

  /** The whole text, after the checks; for files of several lines. */
  public static String readRaw(String setting, Path file) {
    checkSafe(setting, file);
    // NOFOLLOW_LINKS (O_NOFOLLOW) again at open: a symlink swapped in after the check still fails.
    try (InputStream in =
        Channels.newInputStream(
            Files.newByteChannel(
                file, Set.of(StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)))) {
      byte[] bytes = in.readNBytes(MAX_BYTES + 1);
      if (bytes.length > MAX_BYTES) {
        throw refused(setting, file, "is larger than " + MAX_BYTES / 1024 + " KiB");
      }
      try {
        return StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(bytes))
            .toString();
      } catch (CharacterCodingException e) {
        throw refused(setting, file, "is not UTF-8 text");
      }
    } catch (IOException e) {
      throw refused(setting, file, "cannot be read: " + e.getMessage());
    }
  }

  /** Throws unless the file is a regular, private file of the running user. */
  public static void checkSafe(String setting, Path file) {
    if (Files.isSymbolicLink(file)) {
      // A link can be pointed elsewhere by whoever owns it or its directory; refuse rather than
      // reason about who that is. (Kubernetes projects secrets as links: mount them with subPath.)
      throw refused(setting, file, "is a symlink; point the setting at the file itself");
    }
    PosixFileAttributes attributes;
    try {
      attributes = Files.readAttributes(file, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException e) {
      throw refused(setting, file, "does not exist");
    } catch (UnsupportedOperationException e) {
      return; // not a POSIX file system (Windows): there are no mode bits or owners to check
    } catch (IOException e) {
      throw refused(setting, file, "cannot be read: " + e.getMessage());
    }
    if (!attributes.isRegularFile()) {
      throw refused(setting, file, "is not a regular file");
    }
    long owner = uid(file);
    long self = RunningUser.uid();
    if (owner >= 0 && self >= 0 && owner != self) {
      throw refused(
          setting,
          file,
          "is owned by uid "
              + owner
              + ", not by the user running the server (uid "
              + self
              + "); chown it");
    }
    Set<PosixFilePermission> loose = EnumSet.copyOf(attributes.permissions());
    loose.retainAll(GROUP_OR_OTHERS);
    if (!loose.isEmpty()) {
      throw refused(
          setting,
          file,
          "is readable or writable by group or others (mode "
              + octal(attributes.permissions())
              + "); chmod 600 it");
    }
  }

  /** "0644" for rw-r--r--. */
  static String octal(Set<PosixFilePermission> permissions) {
    int mode = 0;
    for (PosixFilePermission p : permissions) {
      // The enum lists OWNER_READ .. OTHERS_EXECUTE, i.e. from bit 8 down to bit 0.
      mode |= 1 << (8 - p.ordinal());
    }
    return String.format("%04o", mode);
  }

  private static long uid(Path file) {
    try {
      return ((Number) Files.getAttribute(file, "unix:uid", LinkOption.NOFOLLOW_LINKS)).longValue();
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return -1; // no numeric owner on this file system: the mode check still applies
    }
  }

  private static ConfigException refused(String setting, Path file, String why) {
    return new ConfigException(setting + ": " + file + " " + why);
  }
}
