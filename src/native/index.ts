/**
 * The one door to ordo's native addon (build/Release/ordo.node, built from
 * native/ by binding.gyp). Nothing else imports the .node file: every other
 * module calls the typed wrappers below, which validate each argument before
 * crossing the boundary (the C++ side checks again) and turn every native
 * rejection into one error class, `OrdoNativeError`, handed to the addon at
 * load (DESIGN §6, STYLE "Native code behind a safe door").
 *
 * Loading is lazy and never fatal: if the addon is missing or stale,
 * `nativeAvailable()` is false, `nativeLoadError()` says why, and callers use
 * the TypeScript twins (src/protocol/crc32c.ts, src/protocol/frame.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ScanResult, ScannedFrame } from "../protocol/frame";
import {
  frame_scan_error_codes,
  scan_frame_words,
  scan_meta_consumed,
  scan_meta_count,
  scan_meta_error,
  scan_meta_output_full,
  scan_meta_words,
  scan_window_bytes_max,
} from "../protocol/frame-scan-layout";
import {
  checkCrossbarOptions,
  checkTau,
  crossbar_batch_magic,
  crossbar_config_magic,
  crossbar_entry_header_bytes,
  crossbar_record_header_bytes,
  encodeConfig,
  type ReleaseSummary,
  type SubscriberConfig,
  type SubscriberState,
} from "../crossbar/format";
import {
  checkBatch,
  checkHorizon,
  conflict_batch_header_words,
  conflict_batch_magic,
  conflict_key_bytes_max,
  conflict_tickets_max,
  ConflictVerdict,
  TicketBook,
  type ConflictBatch,
} from "../adjudicator/conflict-batch";

/** Stable codes of errors raised at the native boundary. */
export type OrdoNativeErrorCode =
  | "invalid_argument"
  | "out_of_range"
  | "unavailable"
  | "internal"
  /** Crossbar (NativeCrossbar below): a rejected batch or configuration. */
  | "malformed"
  /** Crossbar: a tau not above its journal's last tau and watermark. */
  | "out_of_order"
  /** Crossbar: a call after close(). */
  | "closed";

/** The one error class of the native boundary; the addon throws it too. */
export class OrdoNativeError extends Error {
  readonly code: OrdoNativeErrorCode;

  constructor(message: string, code: OrdoNativeErrorCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "OrdoNativeError";
    this.code = code;
  }
}

/** What the addon exports (native/addon.cc and native/bind_*.cc). Unchecked: use the wrappers. */
export interface NativeBinding {
  setErrorClass(errorClass: new (message: string, code: OrdoNativeErrorCode) => Error): void;
  crc32c(data: Uint8Array, seed: number): number;
  /** The portable table path, whatever the CPU supports. */
  crc32cTable(data: Uint8Array, seed: number): number;
  scanFrames(buffer: Uint8Array, payloadBytesMax: number, out: Uint32Array): number;
  realtimeMicros(): number;
  readonly framePayloadBytesMax: number;
  readonly frameHeaderBytes: number;
  readonly scanMetaWords: number;
  readonly crc32cHardware: boolean;
}

/** Mirrors src/protocol/frame.ts; the addon's own copy is checked against it at load. */
const frame_payload_bytes_max = 16 * 1024 * 1024;
const frame_header_bytes = 12;
const u32_max = 0xffffffff;

/** Frames reported per native call; more frames mean another call on the rest. */
const scan_batch_frames_max = 4096;

/** Where the built addon lies relative to this file (compiled to dist/ or run from src/). */
const addon_candidates = [
  path.resolve(__dirname, "../../../build/Release/ordo.node"),
  path.resolve(__dirname, "../../build/Release/ordo.node"),
];

let loaded = false;
let binding: NativeBinding | null = null;
let loadError: Error | null = null;
let scanScratch: Uint32Array | null = null;

function load(): void {
  if (loaded) return;
  loaded = true;
  try {
    const file = addon_candidates.find((candidate) => fs.existsSync(candidate));
    if (file === undefined) {
      throw new Error(`ordo native addon not built: none of ${addon_candidates.join(", ")}`);
    }
    const holder: { exports: unknown } = { exports: {} };
    process.dlopen(holder, file);
    const candidate = holder.exports as NativeBinding;
    if (
      candidate.framePayloadBytesMax !== frame_payload_bytes_max ||
      candidate.frameHeaderBytes !== frame_header_bytes ||
      candidate.scanMetaWords !== scan_meta_words
    ) {
      throw new Error(`ordo native addon at ${file} is stale: its frame constants differ`);
    }
    candidate.setErrorClass(OrdoNativeError);
    binding = candidate;
  } catch (error) {
    loadError = error instanceof Error ? error : new Error(String(error));
    binding = null;
  }
}

