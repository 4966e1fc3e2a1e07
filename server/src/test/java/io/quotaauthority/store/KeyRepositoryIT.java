package io.quotaauthority.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quotaauthority.keys.KeyCache;
import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.SecretHasher;
import io.quotaauthority.keys.Secrets;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.usage.UsageReport;
import java.math.BigDecimal;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class KeyRepositoryIT {
  private static TestDatabase db;
  private static Transactions tx;
  private static KeyRepository repo;

  @BeforeAll
  static void createDatabase() {
    db = TestDatabase.create();
    tx = db.transactions();
    repo = new KeyRepository(tx);
  }

  @AfterAll
  static void dropDatabase() {
    db.close();
  }

  private static Optional<KeyRecord> live(long id) {
    return tx.inTransaction(c -> repo.findLive(c, id));
  }

  private static Optional<KeyRecord> locked(long id) {
    return tx.inTransaction(c -> repo.lockLive(c, id));
  }

  private static KeyRecord insert(String name, String quota, Instant expiresAt) {
    String secret = Secrets.newSecret();
    return tx.inTransaction(
        c ->
            repo.insert(
                c,
                name,
                SecretHasher.hash(secret),
                Secrets.displayPrefix(secret),
                new BigDecimal(quota),
                expiresAt));
  }

  @Test
  void insert_newKey_returnsStoredRowAtVersionOne() {
    String secret = Secrets.newSecret();
    Instant expires = Instant.now().plus(30, ChronoUnit.DAYS).truncatedTo(ChronoUnit.MICROS);

    KeyRecord r =
        tx.inTransaction(
            c ->
                repo.insert(
                    c,
                    "team-a",
                    SecretHasher.hash(secret),
                    Secrets.displayPrefix(secret),
                    new BigDecimal("12.5"),
                    expires));

    assertThat(r.id()).isPositive();
    assertThat(r.name()).isEqualTo("team-a");
    assertThat(r.keyHash()).isEqualTo(SecretHasher.hash(secret));
    assertThat(r.keyPrefix()).isEqualTo(secret.substring(0, 8));
    assertThat(r.status()).isEqualTo(KeyRecord.StoredStatus.ACTIVE);
    assertThat(r.quota()).isEqualByComparingTo("12.5").hasScaleOf(8);
    assertThat(r.quotaUsed()).isEqualByComparingTo("0");
    assertThat(r.expiresAt()).isEqualTo(expires);
    assertThat(r.createdAt()).isEqualTo(r.updatedAt());
    assertThat(r.deletedAt()).isNull();
    assertThat(r.version()).isEqualTo(1);
  }

  @Test
  void insert_withConcurrencyCap_storedAndReadBackByEveryRead() {
    String secret = Secrets.newSecret();
    KeyRecord r =
        tx.inTransaction(
            c ->
                repo.insert(
                    c,
                    "capped",
                    SecretHasher.hash(secret),
                    Secrets.displayPrefix(secret),
                    BigDecimal.ZERO,
                    null,
                    KeyRecord.MAX_CONCURRENT_REQUESTS,
                    BigDecimal.ZERO,
                    KeyRecord.HoldExpiry.CHARGE));
    // slots_leased as the leasing would leave it (metering's LeaseRepository writes it).
    tx.inTransaction(
        c ->
            c.createStatement()
                .executeUpdate("UPDATE api_keys SET slots_leased = 3 WHERE id = " + r.id()));

    assertThat(r.maxConcurrentRequests()).isEqualTo(1_000_000);
    assertThat(r.slotsLeased()).isZero();
    assertThat(db.scalar("SELECT max_concurrent_requests FROM api_keys WHERE id = ?", r.id()))
        .isEqualTo(1_000_000);
    for (KeyRecord read :
        List.of(
            live(r.id()).orElseThrow(),
            locked(r.id()).orElseThrow(),
            repo.findByHash(r.keyHash()).orElseThrow(),
            repo.findByIds(List.of(r.id())).get(0),
            tx.inTransaction(c -> repo.page(c, r.id() - 1, 1)).get(0))) {
      assertThat(read.maxConcurrentRequests()).isEqualTo(1_000_000);
      assertThat(read.slotsLeased()).isEqualTo(3);
      assertThat(read.version()).isEqualTo(1);
    }
  }

  @Test
  void insert_withoutCap_noCapNothingLeased() {
    KeyRecord r = insert("uncapped", "1", null);

    assertThat(r.maxConcurrentRequests()).isZero();
    assertThat(r.slotsLeased()).isZero();
  }

  @Test
  void charge_cappedKey_chargedRowKeepsCapAndSlots() {
    String secret = Secrets.newSecret();
    KeyRecord r =
        tx.inTransaction(
            c ->
                repo.insert(
                    c,
                    "charged-cap",
                    SecretHasher.hash(secret),
                    Secrets.displayPrefix(secret),
                    BigDecimal.TEN,
                    null,
                    4,
                    BigDecimal.ZERO,
                    KeyRecord.HoldExpiry.CHARGE));
    tx.inTransaction(
        c ->
            c.createStatement()
                .executeUpdate("UPDATE api_keys SET slots_leased = 2 WHERE id = " + r.id()));

    // The charge's rows go straight into the key cache: a row without the cap would lift it there.
    List<KeyRecord> charged =
        new UsageRepository(tx)
            .commitGroup(
                List.of(
                    new UsageReport(
                        "cap-charge-1",
                        r.id(),
                        new BigDecimal("0.25"),
                        "m",
                        "",
                        1,
                        1,
                        0,
                        0,
                        Instant.now())))
            .charged();

    assertThat(charged)
        .singleElement()
        .satisfies(
            k -> {
              assertThat(k.quotaUsed()).isEqualByComparingTo("0.25");
              assertThat(k.maxConcurrentRequests()).isEqualTo(4);
              assertThat(k.slotsLeased()).isEqualTo(2);
              assertThat(k.version()).isEqualTo(2);
            });
  }

  @Test
  void insert_duplicateHash_failsAndWritesNothing() {
    String secret = Secrets.newSecret();
    KeyHash hash = SecretHasher.hash(secret);
    tx.inTransaction(c -> repo.insert(c, "first", hash, "sk-dup00", BigDecimal.ZERO, null));

    assertThatThrownBy(
            () ->
                tx.inTransaction(
                    c -> repo.insert(c, "second", hash, "sk-dup00", BigDecimal.ZERO, null)))
        .isInstanceOf(StoreException.class)
        .isNotInstanceOf(StoreUnavailableException.class)
        .hasMessageStartingWith("database error 23505");
    assertThat(db.count("SELECT count(*) FROM api_keys WHERE key_prefix = 'sk-dup00'"))
        .isEqualTo(1);
  }

  @Test
  void findLive_existingAndMissing_foundOrEmpty() {
    KeyRecord r = insert("find", "0", null);

    assertThat(live(r.id())).contains(r);
    assertThat(live(Long.MAX_VALUE)).isEmpty();
  }

  @Test
  void findByHash_existingKey_returnsRow() {
    String secret = Secrets.newSecret();
    KeyRecord r =
        tx.inTransaction(
            c ->
                repo.insert(
                    c, "hash", SecretHasher.hash(secret), "sk-hash0", BigDecimal.ONE, null));

    assertThat(repo.findByHash(SecretHasher.hash(secret))).contains(r);
    assertThat(repo.findByHash(SecretHasher.hash(Secrets.newSecret()))).isEmpty();
  }

  @Test
  void updateFields_everyField_storedAndVersionBumped() {
    KeyRecord r = insert("before", "1", null);
    Instant expires = Instant.parse("2031-01-02T03:04:05.123456Z");

    KeyRecord u =
        tx.inTransaction(
            c ->
                repo.updateFields(
                    c,
                    r.id(),
                    "after",
                    new BigDecimal("0.00000001"),
                    expires,
                    KeyRecord.StoredStatus.DISABLED,
                    7,
                    new BigDecimal("0.25000000"),
                    KeyRecord.HoldExpiry.RELEASE));

    assertThat(u.name()).isEqualTo("after");
    assertThat(u.quota()).isEqualByComparingTo("0.00000001");
    assertThat(u.expiresAt()).isEqualTo(expires);
    assertThat(u.status()).isEqualTo(KeyRecord.StoredStatus.DISABLED);
    assertThat(u.maxConcurrentRequests()).isEqualTo(7);
    assertThat(u.holdUsdPerRequest()).isEqualByComparingTo("0.25");
    assertThat(u.holdExpiry()).isEqualTo(KeyRecord.HoldExpiry.RELEASE);
    assertThat(db.scalar("SELECT hold_expiry FROM api_keys WHERE id = ?", r.id()))
        .isEqualTo("release");
    assertThat(u.version()).isEqualTo(2);
    assertThat(u.updatedAt()).isAfterOrEqualTo(r.updatedAt());
    assertThat(db.scalar("SELECT status FROM api_keys WHERE id = ?", r.id())).isEqualTo("disabled");
    assertThat(live(r.id())).contains(u);
  }

  @Test
  void resetQuota_usedAmount_exactlyZeroAndVersionBumped() {
    KeyRecord r = insert("reset", "10", null);
    tx.inTransaction(
        c ->
            c.createStatement()
                .executeUpdate(
                    "UPDATE api_keys SET quota_used = 3.25, version = version + 1 WHERE id = "
                        + r.id()));

    KeyRecord u = tx.inTransaction(c -> repo.resetQuota(c, r.id()));

    assertThat(u.quotaUsed().compareTo(BigDecimal.ZERO)).isZero();
    assertThat(u.version()).isEqualTo(3);
    assertThat(u.quota()).isEqualByComparingTo("10");
    assertThat(
            ((BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", r.id()))
                .compareTo(BigDecimal.ZERO))
        .isZero();
  }

  @Test
  void softDelete_liveKey_hiddenFromLiveReadsButKeptAsTombstone() {
    KeyRecord r = insert("delete", "0", null);

    KeyRecord d = tx.inTransaction(c -> repo.softDelete(c, r.id()));

    assertThat(d.deleted()).isTrue();
    assertThat(d.version()).isEqualTo(2);
    assertThat(live(r.id())).isEmpty();
    assertThat(locked(r.id())).isEmpty();
    assertThat(repo.findByHash(r.keyHash()))
        .hasValueSatisfying(
            t -> {
              assertThat(t.deleted()).isTrue();
              assertThat(t.version()).isEqualTo(2);
            });
    assertThat(repo.findByIds(List.of(r.id()))).containsExactly(d);
    assertThat(db.count("SELECT count(*) FROM api_keys WHERE id = ?", r.id())).isEqualTo(1);
  }

  @Test
  void page_afterId_liveKeysInIdOrderUpToLimit() {
    KeyRecord a = insert("p1", "0", null);
    KeyRecord b = insert("p2", "0", null);
    KeyRecord gone = insert("p3", "0", null);
    KeyRecord d = insert("p4", "0", null);
    tx.inTransaction(c -> repo.softDelete(c, gone.id()));

    List<KeyRecord> first = tx.inTransaction(c -> repo.page(c, a.id() - 1, 2));
    List<KeyRecord> rest = tx.inTransaction(c -> repo.page(c, b.id(), 10));

    assertThat(first).extracting(KeyRecord::id).containsExactly(a.id(), b.id());
    assertThat(rest).extracting(KeyRecord::id).containsExactly(d.id());
  }

  @Test
  void findByIds_mixedIds_returnsOnlyExisting() {
    KeyRecord a = insert("ids1", "0", null);
    KeyRecord b = insert("ids2", "0", null);

    assertThat(repo.findByIds(List.of(a.id(), b.id(), Long.MAX_VALUE)))
        .extracting(KeyRecord::id)
        .containsExactlyInAnyOrder(a.id(), b.id());
    assertThat(repo.findByIds(List.of())).isEmpty();
  }

  @Test
  void findChanged_versionsCachedAndNot_returnsOnlyRowsWhoseVersionDiffers() {
    KeyRecord same = insert("changed1", "0", null);
    KeyRecord moved = insert("changed2", "0", null);
    KeyRecord gone = insert("changed3", "0", null);
    KeyRecord forced = insert("changed4", "0", null);
    KeyRecord deleted = tx.inTransaction(c -> repo.softDelete(c, gone.id()));

    // Cached: same and moved at version 1, gone at 1 (now a tombstone at 2), forced as
    // READ_ANYWAY, and an id no row has.
    List<KeyRecord> rows =
        tx.inTransaction(
            c ->
                repo.findChanged(
                    c,
                    new long[] {same.id(), moved.id(), gone.id(), forced.id(), Long.MAX_VALUE},
                    new long[] {1, 0, 1, KeyCache.READ_ANYWAY, 1}));

    assertThat(rows)
        .extracting(KeyRecord::id)
        .containsExactlyInAnyOrder(moved.id(), gone.id(), forced.id());
    assertThat(rows).filteredOn(r -> r.id() == gone.id()).containsExactly(deleted);
    List<KeyRecord> none = tx.inTransaction(c -> repo.findChanged(c, new long[0], new long[0]));
    assertThat(none).isEmpty();
    assertThatThrownBy(
            () -> tx.inTransaction(c -> repo.findChanged(c, new long[] {1}, new long[0])))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("one version per id");
  }

  @Test
  void streamLiveKeys_pagesOfTwo_everyLiveKeyOnceOldestFirstUpToLimit() {
    List<KeyRecord> made = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      made.add(insert("stream" + i, "0", null));
    }
    tx.inTransaction(c -> repo.softDelete(c, made.get(2).id()));
    List<Long> live =
        List.of(made.get(0).id(), made.get(1).id(), made.get(3).id(), made.get(4).id());

    List<Long> all = new ArrayList<>();
    List<Long> three = new ArrayList<>();
    tx.inTransaction(
        c -> {
          repo.streamLiveKeys(c, Long.MAX_VALUE, 2, r -> all.add(r.id()));
          repo.streamLiveKeys(c, 3, 2, r -> three.add(r.id()));
          return null;
        });

    // Other tests' keys are in the same table: only the order and this test's keys are checked.
    assertThat(all).isSorted().doesNotHaveDuplicates().containsAll(live);
    assertThat(all).doesNotContain(made.get(2).id());
    assertThat(all)
        .hasSize((int) db.count("SELECT count(*) FROM api_keys WHERE deleted_at IS NULL"));
    assertThat(three).containsExactlyElementsOf(all.subList(0, 3));
  }

  @Test
  void streamLiveHashes_pagesOfTwo_everyLiveHashOnceInByteOrder() {
    KeyRecord gone = insert("hashes-gone", "0", null);
    tx.inTransaction(c -> repo.softDelete(c, gone.id()));
    List<String> expected = new ArrayList<>();
    List<String> streamed = new ArrayList<>();
    tx.inTransaction(
        c -> {
          try (var ps =
                  c.prepareStatement(
                      "SELECT encode(key_hash, 'hex') FROM api_keys WHERE deleted_at IS NULL"
                          + " ORDER BY key_hash");
              var rs = ps.executeQuery()) {
            while (rs.next()) {
              expected.add(rs.getString(1));
            }
          }
          repo.streamLiveHashes(c, 2, h -> streamed.add(HexFormat.of().formatHex(h)));
          return null;
        });

    assertThat(expected).hasSizeGreaterThan(2);
    assertThat(streamed).containsExactlyElementsOf(expected);
    assertThat(streamed).doesNotContain(HexFormat.of().formatHex(gone.keyHash().toBytes()));
  }

  @Test
  void audit_row_storedAsJsonWithActor() {
    KeyRecord r = insert("audit", "0", null);

    tx.inTransaction(
        c -> {
          repo.audit(c, r.id(), "update", "{\"name\":\"a\"}", "{\"name\":\"b\"}", "admin:test");
          return null;
        });

    assertThat(
            db.scalar(
                "SELECT action || ' ' || actor || ' ' || (old_value->>'name') || (new_value->>'name')"
                    + " FROM key_audit WHERE key_id = ?",
                r.id()))
        .isEqualTo("update admin:test ab");
  }

  @Test
  void inTransaction_workThrows_rolledBack() {
    String secret = Secrets.newSecret();

    assertThatThrownBy(
            () ->
                tx.inTransaction(
                    c -> {
                      repo.insert(
                          c,
                          "rolled-back",
                          SecretHasher.hash(secret),
                          "sk-rb000",
                          BigDecimal.ZERO,
                          null);
                      throw new IllegalStateException("boom");
                    }))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("boom");
    assertThat(db.count("SELECT count(*) FROM api_keys WHERE name = 'rolled-back'")).isZero();
    assertThat(repo.findByHash(SecretHasher.hash(secret))).isEqualTo(Optional.empty());
  }

  @Test
  void amounts_extremes_roundTripExactly() {
    KeyRecord max = insert("max", "999999999999.99999999", null);
    KeyRecord min = insert("min", "0.00000001", null);

    assertThat(live(max.id()).orElseThrow().quota().toPlainString())
        .isEqualTo("999999999999.99999999");
    assertThat(live(min.id()).orElseThrow().quota().toPlainString()).isEqualTo("0.00000001");
  }
}
