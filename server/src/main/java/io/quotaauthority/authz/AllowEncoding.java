package io.quotaauthority.authz;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.auth.v3.OkHttpResponse;
import io.quotaauthority.provider.GatewayHeaders;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * The allow response, written straight as protobuf bytes: the one definition of what an allowed
 * request carries (see {@link CheckResponses#allow}, which parses these bytes for the rest of the
 * code). Writing it per Check costs about as much as sending a prepared one and keeps nothing per
 * key; a prepared response held by every cached key had cost more heap than the key itself.
 *
 * <p>Fields go in field-number order, as protobuf writes them, so the bytes equal the message's own
 * encoding ({@code AllowEncodingTest} checks that over every combination of options).
 *
 * <p>Upstream headers (OkHttpResponse.headers, each OVERWRITE_IF_EXISTS_OR_ADD): x-quota-key-id,
 * x-quota-key-limited, then x-quota-key-concurrency, x-quota-key-models and x-quota-hold-id when
 * the key has them. Removed (headers_to_remove): the client's key headers, and the gateway headers
 * only Check or metering may set that this answer does not set. On the response: x-quota-remaining-
 * usd and x-quota-budget-resets-at when known. Dynamic metadata: {@code key_id}.
 */
final class AllowEncoding {
  private AllowEncoding() {}

  /** Always removed: a client's key must not reach a provider, nor its own admission mark. */
  private static final String[] ALWAYS_REMOVED = {
    "authorization", "x-api-key", "x-goog-api-key", GatewayHeaders.ADMITTED
  };

  private static final int APPEND_ACTION =
      HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD.getNumber();

  private static final byte[] KEY_ID = ascii(GatewayHeaders.KEY_ID);
  private static final byte[] KEY_LIMITED = ascii(GatewayHeaders.KEY_LIMITED);
  private static final byte[] KEY_CONCURRENCY = ascii(GatewayHeaders.KEY_CONCURRENCY);
  private static final byte[] KEY_MODELS = ascii(GatewayHeaders.KEY_MODELS);
  private static final byte[] HOLD_ID = ascii(GatewayHeaders.HOLD_ID);
  private static final byte[] REMAINING = ascii(GatewayHeaders.REMAINING_USD);
  private static final byte[] RESETS_AT = ascii(GatewayHeaders.BUDGET_RESETS_AT);
  private static final byte[] TRUE = ascii("true");
  private static final byte[] FALSE = ascii("false");
  private static final byte[] METADATA_KEY = ascii("key_id");
  private static final byte[] QUERY_KEY = ascii("key");
  private static final byte[][] ALWAYS = new byte[ALWAYS_REMOVED.length][];

  static {
    for (int i = 0; i < ALWAYS.length; i++) {
      ALWAYS[i] = ascii(ALWAYS_REMOVED[i]);
    }
  }

  /**
   * @param keyId the key's id (x-quota-key-id, metadata key_id)
   * @param remaining USD left as Money.format writes it, or null for an unlimited key
   * @param stripQueryKey whether Envoy must remove the {@code key} query parameter
   * @param concurrency the key's cap as text, or null for none
   * @param models the key's model allow-list header, or null for none
   * @param resetsAt when the key's budget period ends (RFC 3339), or null
   * @param holdId the reporter hold's id for x-quota-hold-id, or null for none
   */
  static byte[] encode(
      String keyId,
      String remaining,
      boolean stripQueryKey,
      String concurrency,
      String models,
      String resetsAt,
      String holdId) {
    return encode(keyId, remaining, stripQueryKey, concurrency, models, resetsAt, holdId, NO_BYTES);
  }

  /**
   * Response headers (names and values in turn) as the allow's bytes carry them after its own:
   * encoded once by a caller that keeps them (a key's window and rate-limit headers stand until its
   * figures change), then copied into each allow.
   */
  static byte[] responseHeaders(String[] namesAndValues) {
    if (namesAndValues.length == 0) {
      return NO_BYTES;
    }
    byte[][] b = new byte[namesAndValues.length][];
    for (int i = 0; i < b.length; i++) {
      b[i] = utf8(namesAndValues[i]);
    }
    byte[] out = new byte[options(OkHttpResponse.RESPONSE_HEADERS_TO_ADD_FIELD_NUMBER, b)];
    CodedOutputStream c = CodedOutputStream.newInstance(out);
    try {
      for (int i = 0; i + 1 < b.length; i += 2) {
        writeOption(c, OkHttpResponse.RESPONSE_HEADERS_TO_ADD_FIELD_NUMBER, b[i], b[i + 1]);
      }
      c.checkNoSpaceLeft();
    } catch (IOException e) {
      throw new UncheckedIOException("the response headers' size was miscounted", e);
    }
    return out;
  }

  private static final byte[] NO_BYTES = {};

  /**
   * As above, with more response headers already encoded by {@link #responseHeaders} (field order
   * holds: they come last of the response headers to add, as in the message).
   */
  static byte[] encode(
      String keyId,
      String remaining,
      boolean stripQueryKey,
      String concurrency,
      String models,
      String resetsAt,
      String holdId,
      byte[] responseHeaders) {
    byte[] id = utf8(keyId);
    byte[] left = utf8(remaining);
    byte[] cap = utf8(concurrency);
    byte[] allowed = utf8(models);
    byte[] resets = utf8(resetsAt);
    byte[] hold = utf8(holdId);

    int ok =
        option(OkHttpResponse.HEADERS_FIELD_NUMBER, KEY_ID, id)
            + option(OkHttpResponse.HEADERS_FIELD_NUMBER, KEY_LIMITED, left == null ? FALSE : TRUE)
            + option(OkHttpResponse.HEADERS_FIELD_NUMBER, KEY_CONCURRENCY, cap)
            + option(OkHttpResponse.HEADERS_FIELD_NUMBER, KEY_MODELS, allowed)
            + option(OkHttpResponse.HEADERS_FIELD_NUMBER, HOLD_ID, hold)
            + removed(hold, cap, allowed)
            + option(OkHttpResponse.RESPONSE_HEADERS_TO_ADD_FIELD_NUMBER, REMAINING, left)
            + option(OkHttpResponse.RESPONSE_HEADERS_TO_ADD_FIELD_NUMBER, RESETS_AT, resets)
            + responseHeaders.length
            + (stripQueryKey
                ? bytesSize(OkHttpResponse.QUERY_PARAMETERS_TO_REMOVE_FIELD_NUMBER, QUERY_KEY)
                : 0);
    int value = bytesSize(Value.STRING_VALUE_FIELD_NUMBER, id);
    int entry = bytesSize(1, METADATA_KEY) + nestedSize(2, value);
    int struct = nestedSize(Struct.FIELDS_FIELD_NUMBER, entry);
    int size =
        nestedSize(CheckResponse.STATUS_FIELD_NUMBER, 0) // OK is status code 0: an empty Status
            + nestedSize(CheckResponse.OK_RESPONSE_FIELD_NUMBER, ok)
            + nestedSize(CheckResponse.DYNAMIC_METADATA_FIELD_NUMBER, struct);

    byte[] out = new byte[size];
    CodedOutputStream c = CodedOutputStream.newInstance(out);
    try {
      nested(c, CheckResponse.STATUS_FIELD_NUMBER, 0);
      nested(c, CheckResponse.OK_RESPONSE_FIELD_NUMBER, ok);
      writeOption(c, OkHttpResponse.HEADERS_FIELD_NUMBER, KEY_ID, id);
      writeOption(c, OkHttpResponse.HEADERS_FIELD_NUMBER, KEY_LIMITED, left == null ? FALSE : TRUE);
      writeOption(c, OkHttpResponse.HEADERS_FIELD_NUMBER, KEY_CONCURRENCY, cap);
      writeOption(c, OkHttpResponse.HEADERS_FIELD_NUMBER, KEY_MODELS, allowed);
      writeOption(c, OkHttpResponse.HEADERS_FIELD_NUMBER, HOLD_ID, hold);
      for (byte[] name : ALWAYS) {
        c.writeByteArray(OkHttpResponse.HEADERS_TO_REMOVE_FIELD_NUMBER, name);
      }
      if (hold == null) {
        // Only Check hands out hold ids: a client's own must not reach the reporter.
        c.writeByteArray(OkHttpResponse.HEADERS_TO_REMOVE_FIELD_NUMBER, HOLD_ID);
      }
      if (cap == null) {
        // A client's own would make metering count it against a cap the key does not have.
        c.writeByteArray(OkHttpResponse.HEADERS_TO_REMOVE_FIELD_NUMBER, KEY_CONCURRENCY);
      }
      if (allowed == null) {
        // It would only make metering stricter, but it is not the client's to send.
        c.writeByteArray(OkHttpResponse.HEADERS_TO_REMOVE_FIELD_NUMBER, KEY_MODELS);
      }
      writeOption(c, OkHttpResponse.RESPONSE_HEADERS_TO_ADD_FIELD_NUMBER, REMAINING, left);
      writeOption(c, OkHttpResponse.RESPONSE_HEADERS_TO_ADD_FIELD_NUMBER, RESETS_AT, resets);
      c.writeRawBytes(responseHeaders);
      if (stripQueryKey) {
        c.writeByteArray(OkHttpResponse.QUERY_PARAMETERS_TO_REMOVE_FIELD_NUMBER, QUERY_KEY);
      }
      nested(c, CheckResponse.DYNAMIC_METADATA_FIELD_NUMBER, struct);
      nested(c, Struct.FIELDS_FIELD_NUMBER, entry);
      c.writeByteArray(1, METADATA_KEY);
      nested(c, 2, value);
      c.writeByteArray(Value.STRING_VALUE_FIELD_NUMBER, id);
      c.checkNoSpaceLeft();
    } catch (IOException e) {
      throw new UncheckedIOException("the allow response's size was miscounted", e);
    }
    return out;
  }

  private static int removed(byte[] hold, byte[] cap, byte[] models) {
    int n = 0;
    for (byte[] name : ALWAYS) {
      n += bytesSize(OkHttpResponse.HEADERS_TO_REMOVE_FIELD_NUMBER, name);
    }
    if (hold == null) {
      n += bytesSize(OkHttpResponse.HEADERS_TO_REMOVE_FIELD_NUMBER, HOLD_ID);
    }
    if (cap == null) {
      n += bytesSize(OkHttpResponse.HEADERS_TO_REMOVE_FIELD_NUMBER, KEY_CONCURRENCY);
    }
    if (models == null) {
      n += bytesSize(OkHttpResponse.HEADERS_TO_REMOVE_FIELD_NUMBER, KEY_MODELS);
    }
    return n;
  }

  private static int options(int field, byte[][] namesAndValues) {
    int n = 0;
    for (int i = 0; i + 1 < namesAndValues.length; i += 2) {
      n += option(field, namesAndValues[i], namesAndValues[i + 1]);
    }
    return n;
  }

  /** A HeaderValueOption {header {key, value}, append_action} as field {@code field}; 0 if none. */
  private static int option(int field, byte[] name, byte[] value) {
    return value == null ? 0 : nestedSize(field, optionSize(name, value));
  }

  private static int headerSize(byte[] name, byte[] value) {
    // proto3 leaves an empty string out; a header value is never empty here, but the size follows
    // the rule the message's own encoding follows.
    return bytesSize(HeaderValue.KEY_FIELD_NUMBER, name)
        + (value.length == 0 ? 0 : bytesSize(HeaderValue.VALUE_FIELD_NUMBER, value));
  }

  private static int optionSize(byte[] name, byte[] value) {
    return nestedSize(HeaderValueOption.HEADER_FIELD_NUMBER, headerSize(name, value))
        + CodedOutputStream.computeEnumSize(
            HeaderValueOption.APPEND_ACTION_FIELD_NUMBER, APPEND_ACTION);
  }

  private static void writeOption(CodedOutputStream c, int field, byte[] name, byte[] value)
      throws IOException {
    if (value == null) {
      return;
    }
    nested(c, field, optionSize(name, value));
    nested(c, HeaderValueOption.HEADER_FIELD_NUMBER, headerSize(name, value));
    c.writeByteArray(HeaderValue.KEY_FIELD_NUMBER, name);
    if (value.length > 0) {
      c.writeByteArray(HeaderValue.VALUE_FIELD_NUMBER, value);
    }
    c.writeEnum(HeaderValueOption.APPEND_ACTION_FIELD_NUMBER, APPEND_ACTION);
  }

  /** The tag and length of a nested message of {@code size} bytes, then the caller writes it. */
  private static void nested(CodedOutputStream c, int field, int size) throws IOException {
    c.writeTag(field, 2);
    c.writeUInt32NoTag(size);
  }

  private static int nestedSize(int field, int size) {
    return CodedOutputStream.computeTagSize(field)
        + CodedOutputStream.computeUInt32SizeNoTag(size)
        + size;
  }

  private static int bytesSize(int field, byte[] value) {
    return CodedOutputStream.computeTagSize(field)
        + CodedOutputStream.computeUInt32SizeNoTag(value.length)
        + value.length;
  }

  private static byte[] utf8(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }
}
