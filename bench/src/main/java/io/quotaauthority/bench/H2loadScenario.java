package io.quotaauthority.bench;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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
  /** Connections and streams per connection: 128 calls in flight, as scenario 1. */
  static final int CLIENTS = 4;

  static final int STREAMS = 32;

  static final String CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

  /** Each side's warm-up, run twice and interleaved, in a full run. */
  static final Duration WARM_UP = Duration.ofSeconds(10);

  static final String HEALTH_PATH = "/grpc.health.v1.Health/Check";

  /** One h2load run: what it reported, and the server CPU it cost. */
  record Measured(
      String what,
      double perSecond,
      long succeeded,
      long failed,
      double serverCpuMicrosPerCall,
      double p50Micros,
      double p99Micros,
      double p999Micros) {}

  /** Everything scenario 7 measured; empty rounds when h2load could not run ({@code problem}). */
  record Result(
      List<Measured> check,
      List<Measured> health,
      List<Measured> openCheck,
      List<Measured> openHealth,
      int requestBytes,
      String command,
      String h2loadVersion,
      String problem,
      double checkBytesPerCall,
      double healthBytesPerCall) {
    double maxCheck() {
      return median(check);
    }

    double maxHealth() {
      return median(health);
    }

    double ratio() {
      return maxCheck() / maxHealth();
    }

    double cpuCheck() {
      return medianCpu(check);
    }

    double cpuHealth() {
      return medianCpu(health);
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
    String h2load = h2load();
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
      Path checkBody = frame(run.work.resolve("h2load-check.bin"), request);
      Path healthBody = frame(run.work.resolve("h2load-health.bin"), new byte[0]);
      String url = "http://127.0.0.1:" + authz;

      // Long enough for C2 to finish both paths: with 3 s, Check's rounds still got faster one
      // after the other (45, 19, 13 µs of CPU per call), so the median measured the JIT.
      Duration warmup = run.o.smoke ? scale.warmup() : WARM_UP;
      run.log("h2load: warm-up " + warmup.toSeconds() + " s each, twice, interleaved");
      for (int i = 0; i < 2; i++) {
        closed(h2load, url + CHECK_PATH, checkBody, "check warm-up", warmup);
        closed(h2load, url + HEALTH_PATH, healthBody, "health warm-up", warmup);
      }
      List<Measured> check = new ArrayList<>();
      List<Measured> health = new ArrayList<>();
      int rounds = Math.max(scale.rounds(), run.o.smoke ? 1 : 5);
      for (int i = 0; i < rounds; i++) {
        check.add(closed(h2load, url + CHECK_PATH, checkBody, "check", scale.measure()));
        health.add(closed(h2load, url + HEALTH_PATH, healthBody, "health", scale.measure()));
      }
      double max = median(check);
      // Allocation in rounds of their own: the recording costs a little CPU.
      double checkBytes = allocatedPerCall(h2load, url + CHECK_PATH, checkBody, "check", scale);
      double healthBytes = allocatedPerCall(h2load, url + HEALTH_PATH, healthBody, "health", scale);
      List<Measured> openCheck = new ArrayList<>();
      List<Measured> openHealth = new ArrayList<>();
      for (double share : new double[] {0.25, 0.5}) {
        int rate = (int) Math.max(CLIENTS, max * share);
        openCheck.add(
            open(h2load, url + CHECK_PATH, checkBody, "check", rate, scale.openMeasure()));
        openHealth.add(
            open(h2load, url + HEALTH_PATH, healthBody, "health", rate, scale.openMeasure()));
      }
      return new Result(
          check,
          health,
          openCheck,
          openHealth,
          request.length,
          String.join(" ", command(h2load, "URL", Path.of("BODY"), Duration.ofSeconds(5))),
          version(h2load),
          null,
          checkBytes,
          healthBytes);
    } finally {
      run.stopServer(server);
    }
  }

  /** h2load on the PATH, installed from Debian when missing and this is root; null otherwise. */
  private String h2load() throws IOException, InterruptedException {
    for (String dir : List.of("/usr/bin", "/usr/local/bin")) {
      if (Files.isExecutable(Path.of(dir, "h2load"))) {
        return dir + "/h2load";
      }
    }
    if (!"root".equals(System.getProperty("user.name"))) {
      return null;
    }
    run.log("h2load missing: apt-get install nghttp2-client");
    Process p =
        new ProcessBuilder(
                "sh",
                "-c",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
                    + " nghttp2-client || (apt-get update && DEBIAN_FRONTEND=noninteractive"
                    + " apt-get install -y --no-install-recommends nghttp2-client)")
            .redirectErrorStream(true)
            .redirectOutput(run.work.resolve("apt-nghttp2.log").toFile())
            .start();
    p.waitFor(10, TimeUnit.MINUTES);
    return Files.isExecutable(Path.of("/usr/bin/h2load")) ? "/usr/bin/h2load" : null;
  }

  /**
   * The first bench key with a quota that Check allows (BenchKeys' mix has exhausted and expired
   * ones): the decision with the most to do, the pending-usage lookup and the remaining header.
   */
  private static long allowedKey() {
    for (long i = 0; ; i++) {
      if (BenchKeys.kind(i) == BenchKeys.Kind.LIMITED) {
        return i;
      }
    }
  }

  /** One Check through grpc-java first: h2load sees HTTP 200 even for a denial's status. */
  private static void verifyAllowed(int port, byte[] request) throws IOException {
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

  /** A gRPC length-prefixed message (uncompressed) in a file, h2load's request body. */
  static Path frame(Path file, byte[] message) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(5 + message.length);
    b.put((byte) 0).putInt(message.length).put(message);
    Files.write(file, b.array());
    return file;
  }

  private static List<String> command(String h2load, String url, Path body, Duration d) {
    return new ArrayList<>(
        List.of(
            h2load,
            "-c",
            Integer.toString(CLIENTS),
            "-m",
            Integer.toString(STREAMS),
            "-t",
            "1",
            "-D",
            Long.toString(Math.max(1, d.toSeconds())),
            "-d",
            body.toString(),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            // Envoy's ext_authz sends its timeout; the server reads it for cold loads only.
            "-H",
            "grpc-timeout: 250m",
            url));
  }

  /**
   * Bytes the whole server allocated per call (gRPC, Netty and ours) over one closed-loop round,
   * from a JFR recording's per-thread allocation counters.
   */
  private double allocatedPerCall(
      String h2load, String url, Path body, String what, Options.Scale scale) throws Exception {
    long pid = run.serverPid();
    Path file = run.work.resolve("h2load-alloc-" + what + ".jfr");
    String name = "alloc-" + what;
    Jfr.start(pid, name, file, "default");
    Measured m;
    try {
      // The recording's own start-up work is counted against its first seconds' calls: a round
      // twice as long as the others keeps that a small share.
      m = closed(h2load, url, body, what + " (allocation)", scale.measure().multipliedBy(2));
    } finally {
      Jfr.stop(pid, name);
    }
    double perCall = (double) Jfr.allocatedBytes(file) / Math.max(1, m.succeeded());
    run.log(String.format(Locale.ROOT, "h2load %s: %.0f bytes allocated per call", what, perCall));
    return perCall;
  }

  private Measured closed(String h2load, String url, Path body, String what, Duration d)
      throws IOException, InterruptedException {
    return measure(what, command(h2load, url, body, d), null);
  }

  /**
   * h2load at {@code rate} requests per second in all ({@code --rps} is per client), latency from
   * its per-request log.
   */
  private Measured open(String h2load, String url, Path body, String what, int rate, Duration d)
      throws IOException, InterruptedException {
    List<String> cmd = command(h2load, url, body, d);
    Path log = run.work.resolve("h2load-" + what + "-" + rate + ".log");
    cmd.addAll(
        cmd.size() - 1,
        List.of(
            "--rps", Integer.toString(Math.max(1, rate / CLIENTS)), "--log-file", log.toString()));
    return measure(what + " at " + rate + "/s", cmd, log);
  }

  private static final Pattern FINISHED =
      Pattern.compile("finished in ([0-9.]+)(m?s), ([0-9.]+) req/s");
  private static final Pattern REQUESTS =
      Pattern.compile(
          "requests: \\d+ total, \\d+ started, (\\d+) done, (\\d+) succeeded, (\\d+) failed, (\\d+) errored");

  private Measured measure(String what, List<String> cmd, Path log)
      throws IOException, InterruptedException {
    long pid = run.serverPid();
    long cpuBefore = Cpu.processNanos(pid);
    Process h2 = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(h2.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    h2.waitFor(5, TimeUnit.MINUTES);
    long cpu = Cpu.processNanos(pid) - cpuBefore;
    Matcher f = FINISHED.matcher(out);
    Matcher r = REQUESTS.matcher(out);
    if (!f.find() || !r.find()) {
      throw new IllegalStateException("h2load output not understood:\n" + out);
    }
    long succeeded = Long.parseLong(r.group(2));
    long failed = Long.parseLong(r.group(3)) + Long.parseLong(r.group(4));
    double perSecond = Double.parseDouble(f.group(3));
    double[] p = log == null ? new double[] {Double.NaN, Double.NaN, Double.NaN} : percentiles(log);
    Measured m =
        new Measured(
            what,
            perSecond,
            succeeded,
            failed,
            succeeded == 0 ? Double.NaN : cpu / 1e3 / succeeded,
            p[0],
            p[1],
            p[2]);
    run.log(
        String.format(
            Locale.ROOT,
            "h2load %s: %.0f/s, %d ok, %d failed, %.1f µs server CPU per call%s",
            what,
            perSecond,
            succeeded,
            failed,
            m.serverCpuMicrosPerCall(),
            log == null
                ? ""
                : String.format(Locale.ROOT, ", p50 %.0f µs, p99 %.0f µs", p[0], p[1])));
    if (failed > 0) {
      run.problems.add("h2load " + what + ": " + failed + " requests failed");
    }
    return m;
  }

  /** p50, p99, p99.9 of the durations (µs, third column) in an h2load --log-file. */
  static double[] percentiles(Path log) throws IOException {
    List<String> lines = Files.readAllLines(log);
    long[] d = new long[lines.size()];
    int n = 0;
    for (String line : lines) {
      String[] cols = line.split("\t");
      if (cols.length >= 3 && cols[1].equals("200")) {
        d[n++] = Long.parseLong(cols[2].trim());
      }
    }
    if (n == 0) {
      return new double[] {Double.NaN, Double.NaN, Double.NaN};
    }
    long[] sorted = Arrays.copyOf(d, n);
    Arrays.sort(sorted);
    return new double[] {at(sorted, 0.50), at(sorted, 0.99), at(sorted, 0.999)};
  }

  private static double at(long[] sorted, double q) {
    int i = (int) Math.ceil(q * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
  }

  private static String version(String h2load) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(h2load, "--version").redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    p.waitFor(10, TimeUnit.SECONDS);
    return out.lines().findFirst().orElse("");
  }

  static double median(List<Measured> runs) {
    double[] v = runs.stream().mapToDouble(Measured::perSecond).sorted().toArray();
    return v.length == 0 ? Double.NaN : v[v.length / 2];
  }

  static double medianCpu(List<Measured> runs) {
    double[] v = runs.stream().mapToDouble(Measured::serverCpuMicrosPerCall).sorted().toArray();
    return v.length == 0 ? Double.NaN : v[v.length / 2];
  }
}
