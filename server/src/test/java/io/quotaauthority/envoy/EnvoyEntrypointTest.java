package io.quotaauthority.envoy;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * envoy/entrypoint.sh run by /bin/sh as docker-compose.yml runs it, with the image's entrypoint
 * replaced by a script that records what it was given: the metering token ends up in a private copy
 * of envoy.yaml that still parses as Envoy's Bootstrap, and never on the command line.
 */
class EnvoyEntrypointTest {
  private static final String TOKEN = "Zm9vYmFyLWEtZ2VuZXJhdGVkLXRva2VuLTMyYnl0ZXM";

  @TempDir Path dir;

  record Run(int exit, String output, List<String> args) {}

  private Run run(Map<String, String> env) throws IOException, InterruptedException {
    Path next = dir.resolve("next.sh");
    Path argsFile = dir.resolve("args");
    // Stands in for the image's /docker-entrypoint.sh: records its arguments one per line.
    Files.writeString(
        next, "#!/bin/sh\nfor a do printf '%s\\n' \"$a\"; done > '" + argsFile + "'\n");
    Path tmp = Files.createDirectories(dir.resolve("tmp"));
    ProcessBuilder pb =
        new ProcessBuilder(
            "/bin/sh",
            RepoFiles.file("envoy/entrypoint.sh").toString(),
            "-c",
            RepoFiles.file(EnvoyConfigTest.ENVOY_YAML).toString(),
            "--log-level",
            "info");
    pb.environment().keySet().removeIf(k -> k.startsWith("QUOTA_") || k.startsWith("ENVOY_"));
    pb.environment().put("ENVOY_ENTRYPOINT", next.toString());
    // The test may run as root, where no "envoy" user exists to hand the copy to.
    pb.environment().put("ENVOY_UID", "0");
    pb.environment().put("TMPDIR", tmp.toString());
    pb.environment().putAll(env);
    next.toFile().setExecutable(true);
    pb.redirectErrorStream(true);
    Process p = pb.start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    List<String> args = Files.exists(argsFile) ? Files.readAllLines(argsFile) : List.of();
    return new Run(p.exitValue(), output, args);
  }

  private static String meteringAuthorization(Path rendered) throws Exception {
    Bootstrap bootstrap = EnvoyConfigTest.parse(Files.readString(rendered));
    HttpConnectionManager hcm =
        EnvoyConfigTest.unpack(
            bootstrap
                .getStaticResources()
                .getListeners(0)
                .getFilterChains(0)
                .getFilters(0)
                .getTypedConfig(),
            HttpConnectionManager.class);
    ExternalProcessor proc =
        hcm.getHttpFiltersList().stream()
            .filter(f -> f.getTypedConfig().is(ExternalProcessor.class))
            .map(f -> EnvoyConfigTest.unpack(f.getTypedConfig(), ExternalProcessor.class))
            .findFirst()
            .orElseThrow();
    return proc.getGrpcService().getInitialMetadata(0).getValue();
  }

  @Test
  void entrypoint_tokenFileFromTheAuthority_rendersAPrivateCopyAndPassesItAsConfig()
      throws Exception {
    Path tokenFile = dir.resolve("metering-token");
    Files.writeString(tokenFile, TOKEN + "\n");

    Run r = run(Map.of("QUOTA_METERING_TOKEN_FILE", tokenFile.toString()));

    assertThat(r.exit()).as(r.output()).isZero();
    assertThat(r.args()).hasSize(4);
    assertThat(r.args().get(0)).isEqualTo("-c");
    assertThat(r.args().subList(2, 4)).containsExactly("--log-level", "info");
    assertThat(String.join(" ", r.args())).doesNotContain(TOKEN);
    Path rendered = Path.of(r.args().get(1));
    assertThat(rendered).startsWith(dir.resolve("tmp"));
    assertThat(Files.getPosixFilePermissions(rendered))
        .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
    assertThat(Files.getPosixFilePermissions(rendered.getParent()))
        .isEqualTo(
            Set.of(
                PosixFilePermission.OWNER_READ,
                PosixFilePermission.OWNER_WRITE,
                PosixFilePermission.OWNER_EXECUTE));
    assertThat(meteringAuthorization(rendered)).isEqualTo("Bearer " + TOKEN);
    // Everything else is envoy.yaml as committed.
    assertThat(
            Files.readString(rendered).replace(TOKEN, EnvoyConfigTest.METERING_TOKEN_PLACEHOLDER))
        .isEqualTo(RepoFiles.read(EnvoyConfigTest.ENVOY_YAML));
  }

  @Test
  void entrypoint_tokenFromEnvironment_winsOverTheFile() throws Exception {
    Run r =
        run(
            Map.of(
                "QUOTA_METERING_TOKEN",
                "operator-chosen-token-0123456789abcdef",
                "QUOTA_METERING_TOKEN_FILE",
                dir.resolve("absent").toString()));

    assertThat(r.exit()).as(r.output()).isZero();
    assertThat(meteringAuthorization(Path.of(r.args().get(1))))
        .isEqualTo("Bearer operator-chosen-token-0123456789abcdef");
  }

  @Test
  void entrypoint_noTokenAnywhere_failsWithOneLineAndStartsNothing() throws Exception {
    Run r = run(Map.of("QUOTA_METERING_TOKEN_FILE", dir.resolve("absent").toString()));

    assertThat(r.exit()).isNotZero();
    assertThat(r.output().strip())
        .startsWith("envoy entrypoint: no metering token")
        .doesNotContain("\n");
    assertThat(r.args()).isEmpty();
  }

  @Test
  void entrypoint_tokenWithCharactersOutsideB64token_isRefused() throws Exception {
    Run r = run(Map.of("QUOTA_METERING_TOKEN", "abc|def\" & x"));

    assertThat(r.exit()).isNotZero();
    assertThat(r.output()).contains("the metering token may hold only").doesNotContain("abc|def");
    assertThat(r.args()).isEmpty();
  }
}
