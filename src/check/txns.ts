/**
 * Pairs each invocation with its completion (per process, in history order)
 * into transactions. An ok transaction takes the completion's micro-ops,
 * which carry the reads' results; fail and info transactions keep the
 * invocation's, with reads blanked, since nothing they read can be trusted.
 * Pairing problems do not stop the check: they become `malformed` anomalies.
 */
import type { Anomaly, HistoryOp, Mop, TxnRef } from "./types";

export interface Txn {
  /** Position in the transaction list; the node id in the dependency graph. */
  id: number;
  name: string;
  invokeIndex: number;
  completeIndex: number | null;
  /** Positions in the operation array, for real-time order. */
  invokePos: number;
  completePos: number;
  process: number | string;
  type: "ok" | "fail" | "info";
  mops: readonly Mop[];
}

export interface Paired {
  txns: Txn[];
  malformed: Anomaly[];
}

export function txnRef(t: Txn): TxnRef {
  return {
    name: t.name,
    index: t.completeIndex ?? t.invokeIndex,
    invokeIndex: t.invokeIndex,
    completeIndex: t.completeIndex,
    process: t.process,
    type: t.type,
    value: t.mops,
  };
}

export function malformed(explanation: string, txns: Txn[] = []): Anomaly {
  return { class: "malformed", forbidden: true, explanation, txns: txns.map(txnRef) };
}

function blankReads(mops: readonly Mop[]): Mop[] {
  return mops.map((m) => (m[0] === "r" ? (["r", m[1], null] as const) : m));
}

/** Why an ok completion's micro-ops do not match its invocation, or null. */
function mismatch(invoked: readonly Mop[], done: readonly Mop[]): string | null {
  if (invoked.length !== done.length) {
    return `has ${done.length} micro-ops, its invocation ${invoked.length}`;
  }
  for (let i = 0; i < invoked.length; i++) {
    const a = invoked[i];
    const b = done[i];
    if (a[0] !== b[0] || a[1] !== b[1] || (a[0] === "append" && a[2] !== b[2])) {
      return `micro-op ${i} is ${JSON.stringify(b)}, invoked as ${JSON.stringify(a)}`;
    }
  }
  return null;
}

interface Pending {
  op: HistoryOp;
  pos: number;
}

function makeTxn(
  txns: Txn[],
  inv: Pending,
  done: { op: HistoryOp; pos: number } | null,
  type: Txn["type"],
  mops: readonly Mop[],
): Txn {
  const completeIndex = done ? done.op.index : null;
  const t: Txn = {
    id: txns.length,
    name: `T${completeIndex ?? inv.op.index}`,
    invokeIndex: inv.op.index,
    completeIndex,
    invokePos: inv.pos,
    completePos: done ? done.pos : Number.POSITIVE_INFINITY,
    process: inv.op.process,
    type,
    mops,
  };
  txns.push(t);
  return t;
}

function complete(txns: Txn[], out: Anomaly[], inv: Pending, op: HistoryOp, pos: number): void {
  const invoked = inv.op.value ?? [];
  if (op.type === "ok") {
    const done = op.value ?? [];
    const why = mismatch(invoked, done);
    const t = makeTxn(txns, inv, { op, pos }, "ok", done);
    if (why !== null) out.push(malformed(`ok completion ${op.index} ${why}`, [t]));
    return;
  }
  const type = op.type === "fail" ? "fail" : "info";
  makeTxn(txns, inv, { op, pos }, type, blankReads(invoked));
}

/** Pairs invocations with completions; ignores operations whose `f` is not "txn". */
export function pairOps(ops: readonly HistoryOp[]): Paired {
  const txns: Txn[] = [];
  const out: Anomaly[] = [];
  const pending = new Map<number | string, Pending>();
  const seenIndex = new Set<number>();
  for (let pos = 0; pos < ops.length; pos++) {
    const op = ops[pos];
    if (op.f !== "txn") continue;
    if (seenIndex.has(op.index)) out.push(malformed(`index ${op.index} appears twice`));
    seenIndex.add(op.index);
    const inv = pending.get(op.process);
    if (op.type === "invoke") {
      if (inv) {
        const t = makeTxn(txns, inv, null, "info", blankReads(inv.op.value ?? []));
        out.push(
          malformed(
            `process ${String(op.process)} invoked index ${op.index} while index ` +
              `${inv.op.index} was still pending; the earlier one is treated as info`,
            [t],
          ),
        );
      }
      pending.set(op.process, { op, pos });
      continue;
    }
    if (!inv) {
      out.push(
        malformed(
          `${op.type} completion ${op.index} of process ${String(op.process)} has no invocation`,
        ),
      );
      continue;
    }
    pending.delete(op.process);
    complete(txns, out, inv, op, pos);
  }
  for (const inv of pending.values()) {
    makeTxn(txns, inv, null, "info", blankReads(inv.op.value ?? []));
  }
  return { txns, malformed: out };
}
