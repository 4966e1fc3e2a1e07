package io.quotaauthority.ops;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

/**
 * The plain-HTTP operations port (QUOTA_METRICS_PORT), on the JDK's built-in server:
 *
 * <ul>
 *   <li>{@code GET /metrics}: every meter, Prometheus text format;
 *   <li>{@code GET /healthz}: liveness, 200 while the process is up;
 *   <li>{@code GET /readyz}: readiness, 200 when every check passes, else 503 with a JSON body
 *       naming the failing checks.
 * </ul>
 */
public final class OpsHttpServer implements AutoCloseable {
  static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
  static final String JSON = "application/json";

  private final HttpServer server;
  private final ExecutorService executor;

  private OpsHttpServer(HttpServer server, ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  /** Listens on every interface at {@code port} (0: an ephemeral port, see {@link #port()}). */
  public static OpsHttpServer start(int port, Metrics metrics, Readiness readiness) throws IOException {
    HttpServer server = HttpServer.create(new InetSocketAddress(port), 16);
    AtomicInteger n = new AtomicInteger();
    // Two threads: a scrape and a probe may overlap, nothing here is slow.
    ExecutorService executor = Executors.newFixedThreadPool(2, r -> {
      Thread t = new Thread(r, "ops-http-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    server.setExecutor(executor);
    server.createContext("/", exchange -> {
      try (exchange) {
        route(exchange, metrics, readiness);
      }
    });
    server.start();
    return new OpsHttpServer(server, executor);
  }

  private static void route(HttpExchange ex, Metrics metrics, Readiness readiness) throws IOException {
    String method = ex.getRequestMethod();
    boolean head = method.equals("HEAD");
    if (!head && !method.equals("GET")) {
      ex.getResponseHeaders().set("Allow", "GET, HEAD");
      send(ex, 405, JSON, "{\"error\":\"method not allowed\"}\n", false);
      return;
    }
    switch (ex.getRequestURI().getPath()) {
      case "/metrics" -> send(ex, 200, PROMETHEUS_TEXT, metrics.scrape(), head);
      case "/healthz" -> send(ex, 200, JSON, "{\"status\":\"up\"}\n", head);
      case "/readyz" -> {
        Readiness.Result r = readiness.current();
        if (r.ready()) {
          send(ex, 200, JSON, "{\"status\":\"ready\"}\n", head);
        } else {
          String failing = r.failing().stream().map(s -> '"' + s + '"').collect(Collectors.joining(","));
          send(ex, 503, JSON, "{\"status\":\"not ready\",\"failing\":[" + failing + "]}\n", head);
        }
      }
      default -> send(ex, 404, JSON, "{\"error\":\"not found; try /metrics, /healthz or /readyz\"}\n", head);
    }
  }

  private static void send(HttpExchange ex, int code, String contentType, String body, boolean head)
      throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", contentType);
    ex.getResponseHeaders().set("Cache-Control", "no-store");
    if (head) {
      ex.getResponseHeaders().set("Content-Length", Integer.toString(bytes.length));
      ex.sendResponseHeaders(code, -1);
      return;
    }
    ex.sendResponseHeaders(code, bytes.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(bytes);
    }
  }

  public int port() {
    return server.getAddress().getPort();
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
