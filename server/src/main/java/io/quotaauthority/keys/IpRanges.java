package io.quotaauthority.keys;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A key's IP allow-list or deny-list: IPv4 and IPv6 CIDR blocks, parsed strictly (a literal only:
 * nothing here ever asks DNS), and matched against the client address Envoy determined. An IPv4
 * address seen as IPv4-mapped IPv6 ({@code ::ffff:203.0.113.7}, what a dual-stack listener reports)
 * is matched as the IPv4 address it is.
 */
public final class IpRanges {
  /** The most entries one list may hold (README "Key policies"). */
  public static final int MAX_ENTRIES = 100;

  /** Longest entry accepted: a full IPv6 address with an embedded IPv4 part and a prefix. */
  static final int MAX_ENTRY_LENGTH = 49;

  public static final IpRanges NONE = new IpRanges(List.of(), new byte[0][], new int[0]);

  private final List<String> entries;
  private final byte[][] networks;
  private final int[] prefixes;

  private IpRanges(List<String> entries, byte[][] networks, int[] prefixes) {
    this.entries = entries;
    this.networks = networks;
    this.prefixes = prefixes;
  }

  /**
   * Parses a list as the admin API received it; throws IllegalArgumentException naming the field
   * and the first bad entry. Entries are stored canonical ({@code 10.0.0.0/8}, {@code
   * 2001:db8::/32}: lower case, shortest IPv6 form, a bare address gets /32 or /128), duplicates
   * once, in the order given.
   */
  public static IpRanges parse(String field, List<String> raw) {
    if (raw.isEmpty()) {
      return NONE;
    }
    if (raw.size() > MAX_ENTRIES) {
      throw new IllegalArgumentException(
          field + " has " + raw.size() + " entries; at most " + MAX_ENTRIES + " are allowed");
    }
    List<String> canonical = new ArrayList<>(raw.size());
    for (int i = 0; i < raw.size(); i++) {
      String c = canonical(field + "[" + i + "]", raw.get(i));
      if (!canonical.contains(c)) {
        canonical.add(c);
      }
    }
    return of(canonical);
  }

  /** A list already in canonical form (as stored); a bad stored entry is skipped with no match. */
  public static IpRanges of(List<String> canonical) {
    if (canonical.isEmpty()) {
      return NONE;
    }
    byte[][] networks = new byte[canonical.size()][];
    int[] prefixes = new int[canonical.size()];
    for (int i = 0; i < canonical.size(); i++) {
      String entry = canonical.get(i);
      int slash = entry.indexOf('/');
      byte[] address = slash < 0 ? null : literal(entry.substring(0, slash));
      if (address == null) {
        // A row written by hand that is not canonical: it matches nothing (an allow-list of only
        // such entries admits nobody: fail closed).
        networks[i] = new byte[0];
        prefixes[i] = 0;
        continue;
      }
      networks[i] = address;
      prefixes[i] = Integer.parseInt(entry.substring(slash + 1));
    }
    return new IpRanges(List.copyOf(canonical), networks, prefixes);
  }

  /** The canonical form of one entry, or IllegalArgumentException naming {@code name}. */
  static String canonical(String name, String entry) {
    if (entry == null || entry.isEmpty() || entry.length() > MAX_ENTRY_LENGTH) {
      throw new IllegalArgumentException(
          name + " must be an IPv4 or IPv6 address or CIDR block (10.0.0.0/8, 2001:db8::/32)");
    }
    int slash = entry.indexOf('/');
    String host = slash < 0 ? entry : entry.substring(0, slash);
    byte[] address = literal(host);
    if (address == null) {
      throw new IllegalArgumentException(
          name + " '" + entry + "' is not an IPv4 or IPv6 CIDR block (10.0.0.0/8, 2001:db8::/32)");
    }
    int bits = address.length * 8;
    int prefix = bits;
    if (slash >= 0) {
      String p = entry.substring(slash + 1);
      if (p.isEmpty()
          || p.length() > 3
          || !p.chars().allMatch(ch -> ch >= '0' && ch <= '9')
          || (p.length() > 1 && p.charAt(0) == '0')) {
        throw new IllegalArgumentException(
            name + " '" + entry + "' has no prefix length from 0 to " + bits + " after '/'");
      }
      prefix = Integer.parseInt(p);
      if (prefix > bits) {
        throw new IllegalArgumentException(
            name + " '" + entry + "' has prefix length " + prefix + "; at most " + bits);
      }
    }
    if (!hostBitsZero(address, prefix)) {
      throw new IllegalArgumentException(
          name
              + " '"
              + entry
              + "' has bits set after its /"
              + prefix
              + " prefix; write the network, "
              + format(mask(address, prefix))
              + "/"
              + prefix);
    }
    return format(address) + "/" + prefix;
  }

  /** The entries in canonical form, as stored and shown. */
  public List<String> entries() {
    return entries;
  }

