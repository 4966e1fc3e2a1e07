package io.quotaauthority.testing;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * CheckRequests shaped the way Envoy's ext_authz filter sends them: lowercased header names,
 * pseudo-headers (:path, :method, :authority, :scheme) in the map, path with its query, and
 * per-route context_extensions; or the header_map variant with raw_value bytes (encode_raw_headers:
 * true).
 */
public final class EnvoyChecks {
  private final String method;
  private final String path;
  private final Map<String, String> headers = new LinkedHashMap<>();
  private final Map<String, String> contextExtensions = new LinkedHashMap<>();
  private boolean rawHeaders;
  private String sourceAddress = "10.0.0.7";

  private EnvoyChecks(String method, String path) {
    this.method = method;
    this.path = path;
    headers.put(":authority", "gateway.example.com");
    headers.put(":method", method);
    headers.put(":path", path);
    headers.put(":scheme", "https");
    headers.put("content-type", "application/json");
    headers.put("user-agent", "OpenAI/Python 1.51.0");
    headers.put("x-forwarded-proto", "https");
    headers.put("x-request-id", "6f1c7f2e-3d0a-4b8e-9a57-3c2b1d0e9f11");
  }

  public static EnvoyChecks post(String path) {
    return new EnvoyChecks("POST", path);
  }

  public static EnvoyChecks get(String path) {
    return new EnvoyChecks("GET", path);
  }

  public EnvoyChecks header(String name, String value) {
    headers.put(name.toLowerCase(Locale.ROOT), value);
    return this;
  }

  public EnvoyChecks bearer(String key) {
    return header("authorization", "Bearer " + key);
  }

  public EnvoyChecks provider(String provider) {
    contextExtensions.put("provider", provider);
    return this;
  }

  /**
   * The downstream client's address, as Envoy puts it in attributes.source.address.socket_address
   * (IPv6 without brackets); null sends no source at all.
   */
  public EnvoyChecks source(String address) {
    this.sourceAddress = address;
    return this;
  }

  /** Send headers in header_map with raw_value bytes instead of the headers map. */
  public EnvoyChecks rawHeaders() {
    this.rawHeaders = true;
    return this;
  }

  public CheckRequest build() {
    AttributeContext.HttpRequest.Builder http =
        AttributeContext.HttpRequest.newBuilder()
            .setId("14588243912478612013")
            .setMethod(method)
            .setPath(path)
            .setHost("gateway.example.com")
            .setScheme("https")
            .setProtocol("HTTP/1.1");
    if (rawHeaders) {
      HeaderMap.Builder map = HeaderMap.newBuilder();
      headers.forEach(
          (k, v) ->
              map.addHeaders(
                  HeaderValue.newBuilder()
                      .setKey(k)
                      .setRawValue(ByteString.copyFrom(v, StandardCharsets.UTF_8))));
      http.setHeaderMap(map);
    } else {
      http.putAllHeaders(headers);
    }
    AttributeContext.Builder attributes =
        AttributeContext.newBuilder()
            .setRequest(AttributeContext.Request.newBuilder().setHttp(http))
            .putAllContextExtensions(contextExtensions);
    if (sourceAddress != null) {
      attributes.setSource(
          AttributeContext.Peer.newBuilder()
              .setAddress(
                  Address.newBuilder()
                      .setSocketAddress(
                          SocketAddress.newBuilder()
                              .setAddress(sourceAddress)
                              .setPortValue(51234))));
    }
    return CheckRequest.newBuilder().setAttributes(attributes).build();
  }
}
