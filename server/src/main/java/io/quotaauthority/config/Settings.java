package io.quotaauthority.config;

import io.quotaauthority.keys.Money;
import io.quotaauthority.text.AsciiDecimal;
import io.quotaauthority.text.Shown;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.math.BigDecimal;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's configuration, resolved once at start and immutable: a flag wins over the
 * environment, which wins over the default ({@link Setting} documents each field). A bad value
 * throws {@link ConfigException} with one line naming the setting.
 */
public final class Settings {
  private final Optional<String> dbUrl;
  private final Optional<String> dbListenUrl;
  private final String dbUser;
  private final String dbPassword;
  private final int dbPoolSize;
  private final Path dataDir;
  private final int authzPort;
  private final int meteringPort;
  private final int adminPort;
  private final int metricsPort;
  private final Optional<String> adminToken;
  private final Optional<Path> adminTokensFile;
  private final Optional<String> reporterToken;
  private final Optional<String> meteringToken;
  private final long cacheMaxKeys;
  private final Duration negativeCacheTtl;
  private final Duration refreshInterval;
  private final int refreshKeysPerSecond;
  private final Duration usageCommitInterval;
  private final int usageCommitMax;
  private final int usageQueueMax;
  private final int usageCommitters;
  private final Duration shutdownTimeout;
  private final Optional<Path> pricesFile;
  private final Optional<BigDecimal> unpricedModelUsdPerMtok;
  private final boolean holds;
  private final BigDecimal leaseSliceUsd;
  private final Duration leaseTtl;
  private final Duration reporterHoldTtl;
  private final int leaseInstances;
  private final LogFormat logFormat;
  private final Optional<Path> tlsCert;
  private final Optional<Path> tlsKey;
  private final Optional<Path> tlsClientCa;
  private final InetAddress metricsBind;
  private final InetAddress adminBind;
  private final int consolePort;
  private final InetAddress consoleBind;

  private static final Logger log = LoggerFactory.getLogger(Settings.class);

  public enum LogFormat {
    TEXT,
    JSON
  }

  /**
   * Settings from the process environment and these command-line arguments; warnings (a secret
   * given as a flag) are logged at once.
   */
  public static Settings load(Map<String, String> env, List<String> args) {
    return load(env, args, w -> log.warn(w));
  }

  /**
   * Like {@link #load(Map, List)}, but warnings go to {@code warnings}: {@code serve} logs them
   * once the log format is set, so they come out in that format.
   */
  public static Settings load(
      Map<String, String> env, List<String> args, Consumer<String> warnings) {
    Flags flags = Flags.parse(args);
    Map<Setting, String> raw = new EnumMap<>(Setting.class);
    for (Setting s : Setting.values()) {
      String fromEnv = env.get(s.env());
      String value = flags.values.containsKey(s) ? flags.values.get(s) : fromEnv;
      raw.put(s, value != null ? value : s.defaultValue());
      if (s.secret()) {
        String direct = flags.values.containsKey(s) ? s.flag() : s.env();
        if (flags.values.containsKey(s) && !isBlank(flags.values.get(s))) {
          // The value itself is never part of the warning, only the flag's name.
          warnings.accept(
              s.flag()
                  + " puts a secret on the command line, where every local user can read"
                  + " it (ps, /proc/<pid>/cmdline); use "
                  + s.env()
                  + " or "
                  + s.fileEnv()
                  + " instead");
        }
        String fileSource = flags.files.containsKey(s) ? s.fileFlag() : s.fileEnv();
        String file = flags.files.containsKey(s) ? flags.files.get(s) : env.get(s.fileEnv());
        if (!isBlank(file)) {
          if (!isBlank(value)) {
            throw new ConfigException(
                direct + " and " + fileSource + " are both set; give " + s.env() + " one way only");
          }
          raw.put(s, secretFromFile(s, fileSource, Path.of(file.trim())));
        }
      }
    }
    return fromRaw(raw);
  }

  /** Defaults overridden by the given values: for tests and embedding. */
  public static Settings of(Map<Setting, String> overrides) {
    Map<Setting, String> raw = new EnumMap<>(Setting.class);
    for (Setting s : Setting.values()) {
      raw.put(s, overrides.getOrDefault(s, s.defaultValue()));
    }
    return fromRaw(raw);
  }

