/**
 * The fault campaign's public door: `runCampaign` drives a workload against
 * a real local cluster while injecting faults and checks the history; the
 * pure pieces (outcome mapping, bank and durability checks, workloads) are
 * exported for tests and tools.
 */
export {
  runCampaign,
  clients_default,
  fault_interval_ms_default,
  final_process,
  planted_bug_names,
  plantedBugSettings,
  qp_planted_bugs,
  seed_default,
} from "./runner";
export { formatCampaignReport } from "./report";
export {
  checkBank,
  type BankBalances,
  type BankCheckOptions,
  type BankCheckResult,
  type BankOp,
  type BankTransfer,
  type BankValue,
  type BankViolation,
} from "./bank";
export { checkDurability, type DurabilityResult, type LostAppend } from "./durability";
export {
  commit_fail_sqlstates,
  outcomeOfCommitTag,
  outcomeOfError,
  sqlStateOf,
  sqlstate_outcome_unknown,
  type TxnOutcome,
  type TxnPhase,
} from "./outcome";
export {
  fault_kinds,
  fault_modes,
  isFaultMode,
  type FaultEvent,
  type FaultKind,
  type FaultMode,
} from "./faults";
export { HistoryRecorder, type RecordedOp } from "./recorder";
export { seededRandom, type Random } from "./random";
export { AppendWorkload, BankWorkload, type BankTxn } from "./workload";
export { parseAppendList } from "./client";
export {
  workload_kinds,
  type CampaignOptions,
  type CampaignResult,
  type GroupResult,
  type TxnCounts,
  type WorkloadKind,
} from "./types";
