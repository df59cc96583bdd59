/**
 * The simulator's checkers, run over a finished run's trace:
 *
 * - total order (invariants 3, 5): every QP's stream is strictly increasing
 *   by (tau, journal); every QP got the same sequence (each a prefix of the
 *   longest); and nothing is missing below a QP's applied point — a record
 *   released above the global watermark shows up as an older record that
 *   arrives too late and is refused, i.e. missing.
 * - durability (invariants 1, 7): every acknowledged commit is on the disks
 *   exactly once, at the tau it was acknowledged with, and so is everything
 *   a QP applied; no commit appears twice in any stream.
 * - snapshot isolation (invariant 4): no two committed transactions wrote a
 *   common key with overlapping [tau_start, tau_commit].
 * - liveness: once the faults have stopped and the run settled, every QP
 *   applied every acknowledged commit (a QP cut off by a crash or a
 *   partition caught up).
 */
import type { MergedEntry } from "../journal";
import type { Sequence, TxnInfo } from "./workload";
import { txnInfoOf } from "./workload";

export interface Ack {
  tau: number;
  info: TxnInfo;
}

export interface CheckInput {
  acks: ReadonlyMap<number, Ack>;
  sequences: readonly Sequence[];
  applied: readonly number[];
  anomalies: readonly string[];
  /** Every durable record on the disks above `removedThroughTau`, if the design keeps them (single sidecar). */
  durable: readonly MergedEntry[] | null;
  /**
   * Retention removed the records at or below it (0: none). An acknowledged
   * commit there must be in every QP's stream at its tau: retention may
   * remove only what every QP applied.
   */
  removedThroughTau?: number;
  /** Txn details from one QP's stream. */
  infos: ReadonlyMap<number, TxnInfo>;
  /** Commits the servers still hold unanswered once the run settled. */
  stuck?: readonly string[];
}

export interface CheckResult {
  totalOrder: string[];
  durability: string[];
  snapshotIsolation: string[];
  liveness: string[];
}

const violations_max = 10;

function push(list: string[], message: string): void {
  if (list.length < violations_max) list.push(message);
}

export function checkTotalOrder(input: CheckInput): string[] {
  const out: string[] = [];
  for (const a of input.anomalies) push(out, a);
  const seqs = input.sequences;
  let longest = 0;
  for (let q = 0; q < seqs.length; q++) {
    const s = seqs[q]!;
    for (let i = 1; i < s.taus.length; i++) {
      const later =
        s.taus[i]! > s.taus[i - 1]! ||
        (s.taus[i] === s.taus[i - 1] && s.journals[i]! > s.journals[i - 1]!);
      if (!later)
        push(
          out,
          `qp ${q}: (${s.taus[i]}, ${s.journals[i]}) after (${s.taus[i - 1]}, ${s.journals[i - 1]}) at position ${i}`,
        );
    }
    if (s.taus.length > seqs[longest]!.taus.length) longest = q;
  }
  const ref = seqs[longest]!;
  for (let q = 0; q < seqs.length; q++) {
    const s = seqs[q]!;
    for (let i = 0; i < s.taus.length; i++) {
      if (
        s.taus[i] !== ref.taus[i] ||
        s.txns[i] !== ref.txns[i] ||
        s.journals[i] !== ref.journals[i]
      ) {
        push(
          out,
          `qp ${q} and qp ${longest} differ at position ${i}: tau ${s.taus[i]} vs ${ref.taus[i]}`,
        );
        break;
      }
    }
  }
  // Completeness below the applied point: what the journals hold (or, without disks, what was acknowledged).
  const expected: { tau: number; txn: number }[] = [];
  if (input.durable !== null) {
    for (const e of input.durable) expected.push({ tau: e.tauCommit, txn: txnInfoOf(e.body).txn });
    const removed = input.removedThroughTau ?? 0;
    for (const [txn, ack] of input.acks)
      if (ack.tau <= removed) expected.push({ tau: ack.tau, txn });
  } else {
    for (const [txn, ack] of input.acks) expected.push({ tau: ack.tau, txn });
  }
  for (let q = 0; q < seqs.length; q++) {
    const present = new Set(seqs[q]!.txns);
    for (const { tau, txn } of expected) {
      if (tau <= input.applied[q]! && !present.has(txn)) {
        push(
          out,
          `qp ${q} applied up to ${input.applied[q]} but never got txn ${txn} at tau ${tau} (released above the watermark?)`,
        );
      }
    }
  }
  return out;
}

