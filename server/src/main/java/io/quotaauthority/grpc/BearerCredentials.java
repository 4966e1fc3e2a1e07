package io.quotaauthority.grpc;

import io.quotaauthority.config.Tokens;
import io.quotaauthority.text.ActorNames;
import java.security.MessageDigest;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Who an {@code authorization: Bearer <token>} header belongs to, decided without gRPC: the tokens
 * of one role ("admin", "reporter"), each kept as its SHA-256 digest with an optional name. The
 * audit actor comes from the credential that matched ({@code admin} for the unnamed token, {@code
 * admin:<name>} for a named one); what the caller says about itself ({@code x-quota-actor}) is only
 * recorded beside it, as {@code admin:alice (claims: bob)}.
 */
public final class BearerCredentials {
  /** One accepted token: its SHA-256 digest and, for a named token, its name. */
  public record Credential(Optional<String> name, byte[] sha256) {
    public Credential {
      sha256 = sha256.clone();
    }

    public static Credential of(String token) {
      return new Credential(Optional.empty(), Tokens.digest(token));
    }
  }

  /** The answer for one call. */
  public sealed interface Outcome {
    /** Admitted; {@code actor} is what the audit and the log record. */
    record Admitted(String actor) implements Outcome {}

    /** Refused before any message is read; {@code why} is the UNAUTHENTICATED description. */
    record Refused(Refusal reason, String why) implements Outcome {}
  }

  /** Why a call was refused; told to a refusal listener (metrics, warnings), never the token. */
  public enum Refusal {
    /** No authorization header. */
    MISSING,
    /** An authorization header that is not "Bearer <token>". */
    MALFORMED,
    /** A bearer token other than the expected ones. */
    WRONG;

    public String tag() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  private final String role;
  private final byte[][] digests;
  private final String[] actors;

  public BearerCredentials(String role, List<Credential> credentials) {
    if (credentials.isEmpty()) {
      throw new IllegalArgumentException("no " + role + " token");
    }
    this.role = role;
    this.digests = new byte[credentials.size()][];
    this.actors = new String[credentials.size()];
    for (int i = 0; i < credentials.size(); i++) {
      digests[i] = credentials.get(i).sha256().clone();
      actors[i] = role + credentials.get(i).name().map(n -> ":" + n).orElse("");
    }
  }

  public static BearerCredentials single(String role, String token) {
    return new BearerCredentials(role, List.of(Credential.of(token)));
  }

  /**
   * @param authorization the header's value, or null when absent
   * @param claimedActor the caller's {@code x-quota-actor}, or null
   */
  public Outcome check(String authorization, String claimedActor) {
    if (authorization == null) {
      return new Outcome.Refused(
          Refusal.MISSING, "missing authorization: Bearer <" + role + " token>");
    }
    if (authorization.length() < 7
        || !authorization.substring(0, 7).toLowerCase(Locale.ROOT).equals("bearer ")) {
      return new Outcome.Refused(
          Refusal.MALFORMED, "authorization must be 'Bearer <" + role + " token>'");
    }
    // Digests have one length whatever was sent, and MessageDigest.isEqual takes the same time for
    // equal and unequal inputs; every credential is compared, with no exit at the first match, so
    // the time does not tell which token (or whether the first or the last) matched.
    byte[] presented = Tokens.digest(authorization.substring(7).trim());
    int match = -1;
    for (int i = 0; i < digests.length; i++) {
      boolean equal = MessageDigest.isEqual(digests[i], presented);
      match = equal ? i : match;
    }
    if (match < 0) {
      return new Outcome.Refused(Refusal.WRONG, "wrong " + role + " token");
    }
    return new Outcome.Admitted(actor(actors[match], claimedActor));
  }

  /** {@code base}, plus {@code " (claims: <claim>)"} when the caller named someone. */
  static String actor(String base, String claim) {
    if (claim == null || claim.isBlank()) {
      return base;
    }
    return base + " (claims: " + ActorNames.sanitize(claim.strip()) + ")";
  }
}
