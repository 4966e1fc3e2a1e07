package io.quotaauthority.testing;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.quotaauthority.proto.v1.ReportUsageRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageServiceGrpc;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** One ReportUsage stream from a test: send reports, then wait for every answer. */
public final class UsageStream {
  private final List<ReportUsageResponse> responses = new CopyOnWriteArrayList<>();
  private final CountDownLatch done = new CountDownLatch(1);
  private volatile Status status;
  private final StreamObserver<ReportUsageRequest> requests;

  private UsageStream(ManagedChannel channel, String token) {
    UsageServiceGrpc.UsageServiceStub stub = UsageServiceGrpc.newStub(channel);
    if (token != null) {
      stub = stub.withInterceptors(TestServer.bearer(token));
    }
    requests =
        stub.reportUsage(
            new StreamObserver<>() {
              @Override
              public void onNext(ReportUsageResponse r) {
                responses.add(r);
              }

              @Override
              public void onError(Throwable t) {
                status = Status.fromThrowable(t);
                done.countDown();
              }

              @Override
              public void onCompleted() {
                status = Status.OK;
                done.countDown();
              }
            });
  }

  public static UsageStream open(ManagedChannel channel, String token) {
    return new UsageStream(channel, token);
  }

  public static ReportUsageRequest report(String reportId, String keyId, String cost) {
    return ReportUsageRequest.newBuilder()
        .setReportId(reportId)
        .setKeyId(keyId)
        .setCostUsd(cost)
        .setModel("gpt-4o-mini")
        .setInputTokens(12)
        .setOutputTokens(34)
        .build();
  }

  public UsageStream send(ReportUsageRequest r) {
    synchronized (requests) {
      requests.onNext(r);
    }
    return this;
  }

  /** Half-closes and waits for the server to answer everything and close. */
  public UsageStream finish() throws InterruptedException {
    synchronized (requests) {
      requests.onCompleted();
    }
    if (!done.await(60, TimeUnit.SECONDS)) {
      throw new AssertionError("usage stream did not finish");
    }
    return this;
  }

  /** Waits until {@code n} answers arrived (without closing). */
  public UsageStream awaitAnswers(int n) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (responses.size() < n && System.nanoTime() < deadline && done.getCount() > 0) {
      Thread.sleep(2);
    }
    return this;
  }

  public void cancel() {
    synchronized (requests) {
      requests.onError(Status.CANCELLED.withDescription("test disconnects").asRuntimeException());
    }
  }

  public List<ReportUsageResponse> responses() {
    return responses;
  }

  public Status status() throws InterruptedException {
    done.await(30, TimeUnit.SECONDS);
    return status;
  }
}
