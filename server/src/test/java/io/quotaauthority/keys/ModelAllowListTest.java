package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ModelAllowListTest {
  private static final ModelAllowList LIST =
      ModelAllowList.parse("model_allow", List.of("gpt-4o-mini", "claude-3-5-*", "gemini-2.5-*"));

  @ParameterizedTest(name = "{0}: {1}")
  @CsvSource({
    "gpt-4o-mini, true",
    "gpt-4o, false",
    "gpt-4o-mini-2024-07-18, false",
    "claude-3-5-haiku-20241022, true",
    "claude-3-5-, true",
    "claude-3-7-sonnet, false",
    "gemini-2.5-flash, true",
    "GPT-4O-MINI, false",
  })
  void allows_exactAndPrefix_caseSensitive(String model, boolean allowed) {
    assertThat(LIST.allows(model)).isEqualTo(allowed);
  }

  @Test
  void allows_noModel_refusedByAList_allowedWithoutOne() {
    assertThat(LIST.allows(null)).isFalse();
    assertThat(ModelAllowList.NONE.allows(null)).isTrue();
    assertThat(ModelAllowList.NONE.allows("anything")).isTrue();
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "gpt*4o|model_allow[1] 'gpt*4o' may have '*' only at its end (a prefix)",
        "*|model_allow[1] '*' allows every model; leave the list empty instead",
        "gpt 4o|model_allow[1] 'gpt?4o' may hold only visible ASCII other than ',' (character 4)",
        "a,b|model_allow[1] 'a,b' may hold only visible ASCII other than ',' (character 2)",
      })
  void parse_badEntry_refusedNamingFieldAndIndex(String entry, String message) {
    assertThatThrownBy(() -> ModelAllowList.parse("model_allow", List.of("ok", entry)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(message);
  }

  @Test
  void parse_emptyTooLongOrTooMany_refused() {
    assertThatThrownBy(() -> ModelAllowList.parse("model_allow", List.of("")))
        .hasMessage("model_allow[0] must not be empty");
    assertThatThrownBy(() -> ModelAllowList.parse("model_allow", List.of("m".repeat(129))))
        .hasMessage("model_allow[0] is longer than 128 characters");
    assertThatThrownBy(() -> ModelAllowList.parse("model_allow", Collections.nCopies(65, "gpt-4o")))
        .hasMessage("model_allow has 65 entries; at most 64 are allowed");
  }

  @Test
  void header_roundTrips_andMalformedHeaderIsNull() {
    assertThat(ModelAllowList.fromHeader(LIST.header()).entries()).isEqualTo(LIST.entries());
    assertThat(ModelAllowList.fromHeader("gpt-4o,,x")).isNull();
    assertThat(ModelAllowList.fromHeader("gpt 4o")).isNull();
    assertThat(ModelAllowList.fromHeader("")).isNull();
  }
}
