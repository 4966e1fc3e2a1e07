package io.quotaauthority.cli;

import com.google.protobuf.FieldMask;
import io.quotaauthority.keys.ProtoTimes;
import io.quotaauthority.proto.v1.ApiKey;
import io.quotaauthority.proto.v1.ClearExpirationRequest;
import io.quotaauthority.proto.v1.CreateKeyRequest;
import io.quotaauthority.proto.v1.CreateKeyResponse;
import io.quotaauthority.proto.v1.DeleteKeyRequest;
import io.quotaauthority.proto.v1.GetKeyRequest;
import io.quotaauthority.proto.v1.HoldExpiry;
import io.quotaauthority.proto.v1.KeyStatus;
import io.quotaauthority.proto.v1.ListKeysRequest;
import io.quotaauthority.proto.v1.ListKeysResponse;
import io.quotaauthority.proto.v1.ListUsageRequest;
import io.quotaauthority.proto.v1.ListUsageResponse;
import io.quotaauthority.proto.v1.ResetQuotaRequest;
import io.quotaauthority.proto.v1.UpdateKeyRequest;
import io.quotaauthority.proto.v1.UsageEvent;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What the key and usage commands do, apart from parsing their command line: one or more admin
 * calls and the output. Returns the exit code; failures throw {@link CliException}.
 */
final class KeyActions {
  private final AdminClient client;
  private final PrintWriter out;
  private final PrintWriter err;
  private final BufferedReader in;

  KeyActions(AdminClient client, PrintWriter out, PrintWriter err, BufferedReader in) {
    this.client = client;
    this.out = out;
    this.err = err;
    this.in = in;
  }

  /** A key's reporter-hold fields as given; null means "not given". */
  record Holds(String usdPerRequest, HoldExpiry expiry) {}

  /** The fields an update changes; null means "not given". */
  record Changes(
      String name,
      String quotaUsd,
      Instant expiresAt,
      KeyStatus status,
      Integer maxConcurrentRequests,
      List<String> ipAllow,
      List<String> ipDeny,
      List<String> models,
      String period,
      String periodReset,
      String periodZone,
      Holds holds,
      Map<String, String> windows,
      Long rpm,
      Long tpm) {
    /** At least one field is set, or the usage error that says which could be. */
    Changes requireAny() {
      if (name == null
          && quotaUsd == null
          && expiresAt == null
          && status == null
          && maxConcurrentRequests == null
          && ipAllow == null
          && ipDeny == null
          && models == null
          && period == null
          && periodReset == null
          && periodZone == null
          && holds.usdPerRequest() == null
          && holds.expiry() == null
          && windows == null
          && rpm == null
          && tpm == null) {
        throw new CliException(
            ExitCodes.USAGE,
            "nothing to update: give at least one of --name,"
                + " --quota, --expires-in, --expires-at, --status, --max-concurrent,"
                + " --ip-allow, --ip-deny, --models, --period, --period-reset, --period-zone,"
                + " --hold-per-request, --hold-expiry, --window, --rpm, --tpm");
      }
      return this;
    }
  }

  /** The key's policy lists on create; each null or empty when not given. */
  record Policies(
      List<String> ipAllow,
      List<String> ipDeny,
      List<String> models,
      String period,
      String periodReset,
      String periodZone,
      Map<String, String> windows,
      Long rpm,
      Long tpm) {}

