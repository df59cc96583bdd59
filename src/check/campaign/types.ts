/**
 * Options and results of a fault campaign (`ordo check --dir ...`): what to
 * run against which cluster, and what came out — per history group, the
 * checker's verdict, durability of acknowledged appends or the bank's
 * totals, and the faults that were injected.
 */
import type { CheckResult } from "../types";
import type { BankCheckResult } from "./bank";
import type { DurabilityResult } from "./durability";
import type { FaultEvent, FaultMode } from "./faults";

export type WorkloadKind = "append" | "bank";
export const workload_kinds: readonly WorkloadKind[] = ["append", "bank"];

export interface CampaignOptions {
  /** Cluster directory; a cluster is started there (and stopped after) when none is running. */
  readonly dir: string;
  /** QPs of a cluster this campaign starts (default 1, or the existing cluster's). */
  readonly qps?: number;
  readonly clients?: number;
  readonly durationMs: number;
  readonly workload: WorkloadKind;
  readonly faults?: FaultMode;
  readonly faultIntervalMs?: number;
  readonly seed?: number;
  /** History file; default DIR/check/history-<timestamp>.jsonl (one per QP without replication). */
  readonly out?: string;
  /** Append workload: keys written at once (default 16); fewer means more contention. */
  readonly keysActive?: number;
  /** Bank accounts (default 10). */
  readonly accounts?: number;
  /** Check strong snapshot isolation (real-time edges) too. */
  readonly realtime?: boolean;
  /** Client-side limit on one statement or COMMIT (default 15 s, above ordo.commit_timeout). */
  readonly opTimeoutMs?: number;
  /** How long, after the heal, every QP has to answer again (default 60 s). */
  readonly readyTimeoutMs?: number;
  /** Progress lines for people. */
  readonly log?: (line: string) => void;
  /**
   * Deliberate bugs for a cluster this campaign starts (docs/checker.md,
   * "Planted bugs"): sidecar bugs go to ORDO_PLANTED_BUGS, QP bugs to
   * `ordo.planted_bugs`. Refused for a cluster that is already running.
   */
  readonly plantedBugs?: readonly string[];
}

export interface TxnCounts {
  ok: number;
  fail: number;
  info: number;
}

/** One history, checked on its own: all QPs when they share data, else one QP. */
export interface GroupResult {
  /** `all QPs` or `qp1`. */
  name: string;
  qps: number[];
  historyFile: string;
  counts: TxnCounts;
  /** Append workload: the list-append checker's verdict (snapshot isolation). */
  check?: CheckResult;
  /** Append workload. */
  durability?: DurabilityResult;
  /** Bank workload. */
  bank?: BankCheckResult;
  valid: boolean;
}

export interface CampaignResult {
  valid: boolean;
  workload: WorkloadKind;
  faultMode: FaultMode;
  seed: number;
  qps: number;
  clients: number;
  /** One history across all QPs (they replicate, or there is one QP); else one history per QP. */
  sharedData: boolean;
  /** Whether this campaign started the cluster (and stopped it at the end). */
  startedCluster: boolean;
  /** Wall time of the workload phase. */
  elapsedMs: number;
  counts: TxnCounts;
  /** Ok transactions per second of the workload phase. */
  throughput: number;
  faults: FaultEvent[];
  groups: GroupResult[];
  /**
   * QPs that did not answer within `readyTimeoutMs` after the heal (a stuck
   * applier, a QP that cannot start); the final reads went to another QP of
   * the group. Any makes the campaign invalid.
   */
  notReady: { qp: number; problem: string }[];
}
