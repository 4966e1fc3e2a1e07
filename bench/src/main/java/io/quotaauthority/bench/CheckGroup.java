package io.quotaauthority.bench;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The scenarios of {@code --only check} on one server reaching PostgreSQL through the counting
 * proxy: 1 (cached keys against the baseline), 4 (cold path) and 5 (scaling), the server's heap
 * once warm, and a short usage diagnostic that counts statements per commit group.
 */
final class CheckGroup {
  /**
   * Everything measured on the Check server. {@code profile} is null without --profile, {@code
   * cold} when the database holds no key beyond scenario 1's.
   */
  record Result(
      CheckScenario.Result main,
      BenchRun.Profile profile,
      ColdPathScenario.Result cold,
      ScalingScenario.Result scaling,
      long heapKeys,
      String heap,
      Diagnostic diagnostic,
      Restart restart) {}

  /**
   * A fresh instance started on the database the scaling left ({@code keys} keys): seconds from
   * launch until its authz port answers and until it reports SERVING, then one Check of each of
   * {@code sampled} keys spread over all of them, with the cold loads the server counted ({@code
   * quota_keys_loads_total}) and every statement it sent meanwhile (background work included).
   */
  record Restart(
      long keys,
      double portSeconds,
      double readySeconds,
      int sampled,
      int answered,
      long loads,
      Map<String, Long> statements,
      Upkeep upkeep) {
    long statementCount() {
      return PgProxy.statementCount(statements);
    }
  }

  /**
   * What the same instance costs while idle, every key cached: its bulk refresh (each cached key's
   * version compared with its row's once per QUOTA_REFRESH_INTERVAL). {@code keysChecked} and
   * {@code rowsChanged} are -1 for a server without the refresh's counters.
   */
  record Upkeep(
      double seconds,
      double keysChecked,
      double rowsChanged,
      long statements,
      double serverCores,
      double postgresCores) {
    double checkedPerSecond() {
      return keysChecked < 0 ? -1 : keysChecked / seconds;
    }

    /** PostgreSQL's CPU per cached key checked, the figure README's capacity table uses. */
    double postgresMicrosPerKey() {
      return keysChecked <= 0 ? -1 : postgresCores * seconds * 1e6 / keysChecked;
    }
  }

  /** A few seconds of usage ingest on the Check server: statements and round trips per group. */
  record Diagnostic(IngestLoad.Result r, Map<String, Long> statements) {
    long groups() {
      return statements.getOrDefault("COMMIT", 0L);
    }
  }

  private final BenchRun run;

  CheckGroup(BenchRun run) {
    this.run = run;
  }

  Result run() throws Exception {
    Options o = run.o;
    Options.Scale scale = run.scale;
    CheckTemplate template = CheckTemplate.envoyChatCompletion();
    PgProxy proxy = run.proxy();
    int authz = ChildJvm.freePort();
    Map<String, String> env = run.serverEnv(authz, "127.0.0.1:" + proxy.port(), "check");
    env.putAll(o.serverEnv);
    // Its /metrics counts Check's cold loads: the one way Check itself reaches the database.
    run.checkMetricsPort = ChildJvm.freePort();
    env.put("QUOTA_METRICS_PORT", Integer.toString(run.checkMetricsPort));
    ChildJvm server = run.startServer("server-check", env, authz);

    double copySeconds = run.loadKeys(scale.totalKeys());
    CheckRuns runs = new CheckRuns(run);
    ScalingScenario scaling = new ScalingScenario(run, runs, copySeconds);
    CheckScenario.Result main;
    BenchRun.Profile profile = null;
    ColdPathScenario.Result cold;
    try (CheckLoad load =
            new CheckLoad(authz, o.checkChannels, template, CheckRuns.CHECK_DEADLINE);
        CheckLoad warm = new CheckLoad(authz, 2, template, CheckRuns.WARM_DEADLINE)) {
      boolean jitWarm = false;
      for (int s : scale.scalingKeys()) {
        if (s < scale.checkKeys()) {
          scaling.warmTo(warm, s);
          if (!jitWarm) {
            runs.jitWarmup(
                load, CheckLoad.uniform(s), CheckLoad.EXPECT_BENCH_KEYS, "quota-authority");
            jitWarm = true;
          }
          scaling.step(load, proxy, s, false);
        }
      }
      scaling.warmTo(warm, scale.checkKeys());
      main = new CheckScenario(run, runs).run(load, proxy, template);
      if (o.profile) {
        run.log("check: JFR profile for " + scale.profile().toSeconds() + " s");
        profile =
            run.profile(
                run.serverPid(),
                "check",
                "check",
                () ->
                    runs.closed(
                            load,
                            CheckLoad.uniform(scale.checkKeys()),
                            CheckLoad.EXPECT_BENCH_KEYS,
                            Duration.ofMillis(500),
                            scale.profile())
                        .r()
                        .perSecond());
      }
      cold = new ColdPathScenario(run).run(load, proxy);
      if (cold != null) {
        scaling.cachedUpTo(cold.to());
      }
      for (int s : scale.scalingKeys()) {
        if (s > scale.checkKeys() && s > scaling.warmedUpTo()) {
          scaling.warmTo(warm, s);
          scaling.step(load, proxy, s, true);
        }
      }
    }
    long heapKeys = scaling.warmedUpTo();
    String heap = Jfr.classHistogram(run.serverPid(), 12);
    Diagnostic diagnostic = ingestDiagnostic(authz, proxy);
    run.stopServer(server);
    Restart restart = restart(proxy, template, scale.totalKeys());
    return new Result(main, profile, cold, scaling.result(), heapKeys, heap, diagnostic, restart);
  }

