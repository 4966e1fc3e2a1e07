package io.quotaauthority.config;

/**
 * Every setting the server reads: its environment variable, its command-line flag, its default and
 * one line of documentation. This enum is the single source for {@link Settings}, the README's
 * configuration table (a test keeps them in step) and {@code serve --help}.
 */
public enum Setting {
  DB_URL(
      "QUOTA_DB_URL",
      "--db-url",
      "",
      "JDBC URL of the shared PostgreSQL; empty starts the embedded development PostgreSQL under <data dir>/pg"
          + " (one instance, password in <data dir>/pg-password, a WARN at every start)"),
  DB_LISTEN_URL(
      "QUOTA_DB_LISTEN_URL",
      "--db-listen-url",
      "",
      "JDBC URL of the one session that LISTENs for key changes; empty uses QUOTA_DB_URL. Must reach"
          + " PostgreSQL directly or through a session-mode pooler, never a transaction-mode pgbouncer"
          + " (checked at start)"),
  DB_USER("QUOTA_DB_USER", "--db-user", "postgres", "database user"),
  DB_PASSWORD("QUOTA_DB_PASSWORD", "--db-password", "", "database password"),
  DB_POOL_SIZE(
      "QUOTA_DB_POOL_SIZE", "--db-pool-size", "8", "maximum JDBC connections in the pool (1..200)"),
  DATA_DIR(
      "QUOTA_DATA_DIR",
      "--data-dir",
      "./data",
      "directory for generated tokens and the embedded database"),
  AUTHZ_PORT(
      "QUOTA_AUTHZ_PORT",
      "--authz-port",
      "9191",
      "gRPC port Envoy calls for ext_authz Check, plus usage reports, health and reflection (0 to 65535)"),
  METERING_PORT(
      "QUOTA_METERING_PORT",
      "--metering-port",
      "9194",
      "gRPC port of Envoy's ext_proc metering (bearer token), plus health (0 to 65535)"),
  ADMIN_PORT(
      "QUOTA_ADMIN_PORT",
      "--admin-port",
      "9192",
      "gRPC port of the admin API (bearer token; 0 to 65535)"),
  METRICS_PORT(
      "QUOTA_METRICS_PORT",
      "--metrics-port",
      "9193",
      "HTTP port for /metrics, /healthz and /readyz (0 to 65535, distinct from the gRPC ports); 0 turns it off"),
  METRICS_BIND(
      "QUOTA_METRICS_BIND",
      "--metrics-bind",
      "0.0.0.0",
      "IP address the metrics port listens on; every IPv4 interface by default, so kubelet probes and"
          + " Prometheus reach it (:: for IPv6 too, 127.0.0.1 for this host only)"),
  ADMIN_BIND(
      "QUOTA_ADMIN_BIND",
      "--admin-bind",
      "127.0.0.1",
      "IP address the admin port listens on; loopback by default, so only this host (the CLI beside the"
          + " server) can call the admin API; 0.0.0.0 or :: opens it to the network"),
  CONSOLE_PORT(
      "QUOTA_CONSOLE_PORT",
      "--console-port",
      "9195",
      "HTTP port of the web console and its bridge to the admin API (README \"Console\"; 0 to 65535,"
          + " distinct from the other ports); 0 turns it off"),
  CONSOLE_BIND(
      "QUOTA_CONSOLE_BIND",
      "--console-bind",
      "127.0.0.1",
      "IP address the console port listens on; loopback by default like the admin port, since the"
          + " console is the admin API; 0.0.0.0 or :: opens it to the network (put TLS in front)"),
  ADMIN_TOKEN(
      "QUOTA_ADMIN_TOKEN",
      "--admin-token",
      "",
      "bearer token for the admin API (32+ printable ASCII characters), audited as actor admin; empty"
          + " generates one into <data dir>/admin-token (mode 0600) unless QUOTA_ADMIN_TOKENS_FILE is set"),
  ADMIN_TOKENS_FILE(
      "QUOTA_ADMIN_TOKENS_FILE",
      "--admin-tokens-file",
      "",
      "file of named admin tokens, one name:sha256hex line each (mode 0600); calls with one are audited"
          + " as admin:<name>"),
  REPORTER_TOKEN(
      "QUOTA_REPORTER_TOKEN",
      "--reporter-token",
      "",
      "bearer token for usage reporters (32+ printable ASCII characters); empty generates one into"
          + " <data dir>/reporter-token (mode 0600)"),
  METERING_TOKEN(
      "QUOTA_METERING_TOKEN",
      "--metering-token",
      "",
      "bearer token Envoy's ext_proc sends (32+ printable ASCII characters); empty generates one into"
          + " <data dir>/metering-token (mode 0600)"),
  CACHE_MAX_KEYS(
      "QUOTA_CACHE_MAX_KEYS",
      "--cache-max-keys",
      "2000000",
      "most keys held in the in-memory cache (1 to 2147483647)"),
  NEGATIVE_CACHE_TTL(
      "QUOTA_NEGATIVE_CACHE_TTL",
      "--negative-cache-ttl",
      "5s",
      "how long an unknown key is remembered as unknown (1ms to 1h)"),
  REFRESH_INTERVAL(
      "QUOTA_REFRESH_INTERVAL",
      "--refresh-interval",
      "5s",
      "bulk refresh of every cached key, the bound on staleness if a notification is lost (100ms to 1h)"),
  REFRESH_KEYS_PER_SECOND(
      "QUOTA_REFRESH_KEYS_PER_SECOND",
      "--refresh-keys-per-second",
      "20000",
      "most cached keys the bulk refresh checks per second: a pass over more keys than this × QUOTA_REFRESH_INTERVAL takes longer than the interval (1,000,000 keys: 50 s) (1000 to 10000000)"),
  USAGE_COMMIT_INTERVAL(
      "QUOTA_USAGE_COMMIT_INTERVAL",
      "--usage-commit-interval",
      "5ms",
      "longest a usage report waits before its group is committed (1ms to 10s)"),
  USAGE_COMMIT_MAX(
      "QUOTA_USAGE_COMMIT_MAX",
      "--usage-commit-max",
      "2000",
      "most usage reports committed in one transaction (1 to 100000)"),
  USAGE_COMMITTERS(
      "QUOTA_USAGE_COMMITTERS",
      "--usage-committers",
      "2",
      "usage groups committed at once: one is answered while the next commits (1 to 8)"),
  USAGE_QUEUE_MAX(
      "QUOTA_USAGE_QUEUE_MAX",
      "--usage-queue-max",
      "50000",
      "most usage reports waiting for a commit before streams get backpressure (1 to 10000000)"),
  SHUTDOWN_TIMEOUT(
      "QUOTA_SHUTDOWN_TIMEOUT",
      "--shutdown-timeout",
      "10s",
      "longest a graceful shutdown waits for in-flight calls and pending usage (1ms to 1h)"),
  PRICES_FILE(
      "QUOTA_PRICES_FILE",
      "--prices-file",
      "",
      "YAML price table for Envoy metering; empty uses the shipped table"),
  UNPRICED_MODEL_USD_PER_MTOK(
      "QUOTA_UNPRICED_MODEL_USD_PER_MTOK",
      "--unpriced-model-usd-per-mtok",
      "",
      "USD per million tokens charged to every key for a model missing from the price table; empty"
          + " refuses such models to keys with a quota and records unlimited keys at 0"),
  HOLDS(
      "QUOTA_HOLDS",
      "--holds",
      "on",
      "on: a metered request of a key with a quota is admitted only on a hold of its maximum cost"
          + " (README, Holds); off: admitted while used < quota, so requests in flight can overrun it"),
  LEASE_SLICE_USD(
      "QUOTA_LEASE_SLICE_USD",
      "--lease-slice-usd",
      "1",
      "most USD of a key's budget one instance leases in one database round trip (0.00000001 to"
          + " 1000000); smaller slices leave more to the other instances, larger ones cost fewer trips"),
  LEASE_TTL(
      "QUOTA_LEASE_TTL",
      "--lease-ttl",
      "30s",
      "how long a budget lease lives unless its instance renews it: what a crashed instance's leases"
          + " stay out of reach before they go back to their keys (3s to 10m)"),
  LEASE_INSTANCES(
      "QUOTA_LEASE_INSTANCES",
      "--lease-instances",
      "3",
      "about how many instances share a key: one slice is at most the key's remaining budget / (2 x"
          + " this), so the others still find budget to lease (1 to 1000)"),
  REPORTER_HOLD_TTL(
      "QUOTA_REPORTER_HOLD_TTL",
      "--reporter-hold-ttl",
      "10m",
      "how long a hold Check took for a usage-stream reporter waits for the report that settles it"
          + " before it expires and is charged or released per the key's hold_expiry (1m to 24h)"),
  LOG_FORMAT("QUOTA_LOG_FORMAT", "--log-format", "text", "text or json (one JSON object per line)"),
  TLS_CERT(
      "QUOTA_TLS_CERT",
      "--tls-cert",
      "",
      "PEM certificate chain; with QUOTA_TLS_KEY both gRPC ports serve TLS"),
  TLS_KEY("QUOTA_TLS_KEY", "--tls-key", "", "PEM private key (PKCS#8) for QUOTA_TLS_CERT"),
  TLS_CLIENT_CA(
      "QUOTA_TLS_CLIENT_CA",
      "--tls-client-ca",
      "",
      "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)");

