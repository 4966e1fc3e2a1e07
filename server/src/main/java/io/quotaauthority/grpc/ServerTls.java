package io.quotaauthority.grpc;

import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import io.grpc.TlsServerCredentials;
import io.quotaauthority.config.ConfigException;
import io.quotaauthority.config.Setting;
import io.quotaauthority.config.Settings;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Transport credentials for both gRPC ports: plaintext unless QUOTA_TLS_CERT and QUOTA_TLS_KEY are
 * set; then TLS, and with QUOTA_TLS_CLIENT_CA also a client certificate signed by that CA is
 * required (mTLS). The files are read and checked here, at start, so a wrong path, a key in the
 * wrong format or a key that does not belong to the certificate fails with one line naming the
 * setting, instead of a Netty stack trace at the first handshake.
 */
public final class ServerTls {
  private static final Pattern PEM_KEY =
      Pattern.compile("-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\\s]+)-----END PRIVATE KEY-----");

  private ServerTls() {}

  public static ServerCredentials credentials(Settings settings) {
    if (!settings.tlsEnabled()) {
      return InsecureServerCredentials.create();
    }
    byte[] chain = read(Setting.TLS_CERT, settings.tlsCert().get());
    byte[] key = read(Setting.TLS_KEY, settings.tlsKey().get());
    List<X509Certificate> certs = certificates(Setting.TLS_CERT, chain);
    checkKeyMatches(certs.get(0), privateKey(key));
    try {
      TlsServerCredentials.Builder b =
          TlsServerCredentials.newBuilder()
              .keyManager(new ByteArrayInputStream(chain), new ByteArrayInputStream(key));
      Optional<Path> clientCa = settings.tlsClientCa();
      if (clientCa.isPresent()) {
        byte[] ca = read(Setting.TLS_CLIENT_CA, clientCa.get());
        certificates(Setting.TLS_CLIENT_CA, ca);
        b.trustManager(new ByteArrayInputStream(ca))
            .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
      }
      return b.build();
    } catch (IOException e) {
      throw new ConfigException(
          "QUOTA_TLS_CERT: cannot use the certificate or key: " + e.getMessage(), e);
    }
  }

  private static byte[] read(Setting setting, Path file) {
    try {
      return Files.readAllBytes(file);
    } catch (IOException e) {
      throw new ConfigException(
          setting.env()
              + ": cannot read "
              + file
              + " ("
              + e.getClass().getSimpleName()
              + (e.getMessage() == null ? "" : ": " + e.getMessage())
              + ")",
          e);
    }
  }

  private static List<X509Certificate> certificates(Setting setting, byte[] pem) {
    try {
      List<X509Certificate> out = new ArrayList<>();
      for (var c :
          CertificateFactory.getInstance("X.509")
              .generateCertificates(new ByteArrayInputStream(pem))) {
        out.add((X509Certificate) c);
      }
      if (out.isEmpty()) {
        throw new CertificateException("no certificate in it");
      }
      return out;
    } catch (CertificateException e) {
      throw new ConfigException(
          setting.env() + " must hold PEM certificates: " + e.getMessage(), e);
    }
  }

  private static PrivateKey privateKey(byte[] pem) {
    String text = new String(pem, StandardCharsets.US_ASCII);
    Matcher m = PEM_KEY.matcher(text);
    if (!m.find()) {
      String hint =
          text.contains("BEGIN RSA PRIVATE KEY") || text.contains("BEGIN EC PRIVATE KEY")
              ? " (this is a PKCS#1/SEC1 key: convert it with 'openssl pkcs8 -topk8 -nocrypt -in key.pem')"
              : text.contains("BEGIN ENCRYPTED PRIVATE KEY")
                  ? " (it is encrypted: store it without a passphrase)"
                  : "";
      throw new ConfigException(
          "QUOTA_TLS_KEY must be an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY)" + hint);
    }
    byte[] der = Base64.getMimeDecoder().decode(m.group(1));
    for (String algorithm : List.of("RSA", "EC", "Ed25519", "Ed448")) {
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
      } catch (GeneralSecurityException | IllegalArgumentException notThisOne) {
        // try the next algorithm
      }
    }
    throw new ConfigException("QUOTA_TLS_KEY: not an RSA, EC or EdDSA private key");
  }

  /** Signs a probe with the key and verifies it with the certificate's public key. */
  private static void checkKeyMatches(X509Certificate cert, PrivateKey key) {
    PublicKey pub = cert.getPublicKey();
    String algorithm =
        switch (key.getAlgorithm()) {
          case "RSA" -> "SHA256withRSA";
          case "EC" -> "SHA256withECDSA";
          default -> key.getAlgorithm();
        };
    boolean matches;
    try {
      byte[] probe = "quota-authority key check".getBytes(StandardCharsets.US_ASCII);
      Signature signer = Signature.getInstance(algorithm);
      signer.initSign(key);
      signer.update(probe);
      byte[] signature = signer.sign();
      Signature verifier = Signature.getInstance(algorithm);
      verifier.initVerify(pub);
      verifier.update(probe);
      matches = verifier.verify(signature);
    } catch (GeneralSecurityException e) {
      matches = false;
    }
    if (!matches) {
      throw new ConfigException(
          "QUOTA_TLS_KEY does not belong to the first certificate in QUOTA_TLS_CERT ("
              + cert.getSubjectX500Principal().getName()
              + ")");
    }
  }
}
