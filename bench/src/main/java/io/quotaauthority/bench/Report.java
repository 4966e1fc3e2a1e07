package io.quotaauthority.bench;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.HdrHistogram.Histogram;

/**
 * The Markdown report, rendered from the scenarios' result records: the header, the targets table
 * ({@link Targets} judges), the reasons for missed targets, one section per scenario, the profiles,
 * and the run's conditions. All of the report's prose lives here.
 */
final class Report {
  /** The machine and the run, for the table at the top. */
  record Header(
      String date,
      int cores,
      String cpuModel,
      String memory,
      String os,
      String jvm,
      String postgres,
      String loadBefore,
      String loadAfter,
      long seconds) {}

  private final Options o;
  private final Options.Scale scale;
  private final StringBuilder body = new StringBuilder();
  private boolean profilesHeader;

  private Report(Options o) {
    this.o = o;
    this.scale = o.scale();
  }

  /**
   * The report of a run: a null result is a scenario group left out with --only. Sections come in
   * the order the bench has always written them (an ingest profile lands under the Check profiles,
   * ahead of section 2).
   */
  static String render(BenchRun run, Header header, Results results) {
    Report r = new Report(run.o);
    CheckGroup.Result check = results.check();
    H2loadScenario.Result h2load = results.h2load();
    IngestScenario.Result ingest = results.ingest();
    if (check != null) {
      r.check(check.main());
      if (check.profile() != null) {
        r.profileSection(
            run,
            "Check (closed loop, "
                + num(r.scale.checkKeys())
                + " cached keys, "
                + rate(check.profile().rate())
                + " while recording)",
            check.profile());
        BenchRun.Profile base = check.main().baselineProfile();
        if (base != null) {
          r.profileSection(
              run,
              "No-op baseline, for comparison (same client, "
                  + rate(base.rate())
                  + " while recording)",
              base);
        }
      }
      if (check.cold() != null) {
        r.cold(check.cold());
      }
      r.scaling(check.scaling(), check.main());
      r.para(
          "The Check server's heap with "
              + num(check.heapKeys())
              + " keys cached, each checked at "
              + "least once (`jcmd <pid> GC.class_histogram`, top classes):");
      r.code(check.heap());
      CheckGroup.Restart restart = check.restart();
      r.para(
          String.format(
              Locale.ROOT,
              "A fresh instance on that database (%s keys): its authz port answered %.1f s after"
                  + " launch and it reported SERVING after %.1f s (the fill streams every live key"
                  + " into the cache before ready); then one Check for each of %s keys spread over"
                  + " all of them: %s answered with %s cold loads (`quota_keys_loads_total`); the"
                  + " server's statements meanwhile, background work included: %s.",
              num(restart.keys()),
              restart.portSeconds(),
              restart.readySeconds(),
              num(restart.sampled()),
              num(restart.answered()),
              num(restart.loads()),
              statements(restart.statements())));
      CheckGroup.Upkeep u = restart.upkeep();
      r.para(
          u.keysChecked() < 0
              ? "Its idle upkeep was not measured: that server has no refresh counters."
              : String.format(
                  Locale.ROOT,
                  "The same instance idle for %.0f s, every key cached (its bulk refresh compares"
                      + " each cached key's version with its row's once per"
                      + " `QUOTA_REFRESH_INTERVAL`, reading back only changed rows): %s keys"
                      + " checked per second in %s statements, %s rows read back; server %.2f"
                      + " cores, PostgreSQL %.2f cores, i.e. **%.2f µs of PostgreSQL CPU per"
                      + " cached key checked**.",
                  u.seconds(),
                  num(Math.round(u.checkedPerSecond())),
                  num(u.statements()),
                  num(Math.round(u.rowsChanged())),
                  u.serverCores(),
                  u.postgresCores(),
                  u.postgresMicrosPerKey()));
    }
    if (h2load != null) {
      r.h2load(h2load);
    }
    if (ingest != null) {
      if (ingest.profile() != null) {
        r.profileSection(
            run,
            "Usage ingest ("
                + r.scale.ingestStreams()
                + " streams, "
                + rate(ingest.profile().rate())
                + " while recording)",
            ingest.profile());
      }
      r.ingest(ingest, check == null ? null : check.diagnostic());
    }
    if (results.soak() != null) {
      r.soak(results.soak());
    }
    if (results.memory() != null) {
      r.memory(results.memory());
    }
    if (results.holds() != null) {
      r.holds(results.holds());
    }
    if (results.policies() != null) {
      r.policies(results.policies());
    }
    if (results.propagation() != null) {
      r.propagation(results.propagation());
    }
    r.conditions(run);
    return r.assemble(header, Targets.judge(run.o, results));
  }

  /**
   * A line of the log and of the report: what the Check server's short ingest diagnostic counted.
   */
  static String diagnostic(CheckGroup.Diagnostic diag) {
    IngestLoad.Result r = diag.r();
    Map<String, Long> d = diag.statements();
    long groups = diag.groups();
    return String.format(
        Locale.ROOT,
        "%s acked/s; %s groups committed, %.0f reports per group; per "
            + "group: %s statements, %.1f round trips (%s)",
        rate(r.perSecond()),
        num(groups),
        groups == 0 ? 0.0 : (double) r.accepted() / groups,
        groups == 0
            ? "–"
            : String.format(Locale.ROOT, "%.1f", (double) PgProxy.statementCount(d) / groups),
        groups == 0 ? 0.0 : (double) d.getOrDefault("(round trips)", 0L) / groups,
        statements(d));
  }

  // ---- the sections ----

