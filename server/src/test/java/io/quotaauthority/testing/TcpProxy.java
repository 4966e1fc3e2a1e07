package io.quotaauthority.testing;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.LongAdder;

/**
 * A TCP proxy on loopback between the server and PostgreSQL that a test can cut (refuse new
 * connections and drop open ones) and restore, to play a database outage for real. It also reads
 * the client's side of the PostgreSQL protocol and counts the statements executed, by SQL text
 * (simple Query, and Execute of a portal bound to a Parsed statement), so a test can say how many
 * queries of each kind the server made. It needs an unencrypted session (the test server has no
 * SSL).
 */
public final class TcpProxy implements AutoCloseable {
  private final InetSocketAddress target;
  private final int port;
  private final List<Socket> open = new CopyOnWriteArrayList<>();
  private final Map<String, LongAdder> statements = new ConcurrentHashMap<>();
  private volatile ServerSocket listener;
  private volatile boolean closed;

  public TcpProxy(String host, int targetPort) throws IOException {
    this.target = new InetSocketAddress(host, targetPort);
    ServerSocket s = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    this.port = s.getLocalPort();
    listen(s);
  }

  /** A proxy in front of the test PostgreSQL server. */
  public static TcpProxy toPostgres() throws IOException {
    String[] hostPort = TestDatabase.HOST.split(":");
    return new TcpProxy(hostPort[0], Integer.parseInt(hostPort[1]));
  }

  public int port() {
    return port;
  }

  /** The JDBC URL of a database, reached through this proxy. */
  public String jdbcUrl(String database) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/" + database;
  }

  /** Stops accepting and drops every open connection: the database is "gone". */
  public synchronized void cut() throws IOException {
    ServerSocket s = listener;
    listener = null;
    if (s != null) {
      s.close();
    }
    for (Socket socket : open) {
      socket.close();
    }
    open.clear();
  }

  /** Listens again on the same port. */
  public synchronized void restore() throws IOException {
    if (listener == null) {
      ServerSocket s = new ServerSocket();
      s.setReuseAddress(true);
      s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
      listen(s);
    }
  }

  private void listen(ServerSocket s) {
    listener = s;
    Thread t =
        new Thread(
            () -> {
              while (!s.isClosed()) {
                try {
                  Socket client = s.accept();
                  Socket upstream = new Socket();
                  upstream.connect(target, 2_000);
                  open.add(client);
                  open.add(upstream);
                  countingPump(client, upstream);
                  pump(upstream, client);
                } catch (IOException e) {
                  // closed by cut() or close(), or the target refused: drop this connection only
                }
              }
            },
            "tcp-proxy-accept");
    t.setDaemon(true);
    t.start();
  }

  private void pump(Socket from, Socket to) {
    Thread t =
        new Thread(
            () -> {
              byte[] buf = new byte[16 * 1024];
              try (InputStream in = from.getInputStream();
                  OutputStream out = to.getOutputStream()) {
                int n;
                while ((n = in.read(buf)) >= 0) {
                  out.write(buf, 0, n);
                  out.flush();
                }
              } catch (IOException e) {
                // one side went away
              } finally {
                closeQuietly(from);
                closeQuietly(to);
              }
            },
            "tcp-proxy-pump");
    t.setDaemon(true);
    t.start();
  }

  /** Statements executed through this proxy so far, by SQL text (whitespace as sent). */
  public Map<String, Long> statements() {
    Map<String, Long> out = new TreeMap<>();
    statements.forEach((sql, n) -> out.put(sql, n.sum()));
    return out;
  }

  /** Statements executed so far whose SQL contains {@code fragment}. */
  public long statementsContaining(String fragment) {
    long n = 0;
    for (Map.Entry<String, LongAdder> e : statements.entrySet()) {
      if (e.getKey().contains(fragment)) {
        n += e.getValue().sum();
      }
    }
    return n;
  }

  /** Client to server: forwards message by message, counting the statements executed. */
  private void countingPump(Socket from, Socket to) {
    Thread t =
        new Thread(
            () -> {
              try (DataInputStream in =
                      new DataInputStream(new BufferedInputStream(from.getInputStream()));
                  OutputStream out = new BufferedOutputStream(to.getOutputStream())) {
                // Untyped startup packets first: an SSL or GSS request (8 bytes, then the server's
                // answer
                // byte) may precede the startup message itself.
                while (true) {
                  int length = in.readInt();
                  byte[] body = new byte[length - 4];
                  in.readFully(body);
                  out.write(intBytes(length));
                  out.write(body);
                  out.flush();
                  int code = length >= 8 ? ByteBuffer.wrap(body).getInt() : 0;
                  if (code != 80877103 && code != 80877104) {
                    break;
                  }
                }
                Map<String, String> prepared = new HashMap<>();
                Map<String, String> portals = new HashMap<>();
                while (true) {
                  int type = in.read();
                  if (type < 0) {
                    break;
                  }
                  int length = in.readInt();
                  byte[] body = new byte[length - 4];
                  in.readFully(body);
                  out.write(type);
                  out.write(intBytes(length));
                  out.write(body);
                  count((char) type, body, prepared, portals);
                  if (in.available() == 0) {
                    out.flush();
                  }
                }
              } catch (EOFException e) {
                // the client closed
              } catch (IOException e) {
                // one side went away
              } finally {
                closeQuietly(from);
                closeQuietly(to);
              }
            },
            "tcp-proxy-pump");
    t.setDaemon(true);
    t.start();
  }

  private void count(
      char type, byte[] body, Map<String, String> prepared, Map<String, String> portals) {
    int[] at = {0};
    switch (type) {
      case 'Q' -> bump(cstring(body, at));
      case 'P' -> {
        String name = cstring(body, at);
        prepared.put(name, cstring(body, at));
      }
      case 'B' -> {
        String portal = cstring(body, at);
        portals.put(portal, prepared.getOrDefault(cstring(body, at), "?"));
      }
      case 'E' -> bump(portals.getOrDefault(cstring(body, at), "?"));
      default -> {}
    }
  }

  private void bump(String sql) {
    statements.computeIfAbsent(sql, k -> new LongAdder()).increment();
  }

  private static String cstring(byte[] body, int[] at) {
    int start = at[0];
    int end = start;
    while (end < body.length && body[end] != 0) {
      end++;
    }
    at[0] = end + 1;
    return new String(body, start, end - start, StandardCharsets.UTF_8);
  }

  private static byte[] intBytes(int v) {
    return ByteBuffer.allocate(4).putInt(v).array();
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException e) {
      // already closed
    }
  }

  @Override
  public void close() throws IOException {
    closed = true;
    cut();
  }
}
