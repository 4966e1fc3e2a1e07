package io.quotaauthority.metering;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.grpc.BearerCredentials.Refusal;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes refused metering streams loud. Envoy fails open on ext_proc errors, so a wrong or missing
 * metering token silently stops all charging of unlimited keys' requests, and every request of a
 * key with a quota or a cap is refused 503 by Envoy's fail-closed stage (README "Holds"). Each
 * refusal is counted in {@code quota_metering_streams_refused_total{reason}} (missing, malformed,
 * wrong) and warned about at most once per reason per {@link #WARN_EVERY}, with how many were
 * refused meanwhile. Neither the counter nor the warning ever holds the presented or the expected
 * token.
 */
public final class MeteringRefusals implements Consumer<Refusal> {
  private static final Logger log = LoggerFactory.getLogger(MeteringRefusals.class);
  static final Duration WARN_EVERY = Duration.ofMinutes(1);

  private final Map<Refusal, Counter> counters = new EnumMap<>(Refusal.class);
  private final Map<Refusal, Warning> warnings = new EnumMap<>(Refusal.class);
  private final LongSupplier nanoTime;

  public MeteringRefusals(MeterRegistry registry) {
    this(registry, System::nanoTime);
  }

  MeteringRefusals(MeterRegistry registry, LongSupplier nanoTime) {
    this.nanoTime = nanoTime;
    for (Refusal r : Refusal.values()) {
      // Registered up front, so the series read 0 (not absent) and an alert on rate() works at
      // once.
      counters.put(
          r,
          Counter.builder("quota.metering.streams.refused")
              .description(
                  "ext_proc metering streams refused for a missing, malformed or wrong token")
              .tag("reason", r.tag())
              .register(registry));
      warnings.put(r, new Warning(WARN_EVERY.toNanos()));
    }
  }

  /** Runs on a transport thread: a counter increment and, rarely, one log line. */
  @Override
  public void accept(Refusal reason) {
    counters.get(reason).increment();
    long suppressed = warnings.get(reason).due(nanoTime.getAsLong());
    if (suppressed >= 0) {
      log.warn(
          "refused an ext_proc metering stream: {}; while this lasts unlimited keys' requests"
              + " pass UNMETERED (Envoy fails open) and limited or capped keys' are refused 503"
              + " (the fail-closed stage). Envoy's ext_proc grpc_service.initial_metadata must send"
              + " 'authorization: Bearer <QUOTA_METERING_TOKEN>' to QUOTA_METERING_PORT"
              + " ({} more refused for this reason since the last warning)",
          describe(reason),
          suppressed);
    }
  }

  static String describe(Refusal reason) {
    return switch (reason) {
      case MISSING -> "no authorization header";
      case MALFORMED -> "authorization is not 'Bearer <token>'";
      case WRONG -> "wrong metering token";
    };
  }

  /**
   * At most one warning per period: {@link #due} answers how many calls were let pass silently
   * since the last warning when one is due now, else -1. Lock-free: one CAS decides which caller
   * warns when several arrive at once.
   */
  static final class Warning {
    private final long periodNanos;

    /** When the last warning was given; Long.MIN_VALUE before the first. */
    private final AtomicLong last = new AtomicLong(Long.MIN_VALUE);

    private final AtomicLong silenced = new AtomicLong();

    Warning(long periodNanos) {
      this.periodNanos = periodNanos;
    }

    long due(long now) {
      long before = last.get();
      // Subtraction, not comparison, so that nanoTime wrapping around cannot stop the warnings.
      if ((before == Long.MIN_VALUE || now - before >= periodNanos)
          && last.compareAndSet(before, now)) {
        return silenced.getAndSet(0);
      }
      silenced.incrementAndGet();
      return -1;
    }
  }
}
