package io.quotaauthority.tls;

import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A CA and certificates it signed, made at run time and written as PEM files (certificate chain,
 * unencrypted PKCS#8 key) into a directory: what QUOTA_TLS_* and the CLI's --ca/--cert/--key take.
 */
public final class TestCertificates {
  private static final AtomicLong SERIAL = new AtomicLong(System.currentTimeMillis());

  /** A certificate (PEM file) and its key (PEM file). */
  public record Pem(Path cert, Path key) {}

  private final String name;
  private final KeyPair caKeys;
  private final X509Certificate caCert;
  private final Path dir;

  private TestCertificates(String name, KeyPair caKeys, X509Certificate caCert, Path dir) {
    this.name = name;
    this.caKeys = caKeys;
    this.caCert = caCert;
    this.dir = dir;
  }

  /** A new self-signed CA named {@code name}; its files go under {@code dir}. */
  public static TestCertificates newCa(String name, Path dir) throws Exception {
    KeyPair keys = ecKeys();
    X500Name subject = new X500Name("CN=" + name);
    X509v3CertificateBuilder b = builder(subject, subject, keys);
    b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
    b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
    X509Certificate cert = sign(b, keys.getPrivate());
    Files.createDirectories(dir);
    TestCertificates ca = new TestCertificates(name, keys, cert, dir);
    Files.writeString(ca.caFile(), pem(cert));
    return ca;
  }

  public Path caFile() {
    return dir.resolve(name + "-ca.pem");
  }

  /** A server certificate for localhost and 127.0.0.1. */
  public Pem server(String cn) throws Exception {
    return leaf(
        cn,
        KeyPurposeId.id_kp_serverAuth,
        new GeneralNames(
            new GeneralName[] {
              new GeneralName(GeneralName.dNSName, "localhost"),
              new GeneralName(GeneralName.iPAddress, "127.0.0.1")
            }));
  }

  /** A client certificate, for mTLS. */
  public Pem client(String cn) throws Exception {
    return leaf(cn, KeyPurposeId.id_kp_clientAuth, null);
  }

  private Pem leaf(String cn, KeyPurposeId purpose, GeneralNames san) throws Exception {
    KeyPair keys = ecKeys();
    X509v3CertificateBuilder b =
        builder(new X500Name("CN=" + cn), new X500Name("CN=" + name), keys);
    b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
    b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
    b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purpose));
    if (san != null) {
      b.addExtension(Extension.subjectAlternativeName, false, san);
    }
    X509Certificate cert = sign(b, caKeys.getPrivate());
    Path certFile = dir.resolve(name + "-" + cn + ".pem");
    Path keyFile = dir.resolve(name + "-" + cn + "-key.pem");
    Files.writeString(certFile, pem(cert));
    Files.writeString(keyFile, pkcs8(keys.getPrivate()));
    return new Pem(certFile, keyFile);
  }

  private static KeyPair ecKeys() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(256);
    return g.generateKeyPair();
  }

  private static X509v3CertificateBuilder builder(X500Name subject, X500Name issuer, KeyPair keys) {
    Instant now = Instant.now();
    return new JcaX509v3CertificateBuilder(
        issuer,
        BigInteger.valueOf(SERIAL.incrementAndGet()),
        Date.from(now.minus(Duration.ofHours(1))),
        Date.from(now.plus(Duration.ofDays(1))),
        subject,
        keys.getPublic());
  }

  private static X509Certificate sign(X509v3CertificateBuilder b, PrivateKey signer)
      throws Exception {
    return new JcaX509CertificateConverter()
        .getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer)));
  }

  private static String pem(X509Certificate cert) throws IOException {
    StringWriter s = new StringWriter();
    try (JcaPEMWriter w = new JcaPEMWriter(s)) {
      w.writeObject(cert);
    }
    return s.toString();
  }

  /** "BEGIN PRIVATE KEY": the JDK's encoding of a private key is PKCS#8 already. */
  static String pkcs8(PrivateKey key) {
    return "-----BEGIN PRIVATE KEY-----\n"
        + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(key.getEncoded())
        + "\n-----END PRIVATE KEY-----\n";
  }
}
