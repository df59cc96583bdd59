/**
 * Durability of acknowledged appends: every append of a transaction that
 * completed `ok` must be in the final read of its key, taken after the
 * faults were healed. An append missing there was acknowledged and then
 * lost — the one outcome a database must never produce. Pure.
 */
import type { HistoryOp, Key, Value } from "../types";

export interface LostAppend {
  key: Key;
  value: Value;
  /** Index of the ok completion that acknowledged it. */
  index: number;
}

export interface DurabilityResult {
  valid: boolean;
  /** Acknowledged appends checked. */
  acknowledged: number;
  lost: LostAppend[];
  /** Keys that had acknowledged appends but no final read. */
  unread: Key[];
}

/**
 * @param ops the history, final reads included
 * @param finalProcess the process whose ok reads are the final reads
 */
export function checkDurability(
  ops: readonly HistoryOp[],
  finalProcess: number | string,
): DurabilityResult {
  const finals = new Map<Key, Set<Value>>();
  for (const op of ops) {
    if (op.process !== finalProcess || op.type !== "ok" || op.f !== "txn" || op.value === null)
      continue;
    for (const mop of op.value) {
      if (mop[0] === "r" && mop[2] !== null) finals.set(mop[1], new Set(mop[2]));
    }
  }
  const lost: LostAppend[] = [];
  const unread = new Set<Key>();
  let acknowledged = 0;
  for (const op of ops) {
    if (op.process === finalProcess || op.type !== "ok" || op.f !== "txn" || op.value === null)
      continue;
    for (const mop of op.value) {
      if (mop[0] !== "append") continue;
      acknowledged++;
      const seen = finals.get(mop[1]);
      if (seen === undefined) unread.add(mop[1]);
      else if (!seen.has(mop[2])) lost.push({ key: mop[1], value: mop[2], index: op.index });
    }
  }
  return { valid: lost.length === 0 && unread.size === 0, acknowledged, lost, unread: [...unread] };
}
