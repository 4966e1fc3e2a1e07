package io.quotaauthority.store;

import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.Money;
import io.quotaauthority.usage.UsageLedger;
import io.quotaauthority.usage.UsageReport;
import java.math.BigDecimal;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** usage_events, the ledger, and the charges it makes to api_keys.quota_used. */
public final class UsageRepository implements UsageLedger {
  /**
   * Locks the live keys a group charges, in id order so concurrent groups cannot deadlock; says
   * which of them have a budget period that ended by the given instant (the same condition as
   * {@link BudgetPeriods#rollOver}'s), so that the rollover's own query runs only when one has.
   */
  private static final String LOCK_LIVE_KEYS =
      """
      SELECT id, quota_used, budget_period <> 'none' AND period_ends_at <= ? FROM api_keys
       WHERE id = ANY (?) AND deleted_at IS NULL
       ORDER BY id
         FOR UPDATE""";

  /**
   * One statement for the whole group; a report_id seen before inserts nothing, and neither does a
   * report naming a reporter hold another charge settled (the partial unique index on hold_id): ON
   * CONFLICT without a target covers both.
   */
  private static final String INSERT_EVENTS =
      """
      INSERT INTO usage_events (report_id, key_id, cost, model, provider, input_tokens, output_tokens,
                                cached_input_tokens, cache_write_tokens, occurred_at, request_id,
                                estimated, hold_id)
      SELECT * FROM unnest(?::text[], ?::bigint[], ?::numeric[], ?::text[], ?::text[], ?::bigint[],
                           ?::bigint[], ?::bigint[], ?::bigint[], ?::timestamptz[], ?::text[],
                           ?::boolean[], ?::text[])
      ON CONFLICT DO NOTHING
      RETURNING report_id, txid_current()""";

  /**
   * Takes back rows this transaction inserted for reports it then refused (a key not live, an
   * overflow): by report_id's unique index, and only ids the insert returned, so only its own rows.
   */
  private static final String WITHDRAW_EVENTS =
      """
      DELETE FROM usage_events WHERE report_id = ANY (?)""";

  /** The charges that settled these reporter holds (usage_events_hold_id_idx). */
  private static final String SETTLED_HOLDS =
      """
      SELECT hold_id, cost FROM usage_events WHERE hold_id = ANY (?)""";

  /**
   * What was charged before under these report ids, in the same transaction: the ids the insert
   * skipped (a repeat is a DUPLICATE only if it names the same key and cost), and those of a key
   * that could overflow (charged before, they add nothing). Under READ COMMITTED this statement
   * sees the row that made ON CONFLICT skip, even one another instance committed a moment ago (the
   * insert waited for it).
   */
  private static final String EARLIER_CHARGES =
      """
      SELECT report_id, key_id, cost, xmin::text FROM usage_events WHERE report_id = ANY (?)""";

  private static final String CHARGE_KEYS =
      """
      UPDATE api_keys k
         SET quota_used = k.quota_used + v.amount, spent_usd = k.spent_usd + v.amount,
             tokens_used = k.tokens_used + v.tokens, updated_at = now(), version = k.version + 1
        FROM unnest(?::bigint[], ?::numeric[], ?::bigint[]) AS v(id, amount, tokens)
       WHERE k.id = v.id
      RETURNING k.id, k.name, k.key_hash, k.key_prefix, k.status, k.quota, k.quota_used, k.expires_at,
                k.created_at, k.updated_at, k.deleted_at, k.version, k.leased,
                k.max_concurrent_requests, k.slots_leased, k.hold_usd_per_request, k.hold_expiry,
                k.ip_allow, k.ip_deny, k.model_allow, k.budget_period, k.budget_reset_minute,
                k.budget_time_zone, k.period_started_at, k.period_ends_at, k.window_5h_usd,
                k.window_1d_usd, k.window_7d_usd, k.window_30d_usd, k.spent_usd,
                k.requests_per_minute, k.tokens_per_minute, k.tokens_used""";

  private static final String NOTIFY_ALL =
      """
      SELECT pg_notify(?, change) FROM unnest(?::text[]) AS change""";

  private static final String EVENT_COLUMNS =
      """
      id, report_id, key_id, cost, model, provider, input_tokens, output_tokens,
      cached_input_tokens, cache_write_tokens, occurred_at, received_at, request_id, estimated""";

