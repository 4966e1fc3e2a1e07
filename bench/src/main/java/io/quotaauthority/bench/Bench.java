package io.quotaauthority.bench;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.LongToIntFunction;
import org.HdrHistogram.Histogram;

/**
 * quota-authority's benchmark, one command for every scenario of issue 7 (see bench/README.md):
 * {@code mvn -B -q package -DskipTests && java -jar bench/target/quota-bench.jar --out bench/RESULTS.md}.
 *
 * <p>It creates a fresh database on the local PostgreSQL, starts the server jar in its own JVM
 * (and the no-op baseline in another), drives them over loopback, profiles them with JFR, runs
 * the cache memory probe in a third JVM, writes the report, and stops and drops everything it
 * made, on failure too.
 */
public final class Bench {
  private static final Duration CHECK_DEADLINE = Duration.ofMillis(250);
  private static final Duration WARM_DEADLINE = Duration.ofSeconds(5);
  private static final int WARM_INFLIGHT = 256;

  private final Options o;
  private final Options.Scale scale;
  private final Cleanup cleanup;
  private final Report report = new Report();
  private final PgAdmin pg;
  private final long started = System.nanoTime();
  private final String adminToken = token();
  private final String reporterToken = token();
  private final String classpath = System.getProperty("java.class.path");
  private final CheckTemplate template = CheckTemplate.envoyChatCompletion();
  private final List<String> cpuLog = new ArrayList<>();
  private final Map<String, String> serverSettingsShown = new LinkedHashMap<>();
  private final List<String> problems = new ArrayList<>();
  private Path work;
  private String db;
  private Connection monitor;
  private Cpu.Meter meter;
  private volatile long serverPid = -1;
  private volatile long baselinePid = -1;
  private long warmedUpTo;
  private long acceptedByServers;
  private long referenceRows;

  private Bench(Options o, Cleanup cleanup) {
    this.o = o;
    this.scale = o.scale();
    this.cleanup = cleanup;
    this.pg = new PgAdmin(o.pg, o.pgUser);
  }

  public static void main(String[] args) {
    Options o;
    try {
      o = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("quota-bench: " + e.getMessage());
      System.exit(2);
      return;
    }
    Cleanup cleanup = new Cleanup();
    Runtime.getRuntime().addShutdownHook(new Thread(cleanup, "bench-cleanup"));
    int rc = 0;
    try {
      new Bench(o, cleanup).run();
    } catch (Throwable t) {
      System.err.println("quota-bench failed:");
      t.printStackTrace();
      rc = 1;
    } finally {
      cleanup.run();
    }
    System.exit(rc);
  }

  private void run() throws Exception {
    work = o.work.toAbsolutePath();
    Files.createDirectories(work);
    if (!Files.isRegularFile(o.serverJar)) {
      throw new IllegalStateException("no server jar at " + o.serverJar
          + ": build first with mvn -B -q package -DskipTests");
    }
    log("quota-bench " + (o.smoke ? "SMOKE" : "full") + " run; logs and recordings in " + work);
    for (String orphan : pg.dropOrphans()) {
      log("dropped " + orphan + ", left behind by a bench that was killed");
    }
    db = "qa_bench_" + ProcessHandle.current().pid() + "_" + System.currentTimeMillis() % 1_000_000;
    pg.createDatabase(db);
    cleanup.add(() -> {
      pg.dropDatabase(db);
      log("dropped database " + db);
    });
    log("created database " + db + " on " + o.pg);
    monitor = pg.connect("postgres");
    cleanup.add(monitor::close);
    meter = new Cpu.Meter()
        .add("server", () -> serverPid > 0 ? List.of(serverPid) : List.of())
        .add("baseline", () -> baselinePid > 0 ? List.of(baselinePid) : List.of())
        .add("load generator", () -> List.of(ProcessHandle.current().pid()))
        .add("postgres (bench db)", () -> PgAdmin.backendPids(monitor, db));
    String loadBefore = Cpu.loadAverage();

    if (o.only.contains("check")) {
      checkPhase();
    }
    if (o.only.contains("ingest")) {
      ingestPhase();
    }
    if (o.only.contains("memory")) {
      memoryPhase();
    }

    header(loadBefore, Cpu.loadAverage());
    conditions();
    String md = report.render();
    System.out.println();
    System.out.println(md);
    if (o.out != null) {
      Path out = o.out.toAbsolutePath();
      Path tmp = out.resolveSibling("RESULTS.tmp-" + ProcessHandle.current().pid());
      Files.writeString(tmp, md);
      Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      log("wrote " + o.out);
    }
    if (!problems.isEmpty()) {
      log("anomalies: " + String.join("; ", problems));
    }
    log("done in " + Math.round(elapsed()) + " s");
  }

  // ------------------------------------------------------------------------------------------
  // Check: scenarios 1, 4, 5 (and the usage path's statement counts) on one server behind the
  // counting proxy.

  private void checkPhase() throws Exception {
    String host = o.pg.substring(0, o.pg.lastIndexOf(':'));
    int port = Integer.parseInt(o.pg.substring(o.pg.lastIndexOf(':') + 1));
    PgProxy proxy = new PgProxy(new InetSocketAddress(host, port));
    cleanup.add(proxy::close);
    int authz = ChildJvm.freePort();
    Map<String, String> env = serverEnv(authz, "127.0.0.1:" + proxy.port(), "check");
    env.putAll(o.serverEnv);
    ChildJvm server = startServer("server-check", env, authz);

    double copySeconds = loadKeys(scale.totalKeys());

    List<List<String>> scalingRows = new ArrayList<>();
    List<List<String>> warmRows = new ArrayList<>();
    CheckLoad.Result mainA = null;
    double mainRate = 0;
    double mainCpu = 0;
    Map<String, Long> mainStatements = Map.of();
    try (CheckLoad load = new CheckLoad(authz, o.checkChannels, template, CHECK_DEADLINE);
        CheckLoad warm = new CheckLoad(authz, 2, template, WARM_DEADLINE)) {
      boolean jitWarm = false;
      for (int s : scale.scalingKeys()) {
        if (s < scale.checkKeys()) {
          warmRows.add(warmTo(warm, s));
          if (!jitWarm) {
            jitWarmup(load, CheckLoad.uniform(s), CheckLoad.EXPECT_BENCH_KEYS, "quota-authority");
            jitWarm = true;
          }
          scalingRows.add(scalingRun(load, proxy, s));
        }
      }
      warmRows.add(warmTo(warm, scale.checkKeys()));
      MainCheck main = mainCheck(load, proxy);
      mainA = main.merged;
      mainRate = main.rate;
      mainCpu = main.cpuPerCall;
      mainStatements = main.statements;
      scalingRows.add(List.of(Report.num(scale.checkKeys()) + " (scenario 1, median round)",
          Report.rate(mainRate), Report.pcts(mainA.latency()),
          String.format(Locale.ROOT, "%.1f µs", mainCpu), Report.statements(mainStatements)));
      if (o.profile) {
        profileCheck(load);
      }
      coldPath(load, proxy);
      for (int s : scale.scalingKeys()) {
        if (s > scale.checkKeys() && s > warmedUpTo) {
          warmRows.add(warmTo(warm, s));
          scalingRows.add(scalingRun(load, proxy, s));
        }
      }
    }
    scalingSection(scalingRows, warmRows, copySeconds);
    serverHeap();
    ingestDiagnostic(authz, proxy);
    stop(server);
  }

