/**
 * The adjudicator's memory of who touched which key and when: per key, the
 * latest committed write and shared lock, and how many in-flight transactions
 * write or share it, plus the tickets of approved transactions and the
 * history horizon. Batch-shaped like FoundationDB's ConflictBatch (DESIGN
 * §6): `detect` decides a whole `ConflictBatch` in order, `commitBatch` /
 * `abortBatch` settle many tickets, `forgetBefore` drops old history.
 *
 * Two engines answer every call identically: `JsConflictTable` below, the
 * TypeScript reference, and `NativeConflictTable` (src/native, over
 * native/conflict_table.cc). Property tests compare them on random inputs.
 *
 * Keys are opaque byte strings compared for equality (docs/protocol.md).
 * A written key conflicts with a committed write or shared lock after
 * tau_start and with any in-flight write or shared access; a shared key
 * conflicts with a committed write after tau_start and an in-flight write.
 * Written keys of a transaction are checked before its shared keys, so the
 * reported key is the first conflicting written key, else the first shared.
 * History is bounded: `forgetBefore(horizon)` drops committed entries at or
 * below the horizon, using a min-heap of (tau, key) so the cost is
 * proportional to what is dropped; a tau_start below the horizon is TooOld.
 */
import {
  checkBatch,
  checkHorizon,
  conflict_batch_header_words,
  conflict_key_shared_bit,
  conflict_tickets_max,
  ConflictBatch,
  ConflictVerdict,
  TicketBook,
} from "./conflict-batch";
import type { ConflictEngine } from "./conflict-batch";

/** A transaction's keys, each listed once; a key both written and shared is only written. */
export interface KeySet {
  readonly written: readonly Uint8Array[];
  readonly shared: readonly Uint8Array[];
}

export type ConflictReason =
  "committed_write" | "committed_shared" | "in_flight_write" | "in_flight_shared";

/** The reason behind each conflict verdict. */
export function conflictReason(verdict: ConflictVerdict): ConflictReason | null {
  switch (verdict) {
    case ConflictVerdict.CommittedWrite:
      return "committed_write";
    case ConflictVerdict.CommittedShared:
      return "committed_shared";
    case ConflictVerdict.InFlightWrite:
      return "in_flight_write";
    case ConflictVerdict.InFlightShared:
      return "in_flight_shared";
    default:
      return null;
  }
}

export interface ConflictTable {
  readonly engine: ConflictEngine;
  /**
   * Decides `batch` (taus are tau_start) in order, writing its verdicts,
   * details and conflict taus; approved transactions get tickets and their
   * keys are in flight, for later transactions of the batch too.
   */
  detect(batch: ConflictBatch): void;
  /** Records the batch's transactions as committed at their taus; those at or below the horizon are ignored. */
  register(batch: ConflictBatch): void;
  /** The first `count` tickets are durable at `taus[i]` (> their tau_start): in flight → committed. */
  commitBatch(tickets: Uint32Array, taus: Float64Array, count: number): void;
  /** The first `count` tickets will never be durable: their keys leave flight, nothing is recorded. */
  abortBatch(tickets: Uint32Array, count: number): void;
  /** Drops committed entries with tau <= horizonTau; the horizon never moves back. */
  forgetBefore(horizonTau: number): void;
  /** Keys with any committed or in-flight entry. */
  readonly keyCount: number;
  /** Tickets not yet committed or aborted. */
  readonly inFlightCount: number;
  /** Snapshots older than this are TooOld; commits at or below it are forgotten. */
  readonly horizonTau: number;
  /** Frees the table; later calls throw. Closing twice is fine. */
  close(): void;
}

/** No committed entry. Any real tau is greater. */
const tau_none = Number.NEGATIVE_INFINITY;

interface KeyEntry {
  readonly name: string;
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

interface JsTicket {
  entries: KeyEntry[];
  shared: boolean[];
}

/** The TypeScript reference `ConflictTable`. */
export class JsConflictTable implements ConflictTable {
  readonly engine = "js" as const;
  readonly #entries = new Map<string, KeyEntry>();
  readonly #history = new TauHeap();
  readonly #book = new TicketBook();
  readonly #tickets: (JsTicket | null)[] = [];
  #horizonTau: number;
  #closed = false;

