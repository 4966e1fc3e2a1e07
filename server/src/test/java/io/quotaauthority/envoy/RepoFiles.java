package io.quotaauthority.envoy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Finds the deployment files at the repository root, whichever directory the tests run from. */
final class RepoFiles {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private RepoFiles() {}

  /**
   * The nearest directory at or above the working directory that holds envoy/envoy.yaml (surefire
   * runs with the module directory, server/, as working directory).
   */
  static Path root() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      if (Files.isRegularFile(dir.resolve("envoy/envoy.yaml"))) {
        return dir;
      }
    }
    throw new IllegalStateException(
        "no envoy/envoy.yaml at or above " + Path.of("").toAbsolutePath());
  }

  static Path file(String relative) {
    return root().resolve(relative);
  }

  static String read(String relative) {
    try {
      return Files.readString(file(relative));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static JsonNode yaml(String text) {
    try {
      return YAML.readTree(text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static JsonNode yamlFile(String relative) {
    return yaml(read(relative));
  }
}