export function checkDurability(input: CheckInput): string[] {
  const out: string[] = [];
  for (let q = 0; q < input.sequences.length; q++) {
    const seen = new Set<number>();
    for (const txn of input.sequences[q]!.txns) {
      if (seen.has(txn)) push(out, `qp ${q} got txn ${txn} twice`);
      seen.add(txn);
    }
  }
  if (input.durable === null) {
    // No disks to read: every acknowledged commit must reach the streams at its tau.
    const ref = input.sequences[0]!;
    const at = new Map<number, number>();
    for (let i = 0; i < ref.txns.length; i++) at.set(ref.txns[i]!, ref.taus[i]!);
    for (const [txn, ack] of input.acks) {
      if (ack.tau > input.applied[0]!) continue;
      if (at.get(txn) !== ack.tau)
        push(out, `acknowledged txn ${txn} at tau ${ack.tau} is not in the stream at that tau`);
    }
    return out;
  }
  const onDisk = new Map<number, number>();
  for (const e of input.durable) {
    const txn = txnInfoOf(e.body).txn;
    if (onDisk.has(txn)) push(out, `txn ${txn} is in the journals twice`);
    onDisk.set(txn, e.tauCommit);
  }
  const removed = input.removedThroughTau ?? 0;
  const streams = input.sequences.map((s) => {
    const at = new Map<number, number>();
    for (let i = 0; i < s.txns.length; i++) at.set(s.txns[i]!, s.taus[i]!);
    return at;
  });
  for (const [txn, ack] of input.acks) {
    if (ack.tau <= removed) {
      // Removed by retention: every QP must have applied it, at its tau.
      for (let q = 0; q < streams.length; q++) {
        if (streams[q]!.get(txn) !== ack.tau)
          push(
            out,
            `acknowledged txn ${txn} (tau ${ack.tau}) was removed by retention (through ${removed}) but qp ${q} did not apply it there`,
          );
      }
      continue;
    }
    const tau = onDisk.get(txn);
    if (tau === undefined)
      push(out, `acknowledged txn ${txn} (tau ${ack.tau}) is lost from the journals`);
    else if (tau !== ack.tau)
      push(out, `acknowledged txn ${txn} at tau ${ack.tau} is in the journals at ${tau}`);
  }
  for (let q = 0; q < input.sequences.length; q++) {
    const s = input.sequences[q]!;
    for (let i = 0; i < s.txns.length; i++) {
      if (s.taus[i]! <= removed) continue; // removed: checked against the acknowledgements above
      if (onDisk.get(s.txns[i]!) !== s.taus[i])
        push(
          out,
          `qp ${q} applied txn ${s.txns[i]} at tau ${s.taus[i]}, which the journals do not hold`,
        );
    }
  }
  return out;
}

export function checkSnapshotIsolation(input: CheckInput): string[] {
  const out: string[] = [];
  // The committed history in tau order: one QP's stream (it is sorted, see checkTotalOrder).
  const ref = input.sequences.reduce((a, b) => (b.taus.length > a.taus.length ? b : a));
  const lastWriter = new Map<number, { tau: number; txn: number }>();
  for (let i = 0; i < ref.txns.length; i++) {
    const txn = ref.txns[i]!;
    const tau = ref.taus[i]!;
    const info = input.infos.get(txn) ?? input.acks.get(txn)?.info;
    if (info === undefined) continue;
    for (const key of info.keys) {
      const prev = lastWriter.get(key);
      if (prev !== undefined && info.tauStart < prev.tau) {
        push(
          out,
          `txn ${txn} [${info.tauStart}, ${tau}] and txn ${prev.txn} (committed ${prev.tau}) both wrote key ${key}`,
        );
      }
      lastWriter.set(key, { tau, txn });
    }
  }
  return out;
}

export function checkLiveness(input: CheckInput): string[] {
  const out: string[] = [];
  let last = -1;
  let lastTxn = -1;
  for (const [txn, ack] of input.acks) {
    if (ack.tau > last) {
      last = ack.tau;
      lastTxn = txn;
    }
  }
  for (const s of input.stuck ?? []) push(out, s);
  for (let q = 0; q < input.applied.length; q++) {
    if (input.applied[q]! < last)
      push(
        out,
        `qp ${q} applied only up to ${input.applied[q]} after the run settled; txn ${lastTxn} was acknowledged at ${last}`,
      );
  }
  return out;
}

export function checkAll(input: CheckInput): CheckResult {
  return {
    totalOrder: checkTotalOrder(input),
    durability: checkDurability(input),
    snapshotIsolation: checkSnapshotIsolation(input),
    liveness: checkLiveness(input),
  };
}
