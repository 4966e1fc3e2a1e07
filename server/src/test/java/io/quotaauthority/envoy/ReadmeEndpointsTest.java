package io.quotaauthority.envoy;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.provider.Endpoints;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** README's "Endpoints" table and {@link Endpoints} say the same, row for row, in order. */
class ReadmeEndpointsTest {

  @Test
  void readmeEndpointsTable_equalsEndpointsRows_inOrder() {
    String text = RepoFiles.read("README.md");
    int start = text.indexOf("\n## Endpoints\n");
    assertThat(start).as("README has a '## Endpoints' section").isNotNegative();
    int end = text.indexOf("\n## ", start + 1);
    String section = end < 0 ? text.substring(start) : text.substring(start, end);

    List<String> readme = new ArrayList<>();
    for (String line : section.split("\n")) {
      if (!line.startsWith("| ") || line.startsWith("| provider ")) {
        continue;
      }
      List<String> cells = Arrays.stream(line.split("\\|")).map(String::trim).toList();
      // "", provider, endpoint, class, how
      assertThat(cells).as(line).hasSize(5);
      readme.add(cells.get(1) + " | " + cells.get(2) + " | " + cells.get(3) + " | " + cells.get(4));
    }

    List<String> code = Endpoints.rows().stream().map(ReadmeEndpointsTest::asReadmeRow).toList();
    assertThat(readme).containsExactlyElementsOf(code);
  }

  /** The row as README shows it; for a refused endpoint the 403's words, verbatim. */
  static String asReadmeRow(Endpoints.Row r) {
    String provider = r.provider() == null ? "any" : r.provider().wireName();
    String how =
        r.kind() == Endpoints.Kind.NOT_METERED
            ? "refused for keys with a quota: \"" + r.what() + "\""
            : r.what();
    return provider
        + " | "
        + r.method()
        + " `"
        + r.pattern()
        + "` | "
        + r.kind().label()
        + " | "
        + how;
  }
}