  private void check(CheckScenario.Result m) {
    double maxA = m.maxA();
    double maxB = m.maxB();
    CheckLoad.Result mergedA = m.mergedA();
    CheckLoad.Result mergedB = m.mergedB();
    double cpuA = m.cpuA();
    double cpuB = m.cpuB();
    CheckRuns.Measured openA = m.openA();
    CheckRuns.Measured openB = m.openB();
    CheckRuns.Stepped quarterA = m.quarterA();
    CheckRuns.Stepped quarterB = m.quarterB();
    section("1. Check: 10,000 cached keys, quota-authority (a) against a no-op ext_authz (b)");
    para(
        String.format(
            Locale.ROOT,
            "%s keys in the cache, picked uniformly (mix by key: 90%% allowed, 5%% "
                + "exhausted, 5%% expired). Closed loop: %d calls in flight over %d HTTP/2 connections, every call "
                + "with a %d ms deadline as Envoy sends it; %d rounds of %d s per server, alternating a and b, after "
                + "a JIT warm-up of %s calls each; the median round is the max throughput. Open loop: a fixed schedule at "
                + "half of each server's own max (ramped up over the warm-up, then %d s measured), one pacer per connection "
                + "on its event loop, latency measured from each call's intended send time, calls with a 5 s deadline (with "
                + "250 ms, a single stall of the shared machine set off a timeout storm neither server recovered from). "
                + "Request: an Envoy-shaped CheckRequest of %d bytes (OpenAI chat completion, 12 headers).",
            num(scale.checkKeys()),
            o.checkInflight,
            o.checkChannels,
            CheckRuns.CHECK_DEADLINE.toMillis(),
            scale.rounds(),
            scale.measure().toSeconds(),
            num(scale.jitCalls()),
            scale.openMeasure().toSeconds(),
            CheckTemplate.envoyChatCompletion().size()));
    List<List<String>> rows = new ArrayList<>();
    rows.add(List.of("Max throughput (median round)", rate(maxA), rate(maxB), ratio(maxA / maxB)));
    rows.add(List.of("Rounds", rounds(m.a()), rounds(m.b()), ""));
    rows.add(
        List.of(
            "Latency at max load, p50 / p99 / p99.9",
            pcts(mergedA.latency()),
            pcts(mergedB.latency()),
            ""));
    rows.add(
        List.of("Server CPU per call at max load", micros(cpuA), micros(cpuB), ratio(cpuA / cpuB)));
    rows.add(
        List.of(
            "Open loop rate (half of own max)",
            openRate(openA, maxA / 2),
            openRate(openB, maxB / 2),
            ""));
    rows.add(
        List.of(
            "Latency at half load, p50 / p99 / p99.9 (from intended send)",
            pcts(openA.r().latency()),
            pcts(openB.r().latency()),
            ""));
    rows.add(
        List.of(
            "Server CPU per call at half load",
            micros(openA.cpuPerCallMicros("server")),
            micros(openB.cpuPerCallMicros("baseline")),
            ""));
    if (quarterA != null || quarterB != null) {
      rows.add(
          List.of(
              "Highest open-loop rate that held (halving from half of max)",
              held(quarterA, maxA),
              held(quarterB, maxB),
              ""));
      rows.add(
          List.of(
              "Latency there, p50 / p99 / p99.9 (from intended send)",
              quarterA == null ? "(half held)" : pcts(quarterA.m().r().latency()),
              quarterB == null ? "(half held)" : pcts(quarterB.m().r().latency()),
              ""));
      rows.add(
          List.of(
              "Server CPU per call there",
              quarterA == null ? "" : micros(quarterA.m().cpuPerCallMicros("server")),
              quarterB == null ? "" : micros(quarterB.m().cpuPerCallMicros("baseline")),
              ""));
    }
    rows.add(
        List.of(
            "GC during the open loop: server process",
            m.gcOpenA().server(),
            m.gcOpenB().server(),
            ""));
    rows.add(
        List.of(
            "GC during the open loop: load generator",
            m.gcOpenA().client(),
            m.gcOpenB().client(),
            ""));
    rows.add(
        List.of(
            "Service time at half load, p50 / p99 (from actual send)",
            p(openA.r().service(), 50) + " / " + p(openA.r().service(), 99),
            p(openB.r().service(), 50) + " / " + p(openB.r().service(), 99),
            ""));
    rows.add(List.of("Answers", mergedA.counts().mix(), "all allowed (no-op)", ""));
    rows.add(
        List.of(
            "Anomalies (401, 503, errors, wrong verdicts)",
            orNone(m.anomaliesA()),
            orNone(m.anomaliesB()),
            ""));
    rows.add(
        List.of(
            "Database statements during all a runs (counting proxy)",
            statements(m.statements()),
            "",
            ""));
    rows.add(
        List.of(
            "pg_stat_database.xact_commit delta, bench database (lags: backends flush it up to 10 s "
                + "late, so earlier cold loads can show here; the proxy count above is exact)",
            Long.toString(m.xactCommits()),
            "",
            ""));
    table(List.of("", "quota-authority (a)", "no-op baseline (b)", "a/b"), rows);
    para(
        "CPU per call is the server process's user+system time over the measured windows divided by the "
            + "calls answered in them: the figure least disturbed by other work on the machine.");
  }

  private void cold(ColdPathScenario.Result c) {
    CheckLoad.Result r = c.r();
    Histogram h = r.latency();
    section("4. Cold path: Check for keys in the database but not in the cache");
    para(
        String.format(
            Locale.ROOT,
            "%s keys never checked before, each checked once on a fixed schedule "
                + "of %s (open loop, %d ms deadline); each is one cache miss and one database read on the server's "
                + "key-loader pool. The server reaches PostgreSQL through the bench's counting proxy (one more "
                + "loopback hop, tens of µs).",
            num(c.to() - c.from()),
            rate(c.rate()),
            CheckRuns.CHECK_DEADLINE.toMillis()));
    table(
        List.of("Keys", "p50", "p99", "p99.9", "max", "Database statements", "Anomalies"),
        List.of(
            List.of(
                num(r.calls()),
                p(h, 50),
                p(h, 99),
                p(h, 99.9),
                h.getTotalCount() == 0 ? "–" : lat(h.getMaxValue()),
                statements(c.statements()),
                orNone(r.counts().anomalies()))));
  }

  private void scaling(ScalingScenario.Result s, CheckScenario.Result main) {
    List<List<String>> rows = new ArrayList<>();
    for (ScalingScenario.Step step : s.before()) {
      rows.add(scalingRow(step));
    }
    rows.add(
        List.of(
            num(scale.checkKeys()) + " (scenario 1, median round)",
            rate(main.maxA()),
            pcts(main.mergedA().latency()),
            micros(main.cpuA()),
            statements(main.statements())));
    for (ScalingScenario.Step step : s.after()) {
      rows.add(scalingRow(step));
    }
    List<List<String>> warmRows = new ArrayList<>();
    for (ScalingScenario.Warm w : s.warming()) {
      warmRows.add(
          List.of(
              num(w.from()) + " .. " + num(w.to()),
              rate(w.r().perSecond()),
              String.format(Locale.ROOT, "%.1f s", w.r().seconds()),
              orNone(w.anomalies()),
              String.format(
                  Locale.ROOT,
                  "%.2f / %.2f",
                  w.cpu().cores("server"),
                  w.cpu().cores("postgres (bench db)"))));
    }
    section("5. Scaling: Check with more cached keys");
    para(
        "Same closed loop as scenario 1, keys picked uniformly from the first N, all of them cached "
            + "(each was checked once before, see the warming table). Throughput should stay flat; the server CPU "
            + "per call is the steadier measure on a shared machine.");
    table(
        List.of(
            "Cached keys",
            "Max throughput",
            "Latency p50 / p99 / p99.9",
            "Server CPU per call",
            "Database statements"),
        rows);
    para(
        String.format(
            Locale.ROOT,
            "Loading the cache (cold loads, %d in flight, %d s deadline; %s keys "
                + "were written with COPY in %.1f s first):",
            CheckRuns.WARM_INFLIGHT,
            CheckRuns.WARM_DEADLINE.toSeconds(),
            num(scale.totalKeys()),
            s.copySeconds()));
    table(
        List.of("Keys", "Cold loads", "Time", "Anomalies", "CPU server / postgres (cores)"),
        warmRows);
  }