  /**
   * A key's newest events, by usage_events_key_received_id_idx walked backward: received_at, then
   * id for the rows of one commit, so the order is total and no page sorts (V13).
   */
  private static final String FIRST_PAGE =
      """
      SELECT %s
        FROM usage_events
       WHERE key_id = ?
       ORDER BY received_at DESC, id DESC
       LIMIT ?"""
          .formatted(EVENT_COLUMNS);

  /**
   * The page after the event with the given id, in the same order: resumes below that row's
   * (received_at, id), a row comparison the index answers. An id naming no row gives no rows.
   */
  private static final String NEXT_PAGE =
      """
      SELECT %s
        FROM usage_events
       WHERE key_id = ?
         AND (received_at, id) < (SELECT received_at, id FROM usage_events WHERE id = ?)
       ORDER BY received_at DESC, id DESC
       LIMIT ?"""
          .formatted(EVENT_COLUMNS);

  private final Transactions tx;
  private final Clock clock;

  public UsageRepository(Transactions tx) {
    this(tx, Clock.systemUTC());
  }

  /**
   * @param clock the server's clock: when budget periods end
   */
  public UsageRepository(Transactions tx, Clock clock) {
    this.clock = clock;
    this.tx = tx;
  }

  /**
   * {@inheritDoc}
   *
   * <p>A failure is classified by SQLSTATE ({@link #failure}); the database's message, which may
   * quote the row, stays in the cause for the log only.
   */
  @Override
  public Committed commitGroup(List<UsageReport> reports) {
    return commitGroup(reports, Map.of());
  }

  /**
   * {@inheritDoc}
   *
   * <p>Held reports draw on their leases after the charge, on the key rows this transaction already
   * locked ({@link LeaseRepository#drawHeld}); without holds nothing of that runs.
   */
  @Override
  public Committed commitGroup(List<UsageReport> reports, Map<String, HeldBy> holds) {
    return commitGroup(reports, holds, Set.of());
  }

  /**
   * {@inheritDoc}
   *
   * <p>An attempt's token is its transaction id ({@code txid_current()}, returned by the insert): a
   * row an attempt inserted carries it as {@code xmin}, on the primary and, since streaming
   * replication copies pages as they are, on a promoted standby. So a retry tells a report its own
   * lost attempt charged (xmin is one of the tokens: ACCEPTED) from one charged by anyone else
   * (DUPLICATE) exactly, and a token of an attempt that did not commit matches no row. xmin holds
   * the low 32 bits; a false match needs the same report id charged about 4 billion transactions
   * earlier.
   */
  @Override
  public Committed commitGroup(
      List<UsageReport> reports, Map<String, HeldBy> holds, Set<Long> earlierAttempts) {
    long[] attempt = {0};
    try {
      return charge(reports, holds, earlierAttempts, attempt);
    } catch (StoreException e) {
      throw failure(e, attempt[0] == 0 ? null : attempt[0]);
    }
  }

  /**
   * What kind of failure a store error is: unreachable or class 53 (insufficient resources: disk
   * full, out of memory, too many connections) cannot take writes at all; class 22 (data exception)
   * and 23 (integrity constraint) are about the report; anything else is internal.
   */
  static UsageLedger.Failure failure(StoreException e) {
    return failure(e, null);
  }

  /** {@link #failure(StoreException)}, carrying the token of an attempt that wrote. */
  static UsageLedger.Failure failure(StoreException e, Long attempt) {
    String state = e.getCause() instanceof SQLException s ? s.getSQLState() : null;
    String code = state == null ? null : "SQLSTATE " + state;
    UsageLedger.Failure.Kind kind;
    if (e instanceof StoreUnavailableException || waitsOut(state)) {
      kind = UsageLedger.Failure.Kind.UNAVAILABLE;
    } else if (state != null && state.startsWith("22")) {
      kind = UsageLedger.Failure.Kind.BAD_DATA;
    } else if (state != null && state.startsWith("23")) {
      kind = UsageLedger.Failure.Kind.CONSTRAINT;
    } else {
      kind = UsageLedger.Failure.Kind.INTERNAL;
    }
    return new UsageLedger.Failure(kind, code, e, attempt);
  }

  /**
   * SQLSTATEs no report causes, where waiting beats splitting the group: class 53 (insufficient
   * resources), 57P01..57P03 (the server shutting down or not yet accepting: a restart or a
   * failover), 25006 (read-only transaction: the pool still reaches a demoted primary), and
   * 40001/40P01 (serialization failure, deadlock) still failing after Transactions' own retries.
   */
  private static boolean waitsOut(String state) {
    return state != null
        && (state.startsWith("53")
            || state.startsWith("57P0")
            || state.equals("25006")
            || state.equals("40001")
            || state.equals("40P01"));
  }

