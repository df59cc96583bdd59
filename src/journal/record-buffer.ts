/**
 * Journal commit records a batch at a time (DESIGN §6): `RecordBatchEncoder`
 * encodes a group-commit batch into one buffer, and `decodeRecords` validates
 * a buffer of records into a reusable `RecordIndex` (offsets and taus) in one
 * call. Each has two engines with the same results, byte for byte:
 *
 * - "native": native/records.cc through src/native. `add` writes each record
 *   in wire layout into a reused staging buffer; `encode` is one boundary
 *   crossing per batch that checks the staged bytes and writes every CRC32C
 *   (SSE4.2 when the CPU has it) in place. Steady state makes no per-record
 *   garbage.
 * - "js": the TypeScript twin below (same staging, CRC32C by crc32cJs),
 *   the reference the property tests compare the native engine with.
 *
 * The format is src/journal/record.ts's (docs/journal.md). The decoder checks
 * in the same order as `decodeRecord` there, and stops at the first record it
 * rejects: `consumed` is the last good offset, where a torn tail is cut.
 */
import { crc32cRange } from "../protocol/crc32c";
import {
  decodeRecordsNative,
  nativeAvailable,
  sealRecordsNative,
  records_meta_words,
  records_record_words,
} from "../native";
import {
  commit_payload_fixed_bytes,
  record_body_bytes_max,
  record_header_bytes,
  record_payload_bytes_max,
  record_type_commit,
  txn_id_bytes,
  type CommitRecord,
} from "./record";

export type RecordEngine = "native" | "js";

/** Why decoding stopped; the index is the native RecordError value (native/records.h). */
export type RecordDecodeErrorCode =
  /** Fewer bytes than the record needs: a torn write, or read more (`need`). */
  | "short"
  | "length_out_of_bounds"
  | "checksum"
  | "unknown_type"
  | "body_length"
  | "tau_commit_range"
  | "tau_start_range"
  | "tau_not_increasing";

export const record_decode_error_codes: readonly (RecordDecodeErrorCode | null)[] = [
  null,
  "short",
  "length_out_of_bounds",
  "checksum",
  "unknown_type",
  "body_length",
  "tau_commit_range",
  "tau_start_range",
  "tau_not_increasing",
];

/** Records a RecordIndex holds unless told otherwise. */
export const record_index_capacity_default = 4096;
/** Encoder buffer before the first batch that needs more. */
export const record_encoder_initial_bytes = 64 * 1024;
const record_batch_records_max = 1 << 20;
const record_batch_bytes_max = 1024 * 1024 * 1024;
const tau_max = Number.MAX_SAFE_INTEGER;
const two_to_32 = 0x1_0000_0000;
/** High u32 word of the largest tau (2^53 - 1). */
const tau_high_max = 0x1f_ffff;

const meta_count = 0;
const meta_consumed = 1;
const meta_error = 2;
const meta_need = 3;
const meta_output_full = 4;
const meta_last_tau = 5;

/** The engine used when none is asked for: native when the addon is loaded. */
export function defaultRecordEngine(): RecordEngine {
  return nativeAvailable() ? "native" : "js";
}

function resolveEngine(engine: RecordEngine | undefined): RecordEngine {
  if (engine === undefined) return defaultRecordEngine();
  if (engine !== "native" && engine !== "js") {
    throw new TypeError(`engine must be "native" or "js", got ${String(engine)}`);
  }
  return engine;
}

/**
 * Where the records of one decoded buffer are, and why decoding stopped.
 * Reused across calls: `words` holds records_meta_words, then
 * records_record_words per record (offset, payload length, tau_commit,
 * tau_start), the layout the native decoder writes.
 */
export class RecordIndex {
  readonly capacity: number;
  readonly words: Float64Array;

