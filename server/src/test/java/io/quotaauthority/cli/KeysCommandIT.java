package io.quotaauthority.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.util.Timestamps;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The admin CLI end to end: picocli in-process, a real server on real ports, real PostgreSQL. */
class KeysCommandIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern SECRET = Pattern.compile("sk-[0-9A-Za-z]{43}");
  private static final Pattern ID_LINE = Pattern.compile("(?m)^id:\\s+(\\d+)$");

  private static TestDatabase db;
  private static TestServer server;
  private static CliRunner cli;

  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    db = TestDatabase.create();
    server = TestServer.start(db);
    cli =
        new CliRunner(
            Map.of(
                "QUOTA_ADMIN_ADDR",
                "127.0.0.1:" + server.app().adminPort(),
                "QUOTA_ADMIN_TOKEN",
                TestServer.ADMIN_TOKEN));
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
    db.close();
  }

  // ---- create ----

  @Test
  void create_withQuotaAndExpiry_printsSecretOnceWithWarning() {
    Instant before = Instant.now();
    CliRunner.Result r =
        cli.run("keys", "create", "--name", "ci-bot", "--quota", "10", "--expires-in", "7d");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    Matcher secret = SECRET.matcher(r.out());
    assertThat(secret.find()).as(r.out()).isTrue();
    assertThat(r.out())
        .contains("will not be shown again")
        .contains("ci-bot")
        .containsPattern("(?m)^quota_usd:\\s+10$");
    long id = id(r.out());
    Instant expires =
        ((Timestamp) db.scalar("SELECT expires_at FROM api_keys WHERE id = ?", id)).toInstant();
    assertThat(expires)
        .isBetween(
            before.plus(Duration.ofDays(7)).minusSeconds(5),
            Instant.now().plus(Duration.ofDays(7)).plusSeconds(5));

    CliRunner.Result get = cli.run("keys", "get", Long.toString(id));
    assertThat(get.exitCode()).isZero();
    assertThat(get.out()).doesNotContain(secret.group()).contains(secret.group().substring(0, 8));
  }

  @Test
  void create_jsonOutput_parsesWithKeyAndSecret() throws Exception {
    CliRunner.Result r =
        cli.run(
            "keys",
            "create",
            "--name",
            "json-key",
            "--expires-in",
            "2030-01-31T00:00:00Z",
            "-o",
            "json");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    JsonNode created = JSON.readTree(r.out());
    assertThat(created.get("secret").asText()).matches(SECRET);
    assertThat(created.get("key").get("name").asText()).isEqualTo("json-key");
    assertThat(created.get("key").get("expires_at").asText()).isEqualTo("2030-01-31T00:00:00Z");
    assertThat(r.err()).contains("will not be shown again");
  }

  @Test
  void create_badQuota_exitsTwoWithTheServersMessageOnOneLine() {
    CliRunner.Result r = cli.run("keys", "create", "--name", "x", "--quota", "-5");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).startsWith("error: quota_usd").hasLineCount(1);
    assertThat(r.out()).isEmpty();
  }

  @Test
  void create_withoutName_exitsTwo() {
    CliRunner.Result r = cli.run("keys", "create", "--quota", "1");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).startsWith("error: Missing required option: '--name=NAME'").hasLineCount(1);
  }

  @Test
  void create_unreadableExpiresIn_exitsTwoNamingTheForms() {
    CliRunner.Result r = cli.run("keys", "create", "--name", "x", "--expires-in", "soon");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).isEqualTo("error: --expires-in must be " + Expiry.FORMS + ", got 'soon'\n");
  }

  @Test
  void create_nameOf200Emoji_acceptedAndShownExactly() throws Exception {
    String name = "\ud83d\ude00".repeat(200); // 200 code points, 400 UTF-16 units

    CliRunner.Result r = cli.run("keys", "create", "--name", name, "-o", "json");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    String id = JSON.readTree(r.out()).get("key").get("id").asText();
    CliRunner.Result get = cli.run("keys", "get", id, "-o", "json");
    assertThat(JSON.readTree(get.out()).get("name").asText()).isEqualTo(name);
  }

  @Test
  void update_bidiOverrideInName_exitsTwoAndTheKeyKeepsItsName() {
    long id = createKey("plain-name");

    CliRunner.Result r =
        cli.run("keys", "update", Long.toString(id), "--name", "evil\u202etxt.exe");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .startsWith("error: --name must not contain bidirectional override")
        .hasLineCount(1);
    assertThat(db.scalar("SELECT name FROM api_keys WHERE id = ?", id)).isEqualTo("plain-name");
  }

  // ---- list / get ----

  @Test
  void list_moreKeysThanOnePage_returnsEveryKeyAsJson() throws Exception {
    List<Long> ids = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      ids.add(createKey("page-" + i));
    }

    CliRunner.Result r = cli.run("keys", "list", "--page-size", "2", "--output", "json");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    JsonNode keys = JSON.readTree(r.out());
    assertThat(keys.isArray()).isTrue();
    List<Long> listed = new ArrayList<>();
    keys.forEach(k -> listed.add(k.get("id").asLong()));
    assertThat(listed).containsAll(ids).doesNotHaveDuplicates().isSorted();
    assertThat(keys.get(0).has("quota_used_usd")).isTrue();
  }

  @Test
  void list_text_printsATableWithAHeader() {
    long id = createKey("table-key");

    CliRunner.Result r = cli.run("keys", "list");

    assertThat(r.exitCode()).isZero();
    assertThat(r.out().lines().findFirst().orElseThrow())
        .matches("ID\\s+NAME\\s+PREFIX\\s+STATUS\\s+QUOTA_USD\\s+USED_USD\\s+EXPIRES_AT");
    assertThat(r.out())
        .containsPattern(
            "(?m)^" + id + "\\s+table-key\\s+sk-\\S+\\s+active\\s+unlimited\\s+0\\s+never$");
  }

  @Test
  void get_unknownId_exitsThree() {
    CliRunner.Result r = cli.run("keys", "get", "999999999");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.NOT_FOUND);
    assertThat(r.err()).isEqualTo("error: id: no key with id 999999999\n");
  }

  @Test
  void get_notANumber_exitsTwo() {
    CliRunner.Result r = cli.run("keys", "get", "abc");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).startsWith("error: id must be a key id").hasLineCount(1);
  }

  // ---- token and connection ----

  @Test
  void get_wrongTokenFlag_exitsFourNamingWhereTheTokenCameFrom() {
    long id = createKey("auth");

    CliRunner.Result r = cli.run("keys", "get", Long.toString(id), "--token", "not-the-token");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.AUTHENTICATION);
    assertThat(r.err())
        .startsWith("error: authentication failed")
        .contains("--token")
        .hasLineCount(1)
        .doesNotContain("not-the-token");
  }

  @ParameterizedTest(name = "token with U+{0}")
  @ValueSource(ints = {0x09, 0x20, 0x7F, 0x1B, 0xE9})
  void get_tokenWithNonPrintableCharacter_exitsFourBeforeAnyCallNamingTheSourceNotTheToken(int c) {
    String token = "sekrit-" + (char) c + "-token";
    String method = "quota.v1.KeyAdminService/GetKey";
    String before = adminCallLines(method);

    CliRunner.Result r = cli.withEnv("QUOTA_ADMIN_TOKEN", token).run("keys", "get", "1");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.AUTHENTICATION);
    assertThat(r.err())
        .startsWith(
            "error: the admin token from QUOTA_ADMIN_TOKEN contains a character that is"
                + " not printable ASCII (at position 8)")
        .hasLineCount(1)
        .doesNotContain("sekrit");
    // Refused before gRPC saw it: the server counted no call at all.
    assertThat(adminCallLines(method)).isEqualTo(before);
  }

  private static String adminCallLines(String method) {
    return server
        .app()
        .operations()
        .metrics()
        .scrape()
        .lines()
        .filter(l -> l.startsWith("quota_admin_calls_total{") && l.contains(method))
        .collect(Collectors.joining("\n"));
  }

  @Test
  void get_noTokenAnywhere_exitsFour() {
    CliRunner.Result r =
        cli.withEnv("QUOTA_ADMIN_TOKEN", null)
            .run("keys", "get", "1", "--data-dir", tmp.toString());

    assertThat(r.exitCode()).isEqualTo(ExitCodes.AUTHENTICATION);
    assertThat(r.err())
        .startsWith("error: no admin token")
        .contains(tmp.resolve("admin-token").toString());
  }

  @Test
  void get_tokenInDataDirFile_isUsedWhenNoFlagOrVariable() throws Exception {
    long id = createKey("from-file");
    Files.writeString(tmp.resolve("admin-token"), TestServer.ADMIN_TOKEN + "\n");

    CliRunner.Result r =
        cli.withEnv("QUOTA_ADMIN_TOKEN", null)
            .withEnv("QUOTA_DATA_DIR", tmp.toString())
            .run("keys", "get", Long.toString(id));

    assertThat(r.exitCode()).as(r.toString()).isZero();
  }

  @Test
  void get_tokenInQuotaAdminTokenFile_isUsedWhenNoFlagOrVariable() throws Exception {
    long id = createKey("from-token-file");
    Path secret = Files.writeString(tmp.resolve("mounted-secret"), TestServer.ADMIN_TOKEN + "\n");
    Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("r--------"));

    CliRunner.Result r =
        cli.withEnv("QUOTA_ADMIN_TOKEN", null)
            .withEnv("QUOTA_ADMIN_TOKEN_FILE", secret.toString())
            .run("keys", "get", Long.toString(id));

    assertThat(r.exitCode()).as(r.toString()).isZero();
  }

  @Test
  void get_quotaAdminTokenFileReadableByOthers_exitsFourNamingTheFile() throws Exception {
    Path secret = Files.writeString(tmp.resolve("loose-secret"), TestServer.ADMIN_TOKEN + "\n");
    Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-r--r--"));

    CliRunner.Result r =
        cli.withEnv("QUOTA_ADMIN_TOKEN", null)
            .withEnv("QUOTA_ADMIN_TOKEN_FILE", secret.toString())
            .run("keys", "get", "1");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.AUTHENTICATION);
    assertThat(r.err())
        .isEqualTo(
            "error: QUOTA_ADMIN_TOKEN_FILE: "
                + secret
                + " is readable or writable by group or others (mode 0644); chmod 600 it\n");
  }

  @Test
  void get_tokenFlag_winsOverTheVariable() {
    long id = createKey("flag-wins");

    CliRunner.Result r =
        cli.withEnv("QUOTA_ADMIN_TOKEN", "wrong")
            .run("keys", "get", Long.toString(id), "--token", TestServer.ADMIN_TOKEN);

    assertThat(r.exitCode()).as(r.toString()).isZero();
  }

  @Test
  void get_serverUnreachable_exitsOneWithOneLine() {
    CliRunner.Result r = cli.run("keys", "get", "1", "--admin-addr", "127.0.0.1:1");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.ERROR);
    assertThat(r.err())
        .startsWith("error: cannot reach the admin API at 127.0.0.1:1")
        .hasLineCount(1);
  }

  @Test
  void create_sendsTheOsUserAsActor_recordedInTheAuditAsAClaim() {
    long id = createKey("audited");

    // The shared token's actor is "admin"; the OS user the CLI sends is only what the caller
    // claims.
    assertThat(db.scalar("SELECT actor FROM key_audit WHERE key_id = ? AND action = 'create'", id))
        .isEqualTo("admin (claims: " + CliRunner.USER + ")");
  }

  // ---- update ----

  @Test
  void update_quotaAndStatus_changesOnlyThoseFields() throws Exception {
    long id = createKey("before-update");

    CliRunner.Result r =
        cli.run(
            "keys",
            "update",
            Long.toString(id),
            "--quota",
            "25.5",
            "--status",
            "disabled",
            "-o",
            "json");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    JsonNode key = JSON.readTree(r.out());
    assertThat(key.get("name").asText()).isEqualTo("before-update");
    assertThat(key.get("quota_usd").asText()).isEqualTo("25.5");
    assertThat(key.get("status").asText()).isEqualTo("KEY_STATUS_DISABLED");
    assertThat(key.has("expires_at")).isFalse();
  }

  @Test
  void update_nameAndExpiresAt_setsThem() throws Exception {
    long id = createKey("old-name");

    CliRunner.Result r =
        cli.run(
            "keys",
            "update",
            Long.toString(id),
            "--name",
            "new-name",
            "--expires-at",
            "2031-06-01T12:00:00+02:00",
            "-o",
            "json");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    JsonNode key = JSON.readTree(r.out());
    assertThat(key.get("name").asText()).isEqualTo("new-name");
    assertThat(key.get("expires_at").asText()).isEqualTo("2031-06-01T10:00:00Z");
    assertThat(key.get("status").asText()).isEqualTo("KEY_STATUS_ACTIVE");
  }

  @Test
  void update_emptyQuota_exitsTwoNamingQuotaAndKeyUnchanged() throws Exception {
    long id = createKey("limited");
    assertThat(cli.run("keys", "update", Long.toString(id), "--quota", "10").exitCode()).isZero();

    CliRunner.Result r = cli.run("keys", "update", Long.toString(id), "--quota", "");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).startsWith("error: --quota must not be empty").hasLineCount(1);
    JsonNode key = JSON.readTree(cli.run("keys", "get", Long.toString(id), "-o", "json").out());
    assertThat(key.get("quota_usd").asText()).isEqualTo("10");
  }

  @Test
  void create_emptyQuota_exitsTwoNamingQuota() {
    CliRunner.Result r = cli.run("keys", "create", "--name", "empty-quota", "--quota", "");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).startsWith("error: --quota must not be empty").hasLineCount(1);
  }

  // ---- key policies ----

  @Test
  void createAndUpdate_policyFlags_storedShownAndNoneRemovesAList() throws Exception {
    CliRunner.Result r =
        cli.run(
            "keys",
            "create",
            "--name",
            "policies-cli",
            "--ip-allow",
            "10.0.0.0/8,2001:DB8::/32",
            "--ip-deny",
            "10.6.6.6",
            "--models",
            "gpt-4o-mini,claude-3-5-*");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    assertThat(r.out())
        .containsPattern("(?m)^ip_allow:\\s+10\\.0\\.0\\.0/8,2001:db8::/32$")
        .containsPattern("(?m)^ip_deny:\\s+10\\.6\\.6\\.6/32$")
        .containsPattern("(?m)^model_allow:\\s+gpt-4o-mini,claude-3-5-\\*$");
    long id = id(r.out());

    CliRunner.Result cleared =
        cli.run("keys", "update", Long.toString(id), "--ip-allow", "none", "-o", "json");
    assertThat(cleared.exitCode()).as(cleared.toString()).isZero();
    JsonNode key = JSON.readTree(cleared.out());
    assertThat(key.get("ip_allow")).as("removed").isEmpty();
    assertThat(key.get("ip_deny").get(0).asText()).isEqualTo("10.6.6.6/32");
    assertThat(key.get("model_allow")).hasSize(2);
  }

  @Test
  void create_malformedCidr_refusedNamingTheEntryNothingWritten() {
    long before = db.count("SELECT count(*) FROM api_keys");
    CliRunner.Result r =
        cli.run("keys", "create", "--name", "bad-cidr", "--ip-allow", "10.0.0.0/8,10.0.0.1/8");

    assertThat(r.exitCode()).as(r.toString()).isNotZero();
    assertThat(r.err()).contains("ip_allow[1] '10.0.0.1/8' has bits set after its /8 prefix");
    assertThat(db.count("SELECT count(*) FROM api_keys")).isEqualTo(before);
  }

  // ---- spending windows ----

  @Test
  void createGetUpdate_windows_storedShownWithSpendAndZeroRemovesOne() throws Exception {
    CliRunner.Result created =
        cli.run(
            "keys", "create", "--name", "windows-cli", "--window", "5h=20", "--window", "7d=100");

    assertThat(created.exitCode()).as(created.toString()).isZero();
    assertThat(created.out()).containsPattern("(?m)^windows:\\s+5h=20,7d=100$");
    long id = id(created.out());
    assertThat(windowsOf(id)).isEqualTo("20.00000000 0.00000000 100.00000000 0.00000000");
    String keyId = Long.toString(id);
    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
        .send(UsageStream.report("win-cli-1", keyId, "1.25"))
        .send(UsageStream.report("win-cli-2", keyId, "2.25"))
        .finish();

    CliRunner.Result get = cli.run("keys", "get", keyId);

    assertThat(get.exitCode()).as(get.toString()).isZero();
    assertThat(get.out())
        .containsPattern("(?m)^windows:\\s+5h=20 \\(spent 3\\.5\\),7d=100 \\(spent 3\\.5\\)$");
    JsonNode json = JSON.readTree(cli.run("keys", "get", keyId, "-o", "json").out());
    assertThat(json.get("window_5h_usd").asText()).isEqualTo("20");
    assertThat(json.get("window_5h_spent_usd").asText()).isEqualTo("3.5");
    assertThat(json.get("window_7d_usd").asText()).isEqualTo("100");
    assertThat(json.get("window_7d_spent_usd").asText()).isEqualTo("3.5");

    CliRunner.Result raised = cli.run("keys", "update", keyId, "--window", "5h=25.5");
    assertThat(raised.exitCode()).as(raised.toString()).isZero();
    assertThat(raised.out()).containsPattern("(?m)^windows:\\s+5h=25\\.5,7d=100$");
    assertThat(windowsOf(id)).isEqualTo("25.50000000 0.00000000 100.00000000 0.00000000");

    CliRunner.Result removed = cli.run("keys", "update", keyId, "--window", "7d=0");
    assertThat(removed.exitCode()).as(removed.toString()).isZero();
    assertThat(removed.out()).containsPattern("(?m)^windows:\\s+5h=25\\.5$");
    assertThat(windowsOf(id)).isEqualTo("25.50000000 0.00000000 0.00000000 0.00000000");

    CliRunner.Result none = cli.run("keys", "update", keyId, "--window", "5h=0");
    assertThat(none.exitCode()).as(none.toString()).isZero();
    assertThat(none.out()).containsPattern("(?m)^windows:\\s+-$");
    assertThat(windowsOf(id)).isEqualTo("0.00000000 0.00000000 0.00000000 0.00000000");
    assertThat(
            db.count("SELECT count(*) FROM key_audit WHERE key_id = ? AND action = 'update'", id))
        .isEqualTo(3);
  }

  @Test
  void create_unknownWindow_usageErrorNamingWindowNothingWritten() {
    long before = db.count("SELECT count(*) FROM api_keys");

    CliRunner.Result r = cli.run("keys", "create", "--name", "bad-window", "--window", "5x=1");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .isEqualTo("error: --window has unknown window '5x'; allowed: 5h, 1d, 7d, 30d\n");
    assertThat(r.out()).isEmpty();
    assertThat(db.count("SELECT count(*) FROM api_keys")).isEqualTo(before);
  }

  @Test
  void create_windowWithoutAmount_usageErrorNamingTheForm() {
    long before = db.count("SELECT count(*) FROM api_keys");

    CliRunner.Result r = cli.run("keys", "create", "--name", "bare-window", "--window", "5h");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .isEqualTo(
            "error: --window must be WINDOW=USD with WINDOW one of 5h, 1d, 7d, 30d (5h=20),"
                + " got '5h'\n");
    assertThat(db.count("SELECT count(*) FROM api_keys")).isEqualTo(before);
  }

  @Test
  void createAndUpdate_negativeWindow_refusedNamingTheFieldNothingWritten() {
    long before = db.count("SELECT count(*) FROM api_keys");

    CliRunner.Result create =
        cli.run("keys", "create", "--name", "negative-window", "--window", "5h=-1");

    assertThat(create.exitCode()).as(create.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(create.err())
        .startsWith("error: window_5h_usd must be a decimal USD amount")
        .hasLineCount(1);
    assertThat(create.out()).isEmpty();
    assertThat(db.count("SELECT count(*) FROM api_keys")).isEqualTo(before);

    long id = id(cli.run("keys", "create", "--name", "window-stays", "--window", "1d=4").out());
    CliRunner.Result update = cli.run("keys", "update", Long.toString(id), "--window", "1d=-1");

    assertThat(update.exitCode()).as(update.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(update.err())
        .startsWith("error: key.window_1d_usd must be a decimal USD amount")
        .hasLineCount(1);
    assertThat(windowsOf(id)).isEqualTo("0.00000000 4.00000000 0.00000000 0.00000000");
    assertThat(
            db.count("SELECT count(*) FROM key_audit WHERE key_id = ? AND action = 'update'", id))
        .isZero();
  }

  // ---- rate limits ----

  @Test
  void createUpdate_rpmAndTpm_storedShownAndZeroRemoves() throws Exception {
    CliRunner.Result created =
        cli.run("keys", "create", "--name", "rates-cli", "--rpm", "60", "--tpm", "100000");

    assertThat(created.exitCode()).as(created.toString()).isZero();
    assertThat(created.out())
        .containsPattern("(?m)^requests_per_minute:\\s+60$")
        .containsPattern("(?m)^tokens_per_minute:\\s+100000$");
    long id = id(created.out());
    assertThat(ratesOf(id)).isEqualTo("60 100000");
    String keyId = Long.toString(id);
    CliRunner.Result get = cli.run("keys", "get", keyId, "-o", "json");
    JsonNode json = JSON.readTree(get.out());
    assertThat(json.get("requests_per_minute").asInt()).isEqualTo(60);
    assertThat(json.get("tokens_per_minute").asText()).isEqualTo("100000");

    CliRunner.Result rpmOff = cli.run("keys", "update", keyId, "--rpm", "0");
    assertThat(rpmOff.exitCode()).as(rpmOff.toString()).isZero();
    assertThat(rpmOff.out())
        .containsPattern("(?m)^requests_per_minute:\\s+0$")
        .containsPattern("(?m)^tokens_per_minute:\\s+100000$");
    assertThat(ratesOf(id)).isEqualTo("0 100000");

    CliRunner.Result both = cli.run("keys", "update", keyId, "--rpm", "100000000", "--tpm", "0");
    assertThat(both.exitCode()).as(both.toString()).isZero();
    assertThat(both.out())
        .containsPattern("(?m)^requests_per_minute:\\s+100000000$")
        .containsPattern("(?m)^tokens_per_minute:\\s+0$");
    assertThat(ratesOf(id)).isEqualTo("100000000 0");
  }

  @ParameterizedTest
  @ValueSource(strings = {"-1", "+5", "1e3", "05", ""})
  void createAndUpdate_unreadableRate_usageErrorNamingTheOptionNothingWritten(String bad) {
    long id =
        id(cli.run("keys", "create", "--name", "rates-stay", "--rpm", "7", "--tpm", "9").out());
    long keys = db.count("SELECT count(*) FROM api_keys");

    CliRunner.Result create = cli.run("keys", "create", "--name", "bad-rpm", "--rpm", bad);
    CliRunner.Result rpm = cli.run("keys", "update", Long.toString(id), "--rpm", bad);
    CliRunner.Result tpm = cli.run("keys", "update", Long.toString(id), "--tpm", bad);

    String form = " must be a whole number (ASCII digits, no sign or leading zeros), got ";
    assertThat(create.exitCode()).as(create.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(create.err()).isEqualTo("error: --rpm" + form + "'" + bad + "'\n");
    assertThat(rpm.exitCode()).as(rpm.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(rpm.err()).isEqualTo("error: --rpm" + form + "'" + bad + "'\n");
    assertThat(tpm.exitCode()).as(tpm.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(tpm.err()).isEqualTo("error: --tpm" + form + "'" + bad + "'\n");
    assertThat(db.count("SELECT count(*) FROM api_keys")).isEqualTo(keys);
    assertThat(ratesOf(id)).isEqualTo("7 9");
  }

  @Test
  void create_arabicIndicDigitTpm_refusedWithTheCharacterEscapedNothingWritten() {
    long before = db.count("SELECT count(*) FROM api_keys");

    // Java's Long.parseLong would read U+0661 as 1.
    CliRunner.Result r = cli.run("keys", "create", "--name", "indic-tpm", "--tpm", "\u0661");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .isEqualTo(
            "error: --tpm must be a whole number (ASCII digits, no sign or leading zeros),"
                + " got '\\u{0661}'\n");
    assertThat(db.count("SELECT count(*) FROM api_keys")).isEqualTo(before);
  }

  @Test
  void update_tpm_takesTheServersWholeRangeAndRefusesAboveIt() {
    long id = id(cli.run("keys", "create", "--name", "tpm-range", "--tpm", "3000000000").out());
    assertThat(ratesOf(id)).as("above int's range").isEqualTo("0 3000000000");

    CliRunner.Result max =
        cli.run("keys", "update", Long.toString(id), "--tpm", "1000000000000000");
    CliRunner.Result above =
        cli.run("keys", "update", Long.toString(id), "--tpm", "1000000000000001");

    assertThat(max.exitCode()).as(max.toString()).isZero();
    assertThat(max.out()).containsPattern("(?m)^tokens_per_minute:\\s+1000000000000000$");
    assertThat(above.exitCode()).as(above.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(above.err())
        .isEqualTo("error: --tpm must be between 0 and 1000000000000000, got '1000000000000001'\n");
    assertThat(ratesOf(id)).isEqualTo("0 1000000000000000");
  }

  @Test
  void update_rpmAboveTheLimit_usageErrorNamingTheRangeAndTheLimitStays() {
    long id = id(cli.run("keys", "create", "--name", "rpm-stays", "--rpm", "5").out());

    CliRunner.Result r = cli.run("keys", "update", Long.toString(id), "--rpm", "100000001");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .isEqualTo("error: --rpm must be between 0 and 100000000, got '100000001'\n");
    assertThat(ratesOf(id)).isEqualTo("5 0");
  }

  // ---- concurrency cap ----

  @Test
  void create_maxConcurrent_storedAndShownByGet() throws Exception {
    CliRunner.Result r =
        cli.run("keys", "create", "--name", "capped-cli", "--max-concurrent", "16");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    assertThat(r.out())
        .containsPattern("(?m)^max_concurrent_requests:\\s+16$")
        .containsPattern("(?m)^concurrent_requests:\\s+0$");
    long id = id(r.out());
    assertThat(db.scalar("SELECT max_concurrent_requests FROM api_keys WHERE id = ?", id))
        .isEqualTo(16);
    JsonNode key = JSON.readTree(cli.run("keys", "get", Long.toString(id), "-o", "json").out());
    assertThat(key.get("max_concurrent_requests").asInt()).isEqualTo(16);
    assertThat(key.get("concurrent_requests").asInt()).isZero();
  }

  @Test
  void create_withoutMaxConcurrent_noCapShownAsUnlimited() {
    long id = createKey("uncapped-cli");

    CliRunner.Result get = cli.run("keys", "get", Long.toString(id));

    assertThat(get.exitCode()).as(get.toString()).isZero();
    assertThat(get.out()).containsPattern("(?m)^max_concurrent_requests:\\s+unlimited$");
    assertThat(db.scalar("SELECT max_concurrent_requests FROM api_keys WHERE id = ?", id))
        .isEqualTo(0);
  }

  @Test
  void update_maxConcurrent_setsThenZeroRemovesTheCapAndNothingElseChanges() throws Exception {
    long id = id(cli.run("keys", "create", "--name", "cap-cli", "--quota", "3").out());

    CliRunner.Result set =
        cli.run("keys", "update", Long.toString(id), "--max-concurrent", "1000000", "-o", "json");
    CliRunner.Result cleared =
        cli.run("keys", "update", Long.toString(id), "--max-concurrent", "0");

    assertThat(set.exitCode()).as(set.toString()).isZero();
    JsonNode key = JSON.readTree(set.out());
    assertThat(key.get("max_concurrent_requests").asInt()).isEqualTo(1_000_000);
    assertThat(key.get("name").asText()).isEqualTo("cap-cli");
    assertThat(key.get("quota_usd").asText()).isEqualTo("3");
    assertThat(cleared.exitCode()).as(cleared.toString()).isZero();
    assertThat(cleared.out()).containsPattern("(?m)^max_concurrent_requests:\\s+unlimited$");
    assertThat(db.scalar("SELECT max_concurrent_requests FROM api_keys WHERE id = ?", id))
        .isEqualTo(0);
    assertThat(
            db.count("SELECT count(*) FROM key_audit WHERE key_id = ? AND action = 'update'", id))
        .isEqualTo(2);
  }

  @Test
  void createUpdate_holdOptions_storedShownAndEmptyRefusedBeforeAnyCall() throws Exception {
    CliRunner.Result created =
        cli.run(
            "keys",
            "create",
            "--name",
            "reporter",
            "--quota",
            "5",
            "--hold-per-request",
            "0.25",
            "--hold-expiry",
            "release");
    assertThat(created.exitCode()).as(created.toString()).isZero();
    assertThat(created.out())
        .containsPattern("(?m)^hold_usd_per_request:\\s+0.25$")
        .containsPattern("(?m)^hold_expiry:\\s+release$");
    long id = id(created.out());
    CliRunner.Result updated =
        cli.run("keys", "update", Long.toString(id), "--hold-expiry", "charge", "-o", "json");
    assertThat(updated.exitCode()).as(updated.toString()).isZero();
    JsonNode key = JSON.readTree(updated.out());
    assertThat(key.get("hold_expiry").asText()).isEqualTo("HOLD_EXPIRY_CHARGE");
    assertThat(key.get("hold_usd_per_request").asText()).isEqualTo("0.25");

    CliRunner.Result empty = cli.run("keys", "update", Long.toString(id), "--hold-per-request", "");
    assertThat(empty.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(empty.err()).contains("--hold-per-request must not be empty");
    CliRunner.Result bad = cli.run("keys", "update", Long.toString(id), "--hold-per-request", "-1");
    assertThat(bad.exitCode()).as(bad.toString()).isNotZero();
    assertThat(bad.err()).contains("hold_usd_per_request");
    assertThat(
            db.scalar(
                "SELECT hold_usd_per_request::text || ' ' || hold_expiry FROM api_keys WHERE id = ?",
                id))
        .isEqualTo("0.25000000 charge");
  }

  @Test
  void get_slotsLeased_shownAsConcurrentRequests() {
    long id = id(cli.run("keys", "create", "--name", "busy", "--max-concurrent", "5").out());
    db.transactions()
        .inTransaction(
            c -> {
              try (var ps =
                  c.prepareStatement("UPDATE api_keys SET slots_leased = 2 WHERE id = ?")) {
                ps.setLong(1, id);
                return ps.executeUpdate();
              }
            });

    CliRunner.Result r = cli.run("keys", "get", Long.toString(id));

    assertThat(r.exitCode()).as(r.toString()).isZero();
    assertThat(r.out())
        .containsPattern("(?m)^max_concurrent_requests:\\s+5$")
        .containsPattern("(?m)^concurrent_requests:\\s+2$");
  }

  @Test
  void update_maxConcurrentOutOfRange_exitsTwoAndTheCapStays() {
    long id = id(cli.run("keys", "create", "--name", "cap-stays", "--max-concurrent", "4").out());

    CliRunner.Result r =
        cli.run("keys", "update", Long.toString(id), "--max-concurrent", "1000001");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .isEqualTo("error: --max-concurrent must be between 0 and 1000000, got '1000001'\n");
    assertThat(db.scalar("SELECT max_concurrent_requests FROM api_keys WHERE id = ?", id))
        .isEqualTo(4);
  }

  @Test
  void update_noChanges_exitsTwo() {
    CliRunner.Result r = cli.run("keys", "update", "1");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .startsWith("error: nothing to update")
        .contains("--max-concurrent")
        .hasLineCount(1);
  }

  @Test
  void update_bothExpiryOptions_exitsTwo() {
    CliRunner.Result r =
        cli.run(
            "keys", "update", "1", "--expires-in", "7d", "--expires-at", "2030-01-01T00:00:00Z");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).contains("mutually exclusive").hasLineCount(1);
  }

  @Test
  void update_unknownStatus_exitsTwo() {
    CliRunner.Result r = cli.run("keys", "update", "1", "--status", "expired");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err()).startsWith("error: Invalid value for option '--status'").hasLineCount(1);
  }

  // ---- reset-quota / delete: confirmation ----

  @Test
  void resetQuota_answeredYes_setsUsedToZero() {
    long id = keyWithUsage("reset-yes");

    CliRunner.Result r = cli.runWithStdin("yes\n", "keys", "reset-quota", Long.toString(id));

    assertThat(r.exitCode()).as(r.toString()).isZero();
    assertThat(r.err())
        .contains("Reset the usage of key " + id)
        .contains("used 3.5 USD")
        .contains("[y/N]");
    assertThat(usedOf(id)).isEqualByComparingTo("0");
  }

  @Test
  void resetQuota_answeredNo_abortsWithExitOneAndChangesNothing() {
    long id = keyWithUsage("reset-no");

    CliRunner.Result r = cli.runWithStdin("n\n", "keys", "reset-quota", Long.toString(id));

    assertThat(r.exitCode()).isEqualTo(ExitCodes.ERROR);
    assertThat(r.err()).endsWith("error: aborted; nothing changed\n");
    assertThat(usedOf(id)).isEqualByComparingTo("3.5");
  }

  @Test
  void resetQuota_endOfInput_abortsWithExitOneAndChangesNothing() {
    long id = keyWithUsage("reset-eof");

    CliRunner.Result r = cli.runWithStdin("", "keys", "reset-quota", Long.toString(id));

    assertThat(r.exitCode()).isEqualTo(ExitCodes.ERROR);
    assertThat(r.err()).contains("no answer on standard input").contains("--yes");
    assertThat(usedOf(id)).isEqualByComparingTo("3.5");
  }

  @Test
  void resetQuota_withYes_resetsWithoutPrompting() {
    long id = keyWithUsage("reset-flag");

    CliRunner.Result r = cli.run("keys", "reset-quota", Long.toString(id), "--yes");

    assertThat(r.exitCode()).as(r.toString()).isZero();
    assertThat(r.err()).isEmpty();
    assertThat(r.out()).containsPattern("(?m)^used_usd:\\s+0$");
    assertThat(usedOf(id)).isEqualByComparingTo("0");
  }

  @Test
  void delete_answeredY_deletesAndTheKeyIsGone() {
    long id = createKey("delete-me");

    CliRunner.Result r = cli.runWithStdin("y\n", "keys", "delete", Long.toString(id));

    assertThat(r.exitCode()).as(r.toString()).isZero();
    assertThat(r.err()).contains("Delete key " + id + " \"delete-me\"");
    assertThat(r.out()).isEqualTo("deleted key " + id + "\n");
    assertThat(cli.run("keys", "get", Long.toString(id)).exitCode()).isEqualTo(ExitCodes.NOT_FOUND);
  }

  @Test
  void delete_endOfInput_keepsTheKey() {
    long id = createKey("keep-me");

    CliRunner.Result r = cli.run("keys", "delete", Long.toString(id));

    assertThat(r.exitCode()).isEqualTo(ExitCodes.ERROR);
    assertThat(cli.run("keys", "get", Long.toString(id)).exitCode()).isZero();
  }

  @Test
  void delete_unknownId_exitsThreeWithoutAsking() {
    CliRunner.Result r = cli.runWithStdin("y\n", "keys", "delete", "888888888");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.NOT_FOUND);
    assertThat(r.err()).doesNotContain("[y/N]").hasLineCount(1);
  }

  @Test
  void clearExpiration_keyWithExpiry_neverExpires() {
    long id = id(cli.run("keys", "create", "--name", "expiring", "--expires-in", "30d").out());

    CliRunner.Result r = cli.run("keys", "clear-expiration", Long.toString(id));

    assertThat(r.exitCode()).as(r.toString()).isZero();
    assertThat(r.out()).containsPattern("(?m)^expires_at:\\s+never$");
    assertThat(db.scalar("SELECT expires_at FROM api_keys WHERE id = ?", id)).isNull();
  }

  // ---- usage ----

  @Test
  void usageList_keyWithReports_listsThemNewestFirst() throws Exception {
    long id = createKey("usage");
    String keyId = Long.toString(id);
    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
        .send(
            UsageStream.report("cli-r1", keyId, "0.25").toBuilder()
                .setOccurredAt(Timestamps.fromSeconds(1_700_000_000))
                .build())
        .send(
            UsageStream.report("cli-r2", keyId, "0.5").toBuilder()
                .setOccurredAt(Timestamps.fromSeconds(1_700_000_100))
                .build())
        .finish();

    CliRunner.Result json = cli.run("usage", "list", keyId, "-o", "json");
    CliRunner.Result table = cli.run("usage", "list", keyId, "--limit", "1");

    assertThat(json.exitCode()).as(json.toString()).isZero();
    List<String> reportIds = new ArrayList<>();
    JSON.readTree(json.out()).forEach(e -> reportIds.add(e.get("report_id").asText()));
    assertThat(reportIds).containsExactly("cli-r2", "cli-r1");
    assertThat(table.exitCode()).as(table.toString()).isZero();
    assertThat(table.out())
        .startsWith("OCCURRED_AT")
        .contains("cli-r2")
        .doesNotContain("cli-r1")
        .contains("gpt-4o-mini");
  }

  @Test
  void usageList_estimatedEvent_isMarkedInTableAndJson() throws Exception {
    long id = createKey("usage-estimated");
    String keyId = Long.toString(id);
    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
        .send(UsageStream.report("cli-est-1", keyId, "0.25"))
        .finish();
    // Only Envoy metering writes estimated rows; a reporter cannot: set it as metering would.
    int marked =
        db.transactions()
            .inTransaction(
                c -> {
                  try (var s = c.createStatement()) {
                    return s.executeUpdate(
                        "UPDATE usage_events SET estimated = true WHERE report_id = 'cli-est-1'");
                  }
                });
    assertThat(marked).isEqualTo(1);
    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN)
        .send(UsageStream.report("cli-est-2", keyId, "0.5"))
        .finish();

    CliRunner.Result json = cli.run("usage", "list", keyId, "-o", "json");
    CliRunner.Result table = cli.run("usage", "list", keyId);

    assertThat(json.exitCode()).as(json.toString()).isZero();
    List<String> marks = new ArrayList<>();
    JSON.readTree(json.out())
        .forEach(
            e -> marks.add(e.get("report_id").asText() + "=" + e.get("estimated").asBoolean()));
    assertThat(marks).containsExactly("cli-est-2=false", "cli-est-1=true");
    assertThat(table.exitCode()).as(table.toString()).isZero();
    List<String> lines = table.out().lines().toList();
    assertThat(lines.get(0)).endsWith("ESTIMATED");
    assertThat(lines)
        .filteredOn(l -> l.contains("cli-est-1"))
        .singleElement()
        .satisfies(l -> assertThat(l).endsWith("yes"));
    assertThat(lines)
        .filteredOn(l -> l.contains("cli-est-2"))
        .singleElement()
        .satisfies(l -> assertThat(l).endsWith("no"));
  }

  @Test
  void usageList_unknownKey_exitsThree() {
    CliRunner.Result r = cli.run("usage", "list", "777777777");

    assertThat(r.exitCode()).as(r.toString()).isEqualTo(ExitCodes.NOT_FOUND);
    assertThat(r.err()).hasLineCount(1);
  }

  // ---- help and usage errors ----

  @Test
  void help_onEveryCommand_exitsZeroAndPrintsUsage() {
    List<List<String>> commands =
        List.of(
            List.of(),
            List.of("serve"),
            List.of("keys"),
            List.of("keys", "create"),
            List.of("keys", "list"),
            List.of("keys", "get"),
            List.of("keys", "update"),
            List.of("keys", "reset-quota"),
            List.of("keys", "delete"),
            List.of("keys", "clear-expiration"),
            List.of("usage"),
            List.of("usage", "list"));
    for (List<String> command : commands) {
      List<String> args = new ArrayList<>(command);
      args.add("--help");
      CliRunner.Result r = cli.run(args.toArray(String[]::new));
      assertThat(r.exitCode()).as("%s: %s", args, r).isZero();
      assertThat(r.out())
          .as("%s", args)
          .startsWith("Usage: quota-authority " + String.join(" ", command).trim());
    }
  }

  @Test
  void unknownOption_exitsTwoWithOneLine() {
    CliRunner.Result r = cli.run("keys", "list", "--colour");

    assertThat(r.exitCode()).isEqualTo(ExitCodes.USAGE);
    assertThat(r.err())
        .startsWith("error: Unknown option: '--colour'")
        .contains("keys list --help")
        .hasLineCount(1);
  }

  // ---- helpers ----

  private static long createKey(String name) {
    CliRunner.Result r = cli.run("keys", "create", "--name", name);
    assertThat(r.exitCode()).as(r.toString()).isZero();
    return id(r.out());
  }

  private static long keyWithUsage(String name) {
    long id = createKey(name);
    db.transactions()
        .inTransaction(
            c -> {
              try (var ps =
                  c.prepareStatement("UPDATE api_keys SET quota_used = 3.5 WHERE id = ?")) {
                ps.setLong(1, id);
                return ps.executeUpdate();
              }
            });
    return id;
  }

  /** window_5h_usd, _1d, _7d, _30d as stored (NUMERIC text), space-separated. */
  private static String windowsOf(long id) {
    return (String)
        db.scalar(
            "SELECT window_5h_usd || ' ' || window_1d_usd || ' ' || window_7d_usd || ' '"
                + " || window_30d_usd FROM api_keys WHERE id = ?",
            id);
  }

  /** requests_per_minute and tokens_per_minute as stored, space-separated. */
  private static String ratesOf(long id) {
    return (String)
        db.scalar(
            "SELECT requests_per_minute || ' ' || tokens_per_minute FROM api_keys WHERE id = ?",
            id);
  }

  private static BigDecimal usedOf(long id) {
    return (BigDecimal) db.scalar("SELECT quota_used FROM api_keys WHERE id = ?", id);
  }

  private static long id(String out) {
    Matcher m = ID_LINE.matcher(out);
    assertThat(m.find()).as(out).isTrue();
    return Long.parseLong(m.group(1));
  }
}
