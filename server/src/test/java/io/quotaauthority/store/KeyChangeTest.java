package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.KeyState;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class KeyChangeTest {
  private static final String HEX =
      "abababababababababababababababababababababababababababababababab";
  private static final KeyHash HASH = KeyHash.of(HexFormat.of().parseHex(HEX));

  @Test
  void parse_payloadAsSent_idVersionHashStateAndSendTime() {
    KeyRecord row =
        new KeyRecord(
            42,
            "k",
            HASH,
            "sk-ab",
            KeyRecord.StoredStatus.DISABLED,
            new BigDecimal("5"),
            new BigDecimal("1.25"),
            null,
            Instant.EPOCH,
            Instant.EPOCH,
            null,
            7);
    KeyChange c = KeyChange.parse(KeyChange.payload(row, 1234));
    assertThat(c).isEqualTo(new KeyChange(42, 7, HASH, 'd', 1234));
  }

  @Test
  void parse_bareId_onlyTheId() {
    assertThat(KeyChange.parse("42"))
        .isEqualTo(new KeyChange(42, KeyChange.UNKNOWN_VERSION, null, '?', -1));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "x",
        "0",
        "-3",
        "42:",
        "42:v",
        "42:1:abc",
        "42:1:zzababababababababababababababababababababababababababababababab",
        "42:1:" + HEX + ":5:q",
        "42:1:" + HEX + ":5:aa",
        "99999999999999999999"
      })
  void parse_malformed_null(String payload) {
    assertThat(KeyChange.parse(payload)).isNull();
  }

  private static KeyState cached(long id, long version) {
    return new KeyState(
        id, version, false, false, BigDecimal.ZERO, BigDecimal.ZERO, KeyState.NEVER);
  }

  @ParameterizedTest(name = "hint v{0} {1}, cached {2}/v{3}, live {4} -> read {5}")
  @CsvSource({
    // Cached: re-read only when the hint names a newer version (or another id for that hash).
    "5, a, 42, 5, true, false",
    "5, a, 42, 6, true, false",
    "6, a, 42, 5, true, true",
    "9223372036854775807, a, 42, 5, true, true",
    "5, a, 41, 9, true, true",
    // Not cached: a live key said to stay live changes nothing held here.
    "5, a, 0, 0, true,  false",
    "5, d, 0, 0, true,  false",
    "5, x, 0, 0, true,  true",
    "5, a, 0, 0, false, true",
    "5, x, 0, 0, false, true",
    "5, ?, 0, 0, true,  true",
  })
  void needsRead_hintAgainstWhatIsHeld_expected(
      long version, char state, long cachedId, long cachedVersion, boolean live, boolean expected) {
    KeyChange hint = new KeyChange(42, version, HASH, state, -1);
    KeyState held = cachedId == 0 ? null : cached(cachedId, cachedVersion);
    assertThat(hint.needsRead(held, live)).isEqualTo(expected);
  }

  @Test
  void needsRead_noHash_alwaysReads() {
    assertThat(new KeyChange(42, 1, null, '?', -1).needsRead(cached(42, 9), true)).isTrue();
  }
}
