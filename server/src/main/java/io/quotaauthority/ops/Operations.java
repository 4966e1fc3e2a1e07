package io.quotaauthority.ops;

import io.grpc.ServerInterceptor;
import io.grpc.protobuf.services.HealthStatusManager;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.http.HttpListener;
import java.io.IOException;
import java.net.InetAddress;
import java.time.Duration;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Metrics, readiness and the HTTP port that shows them, as one part with one life cycle, so the
 * composition root needs only a few lines: create it first (the database pool registers its meters
 * in it), {@link #start} it once the gRPC servers listen, {@link #draining} at the start of
 * shutdown and {@link #close} at its end.
 */
public final class Operations implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Operations.class);
  static final Duration PROBE_INTERVAL = Duration.ofSeconds(1);

  /** How long start waits for checks that pass shortly after start (the listener connecting). */
  static final Duration STARTUP_WAIT = Duration.ofSeconds(5);

  private final Metrics metrics = new Metrics();
  private Readiness readiness;
  private OpsHttpServer http;

  public Metrics metrics() {
    return metrics;
  }

  public MeterRegistry registry() {
    return metrics.registry();
  }

  /** Counts admin-port calls by method and code: install on the admin server builder. */
  public ServerInterceptor adminCallMetrics() {
    return new AdminCallMetrics(metrics);
  }

  /**
   * Starts the readiness probe (which sets the gRPC health status) and, unless {@code httpPort} is
   * 0, the HTTP port with /metrics, /healthz and /readyz.
   */
  public synchronized void start(
      InetAddress httpBind, int httpPort, HealthStatusManager health, List<Readiness.Check> checks)
      throws IOException {
    readiness = new Readiness(checks, health, PROBE_INTERVAL);
    metrics.readiness(readiness);
    readiness.start(STARTUP_WAIT);
    if (httpPort != 0) {
      http = OpsHttpServer.start(httpBind, httpPort, metrics, readiness);
      log.info(
          "metrics and health on http {}: /metrics /healthz /readyz",
          HttpListener.describe(http.address()));
    }
  }

  /** The readiness probe, to add checks that exist only later; null before {@link #start}. */
  public Readiness readiness() {
    return readiness;
  }

  /** The HTTP port, or -1 when it is off. */
  public int httpPort() {
    return http == null ? -1 : http.port();
  }

  /**
   * Shutdown has begun: /readyz answers 503 from now on; /metrics stays up until {@link #close}.
   */
  public synchronized void draining() {
    if (readiness != null) {
      readiness.draining();
    }
  }

  @Override
  public synchronized void close() {
    draining();
    if (http != null) {
      http.close();
    }
    metrics.close();
  }
}