  /** Issue 19 point 6: ready to answer every key from memory within 10 s of start. */
  private Restart restart(PgProxy proxy, CheckTemplate template, long keys) throws Exception {
    int authz = ChildJvm.freePort();
    Map<String, String> env = run.serverEnv(authz, "127.0.0.1:" + proxy.port(), "restart");
    env.putAll(run.o.serverEnv);
    int metrics = ChildJvm.freePort();
    env.put("QUOTA_METRICS_PORT", Integer.toString(metrics));
    long t0 = System.nanoTime();
    ChildJvm server = run.startServer("server-restart", env, authz);
    double port = (System.nanoTime() - t0) / 1e9;
    ManagedChannel channel =
        NettyChannelBuilder.forAddress("127.0.0.1", authz).usePlaintext().build();
    try {
      BenchRun.awaitServing(channel, "server-restart");
      double ready = (System.nanoTime() - t0) / 1e9;
      int sampled = (int) Math.min(keys, run.o.smoke ? 200 : 5_000);
      Map<String, Long> p0 = proxy.snapshot();
      int answered = 0;
      AuthorizationGrpc.AuthorizationBlockingStub check =
          AuthorizationGrpc.newBlockingStub(channel);
      for (int i = 0; i < sampled; i++) {
        long key = (long) i * keys / sampled;
        CheckResponse r =
            check
                .withDeadlineAfter(5, TimeUnit.SECONDS)
                .check(CheckRequest.parseFrom(template.forKey(key)));
        if (r.hasOkResponse() || r.hasDeniedResponse()) {
          answered++;
        }
      }
      Map<String, Long> d = PgProxy.delta(p0, proxy.snapshot());
      long loads = BenchRun.coldLoads(metrics);
      Restart restart =
          new Restart(keys, port, ready, sampled, answered, loads, d, upkeep(metrics, proxy));
      run.log(
          String.format(
              Locale.ROOT,
              "restart with %s keys: port %.1f s, ready %.1f s; %d of %d sampled keys answered"
                  + " with %d cold loads (%d statements in all)",
              Report.num(keys),
              port,
              ready,
              answered,
              sampled,
              restart.loads(),
              restart.statementCount()));
      return restart;
    } finally {
      channel.shutdownNow();
      run.stopServer(server);
    }
  }

  private Upkeep upkeep(int metricsPort, PgProxy proxy) throws Exception {
    // Three passes of the default 5 s refresh (one in --smoke).
    Duration idle = Duration.ofSeconds(run.o.smoke ? 5 : 15);
    run.log("restart: idle upkeep for " + idle.toSeconds() + " s");
    String checked = "quota_keys_refresh_checked_total";
    String changed = "quota_keys_refresh_changed_total";
    double checked0 = BenchRun.metric(metricsPort, checked);
    double changed0 = BenchRun.metric(metricsPort, changed);
    Map<String, Long> p0 = proxy.snapshot();
    Cpu.Snapshot c0 = run.meter.snap();
    ChildJvm.sleep(idle.toMillis());
    Cpu.Usage cpu = run.meter.snap().since(c0);
    Map<String, Long> d = PgProxy.delta(p0, proxy.snapshot());
    double seconds = cpu.wallNanos() / 1e9;
    Upkeep u =
        new Upkeep(
            seconds,
            checked0 < 0 ? -1 : BenchRun.metric(metricsPort, checked) - checked0,
            changed0 < 0 ? -1 : BenchRun.metric(metricsPort, changed) - changed0,
            PgProxy.statementCount(d),
            cpu.cores("server"),
            cpu.cores("postgres (bench db)"));
    run.cpuLog.add("restart idle upkeep: " + cpu.describe());
    run.log(
        String.format(
            Locale.ROOT,
            "  upkeep: %.0f keys checked/s, %.0f rows read back, %d statements;"
                + " server %.2f cores, PostgreSQL %.2f cores (%.2f µs per key checked)",
            u.checkedPerSecond(),
            u.rowsChanged(),
            u.statements(),
            u.serverCores(),
            u.postgresCores(),
            u.postgresMicrosPerKey()));
    return u;
  }

  private Diagnostic ingestDiagnostic(int authz, PgProxy proxy) throws InterruptedException {
    Options.Scale scale = run.scale;
    run.log("ingest diagnostic through the counting proxy (server defaults)");
    IngestLoad ingest = new IngestLoad(authz, run.reporterToken, scale.ingestKeys());
    IngestLoad.Run r = ingest.start(scale.ingestStreams(), "diag");
    ChildJvm.sleep(scale.ingestWarmup().toMillis());
    Map<String, Long> p0 = proxy.snapshot();
    r.markStart();
    ChildJvm.sleep(Math.min(3_000, scale.ingestMeasure().toMillis()));
    r.markEnd();
    Map<String, Long> d = PgProxy.delta(p0, proxy.snapshot());
    Diagnostic diagnostic = new Diagnostic(r.stopAndDrain(), d);
    run.log("  " + Report.diagnostic(diagnostic));
    return diagnostic;
  }
}
