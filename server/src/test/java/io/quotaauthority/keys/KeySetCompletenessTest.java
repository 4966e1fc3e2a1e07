package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class KeySetCompletenessTest {
  /**
   * Events, in order: L = LISTEN in place (new connection), S = a load starts, F = the load that
   * started last finishes (is swapped in), X = the listen connection is lost.
   */
  @ParameterizedTest(name = "{0} -> complete={1}")
  @CsvSource({
    "'',       false",
    "L,        false",
    "LS,       false",
    "LSF,      true",
    // Loaded while not listening (database up, listener not yet): could have missed a creation.
    "SF,       false",
    "SLF,      false",
    // A load that began before this connection's LISTEN does not count for it.
    "LSXLF,    false",
    "LSFX,     false",
    // Reconnected: the old load no longer counts until a new one finishes.
    "LSFXL,    false",
    "LSFXLS,   false",
    "LSFXLSF,  true",
    // A periodic reload on a complete set keeps it complete throughout.
    "LSFS,     true",
    "LSFSF,    true",
    "LSFSX,    false",
    // Lost during the load: nothing counts.
    "LSXF,     false",
  })
  void complete_eventSequence_expected(String events, boolean expected) {
    KeySetCompleteness c = new KeySetCompleteness();
    long token = -1;
    for (char e : events.toCharArray()) {
      switch (e) {
        case 'L' -> c.listening();
        case 'S' -> token = c.loadStarting();
        case 'F' -> c.loaded(token);
        case 'X' -> c.lost();
        default -> throw new IllegalArgumentException(String.valueOf(e));
      }
    }
    assertThat(c.complete()).isEqualTo(expected);
  }
}
