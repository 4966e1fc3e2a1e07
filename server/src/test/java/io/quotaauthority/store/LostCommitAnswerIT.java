package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.PendingUsage;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.usage.UsageBatcher;
import io.quotaauthority.usage.UsageOutcome;
import io.quotaauthority.usage.UsageReport;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The unknown outcome a failover leaves, on the real PostgreSQL: a group's COMMIT applies, and the
 * connection is lost before its answer comes back (played by the client side: the real commit, then
 * the SQLSTATE 08006 pgjdbc raises for a lost connection). The batcher retries the group as is; the
 * ledger charges nothing twice, and the reports the lost attempt charged are ACCEPTED, told apart
 * by their rows' xmin from a report charged before (DUPLICATE).
 */
class LostCommitAnswerIT {
  private static TestDatabase db;
  private static final ExecutorService LOADER = Executors.newSingleThreadExecutor();

  @BeforeAll
  static void createDatabase() {
    db = TestDatabase.create();
  }

  @AfterAll
  static void dropDatabase() {
    LOADER.shutdownNow();
    db.close();
  }

  /** The pool, where the next {@code lose} COMMITs apply and then fail as a lost connection. */
  private static DataSource losingAnswers(DataSource real, AtomicInteger lose) {
    return (DataSource)
        Proxy.newProxyInstance(
            DataSource.class.getClassLoader(),
            new Class<?>[] {DataSource.class},
            (proxy, method, args) -> {
              Object result = invoke(real, method, args);
              if (!method.getName().equals("getConnection")) {
                return result;
              }
              Connection c = (Connection) result;
              return Proxy.newProxyInstance(
                  Connection.class.getClassLoader(),
                  new Class<?>[] {Connection.class},
                  (p, m, a) -> {
                    Object r = invoke(c, m, a);
                    if (m.getName().equals("commit") && lose.getAndDecrement() > 0) {
                      throw new SQLException(
                          "An I/O error occurred while sending to the backend.", "08006");
                    }
                    return r;
                  });
            });
  }

  private static Object invoke(Object target, java.lang.reflect.Method m, Object[] args)
      throws Throwable {
    try {
      return m.invoke(target, args);
    } catch (InvocationTargetException e) {
      throw e.getCause();
    }
  }

  private static UsageReport report(String id, long keyId, String cost) {
    return new UsageReport(
        id,
        keyId,
        new BigDecimal(cost),
        "m",
        "",
        1,
        1,
        0,
        0,
        Instant.parse("2026-12-01T00:00:00Z"));
  }

  @Test
  void commitAppliedAnswerLost_retriedGroup_ownReportsAcceptedEarlierOneDuplicateChargedOnce()
      throws Exception {
    long key = LeaseRepositoryIT.key(db.transactions(), "100", "0");
    AtomicInteger lose = new AtomicInteger();
    Transactions tx = new Transactions(losingAnswers(db.pool(), lose));
    UsageRepository ledger = new UsageRepository(tx);
    KeyCache cache = new KeyCache(new KeyRepository(tx), LOADER, 100, Duration.ofSeconds(30));
    UsageBatcher batcher =
        new UsageBatcher(
            ledger,
            cache,
            new PendingUsage(),
            100,
            Duration.ofMillis(50),
            1000,
            UsageBatcher.CommitRecorder.NONE);
    try {
      batcher.start();
      UsageOutcome first =
          batcher
              .submit(report("lost-0", key, "1"))
              .toCompletableFuture()
              .get(10, TimeUnit.SECONDS);
      assertThat(first.result()).isEqualTo(UsageOutcome.Result.ACCEPTED);

      lose.set(1);
      CompletableFuture<UsageOutcome> a =
          batcher.submit(report("lost-1", key, "2")).toCompletableFuture();
      CompletableFuture<UsageOutcome> b =
          batcher.submit(report("lost-2", key, "3")).toCompletableFuture();
      CompletableFuture<UsageOutcome> again =
          batcher.submit(report("lost-0", key, "1")).toCompletableFuture();

      assertThat(a.get(10, TimeUnit.SECONDS).result()).isEqualTo(UsageOutcome.Result.ACCEPTED);
      assertThat(b.get(10, TimeUnit.SECONDS).result()).isEqualTo(UsageOutcome.Result.ACCEPTED);
      assertThat(again.get(10, TimeUnit.SECONDS).result()).isEqualTo(UsageOutcome.Result.DUPLICATE);
      assertThat(lose.get()).as("the lost answer was played").isLessThan(0);
      assertThat(b.get().quotaUsed()).isEqualByComparingTo("6");
    } finally {
      batcher.close(Duration.ofSeconds(5));
    }
    assertThat(db.count("SELECT count(*) FROM usage_events WHERE key_id = ?", key)).isEqualTo(3);
    assertThat((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", key))
        .isEqualByComparingTo("6");
  }
}
