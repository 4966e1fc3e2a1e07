package io.quotaauthority.bench;

import java.math.BigDecimal;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Scenario 8 (issue 17): Check throughput with every key policy set on every key against the same
 * server, the same keys' twins and the same load with none. The bench keys {@code [0, n)} keep no
 * policy; keys {@code [n, 2n)} get, by SQL before the server starts, an IP allow-list holding the
 * request's source and a deny-list, a model allow-list, a monthly budget period, all four spending
 * windows and both rate limits, every one high enough never to refuse (the verdicts stay those of
 * the bench keys: a period's 429 where a quota's was). Rounds of each alternate on one server, the
 * median is each side's throughput, the ratio is policies / none.
 */
final class PoliciesScenario {
  /**
   * @param none the JVM generator's rounds over the keys without policy, {@code all} over their
   *     twins
   * @param h2None h2load's rounds presenting one allowed key without policy, {@code h2All} its twin
   *     with every policy (empty when h2load could not run)
   */
  record Result(
      int keys,
      double[] none,
      double[] all,
      List<H2load.Measured> h2None,
      List<H2load.Measured> h2All,
      long twin) {
    /**
     * The median of the rounds' ratios, each policy round against the round without policy just
     * before it: the machine's drift (other tenants, the 5 s refresh landing in one round or the
     * next) moves both of a pair alike.
     */
    double h2Ratio() {
      return pairMedian(h2All, h2None, H2load.Measured::perSecond);
    }

    /** As {@link #h2Ratio}, of the server CPU per call. */
    double h2CpuRatio() {
      return pairMedian(h2All, h2None, H2load.Measured::serverCpuMicrosPerCall);
    }

    private static double pairMedian(
        List<H2load.Measured> a,
        List<H2load.Measured> b,
        java.util.function.ToDoubleFunction<H2load.Measured> f) {
      int n = Math.min(a.size(), b.size());
      double[] r = new double[n];
      for (int i = 0; i < n; i++) {
        r[i] = f.applyAsDouble(a.get(i)) / f.applyAsDouble(b.get(i));
      }
      return median(r);
    }

    double medianNone() {
      return median(none);
    }

    double medianAll() {
      return median(all);
    }

    double ratio() {
      return medianNone() == 0 ? 0 : medianAll() / medianNone();
    }

    private static double median(double[] v) {
      double[] s = v.clone();
      java.util.Arrays.sort(s);
      return s.length == 0 ? 0 : s[s.length / 2];
    }
  }

  private static final String SET_POLICIES =
      """
      UPDATE api_keys
         SET ip_allow = '{127.0.0.0/8,::1/128,10.0.0.0/8}', ip_deny = '{192.0.2.0/24}',
             model_allow = '{gpt-4o-mini,gpt-4o*,claude-haiku-*}', budget_period = 'monthly',
             budget_reset_minute = 0, budget_time_zone = 'UTC',
             period_started_at = date_trunc('month', now()),
             period_ends_at = date_trunc('month', now()) + interval '1 month',
             window_5h_usd = 900000000, window_1d_usd = 900000000, window_7d_usd = 900000000,
             window_30d_usd = 900000000, requests_per_minute = 100000000,
             tokens_per_minute = 1000000000000000, version = version + 1
       WHERE id > ? AND id <= ?""";

  /**
   * Puts the keys' usage back to what the bench loaded: the ingest and the soak before this
   * scenario charge the first keys for minutes (at 45,000 reports/s the soak spends about 14 USD
   * per key, past the smallest quotas), and this scenario reads every key as loaded.
   */
  private static final String RESTORE_USAGE =
      """
      UPDATE api_keys k SET quota_used = v.used, version = k.version + 1
        FROM unnest(?::bigint[], ?::numeric[]) AS v(id, used)
       WHERE k.id = v.id AND k.quota_used <> v.used""";

  private final BenchRun run;

  PoliciesScenario(BenchRun run) {
    this.run = run;
  }

