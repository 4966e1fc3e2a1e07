package io.quotaauthority.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.Timestamp;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc.KeyAdminServiceBlockingStub;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;

/** Shared helpers of the admin API tests: status assertions, table snapshots, audit rows. */
final class AdminFixtures {
  private static final ObjectMapper JSON = new ObjectMapper();

  private AdminFixtures() {}

  /** One key_audit row, its JSON parsed. */
  record Audit(
      String action, String actor, Map<String, Object> oldValue, Map<String, Object> newValue) {}

  /**
   * Asserts the call fails with exactly this code and a description starting with {@code prefix}.
   */
  static StatusRuntimeException assertStatus(
      ThrowingCallable call, Status.Code code, String prefix) {
    StatusRuntimeException e = catchThrowableOfType(StatusRuntimeException.class, call);
    assertThat(e).as("expected %s", code).isNotNull();
    assertThat(e.getStatus().getCode()).isEqualTo(code);
    assertThat(e.getStatus().getDescription()).startsWith(prefix);
    return e;
  }

  /**
   * Every row of api_keys and key_audit as JSON text, in id order: equal snapshots before and after
   * a call mean it wrote nothing.
   */
  static List<String> snapshot(TestDatabase db) {
    return db.transactions()
        .inTransaction(
            c -> {
              List<String> rows = new ArrayList<>();
              try (Statement s = c.createStatement()) {
                for (String table : List.of("api_keys", "key_audit")) {
                  try (ResultSet rs =
                      s.executeQuery(
                          "SELECT '"
                              + table
                              + " ' || row_to_json(t)::text FROM "
                              + table
                              + " t ORDER BY id")) {
                    while (rs.next()) {
                      rows.add(rs.getString(1));
                    }
                  }
                }
              }
              return rows;
            });
  }

  static List<Audit> audits(TestDatabase db, String keyId) {
    return db.transactions()
        .inTransaction(
            c -> {
              List<Audit> out = new ArrayList<>();
              try (PreparedStatement ps =
                  c.prepareStatement(
                      "SELECT action, actor, old_value::text, new_value::text FROM key_audit WHERE key_id = ? ORDER BY id")) {
                ps.setLong(1, Long.parseLong(keyId));
                try (ResultSet rs = ps.executeQuery()) {
                  while (rs.next()) {
                    out.add(
                        new Audit(
                            rs.getString(1),
                            rs.getString(2),
                            json(rs.getString(3)),
                            json(rs.getString(4))));
                  }
                }
              }
              return out;
            });
  }

  static Audit lastAudit(TestDatabase db, String keyId) {
    List<Audit> all = audits(db, keyId);
    assertThat(all).isNotEmpty();
    return all.get(all.size() - 1);
  }

  private static Map<String, Object> json(String text) {
    if (text == null) {
      return null;
    }
    try {
      return JSON.readValue(text, new TypeReference<Map<String, Object>>() {});
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** The JSON the audit keeps of the state of a key without a concurrency cap. */
  static Map<String, Object> state(
      String name,
      String status,
      String quota,
      String quotaUsed,
      Instant expiresAt,
      boolean deleted,
      int version) {
    return state(name, status, quota, quotaUsed, expiresAt, 0, deleted, version);
  }

  /** The JSON the audit keeps of a key's state. */
  static Map<String, Object> state(
      String name,
      String status,
      String quota,
      String quotaUsed,
      Instant expiresAt,
      int maxConcurrentRequests,
      boolean deleted,
      int version) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", name);
    m.put("status", status);
    m.put("quota", quota);
    m.put("quota_used", quotaUsed);
    m.put("expires_at", expiresAt == null ? null : expiresAt.toString());
    m.put("max_concurrent_requests", maxConcurrentRequests);
    // No reporter hold unless a test sets one (it then checks those entries itself).
    m.put("hold_usd_per_request", "0");
    m.put("hold_expiry", "charge");
    m.put("deleted", deleted);
    m.put("version", version);
    return m;
  }

  static Timestamp ts(Instant t) {
    return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
  }

  static Instant instant(Timestamp t) {
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }

  static ApiKey create(KeyAdminServiceBlockingStub admin, String name, String quota) {
    return createWithSecret(admin, name, quota).getKey();
  }

  static CreateKeyResponse createWithSecret(
      KeyAdminServiceBlockingStub admin, String name, String quota) {
    return admin.createKey(CreateKeyRequest.newBuilder().setName(name).setQuotaUsd(quota).build());
  }

  /** An admin stub with the right token and an x-quota-actor header. */
  static KeyAdminServiceBlockingStub as(TestServer server, String actor) {
    Metadata md = new Metadata();
    md.put(Metadata.Key.of("x-quota-actor", Metadata.ASCII_STRING_MARSHALLER), actor);
    return server.admin().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));
  }

  /** Runs SQL directly, as the usage path or an operator would. */
  static void sql(TestDatabase db, String sql, Object... args) {
    db.transactions()
        .inTransaction(
            c -> {
              try (PreparedStatement ps = c.prepareStatement(sql)) {
                for (int i = 0; i < args.length; i++) {
                  ps.setObject(i + 1, args[i]);
                }
                return ps.executeUpdate();
              }
            });
  }
}
