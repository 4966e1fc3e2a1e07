package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Internal;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.ListValue;
import com.google.protobuf.Message;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.config.core.v3.Pipe;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link CheckReader} against protobuf's full parse ({@link CheckFacts#of} of {@code
 * CheckRequest.parseFrom}), the rule it must follow: over generated Envoy-shaped requests (both
 * header forms, key headers in any case, empty and repeated headers, unknown fields at every level,
 * fields in any order, messages split into several occurrences) it reads the same facts; over the
 * same requests truncated and mutated at random (a fuzz run), it never accepts what the parse
 * refuses and never reads other facts than the parse does.
 */
class CheckReaderTest {

  /** Names Check reads, in other cases and look-alikes, and names it must pass over. */
  private static final List<String> NAMES =
      List.of(
          "authorization",
          "Authorization",
          "AUTHORIZATION",
          "x-api-key",
          "X-Api-Key",
          "x-api-\u212Aey", // a Kelvin sign, which String.equalsIgnoreCase folds to k
          "x-goog-api-key",
          "anthropic-version",
          ":method",
          ":path",
          ":authority",
          "content-type",
          "authorization2",
          "x-api-ke",
          "",
          "provider");

  private static final List<String> VALUES =
      List.of(
          "Bearer sk-qa-0123456789abcdef",
          "bearer  sk-x ",
          "Basic Zm9v",
          "sk-abc",
          "",
          " ",
          "POST",
          "/v1/chat/completions",
          "/v1beta/models/gemini-2.0-flash:generateContent?key=sk-q",
          "2023-06-01",
          "caf\u00e9 \u4e2d\u6587 \ud83d\ude00",
          "openai",
          "Anthropic",
          "gemini");

  /** Requests per run; each seed's request and encoding are the same on every run. */
  private static final int REQUESTS = 4000;

  @Test
  void read_generatedRequest_agreesWithFullParse() throws Exception {
    for (long seed = 0; seed < REQUESTS; seed++) {
      Random random = new Random(seed);
      byte[] bytes = Scrambler.encode(request(random), random);

      CheckFacts read = CheckReader.read(bytes);

      // Every generated request is plainly well formed: the reader must never need the fallback.
      assertThat(read)
          .as("seed %d", seed)
          .isNotNull()
          .isEqualTo(CheckFacts.of(CheckRequest.parseFrom(bytes)));
    }
  }

  @Test
  void read_truncatedOrMutatedBytes_neverDisagreesWithFullParse() {
    int bothRead = 0;
    int bothRefused = 0;
    for (long seed = 0; seed < 4 * REQUESTS; seed++) {
      Random random = new Random(seed);
      byte[] bytes =
          Scrambler.mutate(
              Scrambler.encode(request(random), random), random, 1 + random.nextInt(4));

      CheckFacts read = CheckReader.read(bytes);
      CheckFacts parsed;
      try {
        parsed = CheckFacts.of(CheckRequest.parseFrom(bytes));
      } catch (InvalidProtocolBufferException refused) {
        parsed = null;
      }

      if (parsed == null) {
        assertThat(read).as("seed %d: bytes the full parse refuses", seed).isNull();
        bothRefused++;
      } else if (read != null) {
        assertThat(read).as("seed %d", seed).isEqualTo(parsed);
        bothRead++;
      }
    }
    // The run means something only if it holds the reader to both outcomes many times.
    assertThat(bothRead).isGreaterThan(REQUESTS / 4);
    assertThat(bothRefused).isGreaterThan(REQUESTS / 4);
  }

  @Test
  void validUtf8_anyBytes_agreesWithProtobuf() {
    byte[] interesting = {
      0x41,
      0x7f,
      (byte) 0x80,
      (byte) 0xbf,
      (byte) 0xc0,
      (byte) 0xc1,
      (byte) 0xc2,
      (byte) 0xdf,
      (byte) 0xe0,
      (byte) 0xa0,
      (byte) 0x9f,
      (byte) 0xed,
      (byte) 0xef,
      (byte) 0xf0,
      (byte) 0x90,
      (byte) 0x8f,
      (byte) 0xf4,
      (byte) 0xf5,
      (byte) 0xff
    };
    Random random = new Random(7);
    for (int i = 0; i < 200_000; i++) {
      byte[] bytes = new byte[random.nextInt(7)];
      for (int j = 0; j < bytes.length; j++) {
        bytes[j] =
            random.nextInt(4) == 0
                ? (byte) random.nextInt(256)
                : interesting[random.nextInt(interesting.length)];
      }
      assertThat(CheckReader.validUtf8(bytes, 0, bytes.length))
          .as("%s", java.util.HexFormat.of().formatHex(bytes))
          .isEqualTo(Internal.isValidUtf8(bytes));
    }
  }

