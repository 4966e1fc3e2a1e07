package io.quotaauthority.bench;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.KnownLength;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoop;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.Epoll;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.nio.NioEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioSocketChannel;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongToIntFunction;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * The ext_authz load generator: raw unary Check calls (pre-serialized requests, responses read only
 * for their status code) over a few channels, each its own HTTP/2 connection, with callbacks on the
 * transport threads (directExecutor), like the server. Every call carries a deadline, as Envoy's
 * does.
 *
 * <p>A closed loop keeps a fixed number of calls in flight and measures the most the server
 * answers. An open loop sends on a fixed schedule and measures each latency from the call's
 * intended send time, so a stall delays the schedule's later calls and shows in the figures instead
 * of hiding (no coordinated omission).
 */
final class CheckLoad implements AutoCloseable {
  static final MethodDescriptor<byte[], byte[]> CHECK =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName("envoy.service.auth.v3.Authorization/Check")
          .setRequestMarshaller(new Bytes())
          .setResponseMarshaller(new Bytes())
          .build();

  /**
   * Calls an open loop may have outstanding, in seconds' worth of its schedule, before it gives up:
   * a backlog that large would only poison the runs after it.
   */
  static final double OPEN_LOOP_MAX_BACKLOG_SECONDS = 1.0;

  private final List<ManagedChannel> channels = new ArrayList<>();

  /**
   * One single-thread event loop per channel: the channel's callbacks and its open-loop pacer run
   * there.
   */
  private final List<EventLoopGroup> loops = new ArrayList<>();

  private final CheckTemplate template;
  private final long deadlineNanos;

  CheckLoad(int port, int channelCount, CheckTemplate template, Duration deadline) {
    this.template = template;
    this.deadlineNanos = deadline.toNanos();
    boolean epoll = Epoll.isAvailable();
    for (int i = 0; i < channelCount; i++) {
      EventLoopGroup loop =
          epoll
              ? new EpollEventLoopGroup(1, daemon("check-client-" + i))
              : new NioEventLoopGroup(1, daemon("check-client-" + i));
      loops.add(loop);
      channels.add(
          NettyChannelBuilder.forAddress(
                  new InetSocketAddress(InetAddress.getLoopbackAddress(), port))
              .eventLoopGroup(loop)
              .channelType(epoll ? EpollSocketChannel.class : NioSocketChannel.class)
              .usePlaintext()
              .directExecutor()
              .build());
    }
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    for (ManagedChannel ch : channels) {
      while (ch.getState(true) != ConnectivityState.READY) {
        if (System.nanoTime() > until) {
          throw new IllegalStateException("no connection to 127.0.0.1:" + port);
        }
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
      }
    }
  }

  /** Picks the key of each call: an index, or -1 when there are no more. */
  interface Keys {
    long next();
  }

  static Keys uniform(long n) {
    return () -> ThreadLocalRandom.current().nextLong(n);
  }

  /** Each key of [from, to) once, in order: for warming the cache and for the cold path. */
  static Sequential sequential(long from, long to) {
    return new Sequential(from, to);
  }

  static final class Sequential implements Keys {
    private final AtomicLong next;
    private final long to;

    Sequential(long from, long to) {
      this.next = new AtomicLong(from);
      this.to = to;
    }

    @Override
    public long next() {
      long i = next.getAndIncrement();
      return i < to ? i : -1;
    }

    /** Keys below this were handed out. */
    long reached() {
      return Math.min(next.get(), to);
    }
  }

  /** The status code Check must answer for each bench key. */
  static final LongToIntFunction EXPECT_BENCH_KEYS = i -> BenchKeys.kind(i).checkCode;

  /** The no-op baseline allows everything. */
  static final LongToIntFunction EXPECT_OK = i -> 0;

  /** Keeps {@code inflight} calls outstanding, each answered call followed at once by the next. */
  Session closedLoop(int inflight, Keys keys, LongToIntFunction expect) {
    return closedLoop(inflight, keys, expect, deadlineNanos);
  }

  /** Like {@link #closedLoop(int, Keys, LongToIntFunction)} with another per-call deadline. */
  Session closedLoop(int inflight, Keys keys, LongToIntFunction expect, Duration deadline) {
    return closedLoop(inflight, keys, expect, deadline.toNanos());
  }

