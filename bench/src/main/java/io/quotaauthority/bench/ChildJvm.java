package io.quotaauthority.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A JVM the bench started (the server, the baseline, the memory probe), logging to a file. */
final class ChildJvm implements AutoCloseable {
  final String name;
  final Process process;
  final Path log;
  final List<String> command;

  private ChildJvm(String name, Process process, Path log, List<String> command) {
    this.name = name;
    this.process = process;
    this.log = log;
    this.command = command;
  }

  /** The java launcher running the bench, so children run on the same JVM. */
  static String java() {
    return ProcessHandle.current().info().command().orElse("java");
  }

  /** A JDK tool (jcmd) next to that launcher. */
  static String jdkTool(String tool) {
    Path sibling = Path.of(java()).resolveSibling(tool);
    return Files.isExecutable(sibling) ? sibling.toString() : tool;
  }

  /**
   * Starts {@code java <jvmOptions> <args>} with the current environment minus every QUOTA_*
   * variable, plus {@code env}.
   */
  static ChildJvm start(
      String name,
      List<String> jvmOptions,
      List<String> args,
      Map<String, String> env,
      Path logDir) {
    List<String> cmd = new ArrayList<>();
    cmd.add(java());
    cmd.addAll(jvmOptions);
    cmd.addAll(args);
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().keySet().removeIf(k -> k.startsWith("QUOTA_"));
    pb.environment().putAll(env);
    Path log = logDir.resolve(name + ".log");
    pb.redirectErrorStream(true);
    pb.redirectOutput(log.toFile());
    try {
      return new ChildJvm(name, pb.start(), log, cmd);
    } catch (IOException e) {
      throw new UncheckedIOException("could not start " + name, e);
    }
  }

  long pid() {
    return process.pid();
  }

  /** Waits until something accepts connections on 127.0.0.1:port; fails if the process ends. */
  void awaitPort(int port, Duration timeout) {
    long until = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < until) {
      if (!process.isAlive()) {
        throw new IllegalStateException(
            name + " exited with " + process.exitValue() + ":\n" + tail(40));
      }
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 200);
        return;
      } catch (IOException notYet) {
        sleep(100);
      }
    }
    throw new IllegalStateException(
        name + " did not listen on port " + port + " within " + timeout + ":\n" + tail(40));
  }

  String tail(int lines) {
    try {
      List<String> all = Files.readAllLines(log);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (IOException | RuntimeException e) {
      return "(no log: " + e + ")";
    }
  }

  /** SIGTERM (the server shuts down in order), then SIGKILL if it is still there after 20 s. */
  @Override
  public void close() {
    if (!process.isAlive()) {
      return;
    }
    process.destroy();
    try {
      if (!process.waitFor(20, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  /** A free TCP port on the loopback interface. */
  static int freePort() {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Runs a JDK tool to completion and returns its output. */
  static String run(Duration timeout, String... command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      byte[] out = p.getInputStream().readAllBytes();
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
      }
      return new String(out);
    } catch (IOException e) {
      return "(" + command[0] + " failed: " + e.getMessage() + ")";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "(interrupted)";
    }
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }
}
