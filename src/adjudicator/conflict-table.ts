/**
 * The adjudicator's memory of who touched which key and when: per key, the
 * latest committed write and shared lock, and how many in-flight transactions
 * write or share it. It sits behind the `ConflictTable` interface so that a
 * native twin can replace this TypeScript reference (DESIGN §6); both must
 * answer every call identically.
 *
 * Keys are opaque byte strings compared for equality (docs/protocol.md).
 * History is bounded: `forgetBefore(horizon)` drops committed entries at or
 * below the horizon, using a min-heap of (tau, key) so the cost is
 * proportional to what is dropped.
 */

/** A transaction's keys, each listed once; a key both written and shared is only written. */
export interface KeySet {
  readonly written: readonly Uint8Array[];
  readonly shared: readonly Uint8Array[];
}

export type ConflictReason =
  "committed_write" | "committed_shared" | "in_flight_write" | "in_flight_shared";

export interface KeyConflict {
  key: Uint8Array;
  reason: ConflictReason;
  /** The conflicting commit's tau for committed reasons, else null. */
  tauCommit: number | null;
}

export interface ConflictTable {
  /**
   * The first key of `keys` that conflicts for a snapshot taken at `tauStart`:
   * a written key conflicts with any committed write or shared lock after
   * tauStart and any in-flight access; a shared key conflicts with a committed
   * write after tauStart and any in-flight write.
   */
  findConflict(keys: KeySet, tauStart: number): KeyConflict | null;
  /** Marks the keys in flight (approved, not yet durable). */
  reserve(keys: KeySet): void;
  /** Undoes one `reserve` of the same keys. */
  release(keys: KeySet): void;
  /** Records the keys as committed at `tauCommit` (in-flight counts untouched). */
  commit(keys: KeySet, tauCommit: number): void;
  /** Drops committed entries with tau <= horizonTau. */
  forgetBefore(horizonTau: number): void;
  /** Keys with any committed or in-flight entry. */
  readonly keyCount: number;
}

/** No committed entry. Any real tau is greater. */
const tau_none = Number.NEGATIVE_INFINITY;

interface KeyEntry {
  writeTau: number;
  sharedTau: number;
  inFlightWrites: number;
  inFlightShared: number;
}

/** Maps key bytes to a string usable as a Map key: one char per byte. */
export function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

interface HeapItem {
  tau: number;
  key: string;
}

/** Binary min-heap on tau. */
class TauHeap {
  readonly #items: HeapItem[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): HeapItem | undefined {
    return this.#items[0];
  }

  push(item: HeapItem): void {
    const items = this.#items;
    items.push(item);
    let at = items.length - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (items[parent].tau <= items[at].tau) break;
      [items[parent], items[at]] = [items[at], items[parent]];
      at = parent;
    }
  }

  pop(): HeapItem | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let at = 0;
    for (;;) {
      const left = at * 2 + 1;
      const right = left + 1;
      let least = at;
      if (left < items.length && items[left].tau < items[least].tau) least = left;
      if (right < items.length && items[right].tau < items[least].tau) least = right;
      if (least === at) break;
      [items[least], items[at]] = [items[at], items[least]];
      at = least;
    }
    return top;
  }
}

/** The TypeScript reference `ConflictTable`. */
export class JsConflictTable implements ConflictTable {
  readonly #entries = new Map<string, KeyEntry>();
  readonly #history = new TauHeap();

  get keyCount(): number {
    return this.#entries.size;
  }

  findConflict(keys: KeySet, tauStart: number): KeyConflict | null {
    for (const key of keys.written) {
      const entry = this.#entries.get(keyString(key));
      if (entry === undefined) continue;
      if (entry.writeTau > tauStart)
        return { key, reason: "committed_write", tauCommit: entry.writeTau };
      if (entry.sharedTau > tauStart)
        return { key, reason: "committed_shared", tauCommit: entry.sharedTau };
      if (entry.inFlightWrites > 0) return { key, reason: "in_flight_write", tauCommit: null };
      if (entry.inFlightShared > 0) return { key, reason: "in_flight_shared", tauCommit: null };
    }
    for (const key of keys.shared) {
      const entry = this.#entries.get(keyString(key));
      if (entry === undefined) continue;
      if (entry.writeTau > tauStart)
        return { key, reason: "committed_write", tauCommit: entry.writeTau };
      if (entry.inFlightWrites > 0) return { key, reason: "in_flight_write", tauCommit: null };
    }
    return null;
  }

  reserve(keys: KeySet): void {
    for (const key of keys.written) this.#entry(key).inFlightWrites += 1;
    for (const key of keys.shared) this.#entry(key).inFlightShared += 1;
  }

  release(keys: KeySet): void {
    for (const key of keys.written) {
      const entry = this.#existing(key);
      if (entry.inFlightWrites <= 0)
        throw new Error("release of a written key that is not in flight");
      entry.inFlightWrites -= 1;
      this.#dropIfEmpty(keyString(key), entry);
    }
    for (const key of keys.shared) {
      const entry = this.#existing(key);
      if (entry.inFlightShared <= 0)
        throw new Error("release of a shared key that is not in flight");
      entry.inFlightShared -= 1;
      this.#dropIfEmpty(keyString(key), entry);
    }
  }

  commit(keys: KeySet, tauCommit: number): void {
    if (!Number.isSafeInteger(tauCommit))
      throw new RangeError(`tau_commit ${tauCommit} is not a safe integer`);
    for (const key of keys.written) {
      const entry = this.#entry(key);
      entry.writeTau = Math.max(entry.writeTau, tauCommit);
      this.#history.push({ tau: tauCommit, key: keyString(key) });
    }
    for (const key of keys.shared) {
      const entry = this.#entry(key);
      entry.sharedTau = Math.max(entry.sharedTau, tauCommit);
      this.#history.push({ tau: tauCommit, key: keyString(key) });
    }
  }

  forgetBefore(horizonTau: number): void {
    for (;;) {
      const top = this.#history.peek();
      if (top === undefined || top.tau > horizonTau) return;
      this.#history.pop();
      const entry = this.#entries.get(top.key);
      if (entry === undefined) continue;
      if (entry.writeTau <= horizonTau) entry.writeTau = tau_none;
      if (entry.sharedTau <= horizonTau) entry.sharedTau = tau_none;
      this.#dropIfEmpty(top.key, entry);
    }
  }

  #entry(key: Uint8Array): KeyEntry {
    const name = keyString(key);
    let entry = this.#entries.get(name);
    if (entry === undefined) {
      entry = { writeTau: tau_none, sharedTau: tau_none, inFlightWrites: 0, inFlightShared: 0 };
      this.#entries.set(name, entry);
    }
    return entry;
  }

  #existing(key: Uint8Array): KeyEntry {
    const entry = this.#entries.get(keyString(key));
    if (entry === undefined) throw new Error("key is not in the conflict table");
    return entry;
  }

  #dropIfEmpty(name: string, entry: KeyEntry): void {
    if (
      entry.writeTau === tau_none &&
      entry.sharedTau === tau_none &&
      entry.inFlightWrites === 0 &&
      entry.inFlightShared === 0
    ) {
      this.#entries.delete(name);
    }
  }
}
