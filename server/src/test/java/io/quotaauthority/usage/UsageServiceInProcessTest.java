package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Timestamp;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import io.quotaauthority.proto.v1.ReportUsageRequest;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.proto.v1.UsageServiceGrpc;
import java.io.IOException;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The ReportUsage stream over grpc-java's in-process transport with a sink in memory: what the
 * service itself decides (validation, translation, backpressure, flow control, drain, completion),
 * without a database or a socket.
 */
class UsageServiceInProcessTest {
  private static final Instant NOW = Instant.parse("2026-12-01T12:00:00Z");
  private static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);

  /**
   * A sink that refuses the first {@code overloadFirst} submits as a full queue would, then hands
   * each report it takes to {@code answer} (by default: a future the test completes itself).
   */
  static final class FakeSink implements UsageSink {
    final List<UsageReport> received = new CopyOnWriteArrayList<>();
    final List<CompletableFuture<UsageOutcome>> open = new CopyOnWriteArrayList<>();
    final AtomicInteger submits = new AtomicInteger();
    volatile int overloadFirst;
    volatile Function<UsageReport, CompletableFuture<UsageOutcome>> answer =
        r -> {
          CompletableFuture<UsageOutcome> f = new CompletableFuture<>();
          open.add(f);
          return f;
        };

    @Override
    public CompletionStage<UsageOutcome> submit(UsageReport report) {
      if (submits.incrementAndGet() <= overloadFirst) {
        return CompletableFuture.failedFuture(new Overloaded());
      }
      received.add(report);
      return answer.apply(report);
    }

    List<String> receivedIds() {
      return received.stream().map(UsageReport::reportId).toList();
    }
  }

  /** The client's side of one stream: the answers, and how it ended. */
  static final class Client implements StreamObserver<ReportUsageResponse> {
    final List<ReportUsageResponse> responses = new CopyOnWriteArrayList<>();
    final CompletableFuture<Status> ended = new CompletableFuture<>();
    StreamObserver<ReportUsageRequest> requests;

    @Override
    public void onNext(ReportUsageResponse r) {
      responses.add(r);
    }

    @Override
    public void onError(Throwable t) {
      ended.complete(Status.fromThrowable(t));
    }

    @Override
    public void onCompleted() {
      ended.complete(Status.OK);
    }

    Status status() throws Exception {
      return ended.get(5, TimeUnit.SECONDS);
    }

    List<String> ids() {
      return responses.stream().map(ReportUsageResponse::getReportId).toList();
    }
  }

  private final FakeSink sink = new FakeSink();
  private final AtomicInteger refusedByValidation = new AtomicInteger();
  private final Retries retries = new Retries("test-usage-retries");
  private UsageService service;
  private Server server;
  private ManagedChannel channel;

  private void start() throws IOException {
    service = new UsageService(sink, CLOCK, retries, refusedByValidation::incrementAndGet);
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).addService(service).build().start();
    channel = InProcessChannelBuilder.forName(name).build();
  }

  private Client open() {
    Client c = new Client();
    c.requests = UsageServiceGrpc.newStub(channel).reportUsage(c);
    return c;
  }

  @AfterEach
  void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (server != null) {
      server.shutdownNow();
    }
    retries.close();
  }

  static ReportUsageRequest request(String id) {
    return ReportUsageRequest.newBuilder()
        .setReportId(id)
        .setKeyId("1")
        .setCostUsd("0.25")
        .setModel("gpt-4o")
        .setInputTokens(10)
        .setOutputTokens(20)
        .build();
  }

  private static UsageOutcome accepted(String used) {
    return new UsageOutcome(UsageOutcome.Result.ACCEPTED, "", new BigDecimal(used));
  }

  private static void poll(BooleanSupplier condition) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (!condition.getAsBoolean() && System.nanoTime() < until) {
      Thread.sleep(1);
    }
    assertThat(condition.getAsBoolean()).as("condition reached within 5 s").isTrue();
  }

  /** A short wait for something that must not happen (an answer, an end, one more report). */
  private static void quietly() throws InterruptedException {
    Thread.sleep(50);
  }

  static Stream<Arguments> invalid() {
    Timestamp twoDaysAhead =
        Timestamp.newBuilder().setSeconds(NOW.plusSeconds(2 * 86_400).getEpochSecond()).build();
    return Stream.of(
        Arguments.of(
            "empty report_id",
            (UnaryOperator<ReportUsageRequest.Builder>) b -> b.setReportId(""),
            "report_id must not be empty"),
        Arguments.of(
            "nine fraction digits",
            (UnaryOperator<ReportUsageRequest.Builder>) b -> b.setCostUsd("1.123456789"),
            "cost_usd must be a decimal USD amount"),
        Arguments.of(
            "empty cost",
            (UnaryOperator<ReportUsageRequest.Builder>) b -> b.setCostUsd(""),
            "cost_usd must not be empty"),
        Arguments.of(
            "negative cost",
            (UnaryOperator<ReportUsageRequest.Builder>) b -> b.setCostUsd("-1"),
            "cost_usd must be a decimal USD amount"),
        Arguments.of(
            "negative input",
            (UnaryOperator<ReportUsageRequest.Builder>) b -> b.setInputTokens(-1),
            "input_tokens must not be negative"),
        Arguments.of(
            "negative output",
            (UnaryOperator<ReportUsageRequest.Builder>) b -> b.setOutputTokens(-5),
            "output_tokens must not be negative"),
        Arguments.of(
            "key_id not a number",
            (UnaryOperator<ReportUsageRequest.Builder>) b -> b.setKeyId("abc"),
            "key_id "),
        Arguments.of(
            "occurred_at two days ahead",
            (UnaryOperator<ReportUsageRequest.Builder>) b -> b.setOccurredAt(twoDaysAhead),
            "occurred_at must not be more than a day in the future"),
        Arguments.of(
            "newline in model",
            (UnaryOperator<ReportUsageRequest.Builder>) b -> b.setModel("gpt\n4o"),
            "model must be printable text"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("invalid")
  void reportUsage_invalidReport_rejectedNamingTheFieldAndNeverSubmitted(
      String row, UnaryOperator<ReportUsageRequest.Builder> breakIt, String message)
      throws Exception {
    sink.answer = r -> CompletableFuture.completedFuture(accepted("1.25"));
    start();
    Client c = open();

    c.requests.onNext(breakIt.apply(request("bad").toBuilder()).build());
    // The stream goes on after a refusal: the next report is charged as usual.
    c.requests.onNext(request("good"));
    c.requests.onCompleted();

    assertThat(c.status().getCode()).isEqualTo(Status.Code.OK);
    assertThat(c.responses).hasSize(2);
    ReportUsageResponse refused = c.responses.get(0);
    assertThat(refused.getResult()).isEqualTo(UsageResult.USAGE_RESULT_REJECTED);
    assertThat(refused.getMessage()).startsWith(message);
    assertThat(refused.getQuotaUsedUsd()).isEmpty();
    assertThat(refused.getReportId())
        .isEqualTo(breakIt.apply(request("bad").toBuilder()).getReportId());
    assertThat(c.responses.get(1).getResult()).isEqualTo(UsageResult.USAGE_RESULT_ACCEPTED);
    assertThat(sink.receivedIds()).containsExactly("good");
    assertThat(refusedByValidation).hasValue(1);
  }

  static Stream<Arguments> outcomes() {
    return Stream.of(
        Arguments.of(accepted("12.50000000"), UsageResult.USAGE_RESULT_ACCEPTED, "", "12.5"),
        Arguments.of(accepted("0E-8"), UsageResult.USAGE_RESULT_ACCEPTED, "", "0"),
        Arguments.of(accepted("0.00000001"), UsageResult.USAGE_RESULT_ACCEPTED, "", "0.00000001"),
        Arguments.of(
            new UsageOutcome(UsageOutcome.Result.DUPLICATE, "", new BigDecimal("3.00000000")),
            UsageResult.USAGE_RESULT_DUPLICATE,
            "",
            "3"),
        Arguments.of(
            UsageOutcome.conflict("report_id already charged with a different cost_usd"),
            UsageResult.USAGE_RESULT_CONFLICT,
            "report_id already charged with a different cost_usd",
            ""),
        Arguments.of(
            UsageOutcome.rejected("key_id: no key with id 1"),
            UsageResult.USAGE_RESULT_REJECTED,
            "key_id: no key with id 1",
            ""),
        Arguments.of(
            UsageOutcome.rejectedInternal("internal error; not charged, retry the report"),
            UsageResult.USAGE_RESULT_REJECTED,
            "internal error; not charged, retry the report",
            ""));
  }

  @ParameterizedTest(name = "{0} -> {1}")
  @MethodSource("outcomes")
  void reportUsage_sinkOutcome_translatedWithQuotaUsedFormatted(
      UsageOutcome outcome, UsageResult result, String message, String used) throws Exception {
    sink.answer = r -> CompletableFuture.completedFuture(outcome);
    start();
    Client c = open();

    c.requests.onNext(request("r-1"));
    c.requests.onCompleted();

    assertThat(c.status().getCode()).isEqualTo(Status.Code.OK);
    assertThat(c.responses).hasSize(1);
    ReportUsageResponse r = c.responses.get(0);
    assertThat(r.getReportId()).isEqualTo("r-1");
    assertThat(r.getResult()).isEqualTo(result);
    assertThat(r.getMessage()).isEqualTo(message);
    assertThat(r.getQuotaUsedUsd()).isEqualTo(used);
    // What the sink saw is the parsed report, exact.
    UsageReport seen = sink.received.get(0);
    assertThat(seen.keyId()).isEqualTo(1);
    assertThat(seen.cost()).isEqualByComparingTo("0.25");
    assertThat(seen.occurredAt()).isEqualTo(NOW);
    assertThat(refusedByValidation).hasValue(0);
  }

  @Test
  void reportUsage_sinkOverloadedForThreeSubmits_everyReportAnsweredOnceInOrder() throws Exception {
    sink.overloadFirst = 3;
    Map<String, String> totals = Map.of("r-1", "1", "r-2", "2", "r-3", "3", "r-4", "4", "r-5", "5");
    sink.answer = r -> CompletableFuture.completedFuture(accepted(totals.get(r.reportId())));
    start();
    Client c = open();

    for (int i = 1; i <= 5; i++) {
      c.requests.onNext(request("r-" + i));
    }
    poll(() -> c.responses.size() == 5);
    c.requests.onCompleted();

    assertThat(c.status().getCode()).isEqualTo(Status.Code.OK);
    assertThat(c.ids()).containsExactly("r-1", "r-2", "r-3", "r-4", "r-5");
    assertThat(c.responses)
        .extracting(ReportUsageResponse::getQuotaUsedUsd)
        .containsExactly("1", "2", "3", "4", "5");
    // Held and offered again in arrival order; each taken once after three refusals.
    assertThat(sink.receivedIds()).containsExactly("r-1", "r-2", "r-3", "r-4", "r-5");
    assertThat(sink.submits).hasValue(8);
  }

  @Test
  void reportUsage_sinkNeverAnswers_serverTakesAtMostTheWindow() throws Exception {
    start();
    Client c = open();

    for (int i = 0; i < 600; i++) {
      c.requests.onNext(request("r-" + i));
    }
    poll(() -> sink.received.size() == UsageService.WINDOW);
    quietly();

    assertThat(UsageService.WINDOW).isEqualTo(512);
    assertThat(sink.received).hasSize(512);
    assertThat(sink.receivedIds().get(511)).isEqualTo("r-511");
    assertThat(c.responses).isEmpty();

    // Fewer answers than a batch: answered, but no more taken yet (the window shrinks by them).
    assertThat(UsageService.REQUEST_BATCH).isEqualTo(32);
    for (int i = 0; i < 31; i++) {
      sink.open.get(i).complete(accepted("0.25"));
    }
    poll(() -> c.responses.size() == 31);
    quietly();
    assertThat(sink.received).hasSize(512);

    // The 32nd answer: as many more taken at once, the window back to its size.
    sink.open.get(31).complete(accepted("0.25"));
    poll(() -> sink.received.size() == 544);
    quietly();
    assertThat(sink.received).hasSize(544);
    assertThat(sink.receivedIds().get(543)).isEqualTo("r-543");
    assertThat(c.ids()).hasSize(32).startsWith("r-0", "r-1").endsWith("r-31");
    assertThat(c.ended).isNotDone();
  }

  @Test
  void drain_reportsInFlight_streamEndsUnavailableOnlyAfterTheyAreAnswered() throws Exception {
    start();
    Client c = open();
    for (int i = 1; i <= 3; i++) {
      c.requests.onNext(request("r-" + i));
    }
    poll(() -> sink.received.size() == 3);

    service.drain();
    // Sent after the drain: not taken, never answered (the client resends it elsewhere).
    c.requests.onNext(request("late"));
    quietly();
    assertThat(c.ended).isNotDone();
    assertThat(c.responses).isEmpty();

    sink.open.get(0).complete(accepted("1"));
    sink.open.get(1).complete(accepted("2"));
    quietly();
    assertThat(c.ended).isNotDone();
    sink.open.get(2).complete(accepted("3"));

    Status status = c.status();
    assertThat(status.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(status.getDescription())
        .isEqualTo("server shutting down; resend unacknowledged reports");
    assertThat(c.ids()).containsExactly("r-1", "r-2", "r-3");
    assertThat(sink.receivedIds()).containsExactly("r-1", "r-2", "r-3");
  }

  @Test
  void drain_nothingInFlight_openAndNewStreamsEndUnavailableAtOnce() throws Exception {
    start();
    Client idle = open();
    // The server has taken the stream once it answers a report on it.
    sink.answer = r -> CompletableFuture.completedFuture(accepted("1"));
    idle.requests.onNext(request("r-1"));
    poll(() -> idle.responses.size() == 1);

    service.drain();
    Client late = open();

    assertThat(idle.status().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(late.status().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(late.responses).isEmpty();
  }

  @Test
  void reportUsage_clientHalfClosesWithNothingInFlight_completedOk() throws Exception {
    start();
    Client c = open();

    c.requests.onCompleted();

    assertThat(c.status().getCode()).isEqualTo(Status.Code.OK);
    assertThat(c.responses).isEmpty();
    assertThat(sink.submits).hasValue(0);
  }

  @Test
  void reportUsage_clientHalfClosesWithOneInFlight_completedOkAfterItsAnswer() throws Exception {
    start();
    Client c = open();
    c.requests.onNext(request("r-1"));
    poll(() -> sink.received.size() == 1);

    c.requests.onCompleted();
    quietly();
    assertThat(c.ended).isNotDone();
    sink.open.get(0).complete(accepted("0.25"));

    assertThat(c.status().getCode()).isEqualTo(Status.Code.OK);
    assertThat(c.ids()).containsExactly("r-1");
  }

  @Test
  void reportUsage_sinkShuttingDown_streamEndsUnavailableWithoutAnswer() throws Exception {
    sink.answer =
        r -> CompletableFuture.failedFuture(new UsageSink.ShuttingDown("shut down before commit"));
    start();
    Client c = open();

    c.requests.onNext(request("r-1"));

    Status status = c.status();
    assertThat(status.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(status.getDescription())
        .isEqualTo("server shutting down; resend unacknowledged reports");
    assertThat(c.responses).isEmpty();
  }
}
