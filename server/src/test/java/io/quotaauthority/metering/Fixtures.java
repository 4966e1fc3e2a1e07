package io.quotaauthority.metering;

import io.quotaauthority.usage.Retries;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/** Test resources under /metering. */
final class Fixtures {
  /**
   * Where the tests' UsageChargers wait between attempts (a daemon thread: never holds the JVM).
   */
  static final Retries RETRIES = new Retries("test-charge-retries");

  private Fixtures() {}

  static byte[] bytes(String name) {
    try (InputStream in = Fixtures.class.getResourceAsStream("/metering/" + name)) {
      if (in == null) {
        throw new IllegalArgumentException("no fixture " + name);
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static PriceTable testPrices() {
    return PriceTable.parse(bytes("test-prices.yaml"));
  }
}