  /** A secret's file, read with {@link SecretFile}'s checks; a token must meet {@link Tokens}. */
  private static String secretFromFile(Setting s, String source, Path file) {
    String value = SecretFile.read(source, file);
    if (s.token()) {
      Tokens.check(source + ": " + file + ": the token", value);
    }
    return value;
  }

  private static boolean isBlank(String v) {
    return v == null || v.isBlank();
  }

  /**
   * The command line: {@code --flag value} or {@code --flag=value}, secrets' {@code -file} flags
   * apart.
   */
  private record Flags(Map<Setting, String> values, Map<Setting, String> files) {
    static Flags parse(List<String> args) {
      Flags f = new Flags(new EnumMap<>(Setting.class), new EnumMap<>(Setting.class));
      List<String> unknown = new ArrayList<>();
      for (int i = 0; i < args.size(); i++) {
        String arg = args.get(i);
        int eq = arg.indexOf('=');
        String flag = eq < 0 ? arg : arg.substring(0, eq);
        Setting match = null;
        Map<Setting, String> target = f.values;
        for (Setting s : Setting.values()) {
          if (s.flag().equals(flag)) {
            match = s;
          } else if (s.secret() && s.fileFlag().equals(flag)) {
            match = s;
            target = f.files;
          }
        }
        if (match == null) {
          unknown.add(flag);
          continue;
        }
        if (eq >= 0) {
          target.put(match, arg.substring(eq + 1));
        } else if (i + 1 < args.size()) {
          target.put(match, args.get(++i));
        } else {
          throw new ConfigException(flag + " needs a value");
        }
      }
      if (!unknown.isEmpty()) {
        throw new ConfigException("unknown option " + unknown.get(0) + " (see --help)");
      }
      return f;
    }
  }

  private static Settings fromRaw(Map<Setting, String> raw) {
    for (Setting setting : Setting.values()) {
      // The README's rule: an empty value means "unset" only where the default is empty; anywhere
      // else (QUOTA_DB_USER= for one) it is a mistake, not a request for the default.
      if (!setting.defaultValue().isEmpty()) {
        nonEmpty(raw, setting);
      }
    }
    for (Setting t : Setting.values()) {
      // Every token, whichever setting: one rule (Tokens), checked before anything opens.
      if (t.token() && !isBlank(raw.get(t))) {
        Tokens.check(t.env(), raw.get(t).trim());
      }
    }
    Settings s = new Settings(raw);
    if (s.tlsCert.isPresent() != s.tlsKey.isPresent()) {
      throw new ConfigException("QUOTA_TLS_CERT and QUOTA_TLS_KEY must be set together");
    }
    if (s.tlsClientCa.isPresent() && s.tlsCert.isEmpty()) {
      throw new ConfigException("QUOTA_TLS_CLIENT_CA needs QUOTA_TLS_CERT and QUOTA_TLS_KEY");
    }
    if (s.authzPort != 0 && s.authzPort == s.adminPort) {
      throw new ConfigException(
          "QUOTA_ADMIN_PORT must differ from QUOTA_AUTHZ_PORT (" + s.authzPort + ")");
    }
    // The metering listener is a server of its own: it cannot share a port with the other two.
    if (s.meteringPort != 0 && (s.meteringPort == s.authzPort || s.meteringPort == s.adminPort)) {
      throw new ConfigException(
          "QUOTA_METERING_PORT must differ from QUOTA_AUTHZ_PORT and QUOTA_ADMIN_PORT ("
              + s.meteringPort
              + ")");
    }
    // Checked here, before the database is opened or migrated: otherwise the clash shows only
    // when the ops listener binds, as a bare "Address already in use". 0 (off) clashes with
    // nothing.
    if (s.metricsPort != 0
        && (s.metricsPort == s.authzPort
            || s.metricsPort == s.adminPort
            || s.metricsPort == s.meteringPort)) {
      throw new ConfigException(
          "QUOTA_METRICS_PORT must differ from QUOTA_AUTHZ_PORT, QUOTA_ADMIN_PORT and QUOTA_METERING_PORT ("
              + s.metricsPort
              + ")");
    }
    if (s.consolePort != 0
        && (s.consolePort == s.authzPort
            || s.consolePort == s.adminPort
            || s.consolePort == s.meteringPort
            || s.consolePort == s.metricsPort)) {
      throw new ConfigException(
          "QUOTA_CONSOLE_PORT must differ from QUOTA_AUTHZ_PORT, QUOTA_ADMIN_PORT, QUOTA_METERING_PORT"
              + " and QUOTA_METRICS_PORT ("
              + s.consolePort
              + ")");
    }
    return s;
  }

