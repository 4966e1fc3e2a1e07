package io.quotaauthority.ops;

import com.github.benmanes.caffeine.cache.Cache;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.cache.CaffeineCacheMetrics;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.quotaauthority.authz.CheckRecorder;
import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.Verdict;
import io.quotaauthority.store.Database;
import io.quotaauthority.store.KeyChangeListener;
import io.quotaauthority.store.Replication;
import io.quotaauthority.usage.BudgetLeases;
import io.quotaauthority.usage.ReporterHolds;
import io.quotaauthority.usage.UsageBatcher;
import io.quotaauthority.usage.UsageOutcome;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.function.ToDoubleFunction;

/**
 * The one place that names every metric quota-authority exports, and the registry they live in.
 *
 * <p>Names are Micrometer's dotted names; Prometheus sees them with dots as underscores, counters
 * with {@code _total} and timers in {@code _seconds} (e.g. {@code quota.check.latency} is scraped
 * as {@code quota_check_latency_seconds_bucket/_count/_sum/_max}). The README's "Operating" section
 * lists the scraped names.
 *
 * <p>Hot path rule: every factory here registers (or looks up) a meter, which costs a map lookup
 * and an allocation. Call them once while wiring and keep the returned Counter/Timer in a field;
 * never call them per request. {@link #checkDecisions()} pre-creates one counter per {@link
 * Verdict} for exactly that reason.
 */
public final class Metrics implements AutoCloseable {
  /** Counter, tag {@code result}: one per Check answer. */
  public static final String CHECK_DECISIONS = "quota.check.decisions";

  /** Timer with a percentile histogram: time to answer one Check. */
  public static final String CHECK_LATENCY = "quota.check.latency";

  /** Counter, tag {@code result} (accepted, duplicate, rejected): usage reports answered. */
  public static final String USAGE_REPORTS = "quota.usage.reports";

  /** Distribution summary: usage reports committed per transaction. */
  public static final String COMMIT_GROUP_SIZE = "quota.usage.commit.group.size";

  /** Timer: one commit of a group of usage reports. */
  public static final String COMMIT_LATENCY = "quota.usage.commit.latency";

  /** Gauge: usage reports accepted here and waiting for their commit. */
  public static final String USAGE_PENDING = "quota.usage.pending";

  /** Timer: from a key change's commit to this instance hearing of it (LISTEN/NOTIFY). */
  public static final String NOTIFICATION_LAG = "quota.keys.notification.lag";

  /** Counter, tag {@code result} (read, skipped, malformed): key change notifications handled. */
  public static final String KEY_HINTS = "quota.keys.hints";

  /** Counter: queries made to re-read the rows that notifications named (coalesced). */
  public static final String KEY_HINT_QUERIES = "quota.keys.hint.queries";

  /** Counter: uncached keys looked up in PostgreSQL (Check's cold path). */
  /** Cached keys whose version the bulk refresh compared with their row's. */
  public static final String KEY_REFRESH_CHECKED = "quota.keys.refresh.checked";

  /** Rows the bulk refresh read back because their version was not the cached one. */
  public static final String KEY_REFRESH_CHANGED = "quota.keys.refresh.changed";

  public static final String KEY_LOADS = "quota.keys.loads";

  /** Gauge: hashes of live keys held in memory (the set that answers unknown keys). */
  public static final String LIVE_KEY_HASHES = "quota.keys.live.hashes";

  /** Gauge: 1 while that set is known complete (unknown keys cost no query), else 0. */
  public static final String LIVE_KEYS_COMPLETE = "quota.keys.live.complete";

  /** Counter, tags {@code method} and {@code code}: calls on the admin port. */
  public static final String ADMIN_CALLS = "quota.admin.calls";

  /**
   * Gauge: 1 while the primary's settings make COMMIT wait for a synchronous standby (no
   * acknowledged charge is lost to a failover), else 0; see {@code store.Replication}.
   */
  public static final String SYNCHRONOUS_REPLICATION = "quota.db.synchronous.replication";

