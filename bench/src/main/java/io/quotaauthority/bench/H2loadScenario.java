package io.quotaauthority.bench;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Scenario 7 (issue 19): Check driven by an independent load generator, h2load (nghttp2's HTTP/2
 * benchmark, in C, from Debian's nghttp2-client), against the same server's own empty unary call,
 * {@code grpc.health.v1.Health/Check}: the gRPC stack's limit on this machine, measured in the same
 * run. Closed loop: rounds of Check and health interleaved after a warm-up, the median round of
 * each, and the server's CPU per call from /proc. Open loop: h2load at fixed rates of a quarter and
 * half of Check's measured maximum for both, latency percentiles from h2load's per-request log.
 *
 * <p>h2load sends one body for every request, so every Check presents the same cached key (the
 * hottest path: a key whose allow response is prepared); the JVM load generator's scenario 1 keeps
 * the mixed verdicts over 10,000 keys.
 */
final class H2loadScenario {
  static final String CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

  /** Each side's warm-up, run twice and interleaved, in a full run. */
  static final Duration WARM_UP = Duration.ofSeconds(10);

  static final String HEALTH_PATH = "/grpc.health.v1.Health/Check";

  /** Everything scenario 7 measured; empty rounds when h2load could not run ({@code problem}). */
  record Result(
      List<H2load.Measured> check,
      List<H2load.Measured> health,
      List<H2load.Measured> openCheck,
      List<H2load.Measured> openHealth,
      int requestBytes,
      String command,
      String h2loadVersion,
      String problem,
      double checkBytesPerCall,
      double healthBytesPerCall) {
    double maxCheck() {
      return H2load.median(check);
    }

    double maxHealth() {
      return H2load.median(health);
    }

    double ratio() {
      return maxCheck() / maxHealth();
    }

    double cpuCheck() {
      return H2load.medianCpu(check);
    }

    double cpuHealth() {
      return H2load.medianCpu(health);
    }

    double cpuRatio() {
      return cpuCheck() / cpuHealth();
    }
  }

  private final BenchRun run;

  H2loadScenario(BenchRun run) {
    this.run = run;
  }

  Result run() throws Exception {
    Options.Scale scale = run.scale;
    H2load h2load = H2load.find(run);
    if (h2load == null) {
      String problem = "h2load not found (install Debian's nghttp2-client); scenario 7 did not run";
      run.problems.add(problem);
      return new Result(
          List.of(), List.of(), List.of(), List.of(), 0, "", "", problem, Double.NaN, Double.NaN);
    }
    int authz = ChildJvm.freePort();
    Map<String, String> env = run.serverEnv(authz, run.o.pg, "h2load");
    env.putAll(run.o.serverEnv);
    ChildJvm server = run.startServer("server-h2load", env, authz);
    try {
      run.loadKeys(Math.max(run.keysLoaded(), scale.checkKeys()));
      long key = allowedKey();
      CheckTemplate template = CheckTemplate.envoyChatCompletion();
      byte[] request = template.forKey(key);
      verifyAllowed(authz, request);
      Path checkBody = H2load.frame(run.work.resolve("h2load-check.bin"), request);
      Path healthBody = H2load.frame(run.work.resolve("h2load-health.bin"), new byte[0]);
      String url = "http://127.0.0.1:" + authz;

      // Long enough for C2 to finish both paths: with 3 s, Check's rounds still got faster one
      // after the other (45, 19, 13 µs of CPU per call), so the median measured the JIT.
      Duration warmup = run.o.smoke ? scale.warmup() : WARM_UP;
      run.log("h2load: warm-up " + warmup.toSeconds() + " s each, twice, interleaved");
      for (int i = 0; i < 2; i++) {
        h2load.closed(url + CHECK_PATH, checkBody, "check warm-up", warmup);
        h2load.closed(url + HEALTH_PATH, healthBody, "health warm-up", warmup);
      }
      List<H2load.Measured> check = new ArrayList<>();
      List<H2load.Measured> health = new ArrayList<>();
      int rounds = Math.max(scale.rounds(), run.o.smoke ? 1 : 5);
      for (int i = 0; i < rounds; i++) {
        check.add(h2load.closed(url + CHECK_PATH, checkBody, "check", scale.measure()));
        health.add(h2load.closed(url + HEALTH_PATH, healthBody, "health", scale.measure()));
      }
      double max = H2load.median(check);
      // Allocation in rounds of their own: the recording costs a little CPU.
      double checkBytes = allocatedPerCall(h2load, url + CHECK_PATH, checkBody, "check", scale);
      double healthBytes = allocatedPerCall(h2load, url + HEALTH_PATH, healthBody, "health", scale);
      List<H2load.Measured> openCheck = new ArrayList<>();
      List<H2load.Measured> openHealth = new ArrayList<>();
      for (double share : new double[] {0.25, 0.5}) {
        int rate = (int) Math.max(H2load.CLIENTS, max * share);
        openCheck.add(h2load.open(url + CHECK_PATH, checkBody, "check", rate, scale.openMeasure()));
        openHealth.add(
            h2load.open(url + HEALTH_PATH, healthBody, "health", rate, scale.openMeasure()));
      }
      return new Result(
          check,
          health,
          openCheck,
          openHealth,
          request.length,
          h2load.command("URL", Path.of("BODY"), Duration.ofSeconds(5)),
          h2load.version(),
          null,
          checkBytes,
          healthBytes);
    } finally {
      run.stopServer(server);
    }
  }

  /**
   * The first bench key with a quota that Check allows (BenchKeys' mix has exhausted and expired
   * ones): the decision with the most to do, the pending-usage lookup and the remaining header.
   */
  static long allowedKey() {
    for (long i = 0; ; i++) {
      if (BenchKeys.kind(i) == BenchKeys.Kind.LIMITED) {
        return i;
      }
    }
  }

  /** One Check through grpc-java first: h2load sees HTTP 200 even for a denial's status. */
  static void verifyAllowed(int port, byte[] request) throws IOException {
    ManagedChannel channel =
        NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    try {
      CheckResponse r =
          AuthorizationGrpc.newBlockingStub(channel)
              .withDeadlineAfter(10, TimeUnit.SECONDS)
              .check(CheckRequest.parseFrom(request));
      if (r.getStatus().getCode() != 0) {
        throw new IllegalStateException("the h2load key is not allowed: " + r.getStatus());
      }
    } finally {
      channel.shutdownNow();
    }
  }

  /**
   * Bytes the whole server allocated per call (gRPC, Netty and ours) over one closed-loop round,
   * from a JFR recording's per-thread allocation counters.
   */
  private double allocatedPerCall(
      H2load h2load, String url, Path body, String what, Options.Scale scale) throws Exception {
    long pid = run.serverPid();
    Path file = run.work.resolve("h2load-alloc-" + what + ".jfr");
    String name = "alloc-" + what;
    Jfr.start(pid, name, file, "default");
    H2load.Measured m;
    try {
      // The recording's own start-up work is counted against its first seconds' calls: a round
      // twice as long as the others keeps that a small share.
      m = h2load.closed(url, body, what + " (allocation)", scale.measure().multipliedBy(2));
    } finally {
      Jfr.stop(pid, name);
    }
    double perCall = (double) Jfr.allocatedBytes(file) / Math.max(1, m.succeeded());
    run.log(String.format(Locale.ROOT, "h2load %s: %.0f bytes allocated per call", what, perCall));
    return perCall;
  }
}
