package io.quotaauthority.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Secrets read from files (QUOTA_*_FILE, --*-file) and the generated token files: each refused file
 * gives its one line naming the setting, the file and what is wrong; never the content.
 */
class SecretFileTest {
  static final String TOKEN = "file-token-0123456789abcdef0123456789";

  @TempDir Path dir;

  static Stream<Setting> secrets() {
    return Arrays.stream(Setting.values()).filter(Setting::secret);
  }

  private Path secretFile(String name, String content, String mode) throws IOException {
    Path f = dir.resolve(name);
    Files.writeString(f, content, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString(mode));
    return f;
  }

  private static Settings load(Map<String, String> env, String... args) {
    return Settings.load(env, List.of(args), w -> {});
  }

  // ---- read ----

  @Test
  void load_adminTokenFile_tokenWithoutTrailingNewline() throws IOException {
    Path f = secretFile("admin", TOKEN + "\n", "rw-------");

    assertThat(load(Map.of("QUOTA_ADMIN_TOKEN_FILE", f.toString())).adminToken()).contains(TOKEN);
  }

  @Test
  void load_reporterTokenFileFlag_readsTheFile() throws IOException {
    Path f = secretFile("reporter", TOKEN + "\r\n", "r--------");

    assertThat(load(Map.of(), "--reporter-token-file", f.toString()).reporterToken())
        .contains(TOKEN);
  }

  @Test
  void load_dbPasswordFile_newlineDroppedSpacesKept() throws IOException {
    Path f = secretFile("db", " pass word \n", "rw-------");

    assertThat(load(Map.of("QUOTA_DB_PASSWORD_FILE", f.toString())).dbPassword())
        .isEqualTo(" pass word ");
  }

  @Test
  void load_dbPasswordFileShort_acceptedSinceTheTokenRuleIsForTokens() throws IOException {
    Path f = secretFile("db", "pw\n", "rw-------");

    assertThat(load(Map.of("QUOTA_DB_PASSWORD_FILE", f.toString())).dbPassword()).isEqualTo("pw");
  }

  // ---- refused files, for every secret setting ----

