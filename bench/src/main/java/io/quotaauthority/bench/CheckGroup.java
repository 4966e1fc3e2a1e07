package io.quotaauthority.bench;

import java.time.Duration;
import java.util.Map;

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
      Diagnostic diagnostic) {}

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
    return new Result(main, profile, cold, scaling.result(), heapKeys, heap, diagnostic);
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
