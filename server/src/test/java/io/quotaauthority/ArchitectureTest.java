package io.quotaauthority;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The layout we agreed on, checked on the compiled classes (README "Code layout"):
 *
 * <pre>
 *   cli (and Main)                   the command line; `serve` starts the root
 *   root (QuotaAuthority)            wires everything, owns shutdown
 *   authz, metering, admin, ops,     adapters: gRPC and HTTP in, cores out
 *   console
 *   grpc, http                       transport shared by the adapters
 *   store                            PostgreSQL; implements the cores' ports
 *   keys, usage, config              cores: the decisions, no transport
 *   text, provider, threads          leaves
 * </pre>
 *
 * Dependencies point down only; no package cycle; gRPC appears only in the classes that adapt it
 * (the {@code *Service} classes of authz, metering, admin and usage), never in a core.
 */
class ArchitectureTest {
  private static JavaClasses classes;

  @BeforeAll
  static void importClasses() {
    classes =
        new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_JARS)
            .importPackages("io.quotaauthority");
  }

  @Test
  void packages_haveNoCycles() {
    slices().matching("io.quotaauthority.(*)..").should().beFreeOfCycles().check(classes);
    // The root package is no slice of the above: nothing below it may import it but the CLI.
    noClasses()
        .that()
        .resideOutsideOfPackages("io.quotaauthority", "io.quotaauthority.cli..")
        .should()
        .dependOnClassesThat()
        .resideInAPackage("io.quotaauthority")
        .check(classes);
  }

  @Test
  void layers_dependOnlyDownwards() {
    layeredArchitecture()
        .consideringOnlyDependenciesInLayers()
        .layer("Cli")
        .definedBy("io.quotaauthority.cli..")
        .layer("Root")
        .definedBy("io.quotaauthority")
        .layer("Adapters")
        .definedBy(
            "io.quotaauthority.authz..",
            "io.quotaauthority.metering..",
            "io.quotaauthority.admin..",
            "io.quotaauthority.ops..",
            "io.quotaauthority.console..")
        .layer("Transport")
        .definedBy("io.quotaauthority.grpc..", "io.quotaauthority.http..")
        .layer("Store")
        .definedBy("io.quotaauthority.store..")
        .layer("Cores")
        .definedBy(
            "io.quotaauthority.keys..", "io.quotaauthority.usage..", "io.quotaauthority.config..")
        .layer("Leaves")
        .definedBy(
            "io.quotaauthority.text..",
            "io.quotaauthority.provider..",
            "io.quotaauthority.threads..")
        .whereLayer("Cli")
        .mayNotBeAccessedByAnyLayer()
        .whereLayer("Root")
        .mayOnlyBeAccessedByLayers("Cli")
        .whereLayer("Adapters")
        .mayOnlyBeAccessedByLayers("Root", "Cli")
        .whereLayer("Transport")
        .mayOnlyBeAccessedByLayers("Root", "Cli", "Adapters")
        .whereLayer("Store")
        .mayOnlyBeAccessedByLayers("Root", "Cli", "Adapters", "Transport")
        .whereLayer("Cores")
        .mayOnlyBeAccessedByLayers("Root", "Cli", "Adapters", "Transport", "Store")
        .check(classes);
  }

  @Test
  void leaves_dependOnNothingOfOurs() {
    noClasses()
        .that()
        .resideInAnyPackage(
            "io.quotaauthority.text..",
            "io.quotaauthority.provider..",
            "io.quotaauthority.threads..")
        .should()
        .dependOnClassesThat()
        .resideOutsideOfPackages(
            "io.quotaauthority.text..",
            "io.quotaauthority.provider..",
            "io.quotaauthority.threads..",
            "java..",
            "com.fasterxml.jackson..")
        .check(classes);
  }

  @Test
  void keys_isACoreOfItsOwn() {
    // The key rules know no usage, no configuration and no storage.
    noClasses()
        .that()
        .resideInAPackage("io.quotaauthority.keys..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("io.quotaauthority.usage..", "io.quotaauthority.config..")
        .check(classes);
  }

  @Test
  void adapters_doNotReachIntoEachOther() {
    // Check, metering and the admin API meet only in the cores (ops may record what they decide).
    for (String adapter : new String[] {"authz", "metering", "admin", "console"}) {
      noClasses()
          .that()
          .resideInAPackage("io.quotaauthority." + adapter + "..")
          .should()
          .dependOnClassesThat()
          .resideInAnyPackage(others(adapter))
          .check(classes);
    }
  }

  private static String[] others(String adapter) {
    return Stream.of("authz", "metering", "admin", "ops", "console")
        .filter(a -> !a.equals(adapter))
        .map(a -> "io.quotaauthority." + a + "..")
        .toArray(String[]::new);
  }

  @Test
  void cores_haveNoGrpc() {
    noClasses()
        .that()
        .resideInAnyPackage(
            "io.quotaauthority.keys..",
            "io.quotaauthority.store..",
            "io.quotaauthority.config..",
            "io.quotaauthority.text..",
            "io.quotaauthority.provider..",
            "io.quotaauthority.threads..")
        .should()
        .dependOnClassesThat()
        .resideInAPackage("io.grpc..")
        .check(classes);
  }

  @Test
  void onlyServiceClasses_touchGrpc() {
    // The decisions (Authorizer, KeyDecision, UsageBatcher, PriceTable, MeteringSession, ...) are
    // plain classes; a *Service translates between gRPC and them.
    noClasses()
        .that()
        .resideInAnyPackage(
            "io.quotaauthority.authz..",
            "io.quotaauthority.usage..",
            "io.quotaauthority.metering..",
            "io.quotaauthority.admin..")
        // A *Service and its nested classes (a stream's observer) are the translation.
        .and()
        .haveNameNotMatching(".*Service(\\$.*)?")
        .should()
        .dependOnClassesThat()
        .resideInAPackage("io.grpc..")
        .check(classes);
  }
}
