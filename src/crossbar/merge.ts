/**
 * The crossbar's hot path, merge and route, with two engines behind one class.
 *
 * K-way merge via a loser tree: journal streams arrive in batches, each in
 * strictly increasing tau_commit; records leave in (tau_commit, journal id)
 * order and only up to the global watermark min_j W_j (DESIGN §3 invariant 3),
 * so every subscriber sees the same order. Each released record's writes are
 * routed to every subscriber whose key ranges hold the write's key, as one
 * encoded entry per (record, subscriber) in a bounded buffer; a subscriber
 * whose buffer cannot take the next entry is marked overflowed at that record
 * and skipped from then on, never blocking the others.
 *
 * `JsMergeEngine` is the TypeScript twin and the reference; `NativeMergeEngine`
 * wraps native/crossbar.{h,cc} through src/native. Property tests check that
 * both give identical results; bench/crossbar.ts runs them side by side.
 */
import { nativeAvailable, NativeCrossbar } from "../native";
import {
  checkBytes,
  checkCrossbarOptions,
  checkInteger,
  checkTau,
  CrossbarError,
  crossbar_batch_bytes_max,
  crossbar_batch_header_bytes,
  crossbar_batch_magic,
  crossbar_entry_header_bytes,
  crossbar_key_bytes_max,
  crossbar_payload_bytes_max,
  crossbar_record_header_bytes,
  crossbar_tau_max,
  crossbar_watermark_none,
  crossbar_write_header_bytes,
  crossbar_writes_per_record_max,
  emptyReleaseSummary,
  emptySubscriberState,
  getU64,
  type ReleaseSummary,
  type SubscriberConfig,
  type SubscriberState,
} from "./format";

export type EngineKind = "native" | "js";

/** What both engines implement; CrossbarMerge is the door that callers use. */
export interface MergeEngine {
  readonly kind: EngineKind;
  /** Appends a batch of journal records, then raises W_journal to `watermark` (-1: records only). */
  pushBatch(journal: number, batch: Uint8Array, watermark: number): void;
  /** Raises W_journal to `tau`; a lower value changes nothing. */
  advanceWatermark(journal: number, tau: number): void;
  /** Merges and routes up to `maxRecords` records at or below the global watermark. */
  release(maxRecords: number, into: ReleaseSummary): ReleaseSummary;
  /** Moves the longest prefix of whole entries that fits into `out`; returns its length. */
  drainInto(subscriber: number, out: Uint8Array): number;
  subscriberState(subscriber: number, into: SubscriberState): SubscriberState;
  /** Clears the overflow mark and buffer (after the subscriber was caught up elsewhere). */
  resetSubscriber(subscriber: number): void;
  readonly globalWatermark: number;
  close(): void;
}

/** A journal's accepted batch, copied, with its records' positions. */
interface Chunk {
  bytes: Uint8Array;
  view: DataView;
  taus: Float64Array;
  offsets: Uint32Array;
  count: number;
  next: number;
}

interface JsSubscriber {
  ranges: { lo: Uint8Array; hi: Uint8Array }[];
  bufferBytesMax: number;
  buffer: Uint8Array;
  view: DataView;
  used: number;
  overflowed: boolean;
  overflowTau: number;
  overflowJournal: number;
}

const buffer_initial_bytes = 4096;
const u32_span = 0x1_0000_0000;
/** Writes shorter than this are copied byte by byte (no subarray view to collect). */
const copy_loop_bytes_max = 64;

/** The TypeScript twin of native/crossbar.{h,cc}: same checks, same order, same bytes. */
export class JsMergeEngine implements MergeEngine {
  readonly kind = "js" as const;
  readonly #journals: number;
  readonly #chunks: Chunk[][];
  readonly #chunkHead: Uint32Array;
  readonly #watermarks: Float64Array;
  readonly #headTau: Float64Array;
  readonly #losers: Uint32Array;
  #winner = 0;
  #treeDirty = true;
  #globalWatermark = crossbar_watermark_none;
  #pending = 0;
  #closed = false;
  readonly #subscribers: JsSubscriber[];
  #match = new Uint8Array(16);
  #writeOffsets = new Uint32Array(17);

