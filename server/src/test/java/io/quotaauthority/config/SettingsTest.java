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
    assertThat(s.usageCommitInterval()).isEqualTo(Duration.ofMillis(5));
    assertThat(s.usageCommitMax()).isEqualTo(2000);
    assertThat(s.usageQueueMax()).isEqualTo(20_000);
    assertThat(s.shutdownTimeout()).isEqualTo(Duration.ofSeconds(10));
    assertThat(s.pricesFile()).isEmpty();
    assertThat(s.unpricedModelUsdPerMtok()).isEqualTo("0");
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
    Settings s = load(Map.of("QUOTA_AUTHZ_PORT", "7001", "QUOTA_DB_URL", "jdbc:postgresql://db/q",
        "QUOTA_NEGATIVE_CACHE_TTL", "250ms", "QUOTA_LOG_FORMAT", "JSON", "QUOTA_ADMIN_TOKEN", " tok-0123456789abcdef0123456789abcdef "));

    assertThat(s.authzPort()).isEqualTo(7001);
    assertThat(s.dbUrl()).contains("jdbc:postgresql://db/q");
    assertThat(s.negativeCacheTtl()).isEqualTo(Duration.ofMillis(250));
    assertThat(s.logFormat()).isEqualTo(Settings.LogFormat.JSON);
    assertThat(s.adminToken()).contains("tok-0123456789abcdef0123456789abcdef");
    assertThat(s.adminPort()).isEqualTo(9192);
  }

  @Test
  void load_flagAndEnvSet_flagWins() {
    Settings s = load(Map.of("QUOTA_AUTHZ_PORT", "7001", "QUOTA_ADMIN_PORT", "7002", "QUOTA_DATA_DIR", "/env"),
        "--authz-port", "8001", "--admin-port=8002");

    assertThat(s.authzPort()).isEqualTo(8001);
    assertThat(s.adminPort()).isEqualTo(8002);
    assertThat(s.dataDir()).isEqualTo(Path.of("/env"));
  }

  @Test
  void load_flagOnly_overridesDefault() {
    Settings s = load(Map.of(), "--refresh-interval", "2m", "--shutdown-timeout=1h", "--db-pool-size", "200");

    assertThat(s.refreshInterval()).isEqualTo(Duration.ofMinutes(2));
    assertThat(s.shutdownTimeout()).isEqualTo(Duration.ofHours(1));
    assertThat(s.dbPoolSize()).isEqualTo(200);
  }

  @Test
  void load_badEnvValueOverriddenByGoodFlag_starts() {
    assertThat(load(Map.of("QUOTA_AUTHZ_PORT", "abc"), "--authz-port", "1").authzPort()).isEqualTo(1);
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
      String value = switch (setting) {
        case TLS_CERT, TLS_KEY, TLS_CLIENT_CA -> "";
        default -> setting.defaultValue();
      };
      load(Map.of(), setting.flag() + "=" + value);
    }
  }

  @ParameterizedTest(name = "{0}={1}")
  @CsvSource(delimiter = ';', value = {
      "QUOTA_AUTHZ_PORT; 70000; QUOTA_AUTHZ_PORT must be between 0 and 65535, got 70000",
      "QUOTA_ADMIN_PORT; -1; QUOTA_ADMIN_PORT must be between 0 and 65535, got -1",
      "QUOTA_METRICS_PORT; abc; QUOTA_METRICS_PORT must be a whole number, got 'abc'",
      "QUOTA_AUTHZ_PORT; abc; QUOTA_AUTHZ_PORT must be a whole number, got 'abc'",
      "QUOTA_DB_POOL_SIZE; 0; QUOTA_DB_POOL_SIZE must be between 1 and 200, got 0",
      "QUOTA_DB_POOL_SIZE; 201; QUOTA_DB_POOL_SIZE must be between 1 and 200, got 201",
      "QUOTA_CACHE_MAX_KEYS; 0; QUOTA_CACHE_MAX_KEYS must be between 1 and 2147483647, got 0",
      "QUOTA_NEGATIVE_CACHE_TTL; 5x; QUOTA_NEGATIVE_CACHE_TTL must be a duration like 250ms, 5s, 2m or 1h, got '5x'",
      "QUOTA_REFRESH_INTERVAL; 5; QUOTA_REFRESH_INTERVAL must be a duration like 250ms, 5s, 2m or 1h, got '5'",
      "QUOTA_USAGE_COMMIT_INTERVAL; 0ms; QUOTA_USAGE_COMMIT_INTERVAL must be positive, got '0ms'",
      "QUOTA_SHUTDOWN_TIMEOUT; -5s; QUOTA_SHUTDOWN_TIMEOUT must be positive, got '-5s'",
      "QUOTA_USAGE_COMMIT_MAX; 100001; QUOTA_USAGE_COMMIT_MAX must be between 1 and 100000, got 100001",
      "QUOTA_USAGE_QUEUE_MAX; 1.5; QUOTA_USAGE_QUEUE_MAX must be a whole number, got '1.5'",
      "QUOTA_UNPRICED_MODEL_USD_PER_MTOK; -1; QUOTA_UNPRICED_MODEL_USD_PER_MTOK must be a decimal USD amount like 1.5, got '-1'",
      "QUOTA_LOG_FORMAT; xml; QUOTA_LOG_FORMAT must be text or json, got 'xml'",
      "QUOTA_DATA_DIR; ' '; QUOTA_DATA_DIR must not be empty",
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
    assertThat(List.of(Setting.values())).extracting(Setting::env).doesNotHaveDuplicates()
        .allMatch(e -> e.matches("QUOTA_[A-Z_]+"));
    assertThat(List.of(Setting.values())).extracting(Setting::flag).doesNotHaveDuplicates()
        .allMatch(f -> f.matches("--[a-z-]+"));
  }

  @Test
  void toString_secretSettings_notPrinted() {
    Settings s = load(Map.of("QUOTA_ADMIN_TOKEN", "adm-secret-1-0123456789abcdef0123456789",
        "QUOTA_REPORTER_TOKEN", "rep-secret-2-0123456789abcdef0123456789", "QUOTA_DB_PASSWORD", "db-secret-3"));

    assertThat(s.toString()).doesNotContain("adm-secret-1", "rep-secret-2", "db-secret-3")
        .startsWith("Settings[dbUrl=Optional.empty, dbUser=postgres, dbPassword=***, dbPoolSize=8,")
        .contains("adminToken=Optional[***], adminTokensFile=Optional.empty, reporterToken=Optional[***]",
            "authzPort=9191")
        .endsWith("tlsClientCa=Optional.empty]");
    assertThat(load(Map.of()).toString()).contains("dbPassword=,", "adminToken=Optional.empty");
  }
}