  /** Writes keys [0, n) unless they are there (the schema is the server's: call after it started). */
  private double loadKeys(int n) throws SQLException {
    if (keysLoaded >= n) {
      return 0;
    }
    log("loading " + Report.num(n) + " keys with COPY");
    long t = System.nanoTime();
    try (Connection c = pg.connect(db)) {
      pg.copyKeys(c, keysLoaded, n, Instant.now());
    }
    keysLoaded = n;
    double seconds = (System.nanoTime() - t) / 1e9;
    log(String.format(Locale.ROOT, "keys loaded in %.1f s", seconds));
    return seconds;
  }

  private int keysLoaded;

  private record MainCheck(CheckLoad.Result merged, double rate, double cpuPerCall, Map<String, Long> statements) {}

  private record Measured(CheckLoad.Result r, Cpu.Usage cpu) {
    double cpuPerCallMicros(String group) {
      return r.calls() == 0 ? 0 : cpu.of(group) / 1e3 / r.calls();
    }
  }

  private MainCheck mainCheck(CheckLoad load, PgProxy proxy) throws Exception {
    int basePort = ChildJvm.freePort();
    ChildJvm baseline = ChildJvm.start("baseline", o.jvmOpts,
        List.of("-cp", classpath, NoopAuthzServer.class.getName(), Integer.toString(basePort)), Map.of(), work);
    Cleanup.Action stopBaseline = baseline::close;
    cleanup.add(stopBaseline);
    baselinePid = baseline.pid();
    baseline.awaitPort(basePort, Duration.ofSeconds(60));
    log("baseline (no-op ext_authz) up on port " + basePort);

    Duration settle = min(Duration.ofSeconds(1), scale.warmup());
    CheckLoad.Keys keys = CheckLoad.uniform(scale.checkKeys());
    List<Measured> a = new ArrayList<>();
    List<Measured> b = new ArrayList<>();
    Measured openA;
    Measured openB;
    Measured quarterA = null;
    Measured quarterB = null;
    Map<String, Long> p0;
    Map<String, Long> p1;
    long x0;
    long x1;
    try (CheckLoad base = new CheckLoad(basePort, o.checkChannels, template, CHECK_DEADLINE)) {
      jitWarmup(load, keys, CheckLoad.EXPECT_BENCH_KEYS, "quota-authority");
      jitWarmup(base, keys, CheckLoad.EXPECT_OK, "baseline");
      p0 = proxy.snapshot();
      x0 = PgAdmin.xactCommit(monitor, db);
      for (int r = 0; r < scale.rounds(); r++) {
        a.add(closed(load, keys, CheckLoad.EXPECT_BENCH_KEYS, settle, scale.measure(), o.checkInflight));
        b.add(closed(base, keys, CheckLoad.EXPECT_OK, settle, scale.measure(), o.checkInflight));
        log(String.format(Locale.ROOT, "check round %d: quota-authority %s, baseline %s", r + 1,
            Report.rate(a.get(r).r.perSecond()), Report.rate(b.get(r).r.perSecond())));
      }
      double maxA = median(a);
      double maxB = median(b);
      // GC during the open loops, on both sides: pauses are what a p99 at this rate is made of.
      GcWatch gcA = GcWatch.start(serverPid, work.resolve("open-a.jfr"));
      openA = open(load, keys, CheckLoad.EXPECT_BENCH_KEYS, maxA / 2, scale.warmup(), scale.openMeasure());
      gcOpenA = gcA.stop();
      GcWatch gcB = GcWatch.start(baselinePid, work.resolve("open-b.jfr"));
      openB = open(base, keys, CheckLoad.EXPECT_OK, maxB / 2, scale.warmup(), scale.openMeasure());
      gcOpenB = gcB.stop();
      // Half of the closed loop's max may not hold in an open loop (each call alone costs more
      // than calls batched 32 to a connection): then step down until a schedule holds.
      if (openA.r.overloaded()) {
        quarterA = stepDown(load, keys, CheckLoad.EXPECT_BENCH_KEYS, maxA, "quota-authority");
      }
      if (openB.r.overloaded()) {
        quarterB = stepDown(base, keys, CheckLoad.EXPECT_OK, maxB, "baseline");
      }
      if (o.profile) {
        Path file = work.resolve("check-baseline.jfr");
        Files.deleteIfExists(file);
        Jfr.start(baselinePid, "baseline", file);
        Measured m = closed(base, keys, CheckLoad.EXPECT_OK, Duration.ofMillis(500), scale.profile(), o.checkInflight);
        Jfr.stop(baselinePid, "baseline");
        baselineProfile = file;
        baselineProfileRate = m.r.perSecond();
      }
      log(String.format(Locale.ROOT, "check open loop at half load: quota-authority p99 %s, baseline p99 %s",
          Report.p(openA.r.latency(), 99), Report.p(openB.r.latency(), 99)));
      p1 = proxy.snapshot();
      ChildJvm.sleep(1_500); // pg_stat_database is flushed by backends at most once a second
      x1 = PgAdmin.xactCommit(monitor, db);
    }
    cleanup.runNow(stopBaseline);
    baselinePid = -1;

    double maxA = median(a);
    double maxB = median(b);
    CheckLoad.Result mergedA = merge(a);
    CheckLoad.Result mergedB = merge(b);
    double cpuA = cpuPerCall(a, "server");
    double cpuB = cpuPerCall(b, "baseline");
    Map<String, Long> statements = PgProxy.delta(p0, p1);
    long xact = x1 - x0;

    report.section("1. Check: 10,000 cached keys, quota-authority (a) against a no-op ext_authz (b)");
    report.para(String.format(Locale.ROOT, "%s keys in the cache, picked uniformly (mix by key: 90%% allowed, 5%% "
        + "exhausted, 5%% expired). Closed loop: %d calls in flight over %d HTTP/2 connections, every call "
        + "with a %d ms deadline as Envoy sends it; %d rounds of %d s per server, alternating a and b, after "
        + "a JIT warm-up of %s calls each; the median round is the max throughput. Open loop: a fixed schedule at "
        + "half of each server's own max (ramped up over the warm-up, then %d s measured), one pacer per connection "
        + "on its event loop, latency measured from each call's intended send time, calls with a 5 s deadline (with "
        + "250 ms, a single stall of the shared machine set off a timeout storm neither server recovered from). "
        + "Request: an Envoy-shaped CheckRequest of %d bytes (OpenAI chat completion, 12 headers).",
        Report.num(scale.checkKeys()), o.checkInflight, o.checkChannels, CHECK_DEADLINE.toMillis(), scale.rounds(),
        scale.measure().toSeconds(), Report.num(scale.jitCalls()), scale.openMeasure().toSeconds(), template.size()));
    List<List<String>> rows = new ArrayList<>();
    rows.add(List.of("Max throughput (median round)", Report.rate(maxA), Report.rate(maxB), Report.ratio(maxA / maxB)));
    rows.add(List.of("Rounds", rounds(a), rounds(b), ""));
    rows.add(List.of("Latency at max load, p50 / p99 / p99.9", Report.pcts(mergedA.latency()),
        Report.pcts(mergedB.latency()), ""));
    rows.add(List.of("Server CPU per call at max load", String.format(Locale.ROOT, "%.1f µs", cpuA),
        String.format(Locale.ROOT, "%.1f µs", cpuB), Report.ratio(cpuA / cpuB)));
    rows.add(List.of("Open loop rate (half of own max)", openRate(openA, maxA / 2), openRate(openB, maxB / 2), ""));
    rows.add(List.of("Latency at half load, p50 / p99 / p99.9 (from intended send)", Report.pcts(openA.r.latency()),
        Report.pcts(openB.r.latency()), ""));
    rows.add(List.of("Server CPU per call at half load", String.format(Locale.ROOT, "%.1f µs",
        openA.cpuPerCallMicros("server")), String.format(Locale.ROOT, "%.1f µs", openB.cpuPerCallMicros("baseline")), ""));
    if (quarterA != null || quarterB != null) {
      rows.add(List.of("Highest open-loop rate that held (halving from half of max)", held(quarterA, maxA),
          held(quarterB, maxB), ""));
      rows.add(List.of("Latency there, p50 / p99 / p99.9 (from intended send)",
          quarterA == null ? "(half held)" : Report.pcts(quarterA.r.latency()),
          quarterB == null ? "(half held)" : Report.pcts(quarterB.r.latency()), ""));
      rows.add(List.of("Server CPU per call there",
          quarterA == null ? "" : String.format(Locale.ROOT, "%.1f µs", quarterA.cpuPerCallMicros("server")),
          quarterB == null ? "" : String.format(Locale.ROOT, "%.1f µs", quarterB.cpuPerCallMicros("baseline")), ""));
      if (quarterA != null) {
        cpuLog.add("check open loop a, stepped down: " + quarterA.cpu.describe());
      }
      if (quarterB != null) {
        cpuLog.add("check open loop b, stepped down: " + quarterB.cpu.describe());
      }
    }
    rows.add(List.of("GC during the open loop: server process", gcOpenA.server(), gcOpenB.server(), ""));
    rows.add(List.of("GC during the open loop: load generator", gcOpenA.client(), gcOpenB.client(), ""));
    rows.add(List.of("Service time at half load, p50 / p99 (from actual send)",
        Report.p(openA.r.service(), 50) + " / " + Report.p(openA.r.service(), 99),
        Report.p(openB.r.service(), 50) + " / " + Report.p(openB.r.service(), 99), ""));
    rows.add(List.of("Answers", mergedA.counts().mix(), "all allowed (no-op)", ""));
    rows.add(List.of("Anomalies (401, 503, errors, wrong verdicts)", orNone(anomalies(a, openA)),
        orNone(anomalies(b, openB)), ""));
    rows.add(List.of("Database statements during all a runs (counting proxy)", Report.statements(statements), "", ""));
    rows.add(List.of("pg_stat_database.xact_commit delta, bench database (lags: backends flush it up to 10 s "
        + "late, so earlier cold loads can show here; the proxy count above is exact)", Long.toString(xact), "", ""));
    report.table(List.of("", "quota-authority (a)", "no-op baseline (b)", "a/b"), rows);
    report.para("CPU per call is the server process's user+system time over the measured windows divided by the "
        + "calls answered in them: the figure least disturbed by other work on the machine.");
    for (int r = 0; r < a.size(); r++) {
      cpuLog.add("check round " + (r + 1) + " a: " + a.get(r).cpu.describe());
      cpuLog.add("check round " + (r + 1) + " b: " + b.get(r).cpu.describe());
    }
    cpuLog.add("check open loop a: " + openA.cpu.describe());
    cpuLog.add("check open loop b: " + openB.cpu.describe());

    double ratio = maxA / maxB;
    target("Check", "throughput a/b (no-op baseline)", Report.ratio(ratio), "≥ 0.85", ratio >= 0.85);
    double p99 = openA.r.overloaded() || openA.r.latency().getTotalCount() == 0 ? Double.POSITIVE_INFINITY
        : openA.r.latency().getValueAtPercentile(99);
    if (quarterA != null && !quarterA.r.overloaded() && quarterA.r.latency().getTotalCount() > 0) {
      target("Check", "p99 at the highest open-loop rate that held (" + Report.rate(quarterA.r.perSecond()) + ")",
          Report.lat(quarterA.r.latency().getValueAtPercentile(99)), "(reference)", null);
    }
    target("Check", "p99 at half load (" + Report.rate(openA.r.perSecond()) + ")",
        Double.isInfinite(p99) ? "did not hold" : Report.lat(p99), "≤ 1 ms",
        p99 <= 1_000_000);
    long stmts = PgProxy.statementCount(statements);
    target("Check", "database statements while cached", Long.toString(stmts), "0", stmts == 0);
    if (ratio < 0.85) {
      report.missed(String.format(Locale.ROOT, "Check throughput a/b %.2f: the server spends %.1f µs of CPU per "
          + "Check against the baseline's %.1f µs (%.2fx); the load generator shares the same 2 cores "
          + "(see the CPU split), so every extra µs in the server costs throughput. Where it goes: "
          + "section Profiles, Check.", ratio, cpuA, cpuB, cpuA / cpuB));
    }
    if (p99 > 1_000_000) {
      report.missed(String.format(Locale.ROOT, "Check p99 at half load %s (service time p99 %s; baseline p99 %s at "
          + "its half load). Open-loop calls arrive one at a time, so each costs the server %.1f µs of CPU against "
          + "%.1f µs when 128 in flight are batched; GC pauses: server %s, load generator %s; CPU: %s.",
          Double.isInfinite(p99) ? "not measured: the schedule did not hold" : Report.lat(p99),
          Report.p(openA.r.service(), 99), Report.p(openB.r.latency(), 99), openA.cpuPerCallMicros("server"), cpuA,
          gcOpenA.server(), gcOpenA.client(), openA.cpu.describe()));
    }
    if (stmts != 0) {
      report.missed("Check touched the database with every key cached: " + Report.statements(statements));
    }
    return new MainCheck(mergedA, maxA, cpuA, statements);
  }

