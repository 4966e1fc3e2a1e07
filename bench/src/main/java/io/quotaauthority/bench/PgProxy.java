package io.quotaauthority.bench;

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
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.ObjLongConsumer;
import java.util.regex.Pattern;

/**
 * A loopback TCP proxy in front of PostgreSQL that reads the frontend protocol on its way through
 * and counts every statement the server executes (each Bind of a prepared statement and each simple
 * Query), by what it touches. It answers "did Check query the database?" exactly, at once, with no
 * dependence on pg_stat_statements or on the up-to-10 s lag of pg_stat_database.
 *
 * <p>Each statement is also credited to the kind of transaction it ran in, once that transaction
 * ends ({@link TxTally}): a usage commit (it wrote usage_events; its lease draws included), a lease
 * transaction (it took, gave back, renewed or reaped a lease: key_leases, key_slot_leases or a
 * write of api_keys.leased), or other (key loads, connection checks). Those counts are the entries
 * "(lease statements)", "(usage commit transactions)" and so on of a snapshot.
 *
 * <p>It needs a plaintext connection (the server's URL gets sslmode=disable) and only the
 * client-to-server direction is parsed; replies are copied through untouched.
 *
 * <p>Why this is not the tests' {@code io.quotaauthority.testing.TcpProxy} (server/src/test),
 * though both read the same frontend messages: there is no home both can depend on that is worth
 * having. The bench is main code run from its shaded jar, and it depends on the server's main jar
 * only; a test-jar dependency would put the server's test classes (TestDatabase and its embedded
 * PostgreSQL, which bench/pom.xml excludes) into that jar, and moving a proxy into the server's
 * main code would ship a test instrument in the production jar. A third module for 250 lines costs
 * more build than it saves. And they count different things on purpose: this one counts each Bind
 * (and Sync, as round trips) by the table it touches, for the report's "statements per group"
 * figures; the tests' counts each Execute by its exact SQL text and can cut and restore the
 * connection to play an outage. Merging them would change one side's numbers or assertions.
 */
final class PgProxy implements AutoCloseable {
  private final InetSocketAddress upstream;
  private final ServerSocket listener;
  private final Map<String, LongAdder> statements = new ConcurrentHashMap<>();
  private final LongAdder syncs = new LongAdder();
  private final CopyOnWriteArrayList<Socket> sockets = new CopyOnWriteArrayList<>();
  private volatile boolean closed;

  PgProxy(InetSocketAddress upstream) throws IOException {
    this.upstream = upstream;
    this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread accept = new Thread(this::acceptLoop, "pg-proxy-accept");
    accept.setDaemon(true);
    accept.start();
  }

  int port() {
    return listener.getLocalPort();
  }

  /**
   * Statements executed so far by class ("UPDATE api_keys", "INSERT usage_events", "BEGIN", ...),
   * plus, in parentheses, round trips and the statements and transactions of each kind ({@link
   * TxTally}).
   */
  Map<String, Long> snapshot() {
    Map<String, Long> out = new TreeMap<>();
    statements.forEach((k, v) -> out.put(k, v.sum()));
    out.put("(round trips)", syncs.sum());
    return out;
  }

  /** What changed between two snapshots, zero entries left out. */
  static Map<String, Long> delta(Map<String, Long> before, Map<String, Long> after) {
    Map<String, Long> out = new TreeMap<>();
    after.forEach(
        (k, v) -> {
          long d = v - before.getOrDefault(k, 0L);
          if (d != 0) {
            out.put(k, d);
          }
        });
    return out;
  }

  /** Statements in a delta, round trips and the per-kind counts excluded. */
  static long statementCount(Map<String, Long> delta) {
    long n = 0;
    for (Map.Entry<String, Long> e : delta.entrySet()) {
      if (!e.getKey().startsWith("(")) {
        n += e.getValue();
      }
    }
    return n;
  }

