package io.quotaauthority.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The README's configuration table and {@link Setting} say the same. */
class ReadmeConfigurationTest {
  /** env → [flag, default] as the README's table shows them. */
  private static final Map<String, List<String>> rows = new LinkedHashMap<>();

  private static String section;

  @BeforeAll
  static void readTable() throws IOException {
    Path readme = findReadme();
    String text = Files.readString(readme, StandardCharsets.UTF_8);
    int start = text.indexOf("\n## Configuration\n");
    assertThat(start).as("README has a '## Configuration' section").isNotNegative();
    int end = text.indexOf("\n## ", start + 1);
    section = end < 0 ? text.substring(start) : text.substring(start, end);
    for (String line : section.split("\n")) {
      if (!line.startsWith("| `QUOTA_")) {
        continue;
      }
      List<String> cells = Arrays.stream(line.split("\\|")).map(String::trim).toList();
      // "", env, flag, default, meaning
      assertThat(cells).as(line).hasSizeGreaterThanOrEqualTo(5);
      List<String> previous =
          rows.put(unquote(cells.get(1)), List.of(unquote(cells.get(2)), cells.get(3)));
      assertThat(previous).as("%s is listed once", cells.get(1)).isNull();
    }
  }

  private static Path findReadme() {
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null) {
      if (Files.isRegularFile(dir.resolve("README.md"))
          && Files.isDirectory(dir.resolve("server"))) {
        return dir.resolve("README.md");
      }
      dir = dir.getParent();
    }
    throw new IllegalStateException("no README.md above " + Path.of("").toAbsolutePath());
  }

  private static String unquote(String cell) {
    return cell.startsWith("`") && cell.endsWith("`") && cell.length() >= 2
        ? cell.substring(1, cell.length() - 1)
        : cell;
  }

  private static String shownDefault(Setting s) {
    return s.defaultValue().isEmpty() ? "(empty)" : "`" + s.defaultValue() + "`";
  }

  @Test
  void readme_configurationTable_listsEverySettingWithFlagAndDefault() {
    for (Setting s : Setting.values()) {
      assertThat(rows).as("README lists %s", s.env()).containsKey(s.env());
      assertThat(rows.get(s.env()).get(0)).as("flag of %s", s.env()).isEqualTo(s.flag());
      assertThat(rows.get(s.env()).get(1)).as("default of %s", s.env()).isEqualTo(shownDefault(s));
    }
  }

  @Test
  void readme_configuration_fileVariantsOfSecretsInOneParagraphNotInTheTable() {
    // <ENV>_FILE / <flag>-file are made from Setting.secret(), like serve --help lists them: one
    // paragraph states the convention, so a new secret needs no row of its own for them.
    assertThat(section.replaceAll("\\s+", " "))
        .contains("`<variable>_FILE` or `<flag>-file` names a file holding only the value");
    for (Setting s : Setting.values()) {
      if (s.secret()) {
        assertThat(rows).as("no row for %s", s.fileEnv()).doesNotContainKey(s.fileEnv());
      }
    }
  }

  @Test
  void readme_configurationTable_listsNothingElse() {
    assertThat(rows.keySet())
        .containsExactlyInAnyOrderElementsOf(
            Arrays.stream(Setting.values()).map(Setting::env).toList());
  }
}
