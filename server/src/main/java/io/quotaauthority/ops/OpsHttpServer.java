package io.quotaauthority.ops;

import io.quotaauthority.http.HttpListener;
import io.quotaauthority.http.HttpListener.Request;
import io.quotaauthority.http.HttpListener.Response;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.stream.Collectors;

/**
 * The plain-HTTP operations port (QUOTA_METRICS_PORT on QUOTA_METRICS_BIND), on {@link
 * HttpListener}, so no client can freeze it:
 *
 * <ul>
 *   <li>{@code GET /metrics}: every meter, Prometheus text format;
 *   <li>{@code GET /healthz}: liveness, 200 while the process is up;
 *   <li>{@code GET /readyz}: readiness, 200 when every check passes, else 503 with a JSON body
 *       naming the failing checks.
 * </ul>
 *
 * Every answer comes from memory (readiness from the probe's latest result, metrics from the
 * registry), so it runs on the listener's event loop.
 */
public final class OpsHttpServer implements AutoCloseable {
  static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
  static final String JSON = "application/json";

  /**
   * A request must arrive whole within this of its first byte (or of the connect): probes and
   * scrapers send theirs at once, a slowloris is cut. Below kubelet's and Prometheus' own timeouts
   * would be pointless; 5 s is far above any honest client's need.
   */
  static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(5);

  /** A kept-alive connection idle this long is closed; above Prometheus' usual 15–60 s interval. */
  static final Duration IDLE_TIMEOUT = Duration.ofSeconds(90);

  /** Open connections at most; one more closes the oldest. A few probes and scrapers need a few. */
  static final int MAX_CONNECTIONS = 128;

  /** Probes and scrapes send no body; a small one is tolerated, a large one answered 413. */
  static final int MAX_BODY_BYTES = 4096;

  private final HttpListener listener;

  private OpsHttpServer(HttpListener listener) {
    this.listener = listener;
  }

  /**
   * Listens on {@code bind} (null: every interface) at {@code port} (0: ephemeral, see {@link
   * #port()}).
   */
  public static OpsHttpServer start(
      InetAddress bind, int port, Metrics metrics, Readiness readiness) throws IOException {
    HttpListener.Config config =
        new HttpListener.Config(
            "ops", bind, port, REQUEST_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_BODY_BYTES);
    return new OpsHttpServer(
        HttpListener.start(config, request -> route(request, metrics, readiness)));
  }

  static Response route(Request request, Metrics metrics, Readiness readiness) {
    String method = request.method();
    if (!method.equals("GET") && !method.equals("HEAD")) {
      return send(405, JSON, "{\"error\":\"method not allowed\"}\n")
          .withHeader("Allow", "GET, HEAD");
    }
    return switch (request.path()) {
      case "/metrics" -> send(200, PROMETHEUS_TEXT, metrics.scrape());
      case "/healthz" -> send(200, JSON, "{\"status\":\"up\"}\n");
      case "/readyz" -> {
        Readiness.Result r = readiness.current();
        if (r.ready()) {
          yield send(200, JSON, "{\"status\":\"ready\"}\n");
        }
        String failing =
            r.failing().stream().map(s -> '"' + s + '"').collect(Collectors.joining(","));
        yield send(503, JSON, "{\"status\":\"not ready\",\"failing\":[" + failing + "]}\n");
      }
      default -> send(404, JSON, "{\"error\":\"not found; try /metrics, /healthz or /readyz\"}\n");
    };
  }

  private static Response send(int code, String contentType, String body) {
    return Response.of(code, contentType, body).withHeader("Cache-Control", "no-store");
  }

  public int port() {
    return listener.port();
  }

  public InetSocketAddress address() {
    return listener.address();
  }

  @Override
  public void close() {
    listener.close();
  }
}
