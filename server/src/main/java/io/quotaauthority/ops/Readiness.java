package io.quotaauthority.ops;

import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.quotaauthority.threads.DaemonThreads;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Whether this instance should get traffic: every named check passes. A probe thread evaluates the
 * checks about once a second; {@code /readyz} answers from the latest result (so a slow database
 * never makes the probe endpoint itself slow), and the gRPC health service follows it: SERVING when
 * ready, NOT_SERVING when not, so HTTP and gRPC health never disagree for longer than one probe.
 *
 * <p>Migrations need no check of their own: {@code Database.open} runs them before any listener
 * exists, so a started instance has them done.
 */
public final class Readiness implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Readiness.class);

  /** A named readiness condition; the name is what {@code /readyz} reports when it fails. */
  public record Check(String name, BooleanSupplier probe) {
    public Check {
      Objects.requireNonNull(name);
      Objects.requireNonNull(probe);
    }
  }

  /** The outcome of one probe; {@code failing} names the checks that did not pass, in order. */
  public record Result(boolean ready, List<String> failing) {
    static final Result STARTING = new Result(false, List.of("starting"));
    static final Result DRAINING = new Result(false, List.of("shutting_down"));
  }

  public static Check check(String name, BooleanSupplier probe) {
    return new Check(name, probe);
  }

  private final List<Check> checks;
  private final HealthStatusManager health;
  private final Duration interval;
  private final ScheduledExecutorService probeThread;
  private volatile Result current = Result.STARTING;
  private volatile boolean draining;
  private ServingStatus reported;

  /**
   * @param health the gRPC health service whose overall ("") status follows readiness; may be null
   * @param interval pause between the end of one probe and the start of the next
   */
  public Readiness(List<Check> checks, HealthStatusManager health, Duration interval) {
    this.checks = new CopyOnWriteArrayList<>(checks);
    this.health = health;
    this.interval = interval;
    this.probeThread = DaemonThreads.scheduler("readiness-probe");
  }

  /**
   * Adds a check (e.g. the notification listener once it exists); it counts from the next probe.
   */
  public void add(Check check) {
    checks.add(check);
  }

  /**
   * Probes once now (so the health status is right before the first request), then periodically.
   */
  public void start() {
    start(Duration.ZERO);
  }

  /**
   * Like {@link #start()}, but first gives checks that become true shortly after start (a listener
   * connecting in the background) up to {@code startupWait} to pass, so a healthy instance does not
   * begin with a NOT_SERVING blip. Returns once ready or when the wait is over.
   */
  public void start(Duration startupWait) {
    long deadline = System.nanoTime() + startupWait.toNanos();
    Result first = evaluate();
    while (!first.ready() && System.nanoTime() < deadline) {
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
      first = evaluate();
    }
    publish(first);
    long millis = Math.max(1, interval.toMillis());
    probeThread.scheduleWithFixedDelay(this::probe, millis, millis, TimeUnit.MILLISECONDS);
  }

  /** The latest probe's result; never blocks. */
  public Result current() {
    return current;
  }

  /** Runs every check now, records the result and brings the gRPC health status in line. */
  public Result probe() {
    return publish(evaluate());
  }

  private Result evaluate() {
    List<String> failing = new ArrayList<>();
    for (Check c : checks) {
      boolean ok;
      try {
        ok = c.probe().getAsBoolean();
      } catch (RuntimeException e) {
        ok = false;
      }
      if (!ok) {
        failing.add(c.name());
      }
    }
    return new Result(failing.isEmpty(), List.copyOf(failing));
  }

  private synchronized Result publish(Result result) {
    if (draining) {
      return current;
    }
    List<String> failing = result.failing();
    ServingStatus status = result.ready() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    if (status != reported) {
      if (reported != null || !result.ready()) {
        if (result.ready()) {
          log.info("ready again: every readiness check passes");
        } else {
          log.warn("not ready: failing readiness checks {}", failing);
        }
      }
      reported = status;
      if (health != null) {
        health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, status);
      }
    }
    // Published after the gRPC status: whoever sees this result sees the health service agree.
    current = result;
    if (draining) {
      // draining() ran meanwhile: its answer stands.
      current = Result.DRAINING;
    }
    return current;
  }

  /**
   * From now on not ready, for good: shutdown has begun. The gRPC health service is left to the
   * caller ({@code HealthStatusManager.enterTerminalState()}).
   */
  public void draining() {
    draining = true;
    current = Result.DRAINING;
    probeThread.shutdownNow();
  }

  @Override
  public void close() {
    draining();
  }
}
