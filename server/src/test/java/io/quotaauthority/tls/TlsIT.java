package io.quotaauthority.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.quotaauthority.cli.CliRunner;
import io.quotaauthority.cli.ExitCodes;
import io.quotaauthority.config.ConfigException;
import io.quotaauthority.config.Setting;
import io.quotaauthority.config.Settings;
import io.quotaauthority.grpc.ServerTls;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS and mTLS on both gRPC ports, with a CA and certificates made at run time: the right clients
 * get in, plaintext clients, clients trusting another CA and (for mTLS) clients without a
 * certificate or with one from another CA do not.
 */
class TlsIT {
  @TempDir static Path dir;

  private static TestDatabase db;
  private static TestCertificates ca;
  private static TestCertificates otherCa;
  private static TestCertificates.Pem serverCert;
  private static TestCertificates.Pem clientCert;
  private static TestCertificates.Pem foreignClientCert;
  private static TestServer tls;
  private static TestServer mtls;
  private ManagedChannel channel;

  @BeforeAll
  static void start() throws Exception {
    db = TestDatabase.create();
    ca = TestCertificates.newCa("qa", dir);
    otherCa = TestCertificates.newCa("other", dir);
    serverCert = ca.server("server");
    clientCert = ca.client("client");
    foreignClientCert = otherCa.client("intruder");
    tls =
        TestServer.start(
            db,
            Map.of(
                Setting.TLS_CERT, serverCert.cert().toString(),
                Setting.TLS_KEY, serverCert.key().toString()),
            Clock.systemUTC());
    mtls =
        TestServer.start(
            db,
            Map.of(
                Setting.TLS_CERT, serverCert.cert().toString(),
                Setting.TLS_KEY, serverCert.key().toString(),
                Setting.TLS_CLIENT_CA, ca.caFile().toString()),
            Clock.systemUTC());
  }

  @AfterAll
  static void stop() throws Exception {
    tls.close();
    mtls.close();
    db.close();
  }

  @AfterEach
  void closeChannel() throws InterruptedException {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private ServingStatus health(int port, ChannelCredentials creds) {
    channel = Grpc.newChannelBuilderForAddress("localhost", port, creds).build();
    return HealthGrpc.newBlockingStub(channel)
        .withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance())
        .getStatus();
  }

  private static ChannelCredentials trusting(Path caFile) throws Exception {
    return TlsChannelCredentials.newBuilder().trustManager(caFile.toFile()).build();
  }

  private static ChannelCredentials withClientCert(Path caFile, TestCertificates.Pem client)
      throws Exception {
    return TlsChannelCredentials.newBuilder()
        .trustManager(caFile.toFile())
        .keyManager(client.cert().toFile(), client.key().toFile())
        .build();
  }

  private static void assertRefused(Runnable call) {
    assertThatThrownBy(call::run)
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
  }

  // ---- TLS ----

  @Test
  void tls_clientTrustingTheCa_isServedOnBothPorts() throws Exception {
    assertThat(health(tls.app().authzPort(), trusting(ca.caFile())))
        .isEqualTo(ServingStatus.SERVING);
    closeChannel();
    assertThat(health(tls.app().adminPort(), trusting(ca.caFile())))
        .isEqualTo(ServingStatus.SERVING);
    var admin =
        KeyAdminServiceGrpc.newBlockingStub(channel)
            .withInterceptors(TestServer.bearer(TestServer.ADMIN_TOKEN));
    assertThat(admin.listKeys(ListKeysRequest.getDefaultInstance()).getKeysList()).isNotNull();
  }

  @Test
  void tls_plaintextClient_isRefused() {
    assertRefused(() -> health(tls.app().authzPort(), InsecureChannelCredentials.create()));
  }

  @Test
  void tls_clientTrustingAnotherCa_isRefused() {
    assertRefused(
        () -> {
          try {
            health(tls.app().adminPort(), trusting(otherCa.caFile()));
          } catch (RuntimeException e) {
            throw e;
          } catch (Exception e) {
            throw new IllegalStateException(e);
          }
        });
  }

  // ---- mTLS ----

  @Test
  void mtls_clientCertificateFromTheCa_isServedOnBothPorts() throws Exception {
    assertThat(health(mtls.app().authzPort(), withClientCert(ca.caFile(), clientCert)))
        .isEqualTo(ServingStatus.SERVING);
    closeChannel();
    assertThat(health(mtls.app().adminPort(), withClientCert(ca.caFile(), clientCert)))
        .isEqualTo(ServingStatus.SERVING);
  }

