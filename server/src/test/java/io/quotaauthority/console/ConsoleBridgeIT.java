package io.quotaauthority.console;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.MethodDescriptor;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.net.http.HttpResponse;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The console's Connect bridge over real HTTP against a whole server on a real PostgreSQL: the
 * admin API's token, errors and audit, and the listener's refusals and headers.
 */
class ConsoleBridgeIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static TestDatabase db;
  private static TestServer server;

  @BeforeAll
  static void start() throws Exception {
    db = TestDatabase.create();
    server = ConsoleHttp.start(db, Clock.systemUTC());
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static JsonNode json(HttpResponse<String> r) throws Exception {
    return JSON.readTree(r.body());
  }

  private static int keyCount() {
    return server
        .admin()
        .listKeys(ListKeysRequest.newBuilder().setPageSize(1000).build())
        .getKeysCount();
  }

  @Test
  void call_withoutToken_401UnauthenticatedAndNothingRuns() throws Exception {
    int before = keyCount();
    HttpResponse<String> r = ConsoleHttp.post(server, "CreateKey", "{\"name\":\"nope\"}", null);
    assertThat(r.statusCode()).isEqualTo(401);
    assertThat(r.headers().firstValue("content-type")).hasValue("application/json");
    assertThat(json(r).get("code").asText()).isEqualTo("unauthenticated");
    assertThat(json(r).get("message").asText()).isNotBlank();
    assertThat(keyCount()).isEqualTo(before);
  }

  @Test
  void call_wrongToken_401AndTheTokenIsNotEchoed() throws Exception {
    String wrong = "wrong-token-0123456789abcdef0123456789";
    HttpResponse<String> r = ConsoleHttp.post(server, "ListKeys", "{}", wrong);
    assertThat(r.statusCode()).isEqualTo(401);
    assertThat(json(r).get("code").asText()).isEqualTo("unauthenticated");
    assertThat(r.body()).doesNotContain(wrong);
  }

  @Test
  void createKey_badQuota_400InvalidArgumentNamingTheFieldAndNoKeyCreated() throws Exception {
    int before = keyCount();
    HttpResponse<String> r =
        ConsoleHttp.post(
            server,
            "CreateKey",
            "{\"name\":\"bad quota\",\"quotaUsd\":\"1.5e3\"}",
            TestServer.ADMIN_TOKEN);
    assertThat(r.statusCode()).isEqualTo(400);
    assertThat(json(r).get("code").asText()).isEqualTo("invalid_argument");
    assertThat(json(r).get("message").asText()).startsWith("quota_usd");
    assertThat(keyCount()).isEqualTo(before);
  }

  @Test
  void createKey_rightToken_200SameKeyOverGrpcAndAuditedAsTheTokensActor() throws Exception {
    HttpResponse<String> r =
        ConsoleHttp.post(
            server,
            "CreateKey",
            "{\"name\":\"from the console\",\"quotaUsd\":\"12.50\",\"maxConcurrentRequests\":3}",
            TestServer.ADMIN_TOKEN);
    assertThat(r.statusCode()).isEqualTo(200);
    JsonNode body = json(r);
    assertThat(body.get("secret").asText()).isNotBlank();
    String id = body.get("key").get("id").asText();
    // Printed with default values, so the browser sees every field.
    assertThat(body.get("key").get("quotaUsedUsd").asText()).isEqualTo("0");
    var viaGrpc = server.admin().getKey(GetKeyRequest.newBuilder().setId(id).build()).getKey();
    assertThat(viaGrpc.getName()).isEqualTo("from the console");
    assertThat(viaGrpc.getQuotaUsd()).isEqualTo(body.get("key").get("quotaUsd").asText());
    assertThat(viaGrpc.getMaxConcurrentRequests()).isEqualTo(3);
    assertThat(actors(id)).containsExactly("admin");
    assertThat(r.body()).doesNotContain(TestServer.ADMIN_TOKEN);
  }

  @Test
  void updateKey_fieldMaskInJson_changesOnlyTheNamedField() throws Exception {
    String id =
        json(ConsoleHttp.post(
                server,
                "CreateKey",
                "{\"name\":\"masked\",\"quotaUsd\":\"5\"}",
                TestServer.ADMIN_TOKEN))
            .get("key")
            .get("id")
            .asText();
    HttpResponse<String> r =
        ConsoleHttp.post(
            server,
            "UpdateKey",
            "{\"key\":{\"id\":\""
                + id
                + "\",\"quotaUsd\":\"7.25\",\"name\":\"ignored\"},\"updateMask\":\"quotaUsd\"}",
            TestServer.ADMIN_TOKEN);
    assertThat(r.statusCode()).isEqualTo(200);
    var k = server.admin().getKey(GetKeyRequest.newBuilder().setId(id).build()).getKey();
    assertThat(k.getQuotaUsd()).isEqualTo("7.25");
    assertThat(k.getName()).isEqualTo("masked");
  }

  @Test
  void getKey_unknownId_404NotFound() throws Exception {
    HttpResponse<String> r =
        ConsoleHttp.post(server, "GetKey", "{\"id\":\"999999999\"}", TestServer.ADMIN_TOKEN);
    assertThat(r.statusCode()).isEqualTo(404);
    assertThat(json(r).get("code").asText()).isEqualTo("not_found");
  }

  @Test
  void everyAdminRpc_isServedByTheOneBridge() throws Exception {
    // Each method of the service descriptor answers (an empty request is refused by the admin
    // service itself, or served), never 404 "no such method": no per-RPC code in the bridge.
    List<String> methods = new ArrayList<>();
    for (MethodDescriptor<?, ?> m : KeyAdminServiceGrpc.getServiceDescriptor().getMethods()) {
      methods.add(m.getBareMethodName());
    }
    assertThat(methods).contains("CreateKey", "ListKeys", "UpdateKey", "ResetQuota", "ListUsage");
    for (String m : methods) {
      HttpResponse<String> r = ConsoleHttp.post(server, m, "{}", TestServer.ADMIN_TOKEN);
      assertThat(r.statusCode()).as(m).isIn(200, 400);
      if (r.statusCode() == 400) {
        assertThat(json(r).get("code").asText()).as(m).isEqualTo("invalid_argument");
      }
    }
  }

  @Test
  void pipelinedCalls_answeredInOrderOnOneConnection() throws Exception {
    String body = "{\"id\":\"999999998\"}";
    String get =
        "POST /quota.v1.KeyAdminService/GetKey HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            + "authorization: Bearer "
            + TestServer.ADMIN_TOKEN
            + "\r\ncontent-length: "
            + body.length()
            + "\r\n\r\n"
            + body;
    String list =
        "POST /quota.v1.KeyAdminService/ListKeys HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            + "connection: close\r\ncontent-length: 2\r\n\r\n{}";
    try (java.net.Socket s = new java.net.Socket("127.0.0.1", server.app().consolePort())) {
      s.setSoTimeout(10_000);
      s.getOutputStream().write((get + list).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      s.getOutputStream().flush();
      String answer =
          new String(s.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      int notFound = answer.indexOf("HTTP/1.1 404");
      int unauthenticated = answer.indexOf("HTTP/1.1 401");
      assertThat(notFound).as(answer).isGreaterThanOrEqualTo(0);
      assertThat(unauthenticated).as(answer).isGreaterThan(notFound);
    }
  }

  @Test
  void consolePortZero_noConsoleListener() throws Exception {
    try (TestServer off = TestServer.start(db)) { // TestServer sets QUOTA_CONSOLE_PORT=0
      assertThat(off.app().consolePort()).isEqualTo(-1);
      assertThat(off.admin().listKeys(ListKeysRequest.getDefaultInstance())).isNotNull();
    }
  }

  @Test
  void unknownMethod_404Unimplemented() throws Exception {
    HttpResponse<String> r = ConsoleHttp.post(server, "DropAllKeys", "{}", TestServer.ADMIN_TOKEN);
    assertThat(r.statusCode()).isEqualTo(404);
    assertThat(json(r).get("code").asText()).isEqualTo("unimplemented");
  }

  @Test
  void body_unknownFieldOrNotJson_400InvalidArgument() throws Exception {
    HttpResponse<String> unknown =
        ConsoleHttp.post(server, "ListKeys", "{\"pageSizee\":3}", TestServer.ADMIN_TOKEN);
    assertThat(unknown.statusCode()).isEqualTo(400);
    assertThat(json(unknown).get("code").asText()).isEqualTo("invalid_argument");
    assertThat(json(unknown).get("message").asText()).contains("pageSizee");
    HttpResponse<String> garbage =
        ConsoleHttp.post(server, "ListKeys", "{not json", TestServer.ADMIN_TOKEN);
    assertThat(garbage.statusCode()).isEqualTo(400);
  }

  @Test
  void api_notPost_405WithAllow() throws Exception {
    HttpResponse<String> r =
        ConsoleHttp.send(server, "GET", "/quota.v1.KeyAdminService/ListKeys", null, null);
    assertThat(r.statusCode()).isEqualTo(405);
    assertThat(r.headers().firstValue("allow")).hasValue("POST");
    // A CORS preflight gets no Access-Control-* header: other origins cannot call the API.
    HttpResponse<String> preflight =
        ConsoleHttp.send(server, "OPTIONS", "/quota.v1.KeyAdminService/ListKeys", null, null);
    assertThat(preflight.statusCode()).isEqualTo(405);
    assertThat(preflight.headers().map().keySet()).noneMatch(h -> h.startsWith("access-control"));
  }

  @Test
  void api_formOrTextContentType_415() throws Exception {
    for (String type : List.of("text/plain", "application/x-www-form-urlencoded")) {
      HttpResponse<String> r =
          ConsoleHttp.send(server, "POST", "/quota.v1.KeyAdminService/ListKeys", type, "{}");
      assertThat(r.statusCode()).as(type).isEqualTo(415);
    }
  }

  @Test
  void api_bodyOverTheLimit_413() throws Exception {
    String big = "{\"name\":\"" + "x".repeat(ConsoleServer.MAX_BODY_BYTES) + "\"}";
    HttpResponse<String> r = ConsoleHttp.post(server, "CreateKey", big, TestServer.ADMIN_TOKEN);
    assertThat(r.statusCode()).isEqualTo(413);
  }

  @Test
  void api_otherOrigin_403() throws Exception {
    HttpResponse<String> r =
        ConsoleHttp.post(
            server,
            "ListKeys",
            "{}",
            TestServer.ADMIN_TOKEN,
            Map.of("origin", "https://evil.example"));
    assertThat(r.statusCode()).isEqualTo(403);
    assertThat(json(r).get("code").asText()).isEqualTo("permission_denied");
  }

  @Test
  void index_servedWithStrictSecurityHeaders() throws Exception {
    HttpResponse<String> r = ConsoleHttp.send(server, "GET", "/", null, null);
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.headers().firstValue("content-type")).hasValue("text/html; charset=utf-8");
    assertThat(r.body()).contains("<script type=\"module\" src=\"app.js\">");
    String csp = r.headers().firstValue("content-security-policy").orElseThrow();
    assertThat(csp)
        .contains("default-src 'none'")
        .contains("script-src 'self'")
        .contains("frame-ancestors 'none'")
        .doesNotContain("unsafe-inline")
        .doesNotContain("unsafe-eval");
    assertThat(r.headers().firstValue("x-content-type-options")).hasValue("nosniff");
    assertThat(r.headers().firstValue("x-frame-options")).hasValue("DENY");
    assertThat(r.headers().map().keySet()).noneMatch(h -> h.startsWith("access-control"));
    assertThat(r.headers().map().keySet()).doesNotContain("set-cookie");
    HttpResponse<String> js = ConsoleHttp.send(server, "GET", "/app.js", null, null);
    assertThat(js.headers().firstValue("content-type")).hasValue("text/javascript; charset=utf-8");
  }

  @Test
  void staticFiles_outsideTheConsoleFolder_404() throws Exception {
    for (String path :
        List.of(
            "/../logback.xml",
            "/%2e%2e/logback.xml",
            "/logback.xml",
            "/db/migration/V1__x.sql",
            "/app.js/")) {
      assertThat(ConsoleHttp.send(server, "GET", path, null, null).statusCode())
          .as(path)
          .isEqualTo(404);
    }
  }

  private static List<String> actors(String keyId) {
    return db.transactions()
        .inTransaction(
            c -> {
              List<String> out = new ArrayList<>();
              try (PreparedStatement ps =
                  c.prepareStatement("SELECT actor FROM key_audit WHERE key_id = ? ORDER BY id")) {
                ps.setLong(1, Long.parseLong(keyId));
                try (ResultSet rs = ps.executeQuery()) {
                  while (rs.next()) {
                    out.add(rs.getString(1));
                  }
                }
              }
              return out;
            });
  }
}