  @Test
  void read_invalidUtf8InHeaderCheckIgnores_refusedLikeFullParse() {
    byte[] bytes =
        CheckRequest.newBuilder()
            .setAttributes(
                AttributeContext.newBuilder()
                    .setRequest(
                        AttributeContext.Request.newBuilder()
                            .setHttp(
                                AttributeContext.HttpRequest.newBuilder()
                                    .putHeaders("user-agent", "XXXX")
                                    .putHeaders("authorization", "Bearer sk-a"))))
            .build()
            .toByteArray();
    // 'XXXX' becomes a lone continuation byte: the message is no longer valid proto3.
    int at = new String(bytes, StandardCharsets.ISO_8859_1).indexOf("XXXX");
    bytes[at] = (byte) 0x80;

    assertThat(CheckReader.read(bytes)).isNull();
    assertThat(parses(bytes)).isFalse();
  }

  @Test
  void read_kelvinSignInRawHeaderName_isNoApiKey() {
    CheckRequest request =
        CheckRequest.newBuilder()
            .setAttributes(
                AttributeContext.newBuilder()
                    .setRequest(
                        AttributeContext.Request.newBuilder()
                            .setHttp(
                                AttributeContext.HttpRequest.newBuilder()
                                    .setHeaderMap(
                                        HeaderMap.newBuilder()
                                            .addHeaders(
                                                HeaderValue.newBuilder()
                                                    .setKey("x-api-\u212Aey")
                                                    .setRawValue(ByteString.copyFromUtf8("sk-k")))
                                            .addHeaders(
                                                HeaderValue.newBuilder()
                                                    .setKey("X-API-KEY")
                                                    .setRawValue(
                                                        ByteString.copyFromUtf8("sk-real")))))))
            .build();

    CheckFacts read = CheckReader.read(request.toByteArray());

    assertThat(read.apiKey()).isEqualTo("sk-real");
    assertThat(read).isEqualTo(CheckFacts.of(request));
  }

  @Test
  void read_metadataNestedPastReaderDepth_leftToFullParse() throws Exception {
    Value v = Value.newBuilder().setStringValue("leaf").build();
    for (int i = 0; i < 22; i++) {
      v =
          Value.newBuilder()
              .setStructValue(Struct.newBuilder().putFields("k", v))
              .build(); // three messages a level: Value, Struct, its map entry
    }
    CheckRequest request =
        EnvoyShapes.openAi("sk-deep").toBuilder()
            .setAttributes(
                EnvoyShapes.openAi("sk-deep").getAttributes().toBuilder()
                    .setMetadataContext(
                        Metadata.newBuilder()
                            .putFilterMetadata(
                                "deep", Struct.newBuilder().putFields("v", v).build())))
            .build();
    byte[] bytes = request.toByteArray();

    assertThat(CheckReader.read(bytes)).isNull();
    assertThat(CheckFacts.of(CheckRequest.parseFrom(bytes)).authorization())
        .isEqualTo("Bearer sk-deep");
  }

  @Test
  void read_unknownGroupField_leftToFullParse() throws Exception {
    byte[] plain = EnvoyShapes.openAi("sk-g").toByteArray();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    CodedOutputStream c = CodedOutputStream.newInstance(out);
    c.writeTag(999, 3); // start group 999
    c.writeInt32(1, 5);
    c.writeTag(999, 4); // end group 999
    c.flush();
    out.write(plain);
    byte[] bytes = out.toByteArray();

    assertThat(CheckReader.read(bytes)).isNull();
    assertThat(CheckFacts.of(CheckRequest.parseFrom(bytes)))
        .isEqualTo(CheckFacts.of(EnvoyShapes.openAi("sk-g")));
  }

  @Test
  void read_socketAddressAfterPipe_keepsJavaMergeOfOneofBuilder() throws Exception {
    // socket_address(10.0.0.1), then pipe, then socket_address with no address: protobuf-java
    // merges the second socket_address into the first one's builder.
    byte[] bytes = sourceAddresses(socket("10.0.0.1"), PIPE, socket(null));

    assertThat(CheckReader.read(bytes)).isEqualTo(CheckFacts.of(CheckRequest.parseFrom(bytes)));
  }

