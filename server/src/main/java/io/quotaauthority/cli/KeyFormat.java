package io.quotaauthority.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.JsonFormat;
import io.quotaauthority.keys.KeyNames;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.HoldExpiry;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.UsageEvent;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** How keys and usage look on the terminal (tables, field lists) and for scripts (JSON). */
final class KeyFormat {
  private static final JsonFormat.Printer JSON =
      JsonFormat.printer().preservingProtoFieldNames().includingDefaultValueFields();

  private KeyFormat() {}

  static String keyTable(List<ApiKey> keys) {
    List<String[]> rows = new ArrayList<>();
    rows.add(
        new String[] {"ID", "NAME", "PREFIX", "STATUS", "QUOTA_USD", "USED_USD", "EXPIRES_AT"});
    for (ApiKey k : keys) {
      rows.add(
          new String[] {
            k.getId(),
            clean(k.getName()),
            k.getKeyPrefix(),
            status(k.getStatus()),
            quota(k.getQuotaUsd()),
            k.getQuotaUsedUsd(),
            expires(k)
          });
    }
    return table(rows);
  }

  static String usageTable(List<UsageEvent> events) {
    List<String[]> rows = new ArrayList<>();
    rows.add(
        new String[] {
          "OCCURRED_AT",
          "REPORT_ID",
          "COST_USD",
          "MODEL",
          "INPUT_TOKENS",
          "OUTPUT_TOKENS",
          "PROVIDER",
          "ESTIMATED"
        });
    for (UsageEvent e : events) {
      // ESTIMATED "yes": metering charged an estimate for a response cut before its final usage.
      rows.add(
          new String[] {
            time(e.getOccurredAt()),
            clean(e.getReportId()),
            e.getCostUsd(),
            clean(e.getModel()),
            Long.toString(e.getInputTokens()),
            Long.toString(e.getOutputTokens()),
            e.getProvider().isEmpty() ? "-" : clean(e.getProvider()),
            e.getEstimated() ? "yes" : "no"
          });
    }
    return table(rows);
  }

  /** One key as "field: value" lines. */
  static String keyDetails(ApiKey k) {
    List<String[]> rows =
        List.of(
            new String[] {"id:", k.getId()},
            new String[] {"name:", clean(k.getName())},
            new String[] {"prefix:", k.getKeyPrefix()},
            new String[] {"status:", status(k.getStatus())},
            new String[] {"quota_usd:", quota(k.getQuotaUsd())},
            new String[] {"used_usd:", k.getQuotaUsedUsd()},
            // Held for requests in flight (budget leases), empty from a server before holds.
            new String[] {"reserved_usd:", k.getReservedUsd().isEmpty() ? "0" : k.getReservedUsd()},
            // 0 is no cap, shown as quota_usd's 0 is.
            new String[] {"max_concurrent_requests:", cap(k.getMaxConcurrentRequests())},
            // Slots leased across all instances: at least the requests in flight.
            new String[] {"concurrent_requests:", Integer.toString(k.getConcurrentRequests())},
            // The hold Check takes per request for a usage-stream reporter; 0 is none.
            new String[] {
              "hold_usd_per_request:",
              k.getHoldUsdPerRequest().isEmpty() ? "0" : k.getHoldUsdPerRequest()
            },
            new String[] {
              "hold_expiry:",
              k.getHoldExpiry() == HoldExpiry.HOLD_EXPIRY_RELEASE ? "release" : "charge"
            },
            // Policies: "-" for none, else the entries comma-separated.
            new String[] {"ip_allow:", list(k.getIpAllowList())},
            new String[] {"ip_deny:", list(k.getIpDenyList())},
            new String[] {"model_allow:", list(k.getModelAllowList())},
            new String[] {"budget_period:", period(k)},
            // Spending windows: "5h=20 (spent 3.5),7d=100", or "-" for none.
            new String[] {"windows:", windows(k)},
            // Rate limits; 0 is none.
            new String[] {"requests_per_minute:", Integer.toString(k.getRequestsPerMinute())},
            new String[] {"tokens_per_minute:", Long.toString(k.getTokensPerMinute())},
            new String[] {
              "period_resets_at:", k.hasPeriodResetsAt() ? time(k.getPeriodResetsAt()) : "-"
            },
            new String[] {"expires_at:", expires(k)},
            new String[] {"created_at:", time(k.getCreatedAt())},
            new String[] {"updated_at:", time(k.getUpdatedAt())});
    return table(rows);
  }