  constructor(horizonTau: number = Number.MIN_SAFE_INTEGER) {
    this.#horizonTau = checkHorizon(horizonTau, Number.MIN_SAFE_INTEGER);
  }

  get keyCount(): number {
    this.#open();
    return this.#entries.size;
  }

  get inFlightCount(): number {
    this.#open();
    return this.#book.liveCount;
  }

  get horizonTau(): number {
    this.#open();
    return this.#horizonTau;
  }

  detect(batch: ConflictBatch): void {
    this.#open();
    const txnCount = checkBatch(batch);
    if (this.#book.liveCount + txnCount > conflict_tickets_max) {
      throw new RangeError("batch could exceed conflict_tickets_max in flight");
    }
    const { index, taus, verdicts, details, conflictTaus } = batch;
    const names = this.#names(batch);
    let word = conflict_batch_header_words;
    let key = 0;
    for (let txn = 0; txn < txnCount; txn++) {
      const tauStart = taus[txn];
      const count = index[word];
      const first = word + 1;
      word = first + count;
      const firstKey = key;
      key += count;
      details[txn] = 0;
      conflictTaus[txn] = 0;
      if (tauStart < this.#horizonTau) {
        verdicts[txn] = ConflictVerdict.TooOld;
        continue;
      }
      let verdict = ConflictVerdict.Approved;
      for (let pass = 0; pass < 2 && verdict === ConflictVerdict.Approved; pass++) {
        for (let k = 0; k < count; k++) {
          const shared = (index[first + k] & conflict_key_shared_bit) !== 0;
          if (shared !== (pass === 1)) continue;
          const entry = this.#entries.get(names[firstKey + k]);
          if (entry === undefined) continue;
          verdict = check(entry, shared, tauStart);
          if (verdict !== ConflictVerdict.Approved) {
            details[txn] = k;
            if (verdict === ConflictVerdict.CommittedWrite) conflictTaus[txn] = entry.writeTau;
            if (verdict === ConflictVerdict.CommittedShared) conflictTaus[txn] = entry.sharedTau;
            break;
          }
        }
      }
      verdicts[txn] = verdict;
      if (verdict !== ConflictVerdict.Approved) continue;
      const ticket: JsTicket = { entries: [], shared: [] };
      for (let k = 0; k < count; k++) {
        const shared = (index[first + k] & conflict_key_shared_bit) !== 0;
        const entry = this.#entry(names[firstKey + k]);
        if (shared) entry.inFlightShared += 1;
        else entry.inFlightWrites += 1;
        ticket.entries.push(entry);
        ticket.shared.push(shared);
      }
      const id = this.#book.allocate(tauStart);
      this.#tickets[id] = ticket;
      details[txn] = id;
    }
  }

