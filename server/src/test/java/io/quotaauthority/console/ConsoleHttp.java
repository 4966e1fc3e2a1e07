package io.quotaauthority.console;

import io.quotaauthority.config.Setting;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;

/** A whole server with its console on a free port, and plain HTTP calls to it. */
final class ConsoleHttp {
  static final HttpClient HTTP =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();

  private ConsoleHttp() {}

  /** QUOTA_CONSOLE_PORT=0 turns the console off, so the tests take a port free right now. */
  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  static TestServer start(TestDatabase db, Clock clock) throws IOException {
    return TestServer.start(db, Map.of(Setting.CONSOLE_PORT, Integer.toString(freePort())), clock);
  }

  static String base(TestServer server) {
    return "http://127.0.0.1:" + server.app().consolePort();
  }

  static HttpResponse<String> post(
      TestServer server, String method, String json, String token, Map<String, String> headers)
      throws IOException, InterruptedException {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(base(server) + "/quota.v1.KeyAdminService/" + method))
            .timeout(Duration.ofSeconds(10))
            .header("content-type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json));
    if (token != null) {
      b.header("authorization", "Bearer " + token);
    }
    headers.forEach(b::setHeader);
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> post(TestServer server, String method, String json, String token)
      throws IOException, InterruptedException {
    return post(server, method, json, token, Map.of());
  }

  static HttpResponse<String> send(
      TestServer server, String method, String path, String type, String body)
      throws IOException, InterruptedException {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(base(server) + path))
            .timeout(Duration.ofSeconds(10))
            .method(
                method,
                body == null
                    ? HttpRequest.BodyPublishers.noBody()
                    : HttpRequest.BodyPublishers.ofString(body));
    if (type != null) {
      b.header("content-type", type);
    }
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }
}