  @ParameterizedTest
  @MethodSource("secrets")
  void load_groupReadableFile_refusedNamingSettingAndFile(Setting s) throws IOException {
    Path f = secretFile("group", TOKEN, "rw-r-----");

    assertThatThrownBy(() -> load(Map.of(s.fileEnv(), f.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            s.fileEnv()
                + ": "
                + f
                + " is readable or writable by group or others (mode 0640); chmod 600 it");
  }

  @ParameterizedTest
  @MethodSource("secrets")
  void load_otherReadableFile_refused(Setting s) throws IOException {
    Path f = secretFile("other", TOKEN, "rw----r--");

    assertThatThrownBy(() -> load(Map.of(), s.fileFlag(), f.toString()))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            s.fileFlag()
                + ": "
                + f
                + " is readable or writable by group or others (mode 0604); chmod 600 it");
  }

  @ParameterizedTest
  @MethodSource("secrets")
  void load_symlink_refused(Setting s) throws IOException {
    Path target = secretFile("target", TOKEN, "rw-------");
    Path link = Files.createSymbolicLink(dir.resolve("link"), target);

    assertThatThrownBy(() -> load(Map.of(s.fileEnv(), link.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            s.fileEnv() + ": " + link + " is a symlink; point the setting at the file itself");
  }

  @ParameterizedTest
  @MethodSource("secrets")
  void load_fileOwnedByAnotherUser_refused(Setting s) throws IOException {
    assumeTrue(RunningUser.uid() == 0, "changing a file's owner needs root");
    Path f = secretFile("nobody", TOKEN, "rw-------");
    UserPrincipal nobody =
        f.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("nobody");
    Files.setOwner(f, nobody);
    long uid = ((Number) Files.getAttribute(f, "unix:uid")).longValue();

    assertThatThrownBy(() -> load(Map.of(s.fileEnv(), f.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            s.fileEnv()
                + ": "
                + f
                + " is owned by uid "
                + uid
                + ", not by the user running the server (uid 0); chown it");
  }

  @ParameterizedTest
  @MethodSource("secrets")
  void load_valueAndFileBothSet_refusedNamingBoth(Setting s) throws IOException {
    Path f = secretFile("both", TOKEN, "rw-------");

    assertThatThrownBy(() -> load(Map.of(s.env(), TOKEN, s.fileEnv(), f.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            s.env() + " and " + s.fileEnv() + " are both set; give " + s.env() + " one way only");
    assertThatThrownBy(() -> load(Map.of(s.fileEnv(), f.toString()), s.flag(), TOKEN))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            s.flag() + " and " + s.fileEnv() + " are both set; give " + s.env() + " one way only");
  }

  @Test
  void load_missingFile_refused() {
    Path f = dir.resolve("absent");

    assertThatThrownBy(() -> load(Map.of("QUOTA_ADMIN_TOKEN_FILE", f.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_ADMIN_TOKEN_FILE: " + f + " does not exist");
  }

  @Test
  void load_directory_refused() throws IOException {
    Path d = Files.createDirectory(dir.resolve("d"));
    Files.setPosixFilePermissions(d, PosixFilePermissions.fromString("rwx------"));

    assertThatThrownBy(() -> load(Map.of("QUOTA_DB_PASSWORD_FILE", d.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_DB_PASSWORD_FILE: " + d + " is not a regular file");
  }

  @Test
  void load_fileWithOnlyANewline_refused() throws IOException {
    Path f = secretFile("empty", "\n", "rw-------");

    assertThatThrownBy(() -> load(Map.of("QUOTA_DB_PASSWORD_FILE", f.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_DB_PASSWORD_FILE: " + f + " is empty");
  }

  // ---- the token rule, on values and on files ----

  @Test
  void load_shortTokenInFile_refusedWithoutTheToken() throws IOException {
    Path f = secretFile("short", "short-secret-value\n", "rw-------");

    assertThatThrownBy(() -> load(Map.of("QUOTA_ADMIN_TOKEN_FILE", f.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKEN_FILE: "
                + f
                + ": the token must be at least 32 characters, got 18"
                + " (generate one with: openssl rand -hex 32)");
  }

  @Test
  void load_tokenWithTabInFile_refused() throws IOException {
    Path f = secretFile("tab", "0123456789abcdef\t0123456789abcdef", "rw-------");

    assertThatThrownBy(() -> load(Map.of(), "--reporter-token-file=" + f))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "--reporter-token-file: "
                + f
                + ": the token must be printable ASCII without spaces"
                + " (character 17 is not)");
  }

  @Test
  void load_shortTokenValue_refusedNamingTheSetting() {
    assertThatThrownBy(() -> load(Map.of("QUOTA_REPORTER_TOKEN", "dev-reporter-token-change-me")))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_REPORTER_TOKEN must be at least 32 characters, got 28 (generate one with: openssl rand -hex 32)");
  }

  @Test
  void load_nonAsciiTokenValue_refused() {
    assertThatThrownBy(() -> load(Map.of("QUOTA_ADMIN_TOKEN", "é".repeat(40))))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKEN must be printable ASCII without spaces (character 1 is not)");
  }

  @Test
  void of_shortToken_refusedToo() {
    assertThatThrownBy(() -> Settings.of(Map.of(Setting.ADMIN_TOKEN, "test-admin-token")))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_ADMIN_TOKEN must be at least 32 characters");
  }

  // ---- the generated <data dir>/*-token files at later starts ----

  @Test
  void resolve_generatedFileMadeGroupReadable_refusedNamingSettingAndFile() throws IOException {
    TokenFile.resolve(Optional.empty(), dir, "admin-token");
    Path f = dir.resolve("admin-token");
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));

    assertThatThrownBy(() -> TokenFile.resolve(Optional.empty(), dir, "admin-token"))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKEN: "
                + f
                + " is readable or writable by group or others (mode 0644); chmod 600 it");
  }

  @Test
  void resolve_generatedFileReplacedBySymlink_refused() throws IOException {
    Path elsewhere = secretFile("elsewhere", TOKEN, "rw-------");
    Path f = Files.createSymbolicLink(dir.resolve("reporter-token"), elsewhere);

    assertThatThrownBy(() -> TokenFile.resolve(Optional.empty(), dir, "reporter-token"))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_REPORTER_TOKEN: " + f + " is a symlink; point the setting at the file itself");
  }

  @Test
  void resolve_danglingSymlink_refusedNotFollowed() throws IOException {
    Path f = Files.createSymbolicLink(dir.resolve("admin-token"), dir.resolve("nowhere"));

    assertThatThrownBy(() -> TokenFile.resolve(Optional.empty(), dir, "admin-token"))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKEN: " + f + " is a symlink; point the setting at the file itself");
    assertThat(dir.resolve("nowhere")).doesNotExist();
  }

  @Test
  void resolve_generatedFileOwnedByAnotherUser_refused() throws IOException {
    assumeTrue(RunningUser.uid() == 0, "changing a file's owner needs root");
    TokenFile.resolve(Optional.empty(), dir, "admin-token");
    Path f = dir.resolve("admin-token");
    Files.setOwner(
        f, f.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("nobody"));

    assertThatThrownBy(() -> TokenFile.resolve(Optional.empty(), dir, "admin-token"))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_ADMIN_TOKEN: " + f + " is owned by uid ")
        .hasMessageEndingWith(", not by the user running the server (uid 0); chown it");
  }

  @Test
  void resolve_shortTokenWrittenIntoGeneratedFile_refused() throws IOException {
    Path f = secretFile("admin-token", "changeme\n", "rw-------");

    assertThatThrownBy(() -> TokenFile.resolve(Optional.empty(), dir, "admin-token"))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_ADMIN_TOKEN: "
                + f
                + ": the token must be at least 32 characters, got 8"
                + " (generate one with: openssl rand -hex 32)");
  }

  @Test
  void octal_everyPermission_matchesChmodNotation() {
    assertThat(SecretFile.octal(PosixFilePermissions.fromString("rw-------"))).isEqualTo("0600");
    assertThat(SecretFile.octal(PosixFilePermissions.fromString("rwxr-x--x"))).isEqualTo("0751");
    assertThat(SecretFile.octal(PosixFilePermissions.fromString("---------"))).isEqualTo("0000");
  }
}
