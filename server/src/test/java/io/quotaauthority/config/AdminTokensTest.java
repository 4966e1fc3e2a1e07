package io.quotaauthority.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** QUOTA_ADMIN_TOKENS_FILE: name:sha256hex lines, and how it combines with QUOTA_ADMIN_TOKEN. */
class AdminTokensTest {
  static final String ALICE = "alice-token-0123456789abcdef0123456789";
  static final String BOB = "bob-token-0123456789abcdef0123456789ab";
  static final String A = Tokens.digestHex(ALICE);
  static final String B = Tokens.digestHex(BOB);
  static final Path FILE = Path.of("/etc/quota/admin-tokens");

  @TempDir Path dir;

  private Path tokensFile(String text) throws IOException {
    Path f = dir.resolve("admin-tokens");
    Files.writeString(f, text, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
    return f;
  }

  private static List<String> names(List<AdminTokens.Entry> entries) {
    return entries.stream().map(e -> e.name().orElse("(unnamed)")).toList();
  }

  @Test
  void parse_commentsBlankLinesUpperCaseHexAndCrLf_entriesInOrder() {
    List<AdminTokens.Entry> entries =
        AdminTokens.parse(
            FILE,
            "# operators\n\n  alice:"
                + A.toUpperCase()
                + "  \r\n\t# bots\nci.bot@build-1:"
                + B
                + "\n");

    assertThat(names(entries)).containsExactly("alice", "ci.bot@build-1");
    assertThat(HexFormat.of().formatHex(entries.get(0).sha256())).isEqualTo(A);
    assertThat(entries.get(1).sha256()).isEqualTo(Tokens.digest(BOB));
  }

  static Stream<Arguments> refused() {
    String bad = " A-Z a-z 0-9 . _ @ -";
    return Stream.of(
        Arguments.of(
            "alice:" + A + "\nalice:" + B, "line 2: the name 'alice' is already on line 1"),
        Arguments.of(
            "alice:" + A + "\n# x\n\nbob:" + A.toUpperCase(),
            "line 4: 'bob' has the same token as line 1; every name needs its own token"),
        Arguments.of(
            "alice " + A,
            "line 1: expected name:sha256hex with a name of 1 to 64 characters" + bad),
        Arguments.of(
            ":" + A, "line 1: expected name:sha256hex with a name of 1 to 64 characters" + bad),
        Arguments.of(
            "al ice:" + A,
            "line 1: expected name:sha256hex with a name of 1 to 64 characters" + bad),
        Arguments.of(
            "a".repeat(65) + ":" + A,
            "line 1: expected name:sha256hex with a name of 1 to 64 characters" + bad),
        Arguments.of(
            "alice\u202e:" + A,
            "line 1: expected name:sha256hex with a name of 1 to 64 characters" + bad),
        Arguments.of(
            "alice:" + ALICE,
            "line 1: 'alice' needs the 64 hex digits of the token's SHA-256 (quota-authority tokens hash), not the token"),
        Arguments.of(
            "alice:" + A.substring(1),
            "line 1: 'alice' needs the 64 hex digits of the token's SHA-256 (quota-authority tokens hash), not the token"),
        Arguments.of(
            "alice:" + A + ":x",
            "line 1: 'alice' needs the 64 hex digits of the token's SHA-256 (quota-authority tokens hash), not the token"));
  }

  @ParameterizedTest
  @MethodSource("refused")
  void parse_badLine_refusedWithItsLineNumber(String text, String why) {
    assertThatThrownBy(() -> AdminTokens.parse(FILE, text))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_ADMIN_TOKENS_FILE: " + FILE + " " + why);
  }

  @Test
  void parse_pastedToken_neverRepeatedInTheError() {
    assertThatThrownBy(() -> AdminTokens.parse(FILE, "alice:" + ALICE))
        .isInstanceOf(ConfigException.class)
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain(ALICE));
  }

  @Test
  void parse_onlyComments_refused() {
    assertThatThrownBy(() -> AdminTokens.parse(FILE, "# nobody yet\n\n"))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_ADMIN_TOKENS_FILE: " + FILE + " has no name:sha256hex line");
  }

  @Test
  void resolve_fileAndSharedToken_bothAcceptedNothingGenerated() throws IOException {
    Path f = tokensFile("alice:" + A + "\n");
    Settings s =
        Settings.load(
            Map.of(
                "QUOTA_ADMIN_TOKENS_FILE",
                f.toString(),
                "QUOTA_ADMIN_TOKEN",
                BOB,
                "QUOTA_DATA_DIR",
                dir.toString()),
            List.of());

    List<AdminTokens.Entry> entries = AdminTokens.resolve(s);

    assertThat(names(entries)).containsExactly("alice", "(unnamed)");
    assertThat(entries.get(1).sha256()).isEqualTo(Tokens.digest(BOB));
    assertThat(dir.resolve("admin-token")).doesNotExist();
  }

  @Test
  void resolve_fileOnly_noTokenGenerated() throws IOException {
    Path f = tokensFile("alice:" + A + "\n");
    Settings s =
        Settings.load(
            Map.of("QUOTA_ADMIN_TOKENS_FILE", f.toString(), "QUOTA_DATA_DIR", dir.toString()),
            List.of());

    assertThat(names(AdminTokens.resolve(s))).containsExactly("alice");
    assertThat(dir.resolve("admin-token")).doesNotExist();
  }

  @Test
  void resolve_neither_generatedTokenUnnamed() {
    Settings s = Settings.load(Map.of("QUOTA_DATA_DIR", dir.toString()), List.of());

    List<AdminTokens.Entry> entries = AdminTokens.resolve(s);

    assertThat(names(entries)).containsExactly("(unnamed)");
    assertThat(dir.resolve("admin-token")).exists();
  }

  @Test
  void resolve_sharedTokenAlsoInTheFile_refused() throws IOException {
    Path f = tokensFile("alice:" + A + "\n");
    Settings s =
        Settings.load(
            Map.of("QUOTA_ADMIN_TOKENS_FILE", f.toString(), "QUOTA_ADMIN_TOKEN", ALICE), List.of());

    assertThatThrownBy(() -> AdminTokens.resolve(s))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKENS_FILE: the token named 'alice' is QUOTA_ADMIN_TOKEN too; give it one way only");
  }

  @Test
  void resolve_groupWritableFile_refusedLikeASecretFile() throws IOException {
    Path f = tokensFile("alice:" + A + "\n");
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw--w----"));
    Settings s = Settings.load(Map.of("QUOTA_ADMIN_TOKENS_FILE", f.toString()), List.of());

    assertThatThrownBy(() -> AdminTokens.resolve(s))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKENS_FILE: "
                + f
                + " is readable or writable by group or others (mode 0620); chmod 600 it");
  }

  @Test
  void resolve_symlinkedFile_refused() throws IOException {
    Path f = tokensFile("alice:" + A + "\n");
    Path link = Files.createSymbolicLink(dir.resolve("link"), f);
    Settings s = Settings.load(Map.of("QUOTA_ADMIN_TOKENS_FILE", link.toString()), List.of());

    assertThatThrownBy(() -> AdminTokens.resolve(s))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKENS_FILE: "
                + link
                + " is a symlink; point the setting at the file itself");
    assertThat(Optional.of(s.adminTokensFile().orElseThrow())).contains(link);
  }
}
