/**
 * The dependency graph between committed transactions and the two searches
 * run on it: strongly connected components (Tarjan, iterative, so a history
 * of a million transactions cannot blow the stack) and breadth-first search
 * for a short path, over (node, state) pairs so that one routine answers both
 * "a path of ww/wr edges only" and "a path with no two rw edges in a row".
 * Edges between one pair of transactions are merged into one with a bit per
 * type; each type keeps the first reason found, for the explanation.
 */
import type { EdgeType, Key, Value } from "./types";

export const edge_ww = 1;
export const edge_wr = 2;
export const edge_rw = 4;
export const edge_rt = 8;
export const edge_all = edge_ww | edge_wr | edge_rw | edge_rt;
/** Every dependency that is not an anti-dependency. */
export const edge_non_rw = edge_ww | edge_wr | edge_rt;

/** Why one edge exists: the key, the appended element, and the read that revealed it. */
export interface Why {
  key?: Key;
  value?: Value;
  /** ww: the element just before `value` in the key's order. */
  prev?: Value;
  /** wr, rw: the reader's list, and how much of it was its snapshot. */
  read?: readonly Value[];
  readLen?: number;
}

export interface EdgeRec {
  from: number;
  to: number;
  mask: number;
  why: (Why | undefined)[];
}

export function edgeBitType(bit: number): EdgeType {
  switch (bit) {
    case edge_ww:
      return "ww";
    case edge_wr:
      return "wr";
    case edge_rw:
      return "rw";
    case edge_rt:
      return "rt";
    default:
      throw new Error(`check: not one edge bit: ${bit}`);
  }
}

function bitSlot(bit: number): number {
  return 31 - Math.clz32(bit);
}

/** Collects edges, merging duplicates, then freezes them into adjacency arrays. */
export class GraphBuilder {
  readonly #n: number;
  readonly #edges = new Map<number, EdgeRec>();

  constructor(n: number) {
    if (!Number.isSafeInteger(n * n)) throw new Error("check: too many transactions");
    this.#n = n;
  }

  add(from: number, to: number, bit: number, why: Why): void {
    if (from === to) return;
    const id = from * this.#n + to;
    let rec = this.#edges.get(id);
    if (!rec) {
      rec = { from, to, mask: 0, why: [] };
      this.#edges.set(id, rec);
    }
    if ((rec.mask & bit) === 0) {
      rec.mask |= bit;
      rec.why[bitSlot(bit)] = why;
    }
  }

  freeze(): Graph {
    return new Graph(this.#n, [...this.#edges.values()]);
  }
}

/** Compressed adjacency: edges of node v are `off[v] .. off[v+1]`. */
export class Graph {
  readonly n: number;
  readonly off: Int32Array;
  readonly tgt: Int32Array;
  readonly mask: Uint8Array;
  readonly recs: EdgeRec[];

  constructor(n: number, edges: EdgeRec[]) {
    this.n = n;
    this.off = new Int32Array(n + 1);
    for (const e of edges) this.off[e.from + 1]++;
    for (let v = 0; v < n; v++) this.off[v + 1] += this.off[v];
    const fill = this.off.slice(0, n);
    this.tgt = new Int32Array(edges.length);
    this.mask = new Uint8Array(edges.length);
    this.recs = new Array<EdgeRec>(edges.length);
    for (const e of edges) {
      const at = fill[e.from]++;
      this.tgt[at] = e.to;
      this.mask[at] = e.mask;
      this.recs[at] = e;
    }
  }

