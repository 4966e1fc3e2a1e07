package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.quotaauthority.config.Setting;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.keys.Secrets;
import io.quotaauthority.ops.Metrics;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.ReportUsageResponse;
import io.quotaauthority.proto.v1.UsageResult;
import io.quotaauthority.testing.EnvoyChecks;
import io.quotaauthority.testing.TcpProxy;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A flood of random keys at full speed while a real key, created behind the server's back (in the
 * database, announced by a bare-id notification), is checked every 100 ms and usage is reported.
 * The server reaches PostgreSQL through a {@link TcpProxy} that counts every statement.
 */
class UnknownKeyFloodIT {
  /** Long enough for thousands of random keys and dozens of real-key Checks and usage commits. */
  static final long FLOOD_MILLIS = 6_500;

  static final int FLOOD_THREADS = 2;
  static final long WARM_UP_MILLIS = 1_500;
  private TestDatabase db;
  private TcpProxy proxy;
  private TestServer server;

  @BeforeEach
  void start() throws Exception {
    db = TestDatabase.create();
    proxy = TcpProxy.toPostgres();
    server =
        TestServer.start(db, Map.of(Setting.DB_URL, proxy.jdbcUrl(db.name())), Clock.systemUTC());
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!server.app().cache().completeness().complete()) {
      assertThat(System.nanoTime()).as("the live-key set loads").isLessThan(deadline);
      Thread.sleep(10);
    }
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    proxy.close();
    db.close();
  }

  private CheckResponse check(String secret) {
    return AuthorizationGrpc.newBlockingStub(server.authzChannel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build());
  }

  /**
   * Inserts a key as another instance would, and announces it with the shortest payload: its id.
   */
  private long insertBehindTheServersBack(String secret) {
    return db.transactions()
        .inTransaction(
            c -> {
              long id;
              try (PreparedStatement ps =
                  c.prepareStatement(
                      "INSERT INTO api_keys (name, key_hash, key_prefix) VALUES ('flood-real', ?, ?) RETURNING id")) {
                ps.setBytes(1, SecretHasher.hash(secret).toBytes());
                ps.setString(2, Secrets.displayPrefix(secret));
                try (ResultSet rs = ps.executeQuery()) {
                  rs.next();
                  id = rs.getLong(1);
                }
              }
              try (PreparedStatement ps =
                  c.prepareStatement("SELECT pg_notify('quota_key_changes', ?)")) {
                ps.setString(1, Long.toString(id));
                ps.execute();
              }
              return id;
            });
  }

  /** The longest Check the server timed (Micrometer keeps the max over the last minutes). */
  private double serverMaxCheckMillis() {
    return server
        .app()
        .operations()
        .registry()
        .find(Metrics.CHECK_LATENCY)
        .timer()
        .max(TimeUnit.MILLISECONDS);
  }

  private double hintQueries() {
    return server.app().operations().registry().find(Metrics.KEY_HINT_QUERIES).counter().count();
  }

  @Test
  void randomKeyFlood_realKeyAnsweredInside100msUsageCommittedAndNoKeyQueries() throws Exception {
    CreateKeyResponse usageKey =
        server.admin().createKey(CreateKeyRequest.newBuilder().setName("flood-usage").build());
    assertThat(check(usageKey.getSecret()).getStatus().getCode()).isZero();
    long coldLoadsBefore = server.app().cache().loadCount();
    long byHashBefore = proxy.statementsContaining("WHERE key_hash = ?");
    long commitsBefore = proxy.statementsContaining("INSERT INTO usage_events");
    long hintReadsBefore = proxy.statementsContaining("WHERE id = ANY");
    long allBefore = proxy.statementsContaining("");
    double hintQueriesBefore = hintQueries();

    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong flooded = new AtomicLong();
    AtomicLong wrong = new AtomicLong();
    List<Thread> flooders = new ArrayList<>();
    for (int t = 0; t < FLOOD_THREADS; t++) {
      Thread th =
          new Thread(
              () -> {
                AuthorizationGrpc.AuthorizationBlockingStub stub =
                    AuthorizationGrpc.newBlockingStub(server.authzChannel());
                while (!stop.get()) {
                  String secret =
                      "sk-"
                          + Long.toHexString(ThreadLocalRandom.current().nextLong())
                          + Long.toHexString(ThreadLocalRandom.current().nextLong());
                  CheckResponse r =
                      stub.withDeadlineAfter(10, TimeUnit.SECONDS)
                          .check(EnvoyChecks.post("/v1/chat/completions").bearer(secret).build());
                  if (r.getDeniedResponse().getStatus().getCodeValue() != 401
                      || !r.getDeniedResponse().getBody().contains("invalid_api_key")) {
                    wrong.incrementAndGet();
                  }
                  flooded.incrementAndGet();
                }
              },
              "flood-" + t);
      th.start();
      flooders.add(th);
    }

    long floodStart = System.nanoTime();
    UsageStream usage = UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN);
    int reports = 0;
    List<Long> realMillis = new ArrayList<>();
    List<Integer> realCodes = new ArrayList<>();
    String realSecret = Secrets.newSecret();
    KeyHash realHash = SecretHasher.hash(realSecret);
    // The flood is under way (and the JIT past its first compilations) before the real key exists.
    Thread.sleep(WARM_UP_MILLIS);
    insertBehindTheServersBack(realSecret);
    long seenBy = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (server.app().cache().cached(realHash) == null) {
      assertThat(System.nanoTime())
          .as("the notification makes the new key known")
          .isLessThan(seenBy);
      Thread.sleep(1);
    }
    while (System.nanoTime() - floodStart < TimeUnit.MILLISECONDS.toNanos(FLOOD_MILLIS)) {
      long t0 = System.nanoTime();
      CheckResponse r = check(realSecret);
      realMillis.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
      realCodes.add(r.getStatus().getCode());
      usage.send(UsageStream.report("flood-" + reports++, usageKey.getKey().getId(), "0.01"));
      Thread.sleep(100);
    }
    usage.awaitAnswers(reports);
    List<ReportUsageResponse> answered = new ArrayList<>(usage.responses());
    long floodNanos = System.nanoTime() - floodStart;
    stop.set(true);
    for (Thread th : flooders) {
      th.join(15_000);
    }
    usage.finish();

    long byHash = proxy.statementsContaining("WHERE key_hash = ?") - byHashBefore;
    long commits = proxy.statementsContaining("INSERT INTO usage_events") - commitsBefore;
    long hintReads = proxy.statementsContaining("WHERE id = ANY") - hintReadsBefore;
    long all = proxy.statementsContaining("") - allBefore;
    List<Long> sorted = new ArrayList<>(realMillis);
    Collections.sort(sorted);
    System.out.printf(
        "flood: %d random-key Checks in %d ms (%d/s) from %d threads; real key: %d Checks, round trip max %d ms; server-side Check max %.1f ms;"
            + " usage: %d reports acked; statements: %d in all, %d key-by-hash, %d by-id reads, %d usage inserts;"
            + " cold loads %d%n",
        flooded.get(),
        TimeUnit.NANOSECONDS.toMillis(floodNanos),
        flooded.get() * 1_000_000_000L / floodNanos,
        FLOOD_THREADS,
        realMillis.size(),
        sorted.get(sorted.size() - 1),
        serverMaxCheckMillis(),
        answered.size(),
        all,
        byHash,
        hintReads,
        commits,
        server.app().cache().loadCount() - coldLoadsBefore);

    assertThat(wrong.get()).as("random keys not answered 401 invalid_api_key").isZero();
    assertThat(flooded.get()).isGreaterThan(100);
    assertThat(realCodes).as("the real key is allowed every time").isNotEmpty().containsOnly(0);
    assertThat(answered).hasSize(reports);
    assertThat(answered).allMatch(a -> a.getResult() == UsageResult.USAGE_RESULT_ACCEPTED);
    assertThat(
            db.scalar(
                "SELECT quota_used FROM api_keys WHERE id = ?",
                Long.parseLong(usageKey.getKey().getId())))
        .isEqualTo(new BigDecimal("0.01").multiply(BigDecimal.valueOf(reports)).setScale(8));
    assertThat(commits).as("usage commits kept going").isPositive();
    // No Check waited for a query or a loader: none was made (how long Checks take under a flood is
    // the bench's to measure, not a timed assertion here).
    assertThat(byHash).as("key-by-hash queries during the flood").isZero();
    assertThat(server.app().cache().loadCount()).as("cold loads").isEqualTo(coldLoadsBefore);
    // The real key's notification, and at most one per usage commit (this instance's own
    // notification can arrive before the committer has refreshed the cache): never one per flood
    // key.
    assertThat(hintQueries() - hintQueriesBefore)
        .as("re-reads named by notifications")
        .isGreaterThanOrEqualTo(1)
        .isLessThanOrEqualTo(commits + 1);
  }
}
