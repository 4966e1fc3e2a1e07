package io.quotaauthority.bench;

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

/**
 * The limit reference for usage ingest: the same rows written by plain JDBC, no gRPC and no server.
 * Each writer has its own connection and loops: one transaction per group of {@code group} reports,
 * a multi-row batch INSERT into usage_events (pgjdbc rewrites the batch into multi-row VALUES) and
 * one batched UPDATE of api_keys.quota_used per key charged, in id order.
 */
final class JdbcReference {
  private static final String INSERT =
      """
      INSERT INTO usage_events (report_id, key_id, cost, model, provider, input_tokens, output_tokens,
                                cached_input_tokens, cache_write_tokens, occurred_at)
      VALUES (?, ?, ?, ?, '', ?, ?, 0, 0, ?)""";
  private static final String CHARGE =
      """
      UPDATE api_keys SET quota_used = quota_used + ?, updated_at = now(), version = version + 1
       WHERE id = ?""";

  record Result(long rows, double seconds, long groups, String error) {
    double perSecond() {
      return seconds <= 0 ? 0 : rows / seconds;
    }
  }

  private JdbcReference() {}

  /** Writers started by {@link #start}; {@link #finish} waits for them. */
  static final class Handle {
    final long windowStart;
    final long windowEnd;
    final LongAdder rows = new LongAdder();
    final LongAdder groups = new LongAdder();
    final AtomicReference<String> error = new AtomicReference<>();
    final List<Thread> threads = new ArrayList<>();

    Handle(long windowStart, long windowEnd) {
      this.windowStart = windowStart;
      this.windowEnd = windowEnd;
    }

    Result finish() throws InterruptedException {
      for (Thread t : threads) {
        t.join();
      }
      return new Result(rows.sum(), (windowEnd - windowStart) / 1e9, groups.sum(), error.get());
    }
  }

  /**
   * Starts {@code writers} writers that stop at the end of the window; groups committed inside
   * [warm-up end, window end) count.
   */
  static Handle start(
      String url,
      String user,
      int writers,
      int group,
      int keys,
      String runId,
      long warmupNanos,
      long measureNanos) {
    long windowStart = System.nanoTime() + warmupNanos;
    Handle h = new Handle(windowStart, windowStart + measureNanos);
    for (int w = 0; w < writers; w++) {
      int writer = w;
      Thread t =
          new Thread(
              () -> {
                try {
                  write(
                      url + "&reWriteBatchedInserts=true",
                      user,
                      group,
                      keys,
                      runId + "-" + writer + "-",
                      new SplittableRandom(writer * 31L + runId.hashCode()),
                      h);
                } catch (SQLException e) {
                  h.error.compareAndSet(null, e.getMessage());
                }
              },
              "jdbc-writer-" + w);
      h.threads.add(t);
      t.start();
    }
    return h;
  }

  private static void write(
      String url,
      String user,
      int group,
      int keys,
      String idPrefix,
      SplittableRandom random,
      Handle h)
      throws SQLException {
    try (Connection c = DriverManager.getConnection(url, user, "")) {
      c.setAutoCommit(false);
      long seq = 0;
      try (PreparedStatement insert = c.prepareStatement(INSERT);
          PreparedStatement charge = c.prepareStatement(CHARGE)) {
        while (System.nanoTime() < h.windowEnd) {
          Map<Long, BigDecimal> sums = new TreeMap<>();
          OffsetDateTime now = OffsetDateTime.now(ZoneOffset.UTC);
          for (int i = 0; i < group; i++) {
            long keyId = BenchKeys.id(random.nextInt(keys));
            BigDecimal cost =
                new BigDecimal(IngestLoad.COSTS[random.nextInt(IngestLoad.COSTS.length)]);
            insert.setString(1, idPrefix + seq++);
            insert.setLong(2, keyId);
            insert.setBigDecimal(3, cost);
            insert.setString(4, IngestLoad.MODEL);
            insert.setLong(5, 100 + random.nextInt(4000));
            insert.setLong(6, 10 + random.nextInt(1000));
            insert.setObject(7, now);
            insert.addBatch();
            sums.merge(keyId, cost, BigDecimal::add);
          }
          insert.executeBatch();
          for (Map.Entry<Long, BigDecimal> e : sums.entrySet()) {
            charge.setBigDecimal(1, e.getValue());
            charge.setLong(2, e.getKey());
            charge.addBatch();
          }
          charge.executeBatch();
          c.commit();
          long done = System.nanoTime();
          if (done >= h.windowStart && done < h.windowEnd) {
            h.rows.add(group);
            h.groups.increment();
          }
        }
      }
    }
  }
}