  private GcWatch.Result gcOpenA = GcWatch.Result.NONE;
  private GcWatch.Result gcOpenB = GcWatch.Result.NONE;
  private Path baselineProfile;
  private double baselineProfileRate;

  private void profileCheck(CheckLoad load) throws IOException {
    Path file = work.resolve("check.jfr");
    Files.deleteIfExists(file);
    log("check: JFR profile for " + scale.profile().toSeconds() + " s");
    Jfr.start(serverPid, "check", file);
    Measured m = closed(load, CheckLoad.uniform(scale.checkKeys()), CheckLoad.EXPECT_BENCH_KEYS,
        Duration.ofMillis(500), scale.profile(), o.checkInflight);
    Jfr.stop(serverPid, "check");
    profileSection("Check (closed loop, " + Report.num(scale.checkKeys()) + " cached keys, "
        + Report.rate(m.r.perSecond()) + " while recording)", file);
    if (baselineProfile != null) {
      profileSection("No-op baseline, for comparison (same client, " + Report.rate(baselineProfileRate)
          + " while recording)", baselineProfile);
    }
  }

  private void coldPath(CheckLoad load, PgProxy proxy) {
    long from = scale.checkKeys();
    long to = Math.min(scale.totalKeys(), from + scale.coldKeys());
    if (to <= from) {
      return;
    }
    log("cold path: " + (to - from) + " uncached keys at " + Report.rate(scale.coldRate()));
    Map<String, Long> p0 = proxy.snapshot();
    Cpu.Snapshot c0 = meter.snap();
    CheckLoad.Session s = load.openLoop(scale.coldRate(), CheckLoad.sequential(from, to), CheckLoad.EXPECT_BENCH_KEYS);
    s.markStart();
    s.awaitSourceDone(Duration.ofSeconds((long) ((to - from) / scale.coldRate()) + 30));
    s.markEnd();
    s.stopAndDrain();
    Cpu.Snapshot c1 = meter.snap();
    Map<String, Long> statements = PgProxy.delta(p0, proxy.snapshot());
    warmedUpTo = Math.max(warmedUpTo, to);
    CheckLoad.Result r = s.result();
    Histogram h = r.latency();
    report.section("4. Cold path: Check for keys in the database but not in the cache");
    report.para(String.format(Locale.ROOT, "%s keys never checked before, each checked once on a fixed schedule "
        + "of %s (open loop, %d ms deadline); each is one cache miss and one database read on the server's "
        + "key-loader pool. The server reaches PostgreSQL through the bench's counting proxy (one more "
        + "loopback hop, tens of µs).", Report.num(to - from), Report.rate(scale.coldRate()),
        CHECK_DEADLINE.toMillis()));
    report.table(List.of("Keys", "p50", "p99", "p99.9", "max", "Database statements", "Anomalies"),
        List.of(List.of(Report.num(r.calls()), Report.p(h, 50), Report.p(h, 99), Report.p(h, 99.9),
            h.getTotalCount() == 0 ? "–" : Report.lat(h.getMaxValue()), Report.statements(statements),
            orNone(r.counts().anomalies()))));
    cpuLog.add("cold path: " + c1.since(c0).describe());
    note(r, "cold path");
  }

