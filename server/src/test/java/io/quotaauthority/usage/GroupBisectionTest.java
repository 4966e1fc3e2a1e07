package io.quotaauthority.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** GroupBisection over an in-memory ledger that fails, whole, any piece holding a chosen report. */
class GroupBisectionTest {

  /** Commits a piece whole (appends it) unless it holds a poison report; counts transactions. */
  private static final class Ledger implements GroupBisection.Ledger<Integer, List<Integer>> {
    final Set<Integer> poison;
    final List<Integer> committed = new ArrayList<>();
    int transactions;

    Ledger(Set<Integer> poison) {
      this.poison = poison;
    }

    @Override
    public List<Integer> commit(List<Integer> piece) {
      transactions++;
      for (Integer r : piece) {
        if (poison.contains(r)) {
          throw new IllegalStateException("poison " + r);
        }
      }
      committed.addAll(piece);
      return List.copyOf(piece);
    }
  }

  static Stream<Arguments> groups() {
    return Stream.of(
        // size, poison reports, most transactions allowed
        Arguments.of(1, Set.of(), 1),
        Arguments.of(1, Set.of(0), 1),
        Arguments.of(100, Set.of(), 1),
        Arguments.of(101, Set.of(0), 15),
        Arguments.of(101, Set.of(50), 15),
        Arguments.of(101, Set.of(100), 15),
        Arguments.of(2000, Set.of(1234), 23),
        Arguments.of(2000, Set.of(0, 1999), 45),
        Arguments.of(2000, Set.of(7, 8, 9), 70),
        Arguments.of(7, Set.of(0, 1, 2, 3, 4, 5, 6), 13));
  }

  @ParameterizedTest
  @MethodSource("groups")
  void commit_poisonReports_onlyThoseFailAndTheRestCommitOnceInOrder(
      int size, Set<Integer> poison, int maxTransactions) throws Exception {
    List<Integer> group = IntStream.range(0, size).boxed().toList();
    Ledger ledger = new Ledger(poison);

    List<GroupBisection.Piece<Integer, List<Integer>>> pieces =
        GroupBisection.commit(group, ledger);

    List<Integer> expectedCommitted = group.stream().filter(r -> !poison.contains(r)).toList();
    // Every good report committed exactly once, in group order.
    assertThat(ledger.committed).containsExactlyElementsOf(expectedCommitted);
    // The pieces cover the group once, in order.
    assertThat(pieces.stream().flatMap(p -> p.reports().stream()).toList())
        .containsExactlyElementsOf(group);
    List<Integer> failed =
        pieces.stream()
            .filter(GroupBisection.Piece::failed)
            .flatMap(p -> p.reports().stream())
            .toList();
    assertThat(failed).containsExactlyInAnyOrderElementsOf(poison);
    for (GroupBisection.Piece<Integer, List<Integer>> p : pieces) {
      if (p.failed()) {
        assertThat(p.reports()).hasSize(1);
        assertThat(p.committed()).isNull();
        assertThat(p.failure()).hasMessage("poison " + p.reports().get(0));
      } else {
        assertThat(p.committed()).isEqualTo(p.reports());
      }
    }
    assertThat(ledger.transactions).isLessThanOrEqualTo(maxTransactions);
  }

  @Test
  void commit_noPoison_oneTransactionOnePiece() throws Exception {
    Ledger ledger = new Ledger(Set.of());
    var pieces = GroupBisection.commit(List.of(1, 2, 3), ledger);
    assertThat(pieces).hasSize(1);
    assertThat(ledger.transactions).isEqualTo(1);
  }

  @Test
  void commit_emptyGroup_noTransaction() throws Exception {
    Ledger ledger = new Ledger(Set.of());
    assertThat(GroupBisection.commit(List.of(), ledger)).isEmpty();
    assertThat(ledger.transactions).isZero();
  }

  @Test
  void commit_ledgerInterrupted_propagatesAndKeepsEarlierPiecesCommitted() {
    List<Integer> committed = new ArrayList<>();
    GroupBisection.Ledger<Integer, Integer> ledger =
        piece -> {
          if (piece.size() == 4) {
            throw new IllegalStateException("whole group fails");
          }
          if (piece.contains(2)) {
            throw new InterruptedException("shutting down");
          }
          committed.addAll(piece);
          return piece.size();
        };
    assertThatThrownBy(() -> GroupBisection.commit(List.of(0, 1, 2, 3), ledger))
        .isInstanceOf(InterruptedException.class);
    assertThat(committed).containsExactly(0, 1);
  }
}
