package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.google.protobuf.CodedOutputStream;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.quotaauthority.grpc.MalformedRequests;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Check as bytes on a real gRPC channel: whatever order and extras its fields come in, a request
 * gets the answer its parsed form gets; bytes that are no CheckRequest get INVALID_ARGUMENT saying
 * why; unusual but valid bytes (a protobuf group) are parsed in full and answered the same.
 */
class CheckWireIT {
  /** Check with raw request bytes and the response parsed as usual. */
  private static final MethodDescriptor<byte[], CheckResponse> RAW_CHECK =
      AuthorizationGrpc.getCheckMethod().toBuilder(
              MalformedRequests.BYTES, AuthorizationGrpc.getCheckMethod().getResponseMarshaller())
          .build();

  private TestDatabase db;
  private TestServer server;
  private String secret;

  @BeforeEach
  void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
    secret =
        server
            .admin()
            .createKey(CreateKeyRequest.newBuilder().setName("wire").setQuotaUsd("5").build())
            .getSecret();
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    db.close();
  }

  private CheckResponse send(byte[] request) {
    return ClientCalls.blockingUnaryCall(
        server.authzChannel(),
        RAW_CHECK,
        io.grpc.CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS),
        request);
  }

  @Test
  void check_scrambledEncodings_answeredAsTheParsedRequest() throws Exception {
    CheckRequest request = EnvoyChecks.post("/v1/chat/completions").bearer(secret).build();
    CheckResponse canonical = send(request.toByteArray());
    assertThat(canonical.getStatus().getCode()).isZero();
    assertThat(canonical.getOkResponse().getResponseHeadersToAddList())
        .anySatisfy(
            h -> {
              assertThat(h.getHeader().getKey()).isEqualTo("x-quota-remaining-usd");
              assertThat(h.getHeader().getValue()).isEqualTo("5");
            });

    for (long seed = 0; seed < 50; seed++) {
      byte[] scrambled = CheckReaderTest.Scrambler.equivalent(request, new Random(seed));
      assertThat(CheckFacts.of(CheckRequest.parseFrom(scrambled)))
          .as("seed %d", seed)
          .isEqualTo(CheckFacts.of(request));

      assertThat(send(scrambled)).as("seed %d", seed).isEqualTo(canonical);
    }
  }

  @Test
  void check_invalidUtf8Header_invalidArgumentNamingTheField() {
    byte[] bytes =
        EnvoyChecks.post("/v1/chat/completions")
            .bearer(secret)
            .header("user-agent", "XXXX")
            .build()
            .toByteArray();
    bytes[new String(bytes, StandardCharsets.ISO_8859_1).indexOf("XXXX")] = (byte) 0xff;

    StatusRuntimeException e =
        catchThrowableOfType(StatusRuntimeException.class, () -> send(bytes));

    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription())
        .isEqualTo("attributes.request.http.headers.value is not valid UTF-8");
  }

  @Test
  void check_truncatedRequest_invalidArgument() {
    byte[] whole = EnvoyChecks.post("/v1/chat/completions").bearer(secret).build().toByteArray();
    byte[] truncated = java.util.Arrays.copyOf(whole, whole.length - 3);

    StatusRuntimeException e =
        catchThrowableOfType(StatusRuntimeException.class, () -> send(truncated));

    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription())
        .isEqualTo("request is not a valid envoy.service.auth.v3.Authorization.Check message");
  }

  @Test
  void check_unknownGroupField_parsedInFullAndAnswered() throws Exception {
    CheckRequest request = EnvoyChecks.post("/v1/chat/completions").bearer(secret).build();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    CodedOutputStream c = CodedOutputStream.newInstance(out);
    c.writeTag(999, 3); // an unknown group: valid protobuf the byte reader leaves to the parse
    c.writeInt32(1, 5);
    c.writeTag(999, 4);
    c.flush();
    out.write(request.toByteArray());

    CheckResponse answer = send(out.toByteArray());

    assertThat(answer).isEqualTo(send(request.toByteArray()));
    assertThat(answer.getStatus().getCode()).isZero();
  }

  @Test
  void check_unknownKeyThroughGeneratedStub_401BodyUnchanged() {
    CheckResponse r =
        AuthorizationGrpc.newBlockingStub(server.authzChannel())
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .check(EnvoyChecks.post("/v1/chat/completions").bearer("sk-not-a-key-0000").build());

    assertThat(r.getDeniedResponse().getStatus().getCodeValue()).isEqualTo(401);
    assertThat(r)
        .isEqualTo(
            CheckResponses.denial(
                    io.quotaauthority.provider.Provider.OPENAI,
                    io.quotaauthority.keys.Verdict.UNKNOWN_KEY)
                .response());
  }
}