  private static List<String> scalingRow(ScalingScenario.Step step) {
    CheckRuns.Measured m = step.m();
    String label =
        num(step.keys())
            + (step.keys() > step.partialFrom()
                ? " (only " + num(step.partialFrom()) + " cached: see warming)"
                : "");
    return List.of(
        label,
        rate(m.r().perSecond()),
        pcts(m.r().latency()),
        micros(m.cpuPerCallMicros("server")),
        statements(step.statements()));
  }

  private void ingest(IngestScenario.Result i, CheckGroup.Diagnostic diag) {
    List<List<String>> rows = new ArrayList<>();
    rows.add(ingestRow(scale.ingestStreams() + " streams (scenario 2)", i.main()));
    JdbcReference.Result ref = i.ref();
    Cpu.Usage refCpu = i.refCpu();
    rows.add(
        List.of(
            "JDBC reference: " + scale.ingestStreams() + " writers, groups of " + i.group(),
            rate(ref.perSecond()),
            "–",
            String.format(Locale.ROOT, "%.2f", refCpu.cores("load generator")),
            String.format(Locale.ROOT, "%.2f", refCpu.cores("postgres (bench db)")),
            "(client "
                + perReport(refCpu.of("load generator"), ref.rows())
                + ") / "
                + perReport(refCpu.of("postgres (bench db)"), ref.rows()),
            num(ref.groups()),
            Integer.toString(i.group()),
            ref.error() == null ? "none" : ref.error()));
    PgbenchReference.Result pg = i.pgbench();
    if (pg.runs().isEmpty()) {
      rows.add(
          List.of(
              "pgbench reference, each transaction one group of " + pg.group(),
              rate(pg.rowsPerSecond()),
              "–",
              "–",
              "–",
              "–",
              "–",
              Integer.toString(pg.group()),
              pg.error() == null ? "none" : pg.error()));
    }
    for (PgbenchReference.Run pr : pg.runs()) {
      rows.add(
          List.of(
              "pgbench reference: "
                  + pr.clients()
                  + (pr.clients() == 1 ? " backend" : " backends")
                  + ", each transaction one group of "
                  + pg.group()
                  + (pr == pg.best() ? " (**the limit**)" : ""),
              rate(pr.rowsPerSecond()),
              "–",
              "–",
              "–",
              Double.isNaN(pr.postgresMicrosPerRow())
                  ? "–"
                  : String.format(Locale.ROOT, "– / %.1f µs", pr.postgresMicrosPerRow()),
              String.format(Locale.ROOT, "%.1f/s", pr.tps()),
              Integer.toString(pg.group()),
              pg.error() == null ? "none" : pg.error()));
    }
    for (IngestScenario.Scaled s : i.scaling()) {
      rows.add(ingestRow(s.streams() + (s.streams() == 1 ? " stream" : " streams"), s.run()));
    }
    String hot =
        String.format(
            Locale.ROOT,
            "%s api_keys row updates, %s of them HOT (%.0f%%); in the server's main run %s of %s",
            num(i.updates()),
            num(i.hotUpdates()),
            i.updates() == 0 ? 0.0 : 100.0 * i.hotUpdates() / i.updates(),
            percent(i.mainHotRatio()),
            num(i.afterMain().updatesSince(i.beforeMain())));
    section("2. Usage ingest: durable, acknowledged reports per second");
    line("PostgreSQL's own rate for the same rows, the limit reference (pgbench script):");
    code(pg.script());
    para(
        String.format(
            Locale.ROOT,
            "ReportUsage streams over loopback (up to %d connections), unique "
                + "report ids for random keys among %s, each stream keeping up to %d reports unanswered; a report "
                + "counts when its ACCEPTED answer arrives, which the server sends only after the commit. Warm-up %d "
                + "s, then %d s measured (%d s for the stream-count rows). The server is connected straight to "
                + "PostgreSQL and runs with %s. The reference writes the same rows with plain JDBC (multi-row batch "
                + "insert into usage_events, one batched quota_used update per key in id order, one transaction per "
                + "group, one connection per writer).",
            IngestLoad.MAX_CHANNELS,
            num(scale.ingestKeys()),
            IngestLoad.MAX_OUTSTANDING,
            scale.ingestWarmup().toSeconds(),
            scale.ingestMeasure().toSeconds(),
            scale.ingestScalingMeasure().toSeconds(),
            i.env()));
    table(
        List.of(
            "Run",
            "Acked reports",
            "Ack latency p50 / p99",
            "Server CPU (cores)",
            "PostgreSQL CPU (cores)",
            "CPU per report: server / PostgreSQL",
            "Groups (≈)",
            "Reports per group (≈)",
            "Duplicates / rejected / errors"),
        rows);
    para(
        String.format(
            Locale.ROOT,
            "Ratio to the reference: **%.2f**. Every acknowledged report is in "
                + "the database: %s (%s rows in usage_events; %s acknowledged by the servers + %s written by the "
                + "reference). Groups are read from pg_stat_database.xact_commit, which backends flush at most once a "
                + "second, hence ≈.",
            i.ratio(),
            i.allInDatabase() ? "yes" : "**no**",
            num(i.rowsInDb()),
            num(i.accepted()),
            num(i.referenceRows())));
    para(
        "PostgreSQL statistics after all ingest runs: "
            + hot
            + ". A HOT (heap-only) update writes no index entry and its dead version is pruned with"
            + " the page; only an update that changes an indexed column, or finds no room on the"
            + " row's page, is not HOT (V10: no index of api_keys holds a column a charge changes,"
            + " fillfactor 50).");
    para(
        "Tables when the ingest server started (its keys loaded): "
            + i.start().describe()
            + ". After every ingest run: "
            + i.end().describe()
            + ".");
    line(
        "One group's statements (the pgbench script's, "
            + i.group()
            + " rows) under EXPLAIN (ANALYZE, BUFFERS) on the tables as every run left them, rolled"
            + " back:");
    code(i.explain());
    IngestScenario.Run main = i.main();
    long acked = main.r().accepted();
    para(
        String.format(
            Locale.ROOT,
            "Per acknowledged report in the main run (issue 19 point 7): PostgreSQL CPU %s, server"
                + " CPU %s, %.4f transactions (groups of ≈%.0f)%s.",
            perReport(main.cpu().of("postgres (bench db)"), acked),
            perReport(main.cpu().of("server"), acked),
            acked == 0 ? 0.0 : (double) main.groups() / acked,
            main.groupSize(),
            diag == null || diag.groups() == 0
                ? ""
                : String.format(
                    Locale.ROOT,
                    ", %.4f statements (%.1f per group, counted by the proxy in the diagnostic"
                        + " below)",
                    main.groupSize() <= 0
                        ? 0.0
                        : (double) PgProxy.statementCount(diag.statements())
                            / diag.groups()
                            / main.groupSize(),
                    (double) PgProxy.statementCount(diag.statements()) / diag.groups())));
    para(
        "Statement diagnostic on the Check server (defaults, through the counting proxy, "
            + scale.ingestStreams()
            + " streams): "
            + (diag == null ? "" : diagnostic(diag))
            + ".");
  }

