package io.quotaauthority.grpc;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Which string field of an encoded request is not UTF-8: a table of encodings and the path named.
 */
class Utf8FieldsTest {
  private static final byte[] BAD = {(byte) 0xC3, 0x28};
  private static final byte[] LONE_SURROGATE = {(byte) 0xED, (byte) 0xA0, (byte) 0x80};

  private static byte[] field(int number, byte[] value) {
    try {
      ByteArrayOutputStream buf = new ByteArrayOutputStream();
      CodedOutputStream out = CodedOutputStream.newInstance(buf);
      out.writeBytes(number, ByteString.copyFrom(value));
      out.flush();
      return buf.toByteArray();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of(
            "create, valid",
            "CreateKeyRequest",
            concat(field(1, utf8("é-team")), field(2, utf8("10"))),
            null),
        Arguments.of("create, bad name", "CreateKeyRequest", field(1, BAD), "name"),
        Arguments.of(
            "create, bad quota",
            "CreateKeyRequest",
            concat(field(1, utf8("ok")), field(2, BAD)),
            "quota_usd"),
        Arguments.of("create, surrogate", "CreateKeyRequest", field(1, LONE_SURROGATE), "name"),
        Arguments.of("update, bad key.id", "UpdateKeyRequest", field(1, field(1, BAD)), "key.id"),
        Arguments.of(
            "update, bad key.quota_usd",
            "UpdateKeyRequest",
            field(1, concat(field(1, utf8("4")), field(5, BAD))),
            "key.quota_usd"),
        Arguments.of(
            "update, bad mask path",
            "UpdateKeyRequest",
            field(2, field(1, BAD)),
            "update_mask.paths"),
        Arguments.of(
            "not a message at all", "CreateKeyRequest", new byte[] {0x0A, 0x0A, 'a'}, null));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void firstInvalid_encodedRequest_namesTheField(
      String title, String type, byte[] encoded, String expected) {
    var descriptor =
        type.equals("CreateKeyRequest")
            ? CreateKeyRequest.getDescriptor()
            : UpdateKeyRequest.getDescriptor();

    assertThat(Utf8Fields.firstInvalid(descriptor, encoded))
        .isEqualTo(Optional.ofNullable(expected));
  }
}