  register(batch: ConflictBatch): void {
    this.#open();
    const txnCount = checkBatch(batch);
    const { index, taus } = batch;
    const names = this.#names(batch);
    let word = conflict_batch_header_words;
    let key = 0;
    for (let txn = 0; txn < txnCount; txn++) {
      const tau = taus[txn];
      const count = index[word];
      const first = word + 1;
      word = first + count;
      const firstKey = key;
      key += count;
      if (tau <= this.#horizonTau) continue;
      for (let k = 0; k < count; k++) {
        const shared = (index[first + k] & conflict_key_shared_bit) !== 0;
        this.#record(this.#entry(names[firstKey + k]), shared, tau);
      }
    }
  }

  commitBatch(tickets: Uint32Array, taus: Float64Array, count: number): void {
    this.#open();
    this.#book.check(tickets, taus, count);
    for (let i = 0; i < count; i++) {
      const ticket = this.#take(tickets[i]);
      for (let k = 0; k < ticket.entries.length; k++) {
        const entry = ticket.entries[k];
        const shared = ticket.shared[k];
        release(entry, shared);
        this.#record(entry, shared, taus[i]);
      }
    }
  }

  abortBatch(tickets: Uint32Array, count: number): void {
    this.#open();
    this.#book.check(tickets, null, count);
    for (let i = 0; i < count; i++) {
      const ticket = this.#take(tickets[i]);
      for (let k = 0; k < ticket.entries.length; k++) {
        release(ticket.entries[k], ticket.shared[k]);
        this.#dropIfEmpty(ticket.entries[k]);
      }
    }
  }

  forgetBefore(horizonTau: number): void {
    this.#open();
    this.#horizonTau = checkHorizon(horizonTau, this.#horizonTau);
    for (;;) {
      const top = this.#history.peek();
      if (top === undefined || top.tau > horizonTau) return;
      this.#history.pop();
      const entry = this.#entries.get(top.key);
      if (entry === undefined) continue;
      if (entry.writeTau <= horizonTau) entry.writeTau = tau_none;
      if (entry.sharedTau <= horizonTau) entry.sharedTau = tau_none;
      this.#dropIfEmpty(entry);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#entries.clear();
  }

  #open(): void {
    if (this.#closed) throw new RangeError("conflict table is closed");
  }

  /** The batch's keys as Map keys, in index order. */
  #names(batch: ConflictBatch): string[] {
    const { index, keyBytes } = batch;
    const bytes = Buffer.from(keyBytes.buffer, keyBytes.byteOffset, keyBytes.byteLength);
    const names: string[] = [];
    let word = conflict_batch_header_words;
    let offset = 0;
    for (let txn = 0; txn < index[1]; txn++) {
      const count = index[word++];
      for (let k = 0; k < count; k++) {
        const length = index[word++] & ~conflict_key_shared_bit;
        names.push(bytes.toString("latin1", offset, offset + length));
        offset += length;
      }
    }
    return names;
  }

  #take(id: number): JsTicket {
    const ticket = this.#tickets[id];
    if (ticket === null || ticket === undefined)
      throw new RangeError(`ticket ${id} is not in flight`);
    this.#tickets[id] = null;
    this.#book.release(id);
    return ticket;
  }

  #record(entry: KeyEntry, shared: boolean, tau: number): void {
    if (shared) entry.sharedTau = Math.max(entry.sharedTau, tau);
    else entry.writeTau = Math.max(entry.writeTau, tau);
    this.#history.push({ tau, key: entry.name });
  }

  #entry(name: string): KeyEntry {
    let entry = this.#entries.get(name);
    if (entry === undefined) {
      entry = {
        name,
        writeTau: tau_none,
        sharedTau: tau_none,
        inFlightWrites: 0,
        inFlightShared: 0,
      };
      this.#entries.set(name, entry);
    }
    return entry;
  }

  #dropIfEmpty(entry: KeyEntry): void {
    if (
      entry.writeTau === tau_none &&
      entry.sharedTau === tau_none &&
      entry.inFlightWrites === 0 &&
      entry.inFlightShared === 0
    ) {
      this.#entries.delete(entry.name);
    }
  }
}

function check(entry: KeyEntry, shared: boolean, tauStart: number): ConflictVerdict {
  if (entry.writeTau > tauStart) return ConflictVerdict.CommittedWrite;
  if (!shared && entry.sharedTau > tauStart) return ConflictVerdict.CommittedShared;
  if (entry.inFlightWrites > 0) return ConflictVerdict.InFlightWrite;
  if (!shared && entry.inFlightShared > 0) return ConflictVerdict.InFlightShared;
  return ConflictVerdict.Approved;
}

function release(entry: KeyEntry, shared: boolean): void {
  if (shared) {
    if (entry.inFlightShared <= 0) throw new Error("release of a shared key that is not in flight");
    entry.inFlightShared -= 1;
  } else {
    if (entry.inFlightWrites <= 0)
      throw new Error("release of a written key that is not in flight");
    entry.inFlightWrites -= 1;
  }
}