  /** Reads each field from the raw values, by name: a bad value throws naming its setting. */
  private Settings(Map<Setting, String> raw) {
    this.dbUrl = optional(raw.get(Setting.DB_URL));
    this.dbListenUrl = optional(raw.get(Setting.DB_LISTEN_URL));
    if (dbListenUrl.isPresent() && dbUrl.isEmpty()) {
      throw new ConfigException(
          Setting.DB_LISTEN_URL.env()
              + " needs "
              + Setting.DB_URL.env()
              + ": the embedded development PostgreSQL has its own listener");
    }
    if (dbListenUrl.isPresent() && !dbListenUrl.get().startsWith("jdbc:postgresql:")) {
      throw new ConfigException(Setting.DB_LISTEN_URL.env() + " must be a jdbc:postgresql: URL");
    }
    this.dbUser = nonEmpty(raw, Setting.DB_USER);
    this.dbPassword = raw.get(Setting.DB_PASSWORD);
    this.dbPoolSize = intIn(raw, Setting.DB_POOL_SIZE, 1, 200);
    this.dataDir = Path.of(nonEmpty(raw, Setting.DATA_DIR));
    this.authzPort = port(raw, Setting.AUTHZ_PORT);
    this.meteringPort = port(raw, Setting.METERING_PORT);
    this.adminPort = port(raw, Setting.ADMIN_PORT);
    this.metricsPort = port(raw, Setting.METRICS_PORT);
    this.adminToken = optional(raw.get(Setting.ADMIN_TOKEN));
    this.adminTokensFile = optional(raw.get(Setting.ADMIN_TOKENS_FILE)).map(Path::of);
    this.reporterToken = optional(raw.get(Setting.REPORTER_TOKEN));
    this.meteringToken = optional(raw.get(Setting.METERING_TOKEN));
    this.cacheMaxKeys = intIn(raw, Setting.CACHE_MAX_KEYS, 1, Integer.MAX_VALUE);
    this.negativeCacheTtl =
        duration(raw, Setting.NEGATIVE_CACHE_TTL, Duration.ofMillis(1), Duration.ofHours(1));
    // Each refresh reads every cached key: more often than 10 times a second is a load, not a
    // bound.
    this.refreshInterval =
        duration(raw, Setting.REFRESH_INTERVAL, Duration.ofMillis(100), Duration.ofHours(1));
    // Below 1,000 a second a million keys would take over 16 minutes a pass.
    this.refreshKeysPerSecond = intIn(raw, Setting.REFRESH_KEYS_PER_SECOND, 1_000, 10_000_000);
    // Reports wait this long for their group: beyond 10 s streams would stall on acks.
    this.usageCommitInterval =
        duration(raw, Setting.USAGE_COMMIT_INTERVAL, Duration.ofMillis(1), Duration.ofSeconds(10));
    this.usageCommitMax = intIn(raw, Setting.USAGE_COMMIT_MAX, 1, 100_000);
    this.usageQueueMax = intIn(raw, Setting.USAGE_QUEUE_MAX, 1, 10_000_000);
    this.usageCommitters = intIn(raw, Setting.USAGE_COMMITTERS, 1, 8);
    // Capped so the deadline in nanoseconds cannot overflow (2562048h did) and a stop ends.
    this.shutdownTimeout =
        duration(raw, Setting.SHUTDOWN_TIMEOUT, Duration.ofMillis(1), Duration.ofHours(1));
    this.pricesFile = optional(raw.get(Setting.PRICES_FILE)).map(Path::of);
    // Empty is meaningful here (refuse unpriced models to keys with a quota), not a default.
    this.unpricedModelUsdPerMtok =
        optional(raw.get(Setting.UNPRICED_MODEL_USD_PER_MTOK))
            .map(v -> money(Setting.UNPRICED_MODEL_USD_PER_MTOK, v));
    this.holds = onOff(raw, Setting.HOLDS);
    this.leaseSliceUsd = money(Setting.LEASE_SLICE_USD, nonEmpty(raw, Setting.LEASE_SLICE_USD));
    if (leaseSliceUsd.signum() <= 0 || leaseSliceUsd.compareTo(BigDecimal.valueOf(1_000_000)) > 0) {
      throw new ConfigException(
          Setting.LEASE_SLICE_USD.env()
              + " must be between 0.00000001 and 1000000, got "
              + leaseSliceUsd.toPlainString());
    }
    // Under 3 s the renewal (every third of it) would be a steady load; past 10 min a crash
    // keeps budget out of reach for longer than anyone waits.
    this.leaseTtl = duration(raw, Setting.LEASE_TTL, Duration.ofSeconds(3), Duration.ofMinutes(10));
    this.leaseInstances = intIn(raw, Setting.LEASE_INSTANCES, 1, 1000);
    // At least a minute: a hold must outlive the settle margin on both sides of its expiry and a
    // usual request; at most a day, as long as a report can sensibly be late.
    this.reporterHoldTtl =
        duration(raw, Setting.REPORTER_HOLD_TTL, Duration.ofMinutes(1), Duration.ofHours(24));
    this.logFormat = logFormat(raw);
    this.tlsCert = optional(raw.get(Setting.TLS_CERT)).map(Path::of);
    this.tlsKey = optional(raw.get(Setting.TLS_KEY)).map(Path::of);
    this.tlsClientCa = optional(raw.get(Setting.TLS_CLIENT_CA)).map(Path::of);
    this.metricsBind = bindAddress(raw, Setting.METRICS_BIND);
    this.consolePort = port(raw, Setting.CONSOLE_PORT);
    this.consoleBind = bindAddress(raw, Setting.CONSOLE_BIND);
    this.adminBind = bindAddress(raw, Setting.ADMIN_BIND);
  }

