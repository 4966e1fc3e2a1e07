package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.quotaauthority.grpc.BearerCredentials.Refusal;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** Refused metering streams: every one counted, at most one WARN per reason per minute. */
class MeteringRefusalsTest {
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final AtomicLong now = new AtomicLong(1_000);
  private final MeteringRefusals refusals = new MeteringRefusals(registry, now::get);
  private final Logger logger = (Logger) LoggerFactory.getLogger(MeteringRefusals.class);
  private final ListAppender<ILoggingEvent> appender = new ListAppender<>();

  @BeforeEach
  void capture() {
    appender.start();
    logger.addAppender(appender);
  }

  @AfterEach
  void release() {
    logger.detachAppender(appender);
  }

  private List<String> warnings() {
    return appender.list.stream()
        .filter(e -> e.getLevel() == Level.WARN)
        .map(ILoggingEvent::getFormattedMessage)
        .toList();
  }

  private double count(Refusal reason) {
    return registry
        .get("quota.metering.streams.refused")
        .tag("reason", reason.tag())
        .counter()
        .count();
  }

  @Test
  void new_registersEveryReasonAtZero() {
    for (Refusal r : Refusal.values()) {
      assertThat(count(r)).as(r.tag()).isZero();
    }
  }

  @Test
  void accept_manyWithinAMinute_countsAllWarnsOncePerReason() {
    for (int i = 0; i < 50; i++) {
      refusals.accept(Refusal.WRONG);
      refusals.accept(Refusal.MISSING);
      now.addAndGet(Duration.ofMillis(100).toNanos());
    }
    assertThat(count(Refusal.WRONG)).isEqualTo(50);
    assertThat(count(Refusal.MISSING)).isEqualTo(50);
    assertThat(count(Refusal.MALFORMED)).isZero();
    assertThat(warnings()).hasSize(2);
    assertThat(warnings().get(0))
        .contains("wrong metering token", "QUOTA_METERING_TOKEN", "UNMETERED");
    assertThat(warnings().get(1)).contains("no authorization header");
  }

  @Test
  void accept_afterAMinute_warnsAgainWithHowManyWereSilenced() {
    refusals.accept(Refusal.WRONG);
    for (int i = 0; i < 7; i++) {
      refusals.accept(Refusal.WRONG);
    }
    now.addAndGet(Duration.ofSeconds(59).toNanos());
    refusals.accept(Refusal.WRONG);
    assertThat(warnings()).hasSize(1);

    now.addAndGet(Duration.ofSeconds(1).toNanos());
    refusals.accept(Refusal.WRONG);

    assertThat(warnings()).hasSize(2);
    assertThat(warnings().get(1))
        .contains("(8 more refused for this reason since the last warning)");
    assertThat(count(Refusal.WRONG)).isEqualTo(10);
  }
}