  /** "monthly at 00:00 Europe/Paris", or none. */
  private static String period(ApiKey k) {
    String p = k.getBudgetPeriod();
    if (p.isEmpty() || p.equals("none")) {
      return "none";
    }
    return clean(p + " at " + k.getBudgetResetTime() + " " + k.getBudgetTimeZone());
  }

  private static String windows(ApiKey k) {
    List<String> parts = new java.util.ArrayList<>();
    window(parts, "5h", k.getWindow5HUsd(), k.getWindow5HSpentUsd());
    window(parts, "1d", k.getWindow1DUsd(), k.getWindow1DSpentUsd());
    window(parts, "7d", k.getWindow7DUsd(), k.getWindow7DSpentUsd());
    window(parts, "30d", k.getWindow30DUsd(), k.getWindow30DSpentUsd());
    return parts.isEmpty() ? "-" : clean(String.join(",", parts));
  }

  private static void window(List<String> parts, String label, String limit, String spent) {
    if (!limit.isEmpty() && !limit.equals("0")) {
      parts.add(label + "=" + limit + (spent.isEmpty() ? "" : " (spent " + spent + ")"));
    }
  }

  private static String list(List<String> entries) {
    return entries.isEmpty() ? "-" : clean(String.join(",", entries));
  }

  static String json(MessageOrBuilder message) {
    try {
      return JSON.print(message);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A JSON array of messages, for list commands: {@code jq '.[]'}. */
  static String jsonArray(List<? extends MessageOrBuilder> messages) {
    if (messages.isEmpty()) {
      return "[]";
    }
    StringBuilder b = new StringBuilder("[\n");
    for (int i = 0; i < messages.size(); i++) {
      b.append(json(messages.get(i)).indent(2).stripTrailing());
      b.append(i + 1 < messages.size() ? ",\n" : "\n");
    }
    return b.append(']').toString();
  }

  static String status(KeyStatus s) {
    String n = s.name();
    return (n.startsWith("KEY_STATUS_") ? n.substring(11) : n).toLowerCase(Locale.ROOT);
  }

  private static String quota(String quotaUsd) {
    return quotaUsd.isEmpty() || quotaUsd.equals("0") ? "unlimited" : quotaUsd;
  }

  private static String cap(int maxConcurrentRequests) {
    return maxConcurrentRequests == 0 ? "unlimited" : Integer.toString(maxConcurrentRequests);
  }

  private static String expires(ApiKey k) {
    return k.hasExpiresAt() ? time(k.getExpiresAt()) : "never";
  }

  private static String time(Timestamp t) {
    if (t.getSeconds() == 0 && t.getNanos() == 0) {
      return "-";
    }
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos())
        .truncatedTo(ChronoUnit.SECONDS)
        .toString();
  }

  /**
   * Characters no name may hold (controls could carry terminal escapes, a bidi override would
   * reorder the table or a prompt) shown as '?': rows stored before KeyNames existed may hold them.
   */
  static String clean(String s) {
    StringBuilder b = new StringBuilder(s.length());
    s.codePoints().forEach(c -> b.appendCodePoint(KeyNames.isRefused(c) ? '?' : c));
    return b.toString();
  }

  private static String table(List<String[]> rows) {
    int cols = rows.get(0).length;
    int[] width = new int[cols];
    for (String[] r : rows) {
      for (int i = 0; i < cols; i++) {
        width[i] = Math.max(width[i], r[i].length());
      }
    }
    StringBuilder b = new StringBuilder();
    for (String[] r : rows) {
      StringBuilder line = new StringBuilder();
      for (int i = 0; i < cols; i++) {
        line.append(r[i]);
        if (i + 1 < cols) {
          line.append(" ".repeat(width[i] - r[i].length() + 2));
        }
      }
      b.append(line.toString().stripTrailing()).append('\n');
    }
    return b.toString();
  }
}
