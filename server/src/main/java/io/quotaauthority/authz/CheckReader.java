package io.quotaauthority.authz;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * Reads the {@link CheckFacts} of an encoded CheckRequest straight from its bytes, without building
 * the message: Envoy's request is mostly headers Check never looks at, and materialising them
 * (protobuf MapEntry objects, a LinkedHashMap, two Strings a header) was most of a Check's cost.
 *
 * <p>It still reads every byte, guided by the message's schema, so that it accepts only what
 * protobuf's parser accepts: lengths and varints in bounds, no field number 0, every string field
 * anywhere in the request valid UTF-8 (proto3 requires it). Anything else, and anything rare that
 * it does not model (groups, packed numbers, deep nesting, over-long tags), makes {@link #read}
 * return null: the caller then parses the request fully, which gives the facts (the input was
 * unusual but valid) or the error. So a request is never answered differently for having been read
 * this way; {@code CheckReaderTest} holds it to {@link CheckFacts#of} over generated and fuzzed
 * requests.
 *
 * <p>Repeated occurrences behave as protobuf's merge does, because the walk applies them in wire
 * order: the last scalar wins, a map's last entry of a key wins, repeated entries concatenate, and
 * an {@code Address} keeps one {@code socket_address} builder across its oneof's other cases.
 */
final class CheckReader {
  /** Deeper messages are left to the full parse (protobuf's own limit is 100; Envoy's are ~6). */
  static final int MAX_DEPTH = 64;

  private static final int WIRE_VARINT = 0;
  private static final int WIRE_FIXED64 = 1;
  private static final int WIRE_LEN = 2;
  private static final int WIRE_FIXED32 = 5;

  // What a schema says a field number is. Kinds of a field declared with the wrong wire type on
  // the wire are ignored: protobuf keeps such a field as unknown, so it is skipped as one.
  private static final byte UNKNOWN = 0;
  private static final byte STRING = 1;
  private static final byte BYTES = 2;
  private static final byte MESSAGE = 3;
  private static final byte VARINT = 4;
  private static final byte FIXED32 = 5;
  private static final byte FIXED64 = 6;
  private static final byte GROUP = 7;

  // What Check does with a field on the paths it reads (0: nothing but check it).
  private static final byte ENTRY_KEY = 1;
  private static final byte ENTRY_VALUE = 2;
  private static final byte EXTENSION_ENTRY = 3;
  private static final byte HEADER_ENTRY = 4;
  private static final byte HEADER_VALUE = 5;
  private static final byte HEADER_VALUE_KEY = 6;
  private static final byte HEADER_VALUE_VALUE = 7;
  private static final byte HEADER_VALUE_RAW = 8;
  private static final byte METHOD = 9;
  private static final byte PATH = 10;
  private static final byte SOCKET_ADDRESS = 11;
  private static final byte OTHER_ADDRESS = 12;
  private static final byte SOCKET_ADDRESS_ADDRESS = 13;

  private static final byte[] PROVIDER = "provider".getBytes(StandardCharsets.US_ASCII);
  private static final byte[][] HEADER_NAMES = new byte[CheckFacts.HEADER_NAMES.length][];

  static {
    for (int i = 0; i < HEADER_NAMES.length; i++) {
      HEADER_NAMES[i] = CheckFacts.HEADER_NAMES[i].getBytes(StandardCharsets.US_ASCII);
    }
  }

  /** CheckRequest's schema, with Check's roles on the paths it reads; built once. */
  private static final Node ROOT = root();

  private final byte[] b;
  private int pos;

  // Where what Check reads lies in b (offset, length); an offset of -1 is "absent".
  private int extensionOff = -1;
  private int extensionLen;
  private int methodOff = -1;
  private int methodLen;
  private int pathOff = -1;
  private int pathLen;
  private final int[] mapOff = {-1, -1, -1, -1, -1, -1};
  private final int[] mapLen = new int[HEADER_NAMES.length];
  private final int[] rawOff = {-1, -1, -1, -1, -1, -1};
  private final int[] rawLen = new int[HEADER_NAMES.length];
  private final boolean[] rawBytes = new boolean[HEADER_NAMES.length];

  /** Address's oneof is on socket_address now; its builder exists once one was seen. */
  private boolean socketCase;

  private boolean socketSeen;
  private int socketOff;
  private int socketLen;

  // The map entry or HeaderValue being read (they nest nothing Check reads, so one set serves).
  private int keyOff;
  private int keyLen;
  private int valueOff;
  private int valueLen;
  private int rawValueOff;
  private int rawValueLen;

  private CheckReader(byte[] b) {
    this.b = b;
  }

  /**
   * The facts of an encoded CheckRequest, or null when the bytes are not plainly well formed (then
   * only the full parse can say whether they are a request at all).
   */
  static CheckFacts read(byte[] bytes) {
    CheckReader r = new CheckReader(bytes);
    if (!r.message(ROOT, bytes.length, 0)) {
      return null;
    }
    return r.facts();
  }

  private CheckFacts facts() {
    String[] headers = new String[HEADER_NAMES.length];
    for (int i = 0; i < headers.length; i++) {
      if (mapOff[i] >= 0) {
        headers[i] = utf8(mapOff[i], mapLen[i]);
      } else if (rawOff[i] >= 0) {
        headers[i] =
            rawBytes[i]
                ? new String(b, rawOff[i], rawLen[i], StandardCharsets.ISO_8859_1)
                : utf8(rawOff[i], rawLen[i]);
      }
    }
    return CheckFacts.of(
        extensionOff < 0 ? null : utf8(extensionOff, extensionLen),
        methodOff < 0 ? "" : utf8(methodOff, methodLen),
        pathOff < 0 ? "" : utf8(pathOff, pathLen),
        headers,
        socketCase ? utf8(socketOff, socketLen) : null);
  }

  private String utf8(int off, int len) {
    return len == 0 ? "" : new String(b, off, len, StandardCharsets.UTF_8);
  }

  /** Reads fields up to {@code end}; false when anything is out of the ordinary. */
  private boolean message(Node node, int end, int depth) {
    while (pos < end) {
      int tag = tag(end);
      if (tag <= 0) {
        return false;
      }
      int field = tag >>> 3;
      int wire = tag & 7;
      byte kind = node.kind(field);
      boolean ok =
          switch (kind) {
            case STRING -> wire == WIRE_LEN ? string(node.role(field), end) : unknown(wire, end);
            case BYTES -> wire == WIRE_LEN ? bytes(node.role(field), end) : unknown(wire, end);
            case MESSAGE ->
                wire == WIRE_LEN
                    ? nested(node.child(field), node.role(field), end, depth)
                    : unknown(wire, end);
            case VARINT, FIXED32, FIXED64 ->
                // A packed repeated number (none in Envoy's CheckRequest today): left to the full
                // parse, which checks its contents. On its own wire type it is skipped as unknown.
                !(wire == WIRE_LEN && node.packable(field)) && unknown(wire, end);
            // A known varint or fixed field on its own wire type is skipped like an unknown one.
            default -> unknown(wire, end);
          };
      if (!ok) {
        return false;
      }
    }
    return pos == end;
  }

  /** Skips a field Check does not read by its wire type; groups are left to the full parse. */
  private boolean unknown(int wire, int end) {
    switch (wire) {
      case WIRE_VARINT:
        return varint(end);
      case WIRE_FIXED64:
        return skip(8, end);
      case WIRE_LEN:
        int len = length(end);
        return len >= 0 && skip(len, end);
      case WIRE_FIXED32:
        return skip(4, end);
      default:
        // Start or end of a group (protobuf 2's nesting, never in Envoy's protos), or 6 and 7
        // which protobuf refuses.
        return false;
    }
  }

  private boolean string(byte role, int end) {
    int len = length(end);
    if (len < 0 || !validUtf8(b, pos, pos + len)) {
      return false;
    }
    int off = pos;
    pos += len;
    switch (role) {
      case ENTRY_KEY, HEADER_VALUE_KEY -> {
        keyOff = off;
        keyLen = len;
      }
      case ENTRY_VALUE, HEADER_VALUE_VALUE -> {
        valueOff = off;
        valueLen = len;
      }
      case METHOD -> {
        methodOff = off;
        methodLen = len;
      }
      case PATH -> {
        pathOff = off;
        pathLen = len;
      }
      case SOCKET_ADDRESS_ADDRESS -> {
        socketOff = off;
        socketLen = len;
      }
      default -> {}
    }
    return true;
  }

  private boolean bytes(byte role, int end) {
    int len = length(end);
    if (len < 0) {
      return false;
    }
    if (role == HEADER_VALUE_RAW) {
      rawValueOff = pos;
      rawValueLen = len;
    }
    pos += len;
    return true;
  }

  private boolean nested(Node child, byte role, int end, int depth) {
    int len = length(end);
    if (len < 0 || depth + 1 > MAX_DEPTH) {
      return false;
    }
    switch (role) {
      case EXTENSION_ENTRY, HEADER_ENTRY, HEADER_VALUE -> {
        // protobuf's defaults: an entry or HeaderValue without a key or value has "".
        keyOff = valueOff = rawValueOff = 0;
        keyLen = valueLen = rawValueLen = 0;
      }
      case SOCKET_ADDRESS -> {
        if (!socketSeen) {
          socketSeen = true;
          socketOff = 0;
          socketLen = 0;
        }
        socketCase = true;
      }
      case OTHER_ADDRESS -> socketCase = false;
      default -> {}
    }
    if (!message(child, pos + len, depth + 1)) {
      return false;
    }
    switch (role) {
      case EXTENSION_ENTRY -> {
        if (equalsAscii(keyOff, keyLen, PROVIDER, false)) {
          extensionOff = valueOff;
          extensionLen = valueLen;
        }
      }
      case HEADER_ENTRY -> {
        for (int i = 0; i < HEADER_NAMES.length; i++) {
          if (equalsAscii(keyOff, keyLen, HEADER_NAMES[i], false)) {
            mapOff[i] = valueOff;
            mapLen[i] = valueLen;
          }
        }
      }
      case HEADER_VALUE -> {
        for (int i = 0; i < HEADER_NAMES.length; i++) {
          if (rawOff[i] < 0 && equalsAscii(keyOff, keyLen, HEADER_NAMES[i], true)) {
            rawBytes[i] = rawValueLen > 0;
            rawOff[i] = rawBytes[i] ? rawValueOff : valueOff;
            rawLen[i] = rawBytes[i] ? rawValueLen : valueLen;
          }
        }
      }
      default -> {}
    }
    return true;
  }

  /** Whether b[off, off+len) is {@code name} (lowercase ASCII), folding A-Z when asked. */
  private boolean equalsAscii(int off, int len, byte[] name, boolean foldCase) {
    if (len != name.length) {
      return false;
    }
    for (int i = 0; i < len; i++) {
      int c = b[off + i];
      if (foldCase && c >= 'A' && c <= 'Z') {
        c += 'a' - 'A';
      }
      if (c != name[i]) {
        return false;
      }
    }
    return true;
  }

  private boolean skip(int n, int end) {
    if (n > end - pos) {
      return false;
    }
    pos += n;
    return true;
  }

  /** A varint of at most 10 bytes, the last with its high bit clear (protobuf's rule). */
  private boolean varint(int end) {
    for (int i = 0; i < 10; i++) {
      if (pos >= end) {
        return false;
      }
      if (b[pos++] >= 0) {
        return true;
      }
    }
    return false;
  }

  /**
   * A tag: a varint of at most 4 bytes (field numbers below 2^25 — Envoy's are below 2^16), not
   * field 0; else -1. Longer tags are valid protobuf, but left to the full parse.
   */
  private int tag(int end) {
    int tag = varint28(end);
    return tag >>> 3 == 0 ? -1 : tag;
  }

  /**
   * A length that fits before {@code end}, else -1: a varint of at most 4 bytes (256 MiB, past any
   * message gRPC lets in); longer encodings are left to the full parse.
   */
  private int length(int end) {
    int len = varint28(end);
    return len <= end - pos ? len : -1;
  }

  /** A varint of at most 4 bytes (28 bits) before {@code end}, else -1. */
  private int varint28(int end) {
    int result = 0;
    for (int shift = 0; shift < 28; shift += 7) {
      if (pos >= end) {
        return -1;
      }
      int x = b[pos++];
      result |= (x & 0x7f) << shift;
      if (x >= 0) {
        return result;
      }
    }
    return -1;
  }

  /**
   * Strict UTF-8 as protobuf checks it: no overlong forms, no surrogates, nothing past U+10FFFF.
   */
  static boolean validUtf8(byte[] b, int from, int to) {
    int i = from;
    // Headers are ASCII: the common case is one pass of sign tests.
    while (i < to && b[i] >= 0) {
      i++;
    }
    while (i < to) {
      int c = b[i++] & 0xff;
      if (c < 0x80) {
        continue;
      }
      if (c < 0xc2 || c > 0xf4) {
        return false; // a stray continuation byte, an overlong lead (C0, C1) or past U+10FFFF
      }
      int need = c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
      if (to - i < need) {
        return false;
      }
      int c2 = b[i] & 0xff;
      // The second byte's range depends on the lead: it rules out overlong forms (E0, F0),
      // surrogates (ED) and code points past U+10FFFF (F4).
      int lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
      int hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
      if (c2 < lo || c2 > hi) {
        return false;
      }
      for (int k = 1; k < need; k++) {
        int cont = b[i + k] & 0xff;
        if (cont < 0x80 || cont > 0xbf) {
          return false;
        }
      }
      i += need;
    }
    return true;
  }

  /** One message type's fields by number, and Check's role for each on the path it is on. */
  private static final class Node {
    final byte[] kinds;
    final boolean[] packable;
    final Node[] children;
    final byte[] roles;

    Node(int maxField) {
      kinds = new byte[maxField + 1];
      packable = new boolean[maxField + 1];
      children = new Node[maxField + 1];
      roles = new byte[maxField + 1];
    }

    Node(Node n) {
      kinds = n.kinds; // shared: a copy differs only in children and roles
      packable = n.packable;
      children = n.children.clone();
      roles = n.roles.clone();
    }

    byte kind(int field) {
      return field < kinds.length ? kinds[field] : UNKNOWN;
    }

    byte role(int field) {
      return roles[field];
    }

    Node child(int field) {
      return children[field];
    }

    boolean packable(int field) {
      return packable[field];
    }
  }

  private static Node root() {
    Map<Descriptor, Node> generic = new HashMap<>();
    Node request = new Node(generic(CheckRequest.getDescriptor(), generic));
    Node attributes = specialise(request, CheckRequest.getDescriptor(), "attributes", generic);
    Descriptor attributesType = AttributeContext.getDescriptor();
    specialise(attributes, attributesType, "context_extensions", generic, EXTENSION_ENTRY);

    Node source = specialise(attributes, attributesType, "source", generic);
    Node address = specialise(source, AttributeContext.Peer.getDescriptor(), "address", generic);
    Descriptor addressType = Address.getDescriptor();
    FieldDescriptor socket = field(addressType, "socket_address");
    for (FieldDescriptor other : socket.getContainingOneof().getFields()) {
      address.roles[other.getNumber()] = OTHER_ADDRESS;
    }
    Node socketAddress =
        specialise(address, addressType, "socket_address", generic, SOCKET_ADDRESS);
    socketAddress.roles[field(SocketAddress.getDescriptor(), "address").getNumber()] =
        SOCKET_ADDRESS_ADDRESS;

    Node req = specialise(attributes, attributesType, "request", generic);
    Node http = specialise(req, AttributeContext.Request.getDescriptor(), "http", generic);
    Descriptor httpType = AttributeContext.HttpRequest.getDescriptor();
    http.roles[field(httpType, "method").getNumber()] = METHOD;
    http.roles[field(httpType, "path").getNumber()] = PATH;
    specialise(http, httpType, "headers", generic, HEADER_ENTRY);
    Node headerMap = specialise(http, httpType, "header_map", generic);
    Node headerValue =
        specialise(headerMap, HeaderMap.getDescriptor(), "headers", generic, HEADER_VALUE);
    Descriptor hv = HeaderValue.getDescriptor();
    headerValue.roles[field(hv, "key").getNumber()] = HEADER_VALUE_KEY;
    headerValue.roles[field(hv, "value").getNumber()] = HEADER_VALUE_VALUE;
    headerValue.roles[field(hv, "raw_value").getNumber()] = HEADER_VALUE_RAW;
    return request;
  }

  private static FieldDescriptor field(Descriptor type, String name) {
    FieldDescriptor f = type.findFieldByName(name);
    if (f == null) {
      throw new IllegalStateException(type.getFullName() + " has no field " + name);
    }
    return f;
  }

  private static Node specialise(
      Node parent, Descriptor parentType, String name, Map<Descriptor, Node> generic) {
    return specialise(parent, parentType, name, generic, (byte) 0);
  }

  /**
   * Gives {@code parent}'s message field {@code name} a node of its own (a copy of its type's), so
   * that roles set on it hold on this path only (Address is also the destination's, which Check
   * ignores), with {@code role} on the field itself. A map field's entry gets its key and value
   * roles.
   */
  private static Node specialise(
      Node parent, Descriptor parentType, String name, Map<Descriptor, Node> generic, byte role) {
    FieldDescriptor f = field(parentType, name);
    Node child = new Node(generic(f.getMessageType(), generic));
    if (f.isMapField()) {
      child.roles[1] = ENTRY_KEY;
      child.roles[2] = ENTRY_VALUE;
    }
    parent.children[f.getNumber()] = child;
    parent.roles[f.getNumber()] = role;
    return child;
  }

  /** A type's node without roles, shared by every path to it (types can nest themselves). */
  private static Node generic(Descriptor type, Map<Descriptor, Node> built) {
    Node n = built.get(type);
    if (n != null) {
      return n;
    }
    int max = 0;
    for (FieldDescriptor f : type.getFields()) {
      max = Math.max(max, f.getNumber());
    }
    if (max > 4096) {
      // Arrays by field number stay small for Envoy's protos; a schema that changed this much
      // should be looked at, not silently served by a huge table.
      throw new IllegalStateException(type.getFullName() + " has field number " + max);
    }
    n = new Node(max);
    built.put(type, n); // before the children: Struct's Value holds a Struct
    for (FieldDescriptor f : type.getFields()) {
      int i = f.getNumber();
      n.kinds[i] = kind(f);
      n.packable[i] = f.isRepeated() && f.isPackable();
      if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE
          && f.getType() == FieldDescriptor.Type.MESSAGE) {
        n.children[i] = generic(f.getMessageType(), built);
      }
    }
    return n;
  }

  private static byte kind(FieldDescriptor f) {
    return switch (f.getType()) {
      case STRING -> STRING;
      case BYTES -> BYTES;
      case MESSAGE -> MESSAGE;
      case GROUP -> GROUP;
      case FIXED32, SFIXED32, FLOAT -> FIXED32;
      case FIXED64, SFIXED64, DOUBLE -> FIXED64;
      default -> VARINT; // int32/64, uint32/64, sint32/64, bool, enum
    };
  }
}