  private Committed charge(
      List<UsageReport> reports,
      Map<String, HeldBy> holds,
      Set<Long> earlierAttempts,
      long[] attempt) {
    return tx.inTransaction(
        c -> {
          attempt[0] = 0; // a retry of a serialization failure starts again
          Instant now = clock.instant();
          // The ledger rows first, the keys' locks after: the insert is most of a group's work,
          // and done before the locks it runs beside another committer's group instead of
          // queueing behind its locks (two groups share keys nearly always). What the locked rows
          // then refuse (a key not live, a charge past the most NUMERIC(20,8) holds) is taken out
          // again below, in this transaction, so no other one ever sees it.
          Set<String> inserted = insertEvents(c, reports, holds, attempt);
          List<Long> due = new ArrayList<>();
          Map<Long, BigDecimal> live = lockLiveKeys(c, keyIds(reports), now, due);
          // A key whose budget period ended is rolled over first (README "Key policies"), so this
          // usage counts in the period it is charged in.
          List<KeyRecord> rolled = BudgetPeriods.rollOver(c, due, now);
          for (KeyRecord r : rolled) {
            live.put(r.id(), r.quotaUsed());
            KeyRepository.notifyChange(c, r);
          }
          List<UsageReport> chargeable = new ArrayList<>(reports.size());
          for (UsageReport r : reports) {
            if (live.containsKey(r.keyId())) {
              chargeable.add(r);
            }
          }
          // Checked here, on the locked rows, because only the transaction knows quota_used for
          // sure; else the UPDATE would fail with 22003 and void every report in the group. A
          // report the insert skipped was charged before (or its hold was): it adds nothing.
          Set<String> skipped = skipped(chargeable, inserted);
          Set<String> overflowed = overflowing(chargeable, live, skipped);
          if (!overflowed.isEmpty()) {
            chargeable.removeIf(r -> overflowed.contains(r.reportId()));
          }
          withdraw(c, reports, chargeable, inserted);
          Map<String, Long> writers = new HashMap<>();
          // The skipped are still exactly what the insert skipped among the charged: an overflow is
          // never a skipped report, and the withdrawn were inserted ones.
          Map<String, UsageReport> earlier = chargedBefore(c, skipped, writers);
          Set<String> recovered = recovered(writers, earlierAttempts);
          Map<Long, BigDecimal> sums = new HashMap<>();
          Map<Long, Long> tokens = new HashMap<>();
          for (UsageReport r : chargeable) {
            if (inserted.contains(r.reportId())) {
              sums.merge(r.keyId(), r.cost(), BigDecimal::add);
              tokens.merge(r.keyId(), tokenCount(r), UsageRepository::addTokens);
            }
          }
          List<KeyRecord> charged = sums.isEmpty() ? List.of() : chargeKeys(c, sums, tokens);
          if (!charged.isEmpty()) {
            notifyAll(c, charged);
          }
          Map<String, BigDecimal> drawn =
              holds.isEmpty()
                  ? Map.of()
                  : LeaseRepository.drawHeld(c, draws(chargeable, inserted, holds));
          return new Committed(
              inserted,
              live,
              charged,
              overflowed,
              earlier,
              drawn,
              recovered,
              holdSettled(chargeable, inserted, earlier, holds));
        });
  }

  /**
   * The report ids whose ledger row one of {@code attempts} wrote (its xmin is the low 32 bits of
   * that attempt's transaction id).
   */
  static Set<String> recovered(Map<String, Long> writers, Set<Long> attempts) {
    if (attempts.isEmpty() || writers.isEmpty()) {
      return Set.of();
    }
    Set<Long> xmins = new HashSet<>();
    for (long a : attempts) {
      xmins.add(a & 0xFFFF_FFFFL);
    }
    Set<String> ids = new HashSet<>();
    writers.forEach(
        (id, xmin) -> {
          if (xmins.contains(xmin)) {
            ids.add(id);
          }
        });
    return ids;
  }

