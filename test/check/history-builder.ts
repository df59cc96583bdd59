/**
 * Builds list-append histories for the checker's tests: `a(k, v)` and
 * `r(k, list)` make micro-ops, `HistoryBuilder` emits invoke/completion pairs
 * (reads blanked in the invoke, as Elle writes them), and `serialHistory`
 * runs random transactions one at a time against an in-memory store, so
 * whatever it produces is serializable, hence snapshot isolated.
 */
import type { HistoryOp, Key, Mop, Value } from "../../src/check";

export function a(key: Key, value: Value): Mop {
  return ["append", key, value];
}

export function r(key: Key, list: readonly Value[] | null): Mop {
  return ["r", key, list];
}

function blank(mops: readonly Mop[]): Mop[] {
  return mops.map((m) => (m[0] === "r" ? (["r", m[1], null] as const) : m));
}

export class HistoryBuilder {
  readonly ops: HistoryOp[] = [];

  invoke(process: number, mops: readonly Mop[]): void {
    this.#push(process, "invoke", blank(mops));
  }

  /** Completes `process`'s pending txn; returns the txn's name as the checker gives it. */
  complete(process: number, type: "ok" | "fail" | "info", mops: readonly Mop[]): string {
    const index = this.ops.length;
    this.#push(process, type, type === "ok" ? mops : blank(mops));
    return `T${index}`;
  }

  /** An invoke immediately followed by its completion. */
  txn(process: number, mops: readonly Mop[], type: "ok" | "fail" | "info" = "ok"): string {
    this.invoke(process, mops);
    return this.complete(process, type, mops);
  }

  text(): string {
    return this.ops.map((o) => JSON.stringify(o)).join("\n") + "\n";
  }

  #push(process: number, type: HistoryOp["type"], value: readonly Mop[]): void {
    this.ops.push({ index: this.ops.length, process, type, f: "txn", value });
  }
}

/** mulberry32: a small seeded generator, so every generated history can be replayed. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SerialOptions {
  txns: number;
  processes: number;
  /** Keys in use at once; a key retires after `appendsPerKeyMax` appends. */
  activeKeys: number;
  appendsPerKeyMax: number;
  mopsMax: number;
  failRate: number;
  infoRate: number;
}

/**
 * Random transactions on several processes; each takes effect atomically at
 * its completion, which lies between its invoke and its completion in the
 * history, so the history is also consistent with real-time order. Failed
 * transactions have no effect; info ones have their effects kept or dropped
 * at random, wholly.
 */
export function serialHistory(rand: () => number, o: SerialOptions): HistoryOp[] {
  const h = new HistoryBuilder();
  const store = new Map<number, Value[]>();
  const appendsTo = new Map<number, number>();
  const active = Array.from({ length: o.activeKeys }, (_, i) => i);
  let nextKey = o.activeKeys;
  let nextValue = 1;
  const pending = new Map<number, Mop[]>();
  const pick = (n: number): number => Math.floor(rand() * n);
  let started = 0;
  while (started < o.txns || pending.size > 0) {
    const p = pick(o.processes);
    const planned = pending.get(p);
    if (!planned) {
      if (started >= o.txns) continue;
      started++;
      const mops: Mop[] = [];
      const n = 1 + pick(o.mopsMax);
      for (let i = 0; i < n; i++) {
        const key = active[pick(active.length)];
        mops.push(rand() < 0.5 ? a(key, nextValue++) : r(key, null));
      }
      pending.set(p, mops);
      h.invoke(p, mops);
      continue;
    }
    pending.delete(p);
    const roll = rand();
    const type = roll < o.failRate ? "fail" : roll < o.failRate + o.infoRate ? "info" : "ok";
    const apply = type === "ok" || (type === "info" && rand() < 0.5);
    const done: Mop[] = [];
    if (apply) {
      for (const m of planned) {
        const key = m[1] as number;
        const list = store.get(key) ?? [];
        if (m[0] === "r") {
          done.push(r(key, [...list]));
          continue;
        }
        list.push(m[2]);
        store.set(key, list);
        done.push(m);
        const count = (appendsTo.get(key) ?? 0) + 1;
        appendsTo.set(key, count);
        if (count >= o.appendsPerKeyMax) {
          const slot = active.indexOf(key);
          if (slot >= 0) active[slot] = nextKey++;
        }
      }
    }
    h.complete(p, type, apply ? done : planned);
  }
  return h.ops;
}
