package io.quotaauthority.bench;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Command line of {@code java -jar bench/target/quota-bench.jar}. */
final class Options {
  static final String USAGE =
      """
      usage: java -jar bench/target/quota-bench.jar [options]   (run from the repository root)

        --out FILE             write the Markdown report there (the full run documents bench/RESULTS.md)
        --smoke                every scenario at tiny scale, a few seconds each; figures only
        --server-jar FILE      default: server/target/quota-authority.jar next to this bench jar
        --pg HOST:PORT         PostgreSQL on a loopback address (default 127.0.0.1:5432), user below,
                               trust auth; the bench creates a fresh database there and drops it after
        --pg-user NAME         default postgres
        --jvm-opts "OPTS"      JVM options of the server and of the baseline (default: %s)
        --server-env K=V       extra environment for the Check server, both holds servers and
                               scenario 10's two
                               (repeatable; the holds servers' QUOTA_HOLDS is the bench's)
        --ingest-env K=V       environment of the ingest server, replacing the tuned defaults
                               (repeatable; default: %s)
        --keys N               keys in the database, the largest scaling step (default 1000000)
        --check-channels N     connections of the Check load generator (default 4)
        --check-inflight N     calls in flight in the closed loop, over all connections (default 128)
        --only LIST            run only these scenario groups, comma-separated: check (1, 4, 5),
                               h2load (7), ingest (2), soak (9), memory (3), holds (6),
                               policies (8), propagation (10); default all
        --soak-seconds N       length of the ingest soak (default 600; --smoke 5)
        --max-warm SECONDS     longest one cache-warming step may take before the bench moves on
                               (default 180; warming 1M keys is 1M cold loads)
        --no-profile           skip the JFR recordings (--smoke skips them unless --profile is given)
        --profile              record JFR profiles in --smoke too
        --verbose              print the rate of every second of every measured window
        --work DIR             logs and recordings (default: bench/target/bench-run)
      """;

  static final String DEFAULT_JVM_OPTS =
      "-Xms2g -Xmx4g -XX:+UseG1GC -XX:+UnlockDiagnosticVMOptions -XX:+DebugNonSafepoints";

  /** The settings the ingest server runs with unless --ingest-env says otherwise. */
  static final Map<String, String> DEFAULT_INGEST_ENV = new LinkedHashMap<>();

  static {
    DEFAULT_INGEST_ENV.put("QUOTA_USAGE_COMMIT_MAX", "2000");
    DEFAULT_INGEST_ENV.put("QUOTA_USAGE_COMMIT_INTERVAL", "5ms");
    DEFAULT_INGEST_ENV.put("QUOTA_USAGE_QUEUE_MAX", "50000");
    DEFAULT_INGEST_ENV.put("QUOTA_DB_POOL_SIZE", "8");
    DEFAULT_INGEST_ENV.put("QUOTA_USAGE_COMMITTERS", "2");
  }

  boolean smoke;
  Path out;
  Path serverJar;
  String pg = "127.0.0.1:5432";
  String pgUser = "postgres";
  List<String> jvmOpts = split(DEFAULT_JVM_OPTS);
  Map<String, String> serverEnv = new LinkedHashMap<>();
  Map<String, String> ingestEnv = new LinkedHashMap<>(DEFAULT_INGEST_ENV);
  boolean ingestEnvGiven;
  Integer keys;
  int checkChannels = 4;
  int checkInflight = 128;
  boolean profile;
  private Boolean profileFlag;
  boolean verbose;
  Duration maxWarm = Duration.ofSeconds(180);
  static final List<String> GROUPS =
      List.of("check", "h2load", "ingest", "soak", "memory", "holds", "policies", "propagation");

  /** --soak-seconds, or null for the scale's own (600 s, 5 s in --smoke). */
  Integer soakSeconds;

  Set<String> only = new LinkedHashSet<>(GROUPS);
  Path work;
  final List<String> raw = new ArrayList<>();

