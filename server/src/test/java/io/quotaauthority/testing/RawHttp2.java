package io.quotaauthority.testing;

import io.grpc.netty.shaded.io.netty.buffer.ByteBuf;
import io.grpc.netty.shaded.io.netty.buffer.Unpooled;
import io.grpc.netty.shaded.io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.grpc.netty.shaded.io.netty.handler.codec.http2.DefaultHttp2HeadersDecoder;
import io.grpc.netty.shaded.io.netty.handler.codec.http2.DefaultHttp2HeadersEncoder;
import io.grpc.netty.shaded.io.netty.handler.codec.http2.Http2Exception;
import io.grpc.netty.shaded.io.netty.handler.codec.http2.Http2Headers;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * A plaintext HTTP/2 client that writes frames by hand, for what gRPC's own client never does: PING
 * frames at a chosen rate, and gRPC messages that declare one length and send another. It keeps
 * flow control honestly (waits for the server's WINDOW_UPDATEs), ACKs the server's SETTINGS and
 * PINGs, and records every GOAWAY, RST_STREAM, PING ACK, header block (decoded with Netty's HPACK)
 * and DATA byte count per stream. Header blocks are encoded and decoded with the shaded Netty HPACK
 * coder; everything else is the 9-byte frame header of RFC 9113 §4.1.
 */
public final class RawHttp2 implements AutoCloseable {
  private static final byte[] PREFACE =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
  private static final int DATA = 0;
  private static final int HEADERS = 1;
  private static final int RST_STREAM = 3;
  private static final int SETTINGS = 4;
  private static final int PING = 6;
  private static final int GOAWAY = 7;
  private static final int WINDOW_UPDATE = 8;
  private static final int CONTINUATION = 9;
  private static final int FLAG_END_STREAM = 0x1;
  private static final int FLAG_ACK = 0x1;
  private static final int FLAG_END_HEADERS = 0x4;
  private static final int MAX_FRAME = 16_384; // the default SETTINGS_MAX_FRAME_SIZE

  /** A GOAWAY the server sent. */
  public record GoAway(int lastStreamId, long errorCode, String debug) {}

  private final Socket socket;
  private final OutputStream out;
  private final DataInputStream in;
  private final Thread reader;
  private final DefaultHttp2HeadersEncoder encoder = new DefaultHttp2HeadersEncoder();
  private final DefaultHttp2HeadersDecoder decoder = new DefaultHttp2HeadersDecoder(true);

  private final List<GoAway> goAways = new CopyOnWriteArrayList<>();
  private final List<Long> pingAcks = new CopyOnWriteArrayList<>();
  private final Map<Integer, Long> resets = new HashMap<>();
  private final Map<Integer, List<Http2Headers>> headers = new HashMap<>();
  private final Map<Integer, Long> dataBytes = new HashMap<>();
  private final Map<Integer, Long> sendWindows = new HashMap<>();
  private long connectionSendWindow = 65_535;
  private long initialStreamWindow = 65_535;
  private boolean settingsReceived;
  private volatile boolean closed;
  private volatile Throwable readError;
  private int nextStreamId = 1;

  private RawHttp2(Socket socket) throws IOException {
    this.socket = socket;
    this.out = new BufferedOutputStream(socket.getOutputStream(), 1 << 16);
    this.in = new DataInputStream(socket.getInputStream());
    this.reader = new Thread(this::readLoop, "raw-h2-reader");
    this.reader.setDaemon(true);
  }

  /** Connects, sends the preface and an empty SETTINGS, and waits for the server's SETTINGS. */
  public static RawHttp2 connect(int port) throws IOException, InterruptedException {
    Socket s = new Socket();
    s.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
    s.setTcpNoDelay(true);
    RawHttp2 c = new RawHttp2(s);
    synchronized (c.out) {
      c.out.write(PREFACE);
      c.writeFrame(SETTINGS, 0, 0, new byte[0], 0, 0);
      c.out.flush();
    }
    c.reader.start();
    synchronized (c) {
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (!c.settingsReceived && System.nanoTime() < end) {
        c.wait(100);
      }
      if (!c.settingsReceived) {
        throw new IOException("no SETTINGS from the server");
      }
    }
    return c;
  }

  /** Sends a PING with this payload. */
  public void ping(long payload) throws IOException {
    byte[] p = new byte[8];
    for (int i = 0; i < 8; i++) {
      p[i] = (byte) (payload >>> (56 - 8 * i));
    }
    synchronized (out) {
      writeFrame(PING, 0, 0, p, 0, 8);
      out.flush();
    }
  }

  /** Opens a gRPC call (HEADERS, END_HEADERS, not END_STREAM); returns its stream id. */
  public int openGrpcCall(String fullMethod) throws IOException {
    return openGrpcCall(fullMethod, null);
  }

  /** As {@link #openGrpcCall(String)}, with {@code authorization: Bearer <token>} when not null. */
  public int openGrpcCall(String fullMethod, String bearerToken) throws IOException {
    Http2Headers h =
        new DefaultHttp2Headers()
            .method("POST")
            .scheme("http")
            .authority("127.0.0.1")
            .path("/" + fullMethod)
            .add("content-type", "application/grpc")
            .add("te", "trailers");
    if (bearerToken != null) {
      h.add("authorization", "Bearer " + bearerToken);
    }
    int id;
    synchronized (this) {
      id = nextStreamId;
      nextStreamId += 2;
      sendWindows.put(id, initialStreamWindow);
    }
    ByteBuf block = Unpooled.buffer();
    try {
      synchronized (out) {
        encoder.encodeHeaders(id, h, block);
        byte[] b = new byte[block.readableBytes()];
        block.readBytes(b);
        writeFrame(HEADERS, FLAG_END_HEADERS, id, b, 0, b.length);
        out.flush();
      }
    } catch (Http2Exception e) {
      throw new IOException(e);
    } finally {
      block.release();
    }
    return id;
  }

  /** The 5-byte gRPC message prefix: not compressed, this declared length. */
  public static byte[] grpcPrefix(int declaredLength) {
    return new byte[] {
      0,
      (byte) (declaredLength >>> 24),
      (byte) (declaredLength >>> 16),
      (byte) (declaredLength >>> 8),
      (byte) declaredLength
    };
  }

  /** A whole gRPC message: prefix and bytes. */
  public static byte[] grpcMessage(byte[] message) {
    byte[] framed = new byte[message.length + 5];
    System.arraycopy(grpcPrefix(message.length), 0, framed, 0, 5);
    System.arraycopy(message, 0, framed, 5, message.length);
    return framed;
  }

  /**
   * Sends bytes on a stream as DATA frames, waiting for send window as the server grants it; false
   * if the window did not open within the timeout (the server stopped reading the stream).
   */
  public boolean send(int stream, byte[] bytes, int offset, int length, long timeoutMillis)
      throws IOException, InterruptedException {
    long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    int at = offset;
    int stop = offset + length;
    while (at < stop) {
      int n;
      synchronized (this) {
        while (true) {
          long window = Math.min(connectionSendWindow, sendWindows.getOrDefault(stream, 0L));
          if (window > 0) {
            n = (int) Math.min(Math.min(window, MAX_FRAME), stop - at);
            connectionSendWindow -= n;
            sendWindows.merge(stream, (long) -n, Long::sum);
            break;
          }
          if (closed || resets.containsKey(stream) || System.nanoTime() > end) {
            return false;
          }
          wait(50);
        }
      }
      synchronized (out) {
        writeFrame(DATA, 0, stream, bytes, at, n);
        out.flush();
      }
      at += n;
    }
    return true;
  }

  public List<GoAway> goAways() {
    return List.copyOf(goAways);
  }

  public int pingAcks() {
    return pingAcks.size();
  }

  public synchronized Long reset(int stream) {
    return resets.get(stream);
  }

  /** Header blocks received on a stream (response headers, then trailers). */
  public synchronized List<Http2Headers> headers(int stream) {
    return List.copyOf(headers.getOrDefault(stream, List.of()));
  }

  public synchronized long dataBytes(int stream) {
    return dataBytes.getOrDefault(stream, 0L);
  }

  /** The grpc-status of the stream's trailers, or null if none came yet. */
  public synchronized String grpcStatus(int stream) {
    for (Http2Headers h : headers.getOrDefault(stream, List.of())) {
      CharSequence s = h.get("grpc-status");
      if (s != null) {
        return s.toString();
      }
    }
    return null;
  }

  /** Waits until the condition (checked under this object's lock) holds or the timeout passes. */
  public boolean await(BooleanSupplier condition, long timeoutMillis) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    synchronized (this) {
      while (!condition.getAsBoolean()) {
        long left = TimeUnit.NANOSECONDS.toMillis(end - System.nanoTime());
        if (left <= 0) {
          return false;
        }
        wait(Math.min(left, 50));
      }
      return true;
    }
  }

  /** Whether the socket is still open from the server's side. */
  public boolean connected() {
    return !closed && readError == null;
  }

  private void writeFrame(int type, int flags, int stream, byte[] payload, int off, int len)
      throws IOException {
    out.write(len >>> 16);
    out.write(len >>> 8);
    out.write(len);
    out.write(type);
    out.write(flags);
    out.write(stream >>> 24 & 0x7f);
    out.write(stream >>> 16);
    out.write(stream >>> 8);
    out.write(stream);
    out.write(payload, off, len);
  }

  private void readLoop() {
    try {
      ByteBuf pendingBlock = null;
      int pendingStream = 0;
      while (true) {
        int len = in.readUnsignedByte() << 16 | in.readUnsignedByte() << 8 | in.readUnsignedByte();
        int type = in.readUnsignedByte();
        int flags = in.readUnsignedByte();
        int stream = in.readInt() & 0x7fffffff;
        byte[] p = new byte[len];
        in.readFully(p);
        switch (type) {
          case DATA -> {
            synchronized (this) {
              dataBytes.merge(stream, (long) len, Long::sum);
            }
            if (len > 0) {
              // Give the window straight back: we read everything the server sends.
              byte[] inc = int32(len);
              synchronized (out) {
                writeFrame(WINDOW_UPDATE, 0, 0, inc, 0, 4);
                if ((flags & FLAG_END_STREAM) == 0) {
                  writeFrame(WINDOW_UPDATE, 0, stream, inc, 0, 4);
                }
                out.flush();
              }
            }
          }
          case HEADERS, CONTINUATION -> {
            int start = 0;
            int end = len;
            if (type == HEADERS) {
              if ((flags & 0x8) != 0) { // PADDED
                int pad = p[0] & 0xff;
                start = 1;
                end -= pad;
              }
              if ((flags & 0x20) != 0) { // PRIORITY
                start += 5;
              }
              pendingBlock = Unpooled.buffer();
              pendingStream = stream;
            }
            pendingBlock.writeBytes(p, start, end - start);
            if ((flags & FLAG_END_HEADERS) != 0) {
              Http2Headers h = decoder.decodeHeaders(pendingStream, pendingBlock);
              pendingBlock.release();
              pendingBlock = null;
              synchronized (this) {
                headers.computeIfAbsent(pendingStream, k -> new CopyOnWriteArrayList<>()).add(h);
                notifyAll();
              }
            }
          }
          case RST_STREAM -> {
            synchronized (this) {
              resets.put(stream, readUint32(p, 0));
              notifyAll();
            }
          }
          case SETTINGS -> {
            if ((flags & FLAG_ACK) == 0) {
              synchronized (this) {
                for (int i = 0; i + 6 <= len; i += 6) {
                  int id = (p[i] & 0xff) << 8 | (p[i + 1] & 0xff);
                  long value = readUint32(p, i + 2);
                  if (id == 0x4) { // INITIAL_WINDOW_SIZE: applies to every stream's window
                    long delta = value - initialStreamWindow;
                    initialStreamWindow = value;
                    sendWindows.replaceAll((k, v) -> v + delta);
                  }
                }
                settingsReceived = true;
                notifyAll();
              }
              synchronized (out) {
                writeFrame(SETTINGS, FLAG_ACK, 0, new byte[0], 0, 0);
                out.flush();
              }
            }
          }
          case PING -> {
            if ((flags & FLAG_ACK) != 0) {
              long v = 0;
              for (int i = 0; i < 8; i++) {
                v = v << 8 | (p[i] & 0xff);
              }
              pingAcks.add(v);
              synchronized (this) {
                notifyAll();
              }
            } else {
              synchronized (out) { // the server's keepalive ping
                writeFrame(PING, FLAG_ACK, 0, p, 0, 8);
                out.flush();
              }
            }
          }
          case GOAWAY -> {
            goAways.add(
                new GoAway(
                    (int) (readUint32(p, 0) & 0x7fffffff),
                    readUint32(p, 4),
                    new String(p, 8, len - 8, StandardCharsets.UTF_8)));
            synchronized (this) {
              notifyAll();
            }
          }
          case WINDOW_UPDATE -> {
            long inc = readUint32(p, 0) & 0x7fffffff;
            synchronized (this) {
              if (stream == 0) {
                connectionSendWindow += inc;
              } else {
                sendWindows.merge(stream, inc, Long::sum);
              }
              notifyAll();
            }
          }
          default -> {} // PRIORITY, PUSH_PROMISE (never sent to a client that disabled it), ...
        }
      }
    } catch (EOFException e) {
      // the server closed the connection
    } catch (IOException | Http2Exception | RuntimeException e) {
      if (!closed) {
        readError = e;
      }
    } finally {
      closed = true;
      synchronized (this) {
        notifyAll();
      }
    }
  }

  private static byte[] int32(int v) {
    return new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v};
  }

  private static long readUint32(byte[] p, int at) {
    return (p[at] & 0xffL) << 24
        | (p[at + 1] & 0xffL) << 16
        | (p[at + 2] & 0xffL) << 8
        | (p[at + 3] & 0xffL);
  }

  @Override
  public void close() throws IOException {
    closed = true;
    socket.close();
  }
}