  public Optional<String> dbUrl() {
    return dbUrl;
  }

  /** The LISTEN connection's URL when it differs from {@link #dbUrl()}; empty: the same. */
  public Optional<String> dbListenUrl() {
    return dbListenUrl;
  }

  public String dbUser() {
    return dbUser;
  }

  public String dbPassword() {
    return dbPassword;
  }

  public int dbPoolSize() {
    return dbPoolSize;
  }

  public Path dataDir() {
    return dataDir;
  }

  public int authzPort() {
    return authzPort;
  }

  public int meteringPort() {
    return meteringPort;
  }

  public int adminPort() {
    return adminPort;
  }

  public int metricsPort() {
    return metricsPort;
  }

  public Optional<String> adminToken() {
    return adminToken;
  }

  public Optional<Path> adminTokensFile() {
    return adminTokensFile;
  }

  public Optional<String> reporterToken() {
    return reporterToken;
  }

  public Optional<String> meteringToken() {
    return meteringToken;
  }

  public long cacheMaxKeys() {
    return cacheMaxKeys;
  }

  public Duration negativeCacheTtl() {
    return negativeCacheTtl;
  }

  public Duration refreshInterval() {
    return refreshInterval;
  }

  public int refreshKeysPerSecond() {
    return refreshKeysPerSecond;
  }

  public Duration usageCommitInterval() {
    return usageCommitInterval;
  }

  public int usageCommitMax() {
    return usageCommitMax;
  }

  public int usageQueueMax() {
    return usageQueueMax;
  }

  public int usageCommitters() {
    return usageCommitters;
  }

  public Duration shutdownTimeout() {
    return shutdownTimeout;
  }

  public Optional<Path> pricesFile() {
    return pricesFile;
  }

  /** Whether metered requests of keys with a quota are admitted on holds. */
  public boolean holds() {
    return holds;
  }

  public BigDecimal leaseSliceUsd() {
    return leaseSliceUsd;
  }

  public Duration leaseTtl() {
    return leaseTtl;
  }

  public int leaseInstances() {
    return leaseInstances;
  }

  public Duration reporterHoldTtl() {
    return reporterHoldTtl;
  }

