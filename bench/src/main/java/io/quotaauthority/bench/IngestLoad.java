package io.quotaauthority.bench;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.quotaauthority.proto.v1.ReportUsageRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.proto.v1.UsageServiceGrpc;
import java.math.BigDecimal;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Usage reporters: {@code streams} ReportUsage streams (spread over up to 8 connections), each
 * sending unique report ids for random keys among the first {@code keys} as fast as the server's
 * flow control lets it, with at most {@link #MAX_OUTSTANDING} reports unanswered. An answer
 * ACCEPTED means committed in PostgreSQL, so ACCEPTED answers per second is the durable ingest
 * rate; the time from send to answer is the ack latency.
 */
final class IngestLoad {
  /** Unanswered reports a stream allows itself; the server's own window (256) binds first. */
  static final int MAX_OUTSTANDING = 512;

  static final int MAX_CHANNELS = 8;
  static final String MODEL = "gpt-4o-mini";

  /** Costs of 1e-8 .. 1e-3 USD as the reporter would send them, made once. */
  static final String[] COSTS = new String[4096];

  static {
    SplittableRandom r = new SplittableRandom(42);
    for (int i = 0; i < COSTS.length; i++) {
      COSTS[i] = BigDecimal.valueOf(1 + r.nextLong(99_999), 8).toPlainString();
    }
  }

  record Result(
      long accepted,
      long duplicates,
      long rejected,
      long errors,
      double seconds,
      Histogram ackLatency,
      long acceptedTotal,
      boolean allDone) {
    double perSecond() {
      return seconds <= 0 ? 0 : accepted / seconds;
    }
  }

  final class Run {
    final List<Stream> list = new ArrayList<>();
    final List<ManagedChannel> channels = new ArrayList<>();
    final LongAdder accepted = new LongAdder();
    final LongAdder acceptedTotal = new LongAdder();
    final LongAdder duplicates = new LongAdder();
    final LongAdder rejected = new LongAdder();
    final LongAdder errors = new LongAdder();
    final Recorder ack = new Recorder(3);
    final CountDownLatch done;
    volatile boolean recording;
    long windowStart;
    long windowEnd;
    long acceptedAtStart;
    long acceptedAtEnd;

    Run(int streams) {
      done = new CountDownLatch(streams);
    }

    void markStart() {
      acceptedAtStart = acceptedTotal.sum();
      windowStart = System.nanoTime();
      recording = true;
    }

    void markEnd() {
      recording = false;
      windowEnd = System.nanoTime();
      acceptedAtEnd = acceptedTotal.sum();
    }

    /** Stops sending, waits for every answer and for the server to close each stream. */
    Result stopAndDrain() throws InterruptedException {
      for (Stream s : list) {
        s.stop();
      }
      boolean all = done.await(60, TimeUnit.SECONDS);
      for (ManagedChannel ch : channels) {
        ch.shutdownNow();
      }
      return new Result(
          acceptedAtEnd - acceptedAtStart,
          duplicates.sum(),
          rejected.sum(),
          errors.sum(),
          (windowEnd - windowStart) / 1e9,
          ack.getIntervalHistogram(),
          acceptedTotal.sum(),
          all);
    }
  }

  private final int port;
  private final String token;
  private final int keys;

  IngestLoad(int port, String token, int keys) {
    this.port = port;
    this.token = token;
    this.keys = keys;
  }

  Run start(int streams, String runId) {
    Run run = new Run(streams);
    int channelCount = Math.min(streams, MAX_CHANNELS);
    List<UsageServiceGrpc.UsageServiceStub> stubs = new ArrayList<>();
    for (int c = 0; c < channelCount; c++) {
      ManagedChannel ch =
          NettyChannelBuilder.forAddress(
                  new InetSocketAddress(InetAddress.getLoopbackAddress(), port))
              .usePlaintext()
              .directExecutor()
              .build();
      run.channels.add(ch);
      stubs.add(UsageServiceGrpc.newStub(ch).withInterceptors(BenchRun.bearer(token)));
    }
    for (int s = 0; s < streams; s++) {
      Stream stream =
          new Stream(
              run, runId + "-" + s + "-", new SplittableRandom(s * 7919L + runId.hashCode()));
      run.list.add(stream);
      stubs.get(s % channelCount).reportUsage(stream);
    }
    return run;
  }

  /** One stream; every use of the request side is under this object's lock. */
  private final class Stream
      implements ClientResponseObserver<ReportUsageRequest, ReportUsageResponse> {
    private final Run run;
    private final String idPrefix;
    private final SplittableRandom random;
    private final long[] sentAt = new long[MAX_OUTSTANDING * 16];
    private ClientCallStreamObserver<ReportUsageRequest> requests;
    private long seq;
    private int outstanding;
    private boolean stopping;
    private boolean halfClosed;

    Stream(Run run, String idPrefix, SplittableRandom random) {
      this.run = run;
      this.idPrefix = idPrefix;
      this.random = random;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<ReportUsageRequest> requests) {
      this.requests = requests;
      requests.setOnReadyHandler(this::pump);
    }

    private synchronized void pump() {
      while (!stopping && outstanding < MAX_OUTSTANDING && requests.isReady()) {
        long n = seq++;
        sentAt[(int) (n % sentAt.length)] = System.nanoTime();
        requests.onNext(
            ReportUsageRequest.newBuilder()
                .setReportId(idPrefix + n)
                .setKeyId(Long.toString(BenchKeys.id(random.nextInt(keys))))
                .setCostUsd(COSTS[random.nextInt(COSTS.length)])
                .setModel(MODEL)
                .setInputTokens(100 + random.nextInt(4000))
                .setOutputTokens(10 + random.nextInt(1000))
                .build());
        outstanding++;
      }
      finishIfDone();
    }

    private void finishIfDone() {
      if (stopping && outstanding == 0 && !halfClosed) {
        halfClosed = true;
        requests.onCompleted();
      }
    }

    synchronized void stop() {
      stopping = true;
      finishIfDone();
    }

    @Override
    public void onNext(ReportUsageResponse r) {
      long now = System.nanoTime();
      if (r.getResult() == UsageResult.USAGE_RESULT_ACCEPTED) {
        run.acceptedTotal.increment();
      } else if (r.getResult() == UsageResult.USAGE_RESULT_DUPLICATE) {
        run.duplicates.increment();
      } else {
        run.rejected.increment();
      }
      String id = r.getReportId();
      long n = Long.parseLong(id, idPrefix.length(), id.length(), 10);
      if (run.recording) {
        run.ack.recordValue(Math.max(1, now - sentAt[(int) (n % sentAt.length)]));
      }
      synchronized (this) {
        outstanding--;
      }
      pump();
    }

    @Override
    public void onError(Throwable t) {
      run.errors.increment();
      System.err.println("usage stream failed: " + t);
      run.done.countDown();
    }

    @Override
    public void onCompleted() {
      run.done.countDown();
    }
  }
}
