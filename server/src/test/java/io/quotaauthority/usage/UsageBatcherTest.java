package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.PendingUsage;
import io.quotaauthority.usage.UsageLedger.Failure.Kind;
import io.quotaauthority.usage.UsageOutcome.Result;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The group commit without a database: {@link UsageBatcher} over {@link MemoryLedger}, a KeyCache
 * over the same rows, and a real PendingUsage. Reports submitted before {@code start()} wait in the
 * queue, so a test that needs them in one group submits them first and starts the batcher after.
 */
class UsageBatcherTest {
  private static final Instant AT = Instant.parse("2026-12-01T12:00:00Z");
  private static final ExecutorService LOADER = Executors.newSingleThreadExecutor();

  private final MemoryLedger ledger = new MemoryLedger().key(1, "12.5").key(2, "0");
  private final KeyCache cache = new KeyCache(ledger, LOADER, 100, Duration.ofSeconds(30));
  private final PendingUsage pending = new PendingUsage();
  private final List<Integer> groupSizes = new CopyOnWriteArrayList<>();
  private UsageBatcher batcher;

  @AfterAll
  static void stopLoader() {
    LOADER.shutdownNow();
  }

  @AfterEach
  void close() {
    if (batcher != null) {
      batcher.close(Duration.ofSeconds(2));
    }
  }

  /** Not started: groups of up to 100, gathered for at most 5 ms. */
  private UsageBatcher batcher(int queueCapacity) {
    batcher =
        new UsageBatcher(
            ledger,
            cache,
            pending,
            100,
            Duration.ofMillis(5),
            queueCapacity,
            (size, nanos, outcomes) -> groupSizes.add(size));
    return batcher;
  }

  private UsageBatcher batcher() {
    return batcher(1_000);
  }

  static UsageReport report(String id, long key, String cost) {
    return new UsageReport(id, key, new BigDecimal(cost), "gpt-4o", "", 10, 20, 0, 0, AT);
  }

  private static UsageOutcome await(CompletableFuture<UsageOutcome> f) throws Exception {
    return f.get(5, TimeUnit.SECONDS);
  }

  private CompletableFuture<UsageOutcome> submit(UsageReport r) {
    return batcher.submit(r).toCompletableFuture();
  }