  private List<String> warmTo(CheckLoad warm, long to) {
    long from = warmedUpTo;
    log("warming the cache: keys " + Report.num(from) + ".." + Report.num(to) + " (one cold load each)");
    Cpu.Snapshot c0 = meter.snap();
    CheckLoad.Sequential keys = CheckLoad.sequential(from, to);
    CheckLoad.Session s = warm.closedLoop(WARM_INFLIGHT, keys, CheckLoad.EXPECT_BENCH_KEYS);
    s.markStart();
    boolean complete = s.awaitSourceDone(o.maxWarm);
    s.markEnd();
    s.stopAndDrain();
    Cpu.Usage cpu = meter.snap().since(c0);
    warmedUpTo = keys.reached();
    CheckLoad.Result r = s.result();
    cpuLog.add("warming " + from + ".." + to + ": " + cpu.describe());
    String anomalies = r.counts().anomalies();
    if (!complete) {
      anomalies = (anomalies.isEmpty() ? "" : anomalies + ", ") + "stopped after " + o.maxWarm.toSeconds()
          + " s (--max-warm) at key " + Report.num(warmedUpTo);
      problems.add("warming to " + to + " " + anomalies);
      partialFrom = Math.min(partialFrom, warmedUpTo);
    }
    log("  " + Report.rate(r.perSecond()) + " cold loads" + (anomalies.isEmpty() ? "" : ", " + anomalies));
    return List.of(Report.num(from) + " .. " + Report.num(to), Report.rate(r.perSecond()),
        String.format(Locale.ROOT, "%.1f s", r.seconds()), orNone(anomalies),
        String.format(Locale.ROOT, "%.2f / %.2f", cpu.cores("server"), cpu.cores("postgres (bench db)")));
  }

  /** The first key index not cached because warming was cut short (or MAX_VALUE). */
  private long partialFrom = Long.MAX_VALUE;

  private List<String> scalingRun(CheckLoad load, PgProxy proxy, int keys) {
    Map<String, Long> p0 = proxy.snapshot();
    Measured m = closed(load, CheckLoad.uniform(keys), CheckLoad.EXPECT_BENCH_KEYS, scale.warmup(), scale.measure(),
        o.checkInflight);
    Map<String, Long> statements = PgProxy.delta(p0, proxy.snapshot());
    log("scaling: " + Report.num(keys) + " cached keys: " + Report.rate(m.r.perSecond()));
    cpuLog.add("scaling " + keys + " keys: " + m.cpu.describe());
    String label = Report.num(keys) + (keys > partialFrom ? " (only " + Report.num(partialFrom) + " cached: see warming)" : "");
    return List.of(label, Report.rate(m.r.perSecond()), Report.pcts(m.r.latency()),
        String.format(Locale.ROOT, "%.1f µs", m.cpuPerCallMicros("server")), Report.statements(statements));
  }

  private void scalingSection(List<List<String>> rows, List<List<String>> warmRows, double copySeconds) {
    report.section("5. Scaling: Check with more cached keys");
    report.para("Same closed loop as scenario 1, keys picked uniformly from the first N, all of them cached "
        + "(each was checked once before, see the warming table). Throughput should stay flat; the server CPU "
        + "per call is the steadier measure on a shared machine.");
    report.table(List.of("Cached keys", "Max throughput", "Latency p50 / p99 / p99.9", "Server CPU per call",
        "Database statements"), rows);
    report.para(String.format(Locale.ROOT, "Loading the cache (cold loads, %d in flight, %d s deadline; %s keys "
        + "were written with COPY in %.1f s first):", WARM_INFLIGHT, WARM_DEADLINE.toSeconds(),
        Report.num(scale.totalKeys()), copySeconds));
    report.table(List.of("Keys", "Cold loads", "Time", "Anomalies", "CPU server / postgres (cores)"), warmRows);
  }

  private void serverHeap() {
    String histo = Jfr.classHistogram(serverPid, 12);
    report.para("The Check server's heap with " + Report.num(warmedUpTo) + " keys cached, each checked at "
        + "least once (`jcmd <pid> GC.class_histogram`, top classes):");
    report.code(histo);
  }

  /** A few seconds of usage on the Check server, to count statements and round trips per group. */
  private void ingestDiagnostic(int authz, PgProxy proxy) throws InterruptedException {
    log("ingest diagnostic through the counting proxy (server defaults)");
    IngestLoad ingest = new IngestLoad(authz, reporterToken, scale.ingestKeys());
    IngestLoad.Run run = ingest.start(scale.ingestStreams(), "diag");
    ChildJvm.sleep(scale.ingestWarmup().toMillis());
    Map<String, Long> p0 = proxy.snapshot();
    run.markStart();
    ChildJvm.sleep(Math.min(3_000, scale.ingestMeasure().toMillis()));
    run.markEnd();
    Map<String, Long> d = PgProxy.delta(p0, proxy.snapshot());
    IngestLoad.Result r = run.stopAndDrain();
    acceptedByServers += r.acceptedTotal();
    long groups = d.getOrDefault("COMMIT", 0L);
    diagnostic = String.format(Locale.ROOT, "%s acked/s; %s groups committed, %.0f reports per group; per "
        + "group: %s statements, %.1f round trips (%s)", Report.rate(r.perSecond()), Report.num(groups),
        groups == 0 ? 0.0 : (double) r.accepted() / groups,
        groups == 0 ? "–" : String.format(Locale.ROOT, "%.1f", (double) PgProxy.statementCount(d) / groups),
        groups == 0 ? 0.0 : (double) d.getOrDefault("(round trips)", 0L) / groups, Report.statements(d));
    log("  " + diagnostic);
  }

  private String diagnostic = "";

  // ------------------------------------------------------------------------------------------
  // Usage ingest: scenario 2 and its stream scaling, on a server connected straight to PostgreSQL.