  private void soak(SoakScenario.Result s) {
    section("9. Ingest soak: the rate as the tables grow");
    para(
        String.format(
            Locale.ROOT,
            "A server of its own with the ingest settings (%s), %d streams as in scenario 2 on the"
                + " same %s keys, for %d s at the most it takes; acknowledged reports counted every"
                + " second, the first and the last %d s compared; the tables' statistics read"
                + " every %d s (pg_stat_user_tables, pg_relation_size, pg_indexes_size).",
            o.ingestEnv,
            s.streams(),
            num(scale.ingestKeys()),
            s.duration().toSeconds(),
            s.window().toSeconds(),
            SoakScenario.SAMPLE));
    List<List<String>> rows = new ArrayList<>();
    rows.add(soakRow("start", 0, s.start()));
    for (SoakScenario.Sample x : s.samples()) {
      if (x.second() % 60 == 0 || s.samples().size() <= 12) {
        rows.add(soakRow(x.second() + " s", x.acked(), x.stats()));
      }
    }
    rows.add(soakRow("end", s.acked(), s.end()));
    table(
        List.of(
            "When",
            "Acked so far",
            "api_keys heap / indexes",
            "api_keys live / dead tuples",
            "api_keys updates (HOT)",
            "api_keys autovacuums",
            "usage_events heap / indexes",
            "usage_events rows"),
        rows);
    para(
        String.format(
            Locale.ROOT,
            "First %d s: %s; last %d s: %s (ratio **%s**); whole run %s, ack p99 %s. HOT share of"
                + " the soak's api_keys updates: **%s** of %s. api_keys dead tuples at most %s;"
                + " autovacuum ran %s times on api_keys during the soak. Every acknowledged report"
                + " is in the database: %s (%s rows). Server %.2f cores, PostgreSQL %.2f cores;"
                + " PostgreSQL CPU %s per report.",
            s.window().toSeconds(),
            rate(s.firstRate()),
            s.window().toSeconds(),
            rate(s.lastRate()),
            ratio(s.keepsRate()),
            rate(s.overallRate()),
            p(s.load().ackLatency(), 99),
            percent(s.hotRatio()),
            num(s.end().updatesSince(s.start())),
            num(s.maxDeadKeys()),
            num(s.autovacuums()),
            s.allInDatabase() ? "yes" : "**no**",
            num(s.rowsInDb()),
            s.cpu().cores("server"),
            s.cpu().cores("postgres (bench db)"),
            perReport(s.cpu().of("postgres (bench db)"), s.load().accepted())));
  }

  private static List<String> soakRow(String when, long acked, TableStats st) {
    TableStats.Table k = st.keys();
    TableStats.Table e = st.events();
    return List.of(
        when,
        num(acked),
        TableStats.mb(k.heapBytes()) + " / " + TableStats.mb(k.indexBytes()),
        num(k.live()) + " / " + num(k.dead()),
        num(k.updates()) + " (" + num(k.hotUpdates()) + ")",
        num(k.autovacuums()),
        TableStats.mb(e.heapBytes()) + " / " + TableStats.mb(e.indexBytes()),
        num(e.live()));
  }

  private static List<String> ingestRow(String name, IngestScenario.Run run) {
    IngestLoad.Result r = run.r();
    Cpu.Usage cpu = run.cpu();
    return List.of(
        name,
        rate(r.perSecond()),
        p(r.ackLatency(), 50) + " / " + p(r.ackLatency(), 99),
        String.format(Locale.ROOT, "%.2f", cpu.cores("server")),
        String.format(Locale.ROOT, "%.2f", cpu.cores("postgres (bench db)")),
        perReport(cpu.of("server"), r.accepted())
            + " / "
            + perReport(cpu.of("postgres (bench db)"), r.accepted()),
        num(run.groups()),
        String.format(Locale.ROOT, "%.0f", run.groupSize()),
        r.duplicates()
            + " / "
            + r.rejected()
            + " / "
            + r.errors()
            + (r.allDone() ? "" : " (streams did not finish)"));
  }

  private void policies(PoliciesScenario.Result p) {
    section("8. Check with every key policy set");
    para(
        String.format(
            Locale.ROOT,
            "One server on the bench database (through the counting proxy), %s keys without any"
                + " policy and their %s twins with every policy of issue 17 set (IP allow-list"
                + " holding the request's source and a deny-list, a model allow-list, a monthly"
                + " budget period, the 5h/1d/7d/30d spending windows, requests_per_minute and"
                + " tokens_per_minute), each high enough never to refuse; scenario 1's request and"
                + " closed loop, %d rounds of %d s each side, alternating; the median round is each"
                + " side's throughput. The issue's aim: the policies cost at most a few percent.",
            num(p.keys()),
            num(p.keys()),
            p.none().length,
            scale.measure().toSeconds()));
    List<String> none = new ArrayList<>();
    List<String> all = new ArrayList<>();
    for (int i = 0; i < p.none().length; i++) {
      none.add(rate(p.none()[i]));
      all.add(rate(p.all()[i]));
    }
    table(
        List.of("Keys", "Check throughput (median)", "Rounds", "Ratio to none"),
        List.of(
            List.of("no policy", rate(p.medianNone()), String.join(", ", none), "1.00"),
            List.of(
                "every policy",
                rate(p.medianAll()),
                String.join(", ", all),
                String.format(Locale.ROOT, "%.2f", p.ratio()))));
    if (p.h2None().isEmpty()) {
      return;
    }
    para(
        String.format(
            Locale.ROOT,
            "The same comparison by the independent driver (the target's figure): h2load, as in"
                + " scenario 7, presenting bench key %d (a quota, allowed) and, in interleaved rounds"
                + " after a warm-up of each, its twin %d with every policy; h2load sends one body"
                + " for all requests, so each side is one key. Server CPU per call from /proc. The"
                + " ratio is the median of the rounds' ratios, each policy round against the round"
                + " without policy just before it (the machine's drift moves a pair alike).",
            p.twin(),
            p.keys() + p.twin()));
    table(
        List.of(
            "Key", "Check throughput (median)", "Rounds", "Server CPU per call", "Ratio to none"),
        List.of(
            List.of(
                "no policy",
                rate(H2load.median(p.h2None())),
                h2Rounds(p.h2None()),
                micros(H2load.medianCpu(p.h2None())),
                "1.00"),
            List.of(
                "every policy",
                rate(H2load.median(p.h2All())),
                h2Rounds(p.h2All()),
                micros(H2load.medianCpu(p.h2All())),
                String.format(
                    Locale.ROOT, "%.2f (CPU per call %.2fx)", p.h2Ratio(), p.h2CpuRatio()))));
  }

