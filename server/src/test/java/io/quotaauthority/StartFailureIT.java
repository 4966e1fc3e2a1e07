package io.quotaauthority;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quotaauthority.config.Setting;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A start that fails leaves nothing behind: no thread of ours, no database connection, no port. */
class StartFailureIT {
  /** Thread names the server's parts use (prefixes). */
  private static final List<String> OURS =
      List.of(
          "usage-committer",
          "key-change-listener",
          "price-table-poller",
          "key-loader",
          "scheduler",
          "metering-",
          "readiness-probe");

  private static TestDatabase db;

  @BeforeAll
  static void database() {
    db = TestDatabase.create();
  }

  @AfterAll
  static void drop() {
    db.close();
  }

  private static Set<String> ourThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(Thread::isAlive)
        .map(Thread::getName)
        .filter(n -> OURS.stream().anyMatch(n::startsWith))
        .collect(Collectors.toSet());
  }

  /** The server's connections to this test's database (pool and listener). */
  private static long serverConnections() {
    return ((Number)
            db.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = ?"
                    + " AND application_name LIKE 'quota-authority%'",
                db.name()))
        .longValue();
  }

  private static void awaitGone(Set<String> before) throws InterruptedException {
    long until = System.nanoTime() + 5_000_000_000L;
    while (System.nanoTime() < until && !before.containsAll(ourThreads())) {
      Thread.sleep(20);
    }
  }

  @Test
  void start_badPriceTable_failsBeforeAnythingIsOpened() throws Exception {
    Path prices = Files.createTempFile("prices", ".yaml");
    Files.writeString(prices, "models:\n  \"gpt-x\": {input: \"-1\"}\n");
    Set<String> before = ourThreads();
    long connectionsBefore = serverConnections();

    assertThatThrownBy(
            () ->
                TestServer.start(
                    db, Map.of(Setting.PRICES_FILE, prices.toString()), Clock.systemUTC()))
        .rootCause()
        .hasMessageContaining("models.gpt-x.input");

    assertThat(ourThreads()).as("no thread was started").isSubsetOf(before);
    assertThat(serverConnections()).as("the pool was never opened").isEqualTo(connectionsBefore);
  }

  @Test
  void start_portTaken_closesEverythingItHadOpened() throws Exception {
    Set<String> before = ourThreads();
    long connectionsBefore = serverConnections();
    try (ServerSocket taken = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      // The admin port is bound after the authz and metering ports: those two were listening.
      assertThatThrownBy(
              () ->
                  TestServer.start(
                      db,
                      Map.of(Setting.ADMIN_PORT, Integer.toString(taken.getLocalPort())),
                      Clock.systemUTC()))
          .hasStackTraceContaining("Failed to bind");
    }
    awaitGone(before);
    long until = System.nanoTime() + 5_000_000_000L;
    while (System.nanoTime() < until && serverConnections() > connectionsBefore) {
      Thread.sleep(20);
    }

    assertThat(ourThreads()).as("every thread it started has stopped").isSubsetOf(before);
    assertThat(serverConnections()).as("the pool is closed").isEqualTo(connectionsBefore);
  }
}