  constructor(capacity = record_index_capacity_default) {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > record_batch_records_max) {
      throw new RangeError(`capacity must be an integer in [1, ${record_batch_records_max}]`);
    }
    this.capacity = capacity;
    this.words = new Float64Array(records_meta_words + records_record_words * capacity);
  }

  get count(): number {
    return this.words[meta_count];
  }
  /** End of the last good record: where the next decode starts, or where a torn tail is cut. */
  get consumed(): number {
    return this.words[meta_consumed];
  }
  get error(): RecordDecodeErrorCode | null {
    const code = record_decode_error_codes[this.words[meta_error]];
    assert(code !== undefined, "unknown record decode error");
    return code;
  }
  /** With error "short": bytes the record at `consumed` needs. */
  get need(): number {
    return this.words[meta_need];
  }
  /** Decoding stopped only because the index was full; continue from `consumed`. */
  get outputFull(): boolean {
    return this.words[meta_output_full] === 1;
  }
  /** tau_commit of the last good record, or the lastTau decoding started from. */
  get lastTau(): number {
    return this.words[meta_last_tau];
  }

  offset(i: number): number {
    return this.words[this.#at(i)];
  }
  payloadLength(i: number): number {
    return this.words[this.#at(i) + 1];
  }
  /** Bytes record `i` takes, header included. */
  recordBytes(i: number): number {
    return record_header_bytes + this.payloadLength(i);
  }
  tauCommit(i: number): number {
    return this.words[this.#at(i) + 2];
  }
  tauStart(i: number): number {
    return this.words[this.#at(i) + 3];
  }

  /** Record `i` of `bytes` (the buffer that was decoded), with copied txn id and body. */
  record(bytes: Uint8Array, i: number): CommitRecord {
    const p = this.offset(i) + record_header_bytes;
    const end = p + this.payloadLength(i);
    assert(end <= bytes.length, "record index does not match the buffer");
    return {
      tauCommit: this.tauCommit(i),
      txnId: bytes.slice(p + 9, p + 9 + txn_id_bytes),
      tauStart: this.tauStart(i),
      body: bytes.slice(p + commit_payload_fixed_bytes, end),
    };
  }

  /**
   * Why decoding stopped, in the words of decodeRecord (src/journal/record.ts);
   * `bytes` is the buffer that was decoded. Undefined when it did not fail.
   */
  reason(bytes: Uint8Array, startTau: number): string | undefined {
    const at = this.consumed;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    switch (this.error) {
      case null:
        return undefined;
      case "short":
        return `record needs ${this.need} bytes, ${bytes.length - at} left`;
      case "length_out_of_bounds":
        return `record length ${view.getUint32(at, true)} out of bounds`;
      case "checksum":
        return "record checksum mismatch";
      case "unknown_type":
        return `unknown record type ${bytes[at + record_header_bytes]}`;
      case "body_length":
        return "record body length disagrees with record length";
      case "tau_commit_range":
        return "tau_commit out of range";
      case "tau_start_range":
        return "tau_start out of range";
      case "tau_not_increasing": {
        const previous = this.count > 0 ? this.tauCommit(this.count - 1) : startTau;
        const tau = readTau(view, at + record_header_bytes + 1);
        return `tau_commit ${tau} not above ${previous}`;
      }
    }
  }

  #at(i: number): number {
    assert(Number.isInteger(i) && i >= 0 && i < this.count, "record index out of range");
    return records_meta_words + records_record_words * i;
  }
}

/**
 * Decodes the records of `bytes` into `into`, each tau_commit above the one
 * before, the first above `lastTau` (0: only require taus in range). Stops at
 * the end of the buffer, at the first bad or incomplete record, or when the
 * index is full.
 */
export function decodeRecords(
  bytes: Uint8Array,
  lastTau: number,
  into: RecordIndex,
  engine?: RecordEngine,
): RecordIndex {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("bytes must be a Uint8Array");
  if (!Number.isSafeInteger(lastTau) || lastTau < 0) {
    throw new RangeError(`lastTau must be a non-negative safe integer, got ${lastTau}`);
  }
  if (!(into instanceof RecordIndex)) throw new TypeError("into must be a RecordIndex");
  if (resolveEngine(engine) === "native") decodeRecordsNative(bytes, lastTau, into.words);
  else decodeRecordsJs(bytes, lastTau, into.words);
  return into;
}

/** The TypeScript twin of DecodeRecords (native/records.cc), writing the same words. */
export function decodeRecordsJs(bytes: Uint8Array, lastTau: number, words: Float64Array): number {
  const capacity = (words.length - records_meta_words) / records_record_words;
  assert(Number.isInteger(capacity) && capacity >= 1, "words must hold whole records");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const size = bytes.length;
  let count = 0;
  let at = 0;
  let error = 0;
  let need = 0;
  let outputFull = 0;
  let last = lastTau;
  while (at < size) {
    if (count === capacity) {
      outputFull = 1;
      break;
    }
    if (size - at < record_header_bytes) {
      error = 1;
      need = record_header_bytes;
      break;
    }
    const length = view.getUint32(at, true);
    if (length < commit_payload_fixed_bytes || length > record_payload_bytes_max) {
      error = 2;
      break;
    }
    if (size - at < record_header_bytes + length) {
      error = 1;
      need = record_header_bytes + length;
      break;
    }
    const p = at + record_header_bytes;
    const crc = crc32cRange(bytes, p, p + length, crc32cRange(bytes, at, at + 4, 0));
    if (view.getUint32(at + 4, true) !== crc) {
      error = 3;
      break;
    }
    if (bytes[p] !== record_type_commit) {
      error = 4;
      break;
    }
    if (view.getUint32(p + 33, true) !== length - commit_payload_fixed_bytes) {
      error = 5;
      break;
    }
    const tauCommit = readTau(view, p + 1);
    const tauStart = readTau(view, p + 25);
    if (tauCommit <= 0) {
      error = 6;
      break;
    }
    if (tauStart < 0) {
      error = 7;
      break;
    }
    if (tauCommit <= last) {
      error = 8;
      break;
    }
    const base = records_meta_words + records_record_words * count;
    words[base] = at;
    words[base + 1] = length;
    words[base + 2] = tauCommit;
    words[base + 3] = tauStart;
    count++;
    last = tauCommit;
    at = p + length;
  }
  words[meta_count] = count;
  words[meta_consumed] = at;
  words[meta_error] = error;
  words[meta_need] = need;
  words[meta_output_full] = outputFull;
  words[meta_last_tau] = last;
  return count;
}

/** The i64 at `at` if it lies in [0, 2^53 - 1], else -1; no BigInt, so no garbage. */
function readTau(view: DataView, at: number): number {
  const high = view.getUint32(at + 4, true);
  if (high > tau_high_max) return -1;
  return high * two_to_32 + view.getUint32(at, true);
}

function writeTau(view: DataView, at: number, tau: number): void {
  view.setUint32(at, tau >>> 0, true);
  view.setUint32(at + 4, Math.floor(tau / two_to_32), true);
}

export interface RecordBatchEncoderOptions {
  /** Default: native when the addon is loaded. */
  engine?: RecordEngine;
  /** Buffer bytes before the first batch that needs more. */
  initialBytes?: number;
}

/**
 * One of the encoder's two staging buffers: records are written here in
 * final wire layout as they are added, the CRC slots filled at encode.
 */
class Staging {
  bytes: Uint8Array;
  view: DataView;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Makes room for `total` bytes, keeping the first `used`. */
  grow(used: number, total: number): void {
    let capacity = Math.max(this.bytes.length * 2, 4096);
    while (capacity < total) capacity *= 2;
    const grown = new Uint8Array(Math.min(capacity, record_batch_bytes_max));
    assert(grown.length >= total, "staging cannot hold the batch");
    grown.set(this.bytes.subarray(0, used));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }
}

/**
 * Encodes group-commit batches. `add` writes a record straight into a staging
 * buffer in its final wire layout (nothing crosses the native boundary, no
 * per-record garbage); `encode` fills every record's CRC32C in one call (the
 * native engine: SSE4.2 CRC32C, after checking the staged bytes again) and
 * returns a view of the bytes, valid until the next `encode`: the encoder
 * alternates between two staging buffers, so records added after an encode
 * do not touch the bytes it returned. The caller owns `close()`.
 */
export class RecordBatchEncoder {
  readonly engine: RecordEngine;
  readonly #initialBytes: number;
  #stage: Staging;
  /** The buffer the last encode returned a view of; staged into after the next encode. */
  #spare: Staging | null = null;
  #count = 0;
  #bytes = 0;
  #closed = false;

  constructor(options: RecordBatchEncoderOptions = {}) {
    this.engine = resolveEngine(options.engine);
    const initialBytes = options.initialBytes ?? record_encoder_initial_bytes;
    if (
      !Number.isSafeInteger(initialBytes) ||
      initialBytes < 1 ||
      initialBytes > 64 * 1024 * 1024
    ) {
      throw new RangeError(`initialBytes must be an integer in [1, 64 MiB], got ${initialBytes}`);
    }
    // Fails here, not at the first encode, when the addon is missing or stale.
    if (this.engine === "native") sealRecordsNative(new Uint8Array(0), 0, 0);
    this.#initialBytes = initialBytes;
    this.#stage = new Staging(initialBytes);
  }

  /** Records staged since the last encode. */
  get count(): number {
    return this.#count;
  }

  /** Bytes the staged records will take. */
  get byteLength(): number {
    return this.#bytes;
  }

  /**
   * Stages one record. Kept small, with the rejections in a cold function, so
   * the compiler can inline it into the caller's loop: the taus (beyond the
   * small-integer range) then stay unboxed and staging makes no garbage.
   */
  add(tauCommit: number, txnId: Uint8Array, tauStart: number, body: Uint8Array): void {
    if (
      this.#closed ||
      !isTau(tauCommit, 1) ||
      !isTau(tauStart, 0) ||
      !(txnId instanceof Uint8Array) ||
      txnId.length !== txn_id_bytes ||
      !(body instanceof Uint8Array) ||
      body.length > record_body_bytes_max
    ) {
      rejectRecord(this.#closed, tauCommit, txnId, tauStart, body);
    }
    const length = commit_payload_fixed_bytes + body.length;
    const at = this.#bytes;
    const end = at + record_header_bytes + length;
    if (this.#count === record_batch_records_max || end > record_batch_bytes_max) {
      throw new RangeError("record batch too large");
    }
    const stage = this.#stage;
    if (end > stage.bytes.length) stage.grow(at, end);
    const out = stage.bytes;
    const view = stage.view;
    const p = at + record_header_bytes;
    // The CRC slot (at + 4) is left as is: encode fills it.
    view.setUint32(at, length, true);
    out[p] = record_type_commit;
    writeTau(view, p + 1, tauCommit);
    out.set(txnId, p + 9);
    writeTau(view, p + 25, tauStart);
    view.setUint32(p + 33, body.length, true);
    out.set(body, p + commit_payload_fixed_bytes);
    this.#count++;
    this.#bytes = end;
  }

  /** Seals the staged records, clears the stage, and returns the bytes. */
  encode(): Uint8Array {
    this.#checkOpen();
    const count = this.#count;
    const total = this.#bytes;
    const stage = this.#stage;
    try {
      if (this.engine === "native") sealRecordsNative(stage.bytes, total, count);
      else sealRecordsJs(stage.bytes, total, count);
    } finally {
      this.clear();
    }
    this.#stage = this.#spare ?? new Staging(this.#initialBytes);
    this.#spare = stage;
    return stage.bytes.subarray(0, total);
  }

  /** Drops the staged records. */
  clear(): void {
    this.#count = 0;
    this.#bytes = 0;
  }

  /** Stops the encoder; views returned earlier stay readable. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.clear();
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("record encoder is closed");
  }
}

/**
 * An integer in [min, 2^53 - 1]; false for anything else, numbers or not.
 * Compiles to plain float compares (Number.isSafeInteger may box its argument).
 */
function isTau(value: number, min: number): boolean {
  return Math.floor(value) === value && value >= min && value <= tau_max;
}

/** Throws why RecordBatchEncoder.add refused a record (the cold path of add). */
function rejectRecord(
  closed: boolean,
  tauCommit: number,
  txnId: unknown,
  tauStart: number,
  body: unknown,
): never {
  if (closed) throw new Error("record encoder is closed");
  if (!Number.isSafeInteger(tauCommit) || tauCommit < 1) {
    throw new RangeError(`tau_commit must be an integer in [1, ${tau_max}], got ${tauCommit}`);
  }
  if (!Number.isSafeInteger(tauStart) || tauStart < 0) {
    throw new RangeError(`tau_start must be an integer in [0, ${tau_max}], got ${tauStart}`);
  }
  if (!(txnId instanceof Uint8Array) || txnId.length !== txn_id_bytes) {
    throw new TypeError(`txnId must be a Uint8Array of ${txn_id_bytes} bytes`);
  }
  if (!(body instanceof Uint8Array)) throw new TypeError("body must be a Uint8Array");
  throw new RangeError(`body of ${body.length} bytes exceeds ${record_body_bytes_max}`);
}

/**
 * The TypeScript twin of SealRecords (native/records.cc): `count` records
 * staged in bytes[0, total) get their CRC32C. The staging comes from
 * RecordBatchEncoder.add, so only assertions guard it here.
 */
function sealRecordsJs(bytes: Uint8Array, total: number, count: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, total);
  let at = 0;
  for (let i = 0; i < count; i++) {
    assert(total - at >= record_header_bytes + commit_payload_fixed_bytes, "staged record cut");
    const length = view.getUint32(at, true);
    const p = at + record_header_bytes;
    assert(p + length <= total, "staged record past the batch");
    view.setUint32(
      at + 4,
      crc32cRange(bytes, p, p + length, crc32cRange(bytes, at, at + 4, 0)),
      true,
    );
    at = p + length;
  }
  assert(at === total, "encoded length mismatch");
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`record buffer assertion failed: ${message}`);
}