  private void propagation(PropagationScenario.Result p) {
    section("10. Change propagation between instances");
    para(
        String.format(
            Locale.ROOT,
            "Two servers on the bench database, B caching its %s keys from its start, B's bulk"
                + " refresh set to an hour (unless --server-env says otherwise: %s) so that a change"
                + " reaches it only by its notification. %d rounds after %d of warm-up; each round"
                + " makes every change below through A (admin API on A's admin port; the charge a"
                + " usage report on A's stream, timed from its acknowledgement) and asks B's Check"
                + " every half millisecond until it answers as the change demands; a change not"
                + " seen within %d s counts as lost. The multi-instance tests prove each change"
                + " arrives; how fast is this table's (target: p99 at most 100 ms, none lost).",
            num(p.keys()),
            p.refresh(),
            p.rounds(),
            PropagationScenario.WARMUP_ROUNDS,
            PropagationScenario.LOST_AFTER.toSeconds()));
    List<List<String>> rows = new ArrayList<>();
    for (PropagationScenario.Kind k : p.kinds()) {
      rows.add(
          List.of(
              k.change(),
              num(k.millis().length),
              millis(k.p50()),
              millis(k.p99()),
              millis(k.max()),
              num(k.lost())));
    }
    table(List.of("Change on A", "Samples", "p50", "p99", "max", "Lost"), rows);
  }

  private static String millis(double ms) {
    return Double.isNaN(ms) ? "–" : String.format(Locale.ROOT, "%.1f ms", ms);
  }

  private void memory(MemoryScenario.Result m) {
    Map<String, Long> results = m.figures();
    long n = m.keys();
    section("3. Cache memory: heap per cached key");
    para(
        String.format(
            Locale.ROOT,
            "In a JVM of its own (-Xmx4g, G1): the server's KeyCache (maximum size %s, the"
                + " default) filled with the %s bench keys as a server starting on that database"
                + " fills it: every live key's hash streamed into the live-key set (one sorted"
                + " long[], four longs a key), then every live key streamed into the cache through"
                + " KeyCache.fill, both by the server's own KeyRepository queries (quota"
                + " NUMERIC(20,8), two thirds of the keys with quota_used > 0, half with an"
                + " expiry). Then one Check per key through the server's Authorizer (the"
                + " difference is what checking leaves, class loading included). Used heap after"
                + " three System.gc() each time; the class rows are GC.class_histogram differences"
                + " against the empty cache.",
            num(results.getOrDefault("maxKeys", 0L)),
            num(n)));
    table(
        List.of("State", "Heap per key", "Cached keys"),
        List.of(
            List.of(
                "After the start-up fill (the target's measure)",
                String.format(Locale.ROOT, "%.0f bytes", m.perKey()),
                num(results.getOrDefault("cached", 0L))),
            List.of(
                "After one Check per key ("
                    + num(results.getOrDefault("allowed", 0L))
                    + " allowed)",
                String.format(Locale.ROOT, "%.0f bytes", m.perKeyChecked()),
                num(results.getOrDefault("cached", 0L)))));
    line("After the start-up fill:\n");
    table(List.of("Class", "Instances", "Bytes per key"), classRows(m.filled(), m.keysAsked()));
    line("After one Check per key:\n");
    table(List.of("Class", "Instances", "Bytes per key"), classRows(m.checked(), m.keysAsked()));
  }

  /** Class rows per key of the count the probe was asked for (as the bench always divided them). */
  private static List<List<String>> classRows(List<MemoryScenario.ClassRow> rows, long keys) {
    List<List<String>> out = new ArrayList<>();
    for (MemoryScenario.ClassRow c : rows) {
      out.add(
          List.of(
              "`" + c.name() + "`",
              num(c.instances()),
              String.format(Locale.ROOT, "%.1f", c.bytes() / (double) keys)));
    }
    return out;
  }

