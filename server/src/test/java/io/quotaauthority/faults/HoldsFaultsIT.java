package io.quotaauthority.faults;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Channel;
import io.quotaauthority.config.Setting;
import io.quotaauthority.metering.HeldRequest;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.testing.TcpProxy;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Holds when things break (issue 16): an instance killed with SIGKILL while it holds a key's
 * budget, and the database cut while an instance has a lease. Requests go through the real metering
 * ports as Envoy sends them ({@link HeldRequest}: each held on exactly 0.05 USD); the ledger and
 * the leases are read back from PostgreSQL.
 */
class HoldsFaultsIT {
  /** What each answered request costs: 400 output tokens x 50 USD per million. */
  private static final long TOKENS = 400;

  private static final BigDecimal COST = HeldRequest.cost(TOKENS);

  private TestDatabase db;
  private Path dir;
  private Path prices;
  private final List<AutoCloseable> closing = new ArrayList<>();

  @BeforeEach
  void start() throws Exception {
    db = TestDatabase.create();
    dir = Files.createTempDirectory("qa-holds-faults");
    prices = HeldRequest.writePrices(dir);
  }

  @AfterEach
  void stop() throws Exception {
    try {
      for (int i = closing.size() - 1; i >= 0; i--) {
        closing.get(i).close();
      }
    } finally {
      db.close();
    }
  }

  private long key(TestServer server) {
    return Long.parseLong(
        server
            .admin()
            .createKey(CreateKeyRequest.newBuilder().setName("holds").setQuotaUsd("1.00").build())
            .getKey()
            .getId());
  }

  private HeldRequest request(Channel metering, long keyId, String id) {
    return HeldRequest.start(
        metering, keyId, HeldRequest.MODEL, OptionalLong.of(HeldRequest.MAX_TOKENS), id);
  }

  /** One whole request, admitted and answered (costing {@link #COST}). */
  private void served(Channel metering, long keyId, String id) {
    HeldRequest r = request(metering, keyId, id);
    assertThat(r.admit()).isEqualTo(HeldRequest.Outcome.ADMITTED);
    r.respond(9, TOKENS);
  }

