package io.quotaauthority.usage;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.ProtoTimes;
import io.quotaauthority.proto.v1.ReportUsageRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.proto.v1.UsageServiceGrpc;
import java.time.Clock;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * quota.v1.UsageService over gRPC. Each stream reads with manual flow control: it asks for at most
 * {@link #WINDOW} reports beyond those not yet answered, so a client that sends faster than commits
 * land is held back by HTTP/2 flow control, never buffered without bound.
 *
 * <p>At shutdown {@link #drain} stops every stream from taking reports: each one ends with
 * UNAVAILABLE as soon as the reports it had already taken are committed and answered, so nothing is
 * charged without its answer reaching the client, and shutdown need not wait for reporters to hang
 * up.
 */
public final class UsageService extends UsageServiceGrpc.UsageServiceImplBase {
  private static final Logger log = LoggerFactory.getLogger(UsageService.class);

  /**
   * Reports one stream may have in flight (queued or committing) at once: the memory one caller can
   * hold (at most a few hundred KB), and what lets a few streams fill large groups (with 256, 8
   * streams left groups of ~340 reports and 36% fewer acks a second; README "Usage reports").
   * QUOTA_USAGE_QUEUE_MAX's default takes 97 streams' full windows.
   */
  static final int WINDOW = 512;

  /**
   * Answers after which a stream asks the transport for as many more reports at once: each ask from
   * the committer's thread is a task on the stream's event loop, so asking per answer cost a task
   * per report. The window never shrinks below {@code WINDOW - REQUEST_BATCH + 1}, so a stream with
   * nothing unanswered can always receive.
   */
  static final int REQUEST_BATCH = 32;

  /** How soon a report refused by a full queue is offered again. */
  static final long RETRY_MILLIS = 2;

  private final UsageSink sink;
  private final Clock clock;
  private final Retries retries;
  private final Runnable refusedByValidation;

  /** Settles reports that name a reporter hold; null when holds are off. */
  private final ReporterHolds holds;

  private final Set<Stream> open = ConcurrentHashMap.newKeySet();
  private volatile boolean draining;

  /**
   * @param refusedByValidation told of each report refused before it reached a group (metrics)
   */
  public UsageService(UsageSink sink, Clock clock, Retries retries, Runnable refusedByValidation) {
    this(sink, clock, retries, refusedByValidation, null);
  }

  /**
   * @param holds settles reports naming a reporter hold (hold_id); null when holds are off, and
   *     then such a report is refused
   */
  public UsageService(
      UsageSink sink,
      Clock clock,
      Retries retries,
      Runnable refusedByValidation,
      ReporterHolds holds) {
    this.holds = holds;
    this.sink = sink;
    this.clock = clock;
    this.retries = retries;
    this.refusedByValidation = refusedByValidation;
  }

  @Override
  public StreamObserver<ReportUsageRequest> reportUsage(
      StreamObserver<ReportUsageResponse> responses) {
    ServerCallStreamObserver<ReportUsageResponse> out =
        (ServerCallStreamObserver<ReportUsageResponse>) responses;
    out.disableAutoRequest();
    Stream stream = new Stream(out);
    synchronized (stream) {
      out.request(WINDOW);
      open.add(stream);
    }
    // drain() either finds this stream in `open` or has set `draining` before this reads it.
    if (draining) {
      stream.drain();
    }
    return stream;
  }

  /**
   * Shutdown: no stream takes another report. Reports already taken are still committed and
   * answered; then each stream ends with UNAVAILABLE (the client resends what was not answered).
   */
  public void drain() {
    draining = true;
    for (Stream stream : open) {
      stream.drain();
    }
  }

  private static final Status SHUTTING_DOWN =
      Status.UNAVAILABLE.withDescription("server shutting down; resend unacknowledged reports");

  private final class Stream implements StreamObserver<ReportUsageRequest> {
    private final ServerCallStreamObserver<ReportUsageResponse> out;

    /** Answers not yet sent; the stream completes when the client is done and this reaches 0. */
    private int unanswered;

    /** Reports answered since the stream last asked the transport for more. */
    private int owed;

    private boolean clientDone;
    private boolean closed;

    /** Shutdown began: reports arriving now are not taken (and not answered). */
    private boolean draining;

    /** Reports a full queue refused, offered again shortly (backpressure; see HeldReports). */
    private final HeldReports<Submission> held;

    Stream(ServerCallStreamObserver<ReportUsageResponse> out) {
      this.out = out;
      this.held = new HeldReports<>(retries, RETRY_MILLIS, this::offer, this::isClosed);
    }

    @Override
    public void onNext(ReportUsageRequest req) {
      synchronized (this) {
        if (draining || closed) {
          return;
        }
        unanswered++;
      }
      UsageReport report;
      UsageLedger.HeldBy hold;
      try {
        report =
            UsageValidation.validate(
                req.getReportId(),
                req.getKeyId(),
                req.getCostUsd(),
                req.getModel(),
                "",
                req.getInputTokens(),
                req.getOutputTokens(),
                0,
                0,
                req.hasOccurredAt() ? ProtoTimes.instant("occurred_at", req.getOccurredAt()) : null,
                clock.instant(),
                req.getRequestId());
        hold = hold(req.getHoldId(), report.keyId());
      } catch (IllegalArgumentException e) {
        refusedByValidation.run();
        answer(
            ReportUsageResponse.newBuilder()
                .setReportId(req.getReportId())
                .setResult(UsageResult.USAGE_RESULT_REJECTED)
                .setMessage(e.getMessage())
                .build());
        return;
      }
      held.take(new Submission(report, hold));
    }

    /**
     * Hands the report to the sink; false when a full queue refused it at once (it was not taken).
     */
    private boolean offer(Submission submission) {
      UsageReport report = submission.report();
      CompletableFuture<UsageOutcome> result =
          sink.submit(report, submission.hold()).toCompletableFuture();
      if (result.isCompletedExceptionally() && UsageSink.overloaded(failure(result))) {
        return false;
      }
      result.whenComplete(
          (outcome, error) -> {
            if (UsageSink.overloaded(error)) {
              // Refused later rather than at once (a sink that answers asynchronously).
              held.hold(submission);
              return;
            }
            if (error != null) {
              // Shutting down before it was committed: not acknowledged, so the client may resend
              // it.
              fail(SHUTTING_DOWN);
              return;
            }
            if (submission.hold() != null) {
              // Before the answer: a hold of this instance is free again once its report is.
              holds.settledHere(submission.hold().holdId(), outcome);
            }
            answer(toProto(report.reportId(), outcome));
          });
      return true;
    }

    private void answer(ReportUsageResponse response) {
      // Every call on `out` happens under this lock: answers come from the committer thread while
      // the transport thread delivers requests, and a ServerCall is not thread-safe.
      boolean complete;
      synchronized (this) {
        if (closed) {
          return;
        }
        try {
          out.onNext(response);
        } catch (RuntimeException cancelled) {
          // The client went away; what was committed stays committed.
          markClosed();
          return;
        }
        unanswered--;
        complete = clientDone && unanswered == 0;
        if (complete) {
          markClosed();
          out.onCompleted();
        } else if (draining && unanswered == 0) {
          fail(SHUTTING_DOWN);
        } else if (++owed >= REQUEST_BATCH) {
          // As many answered, as many more may come: the window keeps its size.
          out.request(owed);
          owed = 0;
        }
      }
    }

    /** Every report taken so far is answered first; then the stream ends UNAVAILABLE. */
    synchronized void drain() {
      draining = true;
      if (unanswered == 0) {
        fail(SHUTTING_DOWN);
      }
    }

    /** Caller holds the lock. */
    private void markClosed() {
      closed = true;
      open.remove(this);
    }

    private synchronized void fail(Status status) {
      if (!closed) {
        markClosed();
        try {
          out.onError(status.asRuntimeException());
        } catch (RuntimeException alreadyGone) {
          log.debug("usage stream already closed");
        }
      }
    }

    private synchronized boolean isClosed() {
      return closed || out.isCancelled();
    }

    @Override
    public void onError(Throwable t) {
      // Cancelled or broken by the client: reports already queued still commit (whole groups).
      synchronized (this) {
        markClosed();
      }
    }

    @Override
    public void onCompleted() {
      synchronized (this) {
        clientDone = true;
        if (unanswered == 0 && !closed) {
          markClosed();
          out.onCompleted();
        }
      }
    }
  }

  /** A validated report and the reporter hold it settles, if any. */
  private record Submission(UsageReport report, UsageLedger.HeldBy hold) {}

  /**
   * The hold a report's hold_id settles: null for none.
   *
   * @throws IllegalArgumentException naming hold_id when holds are off here or the id is not one
   *     this cluster issued for the report's key
   */
  private UsageLedger.HeldBy hold(String holdId, long keyId) {
    if (holdId.isEmpty()) {
      return null;
    }
    if (holds == null) {
      throw new IllegalArgumentException(
          "hold_id: holds are off on this instance (QUOTA_HOLDS=false); send the report without it");
    }
    return holds.settlement(holdId, keyId);
  }

  /** The failure of a future known to be completed exceptionally. */
  static Throwable failure(CompletableFuture<?> done) {
    try {
      done.join();
      return null;
    } catch (CompletionException e) {
      return e.getCause();
    } catch (CancellationException e) {
      return e;
    }
  }

  static ReportUsageResponse toProto(String reportId, UsageOutcome outcome) {
    ReportUsageResponse.Builder b =
        ReportUsageResponse.newBuilder().setReportId(reportId).setMessage(outcome.message());
    switch (outcome.result()) {
      case ACCEPTED -> b.setResult(UsageResult.USAGE_RESULT_ACCEPTED);
      case DUPLICATE -> b.setResult(UsageResult.USAGE_RESULT_DUPLICATE);
      case REJECTED -> b.setResult(UsageResult.USAGE_RESULT_REJECTED);
      case CONFLICT -> b.setResult(UsageResult.USAGE_RESULT_CONFLICT);
    }
    if (outcome.quotaUsed() != null) {
      b.setQuotaUsedUsd(Money.format(outcome.quotaUsed()));
    }
    return b.build();
  }
}
