package io.quotaauthority.grpc;

import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.util.concurrent.TimeUnit;

/**
 * The HTTP/2 transport settings of every gRPC listener, in one place so each port (authz, admin,
 * metering) gets the same keepalive and flow-control rules and differs only in its message limit.
 *
 * <p>Memory that a client can make the server hold on one connection is bounded by {@link
 * #MAX_CONCURRENT_CALLS_PER_CONNECTION} × the port's message limit: grpc-java's deframer reads a
 * message's 5-byte prefix and refuses (RESOURCE_EXHAUSTED) a declared length above the limit before
 * buffering any of it, and the per-stream flow-control window bounds what a stream can push beyond
 * the message being assembled (TransportLimitsIT verifies both against a real server). The number
 * of connections is not bounded here: that is the network policy's job (only Envoy should reach
 * these ports; see README "Transport").
 */
public final class Transport {
  /** gRPC's usual limit; every message on the authz and admin ports is far smaller. */
  public static final int DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

  /**
   * ext_proc sees whole buffered request bodies (Envoy buffers up to 32 MiB for prompts with
   * images) plus the ProcessingRequest around them; below this such requests would pass unmetered.
   */
  public static final int METERING_MAX_MESSAGE_BYTES = 40 * 1024 * 1024;

  /**
   * HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS. RFC 9113 advises at least 100. Envoy's connection pool
   * honours the server's value and opens another connection when one is full, so a lower value
   * never fails a call; it only spreads them. 100 Checks in flight on one connection at about 1 ms
   * each is far more than one Envoy worker sends, and it keeps what one connection can hold in
   * partial messages at 100 × 4 MiB on the authz port.
   */
  public static final int MAX_CONCURRENT_CALLS_PER_CONNECTION = 100;

  /**
   * Envoy pings every upstream HTTP/2 connection, idle or not (envoy.yaml's cluster
   * connection_keepalive: every 10 s, with jitter). grpc-java's default permit is 5 minutes and its
   * KeepAliveEnforcer answers the third early ping with GOAWAY too_many_pings, which resets the
   * ext_proc stream of a long LLM call (its usage is then never charged) and every Check in flight
   * on the connection. 1 s admits Envoy's pings, a jittered 5 s, and tools that ping every 2 s,
   * while a client pinging faster than once a second is still a flood and is still cut off.
   */
  static final long PERMIT_KEEPALIVE_SECONDS = 1;

  /**
   * The server's own pings: after this long without reading anything from a connection, find out
   * whether the peer is still there, so a half-open connection (a dead Envoy, a dropped NAT entry)
   * and the streams and buffers it holds are freed in about a minute and a half, not hours.
   */
  static final long KEEPALIVE_SECONDS = 60;

  /** No ack to the server's ping within this long: the connection is closed. */
  static final long KEEPALIVE_TIMEOUT_SECONDS = 20;

  /**
   * A connection with no call for this long is closed (gracefully: GOAWAY, then the peer simply
   * reconnects when it needs to). Envoy's connections always carry Checks, health checks or
   * ext_proc streams; a client that opened connections and went quiet gets them taken back.
   */
  static final long MAX_CONNECTION_IDLE_MINUTES = 10;

  /**
   * Per-stream and per-connection HTTP/2 receive window, fixed (no BDP auto-tuning, which would let
   * the window grow to several MiB): what a stream can push beyond what the application has asked
   * for. 1 MiB keeps a LAN link full (its bandwidth-delay product is well below that).
   */
  static final int FLOW_CONTROL_WINDOW_BYTES = 1024 * 1024;

  private Transport() {}

  /**
   * Applies every transport setting to a listener.
   *
   * @param maxInboundMessageBytes the largest message a call on this listener may receive: {@link
   *     #DEFAULT_MAX_MESSAGE_BYTES}, or {@link #METERING_MAX_MESSAGE_BYTES} where ext_proc takes
   *     whole request bodies
   */
  public static NettyServerBuilder apply(NettyServerBuilder builder, int maxInboundMessageBytes) {
    if (maxInboundMessageBytes <= 0) {
      throw new IllegalArgumentException("maxInboundMessageBytes must be positive");
    }
    return builder
        .permitKeepAliveTime(PERMIT_KEEPALIVE_SECONDS, TimeUnit.SECONDS)
        // Envoy pings idle connections too (its pool keeps them for the next Check); without this
        // the enforcer only tolerates a ping every 2 hours while no call is open.
        .permitKeepAliveWithoutCalls(true)
        .keepAliveTime(KEEPALIVE_SECONDS, TimeUnit.SECONDS)
        .keepAliveTimeout(KEEPALIVE_TIMEOUT_SECONDS, TimeUnit.SECONDS)
        .maxConnectionIdle(MAX_CONNECTION_IDLE_MINUTES, TimeUnit.MINUTES)
        .maxConcurrentCallsPerConnection(MAX_CONCURRENT_CALLS_PER_CONNECTION)
        // flowControlWindow (not initialFlowControlWindow) also turns BDP auto-tuning off.
        .flowControlWindow(FLOW_CONTROL_WINDOW_BYTES)
        .maxInboundMessageSize(maxInboundMessageBytes);
  }
}
