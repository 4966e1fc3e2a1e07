package io.quotaauthority.console;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ReportUsageRequest;
import io.quotaauthority.testing.TestDatabase;
import io.quotaauthority.testing.TestServer;
import io.quotaauthority.testing.UsageStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.NoAlertPresentException;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The console end to end: Debian's headless chromium, driven by Selenium through Debian's own
 * chromedriver (same version, nothing downloaded), against a whole server on a real PostgreSQL.
 * What the browser does is checked through the admin API over gRPC. One browser for the class; each
 * test starts from a fresh page, signed in.
 *
 * <p>With {@code -Dconsole.screenshots=docs} the screenshots the README shows are rewritten under
 * docs/; otherwise they go to target/console-screenshots.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ConsoleBrowserIT {
  static final Path CHROMIUM = Path.of("/usr/bin/chromium");
  static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration WAIT = Duration.ofSeconds(10);

  private static TestDatabase db;
  private static TestServer server;
  private static ChromeDriver browser;
  private static Path profile;
  private static Map<String, String> en;

  @BeforeAll
  static void start() throws Exception {
    boolean present = Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER);
    if (!present && "true".equals(System.getenv("CI"))) {
      throw new AssertionError(
          "CI=true but " + CHROMIUM + " or " + CHROMEDRIVER + " is missing: .ci/run installs them");
    }
    Assumptions.assumeTrue(present, "chromium and chromium-driver are not installed");
    en = catalog("en.json");
    db = TestDatabase.create();
    server = ConsoleHttp.start(db, Clock.systemUTC());
    profile = Files.createTempDirectory("qa-chromium");
    ChromeOptions options = new ChromeOptions();
    options.setBinary(CHROMIUM.toString());
    options.addArguments(
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--lang=en-US",
        "--window-size=1280,900",
        "--user-data-dir=" + profile);
    options.setExperimentalOption("prefs", Map.of("intl.accept_languages", "en-US,en"));
    ChromeDriverService service =
        new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile()).build();
    browser = new ChromeDriver(service, options);
    browser.manage().timeouts().scriptTimeout(WAIT);
  }

  @AfterAll
  static void stop() throws Exception {
    if (browser != null) {
      browser.quit();
    }
    if (server != null) {
      server.close();
    }
    if (db != null) {
      db.close();
    }
  }

  @BeforeEach
  void freshPage() {
    browser.manage().window().setSize(new Dimension(1280, 900));
    browser.get(ConsoleHttp.base(server) + "/");
    js("localStorage.removeItem('qa.lang')");
    browser.navigate().refresh();
  }

  // ---- the tests

  @Test
  @Order(1)
  void signIn_wrongTokenRefused_rightTokenSignsInAndSignOutForgets() {
    type(By.id("token"), "not-the-admin-token-0123456789abcdef");
    click(By.id("sign-in"));
    waitText(By.id("sign-in-error"), en.get("signIn.refused"));
    assertThat(js("return sessionStorage.length")).isEqualTo(0L);

    signIn();
    assertThat(browser.findElement(By.id("keys")).isDisplayed()).isTrue();
    assertThat(js("return sessionStorage.getItem('qa.adminToken')"))
        .isEqualTo(TestServer.ADMIN_TOKEN);
    assertThat(js("return document.cookie")).isEqualTo("");
    assertThat(js("return localStorage.getItem('qa.adminToken')")).isNull();
    assertThat(browser.getCurrentUrl()).doesNotContain(TestServer.ADMIN_TOKEN);

    click(By.id("sign-out"));
    waitVisible(By.id("token"));
    assertThat(js("return sessionStorage.getItem('qa.adminToken')")).isNull();
  }

  @Test
  @Order(2)
  void createKey_plus30Days_listShowsItExpiringIn30DaysAndTheSecretOnce() throws Exception {
    signIn();
    click(By.id("create-key"));
    waitVisible(By.id("key-name"));
    type(By.id("key-name"), "console e2e");
    type(By.id("key-quota"), "10");
    new Select(browser.findElement(By.id("key-expires"))).selectByValue("30");
    type(By.id("key-concurrency"), "4");
    screenshot("console-create-en.png");
    click(By.id("key-submit"));

    WebElement secret = waitVisible(By.id("secret"));
    String value = secret.getDomProperty("value");
    assertThat(value).isNotBlank();
    assertThat(text(By.id("secret-warning"))).isEqualTo(en.get("secret.warning"));
    click(By.id("secret-done"));

    WebElement row = row("console e2e");
    ApiKey key = get(row.getDomAttribute("data-key-id"));
    assertThat(value).startsWith(key.getKeyPrefix());
    assertThat(key.getQuotaUsd()).isEqualTo("10");
    assertThat(key.getMaxConcurrentRequests()).isEqualTo(4);
    Duration left =
        Duration.between(Instant.now(), Instant.ofEpochSecond(key.getExpiresAt().getSeconds()));
    assertThat(left).isBetween(Duration.ofDays(30).minusMinutes(2), Duration.ofDays(30));
    assertThat(row.findElement(By.cssSelector(".relative")).getText()).isEqualTo("in 30 days");
    assertThat(row.findElement(By.cssSelector("[data-status]")).getText()).isEqualTo("Active");
    // Shown once: nowhere on the page or in storage after the dialog closed.
    assertThat(browser.getPageSource()).doesNotContain(value);
    assertThat(
            js("return JSON.stringify(sessionStorage) + JSON.stringify(localStorage)").toString())
        .doesNotContain(value);
  }

  @Test
  @Order(3)
  void createKey_quotaTheApiRefuses_errorShownAtTheFieldAndNoKey() throws Exception {
    signIn();
    int before = rows().size();
    click(By.id("create-key"));
    type(By.id("key-name"), "refused quota");
    type(By.id("key-quota"), "12.123456789");
    click(By.id("key-submit"));
    WebElement error = waitVisible(By.id("key-quota-error"));
    assertThat(error.getText()).startsWith(en.get("error.invalid_argument")).contains("quota_usd");
    assertThat(browser.findElement(By.id("key-quota")).getDomAttribute("aria-invalid"))
        .isEqualTo("true");
    click(By.id("key-cancel"));
    signIn();
    assertThat(rows()).hasSize(before);
    assertThat(
            server
                .admin()
                .listKeys(
                    io.quotaauthority.proto.v1.ListKeysRequest.newBuilder()
                        .setPageSize(1000)
                        .build())
                .getKeysList())
        .extracting(ApiKey::getName)
        .doesNotContain("refused quota");
  }

  @Test
  @Order(4)
  void createAndEdit_policiesAndHold_storedAsGivenBadCidrShownAtItsField() throws Exception {
    signIn();
    click(By.id("create-key"));
    type(By.id("key-name"), "policy e2e");
    type(By.id("key-quota"), "20");
    type(By.id("key-ipAllow"), "10.0.0.1/8");
    click(By.id("key-submit"));
    WebElement error = waitVisible(By.id("key-ipAllow-error"));
    assertThat(error.getText()).contains("ip_allow");
    type(By.id("key-ipAllow"), "10.0.0.0/8, 2001:db8::/32");
    type(By.id("key-ipDeny"), "10.9.0.0/16");
    type(By.id("key-models"), "gpt-4o-mini, claude-3-5-*");
    new Select(browser.findElement(By.id("key-period"))).selectByValue("monthly");
    type(By.id("key-periodZone"), "Europe/Paris");
    type(By.id("key-hold"), "0.25");
    new Select(browser.findElement(By.id("key-holdExpiry"))).selectByValue("HOLD_EXPIRY_RELEASE");
    click(By.id("key-submit"));
    waitVisible(By.id("secret"));
    click(By.id("secret-done"));

    ApiKey key = get(row("policy e2e").getDomAttribute("data-key-id"));
    assertThat(key.getIpAllowList()).containsExactly("10.0.0.0/8", "2001:db8::/32");
    assertThat(key.getIpDenyList()).containsExactly("10.9.0.0/16");
    assertThat(key.getModelAllowList()).containsExactly("gpt-4o-mini", "claude-3-5-*");
    assertThat(key.getBudgetPeriod()).isEqualTo("monthly");
    assertThat(key.getBudgetTimeZone()).isEqualTo("Europe/Paris");
    assertThat(key.getHoldUsdPerRequest()).isEqualTo("0.25");
    assertThat(key.getHoldExpiry())
        .isEqualTo(io.quotaauthority.proto.v1.HoldExpiry.HOLD_EXPIRY_RELEASE);

    // Edit: the deny list removed, the hold charged at expiry; nothing else changes.
    row("policy e2e").findElement(By.cssSelector("[data-action=edit]")).click();
    WebElement deny = waitVisible(By.id("key-ipDeny"));
    assertThat(deny.getDomProperty("value")).isEqualTo("10.9.0.0/16");
    deny.clear();
    new Select(browser.findElement(By.id("key-holdExpiry"))).selectByValue("HOLD_EXPIRY_CHARGE");
    click(By.id("key-submit"));
    waitGone(By.cssSelector("dialog"));
    ApiKey after = get(key.getId());
    assertThat(after.getIpDenyList()).isEmpty();
    assertThat(after.getHoldExpiry())
        .isEqualTo(io.quotaauthority.proto.v1.HoldExpiry.HOLD_EXPIRY_CHARGE);
    assertThat(after.getIpAllowList()).isEqualTo(key.getIpAllowList());
    assertThat(after.getModelAllowList()).isEqualTo(key.getModelAllowList());
    assertThat(after.getBudgetPeriod()).isEqualTo("monthly");
    assertThat(after.getHoldUsdPerRequest()).isEqualTo("0.25");
    assertThat(after.getQuotaUsd()).isEqualTo("20");
  }

  @Test
  @Order(4)
  void createAndEdit_windowAndRpm_storedShownInTheDetailWithSpendBadWindowAtItsField()
      throws Exception {
    signIn();
    click(By.id("create-key"));
    type(By.id("key-name"), "window e2e");
    type(By.id("key-window5h"), "20");
    type(By.id("key-rpm"), "60");
    click(By.id("key-submit"));
    waitVisible(By.id("secret"));
    click(By.id("secret-done"));

    ApiKey key = get(row("window e2e").getDomAttribute("data-key-id"));
    assertThat(key.getWindow5HUsd()).isEqualTo("20");
    assertThat(key.getWindow1DUsd()).isEqualTo("0");
    assertThat(key.getRequestsPerMinute()).isEqualTo(60);
    assertThat(key.getTokensPerMinute()).isZero();
    report(key.getId(), "1.5", "gpt-4o-mini");
    long version = versionOf(key.getId());

    // Edit: the 5h window raised, a 1d window and a tpm added; the rpm stays as it was.
    row("window e2e").findElement(By.cssSelector("[data-action=edit]")).click();
    WebElement window5h = waitVisible(By.id("key-window5h"));
    assertThat(window5h.getDomProperty("value")).isEqualTo("20");
    assertThat(browser.findElement(By.id("key-rpm")).getDomProperty("value")).isEqualTo("60");
    type(By.id("key-window5h"), "25");
    type(By.id("key-window1d"), "10.5");
    type(By.id("key-tpm"), "1000");
    click(By.id("key-submit"));
    waitGone(By.cssSelector("dialog"));
    ApiKey after = get(key.getId());
    assertThat(after.getWindow5HUsd()).isEqualTo("25");
    assertThat(after.getWindow1DUsd()).isEqualTo("10.5");
    assertThat(after.getWindow7DUsd()).isEqualTo("0");
    assertThat(after.getRequestsPerMinute()).isEqualTo(60);
    assertThat(after.getTokensPerMinute()).isEqualTo(1000);
    assertThat(versionOf(key.getId())).as("one update").isEqualTo(version + 1);

    // A negative window: the API's refusal shown at that field, nothing written.
    row("window e2e").findElement(By.cssSelector("[data-action=edit]")).click();
    type(By.id("key-window7d"), "-1");
    click(By.id("key-submit"));
    WebElement error = waitVisible(By.id("key-window7d-error"));
    assertThat(error.getText()).contains("window_7d_usd");
    assertThat(browser.findElement(By.id("key-window7d")).getDomAttribute("aria-invalid"))
        .isEqualTo("true");
    click(By.id("key-cancel"));
    waitGone(By.cssSelector("dialog"));
    assertThat(versionOf(key.getId())).as("nothing written").isEqualTo(version + 1);
    assertThat(get(key.getId()).getWindow7DUsd()).isEqualTo("0");

    // The detail (the key's page): each window's limit and what it has spent, the rate limits.
    row("window e2e").findElement(By.cssSelector("[data-action=usage]")).click();
    waitVisible(By.cssSelector("#key-limits [data-window='5h']"));
    assertThat(text(By.cssSelector("#key-limits [data-window='5h']")))
        .isEqualTo("Any 5 hours\n$1.50 spent of $25.00");
    assertThat(text(By.cssSelector("#key-limits [data-window='1d']")))
        .isEqualTo("Any day\n$1.50 spent of $10.50");
    assertThat(browser.findElements(By.cssSelector("#key-limits [data-window='7d']"))).isEmpty();
    assertThat(text(By.cssSelector("#key-limits [data-limit='rpm']")))
        .isEqualTo("Requests per minute\n60");
    assertThat(text(By.cssSelector("#key-limits [data-limit='tpm']")))
        .isEqualTo("Tokens per minute\n1,000");

    new Select(browser.findElement(By.id("language"))).selectByValue("zh-CN");
    waitText(By.id("limits-heading"), catalog("zh-CN.json").get("usage.limits"));
    waitVisible(By.cssSelector("#key-limits [data-window='5h']"));
    assertNoEnglish("key detail with limits");
  }

  @Test
  @Order(4)
  void editQuota_sendsOnlyTheQuota() throws Exception {
    ApiKey k = create("edit me", "5", Instant.now().plus(Duration.ofDays(3)));
    signIn();
    row("edit me").findElement(By.cssSelector("[data-action=edit]")).click();
    WebElement quota = waitVisible(By.id("key-quota"));
    assertThat(quota.getDomProperty("value")).isEqualTo("5");
    quota.clear();
    quota.sendKeys("25.5");
    click(By.id("key-submit"));
    waitGone(By.cssSelector("dialog"));
    ApiKey after = get(k.getId());
    assertThat(after.getQuotaUsd()).isEqualTo("25.5");
    assertThat(after.getName()).isEqualTo("edit me");
    assertThat(after.getExpiresAt()).isEqualTo(k.getExpiresAt());
    assertThat(after.getStatus()).isEqualTo(KeyStatus.KEY_STATUS_ACTIVE);
  }

  @Test
  @Order(5)
  void resetQuota_cancelChangesNothing_confirmSetsUsedToExactlyZero() throws Exception {
    ApiKey k = create("reset me", "50", null);
    report(k.getId(), "1.25", "claude-sonnet-4");
    assertThat(get(k.getId()).getQuotaUsedUsd()).isEqualTo("1.25");
    signIn();
    row("reset me").findElement(By.cssSelector("[data-action=reset]")).click();
    WebElement dialog = waitVisible(By.cssSelector("[data-dialog=reset]"));
    assertThat(dialog.getText()).contains("$1.25").contains("reset me");
    click(By.cssSelector("[data-cancel=reset]"));
    waitGone(By.cssSelector("dialog"));
    assertThat(get(k.getId()).getQuotaUsedUsd()).isEqualTo("1.25");

    row("reset me").findElement(By.cssSelector("[data-action=reset]")).click();
    click(By.cssSelector("[data-confirm=reset]"));
    waitGone(By.cssSelector("dialog"));
    assertThat(get(k.getId()).getQuotaUsedUsd()).isEqualTo("0");
  }

  @Test
  @Order(6)
  void clearExpiration_thenDisable() throws Exception {
    ApiKey k = create("clear and disable", "0", Instant.now().plus(Duration.ofHours(5)));
    signIn();
    assertThat(row("clear and disable").findElement(By.cssSelector(".relative")).getText())
        .isEqualTo("in 5 hours");
    row("clear and disable").findElement(By.cssSelector("[data-action=clear-expiration]")).click();
    click(By.cssSelector("[data-confirm=clear-expiration]"));
    waitGone(By.cssSelector("dialog"));
    await()
        .until(
            d ->
                row("clear and disable")
                    .findElements(By.cssSelector("[data-action=clear-expiration]"))
                    .isEmpty());
    assertThat(get(k.getId()).hasExpiresAt()).isFalse();

    row("clear and disable").findElement(By.cssSelector("[data-action=disable]")).click();
    await()
        .until(
            d ->
                "Disabled"
                    .equals(
                        row("clear and disable")
                            .findElement(By.cssSelector("[data-status]"))
                            .getText()));
    assertThat(get(k.getId()).getStatus()).isEqualTo(KeyStatus.KEY_STATUS_DISABLED);
  }

  @Test
  @Order(7)
  void usagePage_listsReportedEventsNewestFirstWithAChart() throws Exception {
    ApiKey k = create("with usage", "100", null);
    report(k.getId(), "0.5", "gpt-4o-mini");
    report(k.getId(), "2.00000001", "claude-opus-4");
    signIn();
    row("with usage").findElement(By.cssSelector("[data-action=usage]")).click();
    await()
        .until(d -> d.findElements(By.cssSelector("#usage tbody tr[data-report-id]")).size() == 2);
    List<WebElement> rows = browser.findElements(By.cssSelector("#usage tbody tr[data-report-id]"));
    assertThat(rows.get(0).getText()).contains("claude-opus-4").contains("$2.00000001");
    assertThat(rows.get(1).getText()).contains("gpt-4o-mini").contains("$0.50");
    assertThat(browser.findElements(By.cssSelector("#usage-chart rect"))).hasSize(1);
    assertThat(browser.findElement(By.cssSelector("#usage-chart ul")).getDomProperty("textContent"))
        .contains("$2.50000001");
    assertThat(text(By.cssSelector("h1"))).contains("with usage");
  }

  @Test
  @Order(8)
  void hostileKeyName_rendersAsItsCharacters() throws Exception {
    String name = "<img src=x onerror=alert(1)>";
    create(name, "0", null);
    signIn();
    WebElement row = row(name);
    assertThat(row.findElement(By.cssSelector(".key-name")).getText()).isEqualTo(name);
    assertThat(browser.findElements(By.cssSelector("#keys img"))).isEmpty();
    assertThatThrownBy(() -> browser.switchTo().alert())
        .isInstanceOf(NoAlertPresentException.class);
  }

  @Test
  @Order(9)
  void chinese_leavesNoEnglishOnThePageAndIsRemembered() throws Exception {
    signIn();
    screenshot("console-keys-en.png");
    new Select(browser.findElement(By.id("language"))).selectByValue("zh-CN");
    waitText(By.cssSelector("h1"), catalog("zh-CN.json").get("keys.heading"));
    assertNoEnglish("key list");
    screenshot("console-keys-zh.png");

    click(By.id("create-key"));
    waitVisible(By.id("key-name"));
    type(By.id("key-name"), "控制台密钥");
    type(By.id("key-quota"), "10");
    new Select(browser.findElement(By.id("key-expires"))).selectByValue("30");
    assertNoEnglish("create dialog");
    screenshot("console-create-zh.png");
    click(By.id("key-cancel"));

    row("with usage").findElement(By.cssSelector("[data-action=usage]")).click();
    waitVisible(By.cssSelector("#usage tbody tr[data-report-id]"));
    assertNoEnglish("usage page");

    browser.navigate().refresh();
    waitText(By.cssSelector("h1"), catalog("zh-CN.json").get("usage.headingFor"));
    assertThat(js("return document.documentElement.lang")).isEqualTo("zh-CN");
  }

  @Test
  @Order(10)
  void narrowScreen_360px_noSideScrollingAndDialogsFit() {
    signIn();
    browser.manage().window().setSize(new Dimension(360, 740));
    waitVisible(By.id("keys"));
    long viewport = (Long) js("return document.documentElement.clientWidth");
    assertThat((Long) js("return document.documentElement.scrollWidth"))
        .isLessThanOrEqualTo(viewport);
    click(By.id("create-key"));
    WebElement dialog = waitVisible(By.cssSelector("dialog"));
    assertThat(dialog.getRect().getWidth()).isLessThanOrEqualTo((int) viewport);
    // Keyboard: Escape closes the dialog.
    browser.findElement(By.id("key-name")).sendKeys(org.openqa.selenium.Keys.ESCAPE);
    waitGone(By.cssSelector("dialog"));
  }

  @Test
  @Order(11)
  void delete_confirmationNamesTheKey_thenTheKeyIsGone() throws Exception {
    ApiKey k = create("delete me", "0", null);
    signIn();
    row("delete me").findElement(By.cssSelector("[data-action=delete]")).click();
    WebElement dialog = waitVisible(By.cssSelector("[data-dialog=delete]"));
    assertThat(dialog.findElement(By.cssSelector("strong")).getText()).isEqualTo("delete me");
    click(By.cssSelector("[data-confirm=delete]"));
    waitGone(By.cssSelector("dialog"));
    await().until(d -> rowsNamed("delete me").isEmpty());
    assertThatThrownBy(() -> get(k.getId()))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
  }

  // ---- helpers

  /** Signs in if needed, on a freshly loaded page (so keys made over gRPC are listed). */
  private static void signIn() {
    browser.navigate().refresh();
    if (js("return sessionStorage.getItem('qa.adminToken')") == null) {
      type(By.id("token"), TestServer.ADMIN_TOKEN);
      click(By.id("sign-in"));
    }
    await().until(d -> !d.findElements(By.cssSelector("#keys tbody tr")).isEmpty());
  }

  /**
   * Every word the page shows, apart from data (marked .data) and the language names (marked with
   * their own lang), must be in the catalog's language: no run of Latin letters left. Intl's "US$"
   * is the currency sign in Chinese.
   */
  private static void assertNoEnglish(String where) {
    String leftover =
        (String)
            js(
                """
                const clone = document.body.cloneNode(true);
                clone.querySelectorAll('.data, [lang]:not([lang="zh-CN"]), noscript, script, style')
                    .forEach((e) => e.remove());
                const attrs = [...clone.querySelectorAll('*')].flatMap((e) =>
                    ['aria-label', 'placeholder', 'title', 'alt'].map((a) => e.getAttribute(a) || ''));
                const svgTitles = [...document.querySelectorAll('svg title')].map((e) => e.textContent);
                return [clone.textContent, ...attrs, ...svgTitles, document.title].join(' ');
                """);
    String words = leftover.replace("US$", "");
    assertThat(words.replaceAll("[^A-Za-z]+", " ").trim())
        .as("Latin letters on the %s in Chinese: %s", where, leftover)
        .isEmpty();
  }

  private static ApiKey create(String name, String quota, Instant expires) {
    CreateKeyRequest.Builder b = CreateKeyRequest.newBuilder().setName(name).setQuotaUsd(quota);
    if (expires != null) {
      b.setExpiresAt(
          com.google.protobuf.Timestamp.newBuilder().setSeconds(expires.getEpochSecond()));
    }
    return server.admin().createKey(b.build()).getKey();
  }

  private static long versionOf(String id) {
    return db.count("SELECT version FROM api_keys WHERE id = ?", Long.parseLong(id));
  }

  private static ApiKey get(String id) {
    return server.admin().getKey(GetKeyRequest.newBuilder().setId(id).build()).getKey();
  }

  private static void report(String keyId, String cost, String model) throws InterruptedException {
    ReportUsageRequest r =
        UsageStream.report("r-" + System.nanoTime(), keyId, cost).toBuilder()
            .setModel(model)
            .build();
    UsageStream.open(server.authzChannel(), TestServer.REPORTER_TOKEN).send(r).finish();
  }

  private static List<WebElement> rows() {
    return browser.findElements(By.cssSelector("#keys tbody tr[data-key-id]"));
  }

  private static List<WebElement> rowsNamed(String name) {
    return rows().stream()
        .filter(r -> r.findElement(By.cssSelector(".key-name")).getText().equals(name))
        .toList();
  }

  private static WebElement row(String name) {
    try {
      return await()
          .until(
              d -> {
                List<WebElement> found = rowsNamed(name);
                return found.isEmpty() ? null : found.get(0);
              });
    } catch (org.openqa.selenium.TimeoutException e) {
      throw new AssertionError(
          "no row named " + name + " in: " + js("return document.body.innerText"), e);
    }
  }

  /** A wait that retries over a re-render (the list redraws its rows after every change). */
  private static WebDriverWait await() {
    WebDriverWait wait = new WebDriverWait(browser, WAIT);
    wait.ignoring(org.openqa.selenium.StaleElementReferenceException.class);
    return wait;
  }

  private static Object js(String script) {
    return ((JavascriptExecutor) browser).executeScript(script);
  }

  private static void type(By by, String text) {
    WebElement e = waitVisible(by);
    e.clear();
    e.sendKeys(text);
  }

  private static void click(By by) {
    await().until(ExpectedConditions.elementToBeClickable(by)).click();
  }

  private static String text(By by) {
    return waitVisible(by).getText();
  }

  private static WebElement waitVisible(By by) {
    return await().until(ExpectedConditions.visibilityOfElementLocated(by));
  }

  private static void waitText(By by, String text) {
    await().until(ExpectedConditions.textToBePresentInElementLocated(by, text));
  }

  private static void waitGone(By by) {
    await().until(ExpectedConditions.numberOfElementsToBe(by, 0));
  }

  private static void screenshot(String file) throws IOException {
    boolean docs = "docs".equals(System.getProperty("console.screenshots"));
    Path dir = docs ? repoRoot().resolve("docs") : Path.of("target", "console-screenshots");
    Files.createDirectories(dir);
    Files.write(dir.resolve(file), browser.getScreenshotAs(OutputType.BYTES));
  }

  private static Path repoRoot() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      if (Files.exists(d.resolve("README.md")) && Files.isDirectory(d.resolve("server"))) {
        return d;
      }
    }
    throw new IllegalStateException("no repository root above " + Path.of("").toAbsolutePath());
  }

  @SuppressWarnings("unchecked")
  static Map<String, String> catalog(String name) throws IOException {
    try (var in = ConsoleBrowserIT.class.getClassLoader().getResourceAsStream("console/" + name)) {
      return JSON.readValue(in, Map.class);
    }
  }
}
