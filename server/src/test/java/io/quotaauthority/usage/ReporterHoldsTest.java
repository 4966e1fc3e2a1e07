package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.junit.jupiter.api.Test;

/**
 * ReporterHolds over BudgetLeases on an in-memory lease store, a ledger whose settled holds the
 * test sets, and a sink that records what it is given: issue, settle here or elsewhere, expire.
 */
class ReporterHoldsTest {
  private static final long KEY = 7;
  private static final Duration TTL = Duration.ofMinutes(10);
  private static final BigDecimal HOLD = new BigDecimal("0.10000000");

  private final BudgetLeasesTest.HandClock clock = new BudgetLeasesTest.HandClock();
  private final MemoryLeaseStore store = new MemoryLeaseStore(clock).key(KEY, "1.00", "0");
  private final BudgetLeases leases =
      new BudgetLeases(
          store, "inst-a", BigDecimal.ONE, 3, Duration.ofSeconds(30), Duration.ofMinutes(1), clock);
  private final HoldIds ids = new HoldIds(new byte[32]);
  private final Map<String, BigDecimal> settledInLedger = new HashMap<>();
  private final List<UsageReport> submitted = new ArrayList<>();
  private final List<UsageLedger.HeldBy> submittedHolds = new ArrayList<>();
  private final List<CompletableFuture<UsageOutcome>> outcomes = new ArrayList<>();
  private final Map<ReporterHolds.Event, Integer> events = new EnumMap<>(ReporterHolds.Event.class);

  private final UsageLedger ledger =
      new UsageLedger() {
        @Override
        public Committed commitGroup(List<UsageReport> reports) {
          throw new UnsupportedOperationException();
        }

        @Override
        public Map<String, BigDecimal> settledHolds(Collection<String> holdIds) {
          Map<String, BigDecimal> out = new HashMap<>();
          for (String id : holdIds) {
            if (settledInLedger.containsKey(id)) {
              out.put(id, settledInLedger.get(id));
            }
          }
          return out;
        }
      };

  private final UsageSink sink =
      new UsageSink() {
        @Override
        public CompletionStage<UsageOutcome> submit(UsageReport report) {
          return submit(report, null);
        }

        @Override
        public CompletionStage<UsageOutcome> submit(UsageReport report, UsageLedger.HeldBy held) {
          submitted.add(report);
          submittedHolds.add(held);
          CompletableFuture<UsageOutcome> f = new CompletableFuture<>();
          outcomes.add(f);
          return f;
        }
      };

  private final ReporterHolds holds =
      new ReporterHolds(
          leases, ids, ledger, sink, TTL, clock, e -> events.merge(e, 1, Integer::sum));

  private String take(boolean chargeAtExpiry) {
    Optional<String> id = holds.hold(KEY, HOLD, chargeAtExpiry).join();
    assertThat(id).isPresent();
    return id.get();
  }

  private BigDecimal held() {
    return leases.leaseAndHeld(KEY)[1];
  }

  private BigDecimal lease() {
    return leases.leaseAndHeld(KEY)[0];
  }

  private int count(ReporterHolds.Event e) {
    return events.getOrDefault(e, 0);
  }

  @Test
  void hold_budgetCovers_signedIdNamingKeyInstanceAmountAndExpiry() {
    String id = take(true);
    HoldIds.Parsed p = ids.parse(id);
    assertThat(p.keyId()).isEqualTo(KEY);
    assertThat(p.instanceId()).isEqualTo("inst-a");
    assertThat(p.amount()).isEqualByComparingTo(HOLD);
    assertThat(p.expiresAt())
        .isEqualTo(clock.instant().plus(TTL).truncatedTo(java.time.temporal.ChronoUnit.SECONDS));
    assertThat(held()).isEqualByComparingTo(HOLD);
    assertThat(holds.outstanding()).isEqualTo(1);
    assertThat(count(ReporterHolds.Event.TAKEN)).isEqualTo(1);
  }

  @Test
  void hold_budgetShort_emptyCountedAsRefused() {
    for (int i = 0; i < 10; i++) {
      take(true);
    }
    assertThat(holds.hold(KEY, HOLD, true).join()).isEmpty();
    assertThat(count(ReporterHolds.Event.REFUSED)).isEqualTo(1);
    assertThat(held()).isEqualByComparingTo("1.00");
  }

  @Test
  void settledHere_accepted_releasedWithWhatTheChargeDrew() {
    String id = take(true);
    BigDecimal before = lease();
    holds.settledHere(
        id,
        new UsageOutcome(
            UsageOutcome.Result.ACCEPTED, "", BigDecimal.ONE, false, new BigDecimal("0.07")));
    assertThat(held()).isEqualByComparingTo("0");
    assertThat(lease()).isEqualByComparingTo(before.subtract(new BigDecimal("0.07")));
    assertThat(holds.outstanding()).isZero();
    assertThat(count(ReporterHolds.Event.SETTLED)).isEqualTo(1);
  }

