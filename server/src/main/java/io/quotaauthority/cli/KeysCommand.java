package io.quotaauthority.cli;

import io.quotaauthority.admin.PageTokens;
import io.quotaauthority.keys.KeyRecord;
import io.quotaauthority.keys.RateLimits;
import io.quotaauthority.keys.SpendWindows;
import io.quotaauthority.proto.v1.HoldExpiry;
import io.quotaauthority.proto.v1.KeyStatus;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code keys create|list|get|update|reset-quota|delete|clear-expiration}: thin over KeyActions.
 */
@Command(
    name = "keys",
    description = "Manage API keys through the admin API.",
    subcommands = {
      KeysCommand.Create.class,
      KeysCommand.ListKeys.class,
      KeysCommand.Get.class,
      KeysCommand.Update.class,
      KeysCommand.ResetQuota.class,
      KeysCommand.Delete.class,
      KeysCommand.ClearExpiration.class
    })
final class KeysCommand {
  @Mixin HelpOption help;

  static final String EXPIRES_IN =
      "When it expires: 7d, 30d, 90d, <n>d, <n>h from now, or an RFC 3339 time.";

  static final String MAX_CONCURRENT =
      "Most metered requests of the key in flight at once, across all instances, 0.."
          + KeyRecord.MAX_CONCURRENT_REQUESTS
          + ".";

  /**
   * {@code --max-concurrent}, read by Inputs.count (a String: picocli's int conversion would take
   * "+5" and non-ASCII digits); null when not given.
   */
  static Integer maxConcurrent(String text) {
    return text == null
        ? null
        : Inputs.count("--max-concurrent", text, 0, KeyRecord.MAX_CONCURRENT_REQUESTS);
  }

  /** The reporter-hold options of create and update (README "Holds for usage-stream reporters"). */
  static final class HoldOptions {
    @Option(
        names = "--hold-per-request",
        paramLabel = "USD",
        description =
            "USD Check holds on the quota per request for a usage-stream reporter, settled by the"
                + " report naming its x-quota-hold-id; 0: no hold.")
    String usd;

    @Option(
        names = "--hold-expiry",
        paramLabel = "WHAT",
        description =
            "What a hold never settled does when it expires: charge (default) or release.")
    HoldExpiryChoice expiry;

    enum HoldExpiryChoice {
      CHARGE,
      RELEASE
    }

    void check() {
      // As with --quota: an empty amount is refused here, the amount itself by the server.
      if (usd != null && usd.isBlank()) {
        throw new CliException(
            ExitCodes.USAGE, "--hold-per-request must not be empty: give USD, 0 for no hold");
      }
    }

    KeyActions.Holds holds() {
      return new KeyActions.Holds(
          usd,
          expiry == null
              ? null
              : expiry == HoldExpiryChoice.CHARGE
                  ? HoldExpiry.HOLD_EXPIRY_CHARGE
                  : HoldExpiry.HOLD_EXPIRY_RELEASE);
    }
  }

  /**
   * {@code --quota ""} (an unset shell variable, say) is refused rather than sent: an empty amount
   * must never lift a key's limit. Unlimited is asked for with 0.
   */
  static final String IP_ALLOW =
      "IPv4/IPv6 CIDR blocks (10.0.0.0/8,2001:db8::/32) a client must be in; repeat or"
          + " separate with commas.";

  static final String IP_DENY = "CIDR blocks whose clients are refused, whatever --ip-allow says.";
  static final String MODELS =
      "Models the key may use: exact names or prefixes ending in * (gpt-4o,claude-3-5-*).";

  static final String PERIOD =
      "Periodic budget: daily, weekly (Mondays) or monthly (the 1st); --quota is then spent per"
          + " period.";
  static final String PERIOD_RESET = "When each period starts, HH:MM (default 00:00).";
  static final String PERIOD_ZONE = "IANA time zone of the period's calendar (default UTC).";

  static final String RPM = "Most requests in any 60 s, across every instance.";
  static final String TPM =
      "Tokens per minute: requests are refused while the last minute's reported tokens reach it.";

