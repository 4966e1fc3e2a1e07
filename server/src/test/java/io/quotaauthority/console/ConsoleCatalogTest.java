package io.quotaauthority.console;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The console's message catalogs: English and Chinese name the same keys with the same
 * placeholders, no message is empty, and every key the code asks for is in both.
 */
class ConsoleCatalogTest {
  static final List<String> CATALOGS = List.of("en.json", "zh-CN.json");
  static final List<String> SCRIPTS =
      List.of("app.js", "keys.js", "usage.js", "i18n.js", "api.js", "dom.js");
  private static final Pattern LITERAL_KEY = Pattern.compile("\\bt\\('([A-Za-z]+\\.[A-Za-z_]+)'");
  private static final Pattern PLACEHOLDER = Pattern.compile("\\{(\\w+)}");
  private static final Pattern LABEL_KEY =
      Pattern.compile(
          "'((?:signIn|keys|dialog|usage|secret|reset|delete|clearExpiration|common|app|error|status)\\.[A-Za-z_]+)'");

  @SuppressWarnings("unchecked")
  static Map<String, String> catalog(String name) throws IOException {
    try (InputStream in = resource(name)) {
      return new ObjectMapper().readValue(in, Map.class);
    }
  }

  static InputStream resource(String name) {
    InputStream in =
        ConsoleCatalogTest.class.getClassLoader().getResourceAsStream("console/" + name);
    assertThat(in).as("console/%s in the jar", name).isNotNull();
    return in;
  }

  static String script(String name) throws IOException {
    try (InputStream in = resource(name)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  /** Keys the code names as literals, and those it builds from a known family. */
  static Set<String> keysInUse() throws IOException {
    Set<String> used = new TreeSet<>();
    for (String s : SCRIPTS) {
      String code = script(s);
      for (Pattern p : List.of(LITERAL_KEY, LABEL_KEY)) {
        Matcher m = p.matcher(code);
        while (m.find()) {
          used.add(m.group(1));
        }
      }
    }
    for (String status : List.of("ACTIVE", "DISABLED", "EXPIRED", "QUOTA_EXHAUSTED")) {
      used.add("status." + status);
    }
    for (Status.Code code : Status.Code.values()) {
      if (code != Status.Code.OK) {
        used.add("error." + ConnectErrors.name(code));
      }
    }
    for (String column :
        List.of("name", "prefix", "status", "quota", "used", "expires", "created", "actions")) {
      used.add("keys." + column);
    }
    for (String column : List.of("time", "model", "inputTokens", "outputTokens", "cost")) {
      used.add("usage." + column);
    }
    return used;
  }

  @Test
  void everyKeyInUse_isInEveryCatalog() throws IOException {
    Set<String> used = keysInUse();
    assertThat(used).hasSizeGreaterThan(80);
    for (String c : CATALOGS) {
      assertThat(catalog(c).keySet()).as("keys missing from %s", c).containsAll(used);
    }
  }

  @Test
  void catalogs_haveTheSameKeysNoEmptyMessageAndTheSamePlaceholders() throws IOException {
    Map<String, String> en = catalog("en.json");
    Map<String, String> zh = catalog("zh-CN.json");
    assertThat(zh.keySet()).as("zh-CN.json keys").isEqualTo(en.keySet());
    for (String key : en.keySet()) {
      assertThat(en.get(key)).as("en %s", key).isNotBlank();
      assertThat(zh.get(key)).as("zh-CN %s", key).isNotBlank();
      assertThat(placeholders(zh.get(key)))
          .as("placeholders of %s", key)
          .isEqualTo(placeholders(en.get(key)));
    }
  }

  @Test
  void chineseCatalog_hasNoLatinWords() throws IOException {
    // The end-to-end test checks the page; this names the message at fault.
    for (Map.Entry<String, String> e : catalog("zh-CN.json").entrySet()) {
      String words = PLACEHOLDER.matcher(e.getValue()).replaceAll("");
      assertThat(words).as(e.getKey()).doesNotContainPattern("[A-Za-z]");
    }
  }

  @Test
  void catalogs_haveNoUnusedKeys() throws IOException {
    Set<String> unused = new TreeSet<>(catalog("en.json").keySet());
    unused.removeAll(keysInUse());
    assertThat(unused).as("keys no code uses").isEmpty();
  }

  @Test
  void scripts_neverParseMarkup() throws IOException {
    // Every string from the database goes through text nodes (dom.js h/data): no HTML parsing.
    for (String s : SCRIPTS) {
      assertThat(script(s))
          .as(s)
          .doesNotContain("innerHTML")
          .doesNotContain("outerHTML")
          .doesNotContain("insertAdjacentHTML")
          .doesNotContain("document.write")
          .doesNotContain("eval(");
    }
  }

  private static List<String> placeholders(String message) {
    List<String> out = new ArrayList<>();
    Matcher m = PLACEHOLDER.matcher(message);
    while (m.find()) {
      out.add(m.group(1));
    }
    out.sort(null);
    return out;
  }
}