  private Session closedLoop(int inflight, Keys keys, LongToIntFunction expect, long deadline) {
    Session s = new Session(keys, expect, true, deadline);
    for (int i = 0; i < inflight; i++) {
      long k = keys.next();
      if (k < 0) {
        break;
      }
      s.slots.incrementAndGet();
      issue(s, channels.get(i % channels.size()), k, System.nanoTime());
    }
    return s;
  }

  /** Sends {@code ratePerSecond} calls on a fixed schedule until stopped or out of keys. */
  Session openLoop(double ratePerSecond, Keys keys, LongToIntFunction expect) {
    return openLoop(ratePerSecond, Duration.ZERO, keys, expect);
  }

  /**
   * Sends calls on a fixed schedule whose rate climbs linearly from a tenth of {@code
   * ratePerSecond} to all of it over {@code ramp}, then stays there until stopped or out of keys.
   * The ramp gives the JIT and the connections time to settle, so the schedule does not start with
   * a backlog; measure after it.
   */
  Session openLoop(double ratePerSecond, Duration ramp, Keys keys, LongToIntFunction expect) {
    return openLoop(ratePerSecond, ramp, keys, expect, Duration.ofNanos(deadlineNanos));
  }

  /**
   * Like {@link #openLoop(double, Duration, Keys, LongToIntFunction)} with another per-call
   * deadline.
   */
  Session openLoop(
      double ratePerSecond, Duration ramp, Keys keys, LongToIntFunction expect, Duration deadline) {
    Session s = new Session(keys, expect, false, deadline.toNanos());
    long maxInflight = Math.max(256, (long) (ratePerSecond * OPEN_LOOP_MAX_BACKLOG_SECONDS));
    // One pacer per connection, on that connection's event loop: calls start on the thread that
    // writes them, as in the closed loop, instead of crossing threads for every call.
    double perChannel = ratePerSecond / channels.size() / 1e9;
    AtomicInteger pacing = new AtomicInteger(channels.size());
    long start = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(5);
    for (int i = 0; i < channels.size(); i++) {
      Pacer p =
          new Pacer(
              s,
              channels.get(i),
              loops.get(i).next(),
              start,
              perChannel / 10,
              perChannel,
              ramp.toNanos(),
              maxInflight,
              pacing);
      p.loop.execute(p);
    }
    return s;
  }

  /** Sends one connection's share of an open loop's schedule, from its event loop. */
  private final class Pacer implements Runnable {
    /** Calls sent in one go before the loop gets to do its I/O. */
    private static final int MAX_BATCH = 64;

    /**
     * The pacer wakes at most this often and sends every call then due: waking for each call (tens
     * of µs apart) cost the load generator a core of its own.
     */
    static final long TICK_NANOS = 200_000;

    private final Session s;
    private final ManagedChannel ch;
    final EventLoop loop;
    private final long start;
    private final double low;
    private final double full;
    private final double ramp;
    private final long maxInflight;
    private final AtomicInteger pacing;
    private long n;

    Pacer(
        Session s,
        ManagedChannel ch,
        EventLoop loop,
        long start,
        double low,
        double full,
        double ramp,
        long maxInflight,
        AtomicInteger pacing) {
      this.s = s;
      this.ch = ch;
      this.loop = loop;
      this.start = start;
      this.low = low;
      this.full = full;
      this.ramp = ramp;
      this.maxInflight = maxInflight;
      this.pacing = pacing;
    }

    @Override
    public void run() {
      for (int sent = 0; sent < MAX_BATCH; sent++) {
        if (s.stopping) {
          done();
          return;
        }
        long intended = start + (long) offsetOf(n, low, full, ramp);
        long now = System.nanoTime();
        if (intended > now) {
          loop.schedule(this, Math.max(intended - now, TICK_NANOS), TimeUnit.NANOSECONDS);
          return;
        }
        if (s.inflight.get() >= maxInflight) {
          s.overloaded = true;
          done();
          return;
        }
        long k = s.keys.next();
        if (k < 0) {
          done();
          return;
        }
        issue(s, ch, k, intended);
        n++;
      }
      loop.execute(this);
    }

    private void done() {
      if (pacing.decrementAndGet() == 0) {
        s.sourceDone = true;
      }
    }
  }