  /**
   * @param maxConcurrentRequests null when not given (the server's default: no cap)
   */
  int create(
      String name,
      String quotaUsd,
      Instant expiresAt,
      Integer maxConcurrentRequests,
      Policies policies,
      Holds holds,
      Output output) {
    CreateKeyRequest.Builder req = CreateKeyRequest.newBuilder().setName(name);
    if (holds.usdPerRequest() != null) {
      req.setHoldUsdPerRequest(holds.usdPerRequest());
    }
    if (holds.expiry() != null) {
      req.setHoldExpiry(holds.expiry());
    }
    if (policies.ipAllow() != null) {
      req.addAllIpAllow(policies.ipAllow());
    }
    if (policies.ipDeny() != null) {
      req.addAllIpDeny(policies.ipDeny());
    }
    if (policies.models() != null) {
      req.addAllModelAllow(policies.models());
    }
    if (policies.period() != null) {
      req.setBudgetPeriod(policies.period());
    }
    if (policies.periodReset() != null) {
      req.setBudgetResetTime(policies.periodReset());
    }
    if (policies.periodZone() != null) {
      req.setBudgetTimeZone(policies.periodZone());
    }
    if (policies.rpm() != null) {
      req.setRequestsPerMinute(policies.rpm().intValue());
    }
    if (policies.tpm() != null) {
      req.setTokensPerMinute(policies.tpm());
    }
    if (policies.windows() != null) {
      policies
          .windows()
          .forEach(
              (w, usd) -> {
                switch (w) {
                  case "5h" -> req.setWindow5HUsd(usd);
                  case "1d" -> req.setWindow1DUsd(usd);
                  case "7d" -> req.setWindow7DUsd(usd);
                  default -> req.setWindow30DUsd(usd);
                }
              });
    }
    if (quotaUsd != null) {
      req.setQuotaUsd(quotaUsd);
    }
    if (maxConcurrentRequests != null) {
      req.setMaxConcurrentRequests(maxConcurrentRequests);
    }
    if (expiresAt != null) {
      req.setExpiresAt(ProtoTimes.timestamp(expiresAt));
    }
    CreateKeyResponse created = client.call(s -> s.createKey(req.build()));
    if (output == Output.JSON) {
      out.println(KeyFormat.json(created));
      err.println("The secret will not be shown again: store it now.");
    } else {
      out.print(KeyFormat.keyDetails(created.getKey()));
      out.println("secret:     " + created.getSecret());
      out.println();
      out.println("The secret will not be shown again: store it now.");
    }
    return ExitCodes.OK;
  }

  int list(int pageSize, Output output) {
    List<ApiKey> keys = new ArrayList<>();
    String token = "";
    do {
      String page = token;
      ListKeysResponse r =
          client.call(
              s ->
                  s.listKeys(
                      ListKeysRequest.newBuilder()
                          .setPageSize(pageSize)
                          .setPageToken(page)
                          .build()));
      keys.addAll(r.getKeysList());
      token = r.getNextPageToken();
    } while (!token.isEmpty());
    out.print(output == Output.JSON ? KeyFormat.jsonArray(keys) + "\n" : KeyFormat.keyTable(keys));
    return ExitCodes.OK;
  }

  int get(String id, Output output) {
    return show(fetch(id), output);
  }

  int update(String id, Changes c, Output output) {
    c.requireAny();
    ApiKey.Builder key = ApiKey.newBuilder().setId(id);
    FieldMask.Builder mask = FieldMask.newBuilder();
    if (c.name() != null) {
      key.setName(c.name());
      mask.addPaths("name");
    }
    if (c.quotaUsd() != null) {
      key.setQuotaUsd(c.quotaUsd());
      mask.addPaths("quota_usd");
    }
    if (c.expiresAt() != null) {
      key.setExpiresAt(ProtoTimes.timestamp(c.expiresAt()));
      mask.addPaths("expires_at");
    }
    if (c.status() != null) {
      key.setStatus(c.status());
      mask.addPaths("status");
    }
    if (c.maxConcurrentRequests() != null) {
      // Named in the mask even when 0: that is how the cap is removed.
      key.setMaxConcurrentRequests(c.maxConcurrentRequests());
      mask.addPaths("max_concurrent_requests");
    }
    if (c.holds().usdPerRequest() != null) {
      key.setHoldUsdPerRequest(c.holds().usdPerRequest());
      mask.addPaths("hold_usd_per_request");
    }
    if (c.holds().expiry() != null) {
      key.setHoldExpiry(c.holds().expiry());
      mask.addPaths("hold_expiry");
    }
    // A given list replaces the stored one; an empty one (--ip-allow none) removes it.
    if (c.ipAllow() != null) {
      key.addAllIpAllow(c.ipAllow());
      mask.addPaths("ip_allow");
    }
    if (c.ipDeny() != null) {
      key.addAllIpDeny(c.ipDeny());
      mask.addPaths("ip_deny");
    }
    if (c.models() != null) {
      key.addAllModelAllow(c.models());
      mask.addPaths("model_allow");
    }
    if (c.period() != null) {
      key.setBudgetPeriod(c.period());
      mask.addPaths("budget_period");
    }
    if (c.periodReset() != null) {
      key.setBudgetResetTime(c.periodReset());
      mask.addPaths("budget_reset_time");
    }
    if (c.periodZone() != null) {
      key.setBudgetTimeZone(c.periodZone());
      mask.addPaths("budget_time_zone");
    }
    if (c.rpm() != null) {
      key.setRequestsPerMinute(c.rpm().intValue());
      mask.addPaths("requests_per_minute");
    }
    if (c.tpm() != null) {
      key.setTokensPerMinute(c.tpm());
      mask.addPaths("tokens_per_minute");
    }
    if (c.windows() != null) {
      c.windows()
          .forEach(
              (w, usd) -> {
                switch (w) {
                  case "5h" -> key.setWindow5HUsd(usd);
                  case "1d" -> key.setWindow1DUsd(usd);
                  case "7d" -> key.setWindow7DUsd(usd);
                  default -> key.setWindow30DUsd(usd);
                }
                mask.addPaths("window_" + w + "_usd");
              });
    }
    ApiKey updated =
        client
            .call(
                s ->
                    s.updateKey(
                        UpdateKeyRequest.newBuilder().setKey(key).setUpdateMask(mask).build()))
            .getKey();
    return show(updated, output);
  }