  private void acceptLoop() {
    while (!closed) {
      try {
        Socket client = listener.accept();
        Socket server = new Socket();
        server.connect(upstream, 5_000);
        client.setTcpNoDelay(true);
        server.setTcpNoDelay(true);
        sockets.add(client);
        sockets.add(server);
        start("pg-proxy-up", () -> frontend(client, server));
        start("pg-proxy-down", () -> copy(server, client));
      } catch (IOException e) {
        if (!closed) {
          System.err.println("pg proxy: " + e);
        }
      }
    }
  }

  private static void start(String name, Runnable r) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    t.start();
  }

  private void copy(Socket from, Socket to) {
    byte[] buf = new byte[64 * 1024];
    try (InputStream in = from.getInputStream();
        OutputStream out = to.getOutputStream()) {
      int n;
      while ((n = in.read(buf)) >= 0) {
        out.write(buf, 0, n);
        out.flush();
      }
    } catch (IOException e) {
      // Either side closed: the other follows.
    } finally {
      closeQuietly(from);
      closeQuietly(to);
    }
  }

  /** Client to server, one protocol message at a time, flushed whenever the client pauses. */
  private void frontend(Socket client, Socket server) {
    Map<String, String> prepared = new HashMap<>();
    TxTally tally = new TxTally(this::add);
    try (DataInputStream in =
            new DataInputStream(new BufferedInputStream(client.getInputStream(), 64 * 1024));
        OutputStream out = new BufferedOutputStream(server.getOutputStream(), 64 * 1024)) {
      boolean started = false;
      while (true) {
        if (in.available() == 0) {
          out.flush();
        }
        if (!started) {
          // Untyped: SSLRequest / GSSENCRequest (answered with one byte, then the startup again)
          // or the StartupMessage itself.
          int len = in.readInt();
          byte[] body = new byte[len - 4];
          in.readFully(body);
          int code =
              ((body[0] & 0xff) << 24)
                  | ((body[1] & 0xff) << 16)
                  | ((body[2] & 0xff) << 8)
                  | (body[3] & 0xff);
          out.write(intBytes(len));
          out.write(body);
          started = code == 196608; // protocol 3.0
          continue;
        }
        int type = in.read();
        if (type < 0) {
          break;
        }
        int len = in.readInt();
        byte[] body = new byte[len - 4];
        in.readFully(body);
        out.write(type);
        out.write(intBytes(len));
        out.write(body);
        observe((char) type, body, prepared, tally);
      }
    } catch (EOFException e) {
      // Client hung up.
    } catch (IOException e) {
      // Connection closed on either side.
    } finally {
      closeQuietly(client);
      closeQuietly(server);
    }
  }

  private void observe(char type, byte[] body, Map<String, String> prepared, TxTally tally) {
    switch (type) {
      case 'P' -> {
        int nameEnd = cstringEnd(body, 0);
        String name = new String(body, 0, nameEnd, StandardCharsets.UTF_8);
        int queryEnd = cstringEnd(body, nameEnd + 1);
        prepared.put(
            name, new String(body, nameEnd + 1, queryEnd - nameEnd - 1, StandardCharsets.UTF_8));
      }
      case 'B' -> {
        int portalEnd = cstringEnd(body, 0);
        int stmtEnd = cstringEnd(body, portalEnd + 1);
        String stmt =
            new String(body, portalEnd + 1, stmtEnd - portalEnd - 1, StandardCharsets.UTF_8);
        statement(prepared.getOrDefault(stmt, "?"), tally);
      }
      case 'Q' ->
          statement(new String(body, 0, cstringEnd(body, 0), StandardCharsets.UTF_8), tally);
      case 'S' -> syncs.increment();
      default -> {
        // Describe, Execute, Close, Flush, Terminate, copy data: nothing to count.
      }
    }
  }

  private void statement(String sql, TxTally tally) {
    add(classify(sql), 1);
    tally.statement(sql);
  }

  private void add(String what, long n) {
    statements.computeIfAbsent(what, k -> new LongAdder()).add(n);
  }

  /**
   * One connection's statements, credited to the kind of transaction they ran in when it ends
   * (COMMIT or ROLLBACK): the kind is known only then, since a usage commit's first statements
   * (locking the keys, drawing on leases) look like a lease transaction's. A statement outside a
   * transaction is a kind of its own, by its text. Not thread-safe: one per connection, fed by its
   * reader thread.
   */
  static final class TxTally {
    static final String LEASE = "lease";
    static final String USAGE = "usage commit";
    static final String OTHER = "other";

    /** A write of a key's lease total: a grant, a give-back, a reap (not a read of the column). */
    private static final Pattern LEASED_WRITE = Pattern.compile("set\\s+(slots_)?leased\\s*=");

    private final ObjLongConsumer<String> sink;
    private boolean open;
    private long statements;
    private boolean lease;
    private boolean usage;

    /**
     * @param sink takes "(&lt;kind&gt; statements)" and "(&lt;kind&gt; transactions)" with their
     *     counts
     */
    TxTally(ObjLongConsumer<String> sink) {
      this.sink = sink;
    }

    void statement(String sql) {
      String s = sql.trim().toLowerCase(Locale.ROOT);
      if (s.startsWith("begin") || s.startsWith("start transaction")) {
        if (open) {
          // A BEGIN inside a transaction changes nothing in PostgreSQL but a warning: same one.
          statements++;
          return;
        }
        open = true;
        statements = 1;
        lease = false;
        usage = false;
        return;
      }
      boolean lease = isLease(s);
      boolean usage = s.contains("usage_events");
      if (!open) {
        // Autocommit: the statement is its own transaction.
        credit(kind(usage, lease), 1);
        return;
      }
      statements++;
      this.lease |= lease;
      this.usage |= usage;
      // ROLLBACK TO SAVEPOINT ends nothing.
      if (s.startsWith("commit")
          || s.startsWith("end")
          || (s.startsWith("rollback") && !s.startsWith("rollback to"))) {
        credit(kind(this.usage, this.lease), statements);
        open = false;
      }
    }

    static boolean isLease(String lowerSql) {
      return lowerSql.contains("key_leases")
          || lowerSql.contains("key_slot_leases")
          || LEASED_WRITE.matcher(lowerSql).find();
    }

    private static String kind(boolean usage, boolean lease) {
      // A usage commit draws on leases in its own transaction: those draws are the commit's.
      return usage ? USAGE : lease ? LEASE : OTHER;
    }

    private void credit(String kind, long n) {
      sink.accept("(" + kind + " statements)", n);
      sink.accept("(" + kind + " transactions)", 1);
    }
  }

  static String classify(String sql) {
    String s = sql.trim().toLowerCase(Locale.ROOT);
    if (s.isEmpty()) {
      return "(empty: connection check)";
    }
    if (s.equals("begin") || s.startsWith("commit") || s.startsWith("rollback")) {
      return s.split("\\s")[0].toUpperCase(Locale.ROOT);
    }
    String verb = s.split("\\s+")[0].toUpperCase(Locale.ROOT);
    // Lease tables before api_keys: a reap names both, and it is the lease it is about.
    for (String table :
        new String[] {
          "usage_events",
          "key_slot_leases",
          "key_leases",
          "api_keys",
          "key_audit",
          "flyway_schema_history"
        }) {
      if (s.contains(table)) {
        return verb + " " + table;
      }
    }
    if (s.contains("pg_notify")) {
      return "SELECT pg_notify";
    }
    return verb + " (other)";
  }

  private static int cstringEnd(byte[] b, int from) {
    int i = from;
    while (i < b.length && b[i] != 0) {
      i++;
    }
    return i;
  }

  private static byte[] intBytes(int v) {
    return new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v};
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException e) {
      // Closing anyway.
    }
  }

  @Override
  public void close() {
    closed = true;
    closeQuietly(listener);
    for (Socket s : sockets) {
      closeQuietly(s);
    }
  }

  private static void closeQuietly(ServerSocket s) {
    try {
      s.close();
    } catch (IOException e) {
      // Closing anyway.
    }
  }
}
