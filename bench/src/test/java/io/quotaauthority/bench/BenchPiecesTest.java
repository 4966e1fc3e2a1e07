package io.quotaauthority.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.quotaauthority.authz.CheckResponses;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.keys.Verdict;
import io.quotaauthority.provider.Provider;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.EnumMap;
import java.util.Map;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/** The bench's pure parts: fast, no server, no database. */
class BenchPiecesTest {
  @Test
  void secretsHaveTheIssuedLengthAndTheTemplateCarriesThem() throws Exception {
    CheckTemplate t = CheckTemplate.envoyChatCompletion();
    for (long i : new long[] {0, 7, 123_456, 999_999}) {
      String secret = BenchKeys.secret(i);
      assertThat(secret).hasSize(46).startsWith("sk-bench-");
      CheckRequest parsed = CheckRequest.parseFrom(t.forKey(i));
      assertThat(parsed.getAttributes().getRequest().getHttp().getHeadersMap().get("authorization"))
          .isEqualTo("Bearer " + secret);
      assertThat(parsed.getAttributes().getContextExtensionsMap())
          .containsEntry("provider", "openai");
      // The hash the bench stores is the one the server computes for the presented secret.
      assertThat(KeyHash.of(BenchKeys.sha256(secret))).isEqualTo(SecretHasher.hash(secret));
    }
  }

  @Test
  void keyMixIsNinetyFiveFive() {
    Map<BenchKeys.Kind, Integer> n = new EnumMap<>(BenchKeys.Kind.class);
    for (long i = 0; i < 10_000; i++) {
      n.merge(BenchKeys.kind(i), 1, Integer::sum);
    }
    assertThat(n.get(BenchKeys.Kind.EXHAUSTED)).isEqualTo(500);
    assertThat(n.get(BenchKeys.Kind.EXPIRED)).isEqualTo(500);
    assertThat(n.get(BenchKeys.Kind.LIMITED) + n.get(BenchKeys.Kind.UNLIMITED)).isEqualTo(9_000);
    Instant now = Instant.now();
    for (long i = 0; i < 1_000; i++) {
      BigDecimal quota = new BigDecimal(BenchKeys.quota(i));
      BigDecimal used = new BigDecimal(BenchKeys.quotaUsed(i));
      assertThat(quota.scale()).isEqualTo(8);
      switch (BenchKeys.kind(i)) {
        case EXHAUSTED -> assertThat(used).isEqualByComparingTo(quota);
        case EXPIRED -> assertThat(BenchKeys.expiresAt(i, now)).isBefore(now);
        case UNLIMITED -> assertThat(quota.signum()).isZero();
        case LIMITED -> assertThat(used).isLessThan(quota);
      }
    }
  }

  @Test
  void statusCodeIsReadOffTheWire() {
    assertThat(
            CheckTemplate.statusCode(
                CheckResponses.allow("42", new BigDecimal("1.5"), false).toByteArray()))
        .isZero();
    assertThat(
            CheckTemplate.statusCode(
                CheckResponses.denial(Provider.OPENAI, Verdict.EXHAUSTED).wire()))
        .isEqualTo(8);
    assertThat(
            CheckTemplate.statusCode(
                CheckResponses.denial(Provider.OPENAI, Verdict.EXPIRED).wire()))
        .isEqualTo(7);
    assertThat(CheckTemplate.statusCode(new byte[0])).isZero();
  }

  @Test
  void openLoopScheduleRampsThenHoldsTheRate() {
    double full = 10_000 / 1e9; // 10,000 calls per second
    double low = full / 10;
    double ramp = 2e9;
    // The ramp averages 5,500/s over 2 s: 11,000 calls, then 10,000 per second.
    assertThat(CheckLoad.offsetOf(0, low, full, ramp)).isZero();
    assertThat(CheckLoad.offsetOf(11_000, low, full, ramp)).isCloseTo(2e9, Offset.offset(1e6));
    assertThat(CheckLoad.offsetOf(21_000, low, full, ramp)).isCloseTo(3e9, Offset.offset(1e6));
    assertThat(CheckLoad.offsetOf(500, 0, full, 0)).isCloseTo(5e7, Offset.offset(1.0));
    double previous = -1;
    for (long n = 0; n < 30_000; n += 100) {
      double t = CheckLoad.offsetOf(n, low, full, ramp);
      assertThat(t).isGreaterThan(previous);
      previous = t;
    }
  }

  @Test
  void proxyClassifiesStatements() {
    assertThat(PgProxy.classify("BEGIN")).isEqualTo("BEGIN");
    assertThat(PgProxy.classify("COMMIT")).isEqualTo("COMMIT");
    assertThat(PgProxy.classify("SELECT id FROM api_keys WHERE key_hash = $1"))
        .isEqualTo("SELECT api_keys");
    assertThat(PgProxy.classify("\nINSERT INTO usage_events (report_id) SELECT 1"))
        .isEqualTo("INSERT usage_events");
    assertThat(PgProxy.classify("SELECT pg_notify($1, change) FROM unnest($2)"))
        .isEqualTo("SELECT pg_notify");
    assertThat(PgProxy.classify("")).startsWith("(empty");
    assertThat(PgProxy.statementCount(Map.of("BEGIN", 2L, "(round trips)", 5L))).isEqualTo(2);
  }

  @Test
  void namesAreShortenedForTables() {
    assertThat(Jfr.threadGroup("grpc-default-worker-ELG-3-2")).isEqualTo("grpc-default-worker-ELG");
    assertThat(Jfr.threadGroup("usage-committer")).isEqualTo("usage-committer");
    assertThat(Jfr.shorten("io.grpc.netty.shaded.io.netty.channel.epoll.Native"))
        .isEqualTo("netty.channel.epoll.Native");
  }

  @Test
  void histogramLinesParse() {
    Map<String, long[]> h =
        CacheMemory.parseHistogram(
            """
         num     #instances         #bytes  class name (module)
        -------------------------------------------------------
           1:       1000000       56000000  io.quotaauthority.keys.KeyState
           2:          1234          98765  [B (java.base@17)
        Total       1001234       56098765
        """);
    assertThat(h.get("io.quotaauthority.keys.KeyState")).containsExactly(1_000_000, 56_000_000);
    assertThat(h.get("[B")).containsExactly(1234, 98765);
    assertThat(h.get("(total)")).containsExactly(1_001_234, 56_098_765);
  }
}