  why(edge: number, bit: number): Why {
    const w = this.recs[edge].why[bitSlot(bit)];
    if (!w) throw new Error("check: edge without a reason");
    return w;
  }
}

/**
 * Strongly connected components of the subgraph induced by `nodes` (whose
 * local ids are `local[node]`, -1 for outsiders) using only edges in `allow`.
 * Returns the component of every local id.
 */
export function stronglyConnected(
  g: Graph,
  nodes: readonly number[],
  local: Int32Array,
  allow: number,
): { comp: Int32Array; count: number } {
  const m = nodes.length;
  const index = new Int32Array(m).fill(-1);
  const low = new Int32Array(m);
  const onStack = new Uint8Array(m);
  const comp = new Int32Array(m).fill(-1);
  const stack = new Int32Array(m);
  const callNode = new Int32Array(m);
  const callEdge = new Int32Array(m);
  let sp = 0;
  let cp = 0;
  let next = 0;
  let count = 0;
  const enter = (v: number): void => {
    index[v] = low[v] = next++;
    stack[sp++] = v;
    onStack[v] = 1;
    callNode[cp] = v;
    callEdge[cp] = g.off[nodes[v]];
    cp++;
  };
  for (let s = 0; s < m; s++) {
    if (index[s] !== -1) continue;
    enter(s);
    while (cp > 0) {
      const v = callNode[cp - 1];
      const end = g.off[nodes[v] + 1];
      let e = callEdge[cp - 1];
      let descended = false;
      while (e < end) {
        const w = (g.mask[e] & allow) === 0 ? -1 : local[g.tgt[e]];
        e++;
        if (w < 0) continue;
        if (index[w] === -1) {
          callEdge[cp - 1] = e;
          enter(w);
          descended = true;
          break;
        }
        if (onStack[w] === 1 && index[w] < low[v]) low[v] = index[w];
      }
      if (descended) continue;
      if (low[v] === index[v]) {
        let w: number;
        do {
          w = stack[--sp];
          onStack[w] = 0;
          comp[w] = count;
        } while (w !== v);
        count++;
      }
      cp--;
      if (cp > 0) {
        const u = callNode[cp - 1];
        if (low[v] < low[u]) low[u] = low[v];
      }
    }
  }
  if (sp !== 0) throw new Error("check: tarjan stack not empty");
  return { comp, count };
}

/** One step of a path: the edge taken (index into the graph) and as which type. */
export interface PathStep {
  from: number;
  to: number;
  edge: number;
  bit: number;
}

/**
 * Search state machine for `PathSearch`: how many states a node has, and
 * which states an edge leads to (writes pairs of [next state, edge bit]).
 */
export interface StateMachine {
  states: number;
  step(mask: number, state: number, out: number[]): void;
}

/** Prefers a non-rw reading of a merged edge: it keeps cycles in the weaker class. */
const bit_preference = [edge_ww, edge_wr, edge_rt, edge_rw];

export function plainMachine(allow: number): StateMachine {
  return {
    states: 1,
    step(mask, _state, out) {
      for (const bit of bit_preference) {
        if ((mask & allow & bit) !== 0) {
          out.push(0, bit);
          return;
        }
      }
    },
  };
}

/**
 * Breadth-first search over (node, state) inside one component, with
 * reusable arrays (stamped, so a search costs what it visits) and a budget of
 * edge visits shared by all searches of this object.
 */
export class PathSearch {
  readonly #g: Graph;
  readonly #nodes: readonly number[];
  readonly #local: Int32Array;
  readonly #states: number;
  readonly #seen: Int32Array;
  readonly #prev: Int32Array;
  readonly #prevEdge: Int32Array;
  readonly #prevBit: Uint8Array;
  readonly #queue: Int32Array;
  #stamp = 0;
  budget: number;

  constructor(
    g: Graph,
    nodes: readonly number[],
    local: Int32Array,
    states: number,
    budget: number,
  ) {
    this.#g = g;
    this.#nodes = nodes;
    this.#local = local;
    this.#states = states;
    const size = nodes.length * states;
    this.#seen = new Int32Array(size);
    this.#prev = new Int32Array(size);
    this.#prevEdge = new Int32Array(size);
    this.#prevBit = new Uint8Array(size);
    this.#queue = new Int32Array(size);
    this.budget = budget;
  }

  /** Shortest path from (start, startState) to goal in a state accepted by `done`. */
  find(
    start: number,
    startState: number,
    goal: number,
    done: (state: number) => boolean,
    machine: StateMachine,
  ): PathStep[] | null {
    if (machine.states > this.#states) throw new Error("check: search state space too small");
    const S = this.#states;
    const stamp = ++this.#stamp;
    const g = this.#g;
    const goalLocal = this.#local[goal];
    const first = this.#local[start] * S + startState;
    let head = 0;
    let tail = 0;
    this.#seen[first] = stamp;
    this.#queue[tail++] = first;
    const out: number[] = [];
    while (head < tail) {
      const cur = this.#queue[head++];
      const v = Math.floor(cur / S);
      const state = cur % S;
      if (v === goalLocal && done(state) && cur !== first) {
        return this.#path(first, cur);
      }
      const gv = this.#nodes[v];
      for (let e = g.off[gv]; e < g.off[gv + 1]; e++) {
        if (--this.budget < 0) return null;
        const w = this.#local[g.tgt[e]];
        if (w < 0) continue;
        out.length = 0;
        machine.step(g.mask[e], state, out);
        for (let i = 0; i < out.length; i += 2) {
          const nxt = w * S + out[i];
          if (this.#seen[nxt] === stamp) continue;
          this.#seen[nxt] = stamp;
          this.#prev[nxt] = cur;
          this.#prevEdge[nxt] = e;
          this.#prevBit[nxt] = out[i + 1];
          this.#queue[tail++] = nxt;
        }
      }
    }
    return null;
  }

  #path(first: number, last: number): PathStep[] {
    const S = this.#states;
    const steps: PathStep[] = [];
    for (let cur = last; cur !== first; cur = this.#prev[cur]) {
      const from = this.#nodes[Math.floor(this.#prev[cur] / S)];
      const to = this.#nodes[Math.floor(cur / S)];
      steps.push({ from, to, edge: this.#prevEdge[cur], bit: this.#prevBit[cur] });
    }
    return steps.reverse();
  }
}