  /** --rpm/--tpm: a whole number or null when not given; a usage error naming the option. */
  static Long rate(String option, String value, long max) {
    if (value == null) {
      return null;
    }
    return Inputs.wholeNumber(option, value, 0, max);
  }

  static final String WINDOW =
      "A rolling spending window, WINDOW=USD: at most USD spent in any 5h, 1d, 7d or 30d"
          + " (--window 5h=20 --window 7d=100); repeat for several.";

  /**
   * --window values (5h=20) by window label, each amount given as typed (the server validates it);
   * null when none given. A malformed value or an unknown window is a usage error naming --window.
   */
  static Map<String, String> windows(List<String> given) {
    if (given == null) {
      return null;
    }
    Map<String, String> out = new LinkedHashMap<>();
    for (String g : given) {
      int eq = g.indexOf('=');
      if (eq <= 0 || eq == g.length() - 1) {
        throw new CliException(
            ExitCodes.USAGE,
            "--window must be WINDOW=USD with WINDOW one of 5h, 1d, 7d, 30d (5h=20), got "
                + io.quotaauthority.text.Shown.quoted(g));
      }
      String label = g.substring(0, eq);
      try {
        SpendWindows.Window.parse("--window", label);
      } catch (IllegalArgumentException e) {
        throw new CliException(ExitCodes.USAGE, e.getMessage(), e);
      }
      out.put(label.toLowerCase(java.util.Locale.ROOT), g.substring(eq + 1));
    }
    return out;
  }

  /** An update's list: null when not given, empty for the single value {@code none}. */
  static List<String> listOrNone(List<String> given) {
    if (given == null) {
      return null;
    }
    return given.size() == 1 && given.get(0).equals("none") ? List.of() : given;
  }

  static void requireAmount(String quota) {
    if (quota != null && quota.isBlank()) {
      throw new CliException(
          ExitCodes.USAGE, "--quota must not be empty: give an amount in USD, 0 for unlimited");
    }
  }

  @Command(
      name = "create",
      description = "Create a key and print its secret (shown only this once).")
  static final class Create extends AdminCommand {
    @Option(
        names = "--name",
        required = true,
        paramLabel = "NAME",
        description = "What the key is for.")
    String name;

    @Option(
        names = "--quota",
        paramLabel = "USD",
        description = "Quota in US dollars, e.g. 10 or 2.50;" + " unset or 0: unlimited.")
    String quota;

    @Option(
        names = "--expires-in",
        paramLabel = "WHEN",
        description = EXPIRES_IN + " Unset: never.")
    String expiresIn;

    @Option(
        names = "--max-concurrent",
        paramLabel = "N",
        description = MAX_CONCURRENT + " Unset or 0: no cap.")
    String maxConcurrent;

    @Mixin HoldOptions holdOptions;

    @Option(
        names = "--ip-allow",
        split = ",",
        paramLabel = "CIDR",
        description = IP_ALLOW + " Unset: any address.")
    List<String> ipAllow;

    @Option(names = "--ip-deny", split = ",", paramLabel = "CIDR", description = IP_DENY)
    List<String> ipDeny;

    @Option(
        names = "--models",
        split = ",",
        paramLabel = "MODEL",
        description = MODELS + " Unset: any model.")
    List<String> models;

    @Option(names = "--period", paramLabel = "PERIOD", description = PERIOD + " Unset: none.")
    String period;

    @Option(names = "--window", paramLabel = "WINDOW=USD", description = WINDOW + " Unset: none.")
    List<String> window;

    @Option(names = "--rpm", paramLabel = "N", description = RPM + " Unset or 0: no limit.")
    String rpm;

    @Option(names = "--tpm", paramLabel = "N", description = TPM + " Unset or 0: no limit.")
    String tpm;

    private Map<String, String> windows;

    @Option(names = "--period-reset", paramLabel = "HH:MM", description = PERIOD_RESET)
    String periodReset;

