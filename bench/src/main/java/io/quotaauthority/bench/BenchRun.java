package io.quotaauthority.bench;

import io.grpc.ClientInterceptor;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;

/**
 * What every scenario shares, in one place: the options, the bench database (created here, keys
 * written with COPY, dropped by {@link Cleanup}), the child JVMs (the server under test, the no-op
 * baseline, the memory probe) and their cleanup, the CPU meter, the log, and the run's conditions
 * (CPU split per measured window, settings shown, anomalies) in the order they were observed.
 *
 * <p>It holds the state of the machine under test (which keys are in the database, which JVMs run),
 * never a scenario's results: each scenario returns those in a record.
 */
final class BenchRun {
  final Options o;
  final Options.Scale scale;
  final PgAdmin pg;
  final Path work;
  final String db;
  final String reporterToken = token();

  /** Every server's metering token: the holds group plays Envoy's ext_proc with it. */
  final String meteringToken = token();

  final String classpath = System.getProperty("java.class.path");
  final Cpu.Meter meter;

  /** CPU split lines for the Run conditions section, in the order measured. */
  final List<String> cpuLog = new ArrayList<>();

  /** Anomalies, in the order seen: rendered in Run conditions and logged at the end. */
  final List<String> problems = new ArrayList<>();

  /** Every server's environment as started, tokens and passwords left out. */
  final Map<String, String> serverSettingsShown = new LinkedHashMap<>();

  private final Cleanup cleanup;
  private final long started;
  final String adminToken = token();
  private final Connection monitor;
  private volatile long serverPid = -1;
  private volatile long baselinePid = -1;

  /**
   * Keys [0, keysLoaded) are in api_keys: a later phase that needs more adds only the missing ones.
   */
  private int keysLoaded;

  private BenchRun(Options o, Cleanup cleanup, long started) throws IOException, SQLException {
    this.o = o;
    this.scale = o.scale();
    this.cleanup = cleanup;
    this.started = started;
    this.pg = new PgAdmin(o.pg, o.pgUser);
    this.work = o.work.toAbsolutePath();
    Files.createDirectories(work);
    if (!Files.isRegularFile(o.serverJar)) {
      throw new IllegalStateException(
          "no server jar at " + o.serverJar + ": build first with mvn -B -q package -DskipTests");
    }
    log("quota-bench " + (o.smoke ? "SMOKE" : "full") + " run; logs and recordings in " + work);
    for (String orphan : pg.dropOrphans()) {
      log("dropped " + orphan + ", left behind by a bench that was killed");
    }
    this.db =
        "qa_bench_" + ProcessHandle.current().pid() + "_" + System.currentTimeMillis() % 1_000_000;
    pg.createDatabase(db);
    cleanup.add(
        () -> {
          pg.dropDatabase(db);
          log("dropped database " + db);
        });
    log("created database " + db + " on " + o.pg);
    this.monitor = pg.connect("postgres");
    cleanup.add(monitor::close);
    this.meter =
        new Cpu.Meter()
            .add("server", () -> serverPid > 0 ? List.of(serverPid) : List.of())
            .add("baseline", () -> baselinePid > 0 ? List.of(baselinePid) : List.of())
            .add("load generator", () -> List.of(ProcessHandle.current().pid()))
            .add("postgres (bench db)", () -> PgAdmin.backendPids(monitor, db));
  }

  /** Creates the bench database and the meter; everything made is undone by {@code cleanup}. */
  static BenchRun open(Options o, Cleanup cleanup, long started) throws IOException, SQLException {
    return new BenchRun(o, cleanup, started);
  }

  // ---- processes ----

  long serverPid() {
    return serverPid;
  }

  long baselinePid() {
    return baselinePid;
  }

  /**
   * Starts the server jar with {@code env} and waits until its authz port answers: the server the
   * CPU meter's "server" group counts.
   */
  ChildJvm startServer(String name, Map<String, String> env, int authzPort) {
    ChildJvm server = launchServer(name, env);
    serverPid = server.pid();
    awaitServer(server, authzPort);
    return server;
  }

  /**
   * Starts the server jar with {@code env} and returns at once: a second server beside the one
   * {@link #startServer} started, which the "server" CPU group does not count (the caller adds a
   * group of its own). Stopped by cleanup, or by the caller with {@link ChildJvm#close}.
   */
  ChildJvm launchServer(String name, Map<String, String> env) {
    log("starting " + name + ": java " + String.join(" ", o.jvmOpts) + " -jar " + o.serverJar);
    ChildJvm server =
        ChildJvm.start(name, o.jvmOpts, List.of("-jar", o.serverJar.toString()), env, work);
    cleanup.add(server::close);
    env.forEach(
        (k, v) -> {
          if (!k.endsWith("_TOKEN") && !k.equals("QUOTA_DB_PASSWORD")) {
            serverSettingsShown.put(name + ": " + k, v);
          }
        });
    return server;
  }

