package io.quotaauthority.console;

import io.grpc.Status;
import io.quotaauthority.http.HttpListener;
import io.quotaauthority.http.HttpListener.Exchange;
import io.quotaauthority.http.HttpListener.Response;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * The web console's HTTP listener (QUOTA_CONSOLE_PORT): the browser code from the jar's {@code
 * console/} resources, and the {@link AdminBridge} under {@code /quota.v1.KeyAdminService/}. Every
 * answer carries a strict Content-Security-Policy (scripts only from this origin, nothing inline,
 * no framing), nosniff and no CORS headers, so another site's page can neither read the API nor
 * frame the console.
 */
public final class ConsoleServer implements AutoCloseable {
  /** The JSON requests of the admin API are small; a key name is at most a few hundred bytes. */
  static final int MAX_BODY_BYTES = 64 * 1024;

  static final int MAX_CONNECTIONS = 256;
  public static final int MAX_IN_FLIGHT = 32;

  static final String CSP =
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
          + " base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

  static final Map<String, String> SECURITY_HEADERS =
      Map.of(
          "Content-Security-Policy", CSP,
          "X-Content-Type-Options", "nosniff",
          "X-Frame-Options", "DENY",
          "Referrer-Policy", "no-referrer",
          "Cross-Origin-Opener-Policy", "same-origin",
          "Cross-Origin-Resource-Policy", "same-origin");

  private static final Map<String, String> TYPES =
      Map.of(
          "html", "text/html; charset=utf-8",
          "js", "text/javascript; charset=utf-8",
          "css", "text/css; charset=utf-8",
          "json", "application/json",
          "svg", "image/svg+xml",
          "png", "image/png",
          "ico", "image/x-icon");

  /** A file name under console/: letters, digits, - and _, one dot before a known extension. */
  private static final Pattern STATIC_PATH =
      Pattern.compile("/([A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\\.(html|js|css|json|svg|png|ico)");

  private final HttpListener listener;
  private final AdminBridge bridge;
  private final Map<String, Response> files = new ConcurrentHashMap<>();

  private ConsoleServer(InetAddress bind, int port, AdminBridge bridge) throws IOException {
    this.bridge = bridge;
    this.listener =
        HttpListener.startAsync(
            new HttpListener.Config(
                "console",
                bind,
                port,
                Duration.ofSeconds(10),
                Duration.ofSeconds(60),
                MAX_CONNECTIONS,
                MAX_BODY_BYTES),
            this::route);
  }

  public static ConsoleServer start(InetAddress bind, int port, AdminBridge bridge)
      throws IOException {
    return new ConsoleServer(bind, port, bridge);
  }

  public int port() {
    return listener.port();
  }

  /**
   * Where a browser opens the console: the bound address, or localhost when bound to every
   * interface (the host's own names are unknown here).
   */
  public String url() {
    InetSocketAddress a = listener.address();
    InetAddress ip = a.getAddress();
    String host =
        ip.isAnyLocalAddress()
            ? "localhost"
            : ip.getHostAddress().contains(":")
                ? "[" + ip.getHostAddress() + "]"
                : ip.getHostAddress();
    return "http://" + host + ":" + a.getPort() + "/";
  }

  public String address() {
    return HttpListener.describe(listener.address());
  }

  CompletionStage<Response> route(Exchange e) {
    return answer(e).thenApply(ConsoleServer::secured);
  }

  private CompletionStage<Response> answer(Exchange e) {
    String path = e.path();
    if (bridge.serves(path) || path.startsWith("/quota.")) {
      return api(e);
    }
    if (!e.method().equals("GET") && !e.method().equals("HEAD")) {
      return done(
          Response.of(405, "text/plain; charset=utf-8", "method not allowed\n")
              .withHeader("Allow", "GET, HEAD"));
    }
    String file = path.equals("/") ? "/index.html" : path;
    Optional<Response> found = STATIC_PATH.matcher(file).matches() ? file(file) : Optional.empty();
    return done(
        found.orElseGet(() -> Response.of(404, "text/plain; charset=utf-8", "not found\n")));
  }

  private CompletionStage<Response> api(Exchange e) {
    if (!e.method().equals("POST")) {
      return done(
          AdminBridge.error(Status.Code.UNIMPLEMENTED, "the console API takes POST only", 405)
              .withHeader("Allow", "POST"));
    }
    String type = e.header("content-type");
    if (type == null
        || !type.toLowerCase(Locale.ROOT)
            .replace(" ", "")
            .matches("application/json(;charset=utf-8)?")) {
      return done(
          AdminBridge.error(
              Status.Code.INVALID_ARGUMENT, "content-type must be application/json", 415));
    }
    String version = e.header("connect-protocol-version");
    if (version != null && !version.equals("1")) {
      return done(
          AdminBridge.error(
              Status.Code.INVALID_ARGUMENT, "connect-protocol-version must be 1", 400));
    }
    if (!sameOrigin(e.header("origin"), e.header("host"))) {
      // A page of another site (or one reached by DNS rebinding) posting here.
      return done(
          AdminBridge.error(
              Status.Code.PERMISSION_DENIED, "cross-origin calls are not accepted", 403));
    }
    return bridge.call(
        e.path(), e.header("authorization"), e.header("connect-timeout-ms"), e.body());
  }

  /** No Origin (curl, the tests' HTTP client) is fine; a browser's must name this very host. */
  static boolean sameOrigin(String origin, String host) {
    if (origin == null) {
      return true;
    }
    if (host == null) {
      return false;
    }
    try {
      URI u = URI.create(origin);
      String authority = u.getRawAuthority();
      return ("http".equals(u.getScheme()) || "https".equals(u.getScheme()))
          && authority != null
          && authority.equalsIgnoreCase(host);
    } catch (IllegalArgumentException bad) {
      return false;
    }
  }

  private Optional<Response> file(String path) {
    Response cached = files.get(path);
    if (cached != null) {
      return Optional.of(cached);
    }
    try (InputStream in =
        ConsoleServer.class.getClassLoader().getResourceAsStream("console" + path)) {
      if (in == null) {
        return Optional.empty();
      }
      String ext = path.substring(path.lastIndexOf('.') + 1);
      Response r =
          new Response(200, TYPES.get(ext), in.readAllBytes(), Map.of())
              // Revalidated each time: a new jar's console is picked up at once.
              .withHeader("Cache-Control", "no-cache");
      files.put(path, r);
      return Optional.of(r);
    } catch (IOException ex) {
      throw new UncheckedIOException(ex);
    }
  }

  private static Response secured(Response r) {
    Response out = r;
    for (Map.Entry<String, String> h : SECURITY_HEADERS.entrySet()) {
      out = out.withHeader(h.getKey(), h.getValue());
    }
    if (!out.headers().containsKey("Cache-Control")) {
      out = out.withHeader("Cache-Control", "no-store");
    }
    return out;
  }

  private static CompletionStage<Response> done(Response r) {
    return CompletableFuture.completedFuture(r);
  }

  @Override
  public void close() {
    listener.close();
  }
}