  private void holds(HoldsScenario.Result h) {
    HoldsScenario.Run far = h.far();
    HoldsScenario.Run near = h.near();
    HoldsScenario.Charges ch = h.charges();
    section("6. Holds: a limited key's request admitted on a hold of its maximum cost (ext_proc)");
    para(
        String.format(
            Locale.ROOT,
            "A server with QUOTA_HOLDS=on (lease settings at their defaults unless --server-env says"
                + " otherwise) reaching PostgreSQL through the counting proxy; the bench plays Envoy's"
                + " ext_proc filter: %d requests in flight over %d HTTP/2 connections, one ext_proc"
                + " stream each, request headers as Envoy sends them after Check (x-quota-key-id,"
                + " x-quota-key-limited: true), the whole request body (an OpenAI chat completion,"
                + " %s, max_tokens %d, a short system and user prompt: %d prompt tokens as the"
                + " server counts them), then the response headers (200, JSON) and the whole"
                + " response body with its usage (%d + %d tokens) and end_of_stream, then the"
                + " half-close; each request is charged and its hold settled. A hold is %s USD, the"
                + " charge %s USD (%s). Warm-up %s, then %s measured per run. Admission latency:"
                + " from sending the request body (where the hold is taken) to its answer with"
                + " x-quota-admitted (or the 429).",
            HoldsScenario.INFLIGHT,
            HoldsScenario.CHANNELS,
            HoldsLoad.MODEL,
            HoldsLoad.MAX_TOKENS,
            h.promptTokens(),
            h.promptTokens(),
            HoldsLoad.MAX_TOKENS,
            h.hold().toPlainString(),
            h.charge().toPlainString(),
            h.charge().compareTo(h.hold()) == 0
                ? "the whole hold"
                : "less than the hold: the prompt count could not be read off the hold exactly",
            seconds(scale.holdsWarmup()),
            seconds(scale.holdsMeasure())));
    para(
        String.format(
            Locale.ROOT,
            "**Far from the limit**: every request on one key with a quota of %s USD, so one lease"
                + " slice covers thousands of holds. **Near the limit**: keys with %s holds left"
                + " each (quota %s USD, nearly used), below 2 × QUOTA_LEASE_INSTANCES, so every"
                + " slice is one exact hold; each in-flight slot uses a key until it is refused"
                + " (429), then takes the next of %s, so a key admits five requests and refuses the"
                + " sixth (a key's first ask on an instance leases only its hold's need; the sixth"
                + " is refused on the store's answer, and a refusal within 100 ms of that answer"
                + " costs no round trip). Lease statements"
                + " are those of transactions that took, gave back, renewed or reaped a lease"
                + " (key_leases, key_slot_leases, writes of api_keys.leased), whenever they ran in"
                + " the window: the periodic renewal and reaper, and near the limit the idle"
                + " give-backs a quarter of the lease TTL after a key's last request. Usage commits"
                + " are the batched charge transactions (with their draws on the leases), one per"
                + " group, not per request.",
            num(new BigDecimal(HoldsScenario.FAR_QUOTA).longValue()),
            HoldsScenario.NEAR_HOLDS_LEFT.toPlainString(),
            num(new BigDecimal(HoldsScenario.NEAR_QUOTA).longValue()),
            num(scale.holdsNearKeys())));
    List<List<String>> rows = new ArrayList<>();
    rows.add(
        List.of(
            "Admitted requests (per second)",
            num(far.admitted()) + " (" + rate(far.r().admittedPerSecond()) + ")",
            num(near.admitted()) + " (" + rate(near.r().admittedPerSecond()) + ")"));
    rows.add(
        List.of(
            "Refused 429 insufficient_quota",
            num(far.r().window().refused429()),
            num(near.r().window().refused429())));
    rows.add(
        List.of(
            "Admission latency, p50 / p99 / p99.9",
            pcts(far.r().admittedLatency()),
            pcts(near.r().admittedLatency())));
    rows.add(
        List.of(
            "Refusal latency, p50 / p99",
            refusal(far.r().refusedLatency()),
            refusal(near.r().refusedLatency())));
    rows.add(
        List.of(
            "**Lease statements per admitted request**",
            "**" + perRequest(far.perAdmitted(PgProxy.TxTally.LEASE)) + "**",
            "**" + perRequest(near.perAdmitted(PgProxy.TxTally.LEASE)) + "**"));
    rows.add(
        List.of(
            "Lease statements (transactions)",
            kind(far, PgProxy.TxTally.LEASE),
            kind(near, PgProxy.TxTally.LEASE)));
    rows.add(
        List.of(
            "Usage commit statements (transactions)",
            kind(far, PgProxy.TxTally.USAGE),
            kind(near, PgProxy.TxTally.USAGE)));
    rows.add(
        List.of(
            "Usage commit statements per commit / per admitted request",
            perCommit(far),
            perCommit(near)));
    rows.add(
        List.of(
            "Other statements (transactions): key loads, connection checks",
            kind(far, PgProxy.TxTally.OTHER),
            kind(near, PgProxy.TxTally.OTHER)));
    rows.add(
        List.of(
            "Every statement in the window, by class",
            statements(far.statements()),
            statements(near.statements())));
    rows.add(
        List.of(
            "Server CPU per request answered",
            micros(far.serverCpuPerRequest()),
            micros(near.serverCpuPerRequest())));
    rows.add(
        List.of(
            "Anomalies (503, unmarked answers, stream errors)",
            orNone(far.r().window().anomalies()),
            orNone(near.r().window().anomalies())));
    table(List.of("", "far from the limit", "near the limit"), rows);
    para(
        String.format(
            Locale.ROOT,
            "Charges, read from the database once every stream had ended: far key %s admitted"
                + " (warm-up included), %s rows in usage_events, quota_used %s USD (%s); near keys"
                + " %s admitted, %s rows, %s keys used, **%d charged past their quota**. Every"
                + " admitted request charged: %s.",
            num(ch.farAdmitted()),
            num(ch.farCharged()),
            ch.farUsed().toPlainString(),
            ch.farUsed().compareTo(ch.farExpectedUsed()) == 0
                ? "exactly its charges"
                : "its charges sum to " + ch.farExpectedUsed().toPlainString(),
            num(ch.nearAdmitted()),
            num(ch.nearCharged()),
            num(ch.nearKeysUsed()),
            ch.nearOverQuota(),
            ch.allCharged() ? "yes" : "**no**"));
    CheckLoad.Result on = CheckRuns.merge(h.on());
    CheckLoad.Result off = CheckRuns.merge(h.off());
    line("### Check with holds on and off\n");
    para(
        String.format(
            Locale.ROOT,
            "The closed loop of scenario 1 (%d calls in flight over %d connections, %s keys"
                + " cached, the same mix) against the holds server above and against a second one"
                + " identical but for QUOTA_HOLDS=off (its own counting proxy), both started"
                + " together and measured before the ext_proc runs, after the same JIT warm-up;"
                + " %d alternating rounds of %d s, median round. Check does not take holds, so the"
                + " ratio should be 1 within the rounds' spread.",
            o.checkInflight,
            o.checkChannels,
            num(scale.holdsCheckKeys()),
            scale.rounds(),
            scale.measure().toSeconds()));
    table(
        List.of("", "holds on", "holds off", "on/off"),
        List.of(
            List.of(
                "Max throughput (median round)",
                rate(h.checkOn()),
                rate(h.checkOff()),
                ratio(h.checkRatio())),
            List.of("Rounds", rounds(h.on()), rounds(h.off()), ""),
            List.of(
                "Latency at max load, p50 / p99 / p99.9",
                pcts(on.latency()),
                pcts(off.latency()),
                ""),
            List.of(
                "Server CPU per call",
                micros(h.cpuOn()),
                micros(h.cpuOff()),
                ratio(h.cpuOn() / h.cpuOff())),
            List.of("Answers", on.counts().mix(), off.counts().mix(), "")));
  }

  private static String refusal(Histogram h) {
    return h.getTotalCount() == 0 ? "–" : p(h, 50) + " / " + p(h, 99);
  }

