package io.quotaauthority.testing;

import io.grpc.Channel;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.quotaauthority.QuotaAuthority;
import io.quotaauthority.config.Setting;
import io.quotaauthority.config.Settings;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A whole quota-authority on ephemeral ports against a {@link TestDatabase}, with known tokens, and
 * real gRPC channels to it.
 */
public final class TestServer implements AutoCloseable {
  public static final String ADMIN_TOKEN = "test-admin-token-0123456789abcdef";
  public static final String REPORTER_TOKEN = "test-reporter-token-0123456789abcdef";
  public static final String METERING_TOKEN = "test-metering-token-0123456789abcdef";

  /**
   * An instance that refreshes its keys once an hour: within a test's life a change made on another
   * instance reaches it only by its notification, which is what multi-instance tests prove.
   */
  public static final Map<Setting, String> NOTIFIED_ONLY = Map.of(Setting.REFRESH_INTERVAL, "1h");

  /**
   * How long a test waits for a change to reach another instance before failing: a hang guard, not
   * a target (the bench's propagation scenario measures how fast, against 100 ms at p99).
   */
  public static final long PROPAGATION_GUARD_SECONDS = 30;

  private final QuotaAuthority app;
  private final ManagedChannel adminChannel;
  private final ManagedChannel authzChannel;
  private final ManagedChannel meteringChannel;
  private final Path dataDir;

  private TestServer(QuotaAuthority app, Path dataDir) {
    this.app = app;
    this.dataDir = dataDir;
    this.adminChannel =
        ManagedChannelBuilder.forAddress("127.0.0.1", app.adminPort()).usePlaintext().build();
    this.authzChannel =
        ManagedChannelBuilder.forAddress("127.0.0.1", app.authzPort()).usePlaintext().build();
    this.meteringChannel =
        ManagedChannelBuilder.forAddress("127.0.0.1", app.meteringPort()).usePlaintext().build();
  }

  public static TestServer start(TestDatabase db) {
    return start(db, Map.of(), Clock.systemUTC());
  }

  public static TestServer start(TestDatabase db, Map<Setting, String> extra, Clock clock) {
    try {
      Path dataDir = Files.createTempDirectory("qa-test");
      Map<Setting, String> s = new EnumMap<>(Setting.class);
      s.put(Setting.DB_URL, db.url());
      s.put(Setting.DB_USER, "postgres");
      s.put(Setting.DATA_DIR, dataDir.toString());
      s.put(Setting.AUTHZ_PORT, "0");
      s.put(Setting.METERING_PORT, "0");
      s.put(Setting.ADMIN_PORT, "0");
      s.put(Setting.METRICS_PORT, "0");
      s.put(Setting.CONSOLE_PORT, "0");
      s.put(Setting.ADMIN_TOKEN, ADMIN_TOKEN);
      s.put(Setting.REPORTER_TOKEN, REPORTER_TOKEN);
      s.put(Setting.METERING_TOKEN, METERING_TOKEN);
      s.putAll(extra);
      return new TestServer(QuotaAuthority.start(Settings.of(s), clock), dataDir);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * A server from an environment, as {@code serve} reads it ({@link Settings#load}): for settings
   * only the environment has, e.g. the {@code _FILE} variants of secrets. Database, data directory,
   * ephemeral ports and the reporter token are filled in; {@code env} adds or overrides (a null
   * value removes), and sets the admin token(s) itself.
   */
  public static TestServer fromEnvironment(TestDatabase db, Map<String, String> env) {
    try {
      Path dataDir = Files.createTempDirectory("qa-test");
      Map<String, String> e = new HashMap<>();
      e.put(Setting.DB_URL.env(), db.url());
      e.put(Setting.DB_USER.env(), "postgres");
      e.put(Setting.DATA_DIR.env(), dataDir.toString());
      e.put(Setting.AUTHZ_PORT.env(), "0");
      e.put(Setting.ADMIN_PORT.env(), "0");
      e.put(Setting.METRICS_PORT.env(), "0");
      e.put(Setting.CONSOLE_PORT.env(), "0");
      e.put(Setting.REPORTER_TOKEN.env(), REPORTER_TOKEN);
      env.forEach(
          (k, v) -> {
            if (v == null) {
              e.remove(k);
            } else {
              e.put(k, v);
            }
          });
      return new TestServer(
          QuotaAuthority.start(Settings.load(e, List.of()), Clock.systemUTC()), dataDir);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  public QuotaAuthority app() {
    return app;
  }

  public ManagedChannel adminChannel() {
    return adminChannel;
  }

  public ManagedChannel authzChannel() {
    return authzChannel;
  }

  /** The metering port, with no credential attached (a forged or misconfigured Envoy). */
  public ManagedChannel meteringChannel() {
    return meteringChannel;
  }

  /** The metering port as Envoy calls it: every stream carries the metering token. */
  public Channel envoyMetering() {
    return ClientInterceptors.intercept(meteringChannel, bearer(METERING_TOKEN));
  }

  /** An admin stub that sends the right bearer token. */
  public KeyAdminServiceGrpc.KeyAdminServiceBlockingStub admin() {
    return KeyAdminServiceGrpc.newBlockingStub(adminChannel).withInterceptors(bearer(ADMIN_TOKEN));
  }

  public static ClientInterceptor bearer(String token) {
    Metadata md = new Metadata();
    md.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
    return MetadataUtils.newAttachHeadersInterceptor(md);
  }

  @Override
  public void close() throws Exception {
    adminChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    authzChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    meteringChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    app.close();
  }
}
