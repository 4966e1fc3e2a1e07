package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.quotaauthority.config.ConfigException;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReloadingPriceTableTest {
  @TempDir Path dir;
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();

  private Path write(String name, String yaml) throws IOException {
    return Files.writeString(dir.resolve(name), yaml, StandardCharsets.UTF_8);
  }

  private static BigDecimal input(ReloadingPriceTable t, String model) {
    return t.get().find(model).orElseThrow().inputPerMtok();
  }

  @Test
  void reloadIfChanged_fileChanged_swapsTable() throws IOException {
    Path f = write("prices.yaml", "models:\n  m: {input: '1', output: '1'}\n");
    try (ReloadingPriceTable t = ReloadingPriceTable.load(f, registry)) {
      assertThat(t.reloadIfChanged()).isFalse();
      write("prices.yaml", "models:\n  m: {input: '2', output: '1'}\n");
      assertThat(t.reloadIfChanged()).isTrue();
      assertThat(input(t, "m")).isEqualTo(new BigDecimal("2"));
      assertThat(
              registry.get("quota.metering.prices.reloads").tag("result", "ok").counter().count())
          .isEqualTo(1.0);
    }
  }

  @Test
  void reloadIfChanged_fileAtomicallyReplaced_swapsTable() throws IOException {
    Path f = write("prices.yaml", "models:\n  m: {input: '1', output: '1'}\n");
    try (ReloadingPriceTable t = ReloadingPriceTable.load(f, registry)) {
      Path next = write("next.yaml", "models:\n  m: {input: '3', output: '1'}\n");
      Files.move(next, f, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      assertThat(t.reloadIfChanged()).isTrue();
      assertThat(input(t, "m")).isEqualTo(new BigDecimal("3"));
    }
  }

  @Test
  void reloadIfChanged_badFile_keepsPreviousTableAndCountsOnce() throws IOException {
    Path f = write("prices.yaml", "models:\n  m: {input: '1', output: '1'}\n");
    try (ReloadingPriceTable t = ReloadingPriceTable.load(f, registry)) {
      write("prices.yaml", "models:\n  m: {input: 'one', output: '1'}\n");
      assertThat(t.reloadIfChanged()).isFalse();
      assertThat(t.reloadIfChanged()).isFalse();
      assertThat(input(t, "m")).isEqualTo(new BigDecimal("1"));
      assertThat(
              registry
                  .get("quota.metering.prices.reloads")
                  .tag("result", "error")
                  .counter()
                  .count())
          .isEqualTo(1.0);
      // fixed again: taken
      write("prices.yaml", "models:\n  m: {input: '4', output: '1'}\n");
      assertThat(t.reloadIfChanged()).isTrue();
      assertThat(input(t, "m")).isEqualTo(new BigDecimal("4"));
    }
  }

  @Test
  void reloadIfChanged_fileDeleted_keepsPreviousTable() throws IOException {
    Path f = write("prices.yaml", "models:\n  m: {input: '1', output: '1'}\n");
    try (ReloadingPriceTable t = ReloadingPriceTable.load(f, registry)) {
      Files.delete(f);
      assertThat(t.reloadIfChanged()).isFalse();
      assertThat(input(t, "m")).isEqualTo(new BigDecimal("1"));
    }
  }

  @Test
  void load_badFileAtStart_throwsConfigException() throws IOException {
    Path f = write("prices.yaml", "models: {}\n");
    assertThatThrownBy(() -> ReloadingPriceTable.load(f, registry))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("QUOTA_PRICES_FILE")
        .hasMessageContaining("non-empty");
    assertThatThrownBy(() -> ReloadingPriceTable.load(dir.resolve("missing.yaml"), registry))
        .isInstanceOf(ConfigException.class);
  }

  @Test
  void open_noFile_usesShippedTable() {
    try (ReloadingPriceTable t = ReloadingPriceTable.read(Optional.empty(), registry)) {
      assertThat(t.get().find("gpt-4o")).isPresent();
      assertThat(t.reloadIfChanged()).isFalse();
    }
  }
}
