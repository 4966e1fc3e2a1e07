package io.quotaauthority.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Scenario 3: heap per cached key, measured by {@link CacheMemory} in a JVM of its own. */
final class MemoryScenario {
  /** One class row of the probe's histogram difference: instances and bytes over all keys. */
  record ClassRow(String name, long instances, long bytes) {}

  /**
   * The probe's figures ("keys", "maxKeys", "cached", "allowed", "heapEmpty", "heapFilled",
   * "heapChecked"), its class rows after filling and after one Check per key, and the key count
   * asked for (the class rows are per key of that count).
   */
  record Result(
      Map<String, Long> figures, List<ClassRow> filled, List<ClassRow> checked, int keysAsked) {
    long keys() {
      return figures.getOrDefault("keys", 1L);
    }

    double perKey() {
      return (figures.get("heapFilled") - figures.get("heapEmpty")) / (double) keys();
    }

    double perKeyChecked() {
      return (figures.get("heapChecked") - figures.get("heapEmpty")) / (double) keys();
    }
  }

  private final BenchRun run;

  MemoryScenario(BenchRun run) {
    this.run = run;
  }

  Result run() throws IOException, InterruptedException, SQLException {
    Options.Scale scale = run.scale;
    if (run.keysLoaded() < scale.memoryKeys()) {
      // The schema is the server's: with the Check phase skipped, migrate through a short-lived
      // server.
      if (run.keysLoaded() == 0) {
        int authz = ChildJvm.freePort();
        run.stopServer(
            run.startServer("server-migrate", run.serverEnv(authz, run.o.pg, "migrate"), authz));
      }
      run.loadKeys(scale.memoryKeys());
    }
    run.log("cache memory: " + Report.num(scale.memoryKeys()) + " keys in a separate JVM");
    ChildJvm probe =
        run.runToEnd(
            "cache-memory",
            "cache memory probe",
            List.of("-Xmx4g", "-XX:+UseG1GC"),
            List.of(
                "-cp",
                run.classpath,
                CacheMemory.class.getName(),
                Integer.toString(scale.memoryKeys()),
                run.pg.url(run.db),
                run.o.pgUser),
            5);
    Map<String, Long> figures = new LinkedHashMap<>();
    List<ClassRow> filled = new ArrayList<>();
    List<ClassRow> checked = new ArrayList<>();
    for (String line : Files.readAllLines(probe.log)) {
      String[] f = line.split(" ");
      if (f[0].equals("RESULT") && f.length == 3) {
        figures.put(f[1], Long.parseLong(f[2]));
      } else if (f[0].equals("CLASS") && f.length == 5) {
        ClassRow row = new ClassRow(f[2], Long.parseLong(f[3]), Long.parseLong(f[4]));
        (f[1].equals("filled") ? filled : checked).add(row);
      }
    }
    return new Result(
        Collections.unmodifiableMap(figures),
        List.copyOf(filled),
        List.copyOf(checked),
        scale.memoryKeys());
  }
}
