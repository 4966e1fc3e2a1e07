package io.quotaauthority.testing;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The real clock, moved forward by the test (to expire a key or a hold without waiting): time still
 * runs; only an offset is added.
 */
public final class MovableClock extends Clock {
  private final AtomicLong offsetNanos = new AtomicLong();

  public void advance(Duration d) {
    offsetNanos.addAndGet(d.toNanos());
  }

  @Override
  public ZoneId getZone() {
    return ZoneOffset.UTC;
  }

  @Override
  public Clock withZone(ZoneId zone) {
    return this;
  }

  @Override
  public Instant instant() {
    return Instant.now().plusNanos(offsetNanos.get());
  }
}
