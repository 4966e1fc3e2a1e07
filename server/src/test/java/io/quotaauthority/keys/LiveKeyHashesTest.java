package io.quotaauthority.keys;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class LiveKeyHashesTest {
  private static final Random RANDOM = new Random(12);

  private static byte[] digest() {
    byte[] d = new byte[32];
    RANDOM.nextBytes(d);
    return d;
  }

  /** Sorted as PostgreSQL sorts bytea: unsigned bytes, lexicographically. */
  private static List<byte[]> sortedDigests(int n) {
    List<byte[]> all = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      all.add(digest());
    }
    all.sort(Comparator.comparing(d -> HexFormat.of().formatHex(d)));
    return all;
  }

  private static LiveKeyHashes loaded(List<byte[]> digests) {
    LiveKeyHashes set = new LiveKeyHashes();
    LiveKeyHashes.Loader loader = set.beginLoad();
    digests.forEach(loader::add);
    set.finish(loader);
    return set;
  }

  @Test
  void contains_loadedInDatabaseOrder_everyLoadedHashAndNoOther() {
    List<byte[]> digests = sortedDigests(5_000);
    LiveKeyHashes set = loaded(digests);
    assertThat(set.size()).isEqualTo(5_000);
    for (byte[] d : digests) {
      assertThat(set.contains(KeyHash.of(d))).isTrue();
    }
    for (int i = 0; i < 5_000; i++) {
      assertThat(set.contains(KeyHash.of(digest()))).isFalse();
    }
  }

  @Test
  void contains_loadedOutOfOrderWithRepeats_sortedAndDeduplicated() {
    List<byte[]> digests = new ArrayList<>(sortedDigests(300));
    Collections.shuffle(digests, RANDOM);
    digests.add(digests.get(0));
    // Bytes with the top bit set: signed comparison would put them first, unsigned last.
    byte[] high = digest();
    high[0] = (byte) 0xff;
    digests.add(high);
    LiveKeyHashes set = loaded(digests);
    assertThat(set.size()).isEqualTo(301);
    for (byte[] d : digests) {
      assertThat(set.contains(KeyHash.of(d))).isTrue();
    }
  }

  @Test
  void addRemove_afterLoad_followTheChanges() {
    List<byte[]> digests = sortedDigests(100);
    LiveKeyHashes set = loaded(digests);
    KeyHash fresh = KeyHash.of(digest());
    KeyHash old = KeyHash.of(digests.get(50));

    assertThat(set.add(fresh)).as("a new key").isTrue();
    assertThat(set.add(fresh)).as("seen already").isFalse();
    assertThat(set.add(old)).as("loaded already").isFalse();
    set.remove(old);
    set.remove(fresh);

    assertThat(set.contains(fresh)).isFalse();
    assertThat(set.contains(old)).isFalse();
    assertThat(set.contains(KeyHash.of(digests.get(49)))).isTrue();
    assertThat(set.size()).isEqualTo(99);
  }

  @Test
  void finish_changesMadeDuringTheLoad_replayedOntoTheNewSet() {
    List<byte[]> digests = sortedDigests(10);
    LiveKeyHashes set = loaded(digests);
    LiveKeyHashes.Loader loader = set.beginLoad();
    // The load's snapshot predates both changes: it still has the deleted key, not the new one.
    digests.forEach(loader::add);
    KeyHash created = KeyHash.of(digest());
    KeyHash deleted = KeyHash.of(digests.get(3));
    set.add(created);
    set.remove(deleted);
    set.finish(loader);

    assertThat(set.contains(created)).isTrue();
    assertThat(set.contains(deleted)).isFalse();
    assertThat(set.size()).isEqualTo(10);
  }

  @Test
  void abandon_failedLoad_keepsTheSetHeldBefore() {
    List<byte[]> digests = sortedDigests(10);
    LiveKeyHashes set = loaded(digests);
    LiveKeyHashes.Loader loader = set.beginLoad();
    loader.add(digest());
    set.abandon();
    assertThat(set.size()).isEqualTo(10);
    assertThat(set.contains(KeyHash.of(digests.get(9)))).isTrue();
  }
}