  public Optional<BigDecimal> unpricedModelUsdPerMtok() {
    return unpricedModelUsdPerMtok;
  }

  public LogFormat logFormat() {
    return logFormat;
  }

  public Optional<Path> tlsCert() {
    return tlsCert;
  }

  public Optional<Path> tlsKey() {
    return tlsKey;
  }

  public Optional<Path> tlsClientCa() {
    return tlsClientCa;
  }

  public InetAddress metricsBind() {
    return metricsBind;
  }

  /** The console's HTTP port; 0 turns the console off. */
  public int consolePort() {
    return consolePort;
  }

  public InetAddress consoleBind() {
    return consoleBind;
  }

  public InetAddress adminBind() {
    return adminBind;
  }

  public boolean tlsEnabled() {
    return tlsCert.isPresent();
  }

  /** Every field, in declaration order: what toString shows and equals compares. */
  private static final List<Field> FIELDS =
      Arrays.stream(Settings.class.getDeclaredFields())
          .filter(f -> !Modifier.isStatic(f.getModifiers()))
          .toList();

  private List<Object> values() {
    List<Object> values = new ArrayList<>(FIELDS.size());
    for (Field f : FIELDS) {
      try {
        values.add(f.get(this));
      } catch (IllegalAccessException e) {
        throw new IllegalStateException(e);
      }
    }
    return values;
  }

