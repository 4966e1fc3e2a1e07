package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.time.Instant;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class HoldIdsTest {
  private static final byte[] SECRET = "0123456789abcdef0123456789abcdef".getBytes();
  private static final Instant EXPIRES = Instant.parse("2030-01-02T03:04:05Z");
  private final HoldIds ids = new HoldIds(SECRET);

  @ParameterizedTest(name = "{0} USD")
  @CsvSource({"0.00000001", "0.1", "12.34567890", "999999999999.99999999"})
  void issueThenParse_anyAmount_givesBackEveryFieldExactly(String amount) {
    HoldIds.Parsed issued = ids.issue(42, "host-a/123/abcdef", new BigDecimal(amount), EXPIRES);
    String id = issued.id();
    HoldIds.Parsed p = ids.parse(id);
    assertThat(p).as("what the issuer keeps is what parse reads back").isEqualTo(issued);
    assertThat(p.keyId()).isEqualTo(42);
    assertThat(p.instanceId()).isEqualTo("host-a/123/abcdef");
    assertThat(p.amount()).isEqualByComparingTo(amount);
    assertThat(p.amount().scale()).isEqualTo(8);
    assertThat(p.expiresAt()).isEqualTo(EXPIRES);
    assertThat(p.id()).isEqualTo(id);
  }

  @Test
  void issue_longestInstanceId_fitsTheColumnAndHeaderSafe() {
    String id =
        ids.issue(Long.MAX_VALUE, "x".repeat(128), new BigDecimal("999999999999.99999999"), EXPIRES)
            .id();
    assertThat(id.length()).isLessThanOrEqualTo(HoldIds.MAX_LENGTH);
    assertThat(id).matches("qh1_[A-Za-z0-9_-]+");
  }

  @Test
  void issue_sameHoldTwice_differentIds() {
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < 1000; i++) {
      seen.add(ids.issue(1, "a", BigDecimal.ONE, EXPIRES).id());
    }
    assertThat(seen).hasSize(1000);
  }

  @Test
  void parse_everySingleByteChanged_refusedAsWrongSignatureOrMalformed() {
    String id = ids.issue(7, "inst", new BigDecimal("0.5"), EXPIRES).id();
    byte[] raw = Base64.getUrlDecoder().decode(id.substring(4));
    for (int i = 0; i < raw.length; i++) {
      byte[] changed = Arrays.copyOf(raw, raw.length);
      changed[i] ^= 0x01;
      String forged = "qh1_" + Base64.getUrlEncoder().withoutPadding().encodeToString(changed);
      assertThatThrownBy(() -> ids.parse(forged))
          .as("byte %d changed", i)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("hold_id ");
    }
  }

  @Test
  void parse_issuedUnderAnotherSecret_refused() {
    String id =
        new HoldIds("another-secret-of-32-bytes-......".getBytes())
            .issue(7, "i", BigDecimal.ONE, EXPIRES)
            .id();
    assertThatThrownBy(() -> ids.parse(id))
        .hasMessage("hold_id has a wrong signature: not issued by this service");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "qh1_",
        "qh1_!!!",
        "qh2_AAAA",
        "hold",
        "qh1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
      })
  void parse_malformed_refusedNamingHoldId(String bad) {
    assertThatThrownBy(() -> ids.parse(bad))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("hold_id ");
  }

  @Test
  void parse_longerThanTheLimit_refusedWithoutDecoding() {
    assertThatThrownBy(() -> ids.parse("qh1_" + "A".repeat(1_000_000)))
        .hasMessage("hold_id is not a hold id this service issued");
  }

  @Test
  void expiryReportId_sameHold_sameIdWithinTheReportIdLimit() {
    String hold = ids.issue(7, "inst", BigDecimal.ONE, EXPIRES).id();
    assertThat(HoldIds.expiryReportId(hold))
        .isEqualTo(HoldIds.expiryReportId(hold))
        .hasSize(77)
        .startsWith("hold-expired:");
  }

  @Test
  void constructor_shortSecret_refused() {
    assertThatThrownBy(() -> new HoldIds(new byte[31]))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
