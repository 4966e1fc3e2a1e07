package io.quotaauthority.admin;

import static io.quotaauthority.admin.AdminFixtures.create;
import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc.KeyAdminServiceBlockingStub;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.ListKeysResponse;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * ListKeys keyset paging, checked against the live rows in the database. The first test sees the
 * seven keys made at start; later ones delete and add keys, so they compare with the live rows.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class KeyAdminListIT {
  private static TestDatabase db;
  private static TestServer server;
  private static KeyAdminServiceBlockingStub admin;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
    admin = server.admin();
    for (int i = 1; i <= 7; i++) {
      create(admin, "key-" + i, Integer.toString(i));
    }
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  private static ListKeysResponse page(int size, String token) {
    return admin.listKeys(
        ListKeysRequest.newBuilder().setPageSize(size).setPageToken(token).build());
  }

  private static List<String> liveIds() {
    return db.transactions()
        .inTransaction(
            c -> {
              List<String> ids = new ArrayList<>();
              try (var rs =
                  c.createStatement()
                      .executeQuery(
                          "SELECT id FROM api_keys WHERE deleted_at IS NULL ORDER BY id")) {
                while (rs.next()) {
                  ids.add(Long.toString(rs.getLong(1)));
                }
              }
              return ids;
            });
  }

  /** Page sizes of a full walk, and the ids seen in order. */
  private static List<List<String>> walk(int size) {
    List<List<String>> pages = new ArrayList<>();
    String token = "";
    do {
      ListKeysResponse r = page(size, token);
      pages.add(r.getKeysList().stream().map(ApiKey::getId).toList());
      token = r.getNextPageToken();
      assertThat(pages).hasSizeLessThan(1000);
    } while (!token.isEmpty());
    return pages;
  }

  @Test
  @Order(1)
  void listKeys_sevenKeysPagesOfThree_threeThreeOneLastTokenEmpty() {
    ListKeysResponse p1 = page(3, "");
    ListKeysResponse p2 = page(3, p1.getNextPageToken());
    ListKeysResponse p3 = page(3, p2.getNextPageToken());

    assertThat(p1.getKeysList())
        .extracting(ApiKey::getName)
        .containsExactly("key-1", "key-2", "key-3");
    assertThat(p2.getKeysList())
        .extracting(ApiKey::getName)
        .containsExactly("key-4", "key-5", "key-6");
    assertThat(p3.getKeysList()).extracting(ApiKey::getName).containsExactly("key-7");
    assertThat(p3.getKeys(0).getQuotaUsd()).isEqualTo("7");
    assertThat(p1.getNextPageToken()).isNotEmpty();
    assertThat(p2.getNextPageToken()).isNotEmpty().isNotEqualTo(p1.getNextPageToken());
    assertThat(p3.getNextPageToken()).isEmpty();
  }

  @Test
  void listKeys_pagesOfThree_everyLiveKeyOnceInIdOrderLastTokenEmpty() {
    List<String> live = liveIds();

    List<List<String>> pages = walk(3);

    int full = live.size() / 3;
    int rest = live.size() % 3;
    assertThat(pages).hasSize(full + (rest == 0 ? 0 : 1));
    for (int i = 0; i < pages.size() - 1; i++) {
      assertThat(pages.get(i)).hasSize(3);
    }
    assertThat(pages.stream().flatMap(List::stream).toList()).isEqualTo(live);
  }

  @Test
  @Order(2)
  void listKeys_pageSizeEqualToKeyCount_onePageNoToken() {
    List<String> live = liveIds();

    ListKeysResponse r = page(live.size(), "");

    assertThat(r.getKeysList()).extracting(ApiKey::getId).isEqualTo(live);
    assertThat(r.getNextPageToken()).isEmpty();
  }

  @Test
  void listKeys_pageSizeOneLessThanKeys_secondPageHasLastKeyAndNoToken() {
    List<String> live = liveIds();

    ListKeysResponse first = page(live.size() - 1, "");
    ListKeysResponse second = page(live.size() - 1, first.getNextPageToken());

    assertThat(first.getKeysList()).hasSize(live.size() - 1);
    assertThat(first.getNextPageToken()).isNotEmpty();
    assertThat(second.getKeysList())
        .extracting(ApiKey::getId)
        .containsExactly(live.get(live.size() - 1));
    assertThat(second.getNextPageToken()).isEmpty();
  }

  @Test
  void listKeys_pageSizeZero_defaultPageHoldsAll() {
    ListKeysResponse r = page(0, "");

    assertThat(r.getKeysList()).extracting(ApiKey::getId).isEqualTo(liveIds());
    assertThat(r.getNextPageToken()).isEmpty();
  }

  @Test
  void listKeys_samePageTwice_sameAnswer() {
    ListKeysResponse first = page(2, "");

    assertThat(page(2, first.getNextPageToken())).isEqualTo(page(2, first.getNextPageToken()));
  }

  @Test
  void listKeys_keysDeletedAndAddedBetweenPages_noKeySkippedOrRepeated() {
    ListKeysResponse first = page(2, "");
    List<String> seen = new ArrayList<>(first.getKeysList().stream().map(ApiKey::getId).toList());
    List<String> before = liveIds();
    // Delete a key already shown and one not yet shown; add one at the end.
    String shownGone = seen.get(0);
    String unseenGone = before.get(3);
    admin.deleteKey(DeleteKeyRequest.newBuilder().setId(shownGone).build());
    admin.deleteKey(DeleteKeyRequest.newBuilder().setId(unseenGone).build());
    String added = create(admin, "added-mid-walk", "1").getId();

    String token = first.getNextPageToken();
    while (!token.isEmpty()) {
      ListKeysResponse r = page(2, token);
      r.getKeysList().forEach(k -> seen.add(k.getId()));
      token = r.getNextPageToken();
    }

    List<String> expected = new ArrayList<>(before);
    expected.remove(unseenGone);
    expected.add(added);
    assertThat(seen).isEqualTo(expected).doesNotHaveDuplicates();
  }

  @Test
  void listKeys_deletedKeys_neverListed() {
    String gone = create(admin, "gone", "0").getId();
    admin.deleteKey(DeleteKeyRequest.newBuilder().setId(gone).build());

    assertThat(walk(1).stream().flatMap(List::stream).toList())
        .doesNotContain(gone)
        .isEqualTo(liveIds());
  }

  @Test
  void listKeys_pageSizeOne_oneKeyPerPage() {
    List<List<String>> pages = walk(1);

    assertThat(pages).hasSize(liveIds().size());
    assertThat(pages).allSatisfy(p -> assertThat(p).hasSize(1));
  }

  @Test
  void listKeys_listedKey_equalsGetKey() {
    ApiKey listed = page(1, "").getKeys(0);

    assertThat(admin.getKey(GetKeyRequest.newBuilder().setId(listed.getId()).build()).getKey())
        .isEqualTo(listed);
  }
}
