package io.quotaauthority.usage;

import io.quotaauthority.keys.KeyHash;
import io.quotaauthority.keys.KeyLookup;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.SecretHasher;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * {@link UsageLedger} in memory, as its Javadoc describes the PostgreSQL one: a group is charged
 * whole or not at all; reports for missing or deleted keys are skipped; a report id charged before
 * inserts nothing and is handed back in {@code earlier} (key id and cost only); a report that would
 * carry its key past {@link Money#MAX} is skipped into {@code overflowed}; each key grows by
 * exactly what was inserted and its version is bumped. Failures can be planted per report id (the
 * group fails while that id is in it, as a bad row fails its transaction) or for the next N calls.
 *
 * <p>It is also the keys' {@link KeyLookup}, so a KeyCache over it sees the same rows.
 */
final class MemoryLedger implements UsageLedger, KeyLookup {
  static final Instant CREATED = Instant.parse("2026-12-01T00:00:00Z");

  private final Map<Long, KeyRecord> keys = new HashMap<>();

  /** report id → what was charged under it (the usage_events table). */
  private final Map<String, UsageReport> charged = new LinkedHashMap<>();

  /** report id → the attempt that inserted it (as xmin names the transaction in PostgreSQL). */
  private final Map<String, Long> writer = new HashMap<>();

  private long attempts;
  private int loseAnswers;

  private final Map<String, Failure.Kind> failFor = new HashMap<>();
  private Failure.Kind failNextKind;
  private int failNext;

  /** Every call's report ids, in call order (failed calls included). */
  private final List<List<String>> calls = new ArrayList<>();

  /** A live key with this quota_used. */
  synchronized MemoryLedger key(long id, String quotaUsed) {
    keys.put(id, row(id, new BigDecimal(quotaUsed), 1, null));
    return this;
  }

  /** The key becomes a tombstone: its reports are skipped from now on. */
  synchronized MemoryLedger delete(long id) {
    KeyRecord k = keys.get(id);
    keys.put(id, row(id, k.quotaUsed(), k.version() + 1, CREATED));
    return this;
  }

  /** Every group holding this report id fails with this kind (as a row the database refuses). */
  synchronized MemoryLedger failFor(String reportId, Failure.Kind kind) {
    failFor.put(reportId, kind);
    return this;
  }

  /** The next {@code n} calls fail with this kind, whatever they hold. */
  synchronized MemoryLedger failNext(int n, Failure.Kind kind) {
    failNext = n;
    failNextKind = kind;
    return this;
  }

  /**
   * The next {@code n} calls commit, then fail UNAVAILABLE carrying their attempt's token: the
   * connection lost after COMMIT was sent, so the caller cannot know it applied.
   */
  synchronized MemoryLedger commitThenLoseAnswer(int n) {
    loseAnswers = n;
    return this;
  }

  static KeyHash hash(long id) {
    return SecretHasher.hash("sk-memory-ledger-key-" + id);
  }

  private static KeyRecord row(long id, BigDecimal used, long version, Instant deletedAt) {
    return new KeyRecord(
        id,
        "k" + id,
        hash(id),
        "sk-memor",
        KeyRecord.StoredStatus.ACTIVE,
        BigDecimal.ZERO,
        used,
        null,
        CREATED,
        CREATED,
        deletedAt,
        version);
  }

  synchronized BigDecimal quotaUsed(long id) {
    return keys.get(id).quotaUsed();
  }

  synchronized KeyRecord row(long id) {
    return keys.get(id);
  }

  /** Report ids charged, in the order they were inserted. */
  synchronized List<String> chargedIds() {
    return List.copyOf(charged.keySet());
  }

  synchronized int calls() {
    return calls.size();
  }

  synchronized List<List<String>> callLog() {
    return List.copyOf(calls);
  }

  @Override
  public synchronized Committed commitGroup(List<UsageReport> reports) {
    return commitGroup(reports, Map.of(), Set.of());
  }

  @Override
  public synchronized Committed commitGroup(
      List<UsageReport> reports, Map<String, HeldBy> holds, Set<Long> earlierAttempts) {
    if (!holds.isEmpty()) {
      throw new UnsupportedOperationException("this ledger does not settle holds");
    }
    long attempt = ++attempts;
    Committed done = commit(reports, attempt);
    if (loseAnswers > 0 && !done.inserted().isEmpty()) {
      loseAnswers--;
      throw new Failure(Failure.Kind.UNAVAILABLE, "SQLSTATE 08006", null, attempt);
    }
    Set<String> recovered = new HashSet<>();
    for (String id : done.earlier().keySet()) {
      if (earlierAttempts.contains(writer.get(id))) {
        recovered.add(id);
      }
    }
    return new Committed(
        done.inserted(),
        done.usedBefore(),
        done.charged(),
        done.overflowed(),
        done.earlier(),
        Map.of(),
        recovered);
  }

  private Committed commit(List<UsageReport> reports, long attempt) {
    calls.add(reports.stream().map(UsageReport::reportId).toList());
    if (failNext > 0) {
      failNext--;
      throw new Failure(
          failNextKind, failNextKind == Failure.Kind.UNAVAILABLE ? null : "SQLSTATE 08006", null);
    }
    for (UsageReport r : reports) {
      Failure.Kind kind = failFor.get(r.reportId());
      if (kind != null) {
        // Nothing of the group is charged: the failure comes before any state changes.
        throw new Failure(kind, "SQLSTATE 22021", null);
      }
    }
    Map<Long, BigDecimal> usedBefore = new HashMap<>();
    for (UsageReport r : reports) {
      KeyRecord k = keys.get(r.keyId());
      if (k != null && !k.deleted()) {
        usedBefore.put(r.keyId(), k.quotaUsed());
      }
    }
    Map<Long, BigDecimal> running = new HashMap<>(usedBefore);
    Set<String> inserted = new HashSet<>();
    Set<String> overflowed = new HashSet<>();
    Map<String, UsageReport> earlier = new HashMap<>();
    List<UsageReport> toInsert = new ArrayList<>();
    for (UsageReport r : reports) {
      if (!usedBefore.containsKey(r.keyId())) {
        continue;
      }
      UsageReport before = charged.get(r.reportId());
      if (before != null) {
        // Only key id and cost are filled in, as the port says.
        earlier.put(
            r.reportId(),
            new UsageReport(
                r.reportId(),
                before.keyId(),
                before.cost(),
                "",
                "",
                0,
                0,
                0,
                0,
                before.occurredAt()));
        continue;
      }
      BigDecimal after = running.get(r.keyId()).add(r.cost());
      if (after.compareTo(Money.MAX) > 0) {
        overflowed.add(r.reportId());
        continue;
      }
      running.put(r.keyId(), after);
      inserted.add(r.reportId());
      toInsert.add(r);
    }
    // The transaction commits: only now does anything change.
    for (UsageReport r : toInsert) {
      charged.put(r.reportId(), r);
      writer.put(r.reportId(), attempt);
    }
    List<KeyRecord> rows = new ArrayList<>();
    Set<Long> grown = new HashSet<>();
    for (UsageReport r : toInsert) {
      grown.add(r.keyId());
    }
    for (Long id : grown) {
      KeyRecord k = keys.get(id);
      KeyRecord after = row(id, running.get(id), k.version() + 1, null);
      keys.put(id, after);
      rows.add(after);
    }
    return new Committed(inserted, usedBefore, rows, overflowed, earlier);
  }

  @Override
  public synchronized Optional<KeyRecord> findByHash(KeyHash hash) {
    return keys.values().stream().filter(k -> k.keyHash().equals(hash)).findFirst();
  }

  @Override
  public synchronized List<KeyRecord> findByIds(Collection<Long> ids) {
    return keys.values().stream().filter(k -> ids.contains(k.id())).toList();
  }
}