  /** Gauge: 1 while every readiness check passes, else 0. */
  public static final String READY = "quota.ready";

  /** The {@code cache} tag value of the key cache's Caffeine metrics ({@code cache_size}, ...). */
  public static final String KEY_CACHE = "quota_keys";

  private final PrometheusMeterRegistry registry;
  private final JvmGcMetrics gc;

  /** A Prometheus registry with the JVM and process basics bound. */
  public Metrics() {
    this.registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    new JvmMemoryMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
    new ClassLoaderMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
    new FileDescriptorMetrics().bindTo(registry);
    this.gc = new JvmGcMetrics();
    gc.bindTo(registry);
  }

  /** For the rest of the app: pass this to anything that registers meters (e.g. HikariCP). */
  public MeterRegistry registry() {
    return registry;
  }

  /** Everything registered, in the Prometheus text exposition format (version 0.0.4). */
  public String scrape() {
    return registry.scrape();
  }

  // ---- Check ----

  /** The decision counter for one result; hold it, see the class comment. */
  public Counter checkDecision(String result) {
    return Counter.builder(CHECK_DECISIONS)
        .description("Check answers, by result")
        .tag("result", result)
        .register(registry);
  }

  /** One pre-created decision counter per {@link Verdict}, tagged with its lower-case name. */
  public EnumCounters<Verdict> checkDecisions() {
    return new EnumCounters<>(Verdict.class, v -> checkDecision(tagValue(v)));
  }

  public Timer checkLatency() {
    return Timer.builder(CHECK_LATENCY)
        .description("Time to answer one Check")
        .publishPercentileHistogram()
        .minimumExpectedValue(Duration.ofNanos(10_000))
        .maximumExpectedValue(Duration.ofSeconds(5))
        .register(registry);
  }

  /**
   * For the Authorizer: one decision counter per Verdict and the latency timer, all pre-created.
   */
  public CheckRecorder checkRecorder() {
    EnumCounters<Verdict> decisions = checkDecisions();
    Timer latency = checkLatency();
    return (verdict, elapsedNanos) -> {
      decisions.increment(verdict);
      latency.record(elapsedNanos, TimeUnit.NANOSECONDS);
    };
  }

  // ---- usage ----

  /** The usage report counter for one result (accepted, duplicate, rejected); hold it. */
  public Counter usageReports(String result) {
    return Counter.builder(USAGE_REPORTS)
        .description("Usage reports answered, by result")
        .tag("result", result)
        .register(registry);
  }

  /** One pre-created report counter per outcome (accepted, duplicate, rejected). */
  public EnumCounters<UsageOutcome.Result> usageReports() {
    return new EnumCounters<>(UsageOutcome.Result.class, r -> usageReports(tagValue(r)));
  }

  /**
   * For the UsageBatcher: group size, commit latency and each report's outcome. Reports the stream
   * refuses before they reach a group (validation) are not seen here; count those with {@link
   * #usageReports()} where they are refused.
   */
  /**
   * quota_leases_taken_total, quota_leases_refused_total, quota_leases_returned_usd_total,
   * quota_leases_taken_usd_total and quota_leases_reaped_total: budget leases of this instance.
   */
  /** quota_reporter_holds_total{event}: what became of holds Check took for reporters. */
  public java.util.function.Consumer<ReporterHolds.Event> reporterHoldRecorder() {
    java.util.Map<ReporterHolds.Event, Counter> counters =
        new java.util.EnumMap<>(ReporterHolds.Event.class);
    for (ReporterHolds.Event e : ReporterHolds.Event.values()) {
      counters.put(
          e,
          Counter.builder("quota.reporter.holds")
              .description("holds Check took for usage-stream reporters, by what became of them")
              .tag("event", e.name().toLowerCase(java.util.Locale.ROOT))
              .register(registry));
    }
    return e -> counters.get(e).increment();
  }

