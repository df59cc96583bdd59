/**
 * Finds dependency cycles and names them as Adya and Elle do. The graph is
 * cut into strongly connected components; in each one that is not a single
 * transaction the checker looks for one cycle of each class, most severe
 * first:
 *   G0             ww edges only (with --realtime, rt edges may join: G0-realtime)
 *   G1c            ww/wr edges, at least one wr
 *   G-single       exactly one rw edge (read skew, lost update)
 *   G-nonadjacent  two or more rw edges, no two adjacent (long fork)
 *   G2-item        rw edges, some adjacent (write skew; allowed under SI)
 * Each search is a BFS for the way back from the head of a starting edge to
 * its tail, so the cycles found are short. Searches share a budget of edge
 * visits per component, so a pathological component costs bounded time.
 */
import {
  edge_all,
  edge_non_rw,
  edge_rt,
  edge_rw,
  edge_ww,
  edge_wr,
  Graph,
  PathSearch,
  plainMachine,
  stronglyConnected,
  type PathStep,
  type StateMachine,
} from "./graph";
import type { AnomalyClass } from "./types";

/** Default bound on edge visits per component per search kind. */
export const cycle_search_steps_max = 2_000_000;
/**
 * A component's budget also scales with its size, so that many medium
 * components cannot add up to hours: enough for this many full searches...
 */
const component_searches_per_edge = 64;
/** ...but never less than this many edge visits, which small components cannot reach anyway. */
const component_search_steps_min = 10_000;

export interface FoundCycle {
  class: AnomalyClass;
  steps: PathStep[];
}

/** Names a cycle from the types of its edges. */
export function classifyCycle(steps: readonly PathStep[]): AnomalyClass {
  if (steps.length < 2) throw new Error("check: a cycle has at least two edges");
  let rw = 0;
  let wr = 0;
  let rt = 0;
  let adjacent = false;
  for (let i = 0; i < steps.length; i++) {
    const bit = steps[i].bit;
    if (bit === edge_rw) {
      rw++;
      if (steps[(i + 1) % steps.length].bit === edge_rw) adjacent = true;
    } else if (bit === edge_wr) wr++;
    else if (bit === edge_rt) rt++;
  }
  let cls: string;
  if (rw === 0) cls = wr > 0 ? "G1c" : "G0";
  else if (rw === 1) cls = "G-single";
  else cls = adjacent ? "G2-item" : "G-nonadjacent";
  return (rt > 0 ? `${cls}-realtime` : cls) as AnomalyClass;
}

/**
 * States for "no two rw edges in a row, at least two rw in all": bit 0 says
 * the last edge was rw, bit 1 says two or more rw edges were taken.
 */
const nonadjacent_machine: StateMachine = {
  states: 4,
  step(mask, state, out) {
    if ((mask & edge_non_rw) !== 0) {
      const bit = (mask & edge_ww) !== 0 ? edge_ww : (mask & edge_wr) !== 0 ? edge_wr : edge_rt;
      out.push(state & 2, bit);
    }
    if ((mask & edge_rw) !== 0 && (state & 1) === 0) out.push(3, edge_rw);
  },
};

interface Component {
  g: Graph;
  nodes: readonly number[];
  local: Int32Array;
  budget: number;
}

/** Edges of the component, as [from, edge index] pairs, whose mask meets `bits`. */
function* edgesWith(c: Component, bits: number): Generator<[number, number]> {
  for (const v of c.nodes) {
    for (let e = c.g.off[v]; e < c.g.off[v + 1]; e++) {
      if ((c.g.mask[e] & bits) !== 0 && c.local[c.g.tgt[e]] >= 0) yield [v, e];
    }
  }
}

/**
 * A cycle through an edge of type `head` using only `allow` edges: an edge
 * whose ends share a component of the `allow` subgraph always closes one.
 */
function cycleInSubgraph(c: Component, head: number, allow: number): PathStep[] | null {
  const { comp } = stronglyConnected(c.g, c.nodes, c.local, allow);
  const search = new PathSearch(c.g, c.nodes, c.local, 1, c.budget);
  for (const [v, e] of edgesWith(c, head)) {
    const w = c.g.tgt[e];
    if (comp[c.local[v]] !== comp[c.local[w]]) continue;
    const back = search.find(w, 0, v, () => true, plainMachine(allow));
    const bit = [edge_ww, edge_wr, edge_rt, edge_rw].find((b) => (c.g.mask[e] & head & b) !== 0);
    if (back && bit !== undefined) return [{ from: v, to: w, edge: e, bit }, ...back];
    return null;
  }
  return null;
}