  /**
   * When call {@code n} is due, in ns from the start, for a rate (calls per ns) that climbs from
   * {@code low} to {@code full} over {@code ramp} ns and then stays at {@code full}.
   */
  static double offsetOf(long n, double low, double full, double ramp) {
    if (ramp <= 0) {
      return n / full;
    }
    double slope = (full - low) / ramp;
    double callsInRamp = low * ramp + slope * ramp * ramp / 2;
    if (n >= callsInRamp) {
      return ramp + (n - callsInRamp) / full;
    }
    // Solve low*t + slope*t^2/2 = n for t.
    return (-low + Math.sqrt(low * low + 2 * slope * n)) / slope;
  }

  private void issue(Session s, ManagedChannel ch, long key, long intended) {
    s.inflight.incrementAndGet();
    ClientCall<byte[], byte[]> call =
        ch.newCall(
            CHECK, CallOptions.DEFAULT.withDeadlineAfter(s.deadlineNanos, TimeUnit.NANOSECONDS));
    long sent = System.nanoTime();
    call.start(new Listener(s, ch, key, intended, sent), new Metadata());
    call.request(1);
    call.sendMessage(template.forKey(key));
    call.halfClose();
  }

  private final class Listener extends ClientCall.Listener<byte[]> {
    private final Session s;
    private final ManagedChannel ch;
    private final long key;
    private final long intended;
    private final long sent;
    private int code = -1;

    Listener(Session s, ManagedChannel ch, long key, long intended, long sent) {
      this.s = s;
      this.ch = ch;
      this.key = key;
      this.intended = intended;
      this.sent = sent;
    }

    @Override
    public void onMessage(byte[] message) {
      code = CheckTemplate.statusCode(message);
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      long end = System.nanoTime();
      s.completed(key, intended, sent, end, status, code);
      s.inflight.decrementAndGet();
      if (s.closed && !s.stopping) {
        long next = s.keys.next();
        if (next >= 0) {
          issue(s, ch, next, System.nanoTime());
        } else if (s.slots.decrementAndGet() == 0) {
          s.sourceDone = true;
        }
      }
    }
  }

  /** One run: started by {@link #closedLoop} or {@link #openLoop}, measured between two marks. */
  static final class Session {
    final Keys keys;
    final LongToIntFunction expect;
    final boolean closed;
    final long deadlineNanos;
    final AtomicInteger inflight = new AtomicInteger();
    final AtomicInteger slots = new AtomicInteger();

    /** Calls finished, answered or not. */
    final LongAdder completions = new LongAdder();

    /** Calls answered (gRPC OK, whatever the verdict): what throughput counts. */
    final LongAdder answered = new LongAdder();

    final Recorder latency = new Recorder(3);
    final Recorder service = new Recorder(3);
    final Counts counts = new Counts();
    volatile boolean stopping;
    volatile boolean sourceDone;
    volatile boolean overloaded;
    volatile boolean recording;
    volatile long windowStart = Long.MAX_VALUE;
    volatile long windowEnd = Long.MAX_VALUE;
    private long completionsAtStart;
    private long completionsAtEnd;

    Session(Keys keys, LongToIntFunction expect, boolean closed, long deadlineNanos) {
      this.keys = keys;
      this.expect = expect;
      this.closed = closed;
      this.deadlineNanos = deadlineNanos;
    }

    void completed(long key, long intended, long sent, long end, Status status, int code) {
      completions.increment();
      if (status.isOk()) {
        answered.increment();
      }
      boolean inWindow = closed ? recording : intended >= windowStart && intended < windowEnd;
      if (!inWindow) {
        return;
      }
      latency.recordValue(Math.max(1, end - intended));
      service.recordValue(Math.max(1, end - sent));
      counts.count(status, code, expect.applyAsInt(key));
    }

    void markStart() {
      completionsAtStart = answered.sum();
      windowStart = System.nanoTime();
      recording = true;
    }

    void markEnd() {
      recording = false;
      windowEnd = System.nanoTime();
      completionsAtEnd = answered.sum();
    }

    /** Stops sending and waits (bounded by the call deadline) for every answer. */
    void stopAndDrain() {
      stopping = true;
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
      while (inflight.get() > 0 && System.nanoTime() < until) {
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
      }
    }