  private void ingestPhase() throws Exception {
    int authz = ChildJvm.freePort();
    Map<String, String> env = serverEnv(authz, o.pg, "ingest");
    env.putAll(o.ingestEnv);
    ChildJvm server = startServer("server-ingest", env, authz);
    loadKeys(scale.ingestKeys());
    IngestLoad ingest = new IngestLoad(authz, reporterToken, scale.ingestKeys());
    log("ingest: JIT warm-up");
    ingestRun(ingest, scale.ingestStreams(), "warm", scale.ingestWarmup(), scale.ingestWarmup());

    List<List<String>> rows = new ArrayList<>();
    IngestRun main = ingestRun(ingest, scale.ingestStreams(), "main", scale.ingestWarmup(), scale.ingestMeasure());
    rows.add(main.row(scale.ingestStreams() + " streams (scenario 2)"));

    int group = Integer.parseInt(o.ingestEnv.getOrDefault("QUOTA_USAGE_COMMIT_MAX",
        Options.DEFAULT_INGEST_ENV.get("QUOTA_USAGE_COMMIT_MAX")));
    log("ingest: JDBC reference, " + scale.ingestStreams() + " writers, groups of " + group);
    JdbcReference.Handle writers = JdbcReference.start(pg.url(db), o.pgUser, scale.ingestStreams(), group,
        scale.ingestKeys(), "ref", scale.ingestWarmup().toNanos(), scale.ingestMeasure().toNanos());
    ChildJvm.sleep(scale.ingestWarmup().toMillis());
    Cpu.Snapshot c0 = meter.snap();
    ChildJvm.sleep(scale.ingestMeasure().toMillis());
    // Before the writers close their connections, so their backends are still there to count.
    Cpu.Usage refCpu = meter.snap().since(c0);
    JdbcReference.Result ref = writers.finish();
    try (Connection c = pg.connect(db)) {
      referenceRows = PgAdmin.scalarLong(c, "SELECT count(*) FROM usage_events WHERE report_id LIKE 'ref-%'");
    }
    if (ref.error() != null) {
      problems.add("JDBC reference: " + ref.error());
    }
    cpuLog.add("ingest JDBC reference: " + refCpu.describe());
    log("  reference " + Report.rate(ref.perSecond()));
    rows.add(List.of("JDBC reference: " + scale.ingestStreams() + " writers, groups of " + group,
        Report.rate(ref.perSecond()), "–", String.format(Locale.ROOT, "%.2f", refCpu.cores("load generator")),
        String.format(Locale.ROOT, "%.2f", refCpu.cores("postgres (bench db)")),
        "(client " + perReport(refCpu.of("load generator"), ref.rows()) + ") / "
            + perReport(refCpu.of("postgres (bench db)"), ref.rows()),
        Report.num(ref.groups()),
        Integer.toString(group), ref.error() == null ? "none" : ref.error()));

    for (int streams : scale.ingestScaling()) {
      IngestRun r = ingestRun(ingest, streams, "s" + streams, scale.ingestWarmup(), scale.ingestScalingMeasure());
      rows.add(r.row(streams + (streams == 1 ? " stream" : " streams")));
    }
    if (o.profile) {
      Path file = work.resolve("ingest.jfr");
      Files.deleteIfExists(file);
      log("ingest: JFR profile for " + scale.profile().toSeconds() + " s");
      Jfr.start(serverPid, "ingest", file);
      IngestRun p = ingestRun(ingest, scale.ingestStreams(), "prof", Duration.ofMillis(500), scale.profile());
      Jfr.stop(serverPid, "ingest");
      profileSection("Usage ingest (" + scale.ingestStreams() + " streams, " + Report.rate(p.r.perSecond())
          + " while recording)", file);
    }
    long rowsInDb;
    String hot;
    try (Connection c = pg.connect(db)) {
      rowsInDb = PgAdmin.scalarLong(c, "SELECT count(*) FROM usage_events");
      ChildJvm.sleep(1_000); // table statistics are flushed at most once a second
      long upd = PgAdmin.scalarLong(c, "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'api_keys'");
      long hotUpd = PgAdmin.scalarLong(c, "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'api_keys'");
      hot = String.format(Locale.ROOT, "%s api_keys row updates, %s of them HOT (%.0f%%)", Report.num(upd),
          Report.num(hotUpd), upd == 0 ? 0.0 : 100.0 * hotUpd / upd);
    }
    stop(server);

    double ratio = main.r.perSecond() / Math.max(1, ref.perSecond());
    report.section("2. Usage ingest: durable, acknowledged reports per second");
    report.para(String.format(Locale.ROOT, "ReportUsage streams over loopback (up to %d connections), unique "
        + "report ids for random keys among %s, each stream keeping up to %d reports unanswered; a report "
        + "counts when its ACCEPTED answer arrives, which the server sends only after the commit. Warm-up %d "
        + "s, then %d s measured (%d s for the stream-count rows). The server is connected straight to "
        + "PostgreSQL and runs with %s. The reference writes the same rows with plain JDBC (multi-row batch "
        + "insert into usage_events, one batched quota_used update per key in id order, one transaction per "
        + "group, one connection per writer).", IngestLoad.MAX_CHANNELS, Report.num(scale.ingestKeys()),
        IngestLoad.MAX_OUTSTANDING, scale.ingestWarmup().toSeconds(), scale.ingestMeasure().toSeconds(),
        scale.ingestScalingMeasure().toSeconds(), o.ingestEnv));
    report.table(List.of("Run", "Acked reports", "Ack latency p50 / p99", "Server CPU (cores)",
        "PostgreSQL CPU (cores)", "CPU per report: server / PostgreSQL", "Groups (≈)", "Reports per group (≈)",
        "Duplicates / rejected / errors"), rows);
    report.para(String.format(Locale.ROOT, "Ratio to the reference: **%.2f**. Every acknowledged report is in "
        + "the database: %s (%s rows in usage_events; %s acknowledged by the servers + %s written by the "
        + "reference). Groups are read from pg_stat_database.xact_commit, which backends flush at most once a "
        + "second, hence ≈.", ratio, rowsInDb == acceptedByServers + referenceRows ? "yes" : "**no**",
        Report.num(rowsInDb), Report.num(acceptedByServers), Report.num(referenceRows)));
    report.para("PostgreSQL statistics after all ingest runs: " + hot + ". A HOT update needs no new index "
        + "entries; an update that changes an indexed column (quota_used is in api_keys_quota_idx) cannot be HOT.");
    report.para("Statement diagnostic on the Check server (defaults, through the counting proxy, "
        + scale.ingestStreams() + " streams): " + diagnostic + ".");
    if (rowsInDb != acceptedByServers + referenceRows) {
      problems.add("usage_events has " + rowsInDb + " rows, expected " + (acceptedByServers + referenceRows));
    }
    target("Usage ingest", scale.ingestStreams() + " streams, acked reports/s", Report.rate(main.r.perSecond()),
        "≥ 50,000/s", main.r.perSecond() >= 50_000);
    target("Usage ingest", "ratio to plain JDBC", Report.ratio(ratio), "≥ 0.7", ratio >= 0.7);
    if (main.r.perSecond() < 50_000 || ratio < 0.7) {
      report.missed(String.format(Locale.ROOT, "Ingest %s (reference %s): about %.0f reports per group, %s groups "
          + "in %d s, so about %.1f ms per group on the single committer; server %.2f cores, PostgreSQL %.2f "
          + "cores, other load %.2f cores. See section Profiles, usage ingest.", Report.rate(main.r.perSecond()),
          Report.rate(ref.perSecond()), main.groupSize(), Report.num(main.groups), scale.ingestMeasure().toSeconds(),
          main.groups == 0 ? 0.0 : scale.ingestMeasure().toMillis() / (double) main.groups,
          main.cpu.cores("server"), main.cpu.cores("postgres (bench db)"), main.cpu.cores("other")));
    }
  }