/**
 * Splits a closed walk into simple cycles. A search over (node, state) may
 * pass a node twice; each piece between two visits is itself a cycle, and
 * each is named on its own.
 */
export function simpleCycles(walk: readonly PathStep[]): PathStep[][] {
  const out: PathStep[][] = [];
  const stack: PathStep[] = [];
  const at = new Map<number, number>();
  for (const step of walk) {
    const p = at.get(step.from);
    if (p !== undefined) {
      const piece = stack.splice(p);
      for (const s of piece) at.delete(s.from);
      out.push(piece);
    }
    at.set(step.from, stack.length);
    stack.push(step);
  }
  if (stack.length > 0) out.push(stack);
  for (const c of out) {
    if (c.length < 2 || c[c.length - 1].to !== c[0].from) throw new Error("check: not a cycle");
  }
  return out;
}

/**
 * Cycles that start with an rw edge and come back by `machine`'s rules; each
 * simple cycle met is passed to `keep`, and the search stops at the first one
 * for which `keep` answers true.
 */
function cyclesFromRw(
  c: Component,
  machine: StateMachine,
  startState: number,
  done: (s: number) => boolean,
  keep: (steps: PathStep[]) => boolean,
): void {
  const search = new PathSearch(c.g, c.nodes, c.local, machine.states, c.budget);
  for (const [v, e] of edgesWith(c, edge_rw)) {
    const w = c.g.tgt[e];
    const back = search.find(w, startState, v, done, machine);
    if (back) {
      let wanted = false;
      for (const cycle of simpleCycles([{ from: v, to: w, edge: e, bit: edge_rw }, ...back])) {
        if (keep(cycle)) wanted = true;
      }
      if (wanted) return;
    }
    if (search.budget <= 0) return;
  }
}

/** One cycle per class found in one strongly connected component. */
function cyclesOfComponent(c: Component): FoundCycle[] {
  const found = new Map<AnomalyClass, PathStep[]>();
  const keeper =
    (wanted: (cls: AnomalyClass) => boolean) =>
    (steps: PathStep[] | null): boolean => {
      if (!steps) return false;
      const cls = classifyCycle(steps);
      if (!found.has(cls)) found.set(cls, steps);
      return wanted(cls);
    };
  const any = keeper(() => true);
  any(cycleInSubgraph(c, edge_ww, edge_ww | edge_rt));
  any(cycleInSubgraph(c, edge_wr, edge_non_rw));
  const hasRw = !edgesWith(c, edge_rw).next().done;
  if (hasRw) {
    cyclesFromRw(c, plainMachine(edge_non_rw), 0, () => true, any);
    const nonadjacent = keeper((cls) => cls.startsWith("G-nonadjacent"));
    cyclesFromRw(c, nonadjacent_machine, 1, (s) => s === 2, nonadjacent);
    const anySingleOrNonadjacent = [...found.keys()].some(
      (k) => k.startsWith("G-single") || k.startsWith("G-nonadjacent"),
    );
    if (!anySingleOrNonadjacent) cyclesFromRw(c, plainMachine(edge_all), 0, () => true, any);
  }
  if (found.size === 0) any(cycleInSubgraph(c, edge_all, edge_all));
  return [...found].map(([cls, steps]) => ({ class: cls, steps }));
}

/** Every cycle class present in the graph, one short witness per component and class. */
export function findCycles(g: Graph, stepsMax: number = cycle_search_steps_max): FoundCycle[] {
  const all = Array.from({ length: g.n }, (_, i) => i);
  const identity = Int32Array.from(all);
  const { comp, count } = stronglyConnected(g, all, identity, edge_all);
  const members: number[][] = Array.from({ length: count }, () => []);
  for (let v = 0; v < g.n; v++) members[comp[v]].push(v);
  const local = new Int32Array(g.n).fill(-1);
  const out: FoundCycle[] = [];
  for (const nodes of members) {
    if (nodes.length < 2) continue;
    nodes.forEach((v, i) => (local[v] = i));
    let edges = 0;
    for (const v of nodes) edges += g.off[v + 1] - g.off[v];
    const budget = Math.min(
      stepsMax,
      Math.max(component_search_steps_min, component_searches_per_edge * edges),
    );
    out.push(...cyclesOfComponent({ g, nodes, local, budget }));
    for (const v of nodes) local[v] = -1;
  }
  return out;
}
