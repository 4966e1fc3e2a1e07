package io.quotaauthority.envoy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.quotaauthority.config.Setting;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Keeps docker-compose.yml, server/Dockerfile, envoy/envoy.yaml, the Setting enum and the README
 * quick start telling the same story.
 */
class DockerComposeTest {
  static final JsonNode COMPOSE = RepoFiles.yamlFile("docker-compose.yml");
  static final JsonNode SERVICES = COMPOSE.path("services");
  static final String AUTHORITY = "quota-authority";

  static JsonNode service(String name) {
    JsonNode service = SERVICES.path(name);
    assertThat(service.isObject()).as("service %s", name).isTrue();
    return service;
  }

  static int defaultPort(Setting setting) {
    return Integer.parseInt(setting.defaultValue());
  }

  /** A short-syntax port mapping: [ip:]host:container. */
  record Published(String ip, int host, int container) {
    static Published parse(JsonNode node) {
      assertThat(node.isTextual()).as("port %s uses the short syntax", node).isTrue();
      String[] parts = node.asText().split(":");
      return switch (parts.length) {
        case 2 -> new Published("", Integer.parseInt(parts[0]), Integer.parseInt(parts[1]));
        case 3 -> new Published(parts[0], Integer.parseInt(parts[1]), Integer.parseInt(parts[2]));
        default -> fail("unexpected port mapping " + node);
      };
    }
  }

  static List<Published> ports(String service) {
    List<Published> ports = new ArrayList<>();
    service(service).path("ports").forEach(p -> ports.add(Published.parse(p)));
    return ports;
  }

  static Map<String, String> environment(String service) {
    JsonNode env = service(service).path("environment");
    Map<String, String> vars = new LinkedHashMap<>();
    if (env.isObject()) {
      env.fields().forEachRemaining(e -> vars.put(e.getKey(), e.getValue().asText()));
    } else {
      env.forEach(
          item -> {
            String[] kv = item.asText().split("=", 2);
            vars.put(kv[0], kv.length > 1 ? kv[1] : "");
          });
    }
    return vars;
  }

  /** Dockerfile instructions with line continuations joined. */
  static List<String> dockerfileInstructions() {
    String joined = RepoFiles.read("server/Dockerfile").replaceAll("\\\\\\r?\\n", " ");
    return Arrays.stream(joined.split("\\r?\\n"))
        .map(String::strip)
        .filter(line -> !line.isEmpty() && !line.startsWith("#"))
        .toList();
  }

  @Test
  void services_arePostgresQuotaAuthorityAndEnvoy() {
    List<String> names = new ArrayList<>();
    SERVICES.fieldNames().forEachRemaining(names::add);
    assertThat(names).containsExactlyInAnyOrder("postgres", AUTHORITY, "envoy");
    assertThat(service("postgres").path("image").asText()).isEqualTo("postgres:16");
    assertThat(service(AUTHORITY).path("build").path("context").asText()).isEqualTo(".");
    assertThat(service(AUTHORITY).path("build").path("dockerfile").asText())
        .isEqualTo("server/Dockerfile");
  }

  @Test
  void quotaAuthorityEnvironment_namesOnlyServerSettings() {
    Set<String> known =
        Arrays.stream(Setting.values()).map(Setting::env).collect(Collectors.toSet());
    Map<String, String> env = environment(AUTHORITY);
    assertThat(env.keySet()).isNotEmpty().allSatisfy(name -> assertThat(known).contains(name));
    assertThat(env)
        .containsKeys(
            Setting.DB_URL.env(),
            Setting.DB_USER.env(),
            Setting.DB_PASSWORD.env(),
            Setting.ADMIN_TOKEN.env(),
            Setting.REPORTER_TOKEN.env());
    assertThat(env.get(Setting.DB_URL.env())).startsWith("jdbc:postgresql://postgres:5432/");
    assertThat(env.get(Setting.DB_USER.env()))
        .isEqualTo(service("postgres").path("environment").path("POSTGRES_USER").asText());
    assertThat(env.get(Setting.DB_PASSWORD.env()))
        .isEqualTo(service("postgres").path("environment").path("POSTGRES_PASSWORD").asText());
  }