    @Option(names = "--period-zone", paramLabel = "ZONE", description = PERIOD_ZONE)
    String periodZone;

    @Mixin OutputOption output;

    private Instant expiresAt;
    private Integer max;

    @Override
    void prepare(CliContext ctx) {
      Inputs.name("--name", name);
      requireAmount(quota);
      expiresAt =
          expiresIn == null ? null : Expiry.parse("--expires-in", expiresIn, ctx.clock().instant());
      max = maxConcurrent(maxConcurrent);
      holdOptions.check();
      windows = windows(window);
    }

    @Override
    int run(KeyActions keys, CliContext ctx) {
      return keys.create(
          name,
          quota,
          expiresAt,
          max,
          new KeyActions.Policies(
              ipAllow,
              ipDeny,
              models,
              period,
              periodReset,
              periodZone,
              windows,
              rate("--rpm", rpm, RateLimits.MAX_RPM),
              rate("--tpm", tpm, RateLimits.MAX_TPM)),
          holdOptions.holds(),
          output.output);
    }
  }

  @Command(name = "list", description = "List every key (all pages).")
  static final class ListKeys extends AdminCommand {
    // A String, read by Inputs.count: picocli's int conversion would take "+5" and non-ASCII
    // digits.
    @Option(
        names = "--page-size",
        paramLabel = "N",
        defaultValue = "500",
        description = "Keys fetched per call, 1..1000 (default: ${DEFAULT-VALUE}).")
    String pageSize;

    @Mixin OutputOption output;

    private int size;

    @Override
    void prepare(CliContext ctx) {
      size = Inputs.count("--page-size", pageSize, 1, PageTokens.MAX_PAGE_SIZE);
    }

    @Override
    int run(KeyActions keys, CliContext ctx) {
      return keys.list(size, output.output);
    }
  }

  @Command(name = "get", description = "Show one key.")
  static final class Get extends AdminCommand {
    @Parameters(paramLabel = "ID", description = "The key's id.")
    String id;

    @Mixin OutputOption output;

    @Override
    void prepare(CliContext ctx) {
      Inputs.id("id", id);
    }

    @Override
    int run(KeyActions keys, CliContext ctx) {
      return keys.get(id, output.output);
    }
  }

  @Command(
      name = "update",
      description =
          "Change a key's name, quota, expiry, status or concurrency cap; what is not given stays.")
  static final class Update extends AdminCommand {
    @Parameters(paramLabel = "ID", description = "The key's id.")
    String id;

    @Option(names = "--name", paramLabel = "NAME", description = "New name.")
    String name;

    @Option(
        names = "--quota",
        paramLabel = "USD",
        description = "New quota in US dollars; 0: unlimited.")
    String quota;

    @ArgGroup(exclusive = true)
    ExpiryGroup expiry;

    @Option(names = "--status", paramLabel = "STATUS", description = "active or disabled.")
    Status status;

    @Option(
        names = "--max-concurrent",
        paramLabel = "N",
        description = MAX_CONCURRENT + " 0: no cap.")
    String maxConcurrent;

    @Mixin HoldOptions holdOptions;

    @Option(
        names = "--ip-allow",
        split = ",",
        paramLabel = "CIDR",
        description = IP_ALLOW + " Replaces the list; none: remove it.")
    List<String> ipAllow;

    @Option(
        names = "--ip-deny",
        split = ",",
        paramLabel = "CIDR",
        description = IP_DENY + " Replaces the list; none: remove it.")
    List<String> ipDeny;

    @Option(
        names = "--models",
        split = ",",
        paramLabel = "MODEL",
        description = MODELS + " Replaces the list; none: remove it.")
    List<String> models;

    @Option(
        names = "--period",
        paramLabel = "PERIOD",
        description = PERIOD + " none: remove it (quota_used is kept).")
    String period;

    @Option(
        names = "--window",
        paramLabel = "WINDOW=USD",
        description = WINDOW + " WINDOW=0 removes that window.")
    List<String> window;

    @Option(names = "--rpm", paramLabel = "N", description = RPM + " 0: remove it.")
    String rpm;