  /**
   * The held reports this transaction really charged, in charge order: only an inserted report
   * draws on its lease, so a repeat of its report id draws nothing a second time.
   */
  private static List<LeaseRepository.Draw> draws(
      List<UsageReport> chargeable, Set<String> inserted, Map<String, HeldBy> holds) {
    List<LeaseRepository.Draw> draws = new ArrayList<>();
    for (UsageReport r : chargeable) {
      HeldBy h = holds.get(r.reportId());
      // A reporter hold past its margin names no lease: it is kept with the charge, drawn on none.
      if (h != null && h.instanceId() != null && inserted.contains(r.reportId())) {
        draws.add(
            new LeaseRepository.Draw(
                r.reportId(), r.keyId(), h.instanceId(), r.cost(), h.amount()));
      }
    }
    return draws;
  }

  /**
   * The reports the insert skipped although their report id is new: the reporter hold they name was
   * settled by another charge (the only other unique key).
   */
  private static Set<String> holdSettled(
      List<UsageReport> chargeable,
      Set<String> inserted,
      Map<String, UsageReport> earlier,
      Map<String, HeldBy> holds) {
    Set<String> settled = new HashSet<>();
    for (UsageReport r : chargeable) {
      HeldBy h = holds.get(r.reportId());
      if (h != null
          && h.holdId() != null
          && !inserted.contains(r.reportId())
          && !earlier.containsKey(r.reportId())) {
        settled.add(r.reportId());
      }
    }
    return settled;
  }