  static Options parse(String[] args) {
    Options o = new Options();
    o.raw.addAll(List.of(args));
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--smoke" -> o.smoke = true;
        case "--no-profile" -> o.profileFlag = Boolean.FALSE;
        case "--profile" -> o.profileFlag = Boolean.TRUE;
        case "--verbose" -> o.verbose = true;
        case "--max-warm" -> o.maxWarm = Duration.ofSeconds(Long.parseLong(value(args, ++i, a)));
        case "--out" -> o.out = Path.of(value(args, ++i, a));
        case "--server-jar" -> o.serverJar = Path.of(value(args, ++i, a));
        case "--pg" -> o.pg = value(args, ++i, a);
        case "--pg-user" -> o.pgUser = value(args, ++i, a);
        case "--jvm-opts" -> o.jvmOpts = split(value(args, ++i, a));
        case "--server-env" -> put(o.serverEnv, value(args, ++i, a));
        case "--ingest-env" -> {
          if (!o.ingestEnvGiven) {
            o.ingestEnv.clear();
            o.ingestEnvGiven = true;
          }
          put(o.ingestEnv, value(args, ++i, a));
        }
        case "--keys" -> o.keys = Integer.parseInt(value(args, ++i, a));
        case "--soak-seconds" -> o.soakSeconds = Integer.parseInt(value(args, ++i, a));
        case "--check-channels" -> o.checkChannels = Integer.parseInt(value(args, ++i, a));
        case "--check-inflight" -> o.checkInflight = Integer.parseInt(value(args, ++i, a));
        case "--work" -> o.work = Path.of(value(args, ++i, a));
        case "--only" -> {
          o.only.clear();
          for (String part : value(args, ++i, a).split(",")) {
            if (!GROUPS.contains(part.trim())) {
              throw new IllegalArgumentException(
                  "--only takes " + String.join(", ", GROUPS) + "; not " + part);
            }
            o.only.add(part.trim());
          }
        }
        case "--help", "-h" -> {
          System.out.print(String.format(USAGE, DEFAULT_JVM_OPTS, DEFAULT_INGEST_ENV));
          System.exit(0);
        }
        default -> throw new IllegalArgumentException("unknown option " + a + " (see --help)");
      }
    }
    o.profile = o.profileFlag != null ? o.profileFlag : !o.smoke;
    o.requireLoopback();
    Path jarDir = benchJarDir();
    if (o.serverJar == null) {
      Path nextToBench =
          jarDir == null
              ? null
              : jarDir.resolve("../../server/target/quota-authority.jar").normalize();
      o.serverJar =
          nextToBench != null && Files.exists(nextToBench)
              ? nextToBench
              : Path.of("server/target/quota-authority.jar");
    }
    if (o.work == null) {
      o.work = jarDir != null ? jarDir.resolve("bench-run") : Path.of("bench/target/bench-run");
    }
    return o;
  }

  /** The directory of the running bench jar, or null when run from classes. */
  static Path benchJarDir() {
    try {
      Path p = Path.of(Options.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      return Files.isRegularFile(p) ? p.getParent() : null;
    } catch (Exception e) {
      return null;
    }
  }

  private void requireLoopback() {
    String host = pg.substring(0, pg.lastIndexOf(':'));
    try {
      if (!InetAddress.getByName(host.replace("[", "").replace("]", "")).isLoopbackAddress()) {
        throw new IllegalArgumentException("--pg must be a loopback address, not " + host);
      }
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("--pg: unknown host " + host);
    }
  }

  private static String value(String[] args, int i, String flag) {
    if (i >= args.length) {
      throw new IllegalArgumentException(flag + " needs a value");
    }
    return args[i];
  }

  private static void put(Map<String, String> env, String kv) {
    int eq = kv.indexOf('=');
    if (eq <= 0) {
      throw new IllegalArgumentException("expected NAME=VALUE, got " + kv);
    }
    env.put(kv.substring(0, eq), kv.substring(eq + 1));
  }

  static List<String> split(String s) {
    List<String> out = new ArrayList<>();
    for (String p : s.trim().split("\\s+")) {
      if (!p.isEmpty()) {
        out.add(p);
      }
    }
    return out;
  }

  /**
   * How big and how long each scenario is. The holds group's ext_proc runs each get {@code
   * holdsWarmup} unmeasured then {@code holdsMeasure} measured; {@code holdsNearKeys} is the pool
   * of keys near their limit its near run works through (each lasts about six requests); its Check
   * rounds cycle through {@code holdsCheckKeys} cached keys (scenario 1's count in the full run).
   */
  record Scale(
      int totalKeys,
      int checkKeys,
      int[] scalingKeys,
      int coldKeys,
      double coldRate,
      Duration warmup,
      Duration measure,
      int rounds,
      Duration openMeasure,
      int ingestKeys,
      int ingestStreams,
      int[] ingestScaling,
      Duration ingestWarmup,
      Duration ingestMeasure,
      Duration ingestScalingMeasure,
      int memoryKeys,
      Duration profile,
      long jitCalls,
      Duration jitCap,
      Duration holdsWarmup,
      Duration holdsMeasure,
      int holdsNearKeys,
      int holdsCheckKeys) {}

  /** How long the ingest soak runs: --soak-seconds, else 10 minutes (5 s in --smoke). */
  Duration soakDuration() {
    if (soakSeconds != null) {
      return Duration.ofSeconds(Math.max(1, soakSeconds));
    }
    return smoke ? Duration.ofSeconds(5) : Duration.ofMinutes(10);
  }

  Scale scale() {
    if (smoke) {
      int total = keys != null ? keys : 3_000;
      return new Scale(
          total,
          Math.min(1_000, total),
          new int[] {Math.min(200, total), total},
          200,
          400,
          Duration.ofMillis(500),
          Duration.ofSeconds(1),
          1,
          Duration.ofSeconds(1),
          100,
          8,
          new int[] {1, 16},
          Duration.ofMillis(300),
          Duration.ofSeconds(1),
          Duration.ofSeconds(1),
          20_000,
          Duration.ofSeconds(1),
          5_000,
          Duration.ofSeconds(3),
          Duration.ofMillis(500),
          Duration.ofSeconds(1),
          3_000,
          // Fewer than scenario 1's: each is one cold load per server before the rounds.
          Math.min(200, total));
    }
    int total = keys != null ? keys : 1_000_000;
    return new Scale(
        total,
        Math.min(10_000, total),
        new int[] {Math.min(1_000, total), Math.min(100_000, total), total},
        2_000,
        500,
        Duration.ofSeconds(3),
        Duration.ofSeconds(5),
        3,
        Duration.ofSeconds(8),
        1_000,
        8,
        new int[] {1, 64},
        Duration.ofSeconds(2),
        Duration.ofSeconds(10),
        Duration.ofSeconds(6),
        1_000_000,
        Duration.ofSeconds(8),
        200_000,
        Duration.ofSeconds(30),
        Duration.ofSeconds(3),
        Duration.ofSeconds(8),
        50_000,
        Math.min(10_000, total));
  }
}
