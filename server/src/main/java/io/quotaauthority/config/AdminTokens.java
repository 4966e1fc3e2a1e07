package io.quotaauthority.config;

import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The admin API's tokens: the named ones of {@code QUOTA_ADMIN_TOKENS_FILE} and the unnamed {@code
 * QUOTA_ADMIN_TOKEN} (generated into {@code <data dir>/admin-token} only when neither is set).
 *
 * <p>The file has one {@code name:sha256hex} line per token: the name by {@link #NAME}, then the 64
 * hex digits of the SHA-256 of the token's ASCII bytes ({@code quota-authority tokens hash} prints
 * them). Lines starting with {@code #} and blank lines are skipped. A name or a digest that is on
 * two lines is refused with both line numbers. The file itself meets {@link SecretFile}'s rules: it
 * holds no secret, but whoever can write it can let anyone in.
 */
public final class AdminTokens {
  /** Names: what the audit shows after {@code admin:}, so nothing that needs quoting. */
  public static final Pattern NAME = Pattern.compile("[A-Za-z0-9._@-]{1,64}");

  private static final Pattern DIGEST = Pattern.compile("[0-9a-fA-F]{64}");
  static final String SETTING = Setting.ADMIN_TOKENS_FILE.env();

  /** One token: its name (empty for QUOTA_ADMIN_TOKEN) and the SHA-256 of its bytes. */
  public record Entry(Optional<String> name, byte[] sha256) {}

  private AdminTokens() {}

  /** Every admin token of these settings; reads the files, so it throws {@link ConfigException}. */
  public static List<Entry> resolve(Settings settings) {
    List<Entry> entries = new ArrayList<>();
    settings
        .adminTokensFile()
        .ifPresent(file -> entries.addAll(parse(file, SecretFile.readRaw(SETTING, file))));
    Optional<String> single = settings.adminToken();
    if (single.isEmpty() && settings.adminTokensFile().isEmpty()) {
      // Neither set: the development default, a generated token on the server's own disk.
      single = Optional.of(TokenFile.resolve(Optional.empty(), settings.dataDir(), "admin-token"));
    }
    single.ifPresent(
        token -> {
          byte[] digest = Tokens.digest(token);
          for (Entry e : entries) {
            if (MessageDigest.isEqual(e.sha256(), digest)) {
              throw new ConfigException(
                  SETTING
                      + ": the token named '"
                      + e.name().orElseThrow()
                      + "' is QUOTA_ADMIN_TOKEN too; give it one way only");
            }
          }
          entries.add(new Entry(Optional.empty(), digest));
        });
    return entries;
  }

  /** The entries of the file's text; errors name the file and the line, never a line's content. */
  static List<Entry> parse(Path file, String text) {
    List<Entry> entries = new ArrayList<>();
    Map<String, Integer> nameLines = new HashMap<>();
    Map<String, Integer> digestLines = new HashMap<>();
    String[] lines = text.split("\n", -1);
    for (int i = 0; i < lines.length; i++) {
      int number = i + 1;
      String line = lines[i].strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      int colon = line.indexOf(':');
      String name = colon < 0 ? "" : line.substring(0, colon).strip();
      String hex = colon < 0 ? "" : line.substring(colon + 1).strip();
      if (!NAME.matcher(name).matches()) {
        throw refused(
            file,
            number,
            "expected name:sha256hex with a name of 1 to 64 characters" + " A-Z a-z 0-9 . _ @ -");
      }
      if (!DIGEST.matcher(hex).matches()) {
        // Possibly a pasted token rather than its digest: the line is not repeated.
        throw refused(
            file,
            number,
            "'"
                + name
                + "' needs the 64 hex digits of the token's SHA-256"
                + " (quota-authority tokens hash), not the token");
      }
      hex = hex.toLowerCase(Locale.ROOT);
      Integer sameName = nameLines.putIfAbsent(name, number);
      if (sameName != null) {
        throw refused(file, number, "the name '" + name + "' is already on line " + sameName);
      }
      Integer sameDigest = digestLines.putIfAbsent(hex, number);
      if (sameDigest != null) {
        throw refused(
            file,
            number,
            "'"
                + name
                + "' has the same token as line "
                + sameDigest
                + "; every name needs its own token");
      }
      entries.add(new Entry(Optional.of(name), HexFormat.of().parseHex(hex)));
    }
    if (entries.isEmpty()) {
      throw new ConfigException(SETTING + ": " + file + " has no name:sha256hex line");
    }
    return entries;
  }

  private static ConfigException refused(Path file, int line, String why) {
    return new ConfigException(SETTING + ": " + file + " line " + line + ": " + why);
  }
}
