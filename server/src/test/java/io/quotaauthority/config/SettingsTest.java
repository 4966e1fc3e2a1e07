package io.quotaauthority.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SettingsTest {

  private static Settings load(Map<String, String> env, String... args) {
    return Settings.load(env, List.of(args));
  }

  @Test
  void load_nothingSet_defaults() {
    Settings s = load(Map.of());

    assertThat(s.dbUrl()).isEmpty();
    assertThat(s.dbUser()).isEqualTo("postgres");
    assertThat(s.dbPassword()).isEmpty();
    assertThat(s.dbPoolSize()).isEqualTo(8);
    assertThat(s.dataDir()).isEqualTo(Path.of("./data"));
    assertThat(s.authzPort()).isEqualTo(9191);
    assertThat(s.adminPort()).isEqualTo(9192);
    assertThat(s.metricsPort()).isEqualTo(9193);
    assertThat(s.adminToken()).isEmpty();
    assertThat(s.reporterToken()).isEmpty();
    assertThat(s.cacheMaxKeys()).isEqualTo(2_000_000);
    assertThat(s.negativeCacheTtl()).isEqualTo(Duration.ofSeconds(5));
    assertThat(s.refreshInterval()).isEqualTo(Duration.ofSeconds(5));
    assertThat(s.refreshKeysPerSecond()).isEqualTo(20_000);
    assertThat(s.usageCommitInterval()).isEqualTo(Duration.ofMillis(5));
    assertThat(s.usageCommitMax()).isEqualTo(2000);
    assertThat(s.usageQueueMax()).isEqualTo(50_000);
    assertThat(s.shutdownTimeout()).isEqualTo(Duration.ofSeconds(10));
    assertThat(s.pricesFile()).isEmpty();
    assertThat(s.unpricedModelUsdPerMtok()).isEmpty();
    assertThat(s.logFormat()).isEqualTo(Settings.LogFormat.TEXT);
    assertThat(s.tlsEnabled()).isFalse();
    assertThat(s.tlsClientCa()).isEmpty();
  }

  @Test
  void load_defaultsOfEverySetting_parse() {
    // Settings.of with no overrides must accept every documented default.
    assertThat(Settings.of(Map.of())).isEqualTo(load(Map.of()));
  }

  @Test
  void load_envSet_overridesDefault() {
    Settings s =
        load(
            Map.of(
                "QUOTA_AUTHZ_PORT",
                "7001",
                "QUOTA_DB_URL",
                "jdbc:postgresql://db/q",
                "QUOTA_NEGATIVE_CACHE_TTL",
                "250ms",
                "QUOTA_LOG_FORMAT",
                "JSON",
                "QUOTA_ADMIN_TOKEN",
                " tok-0123456789abcdef0123456789abcdef "));

    assertThat(s.authzPort()).isEqualTo(7001);
    assertThat(s.dbUrl()).contains("jdbc:postgresql://db/q");
    assertThat(s.negativeCacheTtl()).isEqualTo(Duration.ofMillis(250));
    assertThat(s.logFormat()).isEqualTo(Settings.LogFormat.JSON);
    assertThat(s.adminToken()).contains("tok-0123456789abcdef0123456789abcdef");
    assertThat(s.adminPort()).isEqualTo(9192);
  }

  @Test
  void load_flagAndEnvSet_flagWins() {
    Settings s =
        load(
            Map.of(
                "QUOTA_AUTHZ_PORT", "7001", "QUOTA_ADMIN_PORT", "7002", "QUOTA_DATA_DIR", "/env"),
            "--authz-port",
            "8001",
            "--admin-port=8002");

    assertThat(s.authzPort()).isEqualTo(8001);
    assertThat(s.adminPort()).isEqualTo(8002);
    assertThat(s.dataDir()).isEqualTo(Path.of("/env"));
  }

  @Test
  void load_flagOnly_overridesDefault() {
    Settings s =
        load(
            Map.of(), "--refresh-interval", "2m", "--shutdown-timeout=1h", "--db-pool-size", "200");

    assertThat(s.refreshInterval()).isEqualTo(Duration.ofMinutes(2));
    assertThat(s.shutdownTimeout()).isEqualTo(Duration.ofHours(1));
    assertThat(s.dbPoolSize()).isEqualTo(200);
  }

  @Test
  void load_badEnvValueOverriddenByGoodFlag_starts() {
    assertThat(load(Map.of("QUOTA_AUTHZ_PORT", "abc"), "--authz-port", "1").authzPort())
        .isEqualTo(1);
  }

  @Test
  void load_nothingSet_metricsOnEveryIpv4InterfaceAdminOnLoopback() {
    Settings s = load(Map.of());

    assertThat(s.metricsBind().getHostAddress()).isEqualTo("0.0.0.0");
    assertThat(s.adminBind().isLoopbackAddress()).isTrue();
    assertThat(s.adminBind().getHostAddress()).isEqualTo("127.0.0.1");
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = ';',
      value = {
        "0.0.0.0; 0.0.0.0",
        "127.0.0.1; 127.0.0.1",
        "10.1.2.3; 10.1.2.3",
        ":: ; 0:0:0:0:0:0:0:0",
        "::1; 0:0:0:0:0:0:0:1",
        "[::1]; 0:0:0:0:0:0:0:1",
        "fe80::1; fe80:0:0:0:0:0:0:1"
      })
  void load_bindAddressLiteral_parsed(String given, String address) {
    assertThat(load(Map.of("QUOTA_ADMIN_BIND", given)).adminBind().getHostAddress())
        .isEqualTo(address);
    assertThat(load(Map.of(), "--metrics-bind", given).metricsBind().getHostAddress())
        .isEqualTo(address);
  }

  @ParameterizedTest(name = "''{0}''")
  @CsvSource(
      delimiter = ';',
      value = {
        "localhost",
        "example.com",
        "256.0.0.1",
        "1.2.3",
        "01.2.3.4",
        "1.2.3.4.5",
        ":::1::",
        "*",
        "0x7f.0.0.1",
        "١٢٧.0.0.1"
      })
  void load_bindAddressNotAnIpLiteral_configExceptionNamingSetting(String given) {
    assertThatThrownBy(() -> load(Map.of("QUOTA_ADMIN_BIND", given)))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_ADMIN_BIND must be an IP address");
    assertThatThrownBy(() -> load(Map.of("QUOTA_METRICS_BIND", given)))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_METRICS_BIND must be an IP address");
  }

  @Test
  void load_emptyEnvValue_meansUnset() {
    Settings s = load(Map.of("QUOTA_DB_URL", "", "QUOTA_ADMIN_TOKEN", "  "));

    assertThat(s.dbUrl()).isEmpty();
    assertThat(s.adminToken()).isEqualTo(Optional.empty());
  }

  @Test
  void load_everyFlag_isRecognised() {
    for (Setting setting : Setting.values()) {
      String value =
          switch (setting) {
            case TLS_CERT, TLS_KEY, TLS_CLIENT_CA -> "";
            default -> setting.defaultValue();
          };
      load(Map.of(), setting.flag() + "=" + value);
    }
  }

  @ParameterizedTest(name = "{0}={1}")
  @CsvSource(
      delimiter = ';',
      value = {
        "QUOTA_AUTHZ_PORT; 70000; QUOTA_AUTHZ_PORT must be between 0 and 65535, got 70000",
        "QUOTA_AUTHZ_PORT; 99999999999999999999; QUOTA_AUTHZ_PORT must be between 0 and 65535, got 99999999999999999999",
        "QUOTA_ADMIN_PORT; -1; QUOTA_ADMIN_PORT must be a whole number (ASCII digits, no sign or leading zeros), got '-1'",
        "QUOTA_METRICS_PORT; abc; QUOTA_METRICS_PORT must be a whole number (ASCII digits, no sign or leading zeros), got 'abc'",
        "QUOTA_AUTHZ_PORT; abc; QUOTA_AUTHZ_PORT must be a whole number (ASCII digits, no sign or leading zeros), got 'abc'",
        // Integer.parseInt takes every one of these as a number; the ports refuse them.
        "QUOTA_AUTHZ_PORT; +9191; QUOTA_AUTHZ_PORT must be a whole number (ASCII digits, no sign or leading zeros), got '+9191'",
        "QUOTA_AUTHZ_PORT; 09191; QUOTA_AUTHZ_PORT must be a whole number (ASCII digits, no sign or leading zeros), got '09191'",
        "QUOTA_AUTHZ_PORT; \u0669\u0661\u0669\u0661; QUOTA_AUTHZ_PORT must be a whole number (ASCII digits, no sign or leading zeros), got '\\u{0669}\\u{0661}\\u{0669}\\u{0661}'",
        "QUOTA_ADMIN_PORT; \uff19\uff11\uff19\uff12; QUOTA_ADMIN_PORT must be a whole number (ASCII digits, no sign or leading zeros), got '\\u{FF19}\\u{FF11}\\u{FF19}\\u{FF12}'",
        "QUOTA_METRICS_PORT; \u096f\u0967\u096f\u0969; QUOTA_METRICS_PORT must be a whole number (ASCII digits, no sign or leading zeros), got '\\u{096F}\\u{0967}\\u{096F}\\u{0969}'",
        "QUOTA_DB_POOL_SIZE; 0; QUOTA_DB_POOL_SIZE must be between 1 and 200, got 0",
        "QUOTA_DB_POOL_SIZE; 201; QUOTA_DB_POOL_SIZE must be between 1 and 200, got 201",
        "QUOTA_DB_POOL_SIZE; +8; QUOTA_DB_POOL_SIZE must be a whole number (ASCII digits, no sign or leading zeros), got '+8'",
        "QUOTA_CACHE_MAX_KEYS; 0; QUOTA_CACHE_MAX_KEYS must be between 1 and 2147483647, got 0",
        "QUOTA_CACHE_MAX_KEYS; 2147483648; QUOTA_CACHE_MAX_KEYS must be between 1 and 2147483647, got 2147483648",
        "QUOTA_NEGATIVE_CACHE_TTL; 5x; QUOTA_NEGATIVE_CACHE_TTL must be a duration like 250ms, 5s, 2m or 1h (ASCII digits, no sign), got '5x'",
        "QUOTA_NEGATIVE_CACHE_TTL; 2h; QUOTA_NEGATIVE_CACHE_TTL must be between 1ms and 1h, got '2h'",
        "QUOTA_REFRESH_INTERVAL; 5; QUOTA_REFRESH_INTERVAL must be a duration like 250ms, 5s, 2m or 1h (ASCII digits, no sign), got '5'",
        "QUOTA_REFRESH_INTERVAL; 99ms; QUOTA_REFRESH_INTERVAL must be between 100ms and 1h, got '99ms'",
        "QUOTA_REFRESH_INTERVAL; 61m; QUOTA_REFRESH_INTERVAL must be between 100ms and 1h, got '61m'",
        "QUOTA_REFRESH_KEYS_PER_SECOND; 999; QUOTA_REFRESH_KEYS_PER_SECOND must be between 1000 and 10000000, got 999",
        "QUOTA_REFRESH_KEYS_PER_SECOND; 10000001; QUOTA_REFRESH_KEYS_PER_SECOND must be between 1000 and 10000000, got 10000001",
        "QUOTA_USAGE_COMMIT_INTERVAL; 0ms; QUOTA_USAGE_COMMIT_INTERVAL must be between 1ms and 10s, got '0ms'",
        "QUOTA_USAGE_COMMIT_INTERVAL; 11s; QUOTA_USAGE_COMMIT_INTERVAL must be between 1ms and 10s, got '11s'",
        "QUOTA_SHUTDOWN_TIMEOUT; -5s; QUOTA_SHUTDOWN_TIMEOUT must be a duration like 250ms, 5s, 2m or 1h (ASCII digits, no sign), got '-5s'",
        "QUOTA_SHUTDOWN_TIMEOUT; +5s; QUOTA_SHUTDOWN_TIMEOUT must be a duration like 250ms, 5s, 2m or 1h (ASCII digits, no sign), got '+5s'",
        "QUOTA_SHUTDOWN_TIMEOUT; 05s; QUOTA_SHUTDOWN_TIMEOUT must be a duration like 250ms, 5s, 2m or 1h (ASCII digits, no sign), got '05s'",
        "QUOTA_SHUTDOWN_TIMEOUT; \u0665s; QUOTA_SHUTDOWN_TIMEOUT must be a duration like 250ms, 5s, 2m or 1h (ASCII digits, no sign), got '\\u{0665}s'",
        "QUOTA_SHUTDOWN_TIMEOUT; 0s; QUOTA_SHUTDOWN_TIMEOUT must be between 1ms and 1h, got '0s'",
        // Accepted before, then SIGTERM threw "long overflow" computing the deadline in
        // nanoseconds.
        "QUOTA_SHUTDOWN_TIMEOUT; 2562048h; QUOTA_SHUTDOWN_TIMEOUT must be between 1ms and 1h, got '2562048h'",
        "QUOTA_SHUTDOWN_TIMEOUT; 3601s; QUOTA_SHUTDOWN_TIMEOUT must be between 1ms and 1h, got '3601s'",
        "QUOTA_SHUTDOWN_TIMEOUT; 3600001ms; QUOTA_SHUTDOWN_TIMEOUT must be between 1ms and 1h, got '3600001ms'",
        "QUOTA_SHUTDOWN_TIMEOUT; 99999999999999999999h; QUOTA_SHUTDOWN_TIMEOUT must be between 1ms and 1h, got '99999999999999999999h'",
        "QUOTA_SHUTDOWN_TIMEOUT; 9223372036854775807ms; QUOTA_SHUTDOWN_TIMEOUT must be between 1ms and 1h, got '9223372036854775807ms'",
        "QUOTA_SHUTDOWN_TIMEOUT; ms; QUOTA_SHUTDOWN_TIMEOUT must be a duration like 250ms, 5s, 2m or 1h (ASCII digits, no sign), got 'ms'",
        "QUOTA_SHUTDOWN_TIMEOUT; 1d; QUOTA_SHUTDOWN_TIMEOUT must be a duration like 250ms, 5s, 2m or 1h (ASCII digits, no sign), got '1d'",
        "QUOTA_USAGE_COMMIT_MAX; 100001; QUOTA_USAGE_COMMIT_MAX must be between 1 and 100000, got 100001",
        "QUOTA_USAGE_QUEUE_MAX; 1.5; QUOTA_USAGE_QUEUE_MAX must be a whole number (ASCII digits, no sign or leading zeros), got '1.5'",
        "QUOTA_USAGE_QUEUE_MAX; 1e6; QUOTA_USAGE_QUEUE_MAX must be a whole number (ASCII digits, no sign or leading zeros), got '1e6'",
        "QUOTA_UNPRICED_MODEL_USD_PER_MTOK; -1; QUOTA_UNPRICED_MODEL_USD_PER_MTOK must be a decimal USD amount like 1.5, got '-1'",
        "QUOTA_UNPRICED_MODEL_USD_PER_MTOK; \u0661; QUOTA_UNPRICED_MODEL_USD_PER_MTOK must be a decimal USD amount like 1.5, got '\\u{0661}'",
        "QUOTA_HOLDS; yes; QUOTA_HOLDS must be on or off, got 'yes'",
        "QUOTA_HOLDS; ''; QUOTA_HOLDS must not be empty",
        "QUOTA_LEASE_SLICE_USD; 0; QUOTA_LEASE_SLICE_USD must be between 0.00000001 and 1000000, got 0",
        "QUOTA_LEASE_SLICE_USD; 1000000.00000001; QUOTA_LEASE_SLICE_USD must be between 0.00000001 and 1000000, got 1000000.00000001",
        "QUOTA_LEASE_SLICE_USD; -1; QUOTA_LEASE_SLICE_USD must be a decimal USD amount like 1.5, got '-1'",
        "QUOTA_LEASE_SLICE_USD; 1e3; QUOTA_LEASE_SLICE_USD must be a decimal USD amount like 1.5, got '1e3'",
        "QUOTA_LEASE_TTL; 2999ms; QUOTA_LEASE_TTL must be between 3s and 10m, got '2999ms'",
        "QUOTA_LEASE_TTL; 601s; QUOTA_LEASE_TTL must be between 3s and 10m, got '601s'",
        "QUOTA_REPORTER_HOLD_TTL; 59s; QUOTA_REPORTER_HOLD_TTL must be between 1m and 24h, got '59s'",
        "QUOTA_REPORTER_HOLD_TTL; 25h; QUOTA_REPORTER_HOLD_TTL must be between 1m and 24h, got '25h'",
        "QUOTA_LEASE_INSTANCES; 0; QUOTA_LEASE_INSTANCES must be between 1 and 1000, got 0",
        "QUOTA_LEASE_INSTANCES; 1001; QUOTA_LEASE_INSTANCES must be between 1 and 1000, got 1001",
        "QUOTA_LOG_FORMAT; xml; QUOTA_LOG_FORMAT must be text or json, got 'xml'",
        "QUOTA_DATA_DIR; ' '; QUOTA_DATA_DIR must not be empty",
        // The README: a setting whose default is not empty refuses an empty value.
        "QUOTA_DB_USER; ''; QUOTA_DB_USER must not be empty",
        "QUOTA_DB_USER; ' '; QUOTA_DB_USER must not be empty",
        "QUOTA_AUTHZ_PORT; ''; QUOTA_AUTHZ_PORT must not be empty",
        "QUOTA_SHUTDOWN_TIMEOUT; ''; QUOTA_SHUTDOWN_TIMEOUT must not be empty",
        "QUOTA_LOG_FORMAT; ''; QUOTA_LOG_FORMAT must not be empty",
        "QUOTA_ADMIN_BIND; ' '; QUOTA_ADMIN_BIND must not be empty",
      })
  void load_badEnvValue_configExceptionNamingSetting(String env, String value, String message) {
    assertThatThrownBy(() -> load(Map.of(env, value)))
        .isInstanceOf(ConfigException.class)
        .hasMessage(message);
  }

  @Test
  void load_badFlagValue_configExceptionNamingSetting() {
    assertThatThrownBy(() -> load(Map.of(), "--authz-port", "70000"))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_AUTHZ_PORT must be between 0 and 65535, got 70000");
    assertThatThrownBy(() -> load(Map.of(), "--negative-cache-ttl=5x"))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_NEGATIVE_CACHE_TTL must be a duration");
  }

  @Test
  void load_sameAuthzAndAdminPort_configExceptionNamingBoth() {
    assertThatThrownBy(() -> load(Map.of("QUOTA_AUTHZ_PORT", "9000", "QUOTA_ADMIN_PORT", "9000")))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_ADMIN_PORT must differ from QUOTA_AUTHZ_PORT (9000)");
  }

  @ParameterizedTest(name = "metrics {0}, authz {1}, admin {2}")
  @CsvSource({"9000, 9000, 9192", "9000, 9191, 9000", "9191, 0, 9191"})
  void load_metricsPortEqualToAnother_configExceptionBeforeAnythingOpens(
      String metrics, String authz, String admin) {
    assertThatThrownBy(
            () ->
                load(
                    Map.of(
                        "QUOTA_METRICS_PORT",
                        metrics,
                        "QUOTA_AUTHZ_PORT",
                        authz,
                        "QUOTA_ADMIN_PORT",
                        admin)))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_METRICS_PORT must differ from QUOTA_AUTHZ_PORT, QUOTA_ADMIN_PORT and QUOTA_METERING_PORT ("
                + metrics
                + ")");
  }

  @ParameterizedTest(name = "console {0} against {1}")
  @CsvSource({
    "9191, QUOTA_AUTHZ_PORT",
    "9192, QUOTA_ADMIN_PORT",
    "9193, QUOTA_METRICS_PORT",
    "9194, QUOTA_METERING_PORT"
  })
  void load_consolePortEqualToAnother_configExceptionNamingIt(String port, String other) {
    assertThatThrownBy(() -> load(Map.of("QUOTA_CONSOLE_PORT", port)))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_CONSOLE_PORT must differ from")
        .hasMessageContaining(other)
        .hasMessageEndingWith("(" + port + ")");
  }

  @Test
  void load_consoleDefaults_port9195OnLoopbackAnd0TurnsItOff() {
    Settings s = load(Map.of());
    assertThat(s.consolePort()).isEqualTo(9195);
    assertThat(s.consoleBind().getHostAddress()).isEqualTo("127.0.0.1");
    assertThat(load(Map.of("QUOTA_CONSOLE_PORT", "0")).consolePort()).isZero();
    assertThatThrownBy(() -> load(Map.of("QUOTA_CONSOLE_BIND", "localhost")))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_CONSOLE_BIND must be an IP address");
    assertThatThrownBy(() -> load(Map.of("QUOTA_CONSOLE_PORT", "65536")))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith("QUOTA_CONSOLE_PORT");
  }

  @Test
  void load_metricsPortOffOrEphemeralPorts_noClash() {
    // 0 turns the metrics listener off; 0 for the gRPC ports asks for two different free ports.
    Settings s =
        load(Map.of("QUOTA_METRICS_PORT", "0", "QUOTA_AUTHZ_PORT", "0", "QUOTA_ADMIN_PORT", "0"));

    assertThat(s.metricsPort()).isZero();
  }

  @Test
  void load_edgeValues_accepted() {
    Settings s =
        load(
            Map.of(
                "QUOTA_AUTHZ_PORT",
                "65535",
                "QUOTA_ADMIN_PORT",
                "0",
                "QUOTA_METRICS_PORT",
                "1",
                "QUOTA_SHUTDOWN_TIMEOUT",
                "1h",
                "QUOTA_USAGE_COMMIT_INTERVAL",
                "10s",
                "QUOTA_REFRESH_INTERVAL",
                "100ms",
                "QUOTA_REFRESH_KEYS_PER_SECOND",
                "1000",
                "QUOTA_NEGATIVE_CACHE_TTL",
                "3600000ms",
                "QUOTA_CACHE_MAX_KEYS",
                "2147483647",
                "QUOTA_DB_USER",
                " quota "));

    assertThat(s.authzPort()).isEqualTo(65535);
    assertThat(s.metricsPort()).isEqualTo(1);
    assertThat(s.shutdownTimeout()).isEqualTo(Duration.ofHours(1));
    assertThat(s.usageCommitInterval()).isEqualTo(Duration.ofSeconds(10));
    assertThat(s.refreshInterval()).isEqualTo(Duration.ofMillis(100));
    assertThat(s.refreshKeysPerSecond()).isEqualTo(1_000);
    assertThat(s.negativeCacheTtl()).isEqualTo(Duration.ofHours(1));
    assertThat(s.cacheMaxKeys()).isEqualTo(Integer.MAX_VALUE);
    assertThat(s.dbUser()).isEqualTo("quota");
    assertThat(load(Map.of("QUOTA_SHUTDOWN_TIMEOUT", "60M")).shutdownTimeout())
        .isEqualTo(Duration.ofHours(1));
    assertThat(load(Map.of("QUOTA_USAGE_COMMIT_INTERVAL", "1ms")).usageCommitInterval())
        .isEqualTo(Duration.ofMillis(1));
  }

  @Test
  void load_holdSettingsAtTheirEdges_accepted() {
    Settings low =
        load(
            Map.of(
                "QUOTA_HOLDS", "OFF",
                "QUOTA_LEASE_SLICE_USD", "0.00000001",
                "QUOTA_LEASE_TTL", "3s",
                "QUOTA_LEASE_INSTANCES", "1"));
    assertThat(low.holds()).isFalse();
    assertThat(low.leaseSliceUsd()).isEqualByComparingTo("0.00000001");
    assertThat(low.leaseTtl()).isEqualTo(Duration.ofSeconds(3));
    assertThat(low.leaseInstances()).isEqualTo(1);
    Settings high =
        load(
            Map.of(
                "QUOTA_LEASE_SLICE_USD", "1000000",
                "QUOTA_LEASE_TTL", "10m",
                "QUOTA_LEASE_INSTANCES", "1000"));
    assertThat(high.holds()).isTrue();
    assertThat(high.leaseSliceUsd()).isEqualByComparingTo("1000000");
    assertThat(high.leaseTtl()).isEqualTo(Duration.ofMinutes(10));
    assertThat(high.leaseInstances()).isEqualTo(1000);
    assertThat(load(Map.of()).reporterHoldTtl()).isEqualTo(Duration.ofMinutes(10));
    assertThat(load(Map.of("QUOTA_REPORTER_HOLD_TTL", "1m")).reporterHoldTtl())
        .isEqualTo(Duration.ofMinutes(1));
    assertThat(load(Map.of("QUOTA_REPORTER_HOLD_TTL", "24h")).reporterHoldTtl())
        .isEqualTo(Duration.ofHours(24));
  }

  @Test
  void load_controlCharacterInValue_messageStaysOneEscapedLine() {
    assertThatThrownBy(() -> load(Map.of("QUOTA_LOG_FORMAT", "json\n\u001b[2J")))
        .hasMessage("QUOTA_LOG_FORMAT must be text or json, got 'json\\u{000A}\\u{001B}[2j'");
  }

  @Test
  void load_meteringPortSharedWithAnother_configExceptionNamingIt() {
    assertThatThrownBy(() -> load(Map.of("QUOTA_METERING_PORT", "9191")))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_METERING_PORT must differ from QUOTA_AUTHZ_PORT and QUOTA_ADMIN_PORT (9191)");
    assertThatThrownBy(() -> load(Map.of(), "--metering-port", "9192"))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_METERING_PORT must differ from QUOTA_AUTHZ_PORT and QUOTA_ADMIN_PORT (9192)");
    assertThat(load(Map.of()).meteringPort()).isEqualTo(9194);
    assertThat(load(Map.of("QUOTA_METERING_PORT", "0", "QUOTA_AUTHZ_PORT", "0")).meteringPort())
        .isZero();
  }

  @Test
  void load_tlsCertWithoutKey_configException() {
    assertThatThrownBy(() -> load(Map.of("QUOTA_TLS_CERT", "/c.pem")))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_TLS_CERT and QUOTA_TLS_KEY must be set together");
    assertThatThrownBy(() -> load(Map.of("QUOTA_TLS_CLIENT_CA", "/ca.pem")))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_TLS_CLIENT_CA needs QUOTA_TLS_CERT and QUOTA_TLS_KEY");
  }

  @Test
  void load_unknownFlag_configException() {
    assertThatThrownBy(() -> load(Map.of(), "--no-such-flag", "1"))
        .isInstanceOf(ConfigException.class)
        .hasMessage("unknown option --no-such-flag (see --help)");
  }

  @Test
  void load_flagWithoutValue_configException() {
    assertThatThrownBy(() -> load(Map.of(), "--authz-port"))
        .isInstanceOf(ConfigException.class)
        .hasMessage("--authz-port needs a value");
  }

  @Test
  void settings_everySetting_hasDistinctEnvAndFlag() {
    assertThat(List.of(Setting.values()))
        .extracting(Setting::env)
        .doesNotHaveDuplicates()
        .allMatch(e -> e.matches("QUOTA_[A-Z_]+"));
    assertThat(List.of(Setting.values()))
        .extracting(Setting::flag)
        .doesNotHaveDuplicates()
        .allMatch(f -> f.matches("--[a-z-]+"));
  }

  @Test
  void dbListenUrl_givenWithTheMainUrl_keptAndUnsetMeansTheMainUrl() {
    Settings both =
        load(
            Map.of(
                "QUOTA_DB_URL", "jdbc:postgresql://pgbouncer:6432/quota?prepareThreshold=0",
                "QUOTA_DB_LISTEN_URL", "jdbc:postgresql://db-a:5432,db-b:5432/quota"));
    Settings one = load(Map.of("QUOTA_DB_URL", "jdbc:postgresql://db:5432/quota"));

    assertThat(both.dbListenUrl()).contains("jdbc:postgresql://db-a:5432,db-b:5432/quota");
    assertThat(one.dbListenUrl()).isEmpty();
  }

  @Test
  void dbListenUrl_withoutTheMainUrlOrNotJdbc_refusedNamingTheSetting() {
    assertThatThrownBy(() -> load(Map.of("QUOTA_DB_LISTEN_URL", "jdbc:postgresql://db:5432/quota")))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "QUOTA_DB_LISTEN_URL needs QUOTA_DB_URL: the embedded development PostgreSQL has its"
                + " own listener");
    assertThatThrownBy(
            () ->
                load(
                    Map.of(
                        "QUOTA_DB_URL", "jdbc:postgresql://db:5432/quota",
                        "QUOTA_DB_LISTEN_URL", "postgres://db:5432/quota")))
        .isInstanceOf(ConfigException.class)
        .hasMessage("QUOTA_DB_LISTEN_URL must be a jdbc:postgresql: URL");
  }

  @Test
  void toString_secretSettings_notPrinted() {
    Settings s =
        load(
            Map.of(
                "QUOTA_ADMIN_TOKEN",
                "adm-secret-1-0123456789abcdef0123456789",
                "QUOTA_REPORTER_TOKEN",
                "rep-secret-2-0123456789abcdef0123456789",
                "QUOTA_DB_PASSWORD",
                "db-secret-3",
                "QUOTA_METERING_TOKEN",
                "met-secret-4-0123456789abcdef0123456789"));

    assertThat(Setting.METERING_TOKEN.secret()).isTrue();
    assertThat(s.toString())
        .doesNotContain("adm-secret-1", "rep-secret-2", "db-secret-3", "met-secret-4")
        .startsWith(
            "Settings[dbUrl=Optional.empty, dbListenUrl=Optional.empty, dbUser=postgres, dbPassword=***, dbPoolSize=8,")
        .contains(
            "adminToken=Optional[***], adminTokensFile=Optional.empty, reporterToken=Optional[***],"
                + " meteringToken=Optional[***]",
            "authzPort=9191",
            "meteringPort=9194")
        .contains(
            "tlsClientCa=Optional.empty, metricsBind=/0.0.0.0, adminBind=/127.0.0.1,"
                + " consolePort=9195, consoleBind=/127.0.0.1]");
    assertThat(load(Map.of()).toString()).contains("dbPassword=,", "adminToken=Optional.empty");
  }
}