  /** Waits until a server {@link #launchServer} started answers on its authz port. */
  void awaitServer(ChildJvm server, int authzPort) {
    server.awaitPort(authzPort, Duration.ofMinutes(3));
    log(server.name + " up (pid " + server.pid() + ", authz port " + authzPort + ")");
  }

  /**
   * Starts a server as {@link #startServer} does, with every key of the run ({@code
   * scale.totalKeys()}) in the database and cached at its start: in the full run the earlier
   * scenarios loaded them, and an instance caching a million keys also re-reads them in the
   * background, so a scenario run alone with {@code --only} measures under the same load. The
   * schema is the server's, so when keys are missing the first start migrates it, the keys are
   * copied, and the server starts again.
   */
  ChildJvm startServerWithAllKeys(String name, Map<String, String> env, int authzPort)
      throws SQLException {
    ChildJvm server = startServer(name, env, authzPort);
    if (keysLoaded < scale.totalKeys()) {
      loadKeys(scale.totalKeys());
      stopServer(server);
      server = startServer(name, env, authzPort);
    }
    awaitServing(server, authzPort);
    return server;
  }

  /**
   * Waits until the server on {@code channel} reports SERVING on gRPC health: its cache is filled
   * (every live key, in pages) and it listens for changes. Measuring before that would measure the
   * fill beside the load.
   */
  static void awaitServing(ManagedChannel channel, String name) {
    HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel);
    long t0 = System.nanoTime();
    while (true) {
      try {
        if (health
                .withDeadlineAfter(2, TimeUnit.SECONDS)
                .check(HealthCheckRequest.getDefaultInstance())
                .getStatus()
            == HealthCheckResponse.ServingStatus.SERVING) {
          return;
        }
      } catch (StatusRuntimeException e) {
        // Not up yet, or its health deadline passed under load: ask again.
      }
      if (System.nanoTime() - t0 > TimeUnit.MINUTES.toNanos(3)) {
        throw new IllegalStateException(name + " not ready within 3 minutes");
      }
      ChildJvm.sleep(20);
    }
  }

  /** {@link #awaitServing} for a server on this host's {@code authzPort}. */
  void awaitServing(ChildJvm server, int authzPort) {
    ManagedChannel channel =
        NettyChannelBuilder.forAddress("127.0.0.1", authzPort).usePlaintext().build();
    try {
      awaitServing(channel, server.name);
      log(server.name + " ready (SERVING)");
    } finally {
      channel.shutdownNow();
    }
  }

  void stopServer(ChildJvm server) {
    server.close();
    serverPid = -1;
  }

  /** The Check server's metrics port (scenarios 1, 4, 5), or -1. */
  int checkMetricsPort = -1;

  /** quota_keys_loads_total from a server's /metrics. */
  static long coldLoads(int metricsPort) throws Exception {
    double loads = metric(metricsPort, "quota_keys_loads_total");
    if (loads < 0) {
      throw new IllegalStateException("no quota_keys_loads_total in /metrics");
    }
    return (long) loads;
  }

  /** An untagged counter or gauge from a server's /metrics, or -1 when it has none of that name. */
  static double metric(int metricsPort, String name) throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    String body =
        http.send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort + "/metrics"))
                    .timeout(Duration.ofSeconds(10))
                    .build(),
                HttpResponse.BodyHandlers.ofString())
            .body();
    for (String line : body.split("\n")) {
      if (line.startsWith(name + " ") || line.startsWith(name + "{")) {
        return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return -1;
  }

  /** The environment of a server on the bench database at {@code pgHostPort}. */
  Map<String, String> serverEnv(int authzPort, String pgHostPort, String name) throws IOException {
    Map<String, String> env = new LinkedHashMap<>();
    env.put(
        "QUOTA_DB_URL",
        "jdbc:postgresql://" + pgHostPort + "/" + db + "?sslmode=disable&gssEncMode=disable");
    env.put("QUOTA_DB_USER", o.pgUser);
    env.put("QUOTA_AUTHZ_PORT", Integer.toString(authzPort));
    env.put("QUOTA_ADMIN_PORT", Integer.toString(ChildJvm.freePort()));
    env.put("QUOTA_METRICS_PORT", "0");
    env.put("QUOTA_CONSOLE_PORT", "0");
    // Any free port, so two servers never fight over the 9194 default; the holds group, which
    // meters, sets one it knows.
    env.put("QUOTA_METERING_PORT", "0");
    env.put("QUOTA_ADMIN_TOKEN", adminToken);
    env.put("QUOTA_REPORTER_TOKEN", reporterToken);
    env.put("QUOTA_METERING_TOKEN", meteringToken);
    Path data = work.resolve("data-" + name);
    Files.createDirectories(data);
    env.put("QUOTA_DATA_DIR", data.toString());
    return env;
  }

  /** Sends {@code authorization: Bearer <token>} on every call, as the server's ports expect. */
  static ClientInterceptor bearer(String token) {
    Metadata headers = new Metadata();
    headers.put(
        Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
    return MetadataUtils.newAttachHeadersInterceptor(headers);
  }

  /** Starts the no-op ext_authz baseline on {@code port}; stop it with {@link #stopBaseline}. */
  Cleanup.Action startBaseline(int port) {
    ChildJvm baseline =
        ChildJvm.start(
            "baseline",
            o.jvmOpts,
            List.of("-cp", classpath, NoopAuthzServer.class.getName(), Integer.toString(port)),
            Map.of(),
            work);
    Cleanup.Action stop = baseline::close;
    cleanup.add(stop);
    baselinePid = baseline.pid();
    baseline.awaitPort(port, Duration.ofSeconds(60));
    log("baseline (no-op ext_authz) up on port " + port);
    return stop;
  }

  void stopBaseline(Cleanup.Action stop) {
    cleanup.runNow(stop);
    baselinePid = -1;
  }

  /** The counting proxy in front of the bench's PostgreSQL, closed by cleanup. */
  PgProxy proxy() throws IOException {
    String host = o.pg.substring(0, o.pg.lastIndexOf(':'));
    int port = Integer.parseInt(o.pg.substring(o.pg.lastIndexOf(':') + 1));
    PgProxy proxy = new PgProxy(new InetSocketAddress(host, port));
    cleanup.add(proxy::close);
    return proxy;
  }

  /**
   * Runs a child JVM to its end (at most {@code minutes}); if it fails, throws "{@code what}
   * failed" with its log's tail.
   */
  ChildJvm runToEnd(
      String name, String what, List<String> jvmOptions, List<String> args, long minutes)
      throws InterruptedException {
    ChildJvm child = ChildJvm.start(name, jvmOptions, args, Map.of(), work);
    Cleanup.Action stop = child::close;
    cleanup.add(stop);
    if (!child.process.waitFor(minutes, TimeUnit.MINUTES) || child.process.exitValue() != 0) {
      cleanup.runNow(stop);
      throw new IllegalStateException(what + " failed:\n" + child.tail(40));
    }
    cleanup.runNow(stop);
    return child;
  }

  // ---- database ----

  Connection connect() throws SQLException {
    return pg.connect(db);
  }

  /** Committed transactions of the bench database (read from another one, so not counted). */
  long xactCommit() throws SQLException {
    return PgAdmin.xactCommit(monitor, db);
  }

  int keysLoaded() {
    return keysLoaded;
  }

  /**
   * Writes keys [0, n) unless they are there (the schema is the server's: call after it started).
   */
  double loadKeys(int n) throws SQLException {
    if (keysLoaded >= n) {
      return 0;
    }
    log("loading " + Report.num(n) + " keys with COPY");
    long t = System.nanoTime();
    double seconds;
    try (Connection c = pg.connect(db)) {
      pg.copyKeys(c, keysLoaded, n, Instant.now());
      seconds = (System.nanoTime() - t) / 1e9;
      // Autovacuum's first pass over freshly copied rows (hint bits, the visibility map, the
      // statistics) takes PostgreSQL most of a core for minutes at a million keys: done now, not
      // during the measurements that follow (it showed as 0.3-0.5 cores of "postgres" in Check
      // rounds that send PostgreSQL nothing).
      long v = System.nanoTime();
      try (Statement st = c.createStatement()) {
        st.execute("VACUUM (ANALYZE) api_keys");
      }
      log(
          String.format(
              Locale.ROOT,
              "keys loaded in %.1f s, vacuumed in %.1f s",
              seconds,
              (System.nanoTime() - v) / 1e9));
    }
    keysLoaded = n;
    return seconds;
  }

  // ---- log and time ----

  double elapsed() {
    return (System.nanoTime() - started) / 1e9;
  }

  void log(String msg) {
    System.out.printf(Locale.ROOT, "[%6.1fs] %s%n", elapsed(), msg);
    System.out.flush();
  }

  /** Sleeps for {@code d}; with --verbose, prints the counter's rate every second meanwhile. */
  void watch(Duration d, LongSupplier counter, String what) {
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
      log(
          String.format(
              Locale.ROOT, "  %s: %s", what, Report.rate((v - last) / ((now - lastAt) / 1e9))));
      last = v;
      lastAt = now;
    }
  }

  /**
   * A JFR recording named {@code recording} of {@code pid} into {@code <work>/<file>.jfr} while
   * {@code during} runs (it returns the rate measured meanwhile), summarized for the report.
   */
  Profile profile(long pid, String recording, String file, DoubleSupplier during)
      throws IOException {
    Path path = work.resolve(file + ".jfr");
    Files.deleteIfExists(path);
    Jfr.start(pid, recording, path);
    double rate = during.getAsDouble();
    Jfr.stop(pid, recording);
    return new Profile(rate, Jfr.summarize(path, 15));
  }

  /** A JFR recording summarized, with the rate of the run it recorded. */
  record Profile(double rate, Jfr.Summary summary) {}

  private static String token() {
    byte[] b = new byte[24];
    new SecureRandom().nextBytes(b);
    return "bench-" + HexFormat.of().formatHex(b);
  }
}
