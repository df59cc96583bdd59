/**
 * Everything the checker learns from appends and reads before building the
 * graph: who appended each element (and whether it was that transaction's
 * last append to the key), each transaction's view of each key at its
 * snapshot (its first read, minus its own earlier appends), and the version
 * order of each key, which list-append reveals directly: the longest read is
 * the order, and every other read must be a prefix of it. Non-cycle anomalies
 * (G1a, G1b, internal, duplicate, garbage read, incompatible order, duplicate
 * appends) are found here.
 */
import { fmtList, fmtValue } from "./format";
import { malformed, txnRef, type Txn } from "./txns";
import type { Anomaly, AnomalyClass, Key, Value } from "./types";

export interface WriteRec {
  txn: Txn;
  /** Whether this is the writer's last append to the key. */
  final: boolean;
}

/** A transaction's view of a key at its snapshot: `list[0..len)`. */
export interface SnapshotRead {
  txn: Txn;
  key: Key;
  list: readonly Value[];
  len: number;
  /** Whether the transaction also appended to the key. */
  appends: boolean;
}

export interface ReadFacts {
  writers: Map<Key, Map<Value, WriteRec>>;
  snapshots: SnapshotRead[];
  /** Version order of each key whose reads agree; absent when they do not. */
  orders: Map<Key, readonly Value[]>;
  /** Per txn id: 1 when it committed (ok, or info whose append was seen). */
  committed: Uint8Array;
}

function anomaly(cls: AnomalyClass, explanation: string, txns: Txn[], key?: Key): Anomaly {
  const a: Anomaly = { class: cls, forbidden: true, explanation, txns: txns.map(txnRef) };
  if (key !== undefined) a.key = key;
  return a;
}

function indexAppends(txns: readonly Txn[], out: Anomaly[]): Map<Key, Map<Value, WriteRec>> {
  const writers = new Map<Key, Map<Value, WriteRec>>();
  for (const t of txns) {
    const last = new Map<Key, WriteRec>();
    for (const m of t.mops) {
      if (m[0] !== "append") continue;
      const [, key, value] = m;
      let byValue = writers.get(key);
      if (!byValue) writers.set(key, (byValue = new Map()));
      const prior = byValue.get(value);
      if (prior) {
        out.push(
          malformed(
            `${fmtValue(value)} appended to key ${fmtValue(key)} by ${prior.txn.name} and by ` +
              `${t.name}; appended values must be unique per key`,
            prior.txn === t ? [t] : [prior.txn, t],
          ),
        );
        continue;
      }
      const rec: WriteRec = { txn: t, final: true };
      const before = last.get(key);
      if (before) before.final = false;
      last.set(key, rec);
      byValue.set(value, rec);
    }
  }
  return writers;
}

