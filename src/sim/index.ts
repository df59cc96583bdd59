/**
 * The simulator's public door (docs/simulator.md): runs ordo's real
 * components in a deterministic virtual world driven by one seed.
 */
export { Prng, sampleLatency, type LatencyDist } from "./prng";
export { World, SimHost, SimError, sim_epoch_us, drainMicrotasks } from "./world";
export { SimDisk, SimDiskError, type SimDiskOptions } from "./disk";
export { SimNetwork, type LinkOptions } from "./network";
export {
  plantedBug,
  planted_bug_names,
  ForgetfulConflictTable,
  type PlantedBugs,
  type PlantedBugName,
} from "./bugs";
export {
  checkAll,
  checkDurability,
  checkLiveness,
  checkSnapshotIsolation,
  checkTotalOrder,
  type CheckInput,
  type CheckResult,
} from "./checkers";
export {
  passed,
  percentiles,
  replayCommand,
  runScenario,
  type Percentiles,
  type ScenarioOptions,
  type SeriesPoint,
  type SimDesign,
  type SimResult,
} from "./scenario";
export { renderChart } from "./svg";
export { registerSimCommand } from "./cli";
