package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

class MeteringExecutorTest {

  @Test
  void lanes_manyTasksOnFourThreads_runEachLaneInOrderAndNeverConcurrently() throws Exception {
    try (MeteringExecutor executor = new MeteringExecutor(4, 100_000)) {
      int lanes = 50;
      int perLane = 400;
      List<List<Integer>> seen = new ArrayList<>();
      AtomicInteger[] running = new AtomicInteger[lanes];
      AtomicInteger overlaps = new AtomicInteger();
      CountDownLatch done = new CountDownLatch(lanes * perLane);
      List<MeteringExecutor.Lane> all = new ArrayList<>();
      for (int l = 0; l < lanes; l++) {
        seen.add(Collections.synchronizedList(new ArrayList<>()));
        running[l] = new AtomicInteger();
        all.add(executor.lane());
      }
      // Interleaved submission, as many streams' messages arrive on transport threads.
      for (int i = 0; i < perLane; i++) {
        for (int l = 0; l < lanes; l++) {
          int lane = l;
          int n = i;
          assertThat(
                  all.get(l)
                      .tryExecute(
                          () -> {
                            if (running[lane].incrementAndGet() != 1) {
                              overlaps.incrementAndGet();
                            }
                            seen.get(lane).add(n);
                            running[lane].decrementAndGet();
                            done.countDown();
                          }))
              .isTrue();
        }
      }
      assertThat(done.await(30, TimeUnit.SECONDS)).isTrue();
      assertThat(overlaps).hasValue(0);
      for (List<Integer> s : seen) {
        assertThat(s).hasSize(perLane).isSorted();
      }
      // The last task counted down before its slot was given back: wait for that moment.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (executor.pendingTasks() != 0 && System.nanoTime() < deadline) {
        Thread.sleep(1);
      }
      assertThat(executor.pendingTasks()).isZero();
    }
  }

  @Test
  void tryExecute_saturated_refusesAndAcceptsAgainOnceTasksFinish() throws Exception {
    try (MeteringExecutor executor = new MeteringExecutor(1, 2)) {
      CountDownLatch release = new CountDownLatch(1);
      CountDownLatch ran = new CountDownLatch(3);
      Runnable blocked =
          () -> {
            await(release);
            ran.countDown();
          };
      assertThat(executor.lane().tryExecute(blocked)).isTrue();
      assertThat(executor.lane().tryExecute(ran::countDown)).isTrue();
      // Two pending (one running, one waiting): the third message is refused, on any lane.
      assertThat(executor.lane().tryExecute(ran::countDown)).isFalse();
      assertThat(executor.pendingTasks()).isEqualTo(2);
      release.countDown();
      assertThat(awaitTrue(() -> executor.pendingTasks() == 0)).isTrue();
      assertThat(executor.lane().tryExecute(ran::countDown)).isTrue();
      assertThat(ran.await(10, TimeUnit.SECONDS)).isTrue();
    }
  }

  @Test
  void execute_closingTaskOnSaturatedExecutor_isNeverRefusedAndRunsAfterTheLanesMessages()
      throws Exception {
    try (MeteringExecutor executor = new MeteringExecutor(1, 1)) {
      CountDownLatch release = new CountDownLatch(1);
      List<String> order = Collections.synchronizedList(new ArrayList<>());
      MeteringExecutor.Lane lane = executor.lane();
      assertThat(
              lane.tryExecute(
                  () -> {
                    await(release);
                    order.add("message");
                  }))
          .isTrue();
      CountDownLatch closed = new CountDownLatch(1);
      lane.execute(
          () -> {
            order.add("close");
            closed.countDown();
          });
      release.countDown();
      assertThat(closed.await(10, TimeUnit.SECONDS)).isTrue();
      assertThat(order).containsExactly("message", "close");
    }
  }

  @Test
  void execute_afterClose_runsInPlaceAndTryExecuteRefuses() {
    MeteringExecutor executor = new MeteringExecutor(1, 4);
    executor.close(1000);
    List<String> ran = new ArrayList<>();
    MeteringExecutor.Lane lane = executor.lane();
    lane.execute(() -> ran.add("close"));
    assertThat(ran).containsExactly("close");
    assertThat(lane.tryExecute(() -> ran.add("message"))).isFalse();
    assertThat(executor.pendingTasks()).isZero();
  }

  @Test
  void lane_taskThrows_laterTasksStillRun() throws Exception {
    try (MeteringExecutor executor = new MeteringExecutor(1, 4)) {
      MeteringExecutor.Lane lane = executor.lane();
      CountDownLatch after = new CountDownLatch(1);
      assertThat(
              lane.tryExecute(
                  () -> {
                    throw new IllegalStateException("boom");
                  }))
          .isTrue();
      assertThat(lane.tryExecute(after::countDown)).isTrue();
      assertThat(after.await(10, TimeUnit.SECONDS)).isTrue();
      assertThat(awaitTrue(() -> executor.pendingTasks() == 0)).isTrue();
    }
  }

  private static void await(CountDownLatch latch) {
    try {
      latch.await(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static boolean awaitTrue(BooleanSupplier condition) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (System.nanoTime() < end) {
      if (condition.getAsBoolean()) {
        return true;
      }
      Thread.sleep(5);
    }
    return condition.getAsBoolean();
  }
}
