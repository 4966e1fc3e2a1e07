package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.util.SplittableRandom;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class MoneyTest {

  @ParameterizedTest(name = "parse ''{0}'' = {1}, formats as ''{2}''")
  @CsvSource(
      delimiter = ';',
      value = {
        "0; 0; 0",
        "0.0; 0.0; 0",
        "00; 0; 0",
        "1; 1; 1",
        "12.5; 12.5; 12.5",
        "12.50000000; 12.50000000; 12.5",
        "0.00000001; 0.00000001; 0.00000001",
        "0.00012500; 0.00012500; 0.000125",
        "100; 100; 100",
        "1000000; 1000000; 1000000",
        "999999999999; 999999999999; 999999999999",
        "999999999999.99999999; 999999999999.99999999; 999999999999.99999999",
        "000000000001.10000000; 1.1; 1.1",
      })
  void parse_validAmount_returnsExactValueAndCanonicalText(
      String text, String value, String formatted) {
    BigDecimal parsed = Money.parse("quota_usd", text);

    assertThat(parsed).isEqualByComparingTo(new BigDecimal(value));
    assertThat(Money.format(parsed)).isEqualTo(formatted);
  }

  @ParameterizedTest(name = "''{0}'' is refused")
  @ValueSource(
      strings = {
        "-1",
        "-0",
        "+1",
        "NaN",
        "Infinity",
        "1e3",
        "1E3",
        "0x10",
        "1.",
        ".5",
        " 1",
        "1 ",
        "1,5",
        "1_000",
        "1000000000000",
        "0.000000001",
        "1.123456789",
        "١",
        "1.5.5",
        "$1",
        "1..2",
        "9999999999999999999999"
      })
  void parse_malformedAmount_throwsNamingTheField(String text) {
    assertThatThrownBy(() -> Money.parse("quota_usd", text))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("quota_usd must be a decimal USD amount");
  }

  @Test
  void parse_empty_throwsNamingTheField() {
    assertThatThrownBy(() -> Money.parse("cost_usd", ""))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("cost_usd must not be empty");
    assertThatThrownBy(() -> Money.parse("cost_usd", null))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("cost_usd must not be empty");
  }

  @Test
  void parse_veryLongInput_messageIsAbbreviated() {
    String text = "1".repeat(10_000);

    assertThatThrownBy(() -> Money.parse("quota_usd", text))
        .hasMessageEndingWith("(got '" + "1".repeat(32) + "...')");
  }

  @ParameterizedTest(name = "format({0}) = ''{1}''")
  @CsvSource(
      delimiter = ';',
      value = {
        "0E-8; 0",
        "0.00000000; 0",
        "1E+3; 1000",
        "1000.00000000; 1000",
        "3.25000000; 3.25",
        "1E-8; 0.00000001",
      })
  void format_anyScale_givesPlainTextWithoutTrailingZeros(String value, String expected) {
    assertThat(Money.format(new BigDecimal(value))).isEqualTo(expected);
  }

  @Test
  void constants_unitAndMax_matchNumeric20_8() {
    assertThat(Money.UNIT).isEqualByComparingTo("0.00000001");
    assertThat(Money.MAX).isEqualByComparingTo("999999999999.99999999");
    assertThat(Money.parse("x", Money.format(Money.MAX))).isEqualByComparingTo(Money.MAX);
  }

  @Test
  void hasShape_generatedStrings_agreesWithTheRegularExpression() {
    Pattern shape = Pattern.compile("[0-9]{1,12}(\\.[0-9]{1,8})?");
    String alphabet = "0123456789..-e+ \u0661";
    SplittableRandom random = new SplittableRandom(19);
    int accepted = 0;
    for (int n = 0; n < 200_000; n++) {
      StringBuilder b = new StringBuilder();
      int length = random.nextInt(24);
      // Mostly digits, so that the long and well-formed ones come up too.
      for (int i = 0; i < length; i++) {
        b.append(
            random.nextInt(4) == 0
                ? alphabet.charAt(random.nextInt(alphabet.length()))
                : (char) ('0' + random.nextInt(10)));
      }
      String text = b.toString();
      boolean expected = shape.matcher(text).matches();
      assertThat(Money.hasShape(text)).as("'%s'", text).isEqualTo(expected);
      accepted += expected ? 1 : 0;
    }
    assertThat(accepted).isGreaterThan(1_000);
  }
}