  @Test
  void composeSecrets_requiredFromTheEnvironmentWithAMessageNeverDefaulted() {
    // ${VAR:?message}: compose refuses to start while VAR is unset or empty, printing the message;
    // a ${VAR:-default} or a literal would ship a password everyone knows.
    for (Setting s : List.of(Setting.DB_PASSWORD, Setting.ADMIN_TOKEN, Setting.REPORTER_TOKEN)) {
      assertThat(environment(AUTHORITY).get(s.env()))
          .as(s.env())
          .matches("\\$\\{" + s.env() + ":\\?set " + s.env() + " .*README, Run with Envoy\\)}");
    }
    assertThat(service("postgres").path("environment").path("POSTGRES_PASSWORD").asText())
        .isEqualTo(environment(AUTHORITY).get(Setting.DB_PASSWORD.env()));
    for (String name : List.of("postgres", AUTHORITY, "envoy")) {
      environment(name)
          .forEach(
              (variable, value) -> {
                if (variable.equals(Setting.METERING_TOKEN.env())) {
                  // The one exception, and no default either: empty means the authority generates
                  // it into
                  // its volume, where Envoy's entrypoint reads it (see the metering test below).
                  assertThat(value)
                      .as("%s of %s", variable, name)
                      .isEqualTo("${QUOTA_METERING_TOKEN:-}");
                } else if (variable.matches(".*(TOKEN|PASSWORD|SECRET).*")) {
                  assertThat(value)
                      .as("%s of %s comes from the environment, required", variable, name)
                      .matches("\\$\\{[A-Z_]+:\\?[^}]+}");
                }
              });
    }
  }

  @Test
  void quotaAuthorityEnvironment_adminListensOnEveryInterfaceInsideTheContainer() {
    // Its default is loopback; Docker's publishing (on the host's loopback) needs 0.0.0.0 inside.
    assertThat(Setting.ADMIN_BIND.defaultValue()).isEqualTo("127.0.0.1");
    assertThat(environment(AUTHORITY)).containsEntry(Setting.ADMIN_BIND.env(), "0.0.0.0");
    assertThat(Setting.CONSOLE_BIND.defaultValue()).isEqualTo("127.0.0.1");
    assertThat(environment(AUTHORITY)).containsEntry(Setting.CONSOLE_BIND.env(), "0.0.0.0");
  }

  @Test
  void quotaAuthorityPorts_publishTheSettingDefaultsWithAdminAndMeteringOnLoopback() {
    List<Published> ports = ports(AUTHORITY);
    int authz = defaultPort(Setting.AUTHZ_PORT);
    int admin = defaultPort(Setting.ADMIN_PORT);
    int metrics = defaultPort(Setting.METRICS_PORT);
    int metering = defaultPort(Setting.METERING_PORT);
    int console = defaultPort(Setting.CONSOLE_PORT);
    assertThat(ports)
        .extracting(Published::container)
        .containsExactlyInAnyOrder(authz, admin, metrics, metering, console);
    assertThat(ports).allSatisfy(p -> assertThat(p.host()).isEqualTo(p.container()));
    for (int port : List.of(admin, metering, console)) {
      Published published =
          ports.stream().filter(p -> p.container() == port).findFirst().orElseThrow();
      assertThat(published.ip())
          .as("port %d is published on the host's loopback only", port)
          .isEqualTo("127.0.0.1");
    }
  }

  @ParameterizedTest(name = "{0} on {1}")
  @CsvSource({
    EnvoyConfigTest.AUTHORITY_CLUSTER + ", AUTHZ_PORT",
    EnvoyConfigTest.METERING_CLUSTER + ", METERING_PORT"
  })
  void envoyAuthorityClusters_pointAtTheComposeServiceOnTheirPorts(String name, Setting port)
      throws Exception {
    Bootstrap bootstrap = EnvoyConfigTest.parse(RepoFiles.read(EnvoyConfigTest.ENVOY_YAML));
    Cluster cluster =
        bootstrap.getStaticResources().getClustersList().stream()
            .filter(c -> c.getName().equals(name))
            .findFirst()
            .orElseThrow();
    SocketAddress address =
        cluster
            .getLoadAssignment()
            .getEndpoints(0)
            .getLbEndpoints(0)
            .getEndpoint()
            .getAddress()
            .getSocketAddress();
    assertThat(address.getAddress()).isEqualTo(AUTHORITY);
    assertThat(address.getPortValue()).isEqualTo(defaultPort(port));
    assertThat(environment(AUTHORITY)).doesNotContainKey(port.env());
  }

