/**
 * The history checker: from a list-append history to a verdict under
 * snapshot isolation. Pure: operations in, result out, no I/O.
 *
 * Steps: pair operations into transactions; learn writers, snapshots and
 * version orders from the reads (reads.ts); infer ww, wr and rw edges between
 * committed transactions (and rt edges on request); find and name cycles
 * (cycles.ts); report lost updates by name. A transaction that ended `info`
 * is committed exactly when some ok read saw one of its appends; otherwise
 * it contributes nothing, as in Elle.
 */
import { cycle_search_steps_max, findCycles, type FoundCycle } from "./cycles";
import { fmtList, fmtValue } from "./format";
import { edge_rt, edge_rw, edge_ww, edge_wr, Graph, GraphBuilder, type PathStep } from "./graph";
import { analyzeReads, type ReadFacts } from "./reads";
import { pairOps, txnRef, type Txn } from "./txns";
import {
  forbiddenUnderSi,
  type Anomaly,
  type CheckOptions,
  type CheckResult,
  type CycleStep,
  type HistoryOp,
  type Value,
} from "./types";

function addReadEdges(b: GraphBuilder, facts: ReadFacts): void {
  const { writers, snapshots, orders, committed } = facts;
  for (const s of snapshots) {
    const byValue = writers.get(s.key);
    if (s.len > 0) {
      const value = s.list[s.len - 1];
      const w = byValue?.get(value);
      if (w && committed[w.txn.id] === 1) {
        b.add(w.txn.id, s.txn.id, edge_wr, { key: s.key, value, read: s.list, readLen: s.len });
      }
    }
    const order = orders.get(s.key);
    if (order && s.len < order.length) {
      const value = order[s.len];
      const w = byValue?.get(value);
      if (w && committed[w.txn.id] === 1) {
        b.add(s.txn.id, w.txn.id, edge_rw, { key: s.key, value, read: s.list, readLen: s.len });
      }
    }
  }
}

function addWriteEdges(b: GraphBuilder, facts: ReadFacts): void {
  for (const [key, order] of facts.orders) {
    const byValue = facts.writers.get(key);
    for (let i = 1; i < order.length; i++) {
      const a = byValue?.get(order[i - 1]);
      const c = byValue?.get(order[i]);
      if (!a || !c || facts.committed[a.txn.id] !== 1 || facts.committed[c.txn.id] !== 1) continue;
      b.add(a.txn.id, c.txn.id, edge_ww, { key, value: order[i], prev: order[i - 1] });
    }
  }
}

/**
 * Real-time edges, transitively reduced: a frontier holds the completed
 * transactions not yet known to precede another completed one; each invoke
 * gets an edge from every member, and a completion replaces the members that
 * preceded it.
 */
function addRealtimeEdges(
  b: GraphBuilder,
  txns: readonly Txn[],
  committed: Uint8Array,
  ops: number,
): void {
  const invokes = new Map<number, Txn>();
  const completes = new Map<number, Txn>();
  for (const t of txns) {
    if (committed[t.id] !== 1) continue;
    invokes.set(t.invokePos, t);
    if (t.type === "ok") completes.set(t.completePos, t);
  }
  const frontier = new Set<number>();
  const preds = new Map<number, number[]>();
  for (let pos = 0; pos < ops; pos++) {
    const inv = invokes.get(pos);
    if (inv) {
      const before = [...frontier];
      for (const p of before) b.add(p, inv.id, edge_rt, {});
      preds.set(inv.id, before);
      continue;
    }
    const done = completes.get(pos);
    if (!done) continue;
    for (const p of preds.get(done.id) ?? []) frontier.delete(p);
    preds.delete(done.id);
    frontier.add(done.id);
  }
}