    /** Waits until the keys ran out (sequential keys) or the time is up. */
    boolean awaitSourceDone(Duration max) {
      long until = System.nanoTime() + max.toNanos();
      while (!sourceDone && System.nanoTime() < until) {
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
      }
      return sourceDone;
    }

    Result result() {
      double seconds = (windowEnd - windowStart) / 1e9;
      Histogram lat = latency.getIntervalHistogram();
      Histogram svc = service.getIntervalHistogram();
      long calls =
          closed
              ? completionsAtEnd - completionsAtStart
              : lat.getTotalCount() - counts.rpcErrors.sum();
      return new Result(calls, seconds, lat, svc, counts, overloaded, inflight.get());
    }
  }

  /** Answers by kind in the measurement window. */
  static final class Counts {
    final LongAdder allowed = new LongAdder();
    final LongAdder forbidden403 = new LongAdder();
    final LongAdder exhausted429 = new LongAdder();
    final LongAdder unauthenticated401 = new LongAdder();
    final LongAdder unavailable503 = new LongAdder();
    final LongAdder otherCode = new LongAdder();

    /** The call itself failed (deadline, connection): Envoy would answer its status_on_error. */
    final LongAdder rpcErrors = new LongAdder();

    /** Answered, but not what the key's kind calls for. */
    final LongAdder wrong = new LongAdder();

    /** Failed calls by gRPC status code. */
    final ConcurrentHashMap<Status.Code, LongAdder> failures = new ConcurrentHashMap<>();

    void count(Status status, int code, int expected) {
      if (!status.isOk()) {
        rpcErrors.increment();
        failures.computeIfAbsent(status.getCode(), c -> new LongAdder()).increment();
        return;
      }
      switch (code) {
        case 0 -> allowed.increment();
        case 7 -> forbidden403.increment();
        case 8 -> exhausted429.increment();
        case 16 -> unauthenticated401.increment();
        case 14 -> unavailable503.increment();
        default -> otherCode.increment();
      }
      if (code != expected && code != 14) {
        wrong.increment();
      }
    }

    long total() {
      return allowed.sum()
          + forbidden403.sum()
          + exhausted429.sum()
          + unauthenticated401.sum()
          + unavailable503.sum()
          + otherCode.sum()
          + rpcErrors.sum();
    }

    String mix() {
      long t = Math.max(1, total());
      return String.format(
          "%.1f%% allow / %.1f%% 429 / %.1f%% 403",
          100.0 * allowed.sum() / t,
          100.0 * exhausted429.sum() / t,
          100.0 * forbidden403.sum() / t);
    }

    /** Anything but the three expected answers, or empty. */
    String anomalies() {
      List<String> out = new ArrayList<>();
      add(out, "401", unauthenticated401.sum());
      add(out, "503", unavailable503.sum());
      add(out, "other code", otherCode.sum());
      if (rpcErrors.sum() > 0) {
        List<String> byCode = new ArrayList<>();
        failures.forEach((c, n) -> byCode.add(c + " " + n.sum()));
        out.add(rpcErrors.sum() + " rpc errors (" + String.join(", ", byCode) + ")");
      }
      add(out, "wrong verdicts", wrong.sum());
      return String.join(", ", out);
    }

    private static void add(List<String> out, String what, long n) {
      if (n > 0) {
        out.add(n + " " + what);
      }
    }
  }

  record Result(
      long calls,
      double seconds,
      Histogram latency,
      Histogram service,
      Counts counts,
      boolean overloaded,
      int leftInFlight) {
    double perSecond() {
      return seconds <= 0 ? 0 : calls / seconds;
    }
  }

  @Override
  public void close() {
    for (ManagedChannel ch : channels) {
      ch.shutdownNow();
    }
    for (ManagedChannel ch : channels) {
      try {
        ch.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    for (EventLoopGroup loop : loops) {
      loop.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
  }

  private static ThreadFactory daemon(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }

  /** Bytes as they are: the requests are serialized once, the responses only peeked at. */
  static final class Bytes implements MethodDescriptor.Marshaller<byte[]> {
    @Override
    public InputStream stream(byte[] value) {
      return new KnownLengthStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  private static final class KnownLengthStream extends ByteArrayInputStream implements KnownLength {
    KnownLengthStream(byte[] buf) {
      super(buf);
    }
  }
}