  public BudgetLeases.Recorder leaseRecorder() {
    Counter taken =
        Counter.builder("quota.leases.taken")
            .description("budget slices leased from the database (one round trip each)")
            .register(registry);
    Counter takenUsd =
        Counter.builder("quota.leases.taken.usd")
            .description("USD of keys' budgets leased by this instance")
            .register(registry);
    Counter refused =
        Counter.builder("quota.leases.refused")
            .description("lease asks that found too little of the key's budget left")
            .register(registry);
    Counter returnedUsd =
        Counter.builder("quota.leases.returned.usd")
            .description("USD of leased budget this instance gave back unused (idle, shutdown)")
            .register(registry);
    Counter reaped =
        Counter.builder("quota.leases.reaped")
            .description("expired leases (of instances that died) given back to their keys")
            .register(registry);
    return new BudgetLeases.Recorder() {
      @Override
      public void taken(BigDecimal slice) {
        taken.increment();
        // A counter's double: a gauge of volume for the operator, never money the ledger uses.
        takenUsd.increment(slice.doubleValue());
      }

      @Override
      public void refused() {
        refused.increment();
      }

      @Override
      public void returned(BigDecimal amount) {
        returnedUsd.increment(amount.doubleValue());
      }

      @Override
      public void reaped(int leases) {
        reaped.increment(leases);
      }
    };
  }

  public UsageBatcher.CommitRecorder commitRecorder() {
    DistributionSummary size = commitGroupSize();
    Timer latency = commitLatency();
    EnumCounters<UsageOutcome.Result> reports = usageReports();
    return (groupSize, elapsedNanos, outcomes) -> {
      size.record(groupSize);
      latency.record(elapsedNanos, TimeUnit.NANOSECONDS);
      for (UsageOutcome o : outcomes) {
        reports.increment(o.result());
      }
    };
  }

  public DistributionSummary commitGroupSize() {
    return DistributionSummary.builder(COMMIT_GROUP_SIZE)
        .description("Usage reports committed in one transaction")
        .publishPercentileHistogram()
        .minimumExpectedValue(1.0)
        .maximumExpectedValue(100_000.0)
        .register(registry);
  }

  public Timer commitLatency() {
    return Timer.builder(COMMIT_LATENCY)
        .description("Time to commit one group of usage reports")
        .publishPercentileHistogram()
        .minimumExpectedValue(Duration.ofNanos(100_000))
        .maximumExpectedValue(Duration.ofSeconds(30))
        .register(registry);
  }

  /**
   * Registers the pending gauge. Micrometer holds {@code owner} weakly: keep a strong reference to
   * it elsewhere (the usage stream does, as long as it runs).
   */
  public <T> Gauge usagePending(T owner, ToDoubleFunction<T> pending) {
    return Gauge.builder(USAGE_PENDING, owner, pending)
        .description("Usage reports accepted on this instance and not yet committed")
        .register(registry);
  }

  public Timer notificationLag() {
    return Timer.builder(NOTIFICATION_LAG)
        .description("From a key change's commit to this instance applying its notification")
        .publishPercentileHistogram()
        .minimumExpectedValue(Duration.ofNanos(100_000))
        .maximumExpectedValue(Duration.ofSeconds(60))
        .register(registry);
  }

