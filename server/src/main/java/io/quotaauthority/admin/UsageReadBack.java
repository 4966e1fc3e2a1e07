package io.quotaauthority.admin;

import io.quotaauthority.keys.KeyIds;
import io.quotaauthority.keys.KeyNotFoundException;
import io.quotaauthority.keys.Money;
import io.quotaauthority.keys.ProtoTimes;
import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.ListUsageResponse;
import io.quotaauthority.proto.v1.UsageEvent;
import io.quotaauthority.store.KeyRepository;
import io.quotaauthority.store.Transactions;
import io.quotaauthority.store.UsageRepository;
import java.util.List;

/** ListUsage: a live key's ledger, newest first (received_at, then id), page by page. */
public final class UsageReadBack implements UsageQueries {

  private final Transactions tx;
  private final KeyRepository keys;
  private final UsageRepository usage;

  public UsageReadBack(Transactions tx, KeyRepository keys, UsageRepository usage) {
    this.tx = tx;
    this.keys = keys;
    this.usage = usage;
  }

  @Override
  public ListUsageResponse listUsage(ListUsageRequest request) {
    long keyId = KeyIds.parse("key_id", request.getKeyId());
    int size = PageTokens.pageSize(request.getPageSize());
    long after = PageTokens.decode("page_token", request.getPageToken(), PageTokens.usage(keyId));
    List<UsageRepository.Event> rows =
        tx.inTransaction(
            c -> {
              if (keys.findLive(c, keyId).isEmpty()) {
                throw new KeyNotFoundException("key_id", keyId);
              }
              // One row more than asked tells whether another page follows.
              return usage.page(c, keyId, after, size + 1);
            });
    ListUsageResponse.Builder b = ListUsageResponse.newBuilder();
    for (UsageRepository.Event e : rows.subList(0, Math.min(size, rows.size()))) {
      b.addEvents(
          UsageEvent.newBuilder()
              .setReportId(e.reportId())
              .setKeyId(Long.toString(e.keyId()))
              .setCostUsd(Money.format(e.cost()))
              .setModel(e.model())
              .setProvider(e.provider())
              .setInputTokens(e.inputTokens())
              .setOutputTokens(e.outputTokens())
              .setCachedInputTokens(e.cachedInputTokens())
              .setCacheWriteTokens(e.cacheWriteTokens())
              .setOccurredAt(ProtoTimes.timestamp(e.occurredAt()))
              .setReceivedAt(ProtoTimes.timestamp(e.receivedAt()))
              // Empty when the report carried none (older rows, reporters that send none).
              .setRequestId(e.requestId() == null ? "" : e.requestId())
              .setEstimated(e.estimated()));
    }
    if (rows.size() > size) {
      b.setNextPageToken(PageTokens.encode(PageTokens.usage(keyId), rows.get(size - 1).id()));
    }
    return b.build();
  }
}
