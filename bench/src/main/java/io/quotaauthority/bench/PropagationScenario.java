package io.quotaauthority.bench;

import com.google.protobuf.FieldMask;
import com.google.protobuf.Timestamp;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.ClearExpirationRequest;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ReportUsageRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.proto.v1.UsageServiceGrpc;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Scenario 10 (issues 17 and 19): how long a change made through instance A, an admin call or a
 * committed charge, takes to reach Check on instance B, the figure the multi-instance tests prove
 * arrives but do not time. Two servers on the bench database, B holding the bench's keys; B's bulk
 * refresh is set to an hour, so within the run a change reaches it only by its notification. Each
 * sample runs from the return of A's call (the report's acknowledgement, for a charge) to B's first
 * Check that answers as the change demands, B asked every half millisecond. A change not seen
 * within {@link #LOST_AFTER} is counted lost. The target: p99 at most 100 ms for every kind, none
 * lost.
 */
final class PropagationScenario {
  static final int ROUNDS = 100;
  static final int SMOKE_ROUNDS = 10;
  static final int WARMUP_ROUNDS = 5;
  static final Duration LOST_AFTER = Duration.ofSeconds(10);

  /** Envoy's gRPC codes as Check answers them. */
  private static final int OK = 0;

  private static final int PERMISSION_DENIED = 7;
  private static final int RESOURCE_EXHAUSTED = 8;
  private static final int UNAUTHENTICATED = 16;

  /** One kind of change: the milliseconds each sample took, sorted, and how many were lost. */
  record Kind(String change, double[] millis, int lost) {
    double p50() {
      return quantile(0.50);
    }

    double p99() {
      return quantile(0.99);
    }

    double max() {
      return millis.length == 0 ? Double.NaN : millis[millis.length - 1];
    }

    private double quantile(double q) {
      if (millis.length == 0) {
        return Double.NaN;
      }
      // Nearest rank: with 100 samples the 99th percentile is the second-worst.
      return millis[Math.max(0, (int) Math.ceil(q * millis.length) - 1)];
    }
  }

  /**
   * Every kind's samples, in the order a round makes them.
   *
   * @param keys the bench keys in the database, all cached on B
   * @param refresh B's QUOTA_REFRESH_INTERVAL
   */
  record Result(int rounds, int keys, String refresh, List<Kind> kinds) {
    double worstP99() {
      return kinds.stream().mapToDouble(Kind::p99).max().orElse(Double.NaN);
    }

    int lost() {
      return kinds.stream().mapToInt(Kind::lost).sum();
    }
  }

  private final BenchRun run;
  private final Map<String, List<Double>> samples = new LinkedHashMap<>();
  private final Map<String, Integer> lost = new LinkedHashMap<>();
  private boolean recording;
  private AuthorizationGrpc.AuthorizationBlockingStub checkOnB;
  private KeyAdminServiceGrpc.KeyAdminServiceBlockingStub adminStub;
  private StreamObserver<ReportUsageRequest> reports;
  private final BlockingQueue<ReportUsageResponse> acks = new ArrayBlockingQueue<>(16);
  private long reportSeq;

  PropagationScenario(BenchRun run) {
    this.run = run;
  }

  Result run() throws Exception {
    int rounds = run.o.smoke ? SMOKE_ROUNDS : ROUNDS;
    int authzA = ChildJvm.freePort();
    int authzB = ChildJvm.freePort();
    Map<String, String> envA = run.serverEnv(authzA, run.o.pg, "propagation-a");
    Map<String, String> envB = run.serverEnv(authzB, run.o.pg, "propagation-b");
    // Only the notification can carry a change to B within the run (--server-env may say
    // otherwise, e.g. to measure notifications under the default refresh of every cached key).
    envB.put("QUOTA_REFRESH_INTERVAL", "1h");
    envA.putAll(run.o.serverEnv);
    envB.putAll(run.o.serverEnv);
    // A first: it migrates the schema if the run has not.
    ChildJvm a = run.launchServer("server-propagation-a", envA);
    run.awaitServer(a, authzA);
    // B holds the bench's keys (a million in the full run), cached at its start as any instance's.
    run.loadKeys(run.scale.totalKeys());
    ChildJvm b = run.launchServer("server-propagation-b", envB);
    run.awaitServer(b, authzB);
    // Its cache filled before the first change is timed.
    run.awaitServing(b, authzB);
    ManagedChannel adminA = channel(Integer.parseInt(envA.get("QUOTA_ADMIN_PORT")));
    ManagedChannel usageA = channel(authzA);
    ManagedChannel checkB = channel(authzB);
    try {
      adminStub =
          KeyAdminServiceGrpc.newBlockingStub(adminA)
              .withInterceptors(BenchRun.bearer(run.adminToken));
      checkOnB = AuthorizationGrpc.newBlockingStub(checkB);
      reports =
          UsageServiceGrpc.newStub(usageA)
              .withInterceptors(BenchRun.bearer(run.reporterToken))
              .reportUsage(
                  new StreamObserver<>() {
                    @Override
                    public void onNext(ReportUsageResponse r) {
                      acks.add(r);
                    }

                    @Override
                    public void onError(Throwable t) {
                      run.log("propagation: usage stream failed: " + t);
                    }

                    @Override
                    public void onCompleted() {}
                  });
      for (int i = 0; i < WARMUP_ROUNDS + rounds; i++) {
        // The first rounds load classes and compile the paths on both servers: not counted.
        recording = i >= WARMUP_ROUNDS;
        round(i);
      }
      reports.onCompleted();
    } finally {
      for (ManagedChannel ch : List.of(adminA, usageA, checkB)) {
        ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      b.close();
      a.close();
    }
    List<Kind> kinds = new ArrayList<>();
    samples.forEach(
        (change, list) -> {
          double[] m = list.stream().mapToDouble(Double::doubleValue).toArray();
          Arrays.sort(m);
          kinds.add(new Kind(change, m, lost.getOrDefault(change, 0)));
        });
    Result r = new Result(rounds, run.keysLoaded(), envB.get("QUOTA_REFRESH_INTERVAL"), kinds);
    for (Kind k : kinds) {
      run.log(
          String.format(
              java.util.Locale.ROOT,
              "propagation %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, lost %d",
              k.change(),
              k.p50(),
              k.p99(),
              k.max(),
              k.lost()));
    }
    return r;
  }

  /**
   * One round: key X lives through a charge, a reset, a policy and a disable; key Y, created with
   * an expiry a moment away, through ClearExpiration and DeleteKey.
   */
  private void round(int i) throws InterruptedException {
    CreateKeyResponse x =
        admin()
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName("propagation-" + i)
                    .setQuotaUsd("0.01")
                    .build());
    String id = x.getKey().getId();
    String secret = x.getSecret();
    sample("CreateKey", secret, OK, () -> {});
    sample("usage committed (429)", secret, RESOURCE_EXHAUSTED, () -> charge(id));
    sample(
        "ResetQuota",
        secret,
        OK,
        () -> admin().resetQuota(ResetQuotaRequest.newBuilder().setId(id).build()));
    sample(
        "UpdateKey ip_allow (a policy)",
        secret,
        PERMISSION_DENIED,
        () ->
            admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(ApiKey.newBuilder().setId(id).addIpAllow("198.51.100.0/24"))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("ip_allow"))
                        .build()));
    sample(
        "UpdateKey status disabled",
        secret,
        UNAUTHENTICATED,
        () ->
            admin()
                .updateKey(
                    UpdateKeyRequest.newBuilder()
                        .setKey(
                            ApiKey.newBuilder().setId(id).setStatus(KeyStatus.KEY_STATUS_DISABLED))
                        .setUpdateMask(FieldMask.newBuilder().addPaths("status"))
                        .build()));

    CreateKeyResponse y = expiringKey("propagation-expiring-" + i);
    String yId = y.getKey().getId();
    // Not samples: B hears of Y, then its own clock expires it.
    await(y.getSecret(), code -> code != UNAUTHENTICATED);
    await(y.getSecret(), code -> code == PERMISSION_DENIED);
    sample(
        "ClearExpiration",
        y.getSecret(),
        OK,
        () -> admin().clearExpiration(ClearExpirationRequest.newBuilder().setId(yId).build()));
    sample(
        "DeleteKey",
        y.getSecret(),
        UNAUTHENTICATED,
        () -> admin().deleteKey(DeleteKeyRequest.newBuilder().setId(yId).build()));
  }

  /**
   * A key that expires a moment from now: 300 ms, or twice that each time the call arrived after
   * the moment had passed (a stalled machine), which A refuses as INVALID_ARGUMENT.
   */
  private CreateKeyResponse expiringKey(String name) {
    for (long margin = 300; ; margin *= 2) {
      Instant expires = Instant.now().plusMillis(margin);
      try {
        return admin()
            .createKey(
                CreateKeyRequest.newBuilder()
                    .setName(name)
                    .setExpiresAt(
                        Timestamp.newBuilder()
                            .setSeconds(expires.getEpochSecond())
                            .setNanos(expires.getNano()))
                    .build());
      } catch (StatusRuntimeException e) {
        if (e.getStatus().getCode() != io.grpc.Status.Code.INVALID_ARGUMENT || margin >= 10_000) {
          throw e;
        }
      }
    }
  }

  /** A's admin API, each call with a deadline of its own (a stub's deadline is absolute). */
  private KeyAdminServiceGrpc.KeyAdminServiceBlockingStub admin() {
    return adminStub.withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  /** Charges the key's whole quota through A and waits for the acknowledgement. */
  private void charge(String keyId) {
    String reportId = "propagation-" + ProcessHandle.current().pid() + "-" + reportSeq++;
    reports.onNext(
        ReportUsageRequest.newBuilder()
            .setReportId(reportId)
            .setKeyId(keyId)
            .setCostUsd("0.01")
            .setModel("gpt-4o-mini")
            .build());
    try {
      ReportUsageResponse ack = acks.poll(LOST_AFTER.toSeconds(), TimeUnit.SECONDS);
      if (ack == null || ack.getResult() != UsageResult.USAGE_RESULT_ACCEPTED) {
        throw new IllegalStateException("propagation: report " + reportId + " answered " + ack);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Makes the change on A, then times B until it answers {@code expected} for the key. */
  private void sample(String change, String secret, int expected, Runnable onA)
      throws InterruptedException {
    onA.run();
    long start = System.nanoTime();
    boolean seen = await(secret, code -> code == expected);
    if (!recording) {
      return;
    }
    // A kind's row exists even when every one of its changes was lost.
    List<Double> kind = samples.computeIfAbsent(change, c -> new ArrayList<>());
    if (seen) {
      kind.add((System.nanoTime() - start) / 1e6);
    } else {
      lost.merge(change, 1, Integer::sum);
    }
  }

  /** Asks B every half millisecond until its answer passes; false after {@link #LOST_AFTER}. */
  private boolean await(String secret, java.util.function.IntPredicate done)
      throws InterruptedException {
    CheckRequest request = CheckTemplate.envoyRequest(secret);
    long deadline = System.nanoTime() + LOST_AFTER.toNanos();
    while (System.nanoTime() < deadline) {
      if (done.test(checkCode(request))) {
        return true;
      }
      LockSupport.parkNanos(500_000);
      if (Thread.interrupted()) {
        throw new InterruptedException();
      }
    }
    return false;
  }

  private int checkCode(CheckRequest request) {
    try {
      return checkOnB.withDeadlineAfter(5, TimeUnit.SECONDS).check(request).getStatus().getCode();
    } catch (StatusRuntimeException e) {
      // A transport failure is no answer about the key: asked again.
      return -1;
    }
  }

  private static ManagedChannel channel(int port) {
    return ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
  }
}