  @Test
  void read_pipeAfterSocketAddress_hasNoSourceAddress() throws Exception {
    byte[] bytes = sourceAddresses(socket("10.0.0.1"), PIPE);

    assertThat(CheckReader.read(bytes)).isEqualTo(CheckFacts.of(CheckRequest.parseFrom(bytes)));
    assertThat(CheckReader.read(bytes).sourceAddress()).isNull();
  }

  private static final Address PIPE =
      Address.newBuilder().setPipe(Pipe.newBuilder().setPath("/p")).build();

  private static Address socket(String address) {
    SocketAddress.Builder s = SocketAddress.newBuilder().setPortValue(9);
    if (address != null) {
      s.setAddress(address);
    }
    return Address.newBuilder().setSocketAddress(s).build();
  }

  /** A request whose source peer's address field comes once per {@code addresses}, in order. */
  private static byte[] sourceAddresses(Address... addresses) {
    byte[][] fields = new byte[addresses.length][];
    for (int i = 0; i < addresses.length; i++) {
      fields[i] = field(1, addresses[i]); // Peer.address
    }
    byte[] peer = concat(fields);
    byte[] attributes = field(1, peer); // AttributeContext.source
    return field(1, attributes); // CheckRequest.attributes
  }

  private static <T> T any(List<T> from, Random random) {
    return from.get(random.nextInt(from.size()));
  }

  private static String value(Random random) {
    if (random.nextInt(4) > 0) {
      return any(VALUES, random);
    }
    StringBuilder v = new StringBuilder();
    for (int i = random.nextInt(12); i > 0; i--) {
      v.appendCodePoint(
          random.nextInt(3) == 0 ? 0x80 + random.nextInt(0x2000) : 0x20 + random.nextInt(95));
    }
    return v.toString();
  }

  /** An Envoy-shaped request with headers in either form or both, keys in any case. */
  static CheckRequest request(Random random) {
    List<Map.Entry<String, String>> headers = new ArrayList<>();
    for (int i = random.nextInt(9); i > 0; i--) {
      headers.add(Map.entry(any(NAMES, random), value(random)));
    }
    List<HeaderValue> raw = new ArrayList<>();
    for (int i = random.nextInt(3) == 0 ? 0 : random.nextInt(7); i > 0; i--) {
      HeaderValue.Builder h =
          HeaderValue.newBuilder().setKey(any(NAMES, random)).setValue(value(random));
      switch (random.nextInt(3)) {
        case 0 -> {
          byte[] bytes = new byte[random.nextInt(6)];
          random.nextBytes(bytes); // raw_value is bytes: anything goes
          h.setRawValue(ByteString.copyFrom(bytes));
        }
        case 1 -> h.setRawValue(ByteString.copyFromUtf8(value(random)));
        default -> {}
      }
      raw.add(h.build());
    }
    List<Map.Entry<String, String>> extensions = new ArrayList<>();
    for (int i = random.nextInt(4); i > 0; i--) {
      extensions.add(
          Map.entry(any(List.of("provider", "other", "Provider"), random), value(random)));
    }
    return request(
        headers,
        raw,
        any(List.of("10.0.0.7", "2001:db8::1", "::ffff:10.1.2.3", "", "pipe", "none", "x"), random),
        any(List.of("", "POST", "GET"), random),
        random.nextInt(4) == 0 ? "" : any(VALUES, random),
        extensions);
  }