  private record IngestRun(IngestLoad.Result r, Cpu.Usage cpu, long groups) {
    double groupSize() {
      return groups <= 0 ? 0 : (double) r.accepted() / groups;
    }

    List<String> row(String name) {
      return List.of(name, Report.rate(r.perSecond()),
          Report.p(r.ackLatency(), 50) + " / " + Report.p(r.ackLatency(), 99),
          String.format(Locale.ROOT, "%.2f", cpu.cores("server")),
          String.format(Locale.ROOT, "%.2f", cpu.cores("postgres (bench db)")),
          perReport(cpu.of("server"), r.accepted()) + " / " + perReport(cpu.of("postgres (bench db)"), r.accepted()),
          Report.num(groups),
          String.format(Locale.ROOT, "%.0f", groupSize()),
          r.duplicates() + " / " + r.rejected() + " / " + r.errors() + (r.allDone() ? "" : " (streams did not finish)"));
    }
  }

  private IngestRun ingestRun(IngestLoad ingest, int streams, String id, Duration warmup, Duration measure)
      throws InterruptedException, SQLException {
    IngestLoad.Run run = ingest.start(streams, id);
    ChildJvm.sleep(warmup.toMillis());
    long x0 = PgAdmin.xactCommit(monitor, db);
    Cpu.Snapshot c0 = meter.snap();
    run.markStart();
    watch(measure, run.acceptedTotal::sum, "ingest " + id);
    run.markEnd();
    Cpu.Usage cpu = meter.snap().since(c0);
    long x1 = PgAdmin.xactCommit(monitor, db);
    IngestLoad.Result r = run.stopAndDrain();
    acceptedByServers += r.acceptedTotal();
    if (r.duplicates() + r.rejected() + r.errors() > 0 || !r.allDone()) {
      problems.add("ingest " + id + ": " + r.duplicates() + " duplicates, " + r.rejected() + " rejected, "
          + r.errors() + " errors" + (r.allDone() ? "" : ", streams did not finish"));
    }
    cpuLog.add("ingest " + id + " (" + streams + " streams): " + cpu.describe());
    log(String.format(Locale.ROOT, "ingest %s: %d streams, %s acked, ack p99 %s", id, streams,
        Report.rate(r.perSecond()), Report.p(r.ackLatency(), 99)));
    return new IngestRun(r, cpu, x1 - x0);
  }

  // ------------------------------------------------------------------------------------------
  // Cache memory: scenario 3, in a JVM of its own.

  private void memoryPhase() throws IOException, InterruptedException, SQLException {
    if (keysLoaded < scale.memoryKeys()) {
      // The schema is the server's: with the Check phase skipped, migrate through a short-lived server.
      if (keysLoaded == 0) {
        int authz = ChildJvm.freePort();
        stop(startServer("server-migrate", serverEnv(authz, o.pg, "migrate"), authz));
      }
      loadKeys(scale.memoryKeys());
    }
    log("cache memory: " + Report.num(scale.memoryKeys()) + " keys in a separate JVM");
    ChildJvm probe = ChildJvm.start("cache-memory", List.of("-Xmx4g", "-XX:+UseG1GC"),
        List.of("-cp", classpath, CacheMemory.class.getName(), Integer.toString(scale.memoryKeys()), pg.url(db),
            o.pgUser), Map.of(), work);
    Cleanup.Action stopProbe = probe::close;
    cleanup.add(stopProbe);
    if (!probe.process.waitFor(5, TimeUnit.MINUTES) || probe.process.exitValue() != 0) {
      cleanup.runNow(stopProbe);
      throw new IllegalStateException("cache memory probe failed:\n" + probe.tail(40));
    }
    cleanup.runNow(stopProbe);
    Map<String, Long> results = new LinkedHashMap<>();
    List<List<String>> filled = new ArrayList<>();
    List<List<String>> checked = new ArrayList<>();
    for (String line : Files.readAllLines(probe.log)) {
      String[] f = line.split(" ");
      if (f[0].equals("RESULT") && f.length == 3) {
        results.put(f[1], Long.parseLong(f[2]));
      } else if (f[0].equals("CLASS") && f.length == 5) {
        long n = scale.memoryKeys();
        List<String> row = List.of("`" + f[2] + "`", Report.num(Long.parseLong(f[3])),
            String.format(Locale.ROOT, "%.1f", Long.parseLong(f[4]) / (double) n));
        (f[1].equals("filled") ? filled : checked).add(row);
      }
    }
    long n = results.getOrDefault("keys", 1L);
    double perKey = (results.get("heapFilled") - results.get("heapEmpty")) / (double) n;
    double perKeyChecked = (results.get("heapChecked") - results.get("heapEmpty")) / (double) n;
    report.section("3. Cache memory: heap per cached key");
    report.para(String.format(Locale.ROOT, "In a JVM of its own (-Xmx4g, G1): the server's KeyCache (maximum "
        + "size %s, the default) filled through KeyCache.apply with the %s bench keys as the server's "
        + "KeyRepository reads them from PostgreSQL (quota NUMERIC(20,8), two thirds of the keys with "
        + "quota_used > 0, half with an expiry; pgjdbc's binary numerics carry a BigInteger each), then one "
        + "Check per key through the server's Authorizer, which keeps the allow response it built with the "
        + "key's state. Used heap after three System.gc() each time; the class rows are GC.class_histogram "
        + "differences against the empty cache.", Report.num(results.getOrDefault("maxKeys", 0L)), Report.num(n)));
    report.table(List.of("State", "Heap per key", "Cached keys"), List.of(
        List.of("After apply() (the target's measure)", String.format(Locale.ROOT, "%.0f bytes", perKey),
            Report.num(results.getOrDefault("cached", 0L))),
        List.of("After one Check per key (" + Report.num(results.getOrDefault("allowed", 0L)) + " allowed)",
            String.format(Locale.ROOT, "%.0f bytes", perKeyChecked), Report.num(results.getOrDefault("cached", 0L)))));
    report.line("After apply():\n");
    report.table(List.of("Class", "Instances", "Bytes per key"), filled);
    report.line("After one Check per key:\n");
    report.table(List.of("Class", "Instances", "Bytes per key"), checked);
    target("Cache memory", "heap per cached key (" + Report.num(n) + " keys, after apply)",
        String.format(Locale.ROOT, "%.0f B", perKey), "≤ 300 B", perKey <= 300);
    target("Cache memory", "heap per cached key once each was checked",
        String.format(Locale.ROOT, "%.0f B", perKeyChecked), "(not a target)", null);
    if (perKey > 300) {
      report.missed(String.format(Locale.ROOT, "Cache memory %.0f B per key: see the class table in section 3.", perKey));
    }
  }

  // ------------------------------------------------------------------------------------------

