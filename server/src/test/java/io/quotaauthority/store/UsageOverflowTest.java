package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.usage.UsageReport;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Which reports of a group would carry their key's quota_used past NUMERIC(20,8)'s maximum. */
class UsageOverflowTest {
  private static final BigDecimal NEAR_MAX = new BigDecimal("999999999990");

  private static UsageReport r(String id, long key, String cost) {
    return new UsageReport(id, key, new BigDecimal(cost), "m", "", 0, 0, 0, 0, Instant.EPOCH);
  }

  @Test
  void overflowing_inChargeOrder_refusesOnlyWhatNoLongerFitsAndLaterSmallerOnesStillFit() {
    List<UsageReport> group =
        List.of(
            r("a", 1, "5"),
            r("b", 1, "5"),
            r("c", 1, "0.00000001"),
            r("d", 1, "4.99999998"),
            r("e", 2, "1000"));
    Set<String> refused =
        UsageRepository.overflowing(group, Map.of(1L, NEAR_MAX, 2L, BigDecimal.ZERO), Set.of());
    // a takes key 1 to ...995; b would reach 10^12, past the maximum; c and d reach it exactly.
    assertThat(refused).containsExactly("b");
  }

  @Test
  void overflowing_exactlyTheMaximum_fits() {
    Set<String> refused =
        UsageRepository.overflowing(
            List.of(r("a", 1, "9.99999999")), Map.of(1L, NEAR_MAX), Set.of());
    assertThat(refused).isEmpty();
  }

  @Test
  void overflowing_reportChargedBefore_addsNothingAndIsNotRefused() {
    List<UsageReport> group = List.of(r("old", 1, "9"), r("new", 1, "9"));
    Set<String> refused = UsageRepository.overflowing(group, Map.of(1L, NEAR_MAX), Set.of("old"));
    assertThat(refused).isEmpty();
  }
}
