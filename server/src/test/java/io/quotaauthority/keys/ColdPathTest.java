package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ColdPathTest {
  @ParameterizedTest(name = "complete={0} live={1} negative={2} -> {3}")
  @CsvSource({
    // A complete set is the truth: not live means not ours, whatever the negative cache says.
    "true,  false, false, UNKNOWN",
    "true,  false, true,  UNKNOWN",
    // Live but uncached: worth a query, even if a stale negative entry says otherwise.
    "true,  true,  false, LOAD",
    "true,  true,  true,  LOAD",
    // Not complete: "not live" proves nothing; only a recent miss in the database spares a query.
    "false, false, false, LOAD",
    "false, true,  false, LOAD",
    "false, false, true,  UNKNOWN",
    "false, true,  true,  UNKNOWN",
  })
  void route_setStateAndCaches_expectedRoute(
      boolean complete, boolean live, boolean negative, ColdPath.Route expected) {
    assertThat(ColdPath.route(complete, live, negative)).isEqualTo(expected);
  }
}