  private static CheckRequest request(
      List<Map.Entry<String, String>> headers,
      List<HeaderValue> raw,
      String source,
      String method,
      String path,
      List<Map.Entry<String, String>> extensions) {
    AttributeContext.HttpRequest.Builder http =
        AttributeContext.HttpRequest.newBuilder()
            .setMethod(method)
            .setPath(path)
            .setHost("gateway.example.com")
            .setProtocol("HTTP/2")
            .setSize(-1);
    headers.forEach(h -> http.putHeaders(h.getKey(), h.getValue()));
    if (!raw.isEmpty()) {
      http.setHeaderMap(HeaderMap.newBuilder().addAllHeaders(raw));
    }
    AttributeContext.Builder attributes =
        AttributeContext.newBuilder()
            .setRequest(AttributeContext.Request.newBuilder().setHttp(http))
            .setDestination(
                AttributeContext.Peer.newBuilder()
                    .setAddress(
                        Address.newBuilder()
                            .setSocketAddress(
                                SocketAddress.newBuilder()
                                    .setAddress("10.9.9.9")
                                    .setPortValue(443)))
                    .setPrincipal("spiffe://cluster.local/ns/gw/sa/envoy"))
            .setMetadataContext(
                Metadata.newBuilder()
                    .putFilterMetadata(
                        "envoy.filters.http.jwt_authn",
                        Struct.newBuilder()
                            .putFields(
                                "claims",
                                Value.newBuilder()
                                    .setListValue(
                                        ListValue.newBuilder()
                                            .addValues(Value.newBuilder().setNumberValue(1.5))
                                            .addValues(Value.newBuilder().setBoolValue(true)))
                                    .build())
                            .build()));
    extensions.forEach(e -> attributes.putContextExtensions(e.getKey(), e.getValue()));
    switch (source) {
      case "none" -> {}
      case "pipe" ->
          attributes.setSource(
              AttributeContext.Peer.newBuilder()
                  .setAddress(Address.newBuilder().setPipe(Pipe.newBuilder().setPath("/s"))));
      default ->
          attributes.setSource(
              AttributeContext.Peer.newBuilder()
                  .setAddress(
                      Address.newBuilder()
                          .setSocketAddress(
                              SocketAddress.newBuilder().setAddress(source).setPortValue(51234))));
    }
    return CheckRequest.newBuilder().setAttributes(attributes).build();
  }

  /**
   * Encodes a message as protobuf allows but protobuf-java never writes: fields in any order, a
   * singular message sometimes split over two occurrences (merged on parse), unknown fields of
   * every wire type (but groups) at every level.
   */
  static final class Scrambler {
    static byte[] encode(Message m, Random random) {
      return encode(m, random, true);
    }

    /** An encoding the parse reads back as {@code m} (but its unknown fields). */
    static byte[] equivalent(Message m, Random random) {
      return encode(m, random, false);
    }

    /**
     * @param twins whether a map entry may be followed by one of the same key and another value
     */
    private static byte[] encode(Message m, Random random, boolean twins) {
      List<byte[]> fields = new ArrayList<>();
      for (Map.Entry<FieldDescriptor, Object> e : m.getAllFields().entrySet()) {
        FieldDescriptor f = e.getKey();
        List<?> values = f.isRepeated() ? (List<?>) e.getValue() : List.of(e.getValue());
        for (Object v : values) {
          if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
            Message inner = (Message) v;
            if (!f.isRepeated() && random.nextInt(6) == 0 && inner.getAllFields().size() > 1) {
              // Split in two occurrences of disjoint fields: the parse merges them back.
              Message.Builder a = inner.newBuilderForType();
              Message.Builder b = inner.newBuilderForType();
              inner.getAllFields().forEach((k, x) -> (random.nextBoolean() ? a : b).setField(k, x));
              fields.add(field(f.getNumber(), encode(a.build(), random, twins)));
              fields.add(field(f.getNumber(), encode(b.build(), random, twins)));
            } else {
              fields.add(field(f.getNumber(), encode(inner, random, twins)));
            }
            FieldDescriptor value = inner.getDescriptorForType().findFieldByName("value");
            if (twins
                && f.isMapField()
                && value.getType() == FieldDescriptor.Type.STRING
                && random.nextInt(3) == 0) {
              // The same key again with another value: the last entry on the wire wins.
              Message twin =
                  inner.toBuilder()
                      .setField(value, VALUES.get(random.nextInt(VALUES.size())))
                      .build();
              fields.add(field(f.getNumber(), encode(twin, random, twins)));
            }
          } else {
            fields.add(scalar(f, v));
          }
        }
      }
      int unknown = random.nextInt(3);
      for (int i = 0; i < unknown; i++) {
        fields.add(unknownField(random, m.getDescriptorForType()));
      }
      if (random.nextBoolean()) {
        Collections.shuffle(fields, random);
      }
      return concat(fields.toArray(new byte[0][]));
    }