  private void awaitCharges(long keyId, long rows, Duration wait) throws InterruptedException {
    long deadline = System.nanoTime() + wait.toNanos();
    while (rows(keyId) < rows && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(rows(keyId)).as("charges committed").isEqualTo(rows);
  }

  private long rows(long keyId) {
    return db.count("SELECT count(*) FROM usage_events WHERE key_id = ?", keyId);
  }

  private BigDecimal decimal(String sql, long keyId) {
    return (BigDecimal) db.scalar(sql, keyId);
  }

  private BigDecimal leased(long keyId) {
    return decimal("SELECT leased FROM api_keys WHERE id = ?", keyId);
  }

  private BigDecimal leaseRows(long keyId) {
    return decimal("SELECT coalesce(sum(amount), 0) FROM key_leases WHERE key_id = ?", keyId);
  }

  /** Every charge in the ledger once, quota_used their sum, within the quota. */
  private Ledger ledgerChecked(long keyId, long charges) {
    Ledger ledger = Ledger.of(db, Long.toString(keyId));
    assertThat(ledger.rows()).isEqualTo(charges);
    assertThat(ledger.rowsPerReport().values()).as("no report charged twice").containsOnly(1L);
    assertThat(ledger.sum())
        .isEqualByComparingTo(COST.multiply(BigDecimal.valueOf(charges)))
        .isEqualByComparingTo(ledger.quotaUsed());
    assertThat(ledger.quotaUsed()).isLessThanOrEqualTo(new BigDecimal("1.00"));
    return ledger;
  }

  @Test
  void meteredRequests_instanceKilledHoldingTheBudget_survivorReapsItsLeaseAndTheKeyAdmitsAgain()
      throws Exception {
    ForkedServer victim =
        ForkedServer.start(db.url(), dir, "--prices-file", prices.toString(), "--lease-ttl", "3s");
    closing.add(victim);
    TestServer survivor =
        TestServer.start(
            db,
            Map.of(Setting.PRICES_FILE, prices.toString(), Setting.LEASE_TTL, "3s"),
            Clock.systemUTC());
    closing.add(survivor);
    victim.awaitServing(Duration.ofSeconds(60));
    long keyId = key(survivor);

    // Five requests served by the victim and charged (0.10): what was committed must stay.
    for (int i = 0; i < 5; i++) {
      served(victim.envoyMetering(), keyId, "before-kill-" + i);
    }
    awaitCharges(keyId, 5, Duration.ofSeconds(15));
    // Eighteen more admitted by the victim, their responses not come yet: 18 x 0.05 = 0.90,
    // the whole rest of the budget, held on the victim's lease.
    List<HeldRequest> inFlight = new ArrayList<>();
    for (int i = 0; i < 18; i++) {
      HeldRequest r = request(victim.envoyMetering(), keyId, "in-flight-" + i);
      HeldRequest.Outcome o = r.admit();
      assertThat(o)
          .as(
              "hold %d on the victim (%s); leased %s, leases %s, used %s",
              i,
              o == HeldRequest.Outcome.ADMITTED ? "" : r.refusalMessage(),
              leased(keyId),
              db.scalar(
                  "SELECT string_agg(instance_id || '=' || amount, ', ') FROM key_leases"
                      + " WHERE key_id = ?",
                  keyId),
              decimal("SELECT quota_used FROM api_keys WHERE id = ?", keyId))
          .isEqualTo(HeldRequest.Outcome.ADMITTED);
      inFlight.add(r);
    }
    assertThat(leased(keyId)).isEqualByComparingTo("0.90");
    String victimLease =
        (String) db.scalar("SELECT instance_id FROM key_leases WHERE key_id = ?", keyId);
    HeldRequest before = request(survivor.envoyMetering(), keyId, "survivor-before");
    assertThat(before.admit())
        .as("the survivor, while the victim holds everything")
        .isEqualTo(HeldRequest.Outcome.INSUFFICIENT_QUOTA);
    assertThat(before.refusalMessage()).contains("0.00000000 USD of the key's quota remains");

    victim.process().destroyForcibly();
    assertThat(victim.process().waitFor(10, TimeUnit.SECONDS)).isTrue();
    long killed = System.nanoTime();

    // The victim's lease expires at most 3 s after its last renewal; the survivor reaps it 5 s
    // (REAP_GRACE) after that, on its next round (every 0.75 s). Until then: 429.
    int refusedMeanwhile = 0;
    HeldRequest again;
    while (true) {
      again = request(survivor.envoyMetering(), keyId, "survivor-after-" + refusedMeanwhile);
      HeldRequest.Outcome outcome = again.admit();
      if (outcome == HeldRequest.Outcome.ADMITTED) {
        break;
      }
      assertThat(outcome).isEqualTo(HeldRequest.Outcome.INSUFFICIENT_QUOTA);
      refusedMeanwhile++;
      assertThat(System.nanoTime() - killed)
          .as("the victim's lease reaped within ttl + grace + a round")
          .isLessThan(TimeUnit.SECONDS.toNanos(20));
      Thread.sleep(250);
    }
    long admittedAfterMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
    assertThat(admittedAfterMillis)
        .as("not reaped before its expiry and the grace")
        .isGreaterThanOrEqualTo(5_000);
    assertThat(
            db.count(
                "SELECT count(*) FROM key_leases WHERE key_id = ? AND instance_id = ?",
                keyId,
                victimLease))
        .as("the victim's lease is gone")
        .isZero();
    // What is leased now is the survivor's only, the lease it just took for this hold.
    assertThat(leased(keyId)).isEqualByComparingTo(leaseRows(keyId)).isPositive();
    again.respond(9, TOKENS);
    awaitCharges(keyId, 6, Duration.ofSeconds(15));

    // The victim's five charges once each, the survivor's one; the 18 cut short charged nothing.
    Ledger ledger = ledgerChecked(keyId, 6);
    survivor.close();
    assertThat(leased(keyId)).as("leased once the survivor closed").isEqualByComparingTo("0");
    assertThat(db.count("SELECT count(*) FROM key_leases WHERE key_id = ?", keyId)).isZero();
    System.out.printf(
        "holds kill -9: victim held %d x 0.05 when killed; survivor refused %d times, admitted"
            + " again %d ms after the kill; ledger %d rows, quota_used %s%n",
        inFlight.size(),
        refusedMeanwhile,
        admittedAfterMillis,
        ledger.rows(),
        ledger.quotaUsed().toPlainString());
  }

  @Test
  void meteredRequests_databaseCutWhileLeased_admitsWhatTheLeaseHoldsThen503AndAgainOnReturn()
      throws Exception {
    TcpProxy proxy = TcpProxy.toPostgres();
    closing.add(proxy);
    TestServer server =
        TestServer.start(
            db,
            Map.of(
                Setting.DB_URL,
                proxy.jdbcUrl(db.name()),
                Setting.PRICES_FILE,
                prices.toString(),
                // One instance: its slices are remaining / 2, so the lease holds several requests.
                Setting.LEASE_INSTANCES,
                "1"),
            Clock.systemUTC());
    closing.add(server);
    // Closed in reverse: the database is back before the server closes.
    closing.add(proxy::restore);
    long keyId = key(server);

    // Three requests served and charged: the instance leases 0.05, then (knowing the remaining)
    // a slice of it, and keeps what the charges did not draw.
    for (int i = 0; i < 3; i++) {
      served(server.envoyMetering(), keyId, "before-" + i);
    }
    awaitCharges(keyId, 3, Duration.ofSeconds(15));
    // Each hold is released (with what its charge drew) as its commit is answered, a moment after
    // the row is there: then the instance's count of its lease is the stored one.
    Thread.sleep(200);
    BigDecimal lease = leaseRows(keyId);
    int fits = lease.divide(HeldRequest.ESTIMATE, 0, RoundingMode.DOWN).intValueExact();
    assertThat(fits).as("holds the lease covers (lease %s)", lease).isGreaterThan(1);

    proxy.cut();
    long cut = System.nanoTime();
    // Admitted from the lease alone, the holds kept out (their responses come while the database
    // is away, so their charges wait and the holds with them) ...
    List<HeldRequest> heldThrough = new ArrayList<>();
    HeldRequest.Outcome outcome;
    long refusalMillis;
    while (true) {
      HeldRequest r = request(server.envoyMetering(), keyId, "outage-" + heldThrough.size());
      long asked = System.nanoTime();
      outcome = r.admit();
      refusalMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - asked);
      if (outcome != HeldRequest.Outcome.ADMITTED) {
        break;
      }
      heldThrough.add(r);
      assertThat(heldThrough).as("admitted while away, lease %s", lease).hasSizeLessThan(fits + 1);
    }
    // ... then, with the lease spent and no database to lease more from, 503, never unheld.
    assertThat(outcome).isEqualTo(HeldRequest.Outcome.QUOTA_UNAVAILABLE);
    assertThat(heldThrough).as("admitted while away").hasSize(fits);
    for (HeldRequest r : heldThrough) {
      r.respond(9, TOKENS);
    }
    List<Long> laterRefusals = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      long asked = System.nanoTime();
      assertThat(request(server.envoyMetering(), keyId, "outage-late-" + i).admit())
          .as("still away, lease spent")
          .isEqualTo(HeldRequest.Outcome.QUOTA_UNAVAILABLE);
      laterRefusals.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - asked));
    }
    // Away for 3 s at least: the held requests' charges wait (and are retried) meanwhile.
    Thread.sleep(Math.max(0, 3_000 - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - cut)));
    assertThat(rows(keyId)).as("nothing committed while away").isEqualTo(3);
    long outageMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - cut);

    proxy.restore();
    long restored = System.nanoTime();
    int refusedOnReturn = 0;
    List<HeldRequest.Outcome> onReturn = new ArrayList<>();
    HeldRequest back;
    while (true) {
      back = request(server.envoyMetering(), keyId, "after-" + refusedOnReturn);
      HeldRequest.Outcome o = back.admit();
      onReturn.add(o);
      if (o == HeldRequest.Outcome.ADMITTED) {
        break;
      }
      // The pool reconnecting, or the held charges not committed yet (their holds still out).
      assertThat(o)
          .isIn(HeldRequest.Outcome.QUOTA_UNAVAILABLE, HeldRequest.Outcome.INSUFFICIENT_QUOTA);
      refusedOnReturn++;
      assertThat(System.nanoTime() - restored)
          .as("admits again without a restart")
          .isLessThan(TimeUnit.SECONDS.toNanos(30));
      Thread.sleep(250);
    }
    long admittedAfterMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - restored);
    back.respond(9, TOKENS);
    long charges = 3 + fits + 1;
    awaitCharges(keyId, charges, Duration.ofSeconds(40));

    Ledger ledger = ledgerChecked(keyId, charges);
    assertThat(leaseRows(keyId)).isEqualByComparingTo(leased(keyId));
    server.close();
    assertThat(leased(keyId)).as("leased once the server closed").isEqualByComparingTo("0");
    System.out.printf(
        "holds outage: lease %s at the cut, %d admitted from it while away, first 503 after %d"
            + " ms, later 503s %s ms, outage %d ms; after the return %s, admitted again"
            + " after %d ms; ledger %d rows, quota_used %s%n",
        lease.toPlainString(),
        heldThrough.size(),
        refusalMillis,
        laterRefusals,
        outageMillis,
        onReturn,
        admittedAfterMillis,
        ledger.rows(),
        ledger.quotaUsed().toPlainString());
  }
}