/** Two or more committed transactions read the same version of a key and appended to it. */
function lostUpdates(facts: ReadFacts): Anomaly[] {
  const initial = Symbol("initial");
  const groups = new Map<string | number, Map<Value | symbol, Txn[]>>();
  for (const s of facts.snapshots) {
    if (!s.appends) continue;
    const version = s.len > 0 ? s.list[s.len - 1] : initial;
    let byVersion = groups.get(s.key);
    if (!byVersion) groups.set(s.key, (byVersion = new Map()));
    const g = byVersion.get(version);
    if (g) g.push(s.txn);
    else byVersion.set(version, [s.txn]);
  }
  const out: Anomaly[] = [];
  for (const [key, byVersion] of groups) {
    for (const [version, ts] of byVersion) {
      if (ts.length < 2) continue;
      const seen =
        typeof version === "symbol"
          ? "[] (no appends yet)"
          : `the version ending in ${fmtValue(version)}`;
      out.push({
        class: "lost-update",
        forbidden: true,
        explanation:
          `${ts.map((t) => t.name).join(", ")} all read key ${fmtValue(key)} at ${seen} ` +
          `and all appended to it: all but one of their updates were made without seeing the others`,
        txns: ts.map(txnRef),
        key,
      });
    }
  }
  return out;
}

function explainStep(g: Graph, txns: readonly Txn[], step: PathStep): CycleStep {
  const from = txns[step.from];
  const to = txns[step.to];
  const why = g.why(step.edge, step.bit);
  const head = `${from.name} < ${to.name} because`;
  const seen = (): string => {
    const list = why.read ?? [];
    const len = why.readLen ?? list.length;
    const own = len < list.length ? " (before its own appends)" : "";
    return `key ${fmtValue(why.key ?? "?")} = ${fmtList(list, len)}${own}`;
  };
  const out: CycleStep = { from: from.name, to: to.name, type: "ww", explanation: "" };
  if (why.key !== undefined) out.key = why.key;
  if (why.value !== undefined) out.value = why.value;
  const v = fmtValue(why.value ?? "?");
  if (step.bit === edge_ww) {
    out.explanation = `${head} ${to.name} appended ${v} right after ${from.name}'s append of ${fmtValue(why.prev ?? "?")} to key ${fmtValue(why.key ?? "?")}`;
  } else if (step.bit === edge_wr) {
    out.type = "wr";
    out.read = (why.read ?? []).slice(0, why.readLen);
    out.explanation = `${head} ${to.name} read ${seen()}, which includes ${from.name}'s append of ${v}`;
  } else if (step.bit === edge_rw) {
    out.type = "rw";
    out.read = (why.read ?? []).slice(0, why.readLen);
    out.explanation = `${head} ${from.name} read ${seen()} and did not observe ${to.name}'s append of ${v}, the next element`;
  } else {
    out.type = "rt";
    out.explanation = `${head} ${from.name} completed (index ${from.completeIndex ?? "?"}) before ${to.name} was invoked (index ${to.invokeIndex})`;
  }
  return out;
}

function cycleAnomaly(g: Graph, txns: readonly Txn[], c: FoundCycle): Anomaly {
  const cycle = c.steps.map((s) => explainStep(g, txns, s));
  const names = [...cycle.map((s) => s.from), cycle[0].from];
  return {
    class: c.class,
    forbidden: forbiddenUnderSi(c.class),
    explanation: `cycle of ${cycle.length} transactions: ${names.join(" < ")}`,
    txns: c.steps.map((s) => txnRef(txns[s.from])),
    cycle,
  };
}

/** Checks a list-append history under snapshot isolation. */
export function checkHistory(ops: readonly HistoryOp[], options: CheckOptions = {}): CheckResult {
  const stepsMax = options.cycleSearchStepsMax ?? cycle_search_steps_max;
  if (!(stepsMax > 0)) throw new RangeError("check: cycleSearchStepsMax must be positive");
  const { txns, malformed } = pairOps(ops);
  const anomalies: Anomaly[] = [...malformed];
  const facts = analyzeReads(txns, anomalies);
  const b = new GraphBuilder(txns.length);
  addWriteEdges(b, facts);
  addReadEdges(b, facts);
  if (options.realtime) addRealtimeEdges(b, txns, facts.committed, ops.length);
  const g = b.freeze();
  anomalies.push(...lostUpdates(facts));
  for (const c of findCycles(g, stepsMax)) anomalies.push(cycleAnomaly(g, txns, c));
  const counts: Record<string, number> = {};
  for (const a of anomalies) counts[a.class] = (counts[a.class] ?? 0) + 1;
  const stats = { ok: 0, fail: 0, info: 0, txns: txns.length };
  for (const t of txns) stats[t.type]++;
  return { valid: !anomalies.some((a) => a.forbidden), anomalies, counts, stats };
}
