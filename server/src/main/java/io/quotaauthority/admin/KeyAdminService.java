package io.quotaauthority.admin;

import io.grpc.stub.StreamObserver;
import io.quotaauthority.grpc.BearerTokenInterceptor;
import io.quotaauthority.grpc.Statuses;
import io.quotaauthority.keys.KeyIds;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.ProtoTimes;
import io.quotaauthority.keys.SpendWindows;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.ClearExpirationRequest;
import io.quotaauthority.proto.v1.ClearExpirationResponse;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.DeleteKeyResponse;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.GetKeyResponse;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ListBudgetPeriodsRequest;
import io.quotaauthority.proto.v1.ListBudgetPeriodsResponse;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.ListKeysResponse;
import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.ListUsageResponse;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.ResetQuotaResponse;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.proto.v1.UpdateKeyResponse;
import java.time.Clock;
import java.time.Instant;
import java.util.EnumMap;
import java.util.Map;
import java.util.function.Supplier;

/** The admin API over gRPC: proto in, one {@link KeyAdmin} call, proto or status out. */
public final class KeyAdminService extends KeyAdminServiceGrpc.KeyAdminServiceImplBase {
  private final KeyAdmin admin;
  private final UsageQueries usage;
  private final Clock clock;
  private final BudgetPeriodReadBack periods;

  public KeyAdminService(KeyAdmin admin, UsageQueries usage, Clock clock) {
    this(admin, usage, clock, null);
  }

  /**
   * @param periods ListBudgetPeriods; null answers it UNIMPLEMENTED
   */
  public KeyAdminService(
      KeyAdmin admin, UsageQueries usage, Clock clock, BudgetPeriodReadBack periods) {
    this.admin = admin;
    this.usage = usage;
    this.clock = clock;
    this.periods = periods;
  }

  @Override
  public void createKey(CreateKeyRequest req, StreamObserver<CreateKeyResponse> out) {
    answer(
        out,
        () -> {
          Instant expires =
              req.hasExpiresAt() ? ProtoTimes.instant("expires_at", req.getExpiresAt()) : null;
          KeyAdmin.Created created =
              admin.create(
                  req.getName(),
                  req.getQuotaUsd(),
                  expires,
                  req.getMaxConcurrentRequests(),
                  req.getIpAllowList(),
                  req.getIpDenyList(),
                  req.getModelAllowList(),
                  new KeyAdmin.PeriodInput(
                      req.getBudgetPeriod(), req.getBudgetResetTime(), req.getBudgetTimeZone()),
                  req.getHoldUsdPerRequest(),
                  req.getHoldExpiry().name(),
                  windows(
                      req.getWindow5HUsd(),
                      req.getWindow1DUsd(),
                      req.getWindow7DUsd(),
                      req.getWindow30DUsd()),
                  req.getRequestsPerMinute(),
                  req.getTokensPerMinute(),
                  BearerTokenInterceptor.actor());
          return CreateKeyResponse.newBuilder()
              .setKey(proto(created.key()))
              .setSecret(created.secret())
              .build();
        });
  }

  @Override
  public void getKey(GetKeyRequest req, StreamObserver<GetKeyResponse> out) {
    answer(
        out,
        () -> {
          KeyRecord key = admin.get(KeyIds.parse("id", req.getId()));
          return GetKeyResponse.newBuilder()
              .setKey(ApiKeys.withWindowSpend(proto(key), admin.windowSpend(key)))
              .build();
        });
  }

  @Override
  public void listKeys(ListKeysRequest req, StreamObserver<ListKeysResponse> out) {
    answer(
        out,
        () -> {
          KeyAdmin.Page page = admin.list(req.getPageSize(), req.getPageToken());
          ListKeysResponse.Builder b =
              ListKeysResponse.newBuilder().setNextPageToken(page.nextPageToken());
          Instant now = clock.instant();
          page.keys().forEach(k -> b.addKeys(ApiKeys.toProto(k, now)));
          return b.build();
        });
  }

