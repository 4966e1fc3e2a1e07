package io.quotaauthority.metering;

import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Reads header values from the map ext_proc sends. */
final class EnvoyHeaders {
  private EnvoyHeaders() {}

  /**
   * Every value of a header, by lower-case name. Envoy puts values in {@code raw_value} bytes (the
   * string {@code value} stays empty); older senders use {@code value}. ISO-8859-1 maps each byte
   * to one char so a non-ASCII byte survives to be refused by the caller's validation.
   */
  static List<String> all(HeaderMap headers, String name) {
    List<String> values = new ArrayList<>(1);
    for (HeaderValue h : headers.getHeadersList()) {
      if (h.getKey().equalsIgnoreCase(name)) {
        values.add(
            h.getRawValue().isEmpty()
                ? h.getValue()
                : h.getRawValue().toString(StandardCharsets.ISO_8859_1));
      }
    }
    return values;
  }

  /** The header's value when it appears exactly once, else null (absent or ambiguous). */
  static String single(HeaderMap headers, String name) {
    List<String> values = all(headers, name);
    return values.size() == 1 ? values.get(0) : null;
  }
}
