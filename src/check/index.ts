/**
 * The history checker's public door: checks a list-append history (Elle's
 * format) for the anomalies snapshot isolation forbids — G0, G1a/b/c,
 * G-single, G-nonadjacent, lost updates — and reports write skew (G2-item),
 * which it allows. See docs/checker.md.
 */
export { checkHistory } from "./checker";
export { parseHistory } from "./history";
export { formatReport } from "./report";
export { CheckError, type CheckErrorCode } from "./errors";
export {
  registerCheckCommand,
  runCheckCommand,
  exit_invalid,
  exit_unreadable,
  exit_valid,
  type CheckCommandOptions,
  type CheckCommandOutput,
} from "./cli";
export {
  forbiddenUnderSi,
  si_allowed_classes,
  type Anomaly,
  type AnomalyClass,
  type AppendMop,
  type CheckOptions,
  type CheckResult,
  type CheckStats,
  type CycleStep,
  type EdgeType,
  type HistoryOp,
  type Key,
  type Mop,
  type OpType,
  type ReadMop,
  type TxnRef,
  type Value,
} from "./types";
