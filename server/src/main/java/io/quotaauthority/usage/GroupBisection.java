package io.quotaauthority.usage;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Commits a group of reports so that one bad report never voids the others: the whole group is
 * tried first (one transaction, the common case); when the ledger fails on it, the group is split
 * in halves and each half is tried the same way, until only the reports the ledger fails on alone
 * are left. k bad reports in a group of n cost about 2·k·log2(n) extra transactions.
 *
 * <p>Pieces are committed left before right, so reports are charged in group order, and each report
 * ends up in exactly one piece. The ledger must commit a piece whole or not at all (one
 * transaction) and must itself wait out an unreachable database rather than throw: a failure seen
 * here is taken to be about the reports, and is worth splitting.
 */
public final class GroupBisection {
  private GroupBisection() {}

  /** Commits one piece in one transaction, or throws having committed nothing. */
  @FunctionalInterface
  public interface Ledger<R, C> {
    C commit(List<R> piece) throws InterruptedException;
  }

  /**
   * One piece of the group, in commit order: reports committed together ({@code committed} is the
   * ledger's result, {@code failure} null), or a single report the ledger refused alone ({@code
   * committed} null).
   */
  public record Piece<R, C>(List<R> reports, C committed, RuntimeException failure) {
    public boolean failed() {
      return failure != null;
    }
  }

  /**
   * @param group the reports, in the order they should be charged
   * @return the pieces in commit order; together they hold each report of the group once
   * @throws InterruptedException from the ledger; pieces committed before stay committed
   */
  public static <R, C> List<Piece<R, C>> commit(List<R> group, Ledger<R, C> ledger)
      throws InterruptedException {
    List<Piece<R, C>> pieces = new ArrayList<>();
    if (group.isEmpty()) {
      return pieces;
    }
    // A stack of pieces still to try; the left half is pushed last so it is tried first.
    Deque<List<R>> todo = new ArrayDeque<>();
    todo.push(group);
    while (!todo.isEmpty()) {
      List<R> piece = todo.pop();
      try {
        pieces.add(new Piece<>(piece, ledger.commit(piece), null));
      } catch (RuntimeException e) {
        if (piece.size() == 1) {
          pieces.add(new Piece<>(piece, null, e));
        } else {
          int half = piece.size() / 2;
          // Copies: subList views would pin the whole group and break if the caller changed it.
          todo.push(new ArrayList<>(piece.subList(half, piece.size())));
          todo.push(new ArrayList<>(piece.subList(0, half)));
        }
      }
    }
    return pieces;
  }
}