  private final String env;
  private final String flag;
  private final String defaultValue;
  private final String doc;

  Setting(String env, String flag, String defaultValue, String doc) {
    this.env = env;
    this.flag = flag;
    this.defaultValue = defaultValue;
    this.doc = doc;
  }

  public String env() {
    return env;
  }

  public String flag() {
    return flag;
  }

  public String defaultValue() {
    return defaultValue;
  }

  public String doc() {
    return doc;
  }

  /**
   * True for values that must never be printed (tokens, passwords). Each of them can also be read
   * from a file ({@link #fileEnv}, {@link #fileFlag}), and passing one as a flag draws a warning.
   */
  public boolean secret() {
    return this == DB_PASSWORD
        || this == ADMIN_TOKEN
        || this == REPORTER_TOKEN
        || this == METERING_TOKEN;
  }

  /**
   * True for the bearer tokens: every secret but the database password, whose rules are the
   * database's. Tokens must meet {@link Tokens#problem}.
   */
  public boolean token() {
    return secret() && this != DB_PASSWORD;
  }

  /** For a secret: the variable naming a file that holds it, e.g. QUOTA_ADMIN_TOKEN_FILE. */
  public String fileEnv() {
    return env + "_FILE";
  }

  /** For a secret: the flag naming a file that holds it, e.g. --admin-token-file. */
  public String fileFlag() {
    return flag + "-file";
  }
}