  private void profileSection(String title, Path file) throws IOException {
    Jfr.Summary s = Jfr.summarize(file, 15);
    if (!profilesHeader) {
      report.section("Profiles (JFR, settings=profile, on the server JVM)");
      report.para("Recorded with `jcmd <pid> JFR.start settings=profile` during a dedicated run. Execution "
          + "samples cover threads running Java code (not threads parked or in epoll_wait). Recordings are "
          + "kept under " + work + ".");
      profilesHeader = true;
    }
    report.line("### " + title + "\n");
    report.para(String.format(Locale.ROOT, "%s execution samples; GC: %s; CPU load during the recording: %s.",
        Report.num(s.cpuSamples()), s.gc(), s.cpuLoad()));
    for (Jfr.Ranking r : s.rankings()) {
      List<List<String>> rows = new ArrayList<>();
      for (Map.Entry<String, Long> e : r.top()) {
        rows.add(List.of("`" + e.getKey() + "`", String.format(Locale.ROOT, "%.1f%%",
            r.total() == 0 ? 0 : 100.0 * e.getValue() / r.total())));
      }
      report.line("**" + r.title() + "**\n");
      report.table(List.of("Frame", "Share"), rows);
    }
  }

  private boolean profilesHeader;

  /**
   * Runs a closed loop until the server answered {@link Options.Scale#jitCalls} calls (or the cap
   * passed): the same JIT warm-up for the server and the baseline, whatever their speed.
   */
  private void jitWarmup(CheckLoad load, CheckLoad.Keys keys, LongToIntFunction expect, String who) {
    long t = System.nanoTime();
    // A long deadline: a cold JVM on a busy machine must not time out every call and never warm up.
    CheckLoad.Session s = load.closedLoop(o.checkInflight, keys, expect, WARM_DEADLINE);
    long until = t + scale.jitCap().toNanos();
    while (s.answered.sum() < scale.jitCalls() && System.nanoTime() < until) {
      ChildJvm.sleep(100);
    }
    s.stopAndDrain();
    log(String.format(Locale.ROOT, "JIT warm-up of %s: %s calls in %.1f s", who, Report.num(s.answered.sum()),
        (System.nanoTime() - t) / 1e9));
  }

  private Measured closed(CheckLoad load, CheckLoad.Keys keys, LongToIntFunction expect, Duration warmup,
      Duration measure, int inflight) {
    CheckLoad.Session s = load.closedLoop(inflight, keys, expect);
    return measure(s, warmup, measure);
  }

  /**
   * An open loop that ramps up over the warm-up, then holds the rate for the measured window. Its
   * calls carry a long deadline: with Envoy's 250 ms, one stall of this shared machine (another
   * process, a GC pause) became a storm of expired calls the client and server never recovered
   * from, which measures the machine, not the server; the latency from the intended send time
   * still shows every stall.
   */
  private Measured open(CheckLoad load, CheckLoad.Keys keys, LongToIntFunction expect, double rate, Duration warmup,
      Duration measure) {
    CheckLoad.Session s = load.openLoop(rate, warmup, keys, expect, WARM_DEADLINE);
    return measure(s, warmup.plusMillis(500), measure);
  }

  private Measured measure(CheckLoad.Session s, Duration warmup, Duration measure) {
    ChildJvm.sleep(warmup.toMillis());
    Cpu.Snapshot c0 = meter.snap();
    s.markStart();
    watch(measure, s.answered::sum, "check");
    s.markEnd();
    Cpu.Snapshot c1 = meter.snap();
    s.stopAndDrain();
    CheckLoad.Result r = s.result();
    if (r.overloaded()) {
      problems.add("an open loop was stopped early: over a second of its schedule was in flight");
    }
    return new Measured(r, c1.since(c0));
  }

  /** Sleeps for {@code d}; with --verbose, prints the counter's rate every second meanwhile. */
  private void watch(Duration d, java.util.function.LongSupplier counter, String what) {
    if (!o.verbose) {
      ChildJvm.sleep(d.toMillis());
      return;
    }
    long end = System.nanoTime() + d.toNanos();
    long last = counter.getAsLong();
    long lastAt = System.nanoTime();
    while (System.nanoTime() < end) {
      ChildJvm.sleep(Math.min(1_000, Math.max(1, (end - System.nanoTime()) / 1_000_000)));
      long now = System.nanoTime();
      long v = counter.getAsLong();
      log(String.format(Locale.ROOT, "  %s: %s", what, Report.rate((v - last) / ((now - lastAt) / 1e9))));
      last = v;
      lastAt = now;
    }
  }

  private ChildJvm startServer(String name, Map<String, String> env, int authzPort) {
    log("starting " + name + ": java " + String.join(" ", o.jvmOpts) + " -jar " + o.serverJar);
    ChildJvm server = ChildJvm.start(name, o.jvmOpts, List.of("-jar", o.serverJar.toString()), env, work);
    cleanup.add(server::close);
    serverPid = server.pid();
    server.awaitPort(authzPort, Duration.ofMinutes(3));
    log(name + " up (pid " + server.pid() + ", authz port " + authzPort + ")");
    env.forEach((k, v) -> {
      if (!k.endsWith("_TOKEN") && !k.equals("QUOTA_DB_PASSWORD")) {
        serverSettingsShown.put(name + ": " + k, v);
      }
    });
    return server;
  }

  private void stop(ChildJvm server) {
    server.close();
    serverPid = -1;
  }

  private Map<String, String> serverEnv(int authzPort, String pgHostPort, String name) throws IOException {
    Map<String, String> env = new LinkedHashMap<>();
    env.put("QUOTA_DB_URL", "jdbc:postgresql://" + pgHostPort + "/" + db + "?sslmode=disable&gssEncMode=disable");
    env.put("QUOTA_DB_USER", o.pgUser);
    env.put("QUOTA_AUTHZ_PORT", Integer.toString(authzPort));
    env.put("QUOTA_ADMIN_PORT", Integer.toString(ChildJvm.freePort()));
    env.put("QUOTA_METRICS_PORT", "0");
    // The bench does not meter: any free port, so two servers never fight over the 9194 default.
    env.put("QUOTA_METERING_PORT", "0");
    env.put("QUOTA_ADMIN_TOKEN", adminToken);
    env.put("QUOTA_REPORTER_TOKEN", reporterToken);
    Path data = work.resolve("data-" + name);
    Files.createDirectories(data);
    env.put("QUOTA_DATA_DIR", data.toString());
    return env;
  }

  // ------------------------------------------------------------------------------------------

