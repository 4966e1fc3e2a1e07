package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashSet;
import java.util.HexFormat;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ReportIdTest {

  @Test
  void newReportId_madeLater_sortsLaterAndStartsWithTheTime() throws Exception {
    long before = System.currentTimeMillis();
    String first = MeteringSession.newReportId();
    // The wall clock must move on by at least a millisecond; it is driven, not faked.
    Thread.sleep(3);
    String second = MeteringSession.newReportId();
    long after = System.currentTimeMillis();

    assertThat(first).matches(ExtProcServiceTest.AUTHORITY_REPORT_ID).hasSize(28);
    assertThat(second.compareTo(first)).isPositive();
    long stamped = HexFormat.fromHexDigitsToLong(first.substring(2, 14));
    assertThat(stamped).isBetween(before, after);
  }

  @Test
  void newReportId_sameMillisecond_neverRepeats() {
    Set<String> ids = new HashSet<>();
    for (int i = 0; i < 10_000; i++) {
      ids.add(MeteringSession.newReportId());
    }
    assertThat(ids).hasSize(10_000);
  }
}
