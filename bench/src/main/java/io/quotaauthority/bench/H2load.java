package io.quotaauthority.bench;

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
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * h2load (nghttp2's HTTP/2 benchmark, in C, from Debian's nghttp2-client) driving unary gRPC calls
 * at the bench's server: closed-loop rounds and fixed-rate runs, each with the server's CPU per
 * call from /proc. The independent driver of scenarios 7 and 8.
 */
final class H2load {
  /** Connections and streams per connection: 128 calls in flight, as scenario 1. */
  static final int CLIENTS = 4;

  static final int STREAMS = 32;

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

  private final BenchRun run;
  private final String binary;

  private H2load(BenchRun run, String binary) {
    this.run = run;
    this.binary = binary;
  }

  /** h2load on the PATH, installed from Debian when missing and this is root; null otherwise. */
  static H2load find(BenchRun run) throws IOException, InterruptedException {
    for (String dir : List.of("/usr/bin", "/usr/local/bin")) {
      if (Files.isExecutable(Path.of(dir, "h2load"))) {
        return new H2load(run, dir + "/h2load");
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
    return Files.isExecutable(Path.of("/usr/bin/h2load"))
        ? new H2load(run, "/usr/bin/h2load")
        : null;
  }

  /** A gRPC length-prefixed message (uncompressed) in a file, h2load's request body. */
  static Path frame(Path file, byte[] message) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(5 + message.length);
    b.put((byte) 0).putInt(message.length).put(message);
    Files.write(file, b.array());
    return file;
  }

  /**
   * The command line of a closed-loop run, for the report ({@code url} and {@code body} as given).
   */
  String command(String url, Path body, Duration d) {
    return String.join(" ", command(binary, url, body, d));
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

  /** As many calls as 128 in flight allow, for {@code d}. */
  Measured closed(String url, Path body, String what, Duration d)
      throws IOException, InterruptedException {
    return measure(what, command(binary, url, body, d), null);
  }

  /**
   * h2load at {@code rate} requests per second in all ({@code --rps} is per client), latency from
   * its per-request log.
   */
  Measured open(String url, Path body, String what, int rate, Duration d)
      throws IOException, InterruptedException {
    List<String> cmd = command(binary, url, body, d);
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

  String version() throws IOException, InterruptedException {
    Process p = new ProcessBuilder(binary, "--version").redirectErrorStream(true).start();
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
