package io.quotaauthority.keys;

import java.math.BigDecimal;
import java.util.Arrays;
import java.util.Locale;

/**
 * A key's rolling spending windows (README "Key policies"): at most so many USD in any 5 hours, 1
 * day, 7 days or 30 days. Each is optional; zero means no such window. Immutable; part of {@link
 * KeyPolicies}, so of the key's row and its version.
 */
public final class SpendWindows {
  /** The four windows, shortest first: the order Check tries them in. */
  public enum Window {
    H5("5h", 5 * 60),
    D1("1d", 24 * 60),
    D7("7d", 7 * 24 * 60),
    D30("30d", 30 * 24 * 60);

    private final String label;
    private final int minutes;

    Window(String label, int minutes) {
      this.label = label;
      this.minutes = minutes;
    }

    /** "5h", "1d", "7d", "30d": as the CLI, the body and the headers name it. */
    public String label() {
      return label;
    }

    public int minutes() {
      return minutes;
    }

    /** The field's name on the wire and in the store: window_5h_usd. */
    public String field() {
      return "window_" + label + "_usd";
    }

    /** A label as the CLI takes it; IllegalArgumentException naming {@code field} otherwise. */
    public static Window parse(String field, String label) {
      for (Window w : values()) {
        if (w.label.equals(label.toLowerCase(Locale.ROOT))) {
          return w;
        }
      }
      throw new IllegalArgumentException(
          field
              + " has unknown window '"
              + PeriodBudget.Shown.cut(label)
              + "'; allowed: 5h, 1d, 7d, 30d");
    }
  }

  private static final Window[] WINDOWS = Window.values();

  /** No window at all, shared by every key without one. */
  public static final SpendWindows NONE = new SpendWindows(new BigDecimal[WINDOWS.length]);

  /** Per window (by ordinal), the limit in USD, or null for none. */
  private final BigDecimal[] limits;

  /** Per window (by ordinal), the limit in units of {@link Money#UNIT}, 0 for none: Check's. */
  private final long[] limitUnits;

  /** The longest window set, in minutes; 0 for none. */
  private final int longestMinutes;

  private SpendWindows(BigDecimal[] limits) {
    this.limits = limits;
    this.limitUnits = new long[WINDOWS.length];
    int longest = 0;
    for (Window w : WINDOWS) {
      if (limits[w.ordinal()] != null) {
        longest = Math.max(longest, w.minutes());
        limitUnits[w.ordinal()] = UsageWindows.units(limits[w.ordinal()]);
      }
    }
    this.longestMinutes = longest;
  }

  /**
   * From the four amounts (stored or validated), zero or null meaning none; {@link #NONE} when all
   * are.
   */
  public static SpendWindows of(BigDecimal h5, BigDecimal d1, BigDecimal d7, BigDecimal d30) {
    BigDecimal[] l = {unset(h5), unset(d1), unset(d7), unset(d30)};
    for (BigDecimal b : l) {
      if (b != null) {
        return new SpendWindows(l);
      }
    }
    return NONE;
  }

  private static BigDecimal unset(BigDecimal b) {
    return b == null || b.signum() == 0 ? null : KeyState.compact(b);
  }

  /** The same windows with {@code w} set to {@code limit} (zero removes it). */
  public SpendWindows with(Window w, BigDecimal limit) {
    BigDecimal[] l = limits.clone();
    l[w.ordinal()] = limit;
    return of(l[0], l[1], l[2], l[3]);
  }

  public boolean active() {
    return longestMinutes > 0;
  }

  /** The limit of {@code w} in USD, or null when the key has no such window. */
  public BigDecimal limit(Window w) {
    return limits[w.ordinal()];
  }

  /**
   * The limit of {@code w} in units of {@link Money#UNIT}, or 0 when the key has no such window.
   */
  public long limitUnits(Window w) {
    return limitUnits[w.ordinal()];
  }

  /** The limit as stored: zero for none. */
  public BigDecimal stored(Window w) {
    BigDecimal l = limits[w.ordinal()];
    return l == null ? BigDecimal.ZERO : l;
  }

  /** The longest window set, in minutes (how much usage the key's tracking keeps); 0 for none. */
  public int longestMinutes() {
    return longestMinutes;
  }

  /**
   * The first window (shortest first) whose spend, with {@code pending} usage not yet committed,
   * has reached its limit, or null when none has.
   *
   * @param spentUnits per window (by ordinal) the USD spent in it, in units of {@link Money#UNIT}
   */
  public Window exceeded(long[] spentUnits, BigDecimal pending) {
    if (!active()) {
      return null;
    }
    long pendingUnits = UsageWindows.units(pending);
    for (Window w : WINDOWS) {
      long l = limitUnits[w.ordinal()];
      // A set limit is at least one unit: 0 is no window.
      if (l > 0 && UsageWindows.saturatedAdd(spentUnits[w.ordinal()], pendingUnits) >= l) {
        return w;
      }
    }
    return null;
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof SpendWindows s)) {
      return false;
    }
    for (Window w : WINDOWS) {
      BigDecimal a = limits[w.ordinal()];
      BigDecimal b = s.limits[w.ordinal()];
      if (a == null ? b != null : b == null || a.compareTo(b) != 0) {
        return false;
      }
    }
    return true;
  }

  @Override
  public int hashCode() {
    int h = 0;
    for (BigDecimal b : limits) {
      h = h * 31 + (b == null ? 0 : b.stripTrailingZeros().hashCode());
    }
    return h;
  }

  @Override
  public String toString() {
    return "SpendWindows" + Arrays.toString(limits);
  }
}
