package io.quotaauthority.usage;

import io.quotaauthority.keys.Money;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@link LeaseStore} in memory, as store.LeaseRepository does it in PostgreSQL: a grant only while
 * quota − used − leased ≥ slice, leased always the sum of the key's leases, expiry on its own
 * clock. It also charges usage as UsageRepository#commitGroup does for a held report ({@link
 * #charge}).
 */
public final class MemoryLeaseStore implements LeaseStore {
  private record Id(long keyId, String instanceId) {}

  private static final class Key {
    BigDecimal quota;
    BigDecimal used = BigDecimal.ZERO;
    BigDecimal leased = BigDecimal.ZERO;
  }

  private static final class Row {
    BigDecimal amount = BigDecimal.ZERO;
    Instant expiresAt;
  }

  private final Clock clock;
  private final Map<Long, Key> keys = new HashMap<>();
  private final Map<Id, Row> rows = new LinkedHashMap<>();
  public int takes;

  public MemoryLeaseStore(Clock clock) {
    this.clock = clock;
  }

  public synchronized MemoryLeaseStore key(long id, String quota, String used) {
    Key k = new Key();
    k.quota = new BigDecimal(quota);
    k.used = new BigDecimal(used);
    keys.put(id, k);
    return this;
  }

  public synchronized BigDecimal used(long id) {
    return keys.get(id).used;
  }

  public synchronized BigDecimal leased(long id) {
    return keys.get(id).leased;
  }

  synchronized BigDecimal lease(long id, String instanceId) {
    Row r = rows.get(new Id(id, instanceId));
    return r == null ? BigDecimal.ZERO : r.amount;
  }

  /** quota_used + leased ≤ quota, and leased is the sum of the key's leases. */
  public synchronized boolean consistent(long id) {
    Key k = keys.get(id);
    BigDecimal sum = BigDecimal.ZERO;
    for (Map.Entry<Id, Row> e : rows.entrySet()) {
      if (e.getKey().keyId() == id) {
        sum = sum.add(e.getValue().amount);
      }
    }
    return sum.compareTo(k.leased) == 0 && k.used.add(k.leased).compareTo(k.quota) <= 0;
  }

  /** A held report charged: cost to used, min(cost, hold, lease) off the lease; returns that. */
  public synchronized BigDecimal charge(
      long id, String instanceId, BigDecimal cost, BigDecimal hold) {
    Key k = keys.get(id);
    k.used = k.used.add(cost);
    Row r = rows.get(new Id(id, instanceId));
    BigDecimal drawn = r == null ? BigDecimal.ZERO : cost.min(hold).min(r.amount);
    if (r != null) {
      r.amount = r.amount.subtract(drawn);
    }
    k.leased = k.leased.subtract(drawn);
    return drawn;
  }

  @Override
  public synchronized Grant take(long keyId, String instanceId, BigDecimal slice, Duration ttl) {
    takes++;
    Key k = keys.get(keyId);
    Id id = new Id(keyId, instanceId);
    BigDecimal lease = rows.containsKey(id) ? rows.get(id).amount : BigDecimal.ZERO;
    if (k == null) {
      return new Grant(Grant.Outcome.NO_KEY, BigDecimal.ZERO, lease);
    }
    if (k.quota.signum() == 0) {
      return new Grant(Grant.Outcome.UNLIMITED, BigDecimal.ZERO, lease);
    }
    BigDecimal remaining = k.quota.subtract(k.used).subtract(k.leased);
    if (remaining.compareTo(slice) < 0) {
      return new Grant(Grant.Outcome.TOO_LITTLE, remaining.max(BigDecimal.ZERO), lease);
    }
    k.leased = k.leased.add(slice);
    Row r = rows.computeIfAbsent(id, x -> new Row());
    r.amount = r.amount.add(slice);
    Instant until = clock.instant().plus(ttl);
    r.expiresAt = r.expiresAt == null || until.isAfter(r.expiresAt) ? until : r.expiresAt;
    return new Grant(Grant.Outcome.GRANTED, remaining.subtract(slice), r.amount);
  }

  @Override
  public synchronized BigDecimal giveBack(long keyId, String instanceId, BigDecimal amount) {
    Id id = new Id(keyId, instanceId);
    Row r = rows.get(id);
    if (r == null) {
      return BigDecimal.ZERO;
    }
    BigDecimal given = r.amount.min(amount);
    r.amount = r.amount.subtract(given);
    if (r.amount.signum() == 0) {
      rows.remove(id);
    }
    keys.get(keyId).leased = keys.get(keyId).leased.subtract(given);
    return given;
  }

  @Override
  public synchronized Map<Long, BigDecimal> renew(String instanceId, Duration ttl) {
    Map<Long, BigDecimal> out = new LinkedHashMap<>();
    Instant until = clock.instant().plus(ttl);
    for (Map.Entry<Id, Row> e : rows.entrySet()) {
      if (e.getKey().instanceId().equals(instanceId)) {
        if (until.isAfter(e.getValue().expiresAt)) {
          e.getValue().expiresAt = until;
        }
        out.put(e.getKey().keyId(), e.getValue().amount);
      }
    }
    return out;
  }

  @Override
  public synchronized int reapExpired(Instant now) {
    int n = 0;
    for (Iterator<Map.Entry<Id, Row>> it = rows.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<Id, Row> e = it.next();
      if (!e.getValue().expiresAt.isAfter(now)) {
        Key k = keys.get(e.getKey().keyId());
        k.leased = k.leased.subtract(e.getValue().amount);
        it.remove();
        n++;
      }
    }
    return n;
  }

  static BigDecimal usd(String s) {
    return new BigDecimal(s).setScale(Money.SCALE);
  }
}
