package io.quotaauthority.bench;

/**
 * What the scenarios of one run measured, each null when {@code --only} left it out: the one value
 * the report and the targets read, so a new scenario adds a field here rather than a parameter to
 * every signature between the run and the report.
 */
record Results(
    CheckGroup.Result check,
    H2loadScenario.Result h2load,
    IngestScenario.Result ingest,
    SoakScenario.Result soak,
    MemoryScenario.Result memory,
    HoldsScenario.Result holds,
    PoliciesScenario.Result policies,
    PropagationScenario.Result propagation) {

  /** No scenario ran; the {@code with} methods add one each (tests judge one at a time). */
  static final Results NONE = new Results(null, null, null, null, null, null, null, null);

  Results withH2load(H2loadScenario.Result r) {
    return new Results(check, r, ingest, soak, memory, holds, policies, propagation);
  }

  Results withMemory(MemoryScenario.Result r) {
    return new Results(check, h2load, ingest, soak, r, holds, policies, propagation);
  }

  Results withHolds(HoldsScenario.Result r) {
    return new Results(check, h2load, ingest, soak, memory, r, policies, propagation);
  }

  Results withPolicies(PoliciesScenario.Result r) {
    return new Results(check, h2load, ingest, soak, memory, holds, r, propagation);
  }

  Results withPropagation(PropagationScenario.Result r) {
    return new Results(check, h2load, ingest, soak, memory, holds, policies, r);
  }
}
