package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.provider.Endpoints;
import io.quotaauthority.provider.Provider;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class KeyDecisionTest {
  private static final long NOW = KeyState.toMicros(Instant.parse("2026-06-01T12:00:00Z"));
  private static final BigDecimal NONE = BigDecimal.ZERO;

  private static KeyState key(
      boolean deleted, boolean disabled, String quota, String used, long expiresAt) {
    return new KeyState(
        1, 1, deleted, disabled, new BigDecimal(quota), new BigDecimal(used), expiresAt);
  }

  private static KeyState active(String quota, String used) {
    return key(false, false, quota, used, KeyState.NEVER);
  }

  @Test
  void decide_noSuchKey_unknownKey() {
    assertThat(KeyDecision.decide(null, NONE, NOW)).isEqualTo(Verdict.UNKNOWN_KEY);
  }

  @Test
  void decide_deletedKey_unknownKey() {
    assertThat(KeyDecision.decide(key(true, false, "10", "0", KeyState.NEVER), NONE, NOW))
        .isEqualTo(Verdict.UNKNOWN_KEY);
  }

  @Test
  void decide_deletedDisabledExpiredExhaustedKey_unknownKey() {
    assertThat(KeyDecision.decide(key(true, true, "1", "5", NOW - 1), NONE, NOW))
        .isEqualTo(Verdict.UNKNOWN_KEY);
  }

  @Test
  void decide_disabledKey_disabled() {
    assertThat(KeyDecision.decide(key(false, true, "10", "0", KeyState.NEVER), NONE, NOW))
        .isEqualTo(Verdict.DISABLED);
  }

  @Test
  void decide_disabledAndExpiredKey_disabled() {
    assertThat(KeyDecision.decide(key(false, true, "10", "10", NOW - 1), NONE, NOW))
        .isEqualTo(Verdict.DISABLED);
  }

  @Test
  void decide_expiresBeforeNow_expired() {
    assertThat(KeyDecision.decide(key(false, false, "0", "0", NOW - 1), NONE, NOW))
        .isEqualTo(Verdict.EXPIRED);
  }

  @Test
  void decide_expiresExactlyNow_expired() {
    assertThat(KeyDecision.decide(key(false, false, "0", "0", NOW), NONE, NOW))
        .isEqualTo(Verdict.EXPIRED);
  }

  @Test
  void decide_expiresOneMicrosecondAfterNow_allow() {
    assertThat(KeyDecision.decide(key(false, false, "0", "0", NOW + 1), NONE, NOW))
        .isEqualTo(Verdict.ALLOW);
  }

  @Test
  void decide_expiredAndExhausted_expired() {
    assertThat(KeyDecision.decide(key(false, false, "5", "7", NOW - 1), NONE, NOW))
        .isEqualTo(Verdict.EXPIRED);
  }

  @Test
  void decide_quotaUsedEqualsQuota_exhausted() {
    assertThat(KeyDecision.decide(active("10", "10.00000000"), NONE, NOW))
        .isEqualTo(Verdict.EXHAUSTED);
  }

  @Test
  void decide_quotaUsedAboveQuota_exhausted() {
    assertThat(KeyDecision.decide(active("10", "10.00000001"), NONE, NOW))
        .isEqualTo(Verdict.EXHAUSTED);
  }

  @Test
  void decide_quotaUsedOneUnitBelowQuota_allow() {
    assertThat(KeyDecision.decide(active("10", "9.99999999"), NONE, NOW)).isEqualTo(Verdict.ALLOW);
  }

  @Test
  void decide_pendingReachesQuota_exhausted() {
    assertThat(KeyDecision.decide(active("10", "9.99999999"), Money.UNIT, NOW))
        .isEqualTo(Verdict.EXHAUSTED);
  }

  @Test
  void decide_pendingPushesOverQuota_exhausted() {
    assertThat(KeyDecision.decide(active("10", "9"), new BigDecimal("1.5"), NOW))
        .isEqualTo(Verdict.EXHAUSTED);
  }

  @Test
  void decide_pendingStaysBelowQuota_allow() {
    assertThat(KeyDecision.decide(active("10", "9"), new BigDecimal("0.99999999"), NOW))
        .isEqualTo(Verdict.ALLOW);
  }

  @Test
  void decide_quotaZeroWithHugeUsage_allow() {
    assertThat(KeyDecision.decide(active("0", "999999999999.99999999"), new BigDecimal("5"), NOW))
        .isEqualTo(Verdict.ALLOW);
  }

  @Test
  void decide_neverExpiringFreshKey_allow() {
    assertThat(KeyDecision.decide(active("10", "0"), NONE, Long.MAX_VALUE - 1))
        .isEqualTo(Verdict.ALLOW);
  }

  @Test
  void keyStateOf_recordWithExpiry_keepsMicrosecondsAndFlags() {
    Instant expires = Instant.parse("2026-06-01T12:00:00.123456789Z");
    KeyRecord r =
        new KeyRecord(
            7,
            "n",
            SecretHasher.hash("sk-x"),
            "sk-x",
            KeyRecord.StoredStatus.DISABLED,
            new BigDecimal("2"),
            new BigDecimal("2"),
            expires,
            Instant.EPOCH,
            Instant.EPOCH,
            null,
            4);

    KeyState s = KeyState.of(r);

    assertThat(s.id()).isEqualTo(7);
    assertThat(s.version()).isEqualTo(4);
    assertThat(s.disabled()).isTrue();
    assertThat(s.deleted()).isFalse();
    assertThat(s.exhausted()).isTrue();
    assertThat(s.expiresAtMicros()).isEqualTo(NOW + 123_456);
  }

  @Test
  void shownStatus_sameRulesAsDecision_computedAtRead() {
    Instant now = Instant.parse("2026-06-01T12:00:00Z");
    assertThat(record("active", "10", "9.99999999", null).shownStatus(now))
        .isEqualTo(KeyRecord.ShownStatus.ACTIVE);
    assertThat(record("active", "10", "10", null).shownStatus(now))
        .isEqualTo(KeyRecord.ShownStatus.QUOTA_EXHAUSTED);
    assertThat(record("active", "0", "1000", null).shownStatus(now))
        .isEqualTo(KeyRecord.ShownStatus.ACTIVE);
    assertThat(record("active", "10", "10", now).shownStatus(now))
        .isEqualTo(KeyRecord.ShownStatus.EXPIRED);
    assertThat(record("active", "10", "0", now.plusNanos(1000)).shownStatus(now))
        .isEqualTo(KeyRecord.ShownStatus.ACTIVE);
    assertThat(record("disabled", "10", "10", now).shownStatus(now))
        .isEqualTo(KeyRecord.ShownStatus.DISABLED);
  }

  private static KeyRecord record(String status, String quota, String used, Instant expiresAt) {
    return new KeyRecord(
        1,
        "n",
        SecretHasher.hash("sk-y"),
        "sk-y",
        KeyRecord.StoredStatus.valueOf(status.toUpperCase()),
        new BigDecimal(quota),
        new BigDecimal(used),
        expiresAt,
        Instant.EPOCH,
        Instant.EPOCH,
        null,
        1);
  }

  private static final Endpoints.Row BATCHES =
      Endpoints.classify(Provider.OPENAI, "POST", "/v1/batches");
  private static final Endpoints.Row CHAT =
      Endpoints.classify(Provider.OPENAI, "POST", "/v1/chat/completions");

  @Test
  void decide_limitedKeyOnNotMeteredEndpoint_notMetered() {
    assertThat(KeyDecision.decide(active("10", "1"), NONE, NOW, BATCHES))
        .isEqualTo(Verdict.NOT_METERED);
  }

  @Test
  void decide_unlimitedKeyOnNotMeteredEndpoint_allow() {
    assertThat(KeyDecision.decide(active("0", "1"), NONE, NOW, BATCHES)).isEqualTo(Verdict.ALLOW);
  }

  @Test
  void decide_limitedKeyOnMeteredOrFreeEndpoint_allow() {
    assertThat(KeyDecision.decide(active("10", "1"), NONE, NOW, CHAT)).isEqualTo(Verdict.ALLOW);
    assertThat(KeyDecision.decide(active("10", "1"), NONE, NOW, Endpoints.ANY_READ))
        .isEqualTo(Verdict.ALLOW);
  }

  @Test
  void decide_exhaustedOrExpiredKeyOnNotMeteredEndpoint_keyVerdictFirst() {
    assertThat(KeyDecision.decide(active("1", "1"), NONE, NOW, BATCHES))
        .isEqualTo(Verdict.EXHAUSTED);
    assertThat(KeyDecision.decide(key(false, false, "10", "0", NOW - 1), NONE, NOW, BATCHES))
        .isEqualTo(Verdict.EXPIRED);
  }

  // The policy rows of the decision order (README "How a request is decided"): each row names the
  // key's state, its lists, the client's address and the endpoint, and the verdict that wins.

  private static KeyState withPolicies(
      boolean disabled,
      String quota,
      String used,
      long expiresAt,
      List<String> allow,
      List<String> deny,
      List<String> models) {
    return new KeyState(
        1,
        1,
        false,
        disabled,
        new BigDecimal(quota),
        new BigDecimal(used),
        expiresAt,
        0,
        new KeyPolicies(
            IpRanges.parse("ip_allow", allow),
            IpRanges.parse("ip_deny", deny),
            ModelAllowList.parse("model_allow", models)));
  }

  static Stream<Arguments> policyOrder() {
    List<String> none = List.of();
    List<String> office = List.of("203.0.113.0/24", "2001:db8::/32");
    List<String> blocked = List.of("203.0.113.66/32");
    List<String> gpt = List.of("gpt-4o-mini");
    long never = KeyState.NEVER;
    return Stream.of(
        // key state before the address: a disabled or expired key says so from anywhere
        Arguments.of(
            true, "0", "0", never, office, none, none, "198.51.100.1", CHAT, Verdict.DISABLED),
        Arguments.of(
            false, "0", "0", NOW - 1, office, none, none, "198.51.100.1", CHAT, Verdict.EXPIRED),
        // the address before any spending figure
        Arguments.of(
            false,
            "1",
            "1",
            never,
            office,
            none,
            none,
            "198.51.100.1",
            CHAT,
            Verdict.IP_NOT_ALLOWED),
        Arguments.of(
            false, "1", "1", never, office, none, none, "203.0.113.9", CHAT, Verdict.EXHAUSTED),
        // allow-list: inside (v4, v6, v4-mapped) passes, outside is refused
        Arguments.of(
            false, "0", "0", never, office, none, none, "203.0.113.9", CHAT, Verdict.ALLOW),
        Arguments.of(
            false, "0", "0", never, office, none, none, "2001:db8::7", CHAT, Verdict.ALLOW),
        Arguments.of(
            false, "0", "0", never, office, none, none, "::ffff:203.0.113.9", CHAT, Verdict.ALLOW),
        Arguments.of(
            false,
            "0",
            "0",
            never,
            office,
            none,
            none,
            "2001:db9::7",
            CHAT,
            Verdict.IP_NOT_ALLOWED),
        // deny wins over allow; deny alone refuses only its blocks
        Arguments.of(
            false,
            "0",
            "0",
            never,
            office,
            blocked,
            none,
            "203.0.113.66",
            CHAT,
            Verdict.IP_NOT_ALLOWED),
        Arguments.of(
            false,
            "0",
            "0",
            never,
            none,
            blocked,
            none,
            "203.0.113.66",
            CHAT,
            Verdict.IP_NOT_ALLOWED),
        Arguments.of(
            false, "0", "0", never, none, blocked, none, "203.0.113.67", CHAT, Verdict.ALLOW),
        // no address Check could read: refused for a key with a list, irrelevant without one
        Arguments.of(
            false, "0", "0", never, none, blocked, none, null, CHAT, Verdict.IP_NOT_ALLOWED),
        Arguments.of(false, "0", "0", never, none, none, none, null, CHAT, Verdict.ALLOW),
        // a model allow-list refuses endpoints whose model metering cannot see, after the quota
        Arguments.of(false, "0", "0", never, none, none, gpt, null, BATCHES, Verdict.NOT_METERED),
        Arguments.of(false, "0", "0", never, none, none, gpt, null, CHAT, Verdict.ALLOW),
        Arguments.of(false, "0", "0", never, none, none, none, null, BATCHES, Verdict.ALLOW),
        Arguments.of(false, "1", "1", never, none, none, gpt, null, BATCHES, Verdict.EXHAUSTED),
        Arguments.of(
            false,
            "0",
            "0",
            never,
            office,
            none,
            gpt,
            "198.51.100.1",
            BATCHES,
            Verdict.IP_NOT_ALLOWED));
  }

  private static KeyState monthly(String quota, String used, Instant endsAt, List<String> deny) {
    PeriodBudget month =
        PeriodBudget.at(
            PeriodBudget.Kind.MONTHLY, 0, java.time.ZoneOffset.UTC, endsAt.minusSeconds(1));
    return new KeyState(
        1,
        1,
        false,
        false,
        new BigDecimal(quota),
        new BigDecimal(used),
        KeyState.NEVER,
        0,
        new KeyPolicies(
            IpRanges.NONE, IpRanges.parse("ip_deny", deny), ModelAllowList.NONE, month));
  }

  @Test
  void decide_periodBudgetSpent_periodExhaustedUntilItsEndThenAllowed() {
    Instant end = Instant.parse("2026-07-01T00:00:00Z");
    KeyState spent = monthly("10", "10", end, List.of());
    long before = KeyState.toMicros(end) - 1;
    assertThat(KeyDecision.decide(spent, NONE, before, CHAT, null))
        .isEqualTo(Verdict.PERIOD_EXHAUSTED);
    // Over in memory: the row's usage is the ended period's.
    assertThat(KeyDecision.decide(spent, NONE, KeyState.toMicros(end), CHAT, null))
        .isEqualTo(Verdict.ALLOW);
    // Pending usage reaching the budget counts as spent too.
    assertThat(
            KeyDecision.decide(
                monthly("10", "9", end, List.of()), new BigDecimal("1"), before, CHAT, null))
        .isEqualTo(Verdict.PERIOD_EXHAUSTED);
    assertThat(KeyDecision.decide(monthly("10", "9", end, List.of()), NONE, before, CHAT, null))
        .isEqualTo(Verdict.ALLOW);
    // The address before the budget: an outsider is not told the key's budget is spent.
    assertThat(
            KeyDecision.decide(
                monthly("10", "10", end, List.of("10.0.0.0/8")),
                NONE,
                before,
                CHAT,
                IpRanges.address("10.1.1.1")))
        .isEqualTo(Verdict.IP_NOT_ALLOWED);
    // An unlimited key with a period (its spend is only recorded) is never refused for it.
    assertThat(KeyDecision.decide(monthly("0", "10", end, List.of()), NONE, before, CHAT, null))
        .isEqualTo(Verdict.ALLOW);
  }

  @ParameterizedTest(name = "[{index}] {8} -> {9}")
  @MethodSource("policyOrder")
  void decide_policyTable_firstMatchWins(
      boolean disabled,
      String quota,
      String used,
      long expiresAt,
      List<String> allow,
      List<String> deny,
      List<String> models,
      String address,
      Endpoints.Row endpoint,
      Verdict expected) {
    KeyState state = withPolicies(disabled, quota, used, expiresAt, allow, deny, models);
    assertThat(KeyDecision.decide(state, NONE, NOW, endpoint, IpRanges.address(address)))
        .isEqualTo(expected);
  }

  private static KeyState windowed(String quota, String used, String h5, String d7) {
    return new KeyState(
        1,
        1,
        false,
        false,
        new BigDecimal(quota),
        new BigDecimal(used),
        KeyState.NEVER,
        0,
        KeyPolicies.NONE.withWindows(
            SpendWindows.of(
                h5 == null ? null : new BigDecimal(h5),
                null,
                d7 == null ? null : new BigDecimal(d7),
                null)));
  }

  private static long[] spent(String h5, String d7) {
    return new long[] {
      UsageWindows.units(new BigDecimal(h5)), 0, UsageWindows.units(new BigDecimal(d7)), 0
    };
  }

  static Stream<Arguments> windowOrder() {
    return Stream.of(
        // below every window
        Arguments.of("0", "0", "20", "100", spent("19.99999999", "99"), "0", CHAT, Verdict.ALLOW),
        // a window reached exactly: refused (as a quota is)
        Arguments.of("0", "0", "20", "100", spent("20", "20"), "0", CHAT, Verdict.WINDOW_EXCEEDED),
        // pending usage counts against the window, as against the quota
        Arguments.of(
            "0", "0", "20", "100", spent("19.5", "19.5"), "0.5", CHAT, Verdict.WINDOW_EXCEEDED),
        // the longer window alone full
        Arguments.of("0", "0", "20", "100", spent("1", "100"), "0", CHAT, Verdict.WINDOW_EXCEEDED),
        // an exhausted quota is named before a full window
        Arguments.of("5", "5", "20", null, spent("25", "0"), "0", CHAT, Verdict.EXHAUSTED),
        // a full window before the endpoint; with room, the endpoint is refused (its spend unseen)
        Arguments.of("0", "0", "20", null, spent("20", "0"), "0", BATCHES, Verdict.WINDOW_EXCEEDED),
        Arguments.of("0", "0", "20", null, spent("1", "0"), "0", BATCHES, Verdict.NOT_METERED),
        // not tracked yet (no spend known): only pending usage counts
        Arguments.of("0", "0", "20", null, null, "20", CHAT, Verdict.WINDOW_EXCEEDED),
        Arguments.of("0", "0", "20", null, null, "0", CHAT, Verdict.ALLOW));
  }

  @ParameterizedTest(name = "[{index}] {7}")
  @MethodSource("windowOrder")
  void decide_windowTable_firstMatchWins(
      String quota,
      String used,
      String h5,
      String d7,
      long[] spent,
      String pending,
      Endpoints.Row endpoint,
      Verdict expected) {
    assertThat(
            KeyDecision.decide(
                windowed(quota, used, h5, d7), new BigDecimal(pending), NOW, endpoint, null, spent))
        .isEqualTo(expected);
  }
}
