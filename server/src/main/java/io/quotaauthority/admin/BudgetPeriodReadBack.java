package io.quotaauthority.admin;

import io.quotaauthority.keys.KeyIds;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.ProtoTimes;
import io.quotaauthority.proto.v1.BudgetPeriodRecord;
import io.quotaauthority.proto.v1.ListBudgetPeriodsRequest;
import io.quotaauthority.proto.v1.ListBudgetPeriodsResponse;
import io.quotaauthority.store.BudgetPeriods;
import java.util.List;

/** ListBudgetPeriods: a live key's ended budget periods, newest first, page by page. */
public final class BudgetPeriodReadBack {
  private final KeyAdmin keys;
  private final BudgetPeriods periods;

  public BudgetPeriodReadBack(KeyAdmin keys, BudgetPeriods periods) {
    this.keys = keys;
    this.periods = periods;
  }

  static String scope(long keyId) {
    return "periods:" + keyId;
  }

  public ListBudgetPeriodsResponse list(ListBudgetPeriodsRequest request) {
    long keyId = KeyIds.parse("key_id", request.getKeyId());
    int size = PageTokens.pageSize(request.getPageSize());
    long after = PageTokens.decode("page_token", request.getPageToken(), scope(keyId));
    // NOT_FOUND for an unknown or deleted key, as ListUsage.
    keys.get(keyId);
    List<BudgetPeriods.Ended> rows =
        periods.page(keyId, after == 0 ? Long.MAX_VALUE : after, size + 1);
    ListBudgetPeriodsResponse.Builder b = ListBudgetPeriodsResponse.newBuilder();
    for (BudgetPeriods.Ended e : rows.subList(0, Math.min(size, rows.size()))) {
      b.addPeriods(
          BudgetPeriodRecord.newBuilder()
              .setKeyId(Long.toString(e.keyId()))
              .setBudgetPeriod(e.period())
              .setTimeZone(e.timeZone())
              .setStartedAt(ProtoTimes.timestamp(e.startedAt()))
              .setEndedAt(ProtoTimes.timestamp(e.endedAt()))
              .setBudgetUsd(Money.format(e.budget()))
              .setUsedUsd(Money.format(e.used())));
    }
    if (rows.size() > size) {
      b.setNextPageToken(PageTokens.encode(scope(keyId), rows.get(size - 1).id()));
    }
    return b.build();
  }
}
