package io.quotaauthority.bench;

import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Scenario 6, {@code --only holds}: admission of a limited key's metered request on a hold of its
 * maximum cost (README "Holds"), measured on a server with QUOTA_HOLDS=on that reaches PostgreSQL
 * through the counting proxy, with the bench playing Envoy's ext_proc filter ({@link HoldsLoad}):
 *
 * <ol>
 *   <li>far from the limit: every request on one key with a quota of 1,000,000 USD, so the server's
 *       lease slices (QUOTA_LEASE_SLICE_USD) cover thousands of holds each;
 *   <li>near the limit: keys with only {@link #NEAR_HOLDS_LEFT} holds left each, so every slice
 *       shrinks to one exact hold; each slot uses a key until it is refused (429), then the next;
 * </ol>
 *
 * admission latency (request body sent → its answer), database statements per admitted request
 * (lease transactions apart from the usage commits, by {@link PgProxy.TxTally}), and then the
 * charges in the database (every admitted request charged, no near key past its quota). Before
 * those, while both are fresh, the same Check closed loop as scenario 1 against that server and
 * against one with QUOTA_HOLDS=off (Check itself does not change with holds), alternating rounds.
 *
 * <p>Its keys have ids from {@link #ID_BASE}, far above the bench keys' (--keys never reaches
 * them), and are metered by id as Envoy does once Check has run: Check is not called for them.
 */
final class HoldsScenario {
  static final int INFLIGHT = 64;
  static final int CHANNELS = 4;

  static final long ID_BASE = 4_000_000_000L;

  /** Quota 1e-8 USD: refused at once, and the refusal names what a hold of the request costs. */
  static final long PROBE_ID = ID_BASE;

  static final long FAR_ID = ID_BASE + 1;
  static final long NEAR_FROM = ID_BASE + 2;

  static final String FAR_QUOTA = "1000000.00000000";
  static final String NEAR_QUOTA = "100.00000000";

  /**
   * What a near key has left when its first request comes, in holds: below 2 ×
   * QUOTA_LEASE_INSTANCES (6 by default), so every slice is the hold's exact need; five requests
   * are admitted, the sixth refused.
   */
  static final BigDecimal NEAR_HOLDS_LEFT = new BigDecimal("5.5");

  /** The CPU meter's group for the holds-off server ("server" is the holds-on one). */
  static final String OFF_GROUP = "server, holds off";

  private static final Pattern MAX_COST = Pattern.compile("up to ([0-9]+\\.[0-9]+) USD");

  /** One ext_proc run: what the load saw, what the proxy counted meanwhile, the CPU it took. */
  record Run(HoldsLoad.Result r, Map<String, Long> statements, Cpu.Usage cpu) {
    long admitted() {
      return r.window().admitted();
    }

    long statements(String kind) {
      return statements.getOrDefault("(" + kind + " statements)", 0L);
    }

    long transactions(String kind) {
      return statements.getOrDefault("(" + kind + " transactions)", 0L);
    }

    /** Statements of that kind per request admitted in the window; NaN when none was. */
    double perAdmitted(String kind) {
      return admitted() == 0 ? Double.NaN : (double) statements(kind) / admitted();
    }

    /** Server CPU per request answered (admitted or refused), in µs. */
    double serverCpuPerRequest() {
      long n = r.window().answered();
      return n == 0 ? 0 : cpu.of("server") / 1e3 / n;
    }
  }

  /**
   * The charges in the database once every stream ended: per run, requests admitted (warm-up
   * included) against usage_events rows; the far key's quota_used against its charges; near keys
   * charged past their quota (the guarantee: none).
   */
  record Charges(
      long farAdmitted,
      long farCharged,
      BigDecimal farUsed,
      BigDecimal farExpectedUsed,
      long nearAdmitted,
      long nearCharged,
      long nearKeysUsed,
      long nearOverQuota,
      boolean nearRanOut) {
    boolean allCharged() {
      return farAdmitted == farCharged
          && nearAdmitted == nearCharged
          && farUsed.compareTo(farExpectedUsed) == 0;
    }
  }

  /**
   * What scenario 6 measured. {@code hold} is the maximum cost of one request as the server held
   * it, {@code charge} what each was charged ({@code promptTokens} and 256 output tokens).
   */
  record Result(
      BigDecimal hold,
      BigDecimal charge,
      long promptTokens,
      Run far,
      Run near,
      Charges charges,
      List<CheckRuns.Measured> on,
      List<CheckRuns.Measured> off,
      String anomalies) {
    double checkOn() {
      return CheckRuns.median(on);
    }

    double checkOff() {
      return CheckRuns.median(off);
    }

    /** Check throughput with holds on ÷ off (medians of the rounds). */
    double checkRatio() {
      return checkOn() / checkOff();
    }

    double cpuOn() {
      return CheckRuns.cpuPerCall(on, "server");
    }

    double cpuOff() {
      return CheckRuns.cpuPerCall(off, OFF_GROUP);
    }
  }

  private final BenchRun run;

  HoldsScenario(BenchRun run) {
    this.run = run;
  }

  Result run() throws Exception {
    Options.Scale scale = run.scale;
    PgProxy proxy = run.proxy();
    // Its own proxy, so the holds-on server's counts are its own; set up the same way.
    PgProxy offProxy = run.proxy();
    int authzOn = ChildJvm.freePort();
    int meteringOn = ChildJvm.freePort();
    int authzOff = ChildJvm.freePort();
    Map<String, String> envOn = env(authzOn, meteringOn, proxy, "holds-on", "on");
    Map<String, String> envOff = env(authzOff, ChildJvm.freePort(), offProxy, "holds-off", "off");
    // Both start at once: start-ups are the group's longest wait.
    ChildJvm off = run.launchServer("server-holds-off", envOff);
    ChildJvm on = run.startServer("server-holds-on", envOn, authzOn);
    on.awaitPort(meteringOn, Duration.ofSeconds(60));
    run.loadKeys(scale.holdsCheckKeys());
    run.awaitServer(off, authzOff);

    // Check first, while both servers are in the same state: after the ext_proc runs the holds
    // server would still be giving back thousands of idle near-limit leases during the rounds.
    run.meter.add(OFF_GROUP, () -> off.process.isAlive() ? List.of(off.pid()) : List.of());
    List<CheckRuns.Measured> onRounds = new ArrayList<>();
    List<CheckRuns.Measured> offRounds = new ArrayList<>();
    try {
      checkRounds(authzOn, authzOff, onRounds, offRounds);
    } finally {
      // Stopped before the ext_proc runs, so that its shutdown does not share their CPU.
      off.close();
      run.meter.remove(OFF_GROUP);
    }

    int nearKeys = scale.holdsNearKeys();
    HoldsLoad.UntilRefused near = new HoldsLoad.UntilRefused(NEAR_FROM, NEAR_FROM + nearKeys);
    BigDecimal hold;
    BigDecimal charge;
    long prompt;
    Run farRun;
    Run nearRun;
    Charges charges;
    try (HoldsLoad load = new HoldsLoad(meteringOn, run.meteringToken, CHANNELS)) {
      try (Connection c = run.connect()) {
        run.pg.copyLimitedKeys(c, PROBE_ID, 1, "0.00000001", "0.00000000");
        run.pg.copyLimitedKeys(c, FAR_ID, 1, FAR_QUOTA, "0.00000000");
      }
      hold = probe(load);
      prompt = promptTokens(hold);
      charge =
          BigDecimal.valueOf(
              prompt * HoldsLoad.INPUT_PRICE_E8
                  + (long) HoldsLoad.MAX_TOKENS * HoldsLoad.OUTPUT_PRICE_E8,
              8);
      BigDecimal nearUsed =
          new BigDecimal(NEAR_QUOTA)
              .subtract(hold.multiply(NEAR_HOLDS_LEFT))
              .setScale(8, RoundingMode.DOWN);
      try (Connection c = run.connect()) {
        run.pg.copyLimitedKeys(c, NEAR_FROM, nearKeys, NEAR_QUOTA, nearUsed.toPlainString());
      }
      run.log(
          String.format(
              Locale.ROOT,
              "holds: one request holds %s USD (%d prompt tokens as the server counts them, %d"
                  + " output) and is charged %s USD; %s near keys with %s holds left each",
              hold.toPlainString(),
              prompt,
              HoldsLoad.MAX_TOKENS,
              charge.toPlainString(),
              Report.num(nearKeys),
              NEAR_HOLDS_LEFT.toPlainString()));
      farRun = measure(load, proxy, HoldsLoad.single(FAR_ID), prompt, "far from the limit");
      nearRun = measure(load, proxy, near, prompt, "near the limit");
      charges = charges(farRun, nearRun, charge, near, nearUsed, nearKeys);
    }
    run.stopServer(on);

    for (int r = 0; r < onRounds.size(); r++) {
      run.cpuLog.add("holds Check round " + (r + 1) + " on: " + onRounds.get(r).cpu().describe());
      run.cpuLog.add("holds Check round " + (r + 1) + " off: " + offRounds.get(r).cpu().describe());
    }
    run.cpuLog.add("holds far from the limit: " + farRun.cpu().describe());
    run.cpuLog.add("holds near the limit: " + nearRun.cpu().describe());
    String anomalies = anomalies(farRun, nearRun, charges, onRounds, offRounds);
    return new Result(
        hold, charge, prompt, farRun, nearRun, charges, onRounds, offRounds, anomalies);
  }

  /**
   * Scenario 1's closed loop against both servers after the same JIT warm-up, in alternating
   * rounds.
   */
  private void checkRounds(
      int authzOn, int authzOff, List<CheckRuns.Measured> on, List<CheckRuns.Measured> off) {
    Options o = run.o;
    Options.Scale scale = run.scale;
    CheckRuns runs = new CheckRuns(run);
    CheckTemplate template = CheckTemplate.envoyChatCompletion();
    CheckLoad.Keys keys = CheckLoad.uniform(scale.holdsCheckKeys());
    Duration settle = CheckRuns.min(Duration.ofSeconds(1), scale.warmup());
    try (CheckLoad a = new CheckLoad(authzOn, o.checkChannels, template, CheckRuns.CHECK_DEADLINE);
        CheckLoad b =
            new CheckLoad(authzOff, o.checkChannels, template, CheckRuns.CHECK_DEADLINE)) {
      warmCaches(a, b, scale.holdsCheckKeys());
      runs.jitWarmup(a, keys, CheckLoad.EXPECT_BENCH_KEYS, "server-holds-on");
      runs.jitWarmup(b, keys, CheckLoad.EXPECT_BENCH_KEYS, "server-holds-off");
      for (int r = 0; r < scale.rounds(); r++) {
        on.add(runs.closed(a, keys, CheckLoad.EXPECT_BENCH_KEYS, settle, scale.measure()));
        off.add(runs.closed(b, keys, CheckLoad.EXPECT_BENCH_KEYS, settle, scale.measure()));
        run.log(
            String.format(
                Locale.ROOT,
                "holds: Check round %d: holds on %s, holds off %s",
                r + 1,
                Report.rate(on.get(r).r().perSecond()),
                Report.rate(off.get(r).r().perSecond())));
      }
    }
  }

  /**
   * One cold Check per key on both servers at once, so that no round meets a key not yet cached (a
   * uniform warm-up can miss some).
   */
  private void warmCaches(CheckLoad a, CheckLoad b, int keys) {
    run.log("holds: one cold Check per key on both servers (" + Report.num(keys) + " keys)");
    // A cold load's deadline, not Envoy's: a key load on a busy machine must not time out.
    CheckLoad.Session sa =
        a.closedLoop(
            CheckRuns.WARM_INFLIGHT,
            CheckLoad.sequential(0, keys),
            CheckLoad.EXPECT_BENCH_KEYS,
            CheckRuns.WARM_DEADLINE);
    CheckLoad.Session sb =
        b.closedLoop(
            CheckRuns.WARM_INFLIGHT,
            CheckLoad.sequential(0, keys),
            CheckLoad.EXPECT_BENCH_KEYS,
            CheckRuns.WARM_DEADLINE);
    // Not &&: the second server is waited for even when the first ran out of time.
    boolean done = sa.awaitSourceDone(run.o.maxWarm) & sb.awaitSourceDone(run.o.maxWarm);
    sa.stopAndDrain();
    sb.stopAndDrain();
    if (!done) {
      run.problems.add("holds: warming the Check servers' caches stopped after --max-warm");
    }
  }

  private Map<String, String> env(int authz, int metering, PgProxy proxy, String name, String holds)
      throws IOException {
    Map<String, String> env = run.serverEnv(authz, "127.0.0.1:" + proxy.port(), name);
    env.putAll(run.o.serverEnv);
    env.put("QUOTA_METERING_PORT", Integer.toString(metering));
    // The one setting the two servers differ in; --server-env cannot change it.
    env.put("QUOTA_HOLDS", holds);
    return env;
  }

  /**
   * What a hold of the bench's request costs, as the server computes it (its tokenizer's prompt
   * count, the price table): the probe key's quota covers no request, and the 429 names the amount.
   */
  private BigDecimal probe(HoldsLoad load) throws InterruptedException {
    ProcessingResponse r = load.admissionAnswer(PROBE_ID);
    if (r == null || !r.hasImmediateResponse()) {
      throw new IllegalStateException(
          "the holds probe (a key with a quota of 1e-8 USD) was not refused at its request body;"
              + " the answer was: "
              + r);
    }
    String body = r.getImmediateResponse().getBody().toStringUtf8();
    Matcher m = MAX_COST.matcher(body);
    if (r.getImmediateResponse().getStatus().getCodeValue() != 429 || !m.find()) {
      throw new IllegalStateException("the holds probe's refusal names no maximum cost: " + body);
    }
    return new BigDecimal(m.group(1));
  }

  /**
   * The prompt tokens the server counted, from the hold: gpt-4o-mini's hold is (prompt × 15 + 256 ×
   * 60) × 1e-8 USD exactly. Reporting that many makes each charge its whole hold (each request
   * draws a whole hold off its lease, the hardest case near the limit); at least 1.
   */
  static long promptTokens(BigDecimal hold) {
    long units = hold.movePointRight(8).setScale(0, RoundingMode.DOWN).longValueExact();
    long output = (long) HoldsLoad.MAX_TOKENS * HoldsLoad.OUTPUT_PRICE_E8;
    return Math.max(1, (units - output) / HoldsLoad.INPUT_PRICE_E8);
  }

  private Run measure(HoldsLoad load, PgProxy proxy, HoldsLoad.Keys keys, long prompt, String what)
      throws InterruptedException {
    Options.Scale scale = run.scale;
    run.log(
        "holds: "
            + what
            + ", "
            + INFLIGHT
            + " requests in flight over "
            + CHANNELS
            + " connections");
    HoldsLoad.Session s = load.start(INFLIGHT, keys, prompt);
    ChildJvm.sleep(scale.holdsWarmup().toMillis());
    Map<String, Long> p0 = proxy.snapshot();
    Cpu.Snapshot c0 = run.meter.snap();
    s.markStart();
    run.watch(scale.holdsMeasure(), s.admitted::sum, "admitted " + what);
    s.markEnd();
    Cpu.Snapshot c1 = run.meter.snap();
    Map<String, Long> p1 = proxy.snapshot();
    HoldsLoad.Result r = s.stopAndDrain();
    Run result = new Run(r, PgProxy.delta(p0, p1), c1.since(c0));
    run.log(
        String.format(
            Locale.ROOT,
            "  %s admitted (%s), %s refused 429; admission p50 %s, p99 %s; lease statements per"
                + " admitted request %s",
            Report.num(r.window().admitted()),
            Report.rate(r.admittedPerSecond()),
            Report.num(r.window().refused429()),
            Report.p(r.admittedLatency(), 50),
            Report.p(r.admittedLatency(), 99),
            Report.perRequest(result.perAdmitted(PgProxy.TxTally.LEASE))));
    return result;
  }

  /**
   * Waits (at most 15 s) until every admitted request's charge is in usage_events, then reads the
   * far key's quota_used and the near keys' state.
   */
  private Charges charges(
      Run far,
      Run near,
      BigDecimal charge,
      HoldsLoad.UntilRefused nearKeys,
      BigDecimal nearUsed,
      int nearCount)
      throws SQLException {
    long farAdmitted = far.r().total().admitted();
    long nearAdmitted = near.r().total().admitted();
    long nearTo = NEAR_FROM + nearCount - 1;
    long farCharged;
    long nearCharged;
    long until = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    try (Connection c = run.connect()) {
      while (true) {
        farCharged = charged(c, FAR_ID, FAR_ID);
        nearCharged = charged(c, NEAR_FROM, nearTo);
        if ((farCharged >= farAdmitted && nearCharged >= nearAdmitted)
            || System.nanoTime() > until) {
          break;
        }
        ChildJvm.sleep(100);
      }
      BigDecimal farUsed;
      try (PreparedStatement ps =
          c.prepareStatement("SELECT quota_used FROM api_keys WHERE id = ?")) {
        ps.setLong(1, FAR_ID);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          farUsed = rs.getBigDecimal(1);
        }
      }
      long over;
      long used;
      try (PreparedStatement ps =
          c.prepareStatement(
              "SELECT count(*) FILTER (WHERE quota_used > quota),"
                  + " count(*) FILTER (WHERE quota_used > ?)"
                  + " FROM api_keys WHERE id BETWEEN ? AND ?")) {
        ps.setBigDecimal(1, nearUsed);
        ps.setLong(2, NEAR_FROM);
        ps.setLong(3, nearTo);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          over = rs.getLong(1);
          used = rs.getLong(2);
        }
      }
      return new Charges(
          farAdmitted,
          farCharged,
          farUsed,
          charge.multiply(BigDecimal.valueOf(farCharged)),
          nearAdmitted,
          nearCharged,
          used,
          over,
          nearKeys.ranOut());
    }
  }

  /** usage_events rows of keys [from, to]. */
  private static long charged(Connection c, long from, long to) throws SQLException {
    try (PreparedStatement ps =
        c.prepareStatement("SELECT count(*) FROM usage_events WHERE key_id BETWEEN ? AND ?")) {
      ps.setLong(1, from);
      ps.setLong(2, to);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  /** The group's anomalies, also listed under the run's. */
  private String anomalies(
      Run far, Run near, Charges ch, List<CheckRuns.Measured> on, List<CheckRuns.Measured> off) {
    List<String> out = new ArrayList<>();
    add(out, "far from the limit: ", far.r().window().anomalies());
    add(out, "near the limit: ", near.r().window().anomalies());
    if (!far.r().allDone() || !near.r().allDone()) {
      out.add("streams still open 30 s after the run");
    }
    if (ch.nearRanOut()) {
      out.add("the near run used up its keys before it ended (raise holdsNearKeys)");
    }
    if (!ch.allCharged()) {
      out.add(
          String.format(
              Locale.ROOT,
              "charges: far %s admitted, %s in usage_events, quota_used %s (expected %s); near %s"
                  + " admitted, %s in usage_events",
              ch.farAdmitted(),
              ch.farCharged(),
              ch.farUsed().toPlainString(),
              ch.farExpectedUsed().toPlainString(),
              ch.nearAdmitted(),
              ch.nearCharged()));
    }
    if (ch.nearOverQuota() > 0) {
      out.add(ch.nearOverQuota() + " near keys charged past their quota");
    }
    for (int r = 0; r < on.size(); r++) {
      add(out, "Check round " + (r + 1) + " on: ", on.get(r).r().counts().anomalies());
      add(out, "Check round " + (r + 1) + " off: ", off.get(r).r().counts().anomalies());
    }
    String s = String.join("; ", out);
    if (!s.isEmpty()) {
      run.problems.add("holds: " + s);
    }
    return s;
  }

  private static void add(List<String> out, String prefix, String anomalies) {
    if (!anomalies.isEmpty()) {
      out.add(prefix + anomalies);
    }
  }
}