  private static void poll(BooleanSupplier condition) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (!condition.getAsBoolean() && System.nanoTime() < until) {
      Thread.sleep(1);
    }
    assertThat(condition.getAsBoolean()).as("condition reached within 5 s").isTrue();
  }

  /** A short wait for something that must not happen. */
  private static void quietly() throws InterruptedException {
    Thread.sleep(50);
  }

  /**
   * Each row: a report on its own (key 1 at 12.5, key 2 at 0, key 9 missing) and what it becomes.
   */
  static Stream<Arguments> single() {
    return Stream.of(
        Arguments.of(report("a", 1, "0.00000001"), Result.ACCEPTED, "12.50000001", ""),
        Arguments.of(report("b", 2, "3.25"), Result.ACCEPTED, "3.25", ""),
        Arguments.of(report("c", 1, "0"), Result.ACCEPTED, "12.5", ""),
        Arguments.of(report("d", 9, "1"), Result.REJECTED, null, "key_id: no key with id 9"),
        Arguments.of(report("e", 1, "-1"), Result.REJECTED, null, "cost_usd must not be negative"),
        Arguments.of(report("", 1, "1"), Result.REJECTED, null, "report_id must not be empty"),
        Arguments.of(
            new UsageReport("f", 1, BigDecimal.ONE, "m", "", -1, 0, 0, 0, AT),
            Result.REJECTED,
            null,
            "input_tokens must not be negative"));
  }

  @ParameterizedTest(name = "{0} -> {1} {2}")
  @MethodSource("single")
  void submit_oneReport_outcomeAndQuotaUsedExact(
      UsageReport r, Result result, String used, String message) throws Exception {
    batcher().start();

    UsageOutcome outcome = await(submit(r));

    assertThat(outcome.result()).isEqualTo(result);
    assertThat(outcome.message()).isEqualTo(message);
    assertThat(outcome.retryable()).isFalse();
    if (used == null) {
      assertThat(outcome.quotaUsed()).isNull();
      assertThat(ledger.chargedIds()).isEmpty();
    } else {
      assertThat(Money.format(outcome.quotaUsed())).isEqualTo(Money.format(new BigDecimal(used)));
      assertThat(ledger.quotaUsed(r.keyId())).isEqualByComparingTo(used);
      assertThat(ledger.chargedIds()).containsExactly(r.reportId());
    }
    // Settled either way: nothing of it still counts in Check.
    assertThat(pending.of(r.keyId())).isEqualByComparingTo("0");
  }

  @Test
  void submit_severalInOneGroup_eachSeesTheRunningTotalInOrder() throws Exception {
    batcher();
    CompletableFuture<UsageOutcome> a = submit(report("a", 1, "1.1"));
    CompletableFuture<UsageOutcome> b = submit(report("b", 2, "0.5"));
    CompletableFuture<UsageOutcome> c = submit(report("c", 1, "0.00000002"));
    batcher.start();

    assertThat(await(a).quotaUsed()).isEqualByComparingTo("13.6");
    assertThat(await(b).quotaUsed()).isEqualByComparingTo("0.5");
    assertThat(await(c).quotaUsed()).isEqualByComparingTo("13.60000002");
    assertThat(ledger.quotaUsed(1)).isEqualByComparingTo("13.60000002");
    // The recorder is told after the answers go out.
    poll(() -> !groupSizes.isEmpty());
    assertThat(groupSizes).containsExactly(3);
    assertThat(ledger.callLog()).containsExactly(List.of("a", "b", "c"));
  }

  @Test
  void submit_twoCommitters_everyReportAnsweredOnceAndChargedOnce() throws Exception {
    batcher =
        new UsageBatcher(
            ledger,
            cache,
            pending,
            100,
            Duration.ofMillis(5),
            10_000,
            (size, nanos, outcomes) -> groupSizes.add(size),
            2);
    batcher.start();
    // 2,000 reports of 1e-8 USD on key 2 under 1,000 ids, each id sent twice: groups of at most
    // 100 are committed side by side, so copies of one id land in different groups.
    List<CompletableFuture<UsageOutcome>> answers = new ArrayList<>();
    List<Integer> answerOrder = new CopyOnWriteArrayList<>();
    for (int round = 0; round < 2; round++) {
      for (int i = 0; i < 1_000; i++) {
        int n = answers.size();
        CompletableFuture<UsageOutcome> f = submit(report("id-" + i, 2, "0.00000001"));
        // Runs in the committer that answers, as it answers (or here, were it answered already).
        f.whenComplete((o, e) -> answerOrder.add(n));
        answers.add(f);
      }
    }
    long accepted = 0;
    long duplicates = 0;
    for (CompletableFuture<UsageOutcome> f : answers) {
      Result r = await(f).result();
      accepted += r == Result.ACCEPTED ? 1 : 0;
      duplicates += r == Result.DUPLICATE ? 1 : 0;
    }

    assertThat(accepted).isEqualTo(1_000);
    assertThat(duplicates).isEqualTo(1_000);
    assertThat(ledger.chargedIds()).hasSize(1_000).doesNotHaveDuplicates();
    assertThat(ledger.quotaUsed(2)).isEqualByComparingTo("0.00001");
    // The recorder hears of a group after its answers: the last one may still be on its way.
    poll(() -> groupSizes.stream().mapToInt(Integer::intValue).sum() == 2_000);
    assertThat(pending.of(2)).isEqualByComparingTo("0");
    assertThat(answerOrder).hasSize(2_000).doesNotHaveDuplicates();
  }

  @Test
  void submit_repeatInsideOneGroup_duplicateChargedOnce() throws Exception {
    batcher();
    CompletableFuture<UsageOutcome> first = submit(report("r", 1, "2"));
    CompletableFuture<UsageOutcome> repeat = submit(report("r", 1, "2.00000000"));
    batcher.start();

    assertThat(await(first).result()).isEqualTo(Result.ACCEPTED);
    UsageOutcome dup = await(repeat);
    assertThat(dup.result()).isEqualTo(Result.DUPLICATE);
    assertThat(dup.message()).isEmpty();
    assertThat(dup.quotaUsed()).isEqualByComparingTo("14.5");
    assertThat(ledger.quotaUsed(1)).isEqualByComparingTo("14.5");
    // One report per id goes to the ledger.
    assertThat(ledger.callLog()).containsExactly(List.of("r"));
    assertThat(pending.of(1)).isEqualByComparingTo("0");
  }

  @Test
  void submit_repeatInALaterGroup_duplicateWithTheTotalNow() throws Exception {
    batcher().start();
    assertThat(await(submit(report("r", 1, "2"))).result()).isEqualTo(Result.ACCEPTED);
    assertThat(await(submit(report("s", 1, "0.5"))).result()).isEqualTo(Result.ACCEPTED);

    UsageOutcome dup = await(submit(report("r", 1, "2")));

    assertThat(dup.result()).isEqualTo(Result.DUPLICATE);
    assertThat(dup.quotaUsed()).isEqualByComparingTo("15");
    assertThat(ledger.quotaUsed(1)).isEqualByComparingTo("15");
    assertThat(ledger.chargedIds()).containsExactly("r", "s");
  }

  /** A second report under id "r" (first charged 2 USD to key 1), and the field it differs in. */
  static Stream<Arguments> conflicts() {
    return Stream.of(
        Arguments.of(report("r", 2, "2"), "key_id"),
        Arguments.of(report("r", 1, "2.5"), "cost_usd"),
        Arguments.of(report("r", 2, "0.1"), "key_id and cost_usd"));
  }

  @ParameterizedTest(name = "later group {0} -> {1}")
  @MethodSource("conflicts")
  void submit_idReusedInALaterGroup_conflictNamesTheField(UsageReport again, String field)
      throws Exception {
    batcher().start();
    await(submit(report("r", 1, "2")));

    UsageOutcome outcome = await(submit(again));

    assertThat(outcome.result()).isEqualTo(Result.CONFLICT);
    assertThat(outcome.message()).isEqualTo("report_id already charged with a different " + field);
    assertThat(outcome.quotaUsed()).isNull();
    assertThat(ledger.quotaUsed(1)).isEqualByComparingTo("14.5");
    assertThat(ledger.quotaUsed(2)).isEqualByComparingTo("0");
  }

  @ParameterizedTest(name = "same group {0} -> {1}")
  @MethodSource("conflicts")
  void submit_idReusedInsideOneGroup_conflictNamesTheField(UsageReport again, String field)
      throws Exception {
    batcher();
    CompletableFuture<UsageOutcome> first = submit(report("r", 1, "2"));
    CompletableFuture<UsageOutcome> second = submit(again);
    batcher.start();

    assertThat(await(first).result()).isEqualTo(Result.ACCEPTED);
    UsageOutcome outcome = await(second);
    assertThat(outcome.result()).isEqualTo(Result.CONFLICT);
    assertThat(outcome.message()).isEqualTo("report_id already charged with a different " + field);
    assertThat(ledger.quotaUsed(1)).isEqualByComparingTo("14.5");
    assertThat(ledger.quotaUsed(2)).isEqualByComparingTo("0");
    // The conflicting copy was never charged, so nothing of it is still pending either.
    assertThat(pending.of(2)).isEqualByComparingTo("0");
  }

  @Test
  void submit_deletedKey_rejectedNamingKeyId() throws Exception {
    ledger.delete(2);
    batcher().start();

    UsageOutcome outcome = await(submit(report("x", 2, "1")));

    assertThat(outcome.result()).isEqualTo(Result.REJECTED);
    assertThat(outcome.message()).isEqualTo("key_id: no key with id 2");
    assertThat(ledger.chargedIds()).isEmpty();
  }

  @Test
  void submit_chargePastMoneyMax_rejectedNamingCostUsdOthersCharged() throws Exception {
    ledger.key(3, "999999999999.99999990");
    batcher();
    CompletableFuture<UsageOutcome> fits = submit(report("fits", 3, "0.00000009"));
    CompletableFuture<UsageOutcome> over = submit(report("over", 3, "0.00000001"));
    CompletableFuture<UsageOutcome> other = submit(report("other", 1, "1"));
    batcher.start();

    UsageOutcome fit = await(fits);
    assertThat(fit.result()).isEqualTo(Result.ACCEPTED);
    assertThat(fit.quotaUsed()).isEqualByComparingTo(Money.MAX);
    UsageOutcome refused = await(over);
    assertThat(refused.result()).isEqualTo(Result.REJECTED);
    assertThat(refused.message()).startsWith("cost_usd: ").contains("999999999999.99999999");
    assertThat(refused.retryable()).isFalse();
    assertThat(await(other).quotaUsed()).isEqualByComparingTo("13.5");
    assertThat(ledger.quotaUsed(3)).isEqualByComparingTo(Money.MAX);
    assertThat(pending.of(3)).isEqualByComparingTo("0");
  }

  @Test
  void submit_poisonReportAmongHundred_onlyItRejectedOthersChargedExactly() throws Exception {
    ledger.failFor("r-37", Kind.BAD_DATA);
    batcher();
    List<CompletableFuture<UsageOutcome>> outcomes = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      outcomes.add(submit(report("r-" + i, 1 + i % 2, "0.01000001")));
    }
    // All 100 counted for Check while queued: 50 × 0.01000001 per key.
    assertThat(pending.of(1)).isEqualByComparingTo("0.5000005");
    batcher.start();

    int accepted = 0;
    for (int i = 0; i < 100; i++) {
      UsageOutcome o = await(outcomes.get(i));
      if (i == 37) {
        assertThat(o.result()).isEqualTo(Result.REJECTED);
        assertThat(o.message())
            .isEqualTo("the database refused this report's data (SQLSTATE 22021); not charged");
        assertThat(o.retryable()).isFalse();
      } else {
        assertThat(o.result()).as("r-" + i).isEqualTo(Result.ACCEPTED);
        accepted++;
      }
    }
    assertThat(accepted).isEqualTo(99);
    // Key 1 had the even reports (50), key 2 the odd ones (50, r-37 refused).
    assertThat(ledger.quotaUsed(1)).isEqualByComparingTo("13.0000005");
    assertThat(ledger.quotaUsed(2)).isEqualByComparingTo("0.49000049");
    assertThat(ledger.chargedIds()).hasSize(99).doesNotContain("r-37");
    // The recorder is told after the answers go out.
    poll(() -> !groupSizes.isEmpty());
    assertThat(groupSizes).containsExactly(100);
    assertThat(pending.of(1)).isEqualByComparingTo("0");
    assertThat(pending.of(2)).isEqualByComparingTo("0");
  }

  /** A report the ledger fails on alone, by kind: the answer and whether it may be sent again. */
  static Stream<Arguments> failures() {
    return Stream.of(
        Arguments.of(
            Kind.BAD_DATA,
            "the database refused this report's data (SQLSTATE 22021); not charged",
            false),
        Arguments.of(
            Kind.CONSTRAINT,
            "the report breaks a ledger constraint (SQLSTATE 22021); not charged",
            false),
        Arguments.of(
            Kind.INTERNAL, "internal error (SQLSTATE 22021); not charged, retry the report", true));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("failures")
  void submit_ledgerFailsOnTheReport_rejectedByKind(Kind kind, String message, boolean retryable)
      throws Exception {
    ledger.failFor("bad", kind);
    batcher().start();

    UsageOutcome o = await(submit(report("bad", 1, "1")));

    assertThat(o.result()).isEqualTo(Result.REJECTED);
    assertThat(o.message()).isEqualTo(message);
    assertThat(o.retryable()).isEqualTo(retryable);
    assertThat(ledger.quotaUsed(1)).isEqualByComparingTo("12.5");
    assertThat(pending.of(1)).isEqualByComparingTo("0");
  }

  @Test
  void submit_commitAppliedButItsAnswerLost_retryAcceptedNotDuplicateChargedOnce()
      throws Exception {
    // "d" was charged by an earlier group; "a" and "b" by this group's first attempt, whose
    // answer the connection lost after COMMIT was sent.
    batcher().start();
    assertThat(await(submit(report("d", 1, "0.5"))).result()).isEqualTo(Result.ACCEPTED);
    ledger.commitThenLoseAnswer(1);
    CompletableFuture<UsageOutcome> a = submit(report("a", 1, "1"));
    CompletableFuture<UsageOutcome> b = submit(report("b", 1, "2"));
    CompletableFuture<UsageOutcome> d = submit(report("d", 1, "0.5"));

    assertThat(await(a).result()).isEqualTo(Result.ACCEPTED);
    assertThat(await(b).result()).isEqualTo(Result.ACCEPTED);
    assertThat(await(d).result()).isEqualTo(Result.DUPLICATE);
    // Charged once each: 12.5 + 0.5 + 1 + 2.
    assertThat(ledger.quotaUsed(1)).isEqualByComparingTo("16");
    assertThat(await(a).quotaUsed()).isEqualByComparingTo("16");
    assertThat(ledger.chargedIds()).containsExactly("d", "a", "b");
    assertThat(pending.of(1)).isEqualByComparingTo("0");
  }

  @Test
  void submit_ledgerUnavailableForFiveCommits_groupWaitsUnansweredThenAccepted() throws Exception {
    ledger.failNext(5, Kind.UNAVAILABLE);
    batcher();
    CompletableFuture<UsageOutcome> a = submit(report("a", 1, "1"));
    CompletableFuture<UsageOutcome> b = submit(report("b", 1, "2"));
    batcher.start();

    // Backoff 10, 20, 40, 80, 160 ms: once the ledger has refused twice, at least 300 ms of
    // refusals are still to come, and meanwhile nobody is answered.
    poll(() -> ledger.calls() >= 2);
    assertThat(a).isNotDone();
    assertThat(b).isNotDone();
    assertThat(pending.of(1)).isEqualByComparingTo("3");

    assertThat(await(a).quotaUsed()).isEqualByComparingTo("13.5");
    assertThat(await(b).quotaUsed()).isEqualByComparingTo("15.5");
    // Never split: the same whole group each time, five failures then the commit.
    assertThat(ledger.callLog()).hasSize(6).containsOnly(List.of("a", "b"));
    assertThat(ledger.chargedIds()).containsExactly("a", "b");
    // The recorder is told after the answers go out.
    poll(() -> !groupSizes.isEmpty());
    assertThat(groupSizes).containsExactly(2);
    assertThat(pending.of(1)).isEqualByComparingTo("0");
  }

  @Test
  void submit_queueFull_overloadedAtOnceAndPendingUnchanged() throws Exception {
    // Not started: the queue of two stays full.
    batcher(2);
    CompletableFuture<UsageOutcome> a = submit(report("a", 1, "1.5"));
    CompletableFuture<UsageOutcome> b = submit(report("b", 1, "0.25"));
    assertThat(pending.of(1)).isEqualByComparingTo("1.75");

    CompletableFuture<UsageOutcome> c = submit(report("c", 1, "7"));

    assertThat(c).isCompletedExceptionally();
    assertThatThrownBy(c::get)
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(UsageSink.Overloaded.class);
    assertThat(UsageSink.overloaded(UsageService.failure(c))).isTrue();
    assertThat(pending.of(1)).isEqualByComparingTo("1.75");
    assertThat(batcher.queued()).isEqualTo(2);

    // The two taken are still charged once the committer runs; the refused one never is.
    batcher.start();
    assertThat(await(a).result()).isEqualTo(Result.ACCEPTED);
    assertThat(await(b).quotaUsed()).isEqualByComparingTo("14.25");
    assertThat(ledger.chargedIds()).containsExactly("a", "b");
  }

  @Test
  void submit_queued_addsToPendingUntilCommitted() throws Exception {
    batcher();
    CompletableFuture<UsageOutcome> a = submit(report("a", 1, "0.1"));
    CompletableFuture<UsageOutcome> unknown = submit(report("u", 9, "4"));
    assertThat(pending.of(1)).isEqualByComparingTo("0.1");
    // Counted while queued even for a key the ledger will refuse: Check cannot know yet.
    assertThat(pending.of(9)).isEqualByComparingTo("4");

    batcher.start();
    await(a);
    await(unknown);

    assertThat(pending.of(1)).isEqualByComparingTo("0");
    assertThat(pending.of(9)).isEqualByComparingTo("0");
  }

  @Test
  void submit_keyCached_cacheHoldsTheCommittedTotal() throws Exception {
    assertThat(cache.load(MemoryLedger.hash(1)).get(5, TimeUnit.SECONDS).quotaUsed())
        .isEqualByComparingTo("12.5");
    batcher().start();

    await(submit(report("a", 1, "0.75")));

    assertThat(cache.cached(MemoryLedger.hash(1)).quotaUsed()).isEqualByComparingTo("13.25");
    assertThat(cache.cached(MemoryLedger.hash(1)).version()).isEqualTo(ledger.row(1).version());
    // Only keys already cached are refreshed.
    await(submit(report("b", 2, "1")));
    assertThat(cache.cached(MemoryLedger.hash(2))).isNull();
  }

  @Test
  void close_reportsQueued_flushedAndAnsweredBeforeCloseReturns() throws Exception {
    // A long gathering delay: without the flush the group would wait 10 s for more reports.
    batcher =
        new UsageBatcher(
                ledger,
                cache,
                pending,
                100,
                Duration.ofSeconds(10),
                100,
                (size, nanos, outcomes) -> groupSizes.add(size))
            .start();
    CompletableFuture<UsageOutcome> a = submit(report("a", 1, "1"));
    CompletableFuture<UsageOutcome> b = submit(report("b", 2, "2"));
    long start = System.nanoTime();

    batcher.close(Duration.ofSeconds(5));

    assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(2_000);
    assertThat(a.getNow(null).result()).isEqualTo(Result.ACCEPTED);
    assertThat(b.getNow(null).quotaUsed()).isEqualByComparingTo("2");
    assertThat(ledger.chargedIds()).containsExactly("a", "b");
    assertThat(pending.of(1)).isEqualByComparingTo("0");
  }

  @Test
  void close_ledgerDownPastTheDeadline_answeredShuttingDownNeverAcknowledged() throws Exception {
    ledger.failNext(Integer.MAX_VALUE, Kind.UNAVAILABLE);
    batcher().start();
    CompletableFuture<UsageOutcome> a = submit(report("a", 1, "1"));
    poll(() -> ledger.calls() >= 1);

    batcher.close(Duration.ofMillis(100));
    int calls = ledger.calls();
    quietly();

    // Never acknowledged, but answered: ShuttingDown, so no caller waits forever, and settled.
    poll(a::isDone);
    assertThatThrownBy(a::get).hasCauseInstanceOf(UsageSink.ShuttingDown.class);
    assertThat(pending.of(1)).isEqualByComparingTo("0");
    assertThat(ledger.chargedIds()).isEmpty();
    // The committer was interrupted out of its backoff: no more tries after close returned.
    assertThat(ledger.calls()).isEqualTo(calls);
  }

  @Test
  void submit_afterClose_shuttingDownAndNothingPending() throws Exception {
    batcher().start();
    batcher.close(Duration.ofSeconds(2));

    CompletableFuture<UsageOutcome> late = submit(report("late", 1, "1"));

    assertThat(late).isCompletedExceptionally();
    assertThatThrownBy(late::get).hasCauseInstanceOf(UsageSink.ShuttingDown.class);
    assertThat(pending.of(1)).isEqualByComparingTo("0");
    assertThat(ledger.calls()).isZero();
  }

  @Test
  void close_neverStarted_queuedReportsShuttingDownAndSettled() throws Exception {
    batcher();
    CompletableFuture<UsageOutcome> a = submit(report("a", 1, "1"));
    assertThat(pending.of(1)).isEqualByComparingTo("1");

    batcher.close(Duration.ofMillis(100));

    // No committer ran: the report was never committed, so it is not acknowledged.
    assertThatThrownBy(a::get)
        .hasCauseInstanceOf(UsageSink.ShuttingDown.class)
        .hasRootCauseMessage("shut down before commit");
    assertThat(pending.of(1)).isEqualByComparingTo("0");
    assertThat(ledger.calls()).isZero();
  }
}
