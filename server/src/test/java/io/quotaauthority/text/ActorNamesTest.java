package io.quotaauthority.text;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ActorNamesTest {
  @ParameterizedTest(name = "[{0}] -> [{1}]")
  @CsvSource(
      delimiter = '|',
      value = {
        "alice|alice",
        "ops@example.com|ops@example.com",
        "a.b_c-d|a.b_c-d",
        "alice smith|alice_smith",
        "eve\u001b[31m|eve__31m",
        "ünïcode|_n_code",
        "x\ty|x_y",
      })
  void sanitize_anyName_keepsOnlySafeCharacters(String name, String expected) {
    assertThat(ActorNames.sanitize(name)).isEqualTo(expected);
  }

  @ParameterizedTest(name = "{0} characters")
  @CsvSource({"64", "65", "1000"})
  void sanitize_longName_isCutToTheMaximum(int length) {
    String name = "a".repeat(length);

    assertThat(ActorNames.sanitize(name)).hasSize(Math.min(length, ActorNames.MAX_LENGTH));
  }
}
