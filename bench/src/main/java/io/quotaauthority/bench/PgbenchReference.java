package io.quotaauthority.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * PostgreSQL's own rate for a usage group's work (issue 19): pgbench, one backend, each transaction
 * one group done server-side: lock the keys, insert {@code group} ledger rows with ON CONFLICT DO
 * NOTHING, add their sum to each key's quota_used. No client round trip per statement beyond
 * pgbench's own, no JVM: the limit the ingest path is judged against.
 */
final class PgbenchReference {
  /** Rows/s, the transactions behind it, and what pgbench said when it did not run. */
  record Result(double rowsPerSecond, double tps, int group, String script, String error) {}

  private PgbenchReference() {}

  /** The pgbench script of one group over keys 1..keys. */
  static String script(int group, int keys) {
    return String.format(
        Locale.ROOT,
        """
        BEGIN;
        SELECT id FROM api_keys WHERE id BETWEEN 1 AND %2$d AND deleted_at IS NULL ORDER BY id FOR UPDATE;
        WITH ins AS (INSERT INTO usage_events (report_id, key_id, cost, model, provider, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, occurred_at) SELECT 'pgb-' || txid_current() || '-' || i, (i %% %2$d) + 1, 0.00001234, 'gpt-4o-mini', '', 12, 34, 0, 0, now() FROM generate_series(1, %1$d) i ON CONFLICT DO NOTHING RETURNING key_id, cost) UPDATE api_keys k SET quota_used = k.quota_used + s.amount, updated_at = now(), version = k.version + 1 FROM (SELECT key_id, sum(cost) AS amount FROM ins GROUP BY key_id) s WHERE k.id = s.key_id;
        COMMIT;
        """,
        group,
        keys);
  }

  private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+) \\(without initial");

  /** Runs pgbench for {@code duration} against the bench database; never throws for pgbench. */
  static Result run(BenchRun run, int group, int keys, Duration duration)
      throws IOException, InterruptedException {
    String script = script(group, keys);
    Path file = run.work.resolve("pgbench-ingest.sql");
    Files.writeString(file, script);
    String hostPort = run.o.pg;
    List<String> cmd =
        List.of(
            "pgbench",
            "-n",
            "-h",
            hostPort.substring(0, hostPort.lastIndexOf(':')),
            "-p",
            hostPort.substring(hostPort.lastIndexOf(':') + 1),
            "-U",
            run.o.pgUser,
            "-c",
            "1",
            "-j",
            "1",
            "-T",
            Long.toString(Math.max(1, duration.toSeconds())),
            "-f",
            file.toString(),
            run.db);
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    } catch (IOException e) {
      return new Result(Double.NaN, Double.NaN, group, script, "pgbench not found");
    }
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor(duration.toSeconds() + 120, TimeUnit.SECONDS);
    Matcher m = TPS.matcher(out);
    if (!m.find()) {
      return new Result(Double.NaN, Double.NaN, group, script, "pgbench failed: " + out.strip());
    }
    double tps = Double.parseDouble(m.group(1));
    return new Result(tps * group, tps, group, script, null);
  }
}