  public boolean isEmpty() {
    return entries.isEmpty();
  }

  /** Whether {@code address} (4 or 16 bytes, from {@link #address}) lies in any block. */
  public boolean contains(byte[] address) {
    for (int i = 0; i < networks.length; i++) {
      if (networks[i].length == address.length && inBlock(address, networks[i], prefixes[i])) {
        return true;
      }
    }
    return false;
  }

  /**
   * The bytes of an address as Envoy reports it ({@code socket_address.address}): 4 for IPv4 (an
   * IPv4-mapped IPv6 address included), 16 for IPv6; null when it is no IP literal (a pipe, empty).
   */
  public static byte[] address(String text) {
    return text == null || text.isEmpty() || text.length() > MAX_ENTRY_LENGTH
        ? null
        : literal(text);
  }

  /**
   * A strict literal: dotted-quad IPv4 (four decimal octets, no leading zeros), or IPv6 with only
   * hex digits, ':' and '.' (no zone id, no brackets). Never a host name, so never a DNS lookup.
   */
  private static byte[] literal(String s) {
    if (s.indexOf(':') < 0) {
      return ipv4(s);
    }
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      boolean ok =
          (ch >= '0' && ch <= '9')
              || (ch >= 'a' && ch <= 'f')
              || (ch >= 'A' && ch <= 'F')
              || ch == ':'
              || ch == '.';
      if (!ok) {
        return null;
      }
    }
    int dot = s.indexOf('.');
    if (dot >= 0 && ipv4(s.substring(s.lastIndexOf(':') + 1)) == null) {
      return null;
    }
    try {
      // A string with ':' is only ever read as an IPv6 literal: invalid ones throw, no lookup.
      InetAddress a = InetAddress.getByName(s);
      return a.getAddress();
    } catch (UnknownHostException e) {
      return null;
    }
  }

  /** Four decimal octets, no leading zeros; read in one pass (Check reads one per request). */
  private static byte[] ipv4(String s) {
    byte[] out = new byte[4];
    int octet = 0;
    int v = 0;
    int digits = 0;
    for (int i = 0, n = s.length(); i <= n; i++) {
      char ch = i == n ? '.' : s.charAt(i);
      if (ch == '.') {
        if (digits == 0 || octet == 4 || v > 255) {
          return null;
        }
        out[octet++] = (byte) v;
        v = 0;
        digits = 0;
      } else if (ch >= '0' && ch <= '9' && digits < 3 && !(digits == 1 && v == 0)) {
        // A leading zero ("01") is refused: some parsers read it as octal.
        v = v * 10 + (ch - '0');
        digits++;
      } else {
        return null;
      }
    }
    return octet == 4 ? out : null;
  }

  private static boolean inBlock(byte[] address, byte[] network, int prefix) {
    int full = prefix / 8;
    for (int i = 0; i < full; i++) {
      if (address[i] != network[i]) {
        return false;
      }
    }
    int rest = prefix % 8;
    if (rest == 0) {
      return true;
    }
    int m = (0xFF << (8 - rest)) & 0xFF;
    return (address[full] & m) == (network[full] & m);
  }

  private static boolean hostBitsZero(byte[] address, int prefix) {
    return Arrays.equals(address, mask(address, prefix));
  }

  private static byte[] mask(byte[] address, int prefix) {
    byte[] out = address.clone();
    for (int i = 0; i < out.length; i++) {
      int bitsHere = Math.max(0, Math.min(8, prefix - i * 8));
      out[i] = (byte) (out[i] & ((0xFF << (8 - bitsHere)) & 0xFF));
    }
    return out;
  }

  /** IPv4 dotted; IPv6 in RFC 5952's shortest lower-case form. */
  static String format(byte[] a) {
    if (a.length == 4) {
      return (a[0] & 0xFF) + "." + (a[1] & 0xFF) + "." + (a[2] & 0xFF) + "." + (a[3] & 0xFF);
    }
    int[] groups = new int[8];
    for (int i = 0; i < 8; i++) {
      groups[i] = ((a[2 * i] & 0xFF) << 8) | (a[2 * i + 1] & 0xFF);
    }
    // The longest run of two or more zero groups (the first of equals) becomes "::".
    int bestStart = -1;
    int bestLen = 1;
    for (int i = 0; i < 8; ) {
      if (groups[i] != 0) {
        i++;
        continue;
      }
      int j = i;
      while (j < 8 && groups[j] == 0) {
        j++;
      }
      if (j - i > bestLen) {
        bestStart = i;
        bestLen = j - i;
      }
      i = j;
    }
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 8; i++) {
      if (i == bestStart) {
        sb.append("::");
        i += bestLen - 1;
        continue;
      }
      if (sb.length() > 0 && sb.charAt(sb.length() - 1) != ':') {
        sb.append(':');
      }
      sb.append(Integer.toHexString(groups[i]));
    }
    return sb.toString();
  }
}
