package io.quotaauthority.keys;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The hash of every live (not deleted) key, in memory, so that a key nobody issued is answered 401
 * without a query. Compact: the bulk of it is one sorted {@code long[]} of four longs per key
 * (1,000,000 keys = 32 MB), searched by bisection; changes since the last bulk load sit in two
 * small concurrent sets (added, removed) until the next load folds them in.
 *
 * <p>Reads are lock-free. Writes (admin changes on this instance, the listener's re-reads) are rare
 * and serialised on a lock. While a bulk load runs, every write is also journalled and replayed
 * onto the new set when it is swapped in, so a key created during the load is not lost.
 *
 * <p>Whether the set may be trusted (it is complete only once loaded while change notifications
 * were being heard) is {@link KeySetCompleteness}'s business, not this class's.
 */
public final class LiveKeyHashes {
  private static final long[] NONE = new long[0];

  /** The sorted base and the changes made since it was loaded. */
  private static final class Snapshot {
    final long[] base;
    final int count;
    final Set<KeyHash> added = ConcurrentHashMap.newKeySet();
    final Set<KeyHash> removed = ConcurrentHashMap.newKeySet();

    Snapshot(long[] base, int count) {
      this.base = base;
      this.count = count;
    }

    boolean inBase(KeyHash h) {
      int lo = 0;
      int hi = count - 1;
      while (lo <= hi) {
        int mid = (lo + hi) >>> 1;
        int cmp = compare(base, mid, h);
        if (cmp < 0) {
          lo = mid + 1;
        } else if (cmp > 0) {
          hi = mid - 1;
        } else {
          return true;
        }
      }
      return false;
    }

    boolean contains(KeyHash h) {
      // The base first: most lookups of a live key end there, and `removed` is nearly always empty.
      if (inBase(h)) {
        return removed.isEmpty() || !removed.contains(h);
      }
      return !added.isEmpty() && added.contains(h);
    }

    /** Applies one change; true if the hash was not live before (only meaningful for add). */
    boolean apply(KeyHash h, boolean add) {
      if (add) {
        if (inBase(h)) {
          return removed.remove(h);
        }
        return added.add(h);
      }
      added.remove(h);
      if (inBase(h)) {
        removed.add(h);
      }
      return false;
    }

    int size() {
      return count - removed.size() + added.size();
    }
  }

  private record Change(KeyHash hash, boolean add) {}

  private volatile Snapshot current = new Snapshot(NONE, 0);
  private final Object lock = new Object();

  /** Non-null while a bulk load runs: the writes to replay onto the loaded set. */
  private List<Change> journal;

  public boolean contains(KeyHash hash) {
    return current.contains(hash);
  }

  /** Marks a hash live; true if it was not live before (a key this set had not seen). */
  public boolean add(KeyHash hash) {
    synchronized (lock) {
      if (journal != null) {
        journal.add(new Change(hash, true));
      }
      return current.apply(hash, true);
    }
  }

  /** Marks a hash no longer live (its key was deleted). */
  public void remove(KeyHash hash) {
    synchronized (lock) {
      if (journal != null) {
        journal.add(new Change(hash, false));
      }
      current.apply(hash, false);
    }
  }

  /** Live hashes held now. */
  public int size() {
    return current.size();
  }

  /**
   * Starts a bulk load: hashes go into the returned loader, and writes made meanwhile are kept so
   * that {@link #finish} can replay them. One load at a time (the listener thread runs them).
   */
  public Loader beginLoad() {
    synchronized (lock) {
      journal = new ArrayList<>();
    }
    return new Loader();
  }

  /** Swaps the loaded set in, then replays every write made during the load onto it. */
  public void finish(Loader loader) {
    Snapshot fresh = loader.build();
    synchronized (lock) {
      List<Change> during = journal;
      journal = null;
      if (during != null) {
        for (Change c : during) {
          fresh.apply(c.hash(), c.add());
        }
      }
      current = fresh;
    }
  }

  /** Gives up a load that failed; the set held before stays. */
  public void abandon() {
    synchronized (lock) {
      journal = null;
    }
  }

  /** Collects the hashes of one bulk load. */
  public static final class Loader {
    private long[] words = new long[4 * 1024];
    private int count;

    private Loader() {}

    /** Adds the 32-byte SHA-256 of one live key (as stored in api_keys.key_hash). */
    public void add(byte[] digest) {
      KeyHash h = KeyHash.of(digest);
      if (4 * (count + 1) > words.length) {
        // Grow by half: a million keys never holds more than 1.5 times the final array at once.
        words = Arrays.copyOf(words, Math.max(4 * (count + 1), words.length + words.length / 2));
      }
      for (int i = 0; i < 4; i++) {
        words[4 * count + i] = h.word(i);
      }
      count++;
    }

    public int count() {
      return count;
    }

    Snapshot build() {
      if (!strictlyAscending()) {
        // The query asks for key_hash order (bytea compares as unsigned bytes, which is our order
        // too); should a collation or plan ever break that, sort here rather than trust it.
        sortAndDedupe();
      }
      return new Snapshot(
          words.length == 4 * count ? words : Arrays.copyOf(words, 4 * count), count);
    }

    private boolean strictlyAscending() {
      for (int i = 1; i < count; i++) {
        if (compare(words, i - 1, words, i) >= 0) {
          return false;
        }
      }
      return true;
    }

    private void sortAndDedupe() {
      KeyHash[] all = new KeyHash[count];
      for (int i = 0; i < count; i++) {
        all[i] =
            KeyHash.ofLongs(words[4 * i], words[4 * i + 1], words[4 * i + 2], words[4 * i + 3]);
      }
      Arrays.sort(all, ORDER);
      int n = 0;
      for (int i = 0; i < all.length; i++) {
        if (n > 0 && ORDER.compare(all[i], all[n - 1]) == 0) {
          continue;
        }
        all[n++] = all[i];
      }
      long[] sorted = new long[4 * n];
      for (int i = 0; i < n; i++) {
        for (int w = 0; w < 4; w++) {
          sorted[4 * i + w] = all[i].word(w);
        }
      }
      words = sorted;
      count = n;
    }
  }

  private static final Comparator<KeyHash> ORDER =
      (x, y) -> {
        for (int w = 0; w < 4; w++) {
          int c = Long.compareUnsigned(x.word(w), y.word(w));
          if (c != 0) {
            return c;
          }
        }
        return 0;
      };

  /** Unsigned order, word by word: the same as comparing the 32 bytes as PostgreSQL does. */
  private static int compare(long[] words, int index, KeyHash h) {
    for (int w = 0; w < 4; w++) {
      int c = Long.compareUnsigned(words[4 * index + w], h.word(w));
      if (c != 0) {
        return c;
      }
    }
    return 0;
  }

  private static int compare(long[] x, int i, long[] y, int j) {
    for (int w = 0; w < 4; w++) {
      int c = Long.compareUnsigned(x[4 * i + w], y[4 * j + w]);
      if (c != 0) {
        return c;
      }
    }
    return 0;
  }
}
