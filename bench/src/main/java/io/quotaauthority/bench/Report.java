package io.quotaauthority.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.HdrHistogram.Histogram;

/** The Markdown report, built section by section; the targets table goes first. */
final class Report {
  record Target(String scenario, String measure, String result, String target, Boolean met) {}

  private final StringBuilder head = new StringBuilder();
  private final StringBuilder body = new StringBuilder();
  private final List<Target> targets = new ArrayList<>();
  private final List<String> missed = new ArrayList<>();

  StringBuilder head() {
    return head;
  }

  void section(String title) {
    body.append("\n## ").append(title).append("\n\n");
  }

  void line(String text) {
    body.append(text).append('\n');
  }

  void para(String text) {
    body.append(text).append("\n\n");
  }

  void table(List<String> header, List<List<String>> rows) {
    body.append('|');
    for (String h : header) {
      body.append(' ').append(h).append(" |");
    }
    body.append("\n|");
    for (int i = 0; i < header.size(); i++) {
      body.append(i == 0 ? "---|" : "---:|");
    }
    body.append('\n');
    for (List<String> r : rows) {
      body.append('|');
      for (String c : r) {
        body.append(' ').append(c).append(" |");
      }
      body.append('\n');
    }
    body.append('\n');
  }

  void code(String text) {
    body.append("```\n").append(text.stripTrailing()).append("\n```\n\n");
  }

  void target(String scenario, String measure, String result, String target, Boolean met) {
    targets.add(new Target(scenario, measure, result, target, met));
  }

  /** A measured reason a target was missed, listed under the targets table. */
  void missed(String reason) {
    missed.add(reason);
  }

  String render() {
    StringBuilder out = new StringBuilder(head);
    out.append("\n## Targets\n\n| Scenario | Measure | Result | Target | Met |\n|---|---|---:|---:|---|\n");
    for (Target t : targets) {
      out.append("| ").append(t.scenario).append(" | ").append(t.measure).append(" | ").append(t.result)
          .append(" | ").append(t.target).append(" | ")
          .append(t.met == null ? "n/a" : t.met ? "yes" : "**no**").append(" |\n");
    }
    if (!missed.isEmpty()) {
      out.append("\nWhy a target was missed, as measured:\n\n");
      for (String m : missed) {
        out.append("- ").append(m).append('\n');
      }
    }
    out.append(body);
    return out.toString();
  }

  // ---- formatting ----

  static String rate(double perSecond) {
    return String.format(Locale.ROOT, "%,.0f/s", perSecond);
  }

  static String num(long n) {
    return String.format(Locale.ROOT, "%,d", n);
  }

  static String ratio(double r) {
    return String.format(Locale.ROOT, "%.2f", r);
  }

  /** A latency in ns as µs or ms. */
  static String lat(double nanos) {
    if (nanos < 10_000_000) {
      return String.format(Locale.ROOT, "%,.0f µs", nanos / 1_000);
    }
    return String.format(Locale.ROOT, "%,.1f ms", nanos / 1_000_000);
  }

  static String p(Histogram h, double percentile) {
    return h.getTotalCount() == 0 ? "–" : lat(h.getValueAtPercentile(percentile));
  }

  static String pcts(Histogram h) {
    if (h.getTotalCount() == 0) {
      return "–";
    }
    return p(h, 50) + " / " + p(h, 99) + " / " + p(h, 99.9);
  }

  static String statements(Map<String, Long> delta) {
    long n = PgProxy.statementCount(delta);
    if (n == 0) {
      return "0";
    }
    List<String> parts = new ArrayList<>();
    delta.forEach((k, v) -> {
      if (!k.startsWith("(")) {
        parts.add(v + " " + k);
      }
    });
    return n + " (" + String.join(", ", parts) + ")";
  }
}
