package io.quotaauthority.text;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class AsciiDecimalTest {

  @ParameterizedTest(name = "''{0}'' = {1}")
  @CsvSource({
    "0, 0",
    "1, 1",
    "65535, 65535",
    "9223372036854775807, 9223372036854775807",
  })
  void parse_canonicalDecimal_value(String text, long value) {
    assertThat(AsciiDecimal.parse(text)).isEqualTo(value);
    assertThat(AsciiDecimal.isCanonical(text)).isTrue();
  }

  @ParameterizedTest(name = "''{0}''")
  @ValueSource(
      strings = {
        "",
        "+1",
        "-1",
        "-0",
        "0001",
        "00",
        "01",
        " 1",
        "1 ",
        "1_000",
        "1,000",
        "1.0",
        "1e3",
        "0x1F",
        "\u00a01",
        "\u0661", // Arabic-Indic digit one: Long.parseLong reads it as 1
        "\uff11", // full-width digit one
        "\u0967", // Devanagari digit one
        "1\u0660", // an ASCII digit followed by Arabic-Indic zero
        "\u0661\u0662\u0663",
        "99999999999999999999x", // too many digits and then junk: malformed, not just large
      })
  void parse_notCanonical_malformed(String text) {
    assertThat(AsciiDecimal.parse(text)).isEqualTo(AsciiDecimal.MALFORMED);
    assertThat(AsciiDecimal.isCanonical(text)).isFalse();
  }

  @ParameterizedTest(name = "''{0}''")
  @ValueSource(
      strings = {"9223372036854775808", "18446744073709551616", "99999999999999999999999999999"})
  void parse_aboveLongMax_tooLarge(String text) {
    assertThat(AsciiDecimal.parse(text)).isEqualTo(AsciiDecimal.TOO_LARGE);
    assertThat(AsciiDecimal.isCanonical(text)).isTrue();
  }

  @ParameterizedTest(name = "''{0}'' shown as {1}")
  @CsvSource(
      delimiter = ';',
      quoteCharacter = '"',
      value = {
        "abc; 'abc'",
        "\u202e1; '\\u{202E}1'",
        "a\u001b[2Jb; 'a\\u{001B}[2Jb'",
        "\uff11; '\\u{FF11}'",
        "\ud83d\ude00; '\\u{1F600}'",
      })
  void shownQuoted_nonPrintableAscii_escaped(String value, String shown) {
    assertThat(Shown.quoted(value)).isEqualTo(shown);
  }

  @Test
  void shownQuoted_longValue_cutAfterFortyCodePoints() {
    assertThat(Shown.quoted("x".repeat(100))).isEqualTo("'" + "x".repeat(40) + "...'");
  }
}