function listsEqual(a: readonly Value[], b: readonly Value[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function endsWith(list: readonly Value[], tail: readonly Value[]): boolean {
  if (tail.length > list.length) return false;
  const off = list.length - tail.length;
  for (let i = 0; i < tail.length; i++) if (list[off + i] !== tail[i]) return false;
  return true;
}

/**
 * Checks that a transaction's reads reflect its own earlier reads and
 * appends, and returns its snapshot view of each key it read.
 */
function internalReads(t: Txn, out: Anomaly[]): SnapshotRead[] {
  const state = new Map<Key, { read: readonly Value[] | null; appended: Value[] }>();
  const appendedKeys = new Set<Key>();
  const views: SnapshotRead[] = [];
  for (const m of t.mops) {
    let st = state.get(m[1]);
    if (!st) state.set(m[1], (st = { read: null, appended: [] }));
    if (m[0] === "append") {
      st.appended.push(m[2]);
      appendedKeys.add(m[1]);
      continue;
    }
    const list = m[2];
    if (list === null) continue;
    if (st.read !== null) {
      const expected = [...st.read, ...st.appended];
      if (!listsEqual(list, expected)) {
        out.push(
          anomaly(
            "internal",
            `${t.name} read key ${fmtValue(m[1])} = ${fmtList(list)}, but its own earlier ` +
              `reads and appends imply ${fmtList(expected)}`,
            [t],
            m[1],
          ),
        );
      }
    } else if (!endsWith(list, st.appended)) {
      out.push(
        anomaly(
          "internal",
          `${t.name} read key ${fmtValue(m[1])} = ${fmtList(list)}, which does not end with ` +
            `its own earlier appends ${fmtList(st.appended)}`,
          [t],
          m[1],
        ),
      );
    } else {
      views.push({
        txn: t,
        key: m[1],
        list,
        len: list.length - st.appended.length,
        appends: false,
      });
    }
    st.read = list;
    st.appended = [];
  }
  for (const v of views) v.appends = appendedKeys.has(v.key);
  return views;
}

/** Anomalies visible in one read's elements; marks info writers as committed. */
function inspectRead(
  t: Txn,
  key: Key,
  list: readonly Value[],
  writers: Map<Key, Map<Value, WriteRec>>,
  committed: Uint8Array,
  out: Anomaly[],
): void {
  const byValue = writers.get(key);
  const seen = new Set<Value>();
  let duplicate: Value | undefined;
  let garbage: Value | undefined;
  let aborted: WriteRec | undefined;
  let abortedValue: Value | undefined;
  for (const v of list) {
    if (seen.has(v)) duplicate ??= v;
    seen.add(v);
    const w = byValue?.get(v);
    if (!w) garbage ??= v;
    else if (w.txn.type === "info") committed[w.txn.id] = 1;
    else if (w.txn.type === "fail" && !aborted) {
      aborted = w;
      abortedValue = v;
    }
  }
  const where = `${t.name} read key ${fmtValue(key)} = ${fmtList(list)}`;
  if (duplicate !== undefined) {
    out.push(
      anomaly(
        "duplicate",
        `${where}, in which ${fmtValue(duplicate)} appears more than once`,
        [t],
        key,
      ),
    );
  }
  if (garbage !== undefined) {
    out.push(
      anomaly(
        "garbage-read",
        `${where}, which includes ${fmtValue(garbage)}, appended by no transaction`,
        [t],
        key,
      ),
    );
  }
  if (aborted && abortedValue !== undefined) {
    out.push(
      anomaly(
        "G1a",
        `${where}, which includes ${fmtValue(abortedValue)}, appended by ${aborted.txn.name}, which failed`,
        [aborted.txn, t],
        key,
      ),
    );
  }
  const last = list.length > 0 ? byValue?.get(list[list.length - 1]) : undefined;
  if (last && last.txn !== t && !last.final && last.txn.type !== "fail") {
    out.push(
      anomaly(
        "G1b",
        `${where}, whose last element ${fmtValue(list[list.length - 1])} is an intermediate ` +
          `append of ${last.txn.name}, which appended to the key again later`,
        [last.txn, t],
        key,
      ),
    );
  }
}

function isPrefix(short: readonly Value[], long: readonly Value[]): boolean {
  if (short.length > long.length) return false;
  for (let i = 0; i < short.length; i++) if (short[i] !== long[i]) return false;
  return true;
}

/** The longest read of each key, when every other read is a prefix of it. */
function versionOrders(
  reads: Map<Key, { txn: Txn; list: readonly Value[] }[]>,
  out: Anomaly[],
): Map<Key, readonly Value[]> {
  const orders = new Map<Key, readonly Value[]>();
  for (const [key, rs] of reads) {
    let longest = rs[0];
    for (const r of rs) if (r.list.length > longest.list.length) longest = r;
    const bad = rs.find((r) => !isPrefix(r.list, longest.list));
    if (bad) {
      out.push(
        anomaly(
          "incompatible-order",
          `reads of key ${fmtValue(key)} disagree on its order: ${longest.txn.name} read ` +
            `${fmtList(longest.list)} and ${bad.txn.name} read ${fmtList(bad.list)}`,
          longest.txn === bad.txn ? [bad.txn] : [longest.txn, bad.txn],
          key,
        ),
      );
      continue;
    }
    orders.set(key, longest.list);
  }
  return orders;
}

export function analyzeReads(txns: readonly Txn[], out: Anomaly[]): ReadFacts {
  const writers = indexAppends(txns, out);
  const committed = new Uint8Array(txns.length);
  const snapshots: SnapshotRead[] = [];
  const reads = new Map<Key, { txn: Txn; list: readonly Value[] }[]>();
  for (const t of txns) {
    if (t.type !== "ok") continue;
    committed[t.id] = 1;
    const views = internalReads(t, out);
    const firstPerKey = new Set<Key>();
    for (const v of views) {
      if (firstPerKey.has(v.key)) continue;
      firstPerKey.add(v.key);
      snapshots.push(v);
    }
    for (const m of t.mops) {
      if (m[0] !== "r" || m[2] === null) continue;
      inspectRead(t, m[1], m[2], writers, committed, out);
      let rs = reads.get(m[1]);
      if (!rs) reads.set(m[1], (rs = []));
      rs.push({ txn: t, list: m[2] });
    }
  }
  const orders = versionOrders(reads, out);
  return { writers, snapshots, orders, committed };
}
