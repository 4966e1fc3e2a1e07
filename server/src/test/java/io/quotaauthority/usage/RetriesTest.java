package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Shutdown drains the usage path's delayed work (held reports, charge retries), never drops it. */
class RetriesTest {

  @Test
  void drain_workDueAfterTheDeadline_runsOnceThenInsteadOfBeingDropped() {
    Retries retries = new Retries("t");
    List<String> ran = new CopyOnWriteArrayList<>();
    retries.schedule(() -> ran.add("soon"), 10, TimeUnit.MILLISECONDS);
    retries.schedule(() -> ran.add("in a minute"), 60, TimeUnit.SECONDS);
    long start = System.nanoTime();

    retries.drain(start + TimeUnit.MILLISECONDS.toNanos(200));

    assertThat(ran).containsExactly("soon", "in a minute");
    assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start))
        .as("waited for the deadline, not for the minute")
        .isLessThan(5_000);
    assertThat(retries.waiting()).isZero();
  }

  @Test
  void drain_everythingDoneEarly_returnsWithoutWaitingForTheDeadline() {
    Retries retries = new Retries("t");
    List<String> ran = new CopyOnWriteArrayList<>();
    retries.schedule(() -> ran.add("soon"), 1, TimeUnit.MILLISECONDS);
    long start = System.nanoTime();

    retries.drain(start + TimeUnit.SECONDS.toNanos(30));

    assertThat(ran).containsExactly("soon");
    assertThat(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start)).isLessThan(5);
  }

  @Test
  void schedule_afterTheDrain_isRefusedSoTheCallerCanCountIt() {
    Retries retries = new Retries("t");
    List<String> ran = new CopyOnWriteArrayList<>();
    List<Throwable> refused = new CopyOnWriteArrayList<>();
    // A retry that, run at the drain, asks for yet another attempt.
    retries.schedule(
        () -> {
          ran.add("last try");
          try {
            retries.schedule(() -> ran.add("never"), 1, TimeUnit.MILLISECONDS);
          } catch (RejectedExecutionException e) {
            refused.add(e);
          }
        },
        60,
        TimeUnit.SECONDS);

    retries.drain(System.nanoTime());

    assertThat(ran).containsExactly("last try");
    assertThat(refused).hasSize(1);
    assertThatThrownBy(() -> retries.schedule(() -> {}, 1, TimeUnit.MILLISECONDS))
        .isInstanceOf(RejectedExecutionException.class);
  }
}