  Result run() throws Exception {
    Options.Scale scale = run.scale;
    int n = Math.min(scale.checkKeys(), 10_000);
    if (run.keysLoaded() == 0) {
      // The schema is the server's: alone, migrate through a short-lived server first.
      int migrate = ChildJvm.freePort();
      run.stopServer(
          run.startServer("server-migrate", run.serverEnv(migrate, run.o.pg, "migrate"), migrate));
    }
    int keys = Math.max(2 * n, 2);
    run.loadKeys(keys);
    try (Connection c = run.connect();
        PreparedStatement restore = c.prepareStatement(RESTORE_USAGE)) {
      Long[] ids = new Long[keys];
      BigDecimal[] used = new BigDecimal[keys];
      for (int i = 0; i < keys; i++) {
        ids[i] = BenchKeys.id(i);
        used[i] = new BigDecimal(BenchKeys.quotaUsed(i));
      }
      restore.setArray(1, c.createArrayOf("bigint", ids));
      restore.setArray(2, c.createArrayOf("numeric", used));
      run.log(
          "policies: usage charged by earlier scenarios taken back on "
              + Report.num(restore.executeUpdate())
              + " keys");
    }
    try (Connection c = run.connect();
        PreparedStatement ps = c.prepareStatement(SET_POLICIES)) {
      ps.setLong(1, BenchKeys.id(n) - 1);
      ps.setLong(2, BenchKeys.id(2L * n - 1));
      run.log("policies: every policy set on " + Report.num(ps.executeUpdate()) + " keys");
    }
    PgProxy proxy = run.proxy();
    int authz = ChildJvm.freePort();
    Map<String, String> env = run.serverEnv(authz, "127.0.0.1:" + proxy.port(), "policies");
    env.putAll(run.o.serverEnv);
    ChildJvm server = run.startServer("server-policies", env, authz);
    CheckTemplate template = CheckTemplate.envoyChatCompletion();
    CheckRuns runs = new CheckRuns(run);
    List<Double> none = new ArrayList<>();
    List<Double> all = new ArrayList<>();
    CheckLoad.Keys plain = () -> ThreadLocalRandom.current().nextLong(n);
    CheckLoad.Keys policed = () -> n + ThreadLocalRandom.current().nextLong(n);
    try (CheckLoad load =
            new CheckLoad(authz, run.o.checkChannels, template, CheckRuns.CHECK_DEADLINE);
        CheckLoad warm = new CheckLoad(authz, 2, template, CheckRuns.WARM_DEADLINE)) {
      // Every key cached (windowed keys read their history once), then the JIT warmed on both.
      CheckLoad.Session s =
          warm.closedLoop(
              CheckRuns.WARM_INFLIGHT,
              CheckLoad.sequential(0, 2L * n),
              CheckLoad.EXPECT_BENCH_KEYS,
              CheckRuns.WARM_DEADLINE);
      long until = System.nanoTime() + Duration.ofSeconds(120).toNanos();
      while (s.answered.sum() < 2L * n && System.nanoTime() < until) {
        ChildJvm.sleep(50);
      }
      s.stopAndDrain();
      runs.jitWarmup(
          load,
          () -> ThreadLocalRandom.current().nextLong(2L * n),
          CheckLoad.EXPECT_BENCH_KEYS,
          "policies");
      for (int round = 0; round < scale.rounds(); round++) {
        none.add(
            runs.closed(load, plain, CheckLoad.EXPECT_BENCH_KEYS, scale.warmup(), scale.measure())
                .r()
                .perSecond());
        all.add(
            runs.closed(load, policed, CheckLoad.EXPECT_BENCH_KEYS, scale.warmup(), scale.measure())
                .r()
                .perSecond());
        run.log(
            String.format(
                Locale.ROOT,
                "policies round %d: none %s, every policy %s",
                round + 1,
                Report.rate(none.get(round)),
                Report.rate(all.get(round))));
      }
    }
    List<H2load.Measured> h2None = new ArrayList<>();
    List<H2load.Measured> h2All = new ArrayList<>();
    long plainKey = H2loadScenario.allowedKey();
    try {
      independent(authz, template, plainKey, n + plainKey, h2None, h2All);
    } finally {
      run.stopServer(server);
    }
    Result r =
        new Result(
            n,
            none.stream().mapToDouble(Double::doubleValue).toArray(),
            all.stream().mapToDouble(Double::doubleValue).toArray(),
            h2None,
            h2All,
            plainKey);
    run.log(
        String.format(
            Locale.ROOT,
            "policies: ratio %.3f (JVM generator), %.3f (h2load), CPU %.3f",
            r.ratio(),
            r.h2Ratio(),
            r.h2CpuRatio()));
    return r;
  }

  /**
   * The same comparison by the independent driver: h2load presents one allowed key without policy
   * and, in rounds interleaved with it, that key's twin with every policy (h2load sends one body
   * for all requests, so each side is one key).
   */
  private void independent(
      int authz,
      CheckTemplate template,
      long plainKey,
      long policedKey,
      List<H2load.Measured> none,
      List<H2load.Measured> all)
      throws Exception {
    H2load h2load = H2load.find(run);
    if (h2load == null) {
      run.problems.add(
          "h2load not found (install Debian's nghttp2-client); scenario 8 used only"
              + " the JVM generator");
      return;
    }
    byte[] plainRequest = template.forKey(plainKey);
    byte[] policedRequest = template.forKey(policedKey);
    H2loadScenario.verifyAllowed(authz, plainRequest);
    H2loadScenario.verifyAllowed(authz, policedRequest);
    Path plainBody = H2load.frame(run.work.resolve("h2load-policies-none.bin"), plainRequest);
    Path policedBody = H2load.frame(run.work.resolve("h2load-policies-all.bin"), policedRequest);
    String url = "http://127.0.0.1:" + authz + H2loadScenario.CHECK_PATH;
    Options.Scale scale = run.scale;
    Duration warmup = run.o.smoke ? scale.warmup() : H2loadScenario.WARM_UP;
    for (int i = 0; i < 2; i++) {
      h2load.closed(url, plainBody, "policies none warm-up", warmup);
      h2load.closed(url, policedBody, "policies all warm-up", warmup);
    }
    int rounds = Math.max(scale.rounds(), run.o.smoke ? 1 : 7);
    for (int i = 0; i < rounds; i++) {
      none.add(h2load.closed(url, plainBody, "policies none", scale.measure()));
      all.add(h2load.closed(url, policedBody, "policies all", scale.measure()));
    }
  }
}
