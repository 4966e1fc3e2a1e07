package io.quotaauthority.faults;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.testing.TestDatabase;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QUOTA_LOG_FORMAT=json in the real entry point: every line the process writes, from start to
 * SIGTERM, is one JSON object, gRPC's own java.util.logging lines included.
 */
class JsonLogsIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dataDir;

  @Test
  void serve_jsonFormatWithGrpcTransportLogLine_everyLineParsesAsJson() throws Exception {
    try (TestDatabase db = TestDatabase.create();
        ForkedServer server = ForkedServer.start(db.url(), dataDir, "--log-format", "json")) {
      server.awaitServing(Duration.ofSeconds(60));
      server.admin().createKey(CreateKeyRequest.newBuilder().setName("logged").build());
      // HTTP/1.1 on the HTTP/2 admin port: gRPC's Netty transport logs "Transport failed" through
      // java.util.logging, which without the bridge prints plain text.
      try (Socket s = new Socket("127.0.0.1", server.adminPort())) {
        OutputStream out = s.getOutputStream();
        out.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        s.getInputStream().readAllBytes();
      }
      Thread.sleep(500);
      server.process().destroy(); // SIGTERM: the shutdown lines count too
      assertThat(server.process().waitFor(30, TimeUnit.SECONDS)).isTrue();

      String log = server.logText();
      List<JsonNode> lines = new ArrayList<>();
      for (String line : log.split("\n")) {
        if (line.isBlank()) {
          continue;
        }
        try {
          lines.add(JSON.readTree(line));
        } catch (Exception e) {
          throw new AssertionError("not a JSON line: " + line + "\n--- whole log:\n" + log, e);
        }
      }
      assertThat(lines).allSatisfy(l -> assertThat(l.has("level") && l.has("loggerName")).isTrue());
      assertThat(lines)
          .extracting(l -> l.get("loggerName").asText())
          .as(log)
          .anyMatch(name -> name.startsWith("io.grpc."))
          .anyMatch(name -> name.equals("io.quotaauthority.admin.KeyAdmin"));
    }
  }
}