  private static String kind(HoldsScenario.Run r, String kind) {
    return num(r.statements(kind)) + " (" + num(r.transactions(kind)) + ")";
  }

  private static String perCommit(HoldsScenario.Run r) {
    long commits = r.transactions(PgProxy.TxTally.USAGE);
    long statements = r.statements(PgProxy.TxTally.USAGE);
    return (commits == 0 ? "–" : String.format(Locale.ROOT, "%.1f", (double) statements / commits))
        + " / "
        + perRequest(r.perAdmitted(PgProxy.TxTally.USAGE));
  }

  private static String seconds(Duration d) {
    return d.toMillis() % 1000 == 0
        ? d.toSeconds() + " s"
        : String.format(Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
  }

  private void profileSection(BenchRun run, String title, BenchRun.Profile profile) {
    Jfr.Summary s = profile.summary();
    if (!profilesHeader) {
      section("Profiles (JFR, settings=profile, on the server JVM)");
      para(
          "Recorded with `jcmd <pid> JFR.start settings=profile` during a dedicated run. Execution "
              + "samples cover threads running Java code (not threads parked or in epoll_wait). Recordings are "
              + "kept under "
              + run.work
              + ".");
      profilesHeader = true;
    }
    line("### " + title + "\n");
    para(
        String.format(
            Locale.ROOT,
            "%s execution samples; GC: %s; CPU load during the recording: %s.",
            num(s.cpuSamples()),
            s.gc(),
            s.cpuLoad()));
    for (Jfr.Ranking r : s.rankings()) {
      List<List<String>> rows = new ArrayList<>();
      for (Map.Entry<String, Long> e : r.top()) {
        rows.add(
            List.of(
                "`" + e.getKey() + "`",
                String.format(
                    Locale.ROOT, "%.1f%%", r.total() == 0 ? 0 : 100.0 * e.getValue() / r.total())));
      }
      line("**" + r.title() + "**\n");
      table(List.of("Frame", "Share"), rows);
    }
  }

  private void conditions(BenchRun run) {
    section("Run conditions");
    para(
        "CPU used per measured window, in cores (1.00 = one core busy throughout): server, baseline, "
            + "load generator (this JVM, also the JDBC reference), PostgreSQL backends of the bench database, "
            + "other (everything else on the machine, including other builds), idle.");
    StringBuilder sb = new StringBuilder();
    for (String l : run.cpuLog) {
      sb.append(l).append('\n');
    }
    code(sb.toString());
    para(
        "Settings (tokens omitted): "
            + run.serverSettingsShown
            + "; Check client: "
            + o.checkChannels
            + " connections, "
            + o.checkInflight
            + " calls in flight, directExecutor, deadline "
            + CheckRuns.CHECK_DEADLINE.toMillis()
            + " ms.");
    if (!run.problems.isEmpty()) {
      para("Anomalies: " + String.join("; ", run.problems) + ".");
    }
  }

  private String assemble(Header h, Targets.Verdict verdict) {
    StringBuilder out = new StringBuilder();
    out.append("# quota-authority benchmark results")
        .append(o.smoke ? " (SMOKE: tiny scale, not comparable)" : "")
        .append("\n\n");
    out.append("Generated by the bench module (`bench/README.md`); do not edit by hand.\n\n");
    out.append("| | |\n|---|---|\n");
    out.append("| Date | ").append(h.date()).append(" |\n");
    out.append(
            "| Command | `mvn -B -q package -DskipTests && java -jar bench/target/quota-bench.jar")
        .append(o.raw.isEmpty() ? "" : " " + String.join(" ", o.raw))
        .append("` |\n");
    out.append("| Machine | ")
        .append(h.cores())
        .append(" cores (")
        .append(h.cpuModel())
        .append("), ")
        .append(h.memory())
        .append(" memory, ")
        .append(h.os())
        .append(" |\n");
    out.append("| JVM | ").append(h.jvm()).append(" |\n");
    out.append("| Server and baseline JVM flags | `")
        .append(String.join(" ", o.jvmOpts))
        .append("` |\n");
    out.append("| PostgreSQL | ").append(h.postgres()).append(" on ").append(o.pg).append(" |\n");
    out.append("| Load average before / after | ")
        .append(h.loadBefore())
        .append(" / ")
        .append(h.loadAfter())
        .append(" |\n");
    out.append("| Duration | ").append(h.seconds()).append(" s |\n");
    out.append(
        "\nThe server, the baseline, the load generator and PostgreSQL share the machine's cores; the CPU "
            + "split per run (section Run conditions) shows how much went to each and to other work on the "
            + "machine. Figures from a busy machine are indicative.\n");
    out.append(
        "\n## Targets\n\n| Scenario | Measure | Result | Target | Met |\n|---|---|---:|---:|---|\n");
    for (Targets.Target t : verdict.targets()) {
      out.append("| ")
          .append(t.scenario())
          .append(" | ")
          .append(t.measure())
          .append(" | ")
          .append(t.result())
          .append(" | ")
          .append(t.target())
          .append(" | ")
          .append(t.met() == null ? "n/a" : t.met() ? "yes" : "**no**")
          .append(" |\n");
    }
    if (!verdict.missed().isEmpty()) {
      out.append("\nWhy a target was missed, as measured:\n\n");
      for (String m : verdict.missed()) {
        out.append("- ").append(m).append('\n');
      }
    }
    out.append(body);
    return out.toString();
  }

  private void h2load(H2loadScenario.Result h) {
    section("7. Check driven by h2load against the same server's grpc.health.v1.Health/Check");
    if (h.problem() != null) {
      para("Not measured: " + h.problem() + ".");
      return;
    }
    para(
        String.format(
            Locale.ROOT,
            "%s, an HTTP/2 load generator in C (Debian's nghttp2-client), drives one server on the"
                + " bench database: `%s` (%d connections, %d streams each: %d calls in flight),"
                + " %s rounds of Check and of the same server's empty unary call"
                + " `grpc.health.v1.Health/Check` interleaved, after a warm-up of each; the median"
                + " round is the maximum. The Check body is scenario 1's Envoy-shaped CheckRequest (%d"
                + " bytes: 12 headers, source and destination addresses, the `provider` context"
                + " extension) presenting one cached key with a quota (h2load sends one body for all requests;"
                + " scenario 1 keeps the mixed verdicts). Server CPU per call is the server"
                + " process's user+system time from /proc over each run divided by the calls it"
                + " answered. Open loop: h2load at fixed rates (`--rps`, per client) of a quarter and"
                + " half of Check's maximum, for both, latency from h2load's per-request log (from"
                + " each request's start, as h2load measures it).",
            h.h2loadVersion(),
            h.command(),
            H2load.CLIENTS,
            H2load.STREAMS,
            H2load.CLIENTS * H2load.STREAMS,
            h.check().size(),
            h.requestBytes()));
    List<List<String>> rows = new ArrayList<>();
    rows.add(
        List.of(
            "Max throughput (median round)",
            rate(h.maxCheck()),
            rate(h.maxHealth()),
            ratio(h.ratio())));
    rows.add(List.of("Rounds", h2Rounds(h.check()), h2Rounds(h.health()), ""));
    rows.add(
        List.of(
            "Server CPU per call (median round)",
            micros(h.cpuCheck()),
            micros(h.cpuHealth()),
            ratio(h.cpuRatio())));
    rows.add(
        List.of(
            "Bytes allocated per call, whole server (JFR, a round of its own)",
            String.format(Locale.ROOT, "%,.0f B", h.checkBytesPerCall()),
            String.format(Locale.ROOT, "%,.0f B", h.healthBytesPerCall()),
            ratio(h.checkBytesPerCall() / h.healthBytesPerCall())));
    for (int i = 0; i < h.openCheck().size(); i++) {
      H2load.Measured c = h.openCheck().get(i);
      H2load.Measured g = h.openHealth().get(i);
      rows.add(
          List.of(
              "Open loop " + c.what().substring(c.what().indexOf(" at ") + 4) + ": achieved",
              rate(c.perSecond()),
              rate(g.perSecond()),
              ""));
      rows.add(
          List.of(
              "  p50 / p99 / p99.9",
              h2Pcts(c),
              h2Pcts(g),
              ratio(c.p99Micros() / g.p99Micros()) + " (p99)"));
      rows.add(
          List.of(
              "  server CPU per call",
              micros(c.serverCpuMicrosPerCall()),
              micros(g.serverCpuMicrosPerCall()),
              ratio(c.serverCpuMicrosPerCall() / g.serverCpuMicrosPerCall())));
    }
    table(List.of("", "Check", "health", "Check/health"), rows);
  }

  private static String h2Rounds(List<H2load.Measured> runs) {
    List<String> out = new ArrayList<>();
    for (H2load.Measured m : runs) {
      out.add(rate(m.perSecond()));
    }
    return String.join(", ", out);
  }

  private static String h2Pcts(H2load.Measured m) {
    return lat(m.p50Micros() * 1e3)
        + " / "
        + lat(m.p99Micros() * 1e3)
        + " / "
        + lat(m.p999Micros() * 1e3);
  }

  // ---- Markdown ----

  private void section(String title) {
    body.append("\n## ").append(title).append("\n\n");
  }

  private void line(String text) {
    body.append(text).append('\n');
  }

  private void para(String text) {
    body.append(text).append("\n\n");
  }

  private void table(List<String> header, List<List<String>> rows) {
    body.append('|');
    for (String h : header) {
      body.append(' ').append(h).append(" |");
    }
    body.append("\n|");
    for (int i = 0; i < header.size(); i++) {
      body.append(i == 0 ? "---|" : "---:|");
    }
    body.append('\n');
    for (List<String> r : rows) {
      body.append('|');
      for (String c : r) {
        body.append(' ').append(c).append(" |");
      }
      body.append('\n');
    }
    body.append('\n');
  }

  private void code(String text) {
    body.append("```\n").append(text.stripTrailing()).append("\n```\n\n");
  }

  private static String held(CheckRuns.Stepped s, double max) {
    if (s == null) {
      return "half (see above)";
    }
    int div = s.divisor();
    return s.m().r().overloaded()
        ? "none down to max/" + div + " (" + rate(max / div) + ")"
        : rate(s.m().r().perSecond()) + " (max/" + div + ")";
  }

  private static String openRate(CheckRuns.Measured m, double scheduled) {
    return rate(m.r().perSecond())
        + (m.r().overloaded()
            ? " (schedule " + rate(scheduled) + ", stopped early: fell behind)"
            : "");
  }

  private static String rounds(List<CheckRuns.Measured> runs) {
    List<String> out = new ArrayList<>();
    for (CheckRuns.Measured m : runs) {
      out.add(rate(m.r().perSecond()));
    }
    return String.join(", ", out);
  }

  static String perReport(long cpuNanos, long reports) {
    return reports == 0 ? "–" : String.format(Locale.ROOT, "%.0f µs", cpuNanos / 1e3 / reports);
  }

  private static String micros(double us) {
    return String.format(Locale.ROOT, "%.1f µs", us);
  }

  private static String orNone(String s) {
    return s.isEmpty() ? "none" : s;
  }

  // ---- formatting ----

  static String rate(double perSecond) {
    return String.format(Locale.ROOT, "%,.0f/s", perSecond);
  }

  static String num(long n) {
    return String.format(Locale.ROOT, "%,d", n);
  }

  /** A count per request to 4 decimals; "–" when there was no request. */
  static String perRequest(double v) {
    return Double.isNaN(v) ? "–" : String.format(Locale.ROOT, "%.4f", v);
  }

  /** A share as a percentage, "–" for none (NaN). */
  static String percent(double share) {
    return Double.isNaN(share) ? "–" : String.format(Locale.ROOT, "%.1f%%", 100 * share);
  }

  static String ratio(double r) {
    // A side that answered nothing (a stalled machine) leaves no ratio to show.
    if (Double.isNaN(r) || Double.isInfinite(r)) {
      return "–";
    }
    return String.format(Locale.ROOT, "%.2f", r);
  }

  /** A latency in ns as µs or ms. */
  static String lat(double nanos) {
    if (nanos < 10_000_000) {
      return String.format(Locale.ROOT, "%,.0f µs", nanos / 1_000);
    }
    return String.format(Locale.ROOT, "%,.1f ms", nanos / 1_000_000);
  }

  static String p(Histogram h, double percentile) {
    return h.getTotalCount() == 0 ? "–" : lat(h.getValueAtPercentile(percentile));
  }

  static String pcts(Histogram h) {
    if (h.getTotalCount() == 0) {
      return "–";
    }
    return p(h, 50) + " / " + p(h, 99) + " / " + p(h, 99.9);
  }

  static String statements(Map<String, Long> delta) {
    long n = PgProxy.statementCount(delta);
    if (n == 0) {
      return "0";
    }
    List<String> parts = new ArrayList<>();
    delta.forEach(
        (k, v) -> {
          if (!k.startsWith("(")) {
            parts.add(v + " " + k);
          }
        });
    return n + " (" + String.join(", ", parts) + ")";
  }
}
