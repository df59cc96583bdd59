/**
 * The vocabulary of the history checker: operations of an Elle list-append
 * history as they arrive, and the anomalies and verdict that come out. Kept
 * apart from the algorithms so the CLI, the docs and the future fault
 * campaign share one definition.
 */

/** A key of the list-append workload. `7` and `"7"` are different keys. */
export type Key = number | string;
/** An appended element; unique per key across the whole history. */
export type Value = number | string;

export type AppendMop = readonly ["append", Key, Value];
/** A read; its list is `null` in invocations and in fail/info completions. */
export type ReadMop = readonly ["r", Key, readonly Value[] | null];
/** A micro-operation: one step of a transaction. */
export type Mop = AppendMop | ReadMop;

export type OpType = "invoke" | "ok" | "fail" | "info";

/** One line of a history. Operations whose `f` is not `"txn"` are ignored. */
export interface HistoryOp {
  index: number;
  process: number | string;
  type: OpType;
  f: string;
  /** The transaction; `null` only for fail/info completions and non-txn ops. */
  value: readonly Mop[] | null;
  /** Optional time in nanoseconds; informational only. */
  time?: number;
}

/**
 * Every class the checker reports. `-realtime` variants appear only with the
 * `realtime` option: cycles that need a real-time edge (strong snapshot
 * isolation).
 */
export type AnomalyClass =
  | "G0"
  | "G1a"
  | "G1b"
  | "G1c"
  | "G-single"
  | "G-nonadjacent"
  | "G2-item"
  | "G0-realtime"
  | "G1c-realtime"
  | "G-single-realtime"
  | "G-nonadjacent-realtime"
  | "G2-item-realtime"
  | "lost-update"
  | "internal"
  | "incompatible-order"
  | "duplicate"
  | "garbage-read"
  | "malformed";

/** Classes that snapshot isolation allows: reported, but the history stays valid. */
export const si_allowed_classes: ReadonlySet<AnomalyClass> = new Set<AnomalyClass>([
  "G2-item",
  "G2-item-realtime",
]);

export function forbiddenUnderSi(cls: AnomalyClass): boolean {
  return !si_allowed_classes.has(cls);
}

export type EdgeType = "ww" | "wr" | "rw" | "rt";

/** A transaction as an anomaly names it. */
export interface TxnRef {
  /** `T<index>`, where index is that of the completion (or of the invoke if none). */
  name: string;
  index: number;
  invokeIndex: number;
  completeIndex: number | null;
  process: number | string;
  type: "ok" | "fail" | "info";
  value: readonly Mop[];
}

/** One edge of a cycle: `from` must precede `to`, and why. */
export interface CycleStep {
  from: string;
  to: string;
  type: EdgeType;
  key?: Key;
  /** The appended element that creates the edge. */
  value?: Value;
  /** The read that reveals the edge (wr, rw), as the reader saw it. */
  read?: readonly Value[];
  explanation: string;
}

export interface Anomaly {
  class: AnomalyClass;
  /** True when snapshot isolation forbids it. */
  forbidden: boolean;
  /** One sentence for people. */
  explanation: string;
  txns: TxnRef[];
  /** For cycle anomalies: the edges, the last one leading back to the first txn. */
  cycle?: CycleStep[];
  key?: Key;
}

export interface CheckOptions {
  /** Add real-time edges (T1 completed before T2 was invoked): strong SI. */
  realtime?: boolean;
  /** Bound on edge visits per strongly connected component per search. */
  cycleSearchStepsMax?: number;
}

export interface CheckStats {
  ok: number;
  fail: number;
  info: number;
  /** Transactions found (pairs of invoke and completion, plus unfinished invokes). */
  txns: number;
}

export interface CheckResult {
  /** False when any anomaly forbidden under snapshot isolation is present. */
  valid: boolean;
  anomalies: Anomaly[];
  /** Number of anomalies per class. */
  counts: Record<string, number>;
  stats: CheckStats;
}
