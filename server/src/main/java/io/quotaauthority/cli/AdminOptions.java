package io.quotaauthority.cli;

import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.TlsChannelCredentials;
import io.quotaauthority.config.ConfigException;
import io.quotaauthority.config.SecretFile;
import io.quotaauthority.text.VisibleAscii;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * How the admin commands reach the server: address, token and TLS. Mixed into every one of them.
 */
public final class AdminOptions {
  static final String DEFAULT_ADDR = "localhost:9192";
  static final String TOKEN_FILE = "admin-token";

  @Option(
      names = "--admin-addr",
      paramLabel = "HOST:PORT",
      description = "Admin API address (default: $QUOTA_ADMIN_ADDR, else " + DEFAULT_ADDR + ").")
  String adminAddr;

  @Option(
      names = "--token",
      paramLabel = "TOKEN",
      description =
          "Admin token (default: $QUOTA_ADMIN_TOKEN, else the file $QUOTA_ADMIN_TOKEN_FILE, else"
              + " the file <data dir>/admin-token)."
              + " Prefer the variable or the file: a flag shows in the process list.")
  String token;

  @Option(
      names = "--data-dir",
      paramLabel = "DIR",
      description = "Where the server keeps admin-token (default: $QUOTA_DATA_DIR, else ./data).")
  Path dataDir;

  @Option(
      names = "--tls",
      description = "Connect with TLS, trusting the system's CAs (implied by --ca, --cert).")
  boolean tls;

  @Option(
      names = "--ca",
      paramLabel = "PEM",
      description = "Trust only this CA bundle for the server's certificate.")
  Path ca;

  @Option(
      names = "--cert",
      paramLabel = "PEM",
      description = "Client certificate chain, for a server that requires mTLS.")
  Path cert;

  @Option(names = "--key", paramLabel = "PEM", description = "Private key (PKCS#8 PEM) of --cert.")
  Path key;

  /**
   * The token and where it came from, in order: --token, QUOTA_ADMIN_TOKEN, QUOTA_ADMIN_TOKEN_FILE,
   * the data directory's token file.
   */
  record Token(String value, String source) {}

  Token token(CliContext ctx) {
    if (token != null && !token.isBlank()) {
      return new Token(token.trim(), "--token");
    }
    String env = ctx.env().get("QUOTA_ADMIN_TOKEN");
    if (env != null && !env.isBlank()) {
      return new Token(env.trim(), "QUOTA_ADMIN_TOKEN");
    }
    String envFile = ctx.env().get("QUOTA_ADMIN_TOKEN_FILE");
    if (envFile != null && !envFile.isBlank()) {
      // The server's own variable for its token file (e.g. a mounted secret): read the same way,
      // with the same checks, so the CLI beside the server needs no token typed either.
      try {
        return new Token(
            SecretFile.read("QUOTA_ADMIN_TOKEN_FILE", Path.of(envFile.trim())),
            "QUOTA_ADMIN_TOKEN_FILE");
      } catch (ConfigException e) {
        throw new CliException(ExitCodes.AUTHENTICATION, e.getMessage(), e);
      }
    }
    Path dir = dataDir;
    if (dir == null) {
      String envDir = ctx.env().get("QUOTA_DATA_DIR");
      dir = Path.of(envDir == null || envDir.isBlank() ? "./data" : envDir.trim());
    }
    Path file = dir.resolve(TOKEN_FILE);
    String none =
        "no admin token: pass --token, set QUOTA_ADMIN_TOKEN, or point --data-dir at the"
            + " server's data directory (no readable "
            + file
            + ")";
    try {
      String value = Files.readString(file, StandardCharsets.UTF_8).trim();
      if (value.isEmpty()) {
        throw new CliException(ExitCodes.AUTHENTICATION, none);
      }
      return new Token(value, file.toString());
    } catch (NoSuchFileException e) {
      throw new CliException(ExitCodes.AUTHENTICATION, none);
    } catch (IOException e) {
      throw new CliException(ExitCodes.AUTHENTICATION, none + ": " + e.getMessage());
    }
  }

  String target(CliContext ctx) {
    if (adminAddr != null && !adminAddr.isBlank()) {
      return Inputs.address("--admin-addr", adminAddr.trim());
    }
    String env = ctx.env().get("QUOTA_ADMIN_ADDR");
    return env == null || env.isBlank()
        ? DEFAULT_ADDR
        : Inputs.address("QUOTA_ADMIN_ADDR", env.trim());
  }

  ChannelCredentials credentials() {
    if ((cert == null) != (key == null)) {
      throw new CliException(ExitCodes.USAGE, "--cert and --key go together");
    }
    if (!tls && ca == null && cert == null) {
      return InsecureChannelCredentials.create();
    }
    TlsChannelCredentials.Builder b = TlsChannelCredentials.newBuilder();
    try {
      if (ca != null) {
        b.trustManager(ca.toFile());
      }
      if (cert != null) {
        b.keyManager(cert.toFile(), key.toFile());
      }
    } catch (IOException | RuntimeException e) {
      throw new CliException(
          ExitCodes.USAGE, "cannot read the TLS files (--ca, --cert, --key): " + e.getMessage(), e);
    }
    return b.build();
  }

  /**
   * A token must be printable ASCII without spaces (what a bearer token is made of). Anything else,
   * a tab pasted with it say, is refused here, before gRPC sees it: gRPC would print the whole
   * header value, token included, in a warning. The message names where the token came from and the
   * position, never the token.
   */
  static Token printable(Token t) {
    int bad = VisibleAscii.firstInvalid(t.value());
    if (bad >= 0) {
      throw new CliException(
          ExitCodes.AUTHENTICATION,
          "the admin token from "
              + t.source()
              + " contains a character that is not printable ASCII (at position "
              + (bad + 1)
              + "); fix the token");
    }
    return t;
  }

  /** Resolves the token first, so a missing token fails before any connection is made. */
  AdminClient connect(CliContext ctx) {
    Token t = printable(token(ctx));
    return AdminClient.connect(target(ctx), credentials(), t.value(), t.source(), ctx.user());
  }
}