  /** Each field by name, the password and tokens ({@link Setting#secret}) masked. */
  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("Settings[");
    List<Object> values = values();
    for (int i = 0; i < FIELDS.size(); i++) {
      String name = FIELDS.get(i).getName();
      Object value = values.get(i);
      if (SECRET_FIELDS.contains(name)) {
        value =
            value instanceof Optional<?> o
                ? o.map(v -> "***")
                : ((String) value).isEmpty() ? "" : "***";
      }
      sb.append(i > 0 ? ", " : "").append(name).append('=').append(value);
    }
    return sb.append(']').toString();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Settings other && values().equals(other.values());
  }

  @Override
  public int hashCode() {
    return values().hashCode();
  }

  /** The fields of every {@link Setting#secret}: DB_PASSWORD's is dbPassword, and so on. */
  private static final Set<String> SECRET_FIELDS =
      Arrays.stream(Setting.values())
          .filter(Setting::secret)
          .map(Settings::componentName)
          .collect(Collectors.toSet());

  private static String componentName(Setting s) {
    StringBuilder name = new StringBuilder();
    for (String part : s.name().toLowerCase(Locale.ROOT).split("_")) {
      name.append(
          name.length() == 0 ? part : Character.toUpperCase(part.charAt(0)) + part.substring(1));
    }
    return name.toString();
  }

  private static Optional<String> optional(String v) {
    return v == null || v.isBlank() ? Optional.empty() : Optional.of(v.trim());
  }

  private static String nonEmpty(Map<Setting, String> raw, Setting s) {
    String v = raw.get(s);
    if (v == null || v.isBlank()) {
      throw new ConfigException(s.env() + " must not be empty");
    }
    return v.trim();
  }

  private static int port(Map<Setting, String> raw, Setting s) {
    // 0 asks the OS for an ephemeral port (tests); for the metrics port it turns the listener off.
    return intIn(raw, s, 0, 65535);
  }

  private static int intIn(Map<Setting, String> raw, Setting s, int min, int max) {
    String v = nonEmpty(raw, s);
    // ASCII digits only (AsciiDecimal): Integer.parseInt would also take "+1" and "١" as 1.
    long n = AsciiDecimal.parse(v);
    if (n == AsciiDecimal.MALFORMED) {
      throw new ConfigException(
          s.env()
              + " must be a whole number (ASCII digits, no sign or leading zeros), got "
              + Shown.quoted(v));
    }
    if (n < min || n > max) { // TOO_LARGE is negative, so it lands here too; v is plain digits
      throw new ConfigException(s.env() + " must be between " + min + " and " + max + ", got " + v);
    }
    return (int) n;
  }

  private static final List<String> UNITS = List.of("ms", "s", "m", "h");
  private static final List<Duration> UNIT_LENGTHS =
      List.of(
          Duration.ofMillis(1), Duration.ofSeconds(1), Duration.ofMinutes(1), Duration.ofHours(1));

  /** Durations as "250ms", "5s", "2m", "1h", within min..max (both stated in the setting's doc). */
  static Duration duration(Map<Setting, String> raw, Setting s, Duration min, Duration max) {
    String v = nonEmpty(raw, s);
    String lower = v.toLowerCase(Locale.ROOT);
    for (int i = 0; i < UNITS.size(); i++) {
      String unit = UNITS.get(i);
      // "ms" is tried before "s" and "m", so "5ms" is never read as 5m followed by junk.
      if (!lower.endsWith(unit)) {
        continue;
      }
      long n = AsciiDecimal.parse(lower.substring(0, lower.length() - unit.length()));
      if (n == AsciiDecimal.MALFORMED) {
        break;
      }
      Duration perUnit = UNIT_LENGTHS.get(i);
      // Compared in units before multiplying, so a huge number is refused instead of overflowing.
      if (n == AsciiDecimal.TOO_LARGE
          || n > max.dividedBy(perUnit)
          || perUnit.multipliedBy(n).compareTo(min) < 0) {
        throw new ConfigException(
            s.env()
                + " must be between "
                + shown(min)
                + " and "
                + shown(max)
                + ", got "
                + Shown.quoted(v));
      }
      return perUnit.multipliedBy(n);
    }
    throw new ConfigException(
        s.env()
            + " must be a duration like 250ms, 5s, 2m or 1h (ASCII digits, no sign),"
            + " got "
            + Shown.quoted(v));
  }

  /** A bound as the settings are written: "1ms", "10s", "1h". */
  private static String shown(Duration d) {
    for (int i = UNITS.size() - 1; i >= 0; i--) {
      Duration perUnit = UNIT_LENGTHS.get(i);
      if (d.compareTo(perUnit) >= 0 && d.toMillis() % perUnit.toMillis() == 0) {
        return d.dividedBy(perUnit) + UNITS.get(i);
      }
    }
    return d.toMillis() + "ms";
  }

  private static final Pattern IPV4 =
      Pattern.compile(
          "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}");
  private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*");

  /**
   * An IP address literal (127.0.0.1, 0.0.0.0, ::1, ::), never a host name: a listen address must
   * not depend on DNS at start, nor silently pick one of several addresses.
   */
  static InetAddress bindAddress(Map<Setting, String> raw, Setting s) {
    String v = nonEmpty(raw, s);
    String bare = v.startsWith("[") && v.endsWith("]") ? v.substring(1, v.length() - 1) : v;
    // Only literals reach getByName, which parses them without any lookup.
    if (IPV4.matcher(bare).matches() || IPV6.matcher(bare).matches()) {
      try {
        return InetAddress.getByName(bare);
      } catch (UnknownHostException e) {
        // not a valid IPv6 literal: refused below
      }
    }
    throw new ConfigException(
        s.env() + " must be an IP address such as 0.0.0.0, 127.0.0.1, :: or ::1, got '" + v + "'");
  }

  /** A USD amount by {@link Money}'s rule (the one every API follows), as a BigDecimal. */
  private static BigDecimal money(Setting s, String v) {
    try {
      return Money.parse(s.env(), v);
    } catch (IllegalArgumentException e) {
      // Money's message quotes the raw text; a setting's names the variable and escapes it.
      throw new ConfigException(
          s.env() + " must be a decimal USD amount like 1.5, got " + Shown.quoted(v));
    }
  }

  private static boolean onOff(Map<Setting, String> raw, Setting s) {
    String v = nonEmpty(raw, s).toLowerCase(Locale.ROOT);
    return switch (v) {
      case "on" -> true;
      case "off" -> false;
      default -> throw new ConfigException(s.env() + " must be on or off, got " + Shown.quoted(v));
    };
  }

  private static LogFormat logFormat(Map<Setting, String> raw) {
    String v = nonEmpty(raw, Setting.LOG_FORMAT).toLowerCase(Locale.ROOT);
    return switch (v) {
      case "text" -> LogFormat.TEXT;
      case "json" -> LogFormat.JSON;
      default ->
          throw new ConfigException(
              "QUOTA_LOG_FORMAT must be text or json, got " + Shown.quoted(v));
    };
  }
}
