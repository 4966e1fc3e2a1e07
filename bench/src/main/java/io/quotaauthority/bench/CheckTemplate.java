package io.quotaauthority.bench;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.Timestamp;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A serialized CheckRequest shaped the way Envoy's ext_authz filter sends one for an OpenAI chat
 * completion (lowercase headers, pseudo-headers in the map, path, context_extensions), with the
 * key's secret at a known offset. Every bench secret has the same length, so the request for key
 * {@code i} is the template with 37 digits overwritten: the load generator spends no CPU building
 * or serializing protobuf, which leaves the cores to the server under test.
 */
final class CheckTemplate {
  /** CheckResponse.status: field 1, length-delimited. */
  private static final int STATUS_TAG = (1 << 3) | 2;

  /** google.rpc.Status.code: field 1, varint. */
  private static final int CODE_TAG = 1 << 3;

  private final byte[] bytes;
  private final int digitsOffset;

  private CheckTemplate(byte[] bytes, int digitsOffset) {
    this.bytes = bytes;
    this.digitsOffset = digitsOffset;
  }

  static CheckTemplate envoyChatCompletion() {
    String placeholder = BenchKeys.PREFIX + "#".repeat(BenchKeys.DIGITS);
    byte[] bytes = envoyRequest(placeholder).toByteArray();
    byte[] needle = placeholder.getBytes(StandardCharsets.US_ASCII);
    int at = indexOf(bytes, needle, 0);
    if (at < 0 || indexOf(bytes, needle, at + 1) >= 0) {
      throw new IllegalStateException(
          "the placeholder secret must occur exactly once in the template");
    }
    return new CheckTemplate(bytes, at + BenchKeys.PREFIX.length());
  }

  /** The Envoy-shaped chat completion request presenting {@code secret}, as a message. */
  static CheckRequest envoyRequest(String secret) {
    AttributeContext.HttpRequest http =
        AttributeContext.HttpRequest.newBuilder()
            .setId("14588243912478612013")
            .setMethod("POST")
            .setPath("/v1/chat/completions")
            .setHost("gateway.example.com")
            .setScheme("https")
            .setProtocol("HTTP/1.1")
            .setSize(512)
            .putHeaders(":authority", "gateway.example.com")
            .putHeaders(":method", "POST")
            .putHeaders(":path", "/v1/chat/completions")
            .putHeaders(":scheme", "https")
            .putHeaders("authorization", "Bearer " + secret)
            .putHeaders("content-type", "application/json")
            .putHeaders("content-length", "512")
            .putHeaders("accept", "application/json")
            .putHeaders("user-agent", "OpenAI/Python 1.51.0")
            .putHeaders("x-forwarded-proto", "https")
            .putHeaders("x-request-id", "6f1c7f2e-3d0a-4b8e-9a57-3c2b1d0e9f11")
            .putHeaders("x-envoy-expected-rq-timeout-ms", "600000")
            .build();
    return CheckRequest.newBuilder()
        .setAttributes(
            AttributeContext.newBuilder()
                .setSource(peer("127.0.0.1", 51234))
                .setDestination(peer("127.0.0.1", 10000))
                .setRequest(
                    AttributeContext.Request.newBuilder()
                        .setTime(
                            Timestamp.newBuilder().setSeconds(1_767_225_600L).setNanos(123_000_000))
                        .setHttp(http))
                .putContextExtensions("provider", "openai"))
        .build();
  }

  private static AttributeContext.Peer peer(String ip, int port) {
    return AttributeContext.Peer.newBuilder()
        .setAddress(
            Address.newBuilder()
                .setSocketAddress(SocketAddress.newBuilder().setAddress(ip).setPortValue(port)))
        .build();
  }

  /** The serialized request presenting key {@code index}'s secret. */
  byte[] forKey(long index) {
    byte[] b = bytes.clone();
    BenchKeys.writeDigits(b, digitsOffset, index);
    return b;
  }

  int size() {
    return bytes.length;
  }

  static int indexOf(byte[] hay, byte[] needle, int from) {
    outer:
    for (int i = from; i <= hay.length - needle.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  /**
   * CheckResponse.status.code (google.rpc.Code) read straight off the wire: 0 allows, anything else
   * is a denial. Cheaper than parsing the whole response, which the load generator would otherwise
   * pay on the cores it shares with the server.
   */
  static int statusCode(byte[] response) {
    try {
      CodedInputStream in = CodedInputStream.newInstance(response);
      while (true) {
        int tag = in.readTag();
        if (tag == 0) {
          return 0;
        }
        if (tag == STATUS_TAG) {
          int limit = in.pushLimit(in.readRawVarint32());
          while (true) {
            int inner = in.readTag();
            if (inner == 0) {
              return 0;
            }
            if (inner == CODE_TAG) {
              return in.readInt32();
            }
            in.skipField(inner);
          }
        }
        in.skipField(tag);
      }
    } catch (IOException e) {
      return -1;
    }
  }

  @Override
  public String toString() {
    return "CheckTemplate[" + bytes.length + " bytes, " + Arrays.hashCode(bytes) + "]";
  }
}