  private void header(String loadBefore, String loadAfter) {
    StringBuilder h = report.head();
    String date = DateTimeFormatter.ISO_OFFSET_DATE_TIME.format(Instant.now().atOffset(ZoneOffset.UTC).withNano(0));
    h.append("# quota-authority benchmark results").append(o.smoke ? " (SMOKE: tiny scale, not comparable)" : "")
        .append("\n\n");
    h.append("Generated by the bench module (`bench/README.md`); do not edit by hand.\n\n");
    h.append("| | |\n|---|---|\n");
    h.append("| Date | ").append(date).append(" |\n");
    h.append("| Command | `mvn -B -q package -DskipTests && java -jar bench/target/quota-bench.jar")
        .append(o.raw.isEmpty() ? "" : " " + String.join(" ", o.raw)).append("` |\n");
    h.append("| Machine | ").append(Runtime.getRuntime().availableProcessors()).append(" cores (")
        .append(cpuModel()).append("), ").append(memTotal()).append(" memory, ")
        .append(System.getProperty("os.name")).append(' ').append(System.getProperty("os.version")).append(" |\n");
    h.append("| JVM | ").append(System.getProperty("java.vm.name")).append(' ')
        .append(System.getProperty("java.runtime.version")).append(" (").append(System.getProperty("java.vm.vendor"))
        .append(") |\n");
    h.append("| Server and baseline JVM flags | `").append(String.join(" ", o.jvmOpts)).append("` |\n");
    h.append("| PostgreSQL | ").append(pg.serverVersion()).append(" on ").append(o.pg).append(" |\n");
    h.append("| Load average before / after | ").append(loadBefore).append(" / ").append(loadAfter).append(" |\n");
    h.append("| Duration | ").append(Math.round(elapsed())).append(" s |\n");
    h.append("\nThe server, the baseline, the load generator and PostgreSQL share the machine's cores; the CPU "
        + "split per run (section Run conditions) shows how much went to each and to other work on the "
        + "machine. Figures from a busy machine are indicative.\n");
  }

  private void conditions() {
    report.section("Run conditions");
    report.para("CPU used per measured window, in cores (1.00 = one core busy throughout): server, baseline, "
        + "load generator (this JVM, also the JDBC reference), PostgreSQL backends of the bench database, "
        + "other (everything else on the machine, including other builds), idle.");
    StringBuilder sb = new StringBuilder();
    for (String l : cpuLog) {
      sb.append(l).append('\n');
    }
    report.code(sb.toString());
    report.para("Settings (tokens omitted): " + serverSettingsShown + "; Check client: " + o.checkChannels
        + " connections, " + o.checkInflight + " calls in flight, directExecutor, deadline "
        + CHECK_DEADLINE.toMillis() + " ms.");
    if (!problems.isEmpty()) {
      report.para("Anomalies: " + String.join("; ", problems) + ".");
    }
  }

  private void note(CheckLoad.Result r, String what) {
    if (!r.counts().anomalies().isEmpty()) {
      problems.add(what + ": " + r.counts().anomalies());
    }
  }

  private void target(String scenario, String measure, String result, String target, Boolean met) {
    report.target(scenario, measure, result, target, o.smoke ? null : met);
  }

  private String anomalies(List<Measured> runs, Measured open) {
    List<String> out = new ArrayList<>();
    for (Measured m : runs) {
      if (!m.r.counts().anomalies().isEmpty()) {
        out.add(m.r.counts().anomalies());
      }
    }
    if (!open.r.counts().anomalies().isEmpty()) {
      out.add("open loop: " + open.r.counts().anomalies());
    }
    String s = String.join("; ", out);
    if (!s.isEmpty()) {
      problems.add("check: " + s);
    }
    return s;
  }

  private static String perReport(long cpuNanos, long reports) {
    return reports == 0 ? "–" : String.format(Locale.ROOT, "%.0f µs", cpuNanos / 1e3 / reports);
  }

  /** Open loops at max/4, max/8, max/16 (4 s each) until one holds; the last one run. */
  private Measured stepDown(CheckLoad load, CheckLoad.Keys keys, LongToIntFunction expect, double max, String who) {
    Measured m = null;
    for (int div = 4; div <= 16; div *= 2) {
      log("check: open loop at half load did not hold for " + who + "; trying max/" + div);
      m = open(load, keys, expect, max / div, Duration.ofSeconds(2), min(Duration.ofSeconds(4), scale.openMeasure()));
      stepDivisor.put(m, div);
      if (!m.r.overloaded()) {
        break;
      }
    }
    return m;
  }

  private final Map<Measured, Integer> stepDivisor = new java.util.IdentityHashMap<>();

  private String held(Measured m, double max) {
    if (m == null) {
      return "half (see above)";
    }
    int div = stepDivisor.getOrDefault(m, 0);
    return m.r.overloaded() ? "none down to max/" + div + " (" + Report.rate(max / div) + ")"
        : Report.rate(m.r.perSecond()) + " (max/" + div + ")";
  }

  private static String openRate(Measured m, double scheduled) {
    return Report.rate(m.r.perSecond()) + (m.r.overloaded()
        ? " (schedule " + Report.rate(scheduled) + ", stopped early: fell behind)" : "");
  }

  private static String orNone(String s) {
    return s.isEmpty() ? "none" : s;
  }

  private static double median(List<Measured> runs) {
    double[] v = runs.stream().mapToDouble(m -> m.r.perSecond()).sorted().toArray();
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  }

  private static String rounds(List<Measured> runs) {
    List<String> out = new ArrayList<>();
    for (Measured m : runs) {
      out.add(Report.rate(m.r.perSecond()));
    }
    return String.join(", ", out);
  }

  private static double cpuPerCall(List<Measured> runs, String group) {
    long cpu = 0;
    long calls = 0;
    for (Measured m : runs) {
      cpu += m.cpu.of(group);
      calls += m.r.calls();
    }
    return calls == 0 ? 0 : cpu / 1e3 / calls;
  }

  private static CheckLoad.Result merge(List<Measured> runs) {
    Histogram lat = new Histogram(3);
    Histogram svc = new Histogram(3);
    CheckLoad.Counts counts = new CheckLoad.Counts();
    long calls = 0;
    double seconds = 0;
    for (Measured m : runs) {
      lat.add(m.r.latency());
      svc.add(m.r.service());
      calls += m.r.calls();
      seconds += m.r.seconds();
      CheckLoad.Counts c = m.r.counts();
      counts.allowed.add(c.allowed.sum());
      counts.forbidden403.add(c.forbidden403.sum());
      counts.exhausted429.add(c.exhausted429.sum());
      counts.unauthenticated401.add(c.unauthenticated401.sum());
      counts.unavailable503.add(c.unavailable503.sum());
      counts.otherCode.add(c.otherCode.sum());
      counts.rpcErrors.add(c.rpcErrors.sum());
      c.failures.forEach((code, n) -> counts.failures.computeIfAbsent(code, k -> new java.util.concurrent.atomic.LongAdder())
          .add(n.sum()));
      counts.wrong.add(c.wrong.sum());
    }
    return new CheckLoad.Result(calls, seconds, lat, svc, counts, false, 0);
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  private static String cpuModel() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (l.startsWith("model name")) {
          return l.substring(l.indexOf(':') + 1).trim();
        }
      }
    } catch (IOException | RuntimeException e) {
      // Not Linux: leave it out.
    }
    return "unknown CPU";
  }

  private static String memTotal() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
        if (l.startsWith("MemTotal:")) {
          long kb = Long.parseLong(l.replaceAll("\\D", ""));
          return String.format(Locale.ROOT, "%.1f GiB", kb / 1024.0 / 1024.0);
        }
      }
    } catch (IOException | RuntimeException e) {
      // Not Linux.
    }
    return String.format(Locale.ROOT, "%.1f GiB (JVM view)",
        ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
            .getOperatingSystemMXBean()).getTotalMemorySize() / 1024.0 / 1024 / 1024);
  }

  private double elapsed() {
    return (System.nanoTime() - started) / 1e9;
  }

  private void log(String msg) {
    System.out.printf(Locale.ROOT, "[%6.1fs] %s%n", elapsed(), msg);
    System.out.flush();
  }

  private static String token() {
    byte[] b = new byte[24];
    new SecureRandom().nextBytes(b);
    return "bench-" + HexFormat.of().formatHex(b);
  }
}
