package io.quotaauthority.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * PostgreSQL's own rate for a usage group's work (issue 19): pgbench, each transaction one group
 * done server-side with the statements the server sends, their results staying in the backend: lock
 * the group's keys (random among the first {@code keys}, as the load generator picks them) in id
 * order, insert {@code group} ledger rows like the server's with ON CONFLICT DO NOTHING, add each
 * key's sum to quota_used (and bump updated_at, version) and send each charged key's change
 * notification (on a channel of its own, so that no server applies it). No JVM, no client round
 * trip per row: the limit the ingest path is judged against. Run with one client and with two (both
 * cores; the two then queue on the keys' row locks as the server's two committers do), the faster
 * is the limit.
 */
final class PgbenchReference {
  /** One pgbench run: its clients, rows/s, transactions/s and PostgreSQL's CPU per row. */
  record Run(
      int clients,
      double rowsPerSecond,
      double tps,
      double postgresMicrosPerRow,
      double postgresCores,
      double otherCores) {}

  /**
   * The faster run's rows/s and transactions/s, every run, and what pgbench said when it did not
   * run.
   */
  record Result(
      double rowsPerSecond, double tps, int group, String script, String error, List<Run> runs) {
    Run best() {
      Run best = null;
      for (Run r : runs) {
        if (best == null || r.rowsPerSecond() > best.rowsPerSecond()) {
          best = r;
        }
      }
      return best;
    }
  }

  static final int[] CLIENTS = {1, 2};

  private PgbenchReference() {}

  /** The group's key for row {@code i}: a hash of the transaction id and i, among 1..keys. */
  private static String key(int keys) {
    return "1 + (hashint8(txid_current() * 4096 + i) & 2147483647) % " + keys;
  }

  /** The pgbench script of one group over keys 1..keys. */
  static String script(int group, int keys) {
    return String.format(
        Locale.ROOT,
        """
        BEGIN;
        SELECT id, quota_used FROM api_keys WHERE id IN (SELECT %3$s FROM generate_series(1, %1$d) i) AND deleted_at IS NULL ORDER BY id FOR UPDATE;
        WITH ins AS (INSERT INTO usage_events (report_id, key_id, cost, model, provider, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, occurred_at) SELECT 'pgb-' || :client_id || '-' || txid_current() || '-' || i, %3$s, (1 + i * 7919 %% 99999) * 0.00000001, 'gpt-4o-mini', '', 100 + i %% 4000, 10 + i %% 1000, 0, 0, now() FROM generate_series(1, %1$d) i ON CONFLICT DO NOTHING RETURNING key_id, cost), upd AS (UPDATE api_keys k SET quota_used = k.quota_used + s.amount, updated_at = now(), version = k.version + 1 FROM (SELECT key_id, sum(cost) AS amount FROM ins GROUP BY key_id) s WHERE k.id = s.key_id RETURNING k.*) SELECT count(pg_notify('qa_bench_reference', concat_ws(':', id, version, encode(key_hash, 'hex'), 0, 'a', quota, quota_used, '-'))) FROM upd;
        COMMIT;
        """,
        group,
        keys,
        key(keys));
  }

  private static final Pattern TPS = Pattern.compile("tps = ([0-9.]+) \\(without initial");

  /**
   * Runs pgbench for {@code duration} with each of {@link #CLIENTS} against the bench database;
   * never throws for pgbench.
   */
  static Result run(BenchRun run, int group, int keys, Duration duration)
      throws IOException, InterruptedException {
    String script = script(group, keys);
    Path file = run.work.resolve("pgbench-ingest.sql");
    Files.writeString(file, script);
    List<Run> runs = new ArrayList<>();
    for (int clients : CLIENTS) {
      Cpu.Usage[] cpu = new Cpu.Usage[1];
      String out = pgbench(run, file, clients, duration, cpu);
      if (out == null) {
        return new Result(Double.NaN, Double.NaN, group, script, "pgbench not found", runs);
      }
      Matcher m = TPS.matcher(out);
      if (!m.find()) {
        return new Result(
            Double.NaN, Double.NaN, group, script, "pgbench failed: " + out.strip(), runs);
      }
      double tps = Double.parseDouble(m.group(1));
      double rows = tps * group;
      // Measured while pgbench runs (its backends are gone once it ends).
      double pgMicros =
          cpu[0] == null
              ? Double.NaN
              : cpu[0].of("postgres (bench db)")
                  / 1e3
                  / Math.max(1.0, rows * cpu[0].wallNanos() / 1e9);
      runs.add(
          new Run(
              clients,
              rows,
              tps,
              pgMicros,
              cpu[0] == null ? Double.NaN : cpu[0].cores("postgres (bench db)"),
              cpu[0] == null ? Double.NaN : cpu[0].cores("other")));
      run.log(
          String.format(
              Locale.ROOT,
              "  pgbench, %d client(s): %s rows, PostgreSQL %.1f µs per row (%.2f cores; other"
                  + " load %.2f cores)",
              clients,
              Report.rate(rows),
              pgMicros,
              runs.get(runs.size() - 1).postgresCores(),
              runs.get(runs.size() - 1).otherCores()));
    }
    Run best = new Result(0, 0, group, script, null, runs).best();
    return new Result(best.rowsPerSecond(), best.tps(), group, script, null, List.copyOf(runs));
  }

  /**
   * pgbench's output, or null when it is not installed; {@code cpu[0]} gets the CPU used from a
   * second after its start (its connections made) to shortly before its end.
   */
  private static String pgbench(
      BenchRun run, Path file, int clients, Duration duration, Cpu.Usage[] cpu)
      throws InterruptedException, IOException {
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
            Integer.toString(clients),
            "-j",
            Integer.toString(clients),
            "-T",
            Long.toString(Math.max(1, duration.toSeconds())),
            "-f",
            file.toString(),
            run.db);
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    } catch (IOException e) {
      return null;
    }
    // Its output is small (a summary at the end), so reading it can wait.
    long runMillis = Math.max(1, duration.toSeconds()) * 1_000;
    if (runMillis >= 2_000) {
      ChildJvm.sleep(500);
      Cpu.Snapshot c0 = run.meter.snap();
      ChildJvm.sleep(runMillis - 1_000);
      cpu[0] = run.meter.snap().since(c0);
    }
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor(duration.toSeconds() + 120, TimeUnit.SECONDS);
    return out;
  }
}
