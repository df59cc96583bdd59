/**
 * A brute-force model of the crossbar for tests: it keeps every pending record
 * in one array and, on release, sorts all of them by (tau, journal) and takes
 * those at or below min_j W_j. No loser tree, no shared code with the engines
 * except the public byte formats, so a bug in both engines' merge shows up as
 * a disagreement with this model.
 */
import type {
  CrossbarRecord,
  KeyRange,
  ReleaseSummary,
  SubscriberConfig,
  SubscriberState,
} from "../../src/crossbar";

interface PendingRecord extends CrossbarRecord {
  journal: number;
}

interface ModelSubscriber {
  ranges: readonly KeyRange[];
  bufferBytesMax: number;
  entries: Uint8Array[];
  used: number;
  overflowed: boolean;
  overflowTau: number;
  overflowJournal: number;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function inRange(range: KeyRange, key: Uint8Array): boolean {
  return compare(key, range[0]) >= 0 && (range[1].length === 0 || compare(key, range[1]) < 0);
}

/** Encodes one output entry, written out independently of the engines. */
export function encodeEntry(record: PendingRecord, writes: CrossbarRecord["writes"]): Uint8Array {
  let size = 32;
  for (const w of writes) size += 8 + w.key.length + w.payload.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, size, true);
  view.setUint32(4, record.journal, true);
  view.setUint32(8, writes.length, true);
  view.setBigUint64(16, BigInt(record.tau), true);
  view.setBigUint64(24, BigInt(record.txn), true);
  let at = 32;
  for (const w of writes) {
    view.setUint32(at, w.key.length, true);
    view.setUint32(at + 4, w.payload.length, true);
    out.set(w.key, at + 8);
    out.set(w.payload, at + 8 + w.key.length);
    at += 8 + w.key.length + w.payload.length;
  }
  return out;
}

export class ModelCrossbar {
  readonly watermarks: number[];
  pending: PendingRecord[] = [];
  readonly subscribers: ModelSubscriber[];
  /** Every record released so far, in release order. */
  readonly releasedLog: { tau: number; journal: number }[] = [];

  constructor(journals: number, subscribers: readonly SubscriberConfig[]) {
    this.watermarks = new Array<number>(journals).fill(-1);
    this.subscribers = subscribers.map((s) => ({
      ranges: s.ranges,
      bufferBytesMax: s.bufferBytesMax,
      entries: [],
      used: 0,
      overflowed: false,
      overflowTau: -1,
      overflowJournal: -1,
    }));
  }

  get globalWatermark(): number {
    return Math.min(...this.watermarks);
  }

  /** Returns the error code the engines must throw, or null when accepted. */
  pushBatch(
    journal: number,
    records: readonly CrossbarRecord[],
    watermark: number,
  ): "out_of_order" | null {
    let previous = this.watermarks[journal];
    for (const r of records) {
      if (r.tau <= previous) return "out_of_order";
      previous = r.tau;
    }
    for (const r of records) this.pending.push({ ...r, journal });
    this.watermarks[journal] = Math.max(this.watermarks[journal], previous, watermark);
    return null;
  }

  advanceWatermark(journal: number, tau: number): void {
    this.watermarks[journal] = Math.max(this.watermarks[journal], tau);
  }

  release(maxRecords: number): ReleaseSummary {
    const gw = this.globalWatermark;
    const ready = this.pending
      .filter((r) => r.tau <= gw)
      .sort((a, b) => a.tau - b.tau || a.journal - b.journal)
      .slice(0, maxRecords);
    const taken = new Set(ready);
    this.pending = this.pending.filter((r) => !taken.has(r));
    let newlyOverflowed = 0;
    for (const record of ready) {
      this.releasedLog.push({ tau: record.tau, journal: record.journal });
      for (const s of this.subscribers) {
        if (s.overflowed) continue;
        const writes = record.writes.filter((w) => s.ranges.some((range) => inRange(range, w.key)));
        if (writes.length === 0) continue;
        const entry = encodeEntry(record, writes);
        if (s.used + entry.length > s.bufferBytesMax) {
          s.overflowed = true;
          s.overflowTau = record.tau;
          s.overflowJournal = record.journal;
          newlyOverflowed++;
          continue;
        }
        s.entries.push(entry);
        s.used += entry.length;
      }
    }
    const last = ready[ready.length - 1];
    return {
      released: ready.length,
      lastTau: last === undefined ? -1 : last.tau,
      lastJournal: last === undefined ? -1 : last.journal,
      globalWatermark: gw,
      newlyOverflowed,
      pendingRecords: this.pending.length,
    };
  }

  /** The bytes drainInto(subscriber, out of `capacity` bytes) must return. */
  drain(subscriber: number, capacity: number): Uint8Array {
    const s = this.subscribers[subscriber];
    const taken: Uint8Array[] = [];
    let size = 0;
    while (s.entries.length > 0 && size + s.entries[0].length <= capacity) {
      const entry = s.entries.shift() as Uint8Array;
      taken.push(entry);
      size += entry.length;
    }
    s.used -= size;
    const out = new Uint8Array(size);
    let at = 0;
    for (const e of taken) {
      out.set(e, at);
      at += e.length;
    }
    return out;
  }

  state(subscriber: number): SubscriberState {
    const s = this.subscribers[subscriber];
    return {
      overflowed: s.overflowed,
      overflowTau: s.overflowTau,
      overflowJournal: s.overflowJournal,
      bufferedBytes: s.used,
    };
  }

  reset(subscriber: number): void {
    const s = this.subscribers[subscriber];
    s.overflowed = false;
    s.overflowTau = -1;
    s.overflowJournal = -1;
    s.entries = [];
    s.used = 0;
  }
}