  @Test
  void meteringToken_hasNoDefaultAndReachesEnvoyThroughItsEntrypoint() {
    // No token in the file: the host's QUOTA_METERING_TOKEN, or the one the authority generates.
    assertThat(environment(AUTHORITY).get(Setting.METERING_TOKEN.env()))
        .isEqualTo("${QUOTA_METERING_TOKEN:-}");
    assertThat(environment("envoy").get("QUOTA_METERING_TOKEN"))
        .isEqualTo("${QUOTA_METERING_TOKEN:-}");
    List<String> entrypoint = new ArrayList<>();
    service("envoy").path("entrypoint").forEach(e -> entrypoint.add(e.asText()));
    assertThat(entrypoint).containsExactly("/bin/sh", "/etc/envoy/entrypoint.sh");
    assertThat(RepoFiles.file("envoy/entrypoint.sh")).isRegularFile();

    // The authority's data directory is a volume; Envoy sees it read-only where the entrypoint
    // looks for the generated token by default.
    List<String> authorityVolumes = new ArrayList<>();
    service(AUTHORITY).path("volumes").forEach(v -> authorityVolumes.add(v.asText()));
    assertThat(authorityVolumes).contains("quota-data:/var/lib/quota-authority");
    List<String> envoyVolumes = new ArrayList<>();
    service("envoy").path("volumes").forEach(v -> envoyVolumes.add(v.asText()));
    assertThat(envoyVolumes).contains("quota-data:/run/quota-authority:ro");
    assertThat(RepoFiles.read("envoy/entrypoint.sh"))
        .contains("/run/quota-authority/metering-token");
    assertThat(COMPOSE.path("volumes").has("quota-data")).isTrue();
  }

  @Test
  void envoyImage_isPinnedToV134OrLater() {
    String image = service("envoy").path("image").asText();
    Matcher version = Pattern.compile("envoyproxy/envoy:v(\\d+)\\.(\\d+)\\.(\\d+)").matcher(image);
    assertThat(version.matches()).as("official image with an exact vX.Y.Z tag: %s", image).isTrue();
    int major = Integer.parseInt(version.group(1));
    int minor = Integer.parseInt(version.group(2));
    assertThat(major > 1 || (major == 1 && minor >= 34)).as("%s is v1.34 or later", image).isTrue();
  }

  @Test
  void envoyService_loadsTheRepositoryEnvoyDirectoryReadOnly() {
    JsonNode envoy = service("envoy");
    List<String> volumes = new ArrayList<>();
    envoy.path("volumes").forEach(v -> volumes.add(v.asText()));
    // EnvoyConfigTest maps /etc/envoy/secrets/* in envoy.yaml to envoy/secrets/* through this
    // mount.
    assertThat(volumes).contains("./envoy:/etc/envoy:ro");
    List<String> command = new ArrayList<>();
    envoy.path("command").forEach(c -> command.add(c.asText()));
    int config = command.indexOf("-c");
    assertThat(config).as("envoy command %s", command).isNotNegative();
    assertThat(command.get(config + 1)).isEqualTo("/etc/envoy/envoy.yaml");
    assertThat(ports("envoy"))
        .filteredOn(p -> p.container() == 10000)
        .singleElement()
        .extracting(Published::host)
        .isEqualTo(10000);
  }