    @Option(names = "--tpm", paramLabel = "N", description = TPM + " 0: remove it.")
    String tpm;

    @Option(names = "--period-reset", paramLabel = "HH:MM", description = PERIOD_RESET)
    String periodReset;

    @Option(names = "--period-zone", paramLabel = "ZONE", description = PERIOD_ZONE)
    String periodZone;

    @Mixin OutputOption output;

    enum Status {
      ACTIVE,
      DISABLED
    }

    static final class ExpiryGroup {
      @Option(names = "--expires-in", paramLabel = "WHEN", description = EXPIRES_IN)
      String in;

      @Option(
          names = "--expires-at",
          paramLabel = "TIME",
          description =
              "When it expires, RFC 3339"
                  + " (2030-01-31T00:00:00Z). To make a key never expire use clear-expiration.")
      String at;
    }

    private KeyActions.Changes changes;

    @Override
    void prepare(CliContext ctx) {
      Inputs.id("id", id);
      if (name != null) {
        Inputs.name("--name", name);
      }
      requireAmount(quota);
      Instant expiresAt = null;
      if (expiry != null && expiry.in != null) {
        expiresAt = Expiry.parse("--expires-in", expiry.in, ctx.clock().instant());
      } else if (expiry != null && expiry.at != null) {
        expiresAt = Expiry.time("--expires-at", expiry.at);
      }
      KeyStatus s =
          status == null
              ? null
              : status == Status.ACTIVE
                  ? KeyStatus.KEY_STATUS_ACTIVE
                  : KeyStatus.KEY_STATUS_DISABLED;
      holdOptions.check();
      // Checked here too, so a bare `keys update 7` fails before any connection is made.
      changes =
          new KeyActions.Changes(
                  name,
                  quota,
                  expiresAt,
                  s,
                  maxConcurrent(maxConcurrent),
                  listOrNone(ipAllow),
                  listOrNone(ipDeny),
                  listOrNone(models),
                  period,
                  periodReset,
                  periodZone,
                  holdOptions.holds(),
                  windows(window),
                  rate("--rpm", rpm, RateLimits.MAX_RPM),
                  rate("--tpm", tpm, RateLimits.MAX_TPM))
              .requireAny();
    }

    @Override
    int run(KeyActions keys, CliContext ctx) {
      return keys.update(id, changes, output.output);
    }
  }

  @Command(name = "reset-quota", description = "Set a key's used amount back to 0 (asks first).")
  static final class ResetQuota extends AdminCommand {
    @Parameters(paramLabel = "ID", description = "The key's id.")
    String id;

    @Option(
        names = {"-y", "--yes"},
        description = "Do not ask for confirmation.")
    boolean yes;

    @Mixin OutputOption output;

    @Override
    void prepare(CliContext ctx) {
      Inputs.id("id", id);
    }

    @Override
    int run(KeyActions keys, CliContext ctx) {
      return keys.resetQuota(id, yes, output.output);
    }
  }

  @Command(
      name = "delete",
      description = "Delete a key: requests with it are refused from then on (asks first).")
  static final class Delete extends AdminCommand {
    @Parameters(paramLabel = "ID", description = "The key's id.")
    String id;

    @Option(
        names = {"-y", "--yes"},
        description = "Do not ask for confirmation.")
    boolean yes;

    @Override
    void prepare(CliContext ctx) {
      Inputs.id("id", id);
    }

    @Override
    int run(KeyActions keys, CliContext ctx) {
      return keys.delete(id, yes);
    }
  }

  @Command(name = "clear-expiration", description = "Make a key never expire.")
  static final class ClearExpiration extends AdminCommand {
    @Parameters(paramLabel = "ID", description = "The key's id.")
    String id;

    @Mixin OutputOption output;

    @Override
    void prepare(CliContext ctx) {
      Inputs.id("id", id);
    }

    @Override
    int run(KeyActions keys, CliContext ctx) {
      return keys.clearExpiration(id, output.output);
    }
  }
}
