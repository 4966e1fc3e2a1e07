package io.quotaauthority.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quotaauthority.config.Setting;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The ops port against hostile clients: connections that stall or trickle cannot freeze /healthz,
 * and the request timeout cuts a slowloris. A real server, raw sockets.
 */
class OpsPortIT {
  /**
   * A request line and one header, then nothing: the JDK HttpServer's two workers froze on two of
   * these.
   */
  private static final byte[] PARTIAL =
      "GET /healthz HTTP/1.1\r\nHost: x\r\n".getBytes(StandardCharsets.US_ASCII);

  private static TestDatabase db;
  private static TestServer server;
  private static int port;
  private final List<Socket> sockets = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    db = TestDatabase.create();
    port = Scrape.freePort();
    server =
        TestServer.start(
            db,
            Map.of(Setting.METRICS_PORT, Integer.toString(port), Setting.METRICS_BIND, "127.0.0.1"),
            Clock.systemUTC());
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  @AfterEach
  void closeSockets() throws IOException {
    for (Socket s : sockets) {
      s.close();
    }
  }

  private Socket stalled() throws IOException {
    Socket s = new Socket("127.0.0.1", port);
    sockets.add(s);
    s.getOutputStream().write(PARTIAL);
    s.getOutputStream().flush();
    return s;
  }

  /** GET /healthz with a one-second deadline on a fresh connection. */
  private static HttpResponse<String> healthzWithin1s() throws Exception {
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
    return client.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/healthz"))
            .timeout(Duration.ofSeconds(1))
            .GET()
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** Everything the server sends until it closes the connection (or the read times out). */
  private static String readUntilClosed(Socket s, Duration timeout) throws IOException {
    s.setSoTimeout((int) timeout.toMillis());
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    InputStream in = s.getInputStream();
    byte[] b = new byte[4096];
    try {
      for (int n; (n = in.read(b)) >= 0; ) {
        buf.write(b, 0, n);
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("connection still open after " + timeout + "; got: " + buf, e);
    }
    return buf.toString(StandardCharsets.US_ASCII);
  }

  @Test
  void healthz_twoStalledConnections_answersAtOnce() throws Exception {
    stalled();
    stalled();

    HttpResponse<String> r = healthzWithin1s();

    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.body()).isEqualTo("{\"status\":\"up\"}\n");
  }

  @Test
  void healthzAndReadyz_moreStalledConnectionsThanTheLimit_answerAtOnce() throws Exception {
    for (int i = 0; i < OpsHttpServer.MAX_CONNECTIONS + 20; i++) {
      stalled();
    }

    assertThat(healthzWithin1s().statusCode()).isEqualTo(200);
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
    HttpResponse<String> ready =
        client.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/readyz"))
                .timeout(Duration.ofSeconds(1))
                .GET()
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(ready.statusCode()).isEqualTo(200);
    // The oldest stalled connection was closed to make room.
    assertThat(readUntilClosed(sockets.get(0), Duration.ofSeconds(2))).isEmpty();
  }

  @Test
  void slowloris_oneBytePerSecond_cutByTheRequestTimeoutWith408() throws Exception {
    Socket s = new Socket("127.0.0.1", port);
    sockets.add(s);
    byte[] request =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n\r\n"
            .getBytes(StandardCharsets.US_ASCII);
    OutputStream out = s.getOutputStream();
    Thread trickle =
        new Thread(
            () -> {
              try {
                for (byte c : request) {
                  out.write(c);
                  out.flush();
                  Thread.sleep(1000);
                }
              } catch (IOException | InterruptedException cut) {
                // the server closed the connection: what this test wants
              }
            },
            "slowloris");
    trickle.setDaemon(true);
    long start = System.nanoTime();
    trickle.start();

    String answer = readUntilClosed(s, OpsHttpServer.REQUEST_TIMEOUT.plusSeconds(5));

    Duration took = Duration.ofNanos(System.nanoTime() - start);
    trickle.interrupt();
    assertThat(answer).startsWith("HTTP/1.1 408 Request Timeout");
    // Cut long before the ~50 s the whole request would take at this pace.
    assertThat(took).isLessThan(OpsHttpServer.REQUEST_TIMEOUT.plusSeconds(5));
    assertThat(healthzWithin1s().statusCode()).isEqualTo(200);
  }

  @Test
  void keepAlive_secondRequestOnTheSameConnection_answered() throws Exception {
    Socket s = new Socket("127.0.0.1", port);
    sockets.add(s);
    s.setSoTimeout(2000);
    OutputStream out = s.getOutputStream();
    out.write(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            .getBytes(StandardCharsets.US_ASCII));
    out.flush();

    String answer = readUntilClosed(s, Duration.ofSeconds(2));

    assertThat(answer.split("HTTP/1.1 200 OK", -1)).hasSize(3);
    assertThat(answer).endsWith("\r\n\r\n"); // HEAD: headers, no body
    assertThat(answer).contains("content-length: 16");
  }

  @Test
  void request_headerLineOverTheLimit_400AndClosed() throws Exception {
    Socket s = new Socket("127.0.0.1", port);
    sockets.add(s);
    s.getOutputStream()
        .write(
            ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(20_000) + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));

    assertThat(readUntilClosed(s, Duration.ofSeconds(2))).startsWith("HTTP/1.1 400 Bad Request");
  }

  @Test
  void adminPort_defaultBind_refusesAConnectionToANonLoopbackAddress() throws Exception {
    Optional<InetAddress> external =
        Collections.list(NetworkInterface.getNetworkInterfaces()).stream()
            .flatMap(i -> Collections.list(i.getInetAddresses()).stream())
            .filter(
                a -> a instanceof Inet4Address && !a.isLoopbackAddress() && !a.isLinkLocalAddress())
            .findFirst();
    Assumptions.assumeTrue(external.isPresent(), "this host has no non-loopback IPv4 address");

    try (Socket ok = new Socket("127.0.0.1", server.app().adminPort())) {
      assertThat(ok.isConnected()).isTrue();
    }
    assertThatThrownBy(
            () -> {
              try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(external.get(), server.app().adminPort()), 1000);
              }
            })
        .isInstanceOf(ConnectException.class);
  }
}
