package io.quotaauthority.grpc;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnknownFieldSet;
import java.util.Optional;

/**
 * Finds which string field of an encoded message holds bytes that are not UTF-8, so a refusal can
 * name it (protobuf's own parser only says "Protocol message had invalid UTF-8"). Reads the bytes
 * as an {@link UnknownFieldSet}, which does not check UTF-8, and walks the message's descriptor
 * into nested messages: the path is the proto field names joined by dots ({@code key.name}).
 */
public final class Utf8Fields {
  /** Deeper nesting is not looked into (the admin messages are two levels deep). */
  private static final int MAX_DEPTH = 16;

  private Utf8Fields() {}

  /** The path of the first string field that is not valid UTF-8, or empty if there is none. */
  public static Optional<String> firstInvalid(Descriptor type, byte[] encoded) {
    try {
      return firstInvalid(type, UnknownFieldSet.parseFrom(encoded), "", 0);
    } catch (InvalidProtocolBufferException e) {
      return Optional.empty(); // malformed in another way: the caller names no field
    }
  }

  private static Optional<String> firstInvalid(
      Descriptor type, UnknownFieldSet fields, String prefix, int depth)
      throws InvalidProtocolBufferException {
    for (FieldDescriptor f : type.getFields()) {
      UnknownFieldSet.Field values = fields.getField(f.getNumber());
      if (values == null) {
        continue;
      }
      String path = prefix + f.getName();
      for (ByteString value : values.getLengthDelimitedList()) {
        if (f.getType() == FieldDescriptor.Type.STRING && !value.isValidUtf8()) {
          return Optional.of(path);
        }
        if (f.getType() == FieldDescriptor.Type.MESSAGE && depth < MAX_DEPTH) {
          Optional<String> inner =
              firstInvalid(
                  f.getMessageType(), UnknownFieldSet.parseFrom(value), path + ".", depth + 1);
          if (inner.isPresent()) {
            return inner;
          }
        }
      }
    }
    return Optional.empty();
  }
}