    /** One scalar field alone (a map entry's DynamicMessage would write its other field too). */
    private static byte[] scalar(FieldDescriptor f, Object v) {
      try {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        CodedOutputStream c = CodedOutputStream.newInstance(out);
        int n = f.getNumber();
        switch (f.getType()) {
          case STRING -> c.writeString(n, (String) v);
          case BYTES -> c.writeBytes(n, (ByteString) v);
          case BOOL -> c.writeBool(n, (Boolean) v);
          case INT32 -> c.writeInt32(n, (Integer) v);
          case SINT32 -> c.writeSInt32(n, (Integer) v);
          case UINT32 -> c.writeUInt32(n, (Integer) v);
          case FIXED32 -> c.writeFixed32(n, (Integer) v);
          case SFIXED32 -> c.writeSFixed32(n, (Integer) v);
          case INT64 -> c.writeInt64(n, (Long) v);
          case SINT64 -> c.writeSInt64(n, (Long) v);
          case UINT64 -> c.writeUInt64(n, (Long) v);
          case FIXED64 -> c.writeFixed64(n, (Long) v);
          case SFIXED64 -> c.writeSFixed64(n, (Long) v);
          case FLOAT -> c.writeFloat(n, (Float) v);
          case DOUBLE -> c.writeDouble(n, (Double) v);
          case ENUM -> c.writeEnum(n, ((EnumValueDescriptor) v).getNumber());
          default -> throw new IllegalArgumentException(f.getFullName());
        }
        c.flush();
        return out.toByteArray();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /**
     * A field the type does not know: a number it does not use, or one it uses sent with another
     * wire type (protobuf keeps either as an unknown field).
     */
    private static byte[] unknownField(Random random, Descriptor type) {
      int number =
          random.nextBoolean()
              ? 1000 + random.nextInt(5000)
              : 1 + random.nextInt(type.getFields().size() + 3);
      FieldDescriptor known = type.findFieldByNumber(number);
      int wire;
      do {
        wire = List.of(0, 1, 2, 5).get(random.nextInt(4));
      } while (known != null
          && (wire == known.getLiteType().getWireType()
              || (wire == 2 && known.isRepeated() && known.isPackable())));
      try {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        CodedOutputStream c = CodedOutputStream.newInstance(out);
        switch (wire) {
          case 0 -> c.writeUInt64(number, random.nextLong());
          case 5 -> c.writeFixed32(number, random.nextInt());
          case 1 -> c.writeFixed64(number, random.nextLong());
          default -> {
            byte[] junk = new byte[random.nextInt(5)];
            random.nextBytes(junk);
            c.writeByteArray(number, junk);
          }
        }
        c.flush();
        return out.toByteArray();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /** Truncates, flips, inserts and deletes bytes. */
    static byte[] mutate(byte[] bytes, Random random, int times) {
      byte[] b = bytes;
      for (int t = 0; t < times && b.length > 0; t++) {
        int at = random.nextInt(b.length);
        switch (random.nextInt(5)) {
          case 0 -> b = java.util.Arrays.copyOf(b, at);
          case 1 -> b[at] = (byte) random.nextInt(256);
          case 2 -> b[at] = (byte) (b[at] ^ (1 << random.nextInt(8)));
          case 3 -> {
            byte[] c = new byte[b.length + 1];
            System.arraycopy(b, 0, c, 0, at);
            c[at] = (byte) random.nextInt(256);
            System.arraycopy(b, at, c, at + 1, b.length - at);
            b = c;
          }
          default -> {
            byte[] c = new byte[b.length - 1];
            System.arraycopy(b, 0, c, 0, at);
            System.arraycopy(b, at + 1, c, at, b.length - at - 1);
            b = c;
          }
        }
      }
      return b;
    }
  }

  private static boolean parses(byte[] bytes) {
    try {
      CheckRequest.parseFrom(bytes);
      return true;
    } catch (InvalidProtocolBufferException e) {
      return false;
    }
  }

  private static byte[] field(int number, Message m) {
    return field(number, m.toByteArray());
  }

  private static byte[] field(int number, byte[] content) {
    return concat(varint(number << 3 | 2), varint(content.length), content);
  }

  private static byte[] varint(int v) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while ((v & ~0x7f) != 0) {
      out.write((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.write(v);
    return out.toByteArray();
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }

  /** Requests as Envoy sends them, for the examples. */
  static final class EnvoyShapes {
    static CheckRequest openAi(String key) {
      return io.quotaauthority.testing.EnvoyChecks.post("/v1/chat/completions").bearer(key).build();
    }
  }
}
