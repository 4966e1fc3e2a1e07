package io.quotaauthority.config;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Locale;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A bearer token from its setting or, when that is unset, from {@code <data dir>/<name>}: created
 * at first start with 32 random bytes and mode 0600. At later starts the file must pass {@link
 * SecretFile}'s checks (no symlink, owned by this user, no access for group or others) and hold a
 * token that meets {@link Tokens}. The file's path is logged, never the token.
 */
public final class TokenFile {
  private static final Logger log = LoggerFactory.getLogger(TokenFile.class);

  private TokenFile() {}

  public static String resolve(Optional<String> configured, Path dataDir, String fileName) {
    if (configured.isPresent()) {
      return configured.get();
    }
    Path file = dataDir.resolve(fileName);
    // The setting the file stands in for, named in errors: admin-token is QUOTA_ADMIN_TOKEN's.
    String setting = "QUOTA_" + fileName.toUpperCase(Locale.ROOT).replace('-', '_');
    try {
      // NOFOLLOW_LINKS: a symlink (even a dangling one) is there, and SecretFile refuses it.
      if (Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
        String token = SecretFile.withoutTrailingNewlines(SecretFile.readRaw(setting, file));
        if (token.isEmpty()) {
          throw new ConfigException(
              setting + ": " + file + " is empty; delete it to have a new token generated");
        }
        Tokens.check(setting + ": " + file + ": the token", token);
        log.info("using the token in {}", file.toAbsolutePath());
        return token;
      }
      Files.createDirectories(dataDir);
      byte[] bytes = new byte[32];
      new SecureRandom().nextBytes(bytes);
      String token = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
      try {
        createPrivateFile(file);
      } catch (FileAlreadyExistsException raced) {
        // Another process created it between our check and now: use its token.
        return resolve(configured, dataDir, fileName);
      }
      Files.writeString(file, token + "\n", StandardCharsets.UTF_8);
      log.info("generated a new token into {} (mode 0600)", file.toAbsolutePath());
      return token;
    } catch (IOException e) {
      throw new ConfigException(
          "QUOTA_DATA_DIR: cannot read or create " + file + ": " + e.getMessage(), e);
    }
  }

  private static void createPrivateFile(Path file) throws IOException {
    try {
      Files.createFile(
          file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    } catch (UnsupportedOperationException e) {
      Files.createFile(file);
    }
  }
}
