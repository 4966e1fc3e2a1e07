package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class HeldReportsTest {
  private final Retries scheduler = new Retries("test-retries");

  @AfterEach
  void stop() {
    scheduler.close();
  }

  private static UsageReport report(int n) {
    return new UsageReport(
        "r-" + n,
        1,
        new BigDecimal("0.01"),
        "m",
        "",
        1,
        1,
        0,
        0,
        Instant.parse("2026-12-01T00:00:00Z"));
  }

  /** A sink that refuses the first {@code refusals} offers, then takes everything in order. */
  private static final class RefusingSink implements Predicate<UsageReport> {
    final List<String> taken = new CopyOnWriteArrayList<>();
    final AtomicInteger offers = new AtomicInteger();
    final int refusals;

    RefusingSink(int refusals) {
      this.refusals = refusals;
    }

    @Override
    public boolean test(UsageReport r) {
      if (offers.incrementAndGet() <= refusals) {
        return false;
      }
      taken.add(r.reportId());
      return true;
    }
  }

  private static void awaitTaken(RefusingSink sink, int n) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (sink.taken.size() < n && System.nanoTime() < until) {
      Thread.sleep(2);
    }
  }

  @Test
  void take_sinkHasRoom_offersAtOnceAndHoldsNothing() {
    RefusingSink sink = new RefusingSink(0);
    HeldReports<UsageReport> held = new HeldReports<>(scheduler, 1, sink, () -> false);

    held.take(report(1));

    assertThat(sink.taken).containsExactly("r-1");
    assertThat(held.size()).isZero();
  }

  @Test
  void take_sinkFullForAWhile_everyReportArrivesOnceInArrivalOrder() throws Exception {
    RefusingSink sink = new RefusingSink(5);
    HeldReports<UsageReport> held = new HeldReports<>(scheduler, 1, sink, () -> false);

    for (int i = 1; i <= 4; i++) {
      held.take(report(i));
    }
    awaitTaken(sink, 4);

    assertThat(sink.taken).containsExactly("r-1", "r-2", "r-3", "r-4");
    assertThat(held.size()).isZero();
    // r-1 refused at once, then four retries refused (one task, one offer each), then the four
    // taken: newer reports never jumped the queue to be offered while older ones waited.
    assertThat(sink.offers.get()).isEqualTo(9);
  }

  @Test
  void hold_refusedLater_isRetriedBeforeNewerReports() throws Exception {
    RefusingSink sink = new RefusingSink(0);
    HeldReports<UsageReport> held = new HeldReports<>(scheduler, 50, sink, () -> false);

    held.hold(report(1));
    held.take(report(2));
    awaitTaken(sink, 2);

    assertThat(sink.taken).containsExactly("r-1", "r-2");
  }

  @Test
  void hold_streamClosed_dropsWhatIsHeldAndStopsRetrying() throws Exception {
    RefusingSink sink = new RefusingSink(Integer.MAX_VALUE);
    AtomicBoolean closed = new AtomicBoolean();
    HeldReports<UsageReport> held = new HeldReports<>(scheduler, 1, sink, closed::get);
    held.take(report(1));
    held.take(report(2));
    Thread.sleep(20);
    assertThat(held.size()).isEqualTo(2);

    closed.set(true);
    Thread.sleep(20);
    int offersAfterClose = sink.offers.get();
    Thread.sleep(30);

    assertThat(held.size()).isZero();
    assertThat(sink.offers.get()).as("no retry task keeps running").isEqualTo(offersAfterClose);
    held.hold(report(3));
    assertThat(held.size()).as("a closed stream holds nothing").isZero();
  }
}
