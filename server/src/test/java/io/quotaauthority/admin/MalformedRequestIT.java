package io.quotaauthority.admin;

import static io.quotaauthority.admin.AdminFixtures.create;
import static io.quotaauthority.admin.AdminFixtures.snapshot;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Message;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.stub.ClientCalls;
import io.quotaauthority.grpc.MalformedRequests;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.UpdateKeyResponse;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Requests that do not parse, sent as raw bytes with the test's own marshaller (a well-behaved
 * client library cannot produce them): INVALID_ARGUMENT naming the field, nothing written, and
 * counted in quota_admin_calls_total like every other answer.
 */
class MalformedRequestIT {
  /** 0xC3 0x28: a two-byte UTF-8 lead followed by a byte that cannot continue it. */
  private static final byte[] NOT_UTF8 = {(byte) 0xC3, 0x28};

  private static TestDatabase db;
  private static TestServer server;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static final MethodDescriptor.Marshaller<byte[]> RAW = MalformedRequests.BYTES;

  /** Calls a KeyAdminService method with these bytes as its request, with the admin token. */
  private static <A extends Message> StatusRuntimeException refused(
      MethodDescriptor<?, A> real, A responsePrototype, byte[] request) {
    MethodDescriptor<byte[], A> raw =
        MethodDescriptor.<byte[], A>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName(real.getFullMethodName())
            .setRequestMarshaller(RAW)
            .setResponseMarshaller(ProtoUtils.marshaller(responsePrototype))
            .build();
    Channel channel =
        ClientInterceptors.intercept(
            server.adminChannel(), TestServer.bearer(TestServer.ADMIN_TOKEN));
    try {
      ClientCalls.blockingUnaryCall(
          channel, raw, CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS), request);
    } catch (StatusRuntimeException e) {
      return e;
    }
    throw new AssertionError("the server accepted a malformed request");
  }

  private static byte[] encode(int field, byte[] value) throws IOException {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    CodedOutputStream out = CodedOutputStream.newInstance(buf);
    out.writeBytes(field, ByteString.copyFrom(value)); // length-delimited, unchecked
    out.flush();
    return buf.toByteArray();
  }

  private static double adminCalls(String method, String code) {
    Matcher m = Pattern.compile("quota_admin_calls_total\\{[^}]*\\}\\s+(\\S+)").matcher("");
    for (String line : server.app().operations().metrics().scrape().split("\n")) {
      if (line.startsWith("quota_admin_calls_total{")
          && line.contains("method=\"" + method + "\"")
          && line.contains("code=\"" + code + "\"")
          && m.reset(line).matches()) {
        return Double.parseDouble(m.group(1));
      }
    }
    return 0;
  }

  @Test
  void createKey_nameNotUtf8_invalidArgumentNamingNameNothingWrittenAndCounted() throws Exception {
    String method = KeyAdminServiceGrpc.getCreateKeyMethod().getFullMethodName();
    double before = adminCalls(method, "INVALID_ARGUMENT");
    List<String> rows = snapshot(db);

    StatusRuntimeException e =
        refused(
            KeyAdminServiceGrpc.getCreateKeyMethod(),
            CreateKeyResponse.getDefaultInstance(),
            encode(1, NOT_UTF8));

    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription()).isEqualTo("name is not valid UTF-8");
    assertThat(snapshot(db)).isEqualTo(rows);
    assertThat(adminCalls(method, "INVALID_ARGUMENT")).isEqualTo(before + 1);
    assertThat(adminCalls(method, "UNKNOWN")).isZero();
  }

  @Test
  void updateKey_nestedNameNotUtf8_invalidArgumentNamingKeyName() throws Exception {
    ApiKey target = create(server.admin(), "target", "10");
    byte[] key =
        concat(encode(1, target.getId().getBytes(StandardCharsets.UTF_8)), encode(2, NOT_UTF8));
    List<String> rows = snapshot(db);

    StatusRuntimeException e =
        refused(
            KeyAdminServiceGrpc.getUpdateKeyMethod(),
            UpdateKeyResponse.getDefaultInstance(),
            encode(1, key));

    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription()).isEqualTo("key.name is not valid UTF-8");
    assertThat(snapshot(db)).isEqualTo(rows);
  }

  @Test
  void createKey_truncatedMessage_invalidArgumentNamingTheRequest() throws Exception {
    // Field 1, length 10, then only two bytes.
    byte[] truncated = {0x0A, 0x0A, 'a', 'b'};

    StatusRuntimeException e =
        refused(
            KeyAdminServiceGrpc.getCreateKeyMethod(),
            CreateKeyResponse.getDefaultInstance(),
            truncated);

    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription())
        .isEqualTo("request is not a valid quota.v1.KeyAdminService.CreateKey message");
  }

  @Test
  void listKeys_wellFormedAfterMalformed_stillAnswered() {
    assertThat(server.admin().listKeys(ListKeysRequest.newBuilder().setPageSize(10).build()))
        .isNotNull();
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