  constructor(journals: number, subscribers: readonly SubscriberConfig[]) {
    checkCrossbarOptions(journals, subscribers);
    this.#journals = journals;
    this.#chunks = Array.from({ length: journals }, () => []);
    this.#chunkHead = new Uint32Array(journals);
    this.#watermarks = new Float64Array(journals).fill(crossbar_watermark_none);
    this.#headTau = new Float64Array(journals).fill(Infinity);
    this.#losers = new Uint32Array(journals);
    this.#subscribers = subscribers.map((config) => {
      const buffer = new Uint8Array(Math.min(buffer_initial_bytes, config.bufferBytesMax));
      return {
        ranges: config.ranges.map(([lo, hi]) => ({ lo: lo.slice(), hi: hi.slice() })),
        bufferBytesMax: config.bufferBytesMax,
        buffer,
        view: new DataView(buffer.buffer),
        used: 0,
        overflowed: false,
        overflowTau: -1,
        overflowJournal: -1,
      };
    });
  }

  #open(): void {
    if (this.#closed) throw new CrossbarError("crossbar is closed", "closed");
  }

  pushBatch(journal: number, batch: Uint8Array, watermark: number): void {
    this.#open();
    checkInteger(journal, "journal", 0, this.#journals - 1);
    checkBytes(batch, "batch");
    checkTau(watermark, "watermark");
    if (batch.length > crossbar_batch_bytes_max) {
      throw new CrossbarError("batch longer than crossbar_batch_bytes_max", "malformed");
    }
    const malformed = (what: string): CrossbarError =>
      new CrossbarError(`batch: ${what}`, "malformed");
    const headerView = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    if (
      batch.length < crossbar_batch_header_bytes ||
      headerView.getUint32(0, true) !== crossbar_batch_magic
    ) {
      throw malformed("bad header");
    }
    const count = headerView.getUint32(4, true);
    if (
      count >
      Math.floor((batch.length - crossbar_batch_header_bytes) / crossbar_record_header_bytes)
    ) {
      throw malformed("record count exceeds its bytes");
    }
    // From here on, read only the copy: the caller cannot change it under us.
    const bytes = batch.slice();
    const view = new DataView(bytes.buffer);
    const taus = new Float64Array(count);
    const offsets = new Uint32Array(count);
    let previous = this.#watermarks[journal];
    let at = crossbar_batch_header_bytes;
    for (let i = 0; i < count; i++) {
      const remaining = bytes.length - at;
      if (remaining < crossbar_record_header_bytes) throw malformed("truncated record header");
      const recordBytes = view.getUint32(at, true);
      const writeCount = view.getUint32(at + 4, true);
      if (recordBytes < crossbar_record_header_bytes || recordBytes > remaining) {
        throw malformed("record length out of bounds");
      }
      if (
        writeCount > crossbar_writes_per_record_max ||
        writeCount >
          Math.floor((recordBytes - crossbar_record_header_bytes) / crossbar_write_header_bytes)
      ) {
        throw malformed("write count out of bounds");
      }
      const tau = getU64(view, at + 8);
      if (tau < 0) throw malformed("tau out of range");
      if (tau <= previous) {
        throw new CrossbarError(
          `batch: tau ${tau} is not above ${previous} (last tau or watermark of journal ${journal})`,
          "out_of_order",
        );
      }
      let w = at + crossbar_record_header_bytes;
      const end = at + recordBytes;
      for (let k = 0; k < writeCount; k++) {
        if (end - w < crossbar_write_header_bytes) throw malformed("truncated write header");
        const keyLength = view.getUint32(w, true);
        const payloadLength = view.getUint32(w + 4, true);
        if (
          keyLength > crossbar_key_bytes_max ||
          payloadLength > crossbar_payload_bytes_max ||
          end - w - crossbar_write_header_bytes < keyLength + payloadLength
        ) {
          throw malformed("write length out of bounds");
        }
        w += crossbar_write_header_bytes + keyLength + payloadLength;
      }
      if (w !== end) throw malformed("record length disagrees with writes");
      taus[i] = tau;
      offsets[i] = at;
      previous = tau;
      at = end;
    }
    if (at !== bytes.length) throw malformed("trailing bytes");
    if (count > 0) {
      const queue = this.#chunks[journal];
      if (this.#chunkHead[journal] === queue.length) {
        this.#headTau[journal] = taus[0];
        this.#treeDirty = true;
      }
      queue.push({ bytes, view, taus, offsets, count, next: 0 });
      this.#pending += count;
    }
    // Records advance the watermark too: nothing at or below them can follow.
    this.#raiseWatermark(journal, Math.max(previous, watermark));
  }

  advanceWatermark(journal: number, tau: number): void {
    this.#open();
    checkInteger(journal, "journal", 0, this.#journals - 1);
    checkTau(tau, "tau");
    this.#raiseWatermark(journal, tau);
  }

  #raiseWatermark(journal: number, tau: number): void {
    if (tau <= this.#watermarks[journal]) return;
    this.#watermarks[journal] = tau;
    let minimum = Infinity;
    for (let j = 0; j < this.#journals; j++) minimum = Math.min(minimum, this.#watermarks[j]);
    assert(minimum >= this.#globalWatermark, "global watermark moved back");
    this.#globalWatermark = minimum;
  }

  get globalWatermark(): number {
    this.#open();
    return this.#globalWatermark;
  }

  #beats(a: number, b: number): boolean {
    const ta = this.#headTau[a];
    const tb = this.#headTau[b];
    return ta < tb || (ta === tb && a < b);
  }

  #rebuildTree(): void {
    const k = this.#journals;
    this.#treeDirty = false;
    if (k === 1) {
      this.#winner = 0;
      return;
    }
    const winners = new Uint32Array(2 * k);
    for (let j = 0; j < k; j++) winners[k + j] = j;
    for (let n = k - 1; n >= 1; n--) {
      const a = winners[2 * n];
      const b = winners[2 * n + 1];
      if (this.#beats(a, b)) {
        winners[n] = a;
        this.#losers[n] = b;
      } else {
        winners[n] = b;
        this.#losers[n] = a;
      }
    }
    this.#winner = winners[1];
  }

  #replayWinner(): void {
    let candidate = this.#winner;
    const losers = this.#losers;
    for (let node = (this.#journals + candidate) >>> 1; node >= 1; node >>>= 1) {
      const loser = losers[node];
      if (this.#beats(loser, candidate)) {
        losers[node] = candidate;
        candidate = loser;
      }
    }
    this.#winner = candidate;
  }

  release(maxRecords: number, into: ReleaseSummary): ReleaseSummary {
    this.#open();
    checkInteger(maxRecords, "maxRecords", 0, Number.MAX_SAFE_INTEGER);
    if (this.#treeDirty) this.#rebuildTree();
    let released = 0;
    let lastTau = -1;
    let lastJournal = -1;
    let newlyOverflowed = 0;
    const headTau = this.#headTau;
    while (released < maxRecords) {
      const j = this.#winner;
      const tau = headTau[j];
      // Invariant 3: never above min_j W_j (an empty journal's Infinity is above everything).
      if (tau > this.#globalWatermark) break;
      const queue = this.#chunks[j];
      const chunk = queue[this.#chunkHead[j]];
      assert(chunk !== undefined && chunk.taus[chunk.next] === tau, "head tau disagrees");
      newlyOverflowed += this.#route(j, chunk, chunk.offsets[chunk.next], tau);
      released++;
      lastTau = tau;
      lastJournal = j;
      this.#pending--;
      chunk.next++;
      if (chunk.next === chunk.count) {
        const head = ++this.#chunkHead[j];
        if (head === queue.length) {
          queue.length = 0;
          this.#chunkHead[j] = 0;
          headTau[j] = Infinity;
        } else {
          headTau[j] = queue[head].taus[0];
        }
      } else {
        headTau[j] = chunk.taus[chunk.next];
      }
      this.#replayWinner();
    }
    into.released = released;
    into.lastTau = lastTau;
    into.lastJournal = lastJournal;
    into.globalWatermark = this.#globalWatermark;
    into.newlyOverflowed = newlyOverflowed;
    into.pendingRecords = this.#pending;
    return into;
  }

  /** Routes one record; returns how many subscribers overflowed on it. */
  #route(journal: number, chunk: Chunk, offset: number, tau: number): number {
    const { bytes, view } = chunk;
    const writeCount = view.getUint32(offset + 4, true);
    if (writeCount === 0 || this.#subscribers.length === 0) return 0;
    if (this.#match.length < writeCount) {
      this.#match = new Uint8Array(writeCount);
      this.#writeOffsets = new Uint32Array(writeCount + 1);
    }
    const match = this.#match;
    const writeOffsets = this.#writeOffsets;
    let at = offset + crossbar_record_header_bytes;
    for (let w = 0; w < writeCount; w++) {
      writeOffsets[w] = at;
      at += crossbar_write_header_bytes + view.getUint32(at, true) + view.getUint32(at + 4, true);
    }
    writeOffsets[writeCount] = at;
    let overflowed = 0;
    for (const subscriber of this.#subscribers) {
      if (subscriber.overflowed) continue;
      let entryBytes = crossbar_entry_header_bytes;
      let matched = 0;
      for (let w = 0; w < writeCount; w++) {
        const writeAt = writeOffsets[w];
        const keyAt = writeAt + crossbar_write_header_bytes;
        const hit = contains(subscriber, bytes, keyAt, view.getUint32(writeAt, true));
        match[w] = hit ? 1 : 0;
        if (hit) {
          matched++;
          entryBytes += writeOffsets[w + 1] - writeAt;
        }
      }
      if (matched === 0) continue;
      if (subscriber.used + entryBytes > subscriber.bufferBytesMax) {
        // Reported, never overwritten; the others keep receiving.
        subscriber.overflowed = true;
        subscriber.overflowTau = tau;
        subscriber.overflowJournal = journal;
        overflowed++;
        continue;
      }
      ensureCapacity(subscriber, subscriber.used + entryBytes);
      const out = subscriber.buffer;
      const outView = subscriber.view;
      const start = subscriber.used;
      outView.setUint32(start, entryBytes, true);
      outView.setUint32(start + 4, journal, true);
      outView.setUint32(start + 8, matched, true);
      outView.setUint32(start + 12, 0, true);
      outView.setUint32(start + 16, tau % u32_span, true);
      outView.setUint32(start + 20, Math.floor(tau / u32_span), true);
      for (let i = 0; i < 8; i++) out[start + 24 + i] = bytes[offset + 16 + i]; // txn, as sent
      let put = start + crossbar_entry_header_bytes;
      for (let w = 0; w < writeCount; w++) {
        if (match[w] === 0) continue;
        const from = writeOffsets[w];
        const length = writeOffsets[w + 1] - from;
        if (length <= copy_loop_bytes_max) {
          for (let i = 0; i < length; i++) out[put + i] = bytes[from + i];
        } else {
          out.set(bytes.subarray(from, from + length), put);
        }
        put += length;
      }
      assert(put === start + entryBytes, "entry length disagrees with writes");
      subscriber.used = put;
    }
    return overflowed;
  }

  drainInto(subscriber: number, out: Uint8Array): number {
    this.#open();
    checkInteger(subscriber, "subscriber", 0, this.#subscribers.length - 1);
    checkBytes(out, "out");
    const s = this.#subscribers[subscriber];
    let length = s.used;
    if (length > out.length) {
      length = 0;
      while (length < s.used) {
        const entry = s.view.getUint32(length, true);
        if (entry > out.length - length) break;
        length += entry;
      }
    }
    if (length === 0) return 0;
    out.set(s.buffer.subarray(0, length));
    s.buffer.copyWithin(0, length, s.used);
    s.used -= length;
    return length;
  }

  subscriberState(subscriber: number, into: SubscriberState): SubscriberState {
    this.#open();
    checkInteger(subscriber, "subscriber", 0, this.#subscribers.length - 1);
    const s = this.#subscribers[subscriber];
    into.overflowed = s.overflowed;
    into.overflowTau = s.overflowTau;
    into.overflowJournal = s.overflowJournal;
    into.bufferedBytes = s.used;
    return into;
  }

  resetSubscriber(subscriber: number): void {
    this.#open();
    checkInteger(subscriber, "subscriber", 0, this.#subscribers.length - 1);
    const s = this.#subscribers[subscriber];
    s.overflowed = false;
    s.overflowTau = -1;
    s.overflowJournal = -1;
    s.used = 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks.forEach((queue) => (queue.length = 0));
    for (const s of this.#subscribers) {
      s.buffer = new Uint8Array(0);
      s.view = new DataView(s.buffer.buffer);
      s.used = 0;
    }
  }
}

function contains(
  subscriber: JsSubscriber,
  bytes: Uint8Array,
  keyAt: number,
  keyLength: number,
): boolean {
  for (const range of subscriber.ranges) {
    if (compareAt(bytes, keyAt, keyLength, range.lo) < 0) continue;
    if (range.hi.length === 0 || compareAt(bytes, keyAt, keyLength, range.hi) < 0) return true;
  }
  return false;
}

/** compareKeys(bytes[at, at + length), key) without making a view. */
function compareAt(bytes: Uint8Array, at: number, length: number, key: Uint8Array): number {
  const common = Math.min(length, key.length);
  for (let i = 0; i < common; i++) {
    const d = bytes[at + i] - key[i];
    if (d !== 0) return d;
  }
  return length - key.length;
}

function ensureCapacity(s: JsSubscriber, bytes: number): void {
  if (bytes <= s.buffer.length) return;
  let size = Math.max(s.buffer.length, 1);
  while (size < bytes) size *= 2;
  const grown = new Uint8Array(Math.min(size, s.bufferBytesMax));
  grown.set(s.buffer.subarray(0, s.used));
  s.buffer = grown;
  s.view = new DataView(grown.buffer);
}

function assert(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`crossbar invariant broken: ${what}`);
}

/** The native engine: native/crossbar.{h,cc} through src/native's NativeCrossbar. */
export class NativeMergeEngine implements MergeEngine {
  readonly kind = "native" as const;
  readonly #crossbar: NativeCrossbar;

  constructor(journals: number, subscribers: readonly SubscriberConfig[]) {
    this.#crossbar = new NativeCrossbar(journals, subscribers);
  }

  pushBatch(journal: number, batch: Uint8Array, watermark: number): void {
    this.#crossbar.pushBatch(journal, batch, watermark);
  }

  advanceWatermark(journal: number, tau: number): void {
    this.#crossbar.advanceWatermark(journal, tau);
  }

  release(maxRecords: number, into: ReleaseSummary): ReleaseSummary {
    return this.#crossbar.release(maxRecords, into);
  }

  drainInto(subscriber: number, out: Uint8Array): number {
    return this.#crossbar.drainInto(subscriber, out);
  }

  subscriberState(subscriber: number, into: SubscriberState): SubscriberState {
    return this.#crossbar.subscriberState(subscriber, into);
  }

  resetSubscriber(subscriber: number): void {
    this.#crossbar.resetSubscriber(subscriber);
  }

  get globalWatermark(): number {
    return this.#crossbar.globalWatermark;
  }

  close(): void {
    this.#crossbar.close();
  }
}

export interface CrossbarMergeOptions {
  journals: number;
  subscribers: readonly SubscriberConfig[];
  /** Default: "native" when the addon is loaded, else "js". */
  engine?: EngineKind;
}

/** An overflowed subscriber and the first record it missed. */
export interface OverflowReport {
  subscriber: number;
  tau: number;
  journal: number;
}

/** The crossbar merge door: one class, either engine. */
export class CrossbarMerge {
  readonly #engine: MergeEngine;
  readonly #summary = emptyReleaseSummary();
  readonly #state = emptySubscriberState();
  readonly journals: number;
  readonly subscribers: number;

  constructor(options: CrossbarMergeOptions) {
    if (typeof options !== "object" || options === null)
      throw new TypeError("options must be an object");
    const { journals, subscribers, engine } = options;
    checkCrossbarOptions(journals, subscribers);
    const kind = engine ?? (nativeAvailable() ? "native" : "js");
    if (kind !== "native" && kind !== "js") throw new TypeError(`engine must be "native" or "js"`);
    this.#engine =
      kind === "native"
        ? new NativeMergeEngine(journals, subscribers)
        : new JsMergeEngine(journals, subscribers);
    this.journals = journals;
    this.subscribers = subscribers.length;
  }

  get engine(): EngineKind {
    return this.#engine.kind;
  }

  /** Appends a batch (docs/crossbar.md) to `journal`, then raises W_journal to `watermark`. */
  pushBatch(journal: number, batch: Uint8Array, watermark: number = crossbar_watermark_none): void {
    this.#engine.pushBatch(journal, batch, watermark);
  }

  advanceWatermark(journal: number, tau: number): void {
    this.#engine.advanceWatermark(journal, tau);
  }

  /**
   * Merges and routes up to `maxRecords` records. The summary object is reused:
   * it is overwritten by the next call.
   */
  release(maxRecords: number = crossbar_tau_max): Readonly<ReleaseSummary> {
    return this.#engine.release(maxRecords, this.#summary);
  }

  /** Every buffered entry of `subscriber`, in a new array; frees the buffer. */
  drain(subscriber: number): Uint8Array {
    const out = new Uint8Array(this.#engine.subscriberState(subscriber, this.#state).bufferedBytes);
    const length = this.#engine.drainInto(subscriber, out);
    assert(length === out.length, "drain left bytes behind");
    return out;
  }

  /** Drains whole entries into a caller-owned buffer (no garbage); returns the bytes written. */
  drainInto(subscriber: number, out: Uint8Array): number {
    return this.#engine.drainInto(subscriber, out);
  }

  subscriberState(subscriber: number): SubscriberState {
    return this.#engine.subscriberState(subscriber, emptySubscriberState());
  }

  /** Overflowed subscribers and where each stopped. */
  overflows(): OverflowReport[] {
    const reports: OverflowReport[] = [];
    for (let s = 0; s < this.subscribers; s++) {
      const state = this.#engine.subscriberState(s, this.#state);
      if (state.overflowed)
        reports.push({ subscriber: s, tau: state.overflowTau, journal: state.overflowJournal });
    }
    return reports;
  }

  resetSubscriber(subscriber: number): void {
    this.#engine.resetSubscriber(subscriber);
  }

  /** min_j W_j, or -1 while some journal has published no watermark. */
  get globalWatermark(): number {
    return this.#engine.globalWatermark;
  }

  close(): void {
    this.#engine.close();
  }
}
