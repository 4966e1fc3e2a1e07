package io.quotaauthority.keys;

import java.math.BigDecimal;
import java.time.Clock;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The recent usage of every cached key that has a spending window (README "Key policies"), in
 * memory, so that Check sums a window without a query. Keys without one have no entry at all (the
 * cache's 300 B per key is not touched).
 *
 * <p>Per key, a {@link Track}: USD per minute, sorted, for as far back as the key's longest window.
 * It is filled once, when this instance starts tracking the key (one query: the key's ledger rows
 * of that span, summed by the minute they were charged, and in the same statement its lifetime
 * spend), then kept up by every newer row of the key this instance sees: its own charges' rows, and
 * other instances' through the change notifications and the bulk refresh. A row's lifetime spend
 * ({@link KeyRecord#spentUsd}) only ever grows, so its growth since the last row seen is exactly
 * what was charged in between, whichever instance charged it; that growth is charged to the current
 * minute. So a charge counts from the minute an instance learns of it (at once here, within the
 * notification bound elsewhere) and ages out of a window W at the end of that minute plus W: usage
 * is never forgotten early, and at most a minute late.
 *
 * <p>Thread-safe: a track is locked for each read and write (a handful of array operations).
 */
public final class UsageWindows {
  /** Reads a key's usage history: its lifetime spend and, in the same snapshot, its minute sums. */
  public interface History {
    /**
     * @param nowMillis the server's clock now: the minutes returned are in its frame
     * @param minutes how far back: the usage of the last so many minutes
     * @return null when the key is gone
     */
    Read read(long keyId, long nowMillis, int minutes);
  }

  /**
   * A key's lifetime spend and its usage by minute since some instant, as of one snapshot.
   *
   * @param tokens the key's lifetime tokens (input + output)
   * @param minutes minutes since the epoch, ascending
   * @param units USD of each minute, in units of {@link Money#UNIT}
   * @param tokenCounts tokens of each minute
   */
  public record Read(
      BigDecimal spent, long tokens, long[] minutes, long[] units, long[] tokenCounts) {
    /** Without tokens. */
    public Read(BigDecimal spent, long[] minutes, long[] units) {
      this(spent, 0, minutes, units, new long[minutes.length]);
    }
  }

  private static final BigDecimal UNITS_PER_USD = BigDecimal.ONE.movePointRight(Money.SCALE);

  private final ConcurrentHashMap<Long, Track> tracks = new ConcurrentHashMap<>();
  private final History history;
  private final Clock clock;

  public UsageWindows(History history, Clock clock) {
    this.history = history;
    this.clock = clock;
  }

  /** An amount in units of 10^-8 USD, at most Long.MAX_VALUE (about 92 billion USD). */
  public static long units(BigDecimal usd) {
    if (usd.signum() <= 0) {
      return 0;
    }
    BigDecimal u = usd.multiply(UNITS_PER_USD);
    return u.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) >= 0
        ? Long.MAX_VALUE
        : u.setScale(0, java.math.RoundingMode.CEILING).longValue();
  }

  /** Units back to USD. */
  public static BigDecimal usd(long units) {
    return units == 0 ? BigDecimal.ZERO : BigDecimal.valueOf(units, Money.SCALE);
  }

  public static long saturatedAdd(long a, long b) {
    long r = a + b;
    return ((a ^ r) & (b ^ r)) < 0 ? Long.MAX_VALUE : r;
  }

  /** The key's track, or null when this instance does not track it. */
  public Track track(long keyId) {
    return tracks.get(keyId);
  }

  /** How many keys are tracked. */
  public int size() {
    return tracks.size();
  }

  /**
   * Follows a row of the key just read or written: starts tracking a key that has a window (its
   * history read first, on the calling thread, never a Check's), stops for one that no longer has
   * any, and charges the growth of its lifetime spend to the current minute.
   */
  public void follow(KeyRecord row) {
    if (row.deleted() || !row.policies().tracksUsage()) {
      tracks.remove(row.id());
      return;
    }
    SpendWindows windows = row.policies().windows();
    long tpm = row.policies().rates().tokensPerMinute();
    Track t = tracks.get(row.id());
    if (t == null || t.retentionMinutes < retention(windows, tpm)) {
      // Not tracked yet, or a longer window than the track keeps: its history is read (again).
      t = load(row.id(), windows, tpm);
      if (t == null) {
        return;
      }
    } else {
      t.configure(windows, tpm > 0);
    }
    t.observe(row.spentUsd(), row.tokensUsed(), clock.millis());
  }

  private Track load(long keyId, SpendWindows windows, long tpm) {
    int keep = retention(windows, tpm);
    long now = clock.millis();
    Read r = history.read(keyId, now, keep + 1);
    if (r == null) {
      tracks.remove(keyId);
      return null;
    }
    Track t = new Track(keep, windows, tpm > 0, r, now);
    tracks.put(keyId, t);
    return t;
  }

  /** Minutes kept: the longest window (a token limit's is one minute) and the minute it ends in. */
  private static int retention(SpendWindows windows, long tpm) {
    return Math.max(windows.longestMinutes(), tpm > 0 ? 1 : 0) + 1;
  }

  /** Stops tracking a key (evicted from the cache, or deleted). */
  public void drop(long keyId) {
    tracks.remove(keyId);
  }

  /** Stops tracking every key (the cache was cleared). */
  public void clear() {
    tracks.clear();
  }

  /**
   * One key's usage by minute. Entries are sorted by minute and only ever appended at the end (the
   * current minute) or dropped from the front (aged out of every window); each window keeps the
   * index of its first entry still counted and their running sum, so a Check's sum costs no scan.
   */
  public static final class Track {
    private static final SpendWindows.Window[] WINDOWS = SpendWindows.Window.values();

    /** The slot after the four USD windows: tokens of the last minute (tokens_per_minute). */
    static final int TOKENS = WINDOWS.length;

    private final int retentionMinutes;
    private long[] minutes;
    private long[] units;
    private long[] tokens;
    private int head;
    private int size;

    /** Per slot (window ordinal, then TOKENS): index of its first counted entry, and its sum. */
    private final int[] start = new int[WINDOWS.length + 1];

    private final long[] sum = new long[WINDOWS.length + 1];

    /** Which slots the key has. */
    private final boolean[] on = new boolean[WINDOWS.length + 1];

    /** The lifetime spend and tokens of the newest row seen. */
    private BigDecimal lastSpent;

    private long lastTokens;

    /**
     * What an adapter last derived from this track's figures (Check's window and rate headers), so
     * that figures that did not change are not formatted again; opaque here.
     */
    private volatile Object memo;

    Track(int retentionMinutes, SpendWindows windows, boolean tpm, Read r, long nowMillis) {
      this.retentionMinutes = retentionMinutes;
      int n = Math.max(4, r.minutes().length);
      this.minutes = Arrays.copyOf(r.minutes(), n);
      this.units = Arrays.copyOf(r.units(), n);
      this.tokens = Arrays.copyOf(r.tokenCounts(), n);
      this.size = r.minutes().length;
      this.lastSpent = r.spent();
      this.lastTokens = r.tokens();
      configure(windows, tpm);
      advance(nowMillis);
    }

    private static int minutesOf(int k) {
      return k == TOKENS ? 1 : WINDOWS[k].minutes();
    }

    private long value(int k, int i) {
      return k == TOKENS ? tokens[i] : units[i];
    }

    /** Sets which windows count (recounting each from the entries kept). */
    synchronized void configure(SpendWindows windows, boolean tpm) {
      boolean same = on[TOKENS] == tpm;
      for (SpendWindows.Window w : WINDOWS) {
        same &= on[w.ordinal()] == (windows.limit(w) != null);
      }
      if (same) {
        return;
      }
      for (int k = 0; k <= TOKENS; k++) {
        on[k] = k == TOKENS ? tpm : windows.limit(WINDOWS[k]) != null;
        start[k] = head;
        long s = 0;
        for (int i = head; i < size; i++) {
          s = saturatedAdd(s, value(k, i));
        }
        sum[k] = s;
      }
      // Aged entries are dropped by the next advance.
    }

    /** A newer row's lifetime spend and tokens: their growth is charged to the current minute. */
    synchronized void observe(BigDecimal spent, long tokenTotal, long nowMillis) {
      long grown = 0;
      if (spent.compareTo(lastSpent) > 0) {
        grown = units(spent.subtract(lastSpent));
        lastSpent = spent;
      }
      long grownTokens = 0;
      if (tokenTotal > lastTokens) {
        grownTokens = tokenTotal - lastTokens;
        lastTokens = tokenTotal;
      }
      add(Math.floorDiv(nowMillis, 60_000L), grown, grownTokens);
    }

    /**
     * Charges {@code amount} units to {@code minute} (a later minute than any kept, or the last).
     */
    synchronized void add(long minute, long amount) {
      add(minute, amount, 0);
    }

    private void add(long minute, long amount, long tokenCount) {
      if (amount == 0 && tokenCount == 0) {
        return;
      }
      if (size > head && minutes[size - 1] >= minute) {
        // The same minute (or a clock that went back): counted with the last entry, which ages out
        // no earlier.
        units[size - 1] = saturatedAdd(units[size - 1], amount);
        tokens[size - 1] = saturatedAdd(tokens[size - 1], tokenCount);
      } else {
        if (size == minutes.length) {
          grow();
        }
        minutes[size] = minute;
        units[size] = amount;
        tokens[size] = tokenCount;
        size++;
      }
      for (int k = 0; k <= TOKENS; k++) {
        if (on[k]) {
          sum[k] = saturatedAdd(sum[k], k == TOKENS ? tokenCount : amount);
        }
      }
    }

    private void grow() {
      int live = size - head;
      if (head > 0 && live < minutes.length / 2) {
        // Room at the front: shift down rather than grow.
        System.arraycopy(minutes, head, minutes, 0, live);
        System.arraycopy(units, head, units, 0, live);
        System.arraycopy(tokens, head, tokens, 0, live);
        for (int k = 0; k < start.length; k++) {
          start[k] = Math.max(0, start[k] - head);
        }
        size = live;
        head = 0;
        return;
      }
      minutes = Arrays.copyOf(minutes, minutes.length * 2);
      units = Arrays.copyOf(units, units.length * 2);
      tokens = Arrays.copyOf(tokens, tokens.length * 2);
    }

    /** When an entry of {@code minute} leaves a window of {@code windowMinutes}: ms since epoch. */
    static long agesOutAt(long minute, int windowMinutes) {
      return (minute + 1 + windowMinutes) * 60_000L;
    }

    /** Drops what aged out of each window by {@code nowMillis}. */
    private void advance(long nowMillis) {
      int first = size;
      for (int k = 0; k <= TOKENS; k++) {
        if (!on[k]) {
          continue;
        }
        int w = minutesOf(k);
        int i = Math.max(start[k], head);
        long s = sum[k];
        while (i < size && agesOutAt(minutes[i], w) <= nowMillis) {
          s -= value(k, i);
          i++;
        }
        start[k] = i;
        sum[k] = Math.max(0, s);
        first = Math.min(first, i);
      }
      head = Math.max(head, first);
      if (head == size) {
        head = 0;
        size = 0;
        Arrays.fill(start, 0);
      }
    }

    /** Where {@link #figures} puts the last minute's tokens; before it, the windows' figures. */
    public static final int FIGURE_TOKENS = 2 * WINDOWS.length;

    /** The length of {@link #figures}' array. */
    public static final int FIGURES = FIGURE_TOKENS + 1;

    /**
     * Everything Check reads of the track at {@code now}, under one lock: by window ordinal the
     * units spent in it (0 in a window the key does not have), then by window ordinal when its
     * oldest usage ages out (ms, -1 when it holds none or the key has no such window), then the
     * last minute's tokens (0 without a token limit).
     */
    public synchronized long[] figures(long nowMillis) {
      advance(nowMillis);
      long[] out = new long[FIGURES];
      int n = WINDOWS.length;
      for (int k = 0; k < n; k++) {
        // A window the key does not have is not kept up to date: nothing is spent in it.
        out[k] = on[k] ? sum[k] : 0;
        out[n + k] =
            on[k] && start[k] < size ? agesOutAt(minutes[start[k]], WINDOWS[k].minutes()) : -1;
      }
      out[FIGURE_TOKENS] = on[TOKENS] ? sum[TOKENS] : 0;
      return out;
    }

    /** Fills {@code out} (by window ordinal) with the units spent in each window at {@code now}. */
    public synchronized void spent(long nowMillis, long[] out) {
      advance(nowMillis);
      System.arraycopy(sum, 0, out, 0, WINDOWS.length);
    }

    /**
     * When the tokens counted fall below {@code limit}: the instant (ms) the oldest that must go
     * has aged out.
     */
    public synchronized long tokensBelowAt(long limit, long nowMillis) {
      advance(nowMillis);
      long left = sum[TOKENS];
      for (int i = start[TOKENS]; i < size; i++) {
        left -= tokens[i];
        if (left < limit) {
          return agesOutAt(minutes[i], 1);
        }
      }
      return agesOutAt(Math.floorDiv(nowMillis, 60_000L), 1);
    }

    /**
     * When window {@code w} will have less than {@code limitUnits} spent in it, with {@code
     * pendingUnits} not yet committed counted as spent now: the instant (ms) the oldest usage that
     * must go has aged out. Pending usage ages out with the current minute's.
     */
    public synchronized long belowAt(
        SpendWindows.Window w, long limitUnits, long pendingUnits, long nowMillis) {
      advance(nowMillis);
      int k = w.ordinal();
      long left = saturatedAdd(sum[k], pendingUnits);
      for (int i = start[k]; i < size; i++) {
        left -= units[i];
        if (left < limitUnits) {
          return agesOutAt(minutes[i], w.minutes());
        }
      }
      return agesOutAt(Math.floorDiv(nowMillis, 60_000L), w.minutes());
    }

    public Object memo() {
      return memo;
    }

    public void memo(Object value) {
      this.memo = value;
    }

    /** Minutes with usage kept (for tests and the memory figure). */
    public synchronized int entries() {
      return size - head;
    }
  }
}
