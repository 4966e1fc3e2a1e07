package io.quotaauthority.envoy;

import static org.assertj.core.api.Assertions.fail;

import io.envoyproxy.envoy.config.rbac.v3.Permission;
import io.envoyproxy.envoy.config.rbac.v3.Policy;
import io.envoyproxy.envoy.config.rbac.v3.Principal;
import io.envoyproxy.envoy.config.rbac.v3.RBAC;
import io.envoyproxy.envoy.config.route.v3.HeaderMatcher;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * Envoy's RBAC engine and header matching, for the parts of them envoy.yaml uses, so that tests
 * evaluate the policies as the file states them instead of restating the rule. Anything else a
 * policy might use fails the test rather than being guessed at.
 *
 * <p>Semantics followed (Envoy source): the engine (filters/common/rbac/engine_impl.cc) tries the
 * policies in name order and the first that matches is the effective policy; a policy matches when
 * one of its permissions and one of its principals match; a DENY engine denies exactly when one
 * matched, an ALLOW engine allows exactly then. A header matcher (common/http/header_utility.cc
 * matchHeaders) reads all values of the header joined with ","; on an absent header it is false
 * unless it is a present_match for absence ({@code present_match: false}, or {@code true} inverted)
 * or treat_missing_header_as_empty is set, whatever invert_match says; otherwise invert_match
 * negates the match.
 */
final class EnvoyRbac {
  private EnvoyRbac() {}

  /** The request headers: all values of a (lowercase) name, in order; empty when absent. */
  interface RequestHeaders extends Function<String, List<String>> {}

  /**
   * The RBAC decision: null when allowed, else the effective policy's name ("none" when an ALLOW
   * engine matched none), which is what the denial's response code details name.
   */
  static String denyingPolicy(RBAC rules, RequestHeaders headers) {
    // std::map in the engine: policies are tried in name order.
    Optional<String> matched =
        new TreeMap<>(rules.getPoliciesMap())
            .entrySet().stream()
                .filter(e -> policyMatches(e.getKey(), e.getValue(), headers))
                .map(Map.Entry::getKey)
                .findFirst();
    return switch (rules.getAction()) {
      case DENY -> matched.orElse(null);
      case ALLOW -> matched.isPresent() ? null : "none";
      default -> fail("RBAC action " + rules.getAction() + " is not modelled");
    };
  }

  private static boolean policyMatches(String name, Policy policy, RequestHeaders headers) {
    if (policy.hasCondition() || policy.hasCheckedCondition()) {
      fail("policy " + name + ": CEL conditions are not modelled");
    }
    return policy.getPermissionsList().stream().anyMatch(p -> matches(p, headers))
        && policy.getPrincipalsList().stream().anyMatch(p -> matches(p, headers));
  }

  static boolean matches(Permission p, RequestHeaders headers) {
    return switch (p.getRuleCase()) {
      case ANY -> true;
      case HEADER -> matches(p.getHeader(), headers);
      case AND_RULES -> p.getAndRules().getRulesList().stream().allMatch(r -> matches(r, headers));
      case OR_RULES -> p.getOrRules().getRulesList().stream().anyMatch(r -> matches(r, headers));
      case NOT_RULE -> !matches(p.getNotRule(), headers);
      default -> fail("RBAC permission " + p.getRuleCase() + " is not modelled");
    };
  }

  static boolean matches(Principal p, RequestHeaders headers) {
    return switch (p.getIdentifierCase()) {
      case ANY -> true;
      case HEADER -> matches(p.getHeader(), headers);
      case AND_IDS -> p.getAndIds().getIdsList().stream().allMatch(i -> matches(i, headers));
      case OR_IDS -> p.getOrIds().getIdsList().stream().anyMatch(i -> matches(i, headers));
      case NOT_ID -> !matches(p.getNotId(), headers);
      default -> fail("RBAC principal " + p.getIdentifierCase() + " is not modelled");
    };
  }

  /** HeaderUtility::matchHeaders for one matcher. */
  static boolean matches(HeaderMatcher m, RequestHeaders headers) {
    List<String> values = headers.apply(m.getName().toLowerCase(Locale.ROOT));
    boolean presentMatch =
        m.getHeaderMatchSpecifierCase() == HeaderMatcher.HeaderMatchSpecifierCase.PRESENT_MATCH
            // No specifier at all is a present match for presence.
            || m.getHeaderMatchSpecifierCase()
                == HeaderMatcher.HeaderMatchSpecifierCase.HEADERMATCHSPECIFIER_NOT_SET;
    boolean present =
        m.getHeaderMatchSpecifierCase()
                == HeaderMatcher.HeaderMatchSpecifierCase.HEADERMATCHSPECIFIER_NOT_SET
            || m.getPresentMatch();
    if (values.isEmpty() && !m.getTreatMissingHeaderAsEmpty()) {
      // The inversion is decided here, not below: an inverted value matcher is false too.
      return m.getInvertMatch() ? presentMatch && present : presentMatch && !present;
    }
    String value = String.join(",", values);
    boolean match =
        switch (m.getHeaderMatchSpecifierCase()) {
          case PRESENT_MATCH, HEADERMATCHSPECIFIER_NOT_SET -> present;
          case STRING_MATCH -> matches(m.getStringMatch(), value);
          case SAFE_REGEX_MATCH ->
              Pattern.compile(m.getSafeRegexMatch().getRegex()).matcher(value).matches();
          case EXACT_MATCH -> m.getExactMatch().isEmpty() || value.equals(m.getExactMatch());
          case PREFIX_MATCH -> value.startsWith(m.getPrefixMatch());
          case SUFFIX_MATCH -> value.endsWith(m.getSuffixMatch());
          case CONTAINS_MATCH -> value.contains(m.getContainsMatch());
          default -> fail("header matcher " + m.getHeaderMatchSpecifierCase() + " not modelled");
        };
    return match != m.getInvertMatch();
  }

  /** Envoy's StringMatcher (ignore_case applies to all but the regex). */
  static boolean matches(StringMatcher m, String value) {
    String v = m.getIgnoreCase() ? value.toLowerCase(Locale.ROOT) : value;
    Function<String, String> c = s -> m.getIgnoreCase() ? s.toLowerCase(Locale.ROOT) : s;
    return switch (m.getMatchPatternCase()) {
      case EXACT -> v.equals(c.apply(m.getExact()));
      case PREFIX -> v.startsWith(c.apply(m.getPrefix()));
      case SUFFIX -> v.endsWith(c.apply(m.getSuffix()));
      case CONTAINS -> v.contains(c.apply(m.getContains()));
      case SAFE_REGEX -> Pattern.compile(m.getSafeRegex().getRegex()).matcher(value).matches();
      default -> fail("string matcher " + m.getMatchPatternCase() + " is not modelled");
    };
  }
}