  @Test
  void mtls_noClientCertificate_isRefused() throws Exception {
    ChannelCredentials creds = trusting(ca.caFile());
    assertRefused(() -> health(mtls.app().authzPort(), creds));
  }

  @Test
  void mtls_clientCertificateFromAnotherCa_isRefused() throws Exception {
    ChannelCredentials creds = withClientCert(ca.caFile(), foreignClientCert);
    assertRefused(() -> health(mtls.app().adminPort(), creds));
  }

  @Test
  void mtls_plaintextClient_isRefused() {
    assertRefused(() -> health(mtls.app().adminPort(), InsecureChannelCredentials.create()));
  }

  // ---- the CLI over TLS ----

  @Test
  void cli_withCaAndClientCertificate_talksToTheMtlsServer() {
    CliRunner cli = new CliRunner(Map.of("QUOTA_ADMIN_TOKEN", TestServer.ADMIN_TOKEN));
    String addr = "localhost:" + mtls.app().adminPort();

    CliRunner.Result ok =
        cli.run(
            "keys",
            "list",
            "--admin-addr",
            addr,
            "--ca",
            ca.caFile().toString(),
            "--cert",
            clientCert.cert().toString(),
            "--key",
            clientCert.key().toString());
    CliRunner.Result noCert =
        cli.run("keys", "list", "--admin-addr", addr, "--ca", ca.caFile().toString());
    CliRunner.Result plain = cli.run("keys", "list", "--admin-addr", addr);

    assertThat(ok.exitCode()).as(ok.toString()).isZero();
    assertThat(ok.out()).startsWith("ID");
    assertThat(noCert.exitCode()).isEqualTo(ExitCodes.ERROR);
    assertThat(noCert.err())
        .startsWith("error: cannot reach the admin API at " + addr)
        .hasLineCount(1);
    assertThat(plain.exitCode()).isEqualTo(ExitCodes.ERROR);
  }

  @Test
  void cli_certWithoutKey_exitsTwo() {
    CliRunner.Result r =
        new CliRunner(Map.of("QUOTA_ADMIN_TOKEN", "t"))
            .run("keys", "list", "--cert", clientCert.cert().toString());

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).isEqualTo("error: --cert and --key go together\n");
  }

  // ---- bad files fail at start, naming the setting ----

  @Test
  void credentials_keyOfAnotherCertificate_failsNamingTheSetting() throws Exception {
    Settings s =
        Settings.of(
            Map.of(
                Setting.TLS_CERT,
                serverCert.cert().toString(),
                Setting.TLS_KEY,
                clientCert.key().toString()));

    assertThatThrownBy(() -> ServerTls.credentials(s))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith(
            "QUOTA_TLS_KEY does not belong to the first certificate in QUOTA_TLS_CERT");
  }

  @Test
  void credentials_missingFile_failsNamingTheSetting() {
    Settings s =
        Settings.of(
            Map.of(
                Setting.TLS_CERT,
                dir.resolve("nope.pem").toString(),
                Setting.TLS_KEY,
                serverCert.key().toString()));

    assertThatThrownBy(() -> ServerTls.credentials(s))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_TLS_CERT: cannot read");
  }

  @Test
  void credentials_pkcs1Key_failsWithAConversionHint() throws Exception {
    Path pkcs1 = dir.resolve("rsa.pem");
    Files.writeString(
        pkcs1, "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n");
    Settings s =
        Settings.of(
            Map.of(
                Setting.TLS_CERT, serverCert.cert().toString(), Setting.TLS_KEY, pkcs1.toString()));

    assertThatThrownBy(() -> ServerTls.credentials(s))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("PKCS#8")
        .hasMessageContaining("openssl pkcs8 -topk8");
  }

  @Test
  void credentials_clientCaNotAPem_failsNamingTheSetting() throws Exception {
    Path junk = dir.resolve("junk.pem");
    Files.writeString(junk, "not a certificate");
    Settings s =
        Settings.of(
            Map.of(
                Setting.TLS_CERT,
                serverCert.cert().toString(),
                Setting.TLS_KEY,
                serverCert.key().toString(),
                Setting.TLS_CLIENT_CA,
                junk.toString()));

    assertThatThrownBy(() -> ServerTls.credentials(s))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_TLS_CLIENT_CA must hold PEM certificates");
  }
}