function requireBinding(): NativeBinding {
  load();
  if (binding === null) {
    throw new OrdoNativeError("ordo native addon is not loaded", "unavailable", {
      cause: loadError,
    });
  }
  return binding;
}

function checkBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a Uint8Array or Buffer`);
  }
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== "number") throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

/** True when the addon loaded; the twins take over otherwise. */
export function nativeAvailable(): boolean {
  load();
  return binding !== null;
}

/** Why the addon did not load, or null when it did. */
export function nativeLoadError(): Error | null {
  load();
  return loadError;
}

/** True when native CRC32C uses the SSE4.2 instruction (false when not loaded). */
export function nativeCrc32cHardware(): boolean {
  load();
  return binding !== null && binding.crc32cHardware;
}

/** CRC32C of `data`, continuing from `seed` (a previous result; 0 to start). */
export function crc32cNative(data: Uint8Array, seed = 0): number {
  checkBytes(data, "data");
  checkInteger(seed, "seed", 0, u32_max);
  return requireBinding().crc32c(data, seed);
}

/** Native twin of scanFramesJs (src/protocol/frame.ts): same arguments, same result. */
export function scanFramesNative(buf: Uint8Array, payloadBytesMax: number): ScanResult {
  checkBytes(buf, "buf");
  checkInteger(payloadBytesMax, "payloadBytesMax", 0, frame_payload_bytes_max);
  const addon = requireBinding();
  scanScratch ??= new Uint32Array(scan_meta_words + scan_frame_words * scan_batch_frames_max);
  const out = scanScratch;
  const frames: ScannedFrame[] = [];
  let base = 0;
  for (;;) {
    const windowEnd = Math.min(buf.length, base + scan_window_bytes_max);
    const window = base === 0 && windowEnd === buf.length ? buf : buf.subarray(base, windowEnd);
    const count = addon.scanFrames(window, payloadBytesMax, out);
    const consumed = out[scan_meta_consumed];
    assertNative(count === out[scan_meta_count], "frame count disagrees");
    assertNative(consumed <= window.length, "consumed past the buffer");
    for (let i = 0; i < count; i++) {
      const at = scan_meta_words + i * scan_frame_words;
      frames.push({
        type: out[at],
        payloadOffset: base + out[at + 1],
        payloadLength: out[at + 2],
      });
    }
    const errorIndex = out[scan_meta_error];
    const code = frame_scan_error_codes[errorIndex];
    assertNative(code !== undefined, `unknown scan error ${errorIndex}`);
    if (code !== null) {
      return { frames, consumed: base + consumed, error: { code, offset: base + consumed } };
    }
    const windowTruncated = windowEnd < buf.length;
    if (out[scan_meta_output_full] === 1 || (windowTruncated && consumed > 0)) {
      base += consumed;
      continue;
    }
    assertNative(!windowTruncated, "a scan window held no whole frame");
    return { frames, consumed: base + consumed, error: null };
  }
}

/**
 * Native twin of scanFramesIntoJs (src/protocol/frame.ts): one native call
 * scans `buf` into `words` (scan_meta_words: count, consumed, error index,
 * output full; then type, payload offset, payload length per frame), at most
 * (words.length - 4) / 3 frames. Returns the frame count; allocates nothing.
 */
export function scanFramesIntoNative(buf: Uint8Array, payloadBytesMax: number, words: Uint32Array): number {
  checkBytes(buf, "buf");
  checkInteger(payloadBytesMax, "payloadBytesMax", 0, frame_payload_bytes_max);
  if (!(words instanceof Uint32Array) || words.length < scan_meta_words + scan_frame_words) {
    throw new TypeError("words must be a Uint32Array with room for one frame");
  }
  if (buf.length > u32_max) throw new RangeError("buf is longer than one scan may cover");
  const count = requireBinding().scanFrames(buf, payloadBytesMax, words);
  assertNative(count === words[scan_meta_count], "frame count disagrees");
  assertNative(words[scan_meta_consumed] <= buf.length, "consumed past the buffer");
  return count;
}

/** CLOCK_REALTIME in whole microseconds since the Unix epoch. */
export function realtimeMicros(): number {
  return requireBinding().realtimeMicros();
}

/**
 * The raw binding, without the wrapper's checks. Only test/native uses it, to
 * prove that the C++ side rejects bad arguments on its own.
 */
export function nativeBindingUnchecked(): NativeBinding {
  return requireBinding();
}

function assertNative(condition: boolean, what: string): asserts condition {
  if (!condition) throw new OrdoNativeError(`native scan invariant broken: ${what}`, "internal");
}

// ---------------------------------------------------------------------------
// Crossbar: merge and route (native/crossbar.{h,cc}); the public door is
// src/crossbar/, whose TypeScript twin is JsMergeEngine in src/crossbar/merge.ts.

/** The crossbar half of the addon's exports (native/bind_crossbar.cc). Unchecked: use NativeCrossbar. */
export interface NativeBinding {
  crossbarOpen(journals: number, config: Uint8Array): unknown;
  crossbarPushBatch(handle: unknown, journal: number, batch: Uint8Array, watermark: number): void;
  crossbarAdvanceWatermark(handle: unknown, journal: number, tau: number): void;
  crossbarRelease(handle: unknown, maxRecords: number, summary: Float64Array): number;
  crossbarDrainInto(handle: unknown, subscriber: number, out: Uint8Array): number;
  crossbarSubscriberState(handle: unknown, subscriber: number, out: Float64Array): void;
  crossbarResetSubscriber(handle: unknown, subscriber: number): void;
  crossbarGlobalWatermark(handle: unknown): number;
  crossbarClose(handle: unknown): void;
  readonly crossbarBatchMagic: number;
  readonly crossbarConfigMagic: number;
  readonly crossbarEntryHeaderBytes: number;
  readonly crossbarRecordHeaderBytes: number;
  readonly crossbarSummaryWords: number;
  readonly crossbarStateWords: number;
}

/** Layout of crossbarRelease's summary and crossbarSubscriberState's output. */
const crossbar_summary_words = 6;
const crossbar_state_words = 4;

/**
 * A native crossbar: records and subscriber buffers live in native memory.
 * Validates every argument before the native call (which checks again), owns
 * the handle (`close()`; the addon also frees it when the environment shuts
 * down), and throws OrdoNativeError "closed" after close. Summaries are
 * written into caller-owned objects, so the hot path makes no garbage.
 */
export class NativeCrossbar {
  #handle: unknown;
  #closed = false;
  readonly #addon: NativeBinding;
  readonly #summary = new Float64Array(crossbar_summary_words);
  readonly #state = new Float64Array(crossbar_state_words);
  readonly journals: number;
  readonly subscribers: number;

  constructor(journals: number, subscribers: readonly SubscriberConfig[]) {
    checkCrossbarOptions(journals, subscribers);
    const addon = requireBinding();
    if (
      addon.crossbarBatchMagic !== crossbar_batch_magic ||
      addon.crossbarConfigMagic !== crossbar_config_magic ||
      addon.crossbarEntryHeaderBytes !== crossbar_entry_header_bytes ||
      addon.crossbarRecordHeaderBytes !== crossbar_record_header_bytes ||
      addon.crossbarSummaryWords !== crossbar_summary_words ||
      addon.crossbarStateWords !== crossbar_state_words
    ) {
      throw new OrdoNativeError("ordo native addon is stale: its crossbar constants differ", "unavailable");
    }
    this.#addon = addon;
    this.journals = journals;
    this.subscribers = subscribers.length;
    this.#handle = addon.crossbarOpen(journals, encodeConfig(subscribers));
  }

  #open(): unknown {
    if (this.#closed) throw new OrdoNativeError("crossbar is closed", "closed");
    return this.#handle;
  }

  pushBatch(journal: number, batch: Uint8Array, watermark: number): void {
    const handle = this.#open();
    checkInteger(journal, "journal", 0, this.journals - 1);
    checkBytes(batch, "batch");
    checkTau(watermark, "watermark");
    this.#addon.crossbarPushBatch(handle, journal, batch, watermark);
  }

  advanceWatermark(journal: number, tau: number): void {
    const handle = this.#open();
    checkInteger(journal, "journal", 0, this.journals - 1);
    checkTau(tau, "tau");
    this.#addon.crossbarAdvanceWatermark(handle, journal, tau);
  }

  release(maxRecords: number, into: ReleaseSummary): ReleaseSummary {
    const handle = this.#open();
    checkInteger(maxRecords, "maxRecords", 0, Number.MAX_SAFE_INTEGER);
    const s = this.#summary;
    this.#addon.crossbarRelease(handle, maxRecords, s);
    into.released = s[0];
    into.lastTau = s[1];
    into.lastJournal = s[2];
    into.globalWatermark = s[3];
    into.newlyOverflowed = s[4];
    into.pendingRecords = s[5];
    return into;
  }

  drainInto(subscriber: number, out: Uint8Array): number {
    const handle = this.#open();
    checkInteger(subscriber, "subscriber", 0, this.subscribers - 1);
    checkBytes(out, "out");
    return this.#addon.crossbarDrainInto(handle, subscriber, out);
  }

  subscriberState(subscriber: number, into: SubscriberState): SubscriberState {
    const handle = this.#open();
    checkInteger(subscriber, "subscriber", 0, this.subscribers - 1);
    const s = this.#state;
    this.#addon.crossbarSubscriberState(handle, subscriber, s);
    into.overflowed = s[0] === 1;
    into.overflowTau = s[1];
    into.overflowJournal = s[2];
    into.bufferedBytes = s[3];
    return into;
  }

  resetSubscriber(subscriber: number): void {
    const handle = this.#open();
    checkInteger(subscriber, "subscriber", 0, this.subscribers - 1);
    this.#addon.crossbarResetSubscriber(handle, subscriber);
  }

  get globalWatermark(): number {
    return this.#addon.crossbarGlobalWatermark(this.#open());
  }

  /** Frees the native crossbar; later calls throw "closed". Closing twice is fine. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#addon.crossbarClose(this.#handle);
    this.#handle = null;
  }
}

// ---------------------------------------------------------------------------
// Journal record batches (native/records.{h,cc}); the public door is
// src/journal/record-buffer.ts, whose TypeScript twin is its "js" engine.

/** The record half of the addon's exports (native/bind_records.cc). Unchecked: use the wrappers. */
export interface NativeBinding {
  recordsEncoderOpen(initialBytes: number): unknown;
  recordsEncode(
    handle: unknown,
    taus: Float64Array,
    views: readonly Uint8Array[],
    count: number,
    out: Float64Array,
  ): ArrayBuffer | undefined;
  recordsEncoderClose(handle: unknown): void;
  recordsSeal(staged: Uint8Array, byteLength: number, count: number): void;
  recordsDecode(buffer: Uint8Array, lastTau: number, out: Float64Array): number;
  readonly recordsMetaWords: number;
  readonly recordsRecordWords: number;
  readonly recordsPayloadFixedBytes: number;
  readonly recordsBodyBytesMax: number;
}

/** Layout shared with native/bind_records.cc and src/journal/record-buffer.ts. */
export const records_meta_words = 6;
export const records_record_words = 4;
const records_payload_fixed_bytes = 37;
const records_body_bytes_max = 32 * 1024 * 1024;
const records_txn_id_bytes = 16;
const records_tau_max = Number.MAX_SAFE_INTEGER;
const records_batch_records_max = 1 << 20;
const records_initial_bytes_max = 64 * 1024 * 1024;

function recordsBinding(): NativeBinding {
  const addon = requireBinding();
  if (
    addon.recordsMetaWords !== records_meta_words ||
    addon.recordsRecordWords !== records_record_words ||
    addon.recordsPayloadFixedBytes !== records_payload_fixed_bytes ||
    addon.recordsBodyBytesMax !== records_body_bytes_max
  ) {
    throw new OrdoNativeError("ordo native addon is stale: its record constants differ", "unavailable");
  }
  return addon;
}

/**
 * A native record batch encoder: the encoded bytes live in a block the addon
 * owns (outside the V8 heap), lent to JavaScript as an external ArrayBuffer
 * that stays valid after the encoder grows or closes. One native call per
 * batch. Validates every argument first (the C++ side checks again).
 */
export class NativeRecordEncoder {
  #handle: unknown;
  #closed = false;
  readonly #addon: NativeBinding;
  readonly #out = new Float64Array(1);
  #block: ArrayBuffer | null = null;

  constructor(initialBytes: number) {
    checkInteger(initialBytes, "initialBytes", 1, records_initial_bytes_max);
    this.#addon = recordsBinding();
    this.#handle = this.#addon.recordsEncoderOpen(initialBytes);
  }

  /**
   * Encodes `count` records: taus[2i] = tau_commit, taus[2i+1] = tau_start,
   * views[2i] = txn id (16 bytes), views[2i+1] = body. Returns a view of the
   * encoded bytes, valid until the next encode.
   */
  encode(taus: Float64Array, views: readonly Uint8Array[], count: number): Uint8Array {
    if (this.#closed) throw new OrdoNativeError("record encoder is closed", "closed");
    checkInteger(count, "count", 0, records_batch_records_max);
    if (!(taus instanceof Float64Array) || taus.length < 2 * count) {
      throw new TypeError("taus must be a Float64Array of two numbers per record");
    }
    if (!Array.isArray(views) || views.length < 2 * count) {
      throw new TypeError("views must be an array of a txn id and a body per record");
    }
    for (let i = 0; i < count; i++) {
      checkInteger(taus[2 * i], "tau_commit", 1, records_tau_max);
      checkInteger(taus[2 * i + 1], "tau_start", 0, records_tau_max);
      const txnId = views[2 * i];
      const body = views[2 * i + 1];
      checkBytes(txnId, "txn id");
      checkBytes(body, "body");
      if (txnId.length !== records_txn_id_bytes) throw new RangeError("txn id must be 16 bytes");
      if (body.length > records_body_bytes_max) throw new RangeError("body too large");
    }
    const lent = this.#addon.recordsEncode(this.#handle, taus, views, count, this.#out);
    if (lent !== undefined) this.#block = lent;
    const block = this.#block;
    assertNative(block !== null, "no record block lent");
    const length = this.#out[0];
    assertNative(length <= block.byteLength, "encoded past the block");
    return new Uint8Array(block, 0, length);
  }

  /** Frees the encoder; views it returned stay readable. Closing twice is fine. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#addon.recordsEncoderClose(this.#handle);
    this.#handle = null;
    this.#block = null;
  }
}

/**
 * Seals `count` records staged in wire layout in staged[0, byteLength) (see
 * RecordBatchEncoder in src/journal/record-buffer.ts): one native call checks
 * them all and writes each record's CRC32C into its slot. Throws
 * OrdoNativeError "malformed" (and changes nothing) when the bytes do not
 * parse as `count` records in bounds.
 */
export function sealRecordsNative(staged: Uint8Array, byteLength: number, count: number): void {
  checkBytes(staged, "staged");
  checkInteger(byteLength, "byteLength", 0, staged.length);
  checkInteger(count, "count", 0, records_batch_records_max);
  recordsBinding().recordsSeal(staged, byteLength, count);
}

/**
 * Native twin of decodeRecordsJs (src/journal/record-buffer.ts): decodes
 * `buffer` into `words` (records_meta_words, then records_record_words per
 * record) and returns the record count.
 */
export function decodeRecordsNative(buffer: Uint8Array, lastTau: number, words: Float64Array): number {
  checkBytes(buffer, "buffer");
  checkInteger(lastTau, "lastTau", 0, records_tau_max);
  if (!(words instanceof Float64Array) || words.length < records_meta_words + records_record_words) {
    throw new TypeError("words must be a Float64Array with room for one record");
  }
  return recordsBinding().recordsDecode(buffer, lastTau, words);
}

// ---------------------------------------------------------------------------
// Conflict table (native/conflict_table.{h,cc}); the public door is
// src/adjudicator/, whose TypeScript twin is JsConflictTable in
// src/adjudicator/conflict-table.ts. Batches use the format of
// src/adjudicator/conflict-batch.ts (docs/adjudicator.md).

/** The conflict table half of the addon's exports (native/bind_conflict_table.cc). Unchecked: use NativeConflictTable. */
export interface NativeBinding {
  conflictTableOpen(horizonTau: number): unknown;
  conflictTableDetect(
    handle: unknown,
    index: Uint32Array,
    taus: Float64Array,
    keyBytes: Uint8Array,
    verdicts: Uint8Array,
    details: Uint32Array,
    conflictTaus: Float64Array,
  ): void;
  conflictTableRegister(handle: unknown, index: Uint32Array, taus: Float64Array, keyBytes: Uint8Array): void;
  conflictTableCommit(handle: unknown, tickets: Uint32Array, taus: Float64Array, count: number): void;
  conflictTableAbort(handle: unknown, tickets: Uint32Array, count: number): void;
  conflictTableForget(handle: unknown, horizonTau: number): void;
  conflictTableState(handle: unknown, out: Float64Array): void;
  conflictTableClose(handle: unknown): void;
  readonly conflictBatchMagic: number;
  readonly conflictBatchHeaderWords: number;
  readonly conflictKeyBytesMax: number;
  readonly conflictStateWords: number;
}

/** Layout of conflictTableState's output: keyCount, inFlightCount, horizonTau. */
const conflict_state_words = 3;

/**
 * A native conflict table (implements src/adjudicator's ConflictTable): keys,
 * entries and history live in native memory. Validates every argument before
 * the native call (which checks again), mirrors ticket ids in a TicketBook so
 * that unknown or repeated tickets are refused here first, owns the handle
 * (`close()`; the addon also frees it on environment shutdown), and throws
 * OrdoNativeError "closed" after close. One call per batch; no garbage.
 */
export class NativeConflictTable {
  readonly engine = "native" as const;
  #handle: unknown;
  #closed = false;
  readonly #addon: NativeBinding;
  readonly #state = new Float64Array(conflict_state_words);
  readonly #book = new TicketBook();

  constructor(horizonTau: number = Number.MIN_SAFE_INTEGER) {
    checkHorizon(horizonTau, Number.MIN_SAFE_INTEGER);
    const addon = requireBinding();
    if (
      addon.conflictBatchMagic !== conflict_batch_magic ||
      addon.conflictBatchHeaderWords !== conflict_batch_header_words ||
      addon.conflictKeyBytesMax !== conflict_key_bytes_max ||
      addon.conflictStateWords !== conflict_state_words
    ) {
      throw new OrdoNativeError("ordo native addon is stale: its conflict table constants differ", "unavailable");
    }
    this.#addon = addon;
    this.#handle = addon.conflictTableOpen(horizonTau);
  }

  #open(): unknown {
    if (this.#closed) throw new OrdoNativeError("conflict table is closed", "closed");
    return this.#handle;
  }

  detect(batch: ConflictBatch): void {
    const handle = this.#open();
    const txnCount = checkBatch(batch);
    if (this.#book.liveCount + txnCount > conflict_tickets_max) {
      throw new RangeError("batch could exceed conflict_tickets_max in flight");
    }
    const { verdicts, details } = batch;
    this.#addon.conflictTableDetect(
      handle,
      batch.index,
      batch.taus,
      batch.keyBytes,
      verdicts,
      details,
      batch.conflictTaus,
    );
    for (let txn = 0; txn < txnCount; txn++) {
      if (verdicts[txn] !== ConflictVerdict.Approved) continue;
      const ticket = this.#book.allocate(batch.taus[txn]);
      if (ticket !== details[txn]) {
        throw new OrdoNativeError(`native ticket ${details[txn]} differs from ${ticket}`, "internal");
      }
    }
  }

  register(batch: ConflictBatch): void {
    const handle = this.#open();
    checkBatch(batch);
    this.#addon.conflictTableRegister(handle, batch.index, batch.taus, batch.keyBytes);
  }

  commitBatch(tickets: Uint32Array, taus: Float64Array, count: number): void {
    const handle = this.#open();
    this.#book.check(tickets, taus, count);
    this.#addon.conflictTableCommit(handle, tickets, taus, count);
    for (let i = 0; i < count; i++) this.#book.release(tickets[i]);
  }

  abortBatch(tickets: Uint32Array, count: number): void {
    const handle = this.#open();
    this.#book.check(tickets, null, count);
    this.#addon.conflictTableAbort(handle, tickets, count);
    for (let i = 0; i < count; i++) this.#book.release(tickets[i]);
  }

  forgetBefore(horizonTau: number): void {
    const handle = this.#open();
    checkHorizon(horizonTau, this.horizonTau);
    this.#addon.conflictTableForget(handle, horizonTau);
  }

  get keyCount(): number {
    return this.#readState()[0];
  }

  get inFlightCount(): number {
    return this.#readState()[1];
  }

  get horizonTau(): number {
    return this.#readState()[2];
  }

  /** Frees the native table; later calls throw "closed". Closing twice is fine. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#addon.conflictTableClose(this.#handle);
    this.#handle = null;
  }

  #readState(): Float64Array {
    this.#addon.conflictTableState(this.#open(), this.#state);
    return this.#state;
  }
}
