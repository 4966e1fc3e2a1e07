package io.quotaauthority.http;

import io.grpc.netty.shaded.io.netty.bootstrap.ServerBootstrap;
import io.grpc.netty.shaded.io.netty.buffer.Unpooled;
import io.grpc.netty.shaded.io.netty.channel.Channel;
import io.grpc.netty.shaded.io.netty.channel.ChannelFutureListener;
import io.grpc.netty.shaded.io.netty.channel.ChannelHandlerContext;
import io.grpc.netty.shaded.io.netty.channel.ChannelInboundHandlerAdapter;
import io.grpc.netty.shaded.io.netty.channel.ChannelInitializer;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.MultiThreadIoEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.SimpleChannelInboundHandler;
import io.grpc.netty.shaded.io.netty.channel.nio.NioIoHandler;
import io.grpc.netty.shaded.io.netty.channel.socket.SocketChannel;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioServerSocketChannel;
import io.grpc.netty.shaded.io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.grpc.netty.shaded.io.netty.handler.codec.http.FullHttpRequest;
import io.grpc.netty.shaded.io.netty.handler.codec.http.FullHttpResponse;
import io.grpc.netty.shaded.io.netty.handler.codec.http.HttpHeaderNames;
import io.grpc.netty.shaded.io.netty.handler.codec.http.HttpHeaderValues;
import io.grpc.netty.shaded.io.netty.handler.codec.http.HttpMethod;
import io.grpc.netty.shaded.io.netty.handler.codec.http.HttpObjectAggregator;
import io.grpc.netty.shaded.io.netty.handler.codec.http.HttpResponseStatus;
import io.grpc.netty.shaded.io.netty.handler.codec.http.HttpServerCodec;
import io.grpc.netty.shaded.io.netty.handler.codec.http.HttpUtil;
import io.grpc.netty.shaded.io.netty.handler.codec.http.HttpVersion;
import io.grpc.netty.shaded.io.netty.handler.codec.http.QueryStringDecoder;
import io.grpc.netty.shaded.io.netty.util.concurrent.ScheduledFuture;
import io.quotaauthority.threads.DaemonThreads;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A small plain-HTTP/1.1 listener that no client can freeze, on the Netty that grpc-netty-shaded
 * already ships (no new dependency). It is non-blocking: one event-loop thread accepts, reads and
 * answers every connection, so connections that stall hold a socket, never a thread. Each
 * connection has two deadlines: a request (line, headers and body) must arrive whole within {@link
 * Config#requestTimeout} of its first byte (or of the accept, for a new connection), so a slowloris
 * trickling one byte a second is cut; a kept-alive connection may sit idle between requests for
 * {@link Config#idleTimeout}. At most {@link Config#maxConnections} are open: one more closes the
 * oldest, so a flood of idle or stalled connections cannot shut a probe out either.
 *
 * <p>The {@link Handler} runs on the event loop and must not block (the ops port's answers come
 * from memory). Reusable for any other HTTP listener of the service.
 */
public final class HttpListener implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(HttpListener.class);

  /** Request line and each header line; probes and scrapes send a few short ones. */
  static final int MAX_INITIAL_LINE = 4096;

  static final int MAX_HEADER_BYTES = 8192;

  /**
   * @param name names the thread ({@code <name>-http}) and log lines
   * @param bind the address to listen on; null listens on every interface
   * @param port 0 takes an ephemeral port (see {@link #port()})
   * @param maxBodyBytes longer request bodies are answered 413 and the connection closed
   */
  public record Config(
      String name,
      InetAddress bind,
      int port,
      Duration requestTimeout,
      Duration idleTimeout,
      int maxConnections,
      int maxBodyBytes) {}

  /**
   * A request as the handler sees it: method, path (decoded, without the query) and the raw query.
   */
  public record Request(String method, String path, String query) {}

  /** What the handler answers; for HEAD the listener sends the headers and no body. */
  public record Response(int status, String contentType, byte[] body, Map<String, String> headers) {
    public static Response of(int status, String contentType, String body) {
      return new Response(status, contentType, body.getBytes(StandardCharsets.UTF_8), Map.of());
    }

    public Response withHeader(String name, String value) {
      Map<String, String> h = new LinkedHashMap<>(headers);
      h.put(name, value);
      return new Response(status, contentType, body, Map.copyOf(h));
    }
  }

  /** Answers one request; runs on the event loop, so it must not block. */
  @FunctionalInterface
  public interface Handler {
    Response handle(Request request);
  }

  /**
   * A whole request with its headers (names in lower case; the last of repeated ones) and body, for
   * a handler that answers later.
   */
  public record Exchange(
      String method, String path, String query, Map<String, String> headers, byte[] body) {
    public String header(String name) {
      return headers.get(name.toLowerCase(java.util.Locale.ROOT));
    }
  }

  /**
   * Answers one request, now or later: it is called on the event loop and must not block there, but
   * the stage it returns may complete on any thread (the answer is written on the event loop).
   */
  @FunctionalInterface
  public interface AsyncHandler {
    java.util.concurrent.CompletionStage<Response> handle(Exchange exchange);
  }

  private final EventLoopGroup group;
  private final Channel server;
  private final ConcurrentLinkedDeque<Channel> open = new ConcurrentLinkedDeque<>();

  private HttpListener(Config config, AsyncHandler handler) throws IOException {
    // One thread: enough for probes and scrapes whose answers are in memory, and the bound on
    // what this port can ever cost the process.
    group =
        new MultiThreadIoEventLoopGroup(
            1, DaemonThreads.numbered(config.name() + "-http"), NioIoHandler.newFactory());
    InetSocketAddress address =
        config.bind() == null
            ? new InetSocketAddress(config.port())
            : new InetSocketAddress(config.bind(), config.port());
    try {
      server =
          new ServerBootstrap()
              .group(group)
              .channel(NioServerSocketChannel.class)
              .option(ChannelOption.SO_BACKLOG, 128)
              .childOption(ChannelOption.TCP_NODELAY, true)
              .childHandler(
                  new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                      Connection connection = new Connection(config, handler, open);
                      ch.pipeline()
                          .addLast("arrivals", connection.arrivals())
                          .addLast(
                              "codec",
                              new HttpServerCodec(MAX_INITIAL_LINE, MAX_HEADER_BYTES, 8192))
                          .addLast(
                              "aggregate", new HttpObjectAggregator(config.maxBodyBytes(), true))
                          .addLast("answer", connection);
                    }
                  })
              .bind(address)
              .syncUninterruptibly()
              .channel();
    } catch (Exception e) { // Netty rethrows the BindException unchecked
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      throw new IOException("cannot listen on " + describe(address) + ": " + e.getMessage(), e);
    }
  }

  public static HttpListener start(Config config, Handler handler) throws IOException {
    return new HttpListener(
        config,
        e ->
            java.util.concurrent.CompletableFuture.completedFuture(
                handler.handle(new Request(e.method(), e.path(), e.query()))));
  }

  /**
   * As {@link #start(Config, Handler)}, for a handler that sees headers and body and may answer
   * later.
   */
  public static HttpListener startAsync(Config config, AsyncHandler handler) throws IOException {
    return new HttpListener(config, handler);
  }

  public int port() {
    return ((InetSocketAddress) server.localAddress()).getPort();
  }

  public InetSocketAddress address() {
    return (InetSocketAddress) server.localAddress();
  }

  public static String describe(InetSocketAddress a) {
    String host = a.getAddress() == null ? a.getHostString() : a.getAddress().getHostAddress();
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
  }

  @Override
  public void close() {
    server.close().syncUninterruptibly();
    open.forEach(Channel::close);
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }

  /**
   * Where a connection is: its deadline depends on it. Only touched on the channel's event loop.
   */
  private enum State {
    /** Accepted, nothing answered yet: the first request must arrive within the request timeout. */
    NEW,
    /** Bytes of a request arrived: the rest must arrive within the request timeout. */
    READING,
    /** Between requests on a kept-alive connection: the idle timeout runs. */
    IDLE
  }

  /** One connection's handler: its deadlines, its place among the open ones, and its answers. */
  private static final class Connection extends SimpleChannelInboundHandler<FullHttpRequest> {
    private final Config config;
    private final AsyncHandler handler;
    private final ConcurrentLinkedDeque<Channel> open;
    private State state = State.NEW;
    private ScheduledFuture<?> deadline;

    /** An answer is still being made: HTTP/1.1 answers in order, so no second request is taken. */
    private boolean answering;

    /** Requests pipelined behind the one being answered (retained; released once taken). */
    private final java.util.ArrayDeque<FullHttpRequest> queued = new java.util.ArrayDeque<>();

    Connection(Config config, AsyncHandler handler, ConcurrentLinkedDeque<Channel> open) {
      this.config = config;
      this.handler = handler;
      this.open = open;
    }

    /**
     * Sits before the HTTP codec and sees raw bytes: the first byte of a request starts its clock.
     */
    ChannelInboundHandlerAdapter arrivals() {
      return new ChannelInboundHandlerAdapter() {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
          if (state == State.IDLE) {
            state = State.READING;
            arm(ctx, config.requestTimeout());
          }
          ctx.fireChannelRead(msg);
        }
      };
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
      open.addLast(ctx.channel());
      // Over the limit the oldest connection goes: a new connection is most likely a probe that
      // sends its request at once, an old one most likely idle or stalled.
      while (open.size() > config.maxConnections()) {
        Channel oldest = open.pollFirst();
        if (oldest != null && oldest != ctx.channel()) {
          oldest.close();
        }
      }
      arm(ctx, config.requestTimeout());
      super.channelActive(ctx);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
      disarm();
      FullHttpRequest waiting;
      while ((waiting = queued.poll()) != null) {
        waiting.release();
      }
      open.remove(ctx.channel());
      super.channelInactive(ctx);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      // A reset connection or a protocol error: nothing to answer, nothing worth more than DEBUG.
      log.debug("{} http connection failed: {}", config.name(), cause.toString());
      ctx.close();
    }

    private void arm(ChannelHandlerContext ctx, Duration after) {
      disarm();
      deadline = ctx.executor().schedule(() -> expire(ctx), after.toNanos(), TimeUnit.NANOSECONDS);
    }

    private void disarm() {
      if (deadline != null) {
        deadline.cancel(false);
        deadline = null;
      }
    }

    private void expire(ChannelHandlerContext ctx) {
      if (state == State.IDLE) {
        ctx.close();
        return;
      }
      // A request that did not arrive in time: say so (a slow but honest client learns why) and
      // close.
      FullHttpResponse timeout =
          response(
              HttpResponseStatus.REQUEST_TIMEOUT,
              "application/json",
              "{\"error\":\"request timeout\"}\n".getBytes(StandardCharsets.UTF_8),
              Map.of(),
              false);
      timeout.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
      ctx.writeAndFlush(timeout).addListener(ChannelFutureListener.CLOSE);
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
      if (answering) {
        // Pipelined behind a request not yet answered: taken once that answer is written (HTTP/1.1
        // answers in order). Reading is paused meanwhile, so at most what one read held waits.
        queued.add(req.retain());
        return;
      }
      take(ctx, req);
    }

    private void take(ChannelHandlerContext ctx, FullHttpRequest req) {
      disarm();
      if (!req.decoderResult().isSuccess()) {
        // Too long a request line or header, or not HTTP at all.
        FullHttpResponse bad =
            response(
                HttpResponseStatus.BAD_REQUEST,
                "application/json",
                "{\"error\":\"bad request\"}\n".getBytes(StandardCharsets.UTF_8),
                Map.of(),
                false);
        bad.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        ctx.writeAndFlush(bad).addListener(ChannelFutureListener.CLOSE);
        return;
      }
      boolean head = req.method().equals(HttpMethod.HEAD);
      boolean keepAlive = HttpUtil.isKeepAlive(req);
      QueryStringDecoder uri = new QueryStringDecoder(req.uri());
      Map<String, String> headers = new java.util.HashMap<>();
      req.headers()
          .forEach(h -> headers.put(h.getKey().toLowerCase(java.util.Locale.ROOT), h.getValue()));
      byte[] body = new byte[req.content().readableBytes()];
      req.content().getBytes(req.content().readerIndex(), body);
      String method = req.method().name();
      String path = uri.path();
      java.util.concurrent.CompletionStage<Response> answer;
      try {
        answer =
            handler.handle(
                new Exchange(method, path, rawQuery(req.uri()), Map.copyOf(headers), body));
      } catch (RuntimeException e) {
        answer = java.util.concurrent.CompletableFuture.failedFuture(e);
      }
      java.util.concurrent.CompletableFuture<Response> done = answer.toCompletableFuture();
      if (done.isDone()) {
        // Answered at once (the ops port, static files): written now, as a synchronous handler.
        Response r = null;
        Throwable failure = null;
        try {
          r = done.join();
        } catch (java.util.concurrent.CompletionException
            | java.util.concurrent.CancellationException e) {
          failure = e.getCause() == null ? e : e.getCause();
        }
        answer(ctx, method, path, head, keepAlive, r, failure);
        return;
      }
      // Until the answer is written no other request is read on this connection (HTTP/1.1 answers
      // in order); the request deadline no longer runs, the handler bounds its own time.
      ctx.channel().config().setAutoRead(false);
      answering = true;
      answer.whenComplete(
          (r, failure) ->
              ctx.executor()
                  .execute(
                      () -> {
                        answering = false;
                        answer(ctx, method, path, head, keepAlive, r, failure);
                        ctx.channel().config().setAutoRead(true);
                        drain(ctx);
                      }));
    }

    /** Takes the pipelined requests that waited, in order, until one has to wait again. */
    private void drain(ChannelHandlerContext ctx) {
      FullHttpRequest next;
      while (!answering && (next = queued.poll()) != null) {
        try {
          if (ctx.channel().isActive()) {
            take(ctx, next);
          }
        } finally {
          next.release();
        }
      }
    }

    private void answer(
        ChannelHandlerContext ctx,
        String method,
        String path,
        boolean head,
        boolean keepAlive,
        Response answer,
        Throwable failure) {
      if (failure != null || answer == null) {
        log.error("{} http handler failed for {} {}", config.name(), method, path, failure);
        answer = Response.of(500, "application/json", "{\"error\":\"internal error\"}\n");
      }
      if (!ctx.channel().isActive()) {
        return;
      }
      FullHttpResponse out =
          response(
              HttpResponseStatus.valueOf(answer.status()),
              answer.contentType(),
              answer.body(),
              answer.headers(),
              head);
      HttpUtil.setKeepAlive(out, keepAlive);
      if (!keepAlive) {
        ctx.writeAndFlush(out).addListener(ChannelFutureListener.CLOSE);
        return;
      }
      ctx.writeAndFlush(out);
      state = State.IDLE;
      arm(ctx, config.idleTimeout());
    }

    private static String rawQuery(String uri) {
      int q = uri.indexOf('?');
      return q < 0 ? "" : uri.substring(q + 1);
    }

    private static FullHttpResponse response(
        HttpResponseStatus status,
        String contentType,
        byte[] body,
        Map<String, String> headers,
        boolean head) {
      FullHttpResponse r =
          new DefaultFullHttpResponse(
              HttpVersion.HTTP_1_1,
              status,
              head ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(body));
      headers.forEach((k, v) -> r.headers().set(k, v));
      r.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
      // HEAD: the length the GET body would have, and no body.
      r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, body.length);
      return r;
    }
  }
}
