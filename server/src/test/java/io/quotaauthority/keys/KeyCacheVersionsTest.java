package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/** What the bulk refresh is told of the cache: ids in order, and which rows to read anyway. */
class KeyCacheVersionsTest {
  private static final Instant T0 = Instant.parse("2026-06-01T12:00:00Z");
  private static final KeyPolicies WINDOWED =
      KeyPolicies.NONE.withWindows(SpendWindows.of(new BigDecimal("20"), null, null, null));

  private static final KeyLookup NO_LOOKUP =
      new KeyLookup() {
        @Override
        public Optional<KeyRecord> findByHash(KeyHash hash) {
          return Optional.empty();
        }

        @Override
        public List<KeyRecord> findByIds(Collection<Long> ids) {
          return List.of();
        }
      };

  private static KeyRecord row(long id, long version, KeyPolicies policies) {
    byte[] hash = new byte[32];
    hash[0] = (byte) id;
    return new KeyRecord(
        id,
        "k" + id,
        KeyHash.of(hash),
        "sk-",
        KeyRecord.StoredStatus.ACTIVE,
        BigDecimal.ZERO,
        BigDecimal.ZERO,
        null,
        T0,
        T0,
        null,
        version,
        BigDecimal.ZERO,
        0,
        0,
        BigDecimal.ZERO,
        KeyRecord.HoldExpiry.CHARGE,
        policies,
        BigDecimal.ZERO,
        0);
  }

  @Test
  void cachedVersions_windowedKeyWithoutHistory_idOrderAndThatKeyReadAnyway() {
    AtomicBoolean historyReadable = new AtomicBoolean(false);
    UsageWindows windows =
        new UsageWindows(
            (id, now, minutes) ->
                historyReadable.get()
                    ? new UsageWindows.Read(BigDecimal.ZERO, new long[0], new long[0])
                    : null,
            Clock.systemUTC());
    KeyCache cache =
        new KeyCache(NO_LOOKUP, Runnable::run, 100, Duration.ofSeconds(5)).trackingUsage(windows);
    cache.apply(row(30, 4, KeyPolicies.NONE));
    cache.apply(row(9, 2, WINDOWED));
    cache.apply(row(12, 7, KeyPolicies.NONE));

    // Key 9's usage history could not be read when it was cached: its window is not tracked.
    assertThat(windows.track(9)).isNull();
    assertThat(cache.cachedVersions())
        .containsExactly(
            new KeyCache.Cached(9, KeyCache.READ_ANYWAY),
            new KeyCache.Cached(12, 7),
            new KeyCache.Cached(30, 4));

    // The refresh reads it back and this time its history is there: from then on, by version.
    historyReadable.set(true);
    cache.heard(row(9, 2, WINDOWED));
    assertThat(windows.track(9)).isNotNull();
    assertThat(cache.cachedVersions())
        .containsExactly(
            new KeyCache.Cached(9, 2), new KeyCache.Cached(12, 7), new KeyCache.Cached(30, 4));
  }
}