  /** For the KeyChangeListener: lag, hints by result, re-read queries, the bulk refresh. */
  public KeyChangeListener.Recorder keyChangeRecorder() {
    Timer lag = notificationLag();
    Counter queries =
        Counter.builder(KEY_HINT_QUERIES)
            .description("Queries re-reading the key rows that change notifications named")
            .register(registry);
    Counter checked =
        Counter.builder(KEY_REFRESH_CHECKED)
            .description("Cached keys whose version the bulk refresh compared with their row's")
            .register(registry);
    Counter changed =
        Counter.builder(KEY_REFRESH_CHANGED)
            .description(
                "Rows the bulk refresh read back because their version was not the cached one: changes whose notification was lost or not yet handled")
            .register(registry);
    Map<String, Counter> hints = new ConcurrentHashMap<>();
    return new KeyChangeListener.Recorder() {
      @Override
      public void refreshed(int keys, int rowsChanged) {
        checked.increment(keys);
        changed.increment(rowsChanged);
      }

      @Override
      public void lagMillis(long millis) {
        lag.record(millis, TimeUnit.MILLISECONDS);
      }

      @Override
      public void hint(String result) {
        hints
            .computeIfAbsent(
                result,
                r ->
                    Counter.builder(KEY_HINTS)
                        .description(
                            "Key change notifications: read (rows re-read), skipped (nothing to learn), malformed")
                        .tag("result", r)
                        .register(registry))
            .increment();
      }

      @Override
      public void hintQuery() {
        queries.increment();
      }
    };
  }

  /** The live-hash set's size and whether it is complete. */
  public void monitorLiveKeys(KeyCache cache) {
    Gauge.builder(LIVE_KEY_HASHES, cache, c -> c.liveHashes().size())
        .description("Hashes of live keys held in memory")
        .register(registry);
    Gauge.builder(LIVE_KEYS_COMPLETE, cache, c -> c.completeness().complete() ? 1 : 0)
        .description(
            "1 while the live-key set is complete: unknown keys are answered without a query")
        .register(registry);
  }

  /** Whether the database's last replication check found synchronous replication. */
  public void monitorReplication(Database database) {
    Gauge.builder(
            SYNCHRONOUS_REPLICATION,
            database,
            d ->
                d.replication() != null
                        && d.replication().guarantee() == Replication.Guarantee.SYNCHRONOUS
                    ? 1
                    : 0)
        .description(
            "1 while the primary's COMMIT waits for a synchronous standby (checked at start and"
                + " after the listener reconnects), else 0")
        .register(registry);
  }

  // ---- what this package wires itself ----

  /**
   * Size, hits, misses, evictions of the key cache as {@code cache_*{cache="quota_keys"}}, and the
   * cold loads it made ({@code quota_keys_loads_total}).
   */
  public void monitorKeyCache(Cache<?, ?> cache, LongSupplier loads) {
    CaffeineCacheMetrics.monitor(registry, cache, KEY_CACHE);
    FunctionCounter.builder(KEY_LOADS, loads, LongSupplier::getAsLong)
        .description("Uncached keys looked up in PostgreSQL (Check's cold path)")
        .register(registry);
  }

  Counter adminCall(String method, String code) {
    return Counter.builder(ADMIN_CALLS)
        .description("Calls answered on the admin port, by method and gRPC status code")
        .tag("method", method)
        .tag("code", code)
        .register(registry);
  }

  void readiness(Readiness readiness) {
    Gauge.builder(READY, readiness, r -> r.current().ready() ? 1 : 0)
        .description("1 while every readiness check passes, else 0")
        .register(registry);
  }

  static String tagValue(Enum<?> e) {
    return e.name().toLowerCase(Locale.ROOT);
  }

  @Override
  public void close() {
    gc.close();
    registry.close();
  }

  /**
   * One counter per constant of an enum, created up front: {@code increment(v)} is an array read
   * and an add, with no tag lookup on the hot path.
   */
  public static final class EnumCounters<E extends Enum<E>> {
    private final Counter[] counters;

    EnumCounters(Class<E> type, Function<E, Counter> create) {
      E[] values = type.getEnumConstants();
      this.counters = new Counter[values.length];
      for (E v : values) {
        counters[v.ordinal()] = create.apply(v);
      }
    }

    public void increment(E value) {
      counters[value.ordinal()].increment();
    }

    public Counter get(E value) {
      return counters[value.ordinal()];
    }
  }
}