  @Override
  public void updateKey(UpdateKeyRequest req, StreamObserver<UpdateKeyResponse> out) {
    answer(
        out,
        () -> {
          ApiKey key = req.getKey();
          long id = KeyIds.parse("key.id", key.getId());
          KeyUpdate update =
              KeyUpdate.fromPaths(
                  req.getUpdateMask().getPathsList(),
                  key.getName(),
                  key.getQuotaUsd(),
                  key.hasExpiresAt()
                      ? ProtoTimes.instant("key.expires_at", key.getExpiresAt())
                      : null,
                  statusName(key.getStatus()),
                  key.getMaxConcurrentRequests(),
                  key.getIpAllowList(),
                  key.getIpDenyList(),
                  key.getModelAllowList(),
                  new KeyAdmin.PeriodInput(
                      key.getBudgetPeriod(), key.getBudgetResetTime(), key.getBudgetTimeZone()),
                  key.getHoldUsdPerRequest(),
                  key.getHoldExpiry().name(),
                  windows(
                      key.getWindow5HUsd(),
                      key.getWindow1DUsd(),
                      key.getWindow7DUsd(),
                      key.getWindow30DUsd()),
                  key.getRequestsPerMinute(),
                  key.getTokensPerMinute());
          return UpdateKeyResponse.newBuilder()
              .setKey(proto(admin.update(id, update, BearerTokenInterceptor.actor())))
              .build();
        });
  }

  @Override
  public void deleteKey(DeleteKeyRequest req, StreamObserver<DeleteKeyResponse> out) {
    answer(
        out,
        () -> {
          admin.delete(KeyIds.parse("id", req.getId()), BearerTokenInterceptor.actor());
          return DeleteKeyResponse.getDefaultInstance();
        });
  }

  @Override
  public void resetQuota(ResetQuotaRequest req, StreamObserver<ResetQuotaResponse> out) {
    answer(
        out,
        () ->
            ResetQuotaResponse.newBuilder()
                .setKey(
                    proto(
                        admin.resetQuota(
                            KeyIds.parse("id", req.getId()), BearerTokenInterceptor.actor())))
                .build());
  }

  @Override
  public void clearExpiration(
      ClearExpirationRequest req, StreamObserver<ClearExpirationResponse> out) {
    answer(
        out,
        () ->
            ClearExpirationResponse.newBuilder()
                .setKey(
                    proto(
                        admin.clearExpiration(
                            KeyIds.parse("id", req.getId()), BearerTokenInterceptor.actor())))
                .build());
  }

  @Override
  public void listUsage(ListUsageRequest req, StreamObserver<ListUsageResponse> out) {
    answer(out, () -> usage.listUsage(req));
  }

  @Override
  public void listBudgetPeriods(
      ListBudgetPeriodsRequest req, StreamObserver<ListBudgetPeriodsResponse> out) {
    if (periods == null) {
      super.listBudgetPeriods(req, out);
      return;
    }
    answer(out, () -> periods.list(req));
  }

  private static Map<SpendWindows.Window, String> windows(
      String h5, String d1, String d7, String d30) {
    Map<SpendWindows.Window, String> m = new EnumMap<>(SpendWindows.Window.class);
    m.put(SpendWindows.Window.H5, h5);
    m.put(SpendWindows.Window.D1, d1);
    m.put(SpendWindows.Window.D7, d7);
    m.put(SpendWindows.Window.D30, d30);
    return m;
  }

  private ApiKey proto(KeyRecord r) {
    return ApiKeys.toProto(r, clock.instant());
  }

  private static String statusName(KeyStatus s) {
    String name = s.name();
    return name.startsWith("KEY_STATUS_") ? name.substring("KEY_STATUS_".length()) : name;
  }

  private static <T> void answer(StreamObserver<T> out, Supplier<T> work) {
    T response;
    try {
      response = work.get();
    } catch (RuntimeException e) {
      out.onError(Statuses.of(e));
      return;
    }
    out.onNext(response);
    out.onCompleted();
  }
}
