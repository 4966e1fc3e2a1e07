package io.quotaauthority.metering;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/** Test resources under /metering. */
final class Fixtures {
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
