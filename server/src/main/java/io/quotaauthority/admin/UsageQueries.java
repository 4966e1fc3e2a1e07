package io.quotaauthority.admin;

import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.ListUsageResponse;

/** Reads the usage ledger back for the admin API (implemented by the usage package). */
public interface UsageQueries {
  ListUsageResponse listUsage(ListUsageRequest request);
}
