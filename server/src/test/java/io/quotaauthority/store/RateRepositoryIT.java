package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.usage.RateStore;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** key_rate_grants on the real PostgreSQL: one grant and batches agree, never past the limit. */
class RateRepositoryIT {
  private static TestDatabase db;
  private static RateRepository rates;
  private static Transactions tx;

  @BeforeAll
  static void createDatabase() {
    db = TestDatabase.create();
    tx = db.transactions();
    rates = new RateRepository(tx);
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
  }

  @Test
  void grantAndGrantAll_sameRule_neverMoreThanTheLimitWithin61Seconds_retryWhenTheOldestLeaves() {
    long a = LeaseRepositoryIT.key(tx, "0", "0");
    long b = LeaseRepositoryIT.key(tx, "0", "0");
    // Key a: 7 of 10 at second 1000, then a batch asking 5 more for a and 4 for b.
    assertThat(rates.grant(a, 10, 1000, 1000, 7)).isEqualTo(new RateStore.Grant(7, 0));
    List<RateStore.Grant> batch =
        rates.grantAll(
            List.of(
                new RateStore.Ask(a, 10, 1030, 1030, 5), new RateStore.Ask(b, 10, 1030, 1030, 4)));
    assertThat(batch).containsExactly(new RateStore.Grant(3, 0), new RateStore.Grant(4, 0));
    // Full: the first grant (second 1000) leaves every span holding 1061 on; a refusal says so.
    assertThat(rates.grant(a, 10, 1040, 1040, 1)).isEqualTo(new RateStore.Grant(0, 1061));
    assertThat(
            rates.grantAll(
                List.of(
                    new RateStore.Ask(a, 10, 1060, 1060, 1),
                    new RateStore.Ask(b, 10, 1060, 1060, 6))))
        .containsExactly(new RateStore.Grant(0, 1061), new RateStore.Grant(6, 0));
    assertThat(rates.grant(a, 10, 1061, 1061, 9)).isEqualTo(new RateStore.Grant(7, 0));
  }

  @Test
  void concurrentBatchesAndGrants_neverGrantMoreThanTheLimit() throws Exception {
    long k = LeaseRepositoryIT.key(tx, "0", "0");
    long other = LeaseRepositoryIT.key(tx, "0", "0");
    ExecutorService pool = Executors.newFixedThreadPool(6);
    try {
      List<Future<Integer>> got = new ArrayList<>();
      for (int i = 0; i < 60; i++) {
        boolean batch = i % 2 == 0;
        got.add(
            pool.submit(
                () ->
                    batch
                        ? rates
                            .grantAll(
                                List.of(
                                    new RateStore.Ask(other, 1000, 5000, 5000, 1),
                                    new RateStore.Ask(k, 25, 5000, 5000, 1)))
                            .get(1)
                            .granted()
                        : rates.grant(k, 25, 5000, 5000, 1).granted()));
      }
      int total = 0;
      for (Future<Integer> f : got) {
        total += f.get();
      }
      assertThat(total).isEqualTo(25);
    } finally {
      pool.shutdownNow();
    }
  }
}