  @Test
  void settledHere_rejectedOrConflict_holdKeptForTheRetry() {
    String id = take(true);
    holds.settledHere(id, UsageOutcome.rejectedInternal("internal error"));
    holds.settledHere(id, UsageOutcome.conflict("hold_id: settled"));
    assertThat(held()).isEqualByComparingTo(HOLD);
    assertThat(holds.outstanding()).isEqualTo(1);
  }

  @Test
  void maintain_settledOnAnotherInstance_releasedWithTheCostCappedAtTheHold() {
    String cheap = take(true);
    String dear = take(true);
    BigDecimal before = lease();
    settledInLedger.put(cheap, new BigDecimal("0.03"));
    settledInLedger.put(dear, new BigDecimal("0.50"));
    holds.maintain();
    assertThat(held()).isEqualByComparingTo("0");
    assertThat(lease()).isEqualByComparingTo(before.subtract(new BigDecimal("0.13")));
    assertThat(count(ReporterHolds.Event.SETTLED)).isEqualTo(2);
    assertThat(submitted).isEmpty();
  }

  @Test
  void maintain_releaseAtExpiry_onlyAfterTheMarginThenGivenBackWhole() {
    take(false);
    BigDecimal before = lease();
    clock.advance(TTL.plus(ReporterHolds.SETTLE_MARGIN));
    holds.maintain();
    assertThat(holds.outstanding()).as("not before the margin has passed").isEqualTo(1);
    clock.advance(Duration.ofSeconds(1));
    holds.maintain();
    assertThat(holds.outstanding()).isZero();
    assertThat(held()).isEqualByComparingTo("0");
    assertThat(lease()).as("nothing drawn").isEqualByComparingTo(before);
    assertThat(count(ReporterHolds.Event.EXPIRED_RELEASED)).isEqualTo(1);
    assertThat(submitted).isEmpty();
  }

  @Test
  void maintain_chargeAtExpiry_oneEstimatedChargeOfTheHoldOnItsOwnLeaseThenReleased() {
    String id = take(true);
    clock.advance(TTL.plus(ReporterHolds.SETTLE_MARGIN).plusSeconds(1));
    holds.maintain();
    holds.maintain();
    assertThat(submitted).as("one charge while the first is unanswered").hasSize(1);
    UsageReport r = submitted.get(0);
    assertThat(r.reportId()).isEqualTo(HoldIds.expiryReportId(id));
    assertThat(r.keyId()).isEqualTo(KEY);
    assertThat(r.cost()).isEqualByComparingTo(HOLD);
    assertThat(r.estimated()).isTrue();
    assertThat(submittedHolds.get(0)).isEqualTo(new UsageLedger.HeldBy("inst-a", HOLD, id));
    BigDecimal before = lease();
    outcomes.get(0).complete(new UsageOutcome(UsageOutcome.Result.ACCEPTED, "", HOLD, false, HOLD));
    assertThat(holds.outstanding()).isZero();
    assertThat(held()).isEqualByComparingTo("0");
    assertThat(lease()).isEqualByComparingTo(before.subtract(HOLD));
    assertThat(count(ReporterHolds.Event.EXPIRED_CHARGED)).isEqualTo(1);
  }

  @Test
  void maintain_chargeAtExpiryRefusedForAnInternalReason_triedAgainNextRound() {
    take(true);
    clock.advance(TTL.plus(ReporterHolds.SETTLE_MARGIN).plusSeconds(1));
    holds.maintain();
    outcomes.get(0).complete(UsageOutcome.rejectedInternal("internal error"));
    assertThat(holds.outstanding()).isEqualTo(1);
    holds.maintain();
    assertThat(submitted).hasSize(2);
  }

  @Test
  void settlement_inTimeNearExpiryOrForeign_drawsOnTheHolderOnNoLeaseOrIsRefused() {
    String id = take(true);
    assertThat(holds.settlement(id, KEY)).isEqualTo(new UsageLedger.HeldBy("inst-a", HOLD, id));
    assertThatThrownBy(() -> holds.settlement(id, KEY + 1))
        .hasMessage("hold_id was issued for another key, not key_id " + (KEY + 1));
    clock.advance(TTL.minus(ReporterHolds.SETTLE_MARGIN));
    assertThat(holds.settlement(id, KEY))
        .as("within the margin of its expiry: kept with the charge, drawn on no lease")
        .isEqualTo(new UsageLedger.HeldBy(null, HOLD, id));
  }

  @Test
  void abandon_idNeverHandedOut_givenBackAtOnce() {
    String id = take(true);
    holds.abandon(id);
    holds.abandon(id);
    assertThat(held()).isEqualByComparingTo("0");
    assertThat(holds.outstanding()).isZero();
    assertThat(count(ReporterHolds.Event.ABANDONED)).isEqualTo(1);
  }
}