  int resetQuota(String id, boolean yes, Output output) {
    ApiKey key = fetch(id);
    confirm(
        yes,
        "Reset the usage of key "
            + describe(key)
            + " (used "
            + key.getQuotaUsedUsd()
            + " USD) to 0?");
    return show(
        client.call(s -> s.resetQuota(ResetQuotaRequest.newBuilder().setId(id).build())).getKey(),
        output);
  }

  int delete(String id, boolean yes) {
    ApiKey key = fetch(id);
    confirm(
        yes,
        "Delete key "
            + describe(key)
            + "? Requests with it are refused from then on; this cannot be undone.");
    client.call(s -> s.deleteKey(DeleteKeyRequest.newBuilder().setId(id).build()));
    out.println("deleted key " + id);
    return ExitCodes.OK;
  }

  int clearExpiration(String id, Output output) {
    return show(
        client
            .call(s -> s.clearExpiration(ClearExpirationRequest.newBuilder().setId(id).build()))
            .getKey(),
        output);
  }

  /** Newest first, up to {@code limit} events (0: all). */
  int usage(String keyId, int limit, Output output) {
    List<UsageEvent> events = new ArrayList<>();
    String token = "";
    do {
      String page = token;
      int size = limit == 0 ? 1000 : Math.min(1000, limit - events.size());
      ListUsageResponse r =
          client.call(
              s ->
                  s.listUsage(
                      ListUsageRequest.newBuilder()
                          .setKeyId(keyId)
                          .setPageSize(size)
                          .setPageToken(page)
                          .build()));
      events.addAll(r.getEventsList());
      token = r.getNextPageToken();
    } while (!token.isEmpty() && (limit == 0 || events.size() < limit));
    List<UsageEvent> shown =
        limit == 0 || events.size() <= limit ? events : events.subList(0, limit);
    out.print(
        output == Output.JSON ? KeyFormat.jsonArray(shown) + "\n" : KeyFormat.usageTable(shown));
    return ExitCodes.OK;
  }

  private ApiKey fetch(String id) {
    return client.call(s -> s.getKey(GetKeyRequest.newBuilder().setId(id).build())).getKey();
  }

  private int show(ApiKey key, Output output) {
    out.print(output == Output.JSON ? KeyFormat.json(key) + "\n" : KeyFormat.keyDetails(key));
    return ExitCodes.OK;
  }

  private static String describe(ApiKey key) {
    return key.getId()
        + " \""
        + KeyFormat.clean(key.getName())
        + "\" ("
        + key.getKeyPrefix()
        + "...)";
  }

  /**
   * Asks on stderr and reads one line from stdin: y or yes goes on. Anything else, or nothing to
   * read (no terminal, end of input), aborts with exit code 1 before anything changed.
   */
  private void confirm(boolean yes, String question) {
    if (yes) {
      return;
    }
    err.print(question + " [y/N] ");
    err.flush();
    String answer;
    try {
      answer = in.readLine();
    } catch (IOException e) {
      answer = null;
    }
    if (answer == null) {
      err.println();
      throw new CliException(
          ExitCodes.ERROR,
          "no answer on standard input; nothing changed (pass --yes to confirm without a prompt)");
    }
    String a = answer.trim().toLowerCase(Locale.ROOT);
    if (!a.equals("y") && !a.equals("yes")) {
      throw new CliException(ExitCodes.ERROR, "aborted; nothing changed");
    }
  }
}