  @Override
  public Map<String, BigDecimal> settledHolds(Collection<String> holdIds) {
    if (holdIds.isEmpty()) {
      return Map.of();
    }
    try {
      return tx.inTransaction(
          c -> {
            Map<String, BigDecimal> settled = new HashMap<>();
            try (PreparedStatement ps = c.prepareStatement(SETTLED_HOLDS)) {
              ps.setArray(1, c.createArrayOf("text", holdIds.toArray(new String[0])));
              try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                  settled.put(rs.getString(1), rs.getBigDecimal(2));
                }
              }
            }
            return settled;
          });
    } catch (StoreException e) {
      throw failure(e);
    }
  }

  /**
   * What the ledger already holds under these report ids (report id → that charge; only its key id
   * and cost are filled in), and each row's xmin into {@code writers}: one query, or none for no
   * ids.
   */
  private static Map<String, UsageReport> chargedBefore(
      Connection c, Collection<String> reportIds, Map<String, Long> writers) throws SQLException {
    if (reportIds.isEmpty()) {
      return Map.of();
    }
    Map<String, UsageReport> earlier = new HashMap<>();
    try (PreparedStatement ps = c.prepareStatement(EARLIER_CHARGES)) {
      ps.setArray(1, c.createArrayOf("text", reportIds.toArray(new String[0])));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          // Only the fields that decide a conflict are read back.
          earlier.put(
              rs.getString(1),
              new UsageReport(
                  rs.getString(1),
                  rs.getLong(2),
                  rs.getBigDecimal(3),
                  "",
                  "",
                  0,
                  0,
                  0,
                  0,
                  Instant.EPOCH));
          writers.put(rs.getString(1), Long.parseLong(rs.getString(4)));
        }
      }
    }
    return earlier;
  }

  /**
   * The report ids among {@code reports} that the insert skipped (charged before, or naming a
   * reporter hold another charge settled): one query for the group looks up the first kind.
   */
  private static Set<String> skipped(List<UsageReport> reports, Set<String> inserted) {
    Set<String> skipped = new HashSet<>();
    for (UsageReport r : reports) {
      if (!inserted.contains(r.reportId())) {
        skipped.add(r.reportId());
      }
    }
    return skipped;
  }

  /**
   * Deletes the rows this transaction inserted for reports it does not charge (their key is not
   * live, or the charge would overflow) and takes them out of {@code inserted}: one statement, none
   * when every inserted report is charged.
   */
  private static void withdraw(
      Connection c, List<UsageReport> reports, List<UsageReport> chargeable, Set<String> inserted)
      throws SQLException {
    // Every report charged (the common case): every row inserted is one of theirs.
    if (chargeable.size() == reports.size()) {
      return;
    }
    Set<String> kept = new HashSet<>();
    for (UsageReport r : chargeable) {
      kept.add(r.reportId());
    }
    List<String> withdrawn = new ArrayList<>();
    for (String id : inserted) {
      if (!kept.contains(id)) {
        withdrawn.add(id);
      }
    }
    if (withdrawn.isEmpty()) {
      return;
    }
    try (PreparedStatement ps = c.prepareStatement(WITHDRAW_EVENTS)) {
      ps.setArray(1, c.createArrayOf("text", withdrawn.toArray(new String[0])));
      ps.executeUpdate();
    }
    withdrawn.forEach(inserted::remove);
  }

  /**
   * Walks the reports in charge order, adding each one's cost to its key's running total, and
   * refuses those that would take the total past {@link Money#MAX}; a later, smaller report that
   * still fits is charged.
   *
   * @param used each live key's quota_used before the group
   * @param chargedBefore report ids already in the ledger: they are DUPLICATE and add nothing
   */
  static Set<String> overflowing(
      List<UsageReport> reports, Map<Long, BigDecimal> used, Set<String> chargedBefore) {
    Map<Long, BigDecimal> running = new HashMap<>(used);
    Set<String> refused = new HashSet<>();
    for (UsageReport r : reports) {
      if (chargedBefore.contains(r.reportId())) {
        continue;
      }
      BigDecimal after = running.get(r.keyId()).add(r.cost());
      if (after.compareTo(Money.MAX) > 0) {
        refused.add(r.reportId());
      } else {
        running.put(r.keyId(), after);
      }
    }
    return refused;
  }

  private static Set<Long> keyIds(List<UsageReport> reports) {
    Set<Long> ids = new HashSet<>();
    for (UsageReport r : reports) {
      ids.add(r.keyId());
    }
    return ids;
  }

  /**
   * Locks the live keys among {@code ids}: their quota_used, and into {@code due} those whose
   * budget period ended by {@code now}.
   */
  private static Map<Long, BigDecimal> lockLiveKeys(
      Connection c, Collection<Long> ids, Instant now, List<Long> due) throws SQLException {
    Map<Long, BigDecimal> live = new HashMap<>();
    Array array = c.createArrayOf("bigint", ids.toArray(new Long[0]));
    try (PreparedStatement ps = c.prepareStatement(LOCK_LIVE_KEYS)) {
      KeyRepository.setInstant(ps, 1, now);
      ps.setArray(2, array);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          live.put(rs.getLong(1), rs.getBigDecimal(2));
          if (rs.getBoolean(3)) {
            due.add(rs.getLong(1));
          }
        }
      }
    }
    return live;
  }

  /**
   * Inserts the reports not charged before (nor naming a settled reporter hold); {@code attempt[0]}
   * gets the transaction's id.
   */
  private static Set<String> insertEvents(
      Connection c, List<UsageReport> group, Map<String, HeldBy> holds, long[] attempt)
      throws SQLException {
    if (group.isEmpty()) {
      return new HashSet<>();
    }
    // In report id order: two groups holding the same ids (a resend on another stream) then take
    // their unique-index entries in the same order, so neither can wait for the other in a cycle
    // (no key is locked yet to order them). A commit's rows get their ids in this order.
    List<UsageReport> reports = new ArrayList<>(group);
    reports.sort(Comparator.comparing(UsageReport::reportId));
    int n = reports.size();
    // Typed arrays go in PostgreSQL's binary format (the driver has binary encoders for Long[],
    // String[] and Boolean[], and sends any other Object[] as text for the server to parse);
    // numeric and timestamptz have no binary encoder and stay text.
    String[] reportIds = new String[n];
    Long[] keyIds = new Long[n];
    Object[] costs = new Object[n];
    String[] models = new String[n];
    String[] providers = new String[n];
    Long[] input = new Long[n];
    Long[] output = new Long[n];
    Long[] cached = new Long[n];
    Long[] cacheWrite = new Long[n];
    Object[] occurred = new Object[n];
    String[] requestIds = new String[n];
    Boolean[] estimated = new Boolean[n];
    String[] holdIds = new String[n];
    for (int i = 0; i < n; i++) {
      UsageReport r = reports.get(i);
      reportIds[i] = r.reportId();
      keyIds[i] = r.keyId();
      costs[i] = r.cost();
      models[i] = r.model();
      providers[i] = r.provider();
      input[i] = r.inputTokens();
      output[i] = r.outputTokens();
      cached[i] = r.cachedInputTokens();
      cacheWrite[i] = r.cacheWriteTokens();
      occurred[i] = OffsetDateTime.ofInstant(r.occurredAt(), ZoneOffset.UTC);
      requestIds[i] = r.requestId();
      estimated[i] = r.estimated();
      HeldBy h = holds.get(r.reportId());
      holdIds[i] = h == null ? null : h.holdId();
    }
    Set<String> inserted = new HashSet<>();
    try (PreparedStatement ps = c.prepareStatement(INSERT_EVENTS)) {
      ps.setArray(1, c.createArrayOf("text", reportIds));
      ps.setArray(2, c.createArrayOf("bigint", keyIds));
      ps.setArray(3, c.createArrayOf("numeric", costs));
      ps.setArray(4, c.createArrayOf("text", models));
      ps.setArray(5, c.createArrayOf("text", providers));
      ps.setArray(6, c.createArrayOf("bigint", input));
      ps.setArray(7, c.createArrayOf("bigint", output));
      ps.setArray(8, c.createArrayOf("bigint", cached));
      ps.setArray(9, c.createArrayOf("bigint", cacheWrite));
      ps.setArray(10, c.createArrayOf("timestamptz", occurred));
      ps.setArray(11, c.createArrayOf("text", requestIds));
      ps.setArray(12, c.createArrayOf("boolean", estimated));
      ps.setArray(13, c.createArrayOf("text", holdIds));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          inserted.add(rs.getString(1));
          attempt[0] = rs.getLong(2);
        }
      }
    }
    return inserted;
  }

  /** A report's tokens for the tokens-per-minute limit: input + output, as reported. */
  static long tokenCount(UsageReport r) {
    return addTokens(r.inputTokens(), r.outputTokens());
  }

  /** Adds token counts, at most a bigint (a reporter's counts are validated, never negative). */
  static long addTokens(long a, long b) {
    long s = a + b;
    return s < 0 ? Long.MAX_VALUE / 2 : Math.min(s, Long.MAX_VALUE / 2);
  }

  private static List<KeyRecord> chargeKeys(
      Connection c, Map<Long, BigDecimal> sums, Map<Long, Long> tokens) throws SQLException {
    Long[] ids = new Long[sums.size()];
    Object[] amounts = new Object[sums.size()];
    Long[] counts = new Long[sums.size()];
    int i = 0;
    for (Map.Entry<Long, BigDecimal> e : sums.entrySet()) {
      ids[i] = e.getKey();
      amounts[i] = e.getValue();
      counts[i] = tokens.getOrDefault(e.getKey(), 0L);
      i++;
    }
    List<KeyRecord> rows = new ArrayList<>(sums.size());
    try (PreparedStatement ps = c.prepareStatement(CHARGE_KEYS)) {
      ps.setArray(1, c.createArrayOf("bigint", ids));
      ps.setArray(2, c.createArrayOf("numeric", amounts));
      ps.setArray(3, c.createArrayOf("bigint", counts));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          rows.add(KeyRepository.read(rs));
        }
      }
    }
    return rows;
  }

  private static void notifyAll(Connection c, List<KeyRecord> rows) throws SQLException {
    String[] changes = new String[rows.size()];
    long now = System.currentTimeMillis();
    for (int i = 0; i < changes.length; i++) {
      changes[i] = KeyChange.payload(rows.get(i), now);
    }
    try (PreparedStatement ps = c.prepareStatement(NOTIFY_ALL)) {
      ps.setString(1, KeyRepository.CHANGE_CHANNEL);
      ps.setArray(2, c.createArrayOf("text", changes));
      ps.executeQuery().close();
    }
  }

  /** One ledger row as read back. */
  public record Event(
      long id,
      String reportId,
      long keyId,
      BigDecimal cost,
      String model,
      String provider,
      long inputTokens,
      long outputTokens,
      long cachedInputTokens,
      long cacheWriteTokens,
      Instant occurredAt,
      Instant receivedAt,
      String requestId,
      boolean estimated) {}

  /**
   * A key's events newest first (by received_at, then id): the first page when {@code afterId} is
   * 0, else those listed after the event with that id.
   */
  public List<Event> page(Connection c, long keyId, long afterId, int limit) throws SQLException {
    List<Event> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(afterId == 0 ? FIRST_PAGE : NEXT_PAGE)) {
      int i = 1;
      ps.setLong(i++, keyId);
      if (afterId != 0) {
        ps.setLong(i++, afterId);
      }
      ps.setInt(i, limit);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(
              new Event(
                  rs.getLong("id"),
                  rs.getString("report_id"),
                  rs.getLong("key_id"),
                  rs.getBigDecimal("cost"),
                  rs.getString("model"),
                  rs.getString("provider"),
                  rs.getLong("input_tokens"),
                  rs.getLong("output_tokens"),
                  rs.getLong("cached_input_tokens"),
                  rs.getLong("cache_write_tokens"),
                  KeyRepository.instant(rs, "occurred_at"),
                  KeyRepository.instant(rs, "received_at"),
                  rs.getString("request_id"),
                  rs.getBoolean("estimated")));
        }
      }
    }
    return out;
  }
}