  @Test
  void healthchecks_existAndStartupWaitsForHealthyDependencies() {
    for (String name : List.of("postgres", AUTHORITY)) {
      assertThat(service(name).path("healthcheck").path("test").isArray())
          .as("%s healthcheck", name)
          .isTrue();
    }
    assertThat(service("postgres").path("healthcheck").path("test").toString())
        .contains("pg_isready");
    assertThat(service(AUTHORITY).path("healthcheck").path("test").toString())
        .contains(":" + defaultPort(Setting.METRICS_PORT) + "/readyz");
    assertThat(service(AUTHORITY).path("depends_on").path("postgres").path("condition").asText())
        .isEqualTo("service_healthy");
    assertThat(service("envoy").path("depends_on").path(AUTHORITY).path("condition").asText())
        .isEqualTo("service_healthy");
  }

  @Test
  void dockerfileBuild_runsTheReadmeQuickStartMavenCommand() {
    Matcher block =
        Pattern.compile("```sh\\R(.*?)\\R```", Pattern.DOTALL).matcher(RepoFiles.read("README.md"));
    assertThat(block.find()).as("README has a ```sh block").isTrue();
    String readmeBuild = block.group(1).strip().split("&&")[0].strip();
    assertThat(readmeBuild).startsWith("mvn ");

    List<String> mavenRuns =
        dockerfileInstructions().stream()
            .filter(line -> line.startsWith("RUN ") && line.contains("mvn "))
            .map(line -> line.substring(line.indexOf("mvn ")).strip())
            .toList();
    assertThat(mavenRuns).containsExactly(readmeBuild);
  }

  @Test
  void dockerfile_runsTheFatJarAsNonRootWithTheSettingPorts() {
    List<String> lines = dockerfileInstructions();
    assertThat(lines.stream().filter(l -> l.startsWith("FROM ")).count())
        .as("multi-stage: build, then runtime")
        .isGreaterThanOrEqualTo(2);
    String expose =
        lines.stream().filter(l -> l.startsWith("EXPOSE ")).findFirst().orElseThrow().substring(7);
    assertThat(Arrays.stream(expose.trim().split("\\s+")).map(Integer::parseInt))
        .containsExactlyInAnyOrder(
            defaultPort(Setting.AUTHZ_PORT),
            defaultPort(Setting.ADMIN_PORT),
            defaultPort(Setting.METRICS_PORT),
            defaultPort(Setting.METERING_PORT),
            defaultPort(Setting.CONSOLE_PORT));
    assertThat(lines).contains("ENV " + Setting.DATA_DIR.env() + "=/var/lib/quota-authority");
    String user =
        lines.stream().filter(l -> l.startsWith("USER ")).reduce((a, b) -> b).orElseThrow();
    assertThat(user.substring(5).strip()).doesNotStartWith("root").doesNotStartWith("0");
    assertThat(lines).anyMatch(l -> l.startsWith("HEALTHCHECK ") && l.contains("/readyz"));
    assertThat(lines.get(lines.size() - 1))
        .startsWith("ENTRYPOINT [\"java\"")
        .endsWith("\"-jar\", \"/app/quota-authority.jar\"]");
  }

  @Test
  void dockerfile_dataDirectoryIsAVolumeOwnedByTheServerUser() {
    // Without QUOTA_DB_URL the image runs the embedded database there: it must outlive the
    // container.
    List<String> lines = dockerfileInstructions();
    assertThat(lines).contains("VOLUME [\"/var/lib/quota-authority\"]");
    // Docker copies the directory's owner and mode into a new volume only if they are set before
    // it.
    int volume = lines.indexOf("VOLUME [\"/var/lib/quota-authority\"]");
    int chown = -1;
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).contains("chown quota:quota /var/lib/quota-authority")) {
        chown = i;
      }
    }
    assertThat(chown).isNotNegative().isLessThan(volume);
  }

  @Test
  void dockerignore_keepsProviderKeysAndBuildOutputOutOfTheContext() {
    List<String> ignored =
        RepoFiles.read(".dockerignore")
            .lines()
            .map(String::strip)
            .filter(l -> !l.isEmpty() && !l.startsWith("#"))
            .toList();
    assertThat(ignored).contains("envoy/secrets", ".git", "**/target", "data");
  }
}
