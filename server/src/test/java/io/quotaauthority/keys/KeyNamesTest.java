package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The name rule as a table: each refused name with the exact message, each edge that passes. */
class KeyNamesTest {
  private static final String EMOJI = "\ud83d\ude00"; // U+1F600, two UTF-16 units

  static Stream<Arguments> refused() {
    return Stream.of(
        Arguments.of("", "name must not be empty"),
        Arguments.of(" ", "name must not be empty or only whitespace"),
        Arguments.of("\u00a0\u00a0", "name must not be empty or only whitespace"),
        Arguments.of("\u3000", "name must not be empty or only whitespace"),
        Arguments.of("\u2007\u202f", "name must not be empty or only whitespace"),
        Arguments.of(" team", "name must not start or end with whitespace"),
        Arguments.of("team\u00a0", "name must not start or end with whitespace"),
        Arguments.of("\u3000team", "name must not start or end with whitespace"),
        Arguments.of(
            "a\u0000b", "name must not contain control characters (U+0000 at character 2)"),
        Arguments.of("\t", "name must not contain control characters (U+0009 at character 1)"),
        Arguments.of(
            "line\nbreak", "name must not contain control characters (U+000A at character 5)"),
        Arguments.of("cr\r", "name must not contain control characters (U+000D at character 3)"),
        Arguments.of(
            "esc\u001b[31m", "name must not contain control characters (U+001B at character 4)"),
        Arguments.of(
            "nel\u0085", "name must not contain control characters (U+0085 at character 4)"),
        Arguments.of(
            "del\u007f", "name must not contain control characters (U+007F at character 4)"),
        Arguments.of(
            "abc\u202edcba",
            "name must not contain bidirectional override or isolate characters (U+202E at character 4)"),
        Arguments.of(
            "\u202ax",
            "name must not contain bidirectional override or isolate characters (U+202A at character 1)"),
        Arguments.of(
            "x\u2066y",
            "name must not contain bidirectional override or isolate characters (U+2066 at character 2)"),
        Arguments.of(
            "x\u2069",
            "name must not contain bidirectional override or isolate characters (U+2069 at character 2)"),
        Arguments.of(
            "\u200b",
            "name must not contain invisible format characters (zero-width, BOM and the like)"
                + " (U+200B at character 1)"),
        Arguments.of(
            "\u200b\u200b\u200b",
            "name must not contain invisible format characters (zero-width, BOM and"
                + " the like) (U+200B at character 1)"),
        Arguments.of(
            "a\u200db",
            "name must not contain invisible format characters (zero-width, BOM and the like)"
                + " (U+200D at character 2)"),
        Arguments.of(
            "rlm\u200f",
            "name must not contain invisible format characters (zero-width, BOM and the like)"
                + " (U+200F at character 4)"),
        Arguments.of(
            "\ufeffteam",
            "name must not contain invisible format characters (zero-width, BOM and the like)"
                + " (U+FEFF at character 1)"),
        Arguments.of(
            "soft\u00adhyphen",
            "name must not contain invisible format characters (zero-width, BOM and"
                + " the like) (U+00AD at character 5)"),
        Arguments.of(
            "wj\u2060",
            "name must not contain invisible format characters (zero-width, BOM and the like)"
                + " (U+2060 at character 3)"),
        Arguments.of(
            "tag\udb40\udc41",
            "name must not contain invisible format characters (zero-width, BOM and"
                + " the like) (U+E0041 at character 4)"),
        Arguments.of(
            "a\u2028b",
            "name must not contain line or paragraph separators (U+2028 at character 2)"),
        Arguments.of(
            "a\u2029b",
            "name must not contain line or paragraph separators (U+2029 at character 2)"),
        Arguments.of(
            "lone\ud800", "name must not contain unpaired surrogates (U+D800 at character 5)"),
        Arguments.of(
            "n".repeat(201), "name must be at most 200 characters (Unicode code points), got 201"),
        Arguments.of(
            EMOJI.repeat(201),
            "name must be at most 200 characters (Unicode code points), got 201"));
  }

  @ParameterizedTest(name = "[{index}] {1}")
  @MethodSource("refused")
  void check_refusedName_messageNamesFieldAndCodePoint(String name, String message) {
    assertThatThrownBy(() -> KeyNames.check("name", name))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(message);
  }

  @Test
  void check_null_refusedAsEmpty() {
    assertThatThrownBy(() -> KeyNames.check("--name", null)).hasMessage("--name must not be empty");
  }

  @ParameterizedTest(name = "''{0}''")
  @ValueSource(
      strings = {
        "a",
        "team-a",
        "Team A (prod)",
        "é",
        "日本語のキー",
        "עברית",
        "العربية",
        "Ünïcödé ключ",
        "a\u00a0b",
        "x\u3000y",
        "e\u0301", // a combining accent is a mark, not a format character
        "\u2764\ufe0f", // a variation selector is a mark too
        "\ue000", // private use
      })
  void check_ordinaryName_returnedUnchanged(String name) {
    assertThat(KeyNames.check("name", name)).isSameAs(name);
  }

  @Test
  void check_200CodePoints_accepted() {
    assertThat(KeyNames.check("name", "n".repeat(200))).hasSize(200);
    String emoji = EMOJI.repeat(200);
    assertThat(KeyNames.check("name", emoji)).isSameAs(emoji);
    // 400 UTF-16 units: the limit counts code points.
    assertThat(emoji).hasSize(400);
  }

  @Test
  void check_fieldName_startsTheMessage() {
    assertThatThrownBy(() -> KeyNames.check("--name", "a\nb"))
        .hasMessageStartingWith("--name must not contain control characters");
  }

  @Test
  void isRefused_agreesWithCheck() {
    assertThat(KeyNames.isRefused('\u202e')).isTrue();
    assertThat(KeyNames.isRefused('\u001b')).isTrue();
    assertThat(KeyNames.isRefused(0xFEFF)).isTrue();
    assertThat(KeyNames.isRefused('a')).isFalse();
    assertThat(KeyNames.isRefused(0x1F600)).isFalse();
  }
}
