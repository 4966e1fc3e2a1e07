package io.quotaauthority.bench;

import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.quotaauthority.authz.Authorizer;
import io.quotaauthority.authz.CheckRecorder;
import io.quotaauthority.config.Setting;
import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyLookup;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.LiveKeyHashes;
import io.quotaauthority.keys.PendingUsage;
import io.quotaauthority.store.KeyRepository;
import java.lang.management.ManagementFactory;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import javax.management.ObjectName;

/**
 * The cache memory probe, run by the bench in a JVM of its own so nothing else is on its heap:
 * {@code java -cp quota-bench.jar io.quotaauthority.bench.CacheMemory <keys> <jdbc url> <user>}. It
 * fills the server's {@link KeyCache} (default maximum size) the way a server starting on that
 * database does (KeyChangeListener): every live key's hash streamed into the live-key set, then the
 * keys themselves streamed into the cache through {@link KeyCache#fill}, both by the server's own
 * {@link KeyRepository} queries (pgjdbc's BigDecimals included); then it runs one Check per key
 * through the server's {@link Authorizer} (whatever Check leaves per key counts too), measuring
 * live heap after full GCs each time. It prints {@code RESULT name value} and {@code CLASS ...}
 * lines for the bench to read.
 */
public final class CacheMemory {
  private CacheMemory() {}

  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(args[0]);
    String url = args[1];
    String user = args[2];
    long maxKeys = Long.parseLong(Setting.CACHE_MAX_KEYS.defaultValue());
    KeyCache cache = new KeyCache(new NoStore(), Runnable::run, maxKeys, Duration.ofSeconds(5));
    Map<String, long[]> histoEmpty = classHistogram();
    long empty = usedHeapAfterGc();

    long t0 = System.nanoTime();
    KeyRepository keys = new KeyRepository(null);
    long[] filledKeys = {0};
    try (Connection c = DriverManager.getConnection(url, user, "")) {
      // The live set first, as the listener loads it before the fill: one sorted long[] of four
      // longs per key, the state a started server holds (keys created later sit in a small set
      // until the next reload folds them in).
      LiveKeyHashes.Loader loader = cache.liveHashes().beginLoad();
      keys.streamLiveHashes(c, loader::add);
      cache.liveHashes().finish(loader);
      keys.streamLiveKeys(
          c,
          n,
          r -> {
            cache.fill(r);
            filledKeys[0]++;
          });
    }
    long applied = filledKeys[0];
    if (applied < n) {
      throw new IllegalStateException("only " + applied + " of " + n + " keys in the database");
    }
    cache.knownCache().cleanUp();
    long fillNanos = System.nanoTime() - t0;
    long filled = usedHeapAfterGc();
    Map<String, long[]> histoFilled = classHistogram();
    System.out.println("RESULT keys " + n);
    System.out.println("RESULT cached " + cache.size());
    System.out.println("RESULT maxKeys " + maxKeys);
    System.out.println("RESULT fillMillis " + fillNanos / 1_000_000);
    System.out.println("RESULT heapEmpty " + empty);
    System.out.println("RESULT heapFilled " + filled);
    printDelta("filled", histoEmpty, histoFilled, n);

    // What a running server holds once each key has been checked: whatever Check leaves behind
    // per key (today nothing: the allow is written per Check) shows up here.
    Authorizer authorizer =
        new Authorizer(cache, new PendingUsage(), Clock.systemUTC(), CheckRecorder.NONE);
    CheckTemplate template = CheckTemplate.envoyChatCompletion();
    long[] allowed = new long[1];
    for (int i = 0; i < n; i++) {
      authorizer.check(
          CheckRequest.parseFrom(template.forKey(i)),
          0,
          r -> {
            if (r.response().getStatus().getCode() == 0) {
              allowed[0]++;
            }
          });
    }
    cache.knownCache().cleanUp();
    long checked = usedHeapAfterGc();
    Map<String, long[]> histoChecked = classHistogram();
    System.out.println("RESULT allowed " + allowed[0]);
    System.out.println("RESULT heapChecked " + checked);
    printDelta("checked", histoEmpty, histoChecked, n);
    System.out.flush();
  }

  static long usedHeapAfterGc() throws InterruptedException {
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(100);
    }
    return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
  }

  /** GC.class_histogram of this JVM (a full GC first): class name to {instances, bytes}. */
  static Map<String, long[]> classHistogram() throws Exception {
    String text =
        (String)
            ManagementFactory.getPlatformMBeanServer()
                .invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"),
                    "gcClassHistogram",
                    new Object[] {new String[0]},
                    new String[] {String[].class.getName()});
    return parseHistogram(text);
  }

  static Map<String, long[]> parseHistogram(String text) {
    Map<String, long[]> out = new HashMap<>();
    for (String line : text.split("\n")) {
      String[] f = line.trim().split("\\s+");
      if (f.length >= 4 && f[0].endsWith(":")) {
        out.put(f[3], new long[] {Long.parseLong(f[1]), Long.parseLong(f[2])});
      } else if (f.length >= 3 && f[0].equals("Total")) {
        out.put("(total)", new long[] {Long.parseLong(f[1]), Long.parseLong(f[2])});
      }
    }
    return out;
  }

  private static void printDelta(
      String label, Map<String, long[]> before, Map<String, long[]> after, long n) {
    List<Map.Entry<String, long[]>> rows = new ArrayList<>();
    for (Map.Entry<String, long[]> e : after.entrySet()) {
      long[] b = before.getOrDefault(e.getKey(), new long[2]);
      rows.add(Map.entry(e.getKey(), new long[] {e.getValue()[0] - b[0], e.getValue()[1] - b[1]}));
    }
    rows.sort((x, y) -> Long.compare(y.getValue()[1], x.getValue()[1]));
    int shown = 0;
    for (Map.Entry<String, long[]> r : rows) {
      if (shown++ >= 14 || r.getValue()[1] < n) {
        break;
      }
      System.out.printf("CLASS %s %s %d %d%n", label, r.getKey(), r.getValue()[0], r.getValue()[1]);
    }
  }

  /** The cache is filled before any Check; a miss never reaches a store. */
  private static final class NoStore implements KeyLookup {
    @Override
    public Optional<KeyRecord> findByHash(KeyHash hash) {
      return Optional.empty();
    }

    @Override
    public List<KeyRecord> findByIds(Collection<Long> ids) {
      return List.of();
    }
  }
}
