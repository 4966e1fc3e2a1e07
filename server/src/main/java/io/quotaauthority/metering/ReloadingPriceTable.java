package io.quotaauthority.metering;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quotaauthority.config.ConfigException;
import io.quotaauthority.threads.DaemonThreads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The price table in force: the file named by QUOTA_PRICES_FILE, re-read when its content changes,
 * or the table shipped in the jar. The file is polled (not watched) because a poll also sees a file
 * replaced through a symlink swap, as Kubernetes ConfigMaps are. A file that cannot be read or
 * parsed at start stops the server; later, it keeps the previous table and logs why, once per
 * distinct bad content.
 */
public final class ReloadingPriceTable implements Supplier<PriceTable>, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ReloadingPriceTable.class);

  public static final Duration POLL_INTERVAL = Duration.ofSeconds(5);

  /** A price table is a few KiB; refuse to read something that is clearly not one. */
  private static final long MAX_FILE_BYTES = 4L << 20;

  private final Path file;
  private final Counter reloaded;
  private final Counter reloadFailed;
  private volatile PriceTable current;
  private byte[] lastContent;
  private String lastError;
  private ScheduledExecutorService poller;

  private ReloadingPriceTable(Path file, PriceTable initial, MeterRegistry registry) {
    this.file = file;
    this.current = initial;
    this.reloaded =
        Counter.builder("quota.metering.prices.reloads")
            .tag("result", "ok")
            .description("price table reloads")
            .register(registry);
    this.reloadFailed =
        Counter.builder("quota.metering.prices.reloads")
            .tag("result", "error")
            .description("price table reloads")
            .register(registry);
  }

  /**
   * The table from this file, or the shipped table when the file is empty; read now, polled only
   * once {@link #start()} is called (the composition root reads every input before it opens or
   * starts anything). Throws {@link ConfigException} when the file cannot be used at start.
   */
  public static ReloadingPriceTable read(Optional<Path> file, MeterRegistry registry) {
    if (file.isEmpty()) {
      PriceTable shipped = PriceTable.shipped();
      log.info(
          "using the shipped price table ({} models, as of {})", shipped.size(), shipped.asOf());
      return new ReloadingPriceTable(null, shipped, registry);
    }
    return load(file.get(), registry);
  }

  /**
   * Polls the file every {@link #POLL_INTERVAL} from now on (nothing to poll for the shipped
   * table).
   */
  public ReloadingPriceTable start() {
    if (file != null) {
      startPolling(POLL_INTERVAL);
    }
    return this;
  }

  /** Reads the file now, without polling (tests drive {@link #reloadIfChanged()} themselves). */
  static ReloadingPriceTable load(Path file, MeterRegistry registry) {
    byte[] content;
    PriceTable table;
    try {
      content = read(file);
      table = PriceTable.parse(content);
    } catch (IOException | IllegalArgumentException e) {
      throw new ConfigException("QUOTA_PRICES_FILE " + file + ": " + reason(e), e);
    }
    ReloadingPriceTable t = new ReloadingPriceTable(file, table, registry);
    t.lastContent = content;
    log.info("price table {}: {} models (as of {})", file, table.size(), table.asOf());
    return t;
  }

  @Override
  public PriceTable get() {
    return current;
  }

  /**
   * Re-reads the file and swaps the table in if its content changed and parses. Returns true when a
   * new table took effect.
   */
  synchronized boolean reloadIfChanged() {
    if (file == null) {
      return false;
    }
    byte[] content;
    try {
      content = read(file);
    } catch (IOException e) {
      failed("cannot read it: " + reason(e));
      return false;
    }
    if (Arrays.equals(content, lastContent)) {
      return false;
    }
    try {
      PriceTable table = PriceTable.parse(content);
      current = table;
      lastContent = content;
      lastError = null;
      reloaded.increment();
      log.info("price table {} reloaded: {} models (as of {})", file, table.size(), table.asOf());
      return true;
    } catch (IllegalArgumentException e) {
      failed(reason(e));
      // Remember the bad content so it is reported once, not every poll.
      lastContent = content;
      return false;
    }
  }

  private void failed(String why) {
    if (!why.equals(lastError)) {
      reloadFailed.increment();
      log.warn("price table {} not reloaded, keeping the previous one: {}", file, why);
      lastError = why;
    }
  }

  private synchronized void startPolling(Duration every) {
    poller = DaemonThreads.scheduler("price-table-poller");
    poller.scheduleWithFixedDelay(
        () -> {
          try {
            reloadIfChanged();
          } catch (RuntimeException e) {
            log.warn("price table poll failed", e); // keeps the poller alive
          }
        },
        every.toMillis(),
        every.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  @Override
  public synchronized void close() {
    if (poller != null) {
      poller.shutdownNow();
    }
  }

  private static byte[] read(Path file) throws IOException {
    long size = Files.size(file);
    if (size > MAX_FILE_BYTES) {
      throw new IOException("file is " + size + " bytes, more than " + MAX_FILE_BYTES);
    }
    return Files.readAllBytes(file);
  }

  private static String reason(Exception e) {
    String m = e.getMessage();
    if (e instanceof IllegalArgumentException && m != null) {
      return m; // already a sentence about the file's content
    }
    return e.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }
}
