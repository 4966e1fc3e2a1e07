package io.quotaauthority;

import io.quotaauthority.config.ConfigException;
import io.quotaauthority.config.Settings;
import java.time.Clock;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;

/** Entry point: {@code java -jar quota-authority.jar [serve] [--flag value ...]}. */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    String[] rest = args.length > 0 && args[0].equals("serve") ? Arrays.copyOfRange(args, 1, args.length) : args;
    QuotaAuthority app;
    try {
      app = QuotaAuthority.start(Settings.load(System.getenv(), Arrays.asList(rest)), Clock.systemUTC());
    } catch (ConfigException e) {
      System.err.println("quota-authority: " + e.getMessage());
      System.exit(2);
      return;
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      app.close();
      stopped.countDown();
    }, "shutdown"));
    stopped.await();
  }
}
