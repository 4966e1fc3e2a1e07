package io.quotaauthority.faults;

import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.testing.TestServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The real entry point, {@code io.quotaauthority.cli.Main serve ...}, in its own JVM on this test's
 * classpath, so a test can SIGKILL or SIGTERM it. Ports are picked free on loopback; its output
 * goes to a log file that failures print.
 */
final class ForkedServer implements AutoCloseable {
  static final String ADMIN_TOKEN = "fault-admin-token-0123456789abcdef";
  static final String REPORTER_TOKEN = "fault-reporter-token-0123456789abcdef";
  static final String METERING_TOKEN = "fault-metering-token-0123456789abcdef";

  private final Process process;
  private final int authzPort;
  private final int adminPort;
  private final Path log;
  private final ManagedChannel authzChannel;
  private final ManagedChannel adminChannel;
  private final ManagedChannel meteringChannel;

  private ForkedServer(Process process, int authzPort, int adminPort, int meteringPort, Path log) {
    this.process = process;
    this.authzPort = authzPort;
    this.adminPort = adminPort;
    this.log = log;
    this.authzChannel = channel(authzPort);
    this.adminChannel = channel(adminPort);
    this.meteringChannel = channel(meteringPort);
  }

  /**
   * Starts {@code Main serve} against {@code dbUrl} with these extra {@code --flag value} pairs; a
   * null {@code dbUrl} runs the embedded default under {@code <dataDir>/pg}.
   */
  static ForkedServer start(String dbUrl, Path dataDir, String... extraArgs) throws IOException {
    int authzPort = freePort();
    int adminPort = freePort();
    while (adminPort == authzPort) {
      adminPort = freePort();
    }
    int meteringPort = freePort();
    while (meteringPort == authzPort || meteringPort == adminPort) {
      meteringPort = freePort();
    }
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> command =
        new ArrayList<>(
            List.of(
                java,
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-cp",
                System.getProperty("java.class.path"),
                "io.quotaauthority.cli.Main",
                "serve",
                "--authz-port",
                Integer.toString(authzPort),
                "--admin-port",
                Integer.toString(adminPort),
                // A free port, never the 9194 default: the hold tests drive it as Envoy would.
                "--metering-port",
                Integer.toString(meteringPort),
                "--metrics-port",
                "0",
                "--console-port",
                "0",
                "--data-dir",
                dataDir.toString()));
    if (dbUrl != null) {
      command.addAll(List.of("--db-url", dbUrl));
    }
    command.addAll(List.of(extraArgs));
    ProcessBuilder builder = new ProcessBuilder(command);
    // Only what this test means: no QUOTA_* setting leaks in from the environment running the
    // build.
    builder.environment().keySet().removeIf(k -> k.startsWith("QUOTA_"));
    builder.environment().put("QUOTA_ADMIN_TOKEN", ADMIN_TOKEN);
    builder.environment().put("QUOTA_REPORTER_TOKEN", REPORTER_TOKEN);
    builder.environment().put("QUOTA_METERING_TOKEN", METERING_TOKEN);
    Path log = Files.createTempFile(dataDir, "server-", ".log");
    builder.redirectErrorStream(true);
    builder.redirectOutput(log.toFile());
    return new ForkedServer(builder.start(), authzPort, adminPort, meteringPort, log);
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  static ManagedChannel channel(int port) {
    return ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
  }

  /**
   * Waits until health answers SERVING on the authz port; fails with the server's log if it died.
   */
  ForkedServer awaitServing(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new AssertionError(
            "server exited with " + process.exitValue() + " before serving:\n" + logText());
      }
      try {
        // Refused connections put the channel in reconnect backoff (1 s, 1.6 s, ...): skip it.
        authzChannel.resetConnectBackoff();
        if (health(authzChannel, 500) == ServingStatus.SERVING) {
          return this;
        }
      } catch (StatusRuntimeException notYet) {
        // not listening yet
      }
      Thread.sleep(100);
    }
    throw new AssertionError("server not SERVING within " + timeout + ":\n" + logText());
  }

  static ServingStatus health(ManagedChannel channel, long deadlineMillis) {
    return HealthGrpc.newBlockingStub(channel)
        .withDeadlineAfter(deadlineMillis, TimeUnit.MILLISECONDS)
        .check(HealthCheckRequest.getDefaultInstance())
        .getStatus();
  }

  Process process() {
    return process;
  }

  int authzPort() {
    return authzPort;
  }

  int adminPort() {
    return adminPort;
  }

  ManagedChannel authzChannel() {
    return authzChannel;
  }

  /** The metering port as Envoy calls it: every stream carries the metering token. */
  Channel envoyMetering() {
    return ClientInterceptors.intercept(meteringChannel, TestServer.bearer(METERING_TOKEN));
  }

  KeyAdminServiceGrpc.KeyAdminServiceBlockingStub admin() {
    return KeyAdminServiceGrpc.newBlockingStub(adminChannel)
        .withInterceptors(TestServer.bearer(ADMIN_TOKEN))
        .withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  String logText() {
    try {
      return Files.readString(log, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  /** Kills the JVM if it still runs and closes the channels; safe to call twice. */
  @Override
  public void close() throws InterruptedException {
    try {
      if (process.isAlive()) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } finally {
      authzChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      adminChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      meteringChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
