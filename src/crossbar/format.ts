/**
 * Byte formats, bounds, argument checks and the error class of the crossbar
 * (docs/crossbar.md), shared by both merge engines: the TypeScript twin in
 * merge.ts and the native engine (native/crossbar.{h,cc}) behind
 * src/native/index.ts. The constants mirror native/crossbar.h; the native
 * wrapper checks them against the addon's own copy when it opens a crossbar.
 *
 * A batch carries many records of one journal across the JS/native boundary
 * in one call; an output entry is what a subscriber drains per record it has
 * any write in. Both are little-endian and self-delimiting.
 */

export const crossbar_batch_magic = 0x3142584f; // bytes "OXB1"
export const crossbar_config_magic = 0x3143584f; // bytes "OXC1"
export const crossbar_batch_header_bytes = 8;
export const crossbar_record_header_bytes = 24;
export const crossbar_write_header_bytes = 8;
export const crossbar_entry_header_bytes = 32;

export const crossbar_journals_max = 4096;
export const crossbar_subscribers_max = 4096;
export const crossbar_ranges_per_subscriber_max = 65536;
export const crossbar_key_bytes_max = 16 * 1024;
export const crossbar_payload_bytes_max = 16 * 1024 * 1024;
export const crossbar_writes_per_record_max = 1 << 20;
export const crossbar_batch_bytes_max = 1024 * 1024 * 1024;
export const crossbar_buffer_bytes_max = 1024 * 1024 * 1024;
/** Taus and transaction ordinals are integers in [0, crossbar_tau_max]. */
export const crossbar_tau_max = Number.MAX_SAFE_INTEGER;
/** The watermark of a journal that has published none; it holds back everything. */
export const crossbar_watermark_none = -1;

const u32_span = 0x1_0000_0000;
/** High half of crossbar_tau_max (2^53 - 1). */
const tau_high_max = 0x1f_ffff;

/** One write of a record: a key and its payload. */
export interface CrossbarWrite {
  key: Uint8Array;
  payload: Uint8Array;
}

/** One journal record as a producer hands it in. */
export interface CrossbarRecord {
  /** tau_commit in microseconds, strictly increasing within a journal. */
  tau: number;
  /** The transaction's ordinal within its journal (carried through, not checked). */
  txn: number;
  writes: readonly CrossbarWrite[];
}

/** One drained output entry: a released record's writes that one subscriber owns. */
export interface CrossbarEntry {
  tau: number;
  journal: number;
  txn: number;
  writes: CrossbarWrite[];
}

/** [lo, hi) over byte strings, unsigned lexicographic; an empty hi means unbounded above. */
export type KeyRange = readonly [lo: Uint8Array, hi: Uint8Array];

export interface SubscriberConfig {
  ranges: readonly KeyRange[];
  /** Bytes of encoded entries the subscriber's buffer holds before it overflows. */
  bufferBytesMax: number;
}

/** What one release call did. Engines fill a caller-owned object to make no garbage. */
export interface ReleaseSummary {
  /** Records released by this call. */
  released: number;
  /** tau of the last record released by this call, or -1. */
  lastTau: number;
  /** Journal of the last record released by this call, or -1. */
  lastJournal: number;
  /** min_j W_j after the call, or -1 while some journal has no watermark. */
  globalWatermark: number;
  /** Subscribers that overflowed during this call. */
  newlyOverflowed: number;
  /** Records held, not yet released. */
  pendingRecords: number;
}

export interface SubscriberState {
  overflowed: boolean;
  /** tau of the first record the subscriber missed, or -1. */
  overflowTau: number;
  /** Journal of that record, or -1. */
  overflowJournal: number;
  /** Encoded entries waiting to be drained. */
  bufferedBytes: number;
}

export function emptyReleaseSummary(): ReleaseSummary {
  return {
    released: 0,
    lastTau: -1,
    lastJournal: -1,
    globalWatermark: crossbar_watermark_none,
    newlyOverflowed: 0,
    pendingRecords: 0,
  };
}

export function emptySubscriberState(): SubscriberState {
  return { overflowed: false, overflowTau: -1, overflowJournal: -1, bufferedBytes: 0 };
}

/** Stable codes of crossbar rejections; the native engine uses the same ones. */
export type CrossbarErrorCode = "malformed" | "out_of_order" | "closed";

/** The error class of the TypeScript engine (the native one throws OrdoNativeError). */
export class CrossbarError extends Error {
  readonly code: CrossbarErrorCode;

  constructor(message: string, code: CrossbarErrorCode) {
    super(message);
    this.name = "CrossbarError";
    this.code = code;
  }
}

/** Unsigned lexicographic order of byte strings: negative, zero or positive. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const common = Math.min(a.length, b.length);
  for (let i = 0; i < common; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** True when `key` lies in [lo, hi) (hi empty: unbounded). */
export function rangeContains(range: KeyRange, key: Uint8Array): boolean {
  return (
    compareKeys(key, range[0]) >= 0 && (range[1].length === 0 || compareKeys(key, range[1]) < 0)
  );
}

// ---- argument checks shared by both engines (run before any work) ----

export function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== "number") throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

export function checkBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
}

export function checkTau(value: unknown, name: string): number {
  return checkInteger(value, name, crossbar_watermark_none, crossbar_tau_max);
}

/** Checks a crossbar's shape; throws TypeError / RangeError. */
export function checkCrossbarOptions(
  journals: unknown,
  subscribers: unknown,
): asserts subscribers is readonly SubscriberConfig[] {
  checkInteger(journals, "journals", 1, crossbar_journals_max);
  if (!Array.isArray(subscribers)) throw new TypeError("subscribers must be an array");
  if (subscribers.length > crossbar_subscribers_max) {
    throw new RangeError(`at most ${crossbar_subscribers_max} subscribers`);
  }
  subscribers.forEach((subscriber: unknown, s) => {
    if (typeof subscriber !== "object" || subscriber === null) {
      throw new TypeError(`subscribers[${s}] must be an object`);
    }
    const { ranges, bufferBytesMax } = subscriber as Partial<SubscriberConfig>;
    checkInteger(bufferBytesMax, `subscribers[${s}].bufferBytesMax`, 0, crossbar_buffer_bytes_max);
    if (!Array.isArray(ranges)) throw new TypeError(`subscribers[${s}].ranges must be an array`);
    if (ranges.length > crossbar_ranges_per_subscriber_max) {
      throw new RangeError(`subscribers[${s}] has too many ranges`);
    }
    ranges.forEach((range: unknown, r) => {
      const name = `subscribers[${s}].ranges[${r}]`;
      if (!Array.isArray(range) || range.length !== 2) {
        throw new TypeError(`${name} must be a [lo, hi] pair`);
      }
      const [lo, hi] = range as unknown[];
      checkBytes(lo, `${name}[0]`);
      checkBytes(hi, `${name}[1]`);
      if (lo.length > crossbar_key_bytes_max || hi.length > crossbar_key_bytes_max) {
        throw new RangeError(`${name}: key longer than ${crossbar_key_bytes_max} bytes`);
      }
      if (hi.length > 0 && compareKeys(lo, hi) >= 0) {
        throw new RangeError(`${name}: lo must be below hi (or hi empty for unbounded)`);
      }
    });
  });
}

// ---- encoders and decoders ----

/** Encodes records of one journal as a batch (docs/crossbar.md). */
export function encodeBatch(records: readonly CrossbarRecord[]): Uint8Array {
  let bytes = crossbar_batch_header_bytes;
  for (const record of records) bytes += recordBytes(record);
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, crossbar_batch_magic, true);
  view.setUint32(4, records.length, true);
  let at = crossbar_batch_header_bytes;
  for (const record of records) {
    const size = recordBytes(record);
    view.setUint32(at, size, true);
    view.setUint32(at + 4, record.writes.length, true);
    putU64(view, at + 8, record.tau);
    putU64(view, at + 16, record.txn);
    let w = at + crossbar_record_header_bytes;
    for (const write of record.writes) {
      view.setUint32(w, write.key.length, true);
      view.setUint32(w + 4, write.payload.length, true);
      out.set(write.key, w + crossbar_write_header_bytes);
      out.set(write.payload, w + crossbar_write_header_bytes + write.key.length);
      w += crossbar_write_header_bytes + write.key.length + write.payload.length;
    }
    at += size;
  }
  return out;
}

function recordBytes(record: CrossbarRecord): number {
  let bytes = crossbar_record_header_bytes;
  for (const write of record.writes) {
    bytes += crossbar_write_header_bytes + write.key.length + write.payload.length;
  }
  return bytes;
}

/** Encodes subscriber configuration for the native engine (docs/crossbar.md). */
export function encodeConfig(subscribers: readonly SubscriberConfig[]): Uint8Array {
  let bytes = 8;
  for (const subscriber of subscribers) {
    bytes += 8;
    for (const [lo, hi] of subscriber.ranges) bytes += 8 + lo.length + hi.length;
  }
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, crossbar_config_magic, true);
  view.setUint32(4, subscribers.length, true);
  let at = 8;
  for (const subscriber of subscribers) {
    view.setUint32(at, subscriber.bufferBytesMax, true);
    view.setUint32(at + 4, subscriber.ranges.length, true);
    at += 8;
    for (const [lo, hi] of subscriber.ranges) {
      view.setUint32(at, lo.length, true);
      view.setUint32(at + 4, hi.length, true);
      out.set(lo, at + 8);
      out.set(hi, at + 8 + lo.length);
      at += 8 + lo.length + hi.length;
    }
  }
  return out;
}

/** Decodes drained output entries (copies keys and payloads). Throws on malformed input. */
export function decodeEntries(bytes: Uint8Array): CrossbarEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries: CrossbarEntry[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < crossbar_entry_header_bytes) {
      throw new CrossbarError("entries: truncated header", "malformed");
    }
    const size = view.getUint32(at, true);
    if (size < crossbar_entry_header_bytes || size > bytes.length - at) {
      throw new CrossbarError("entries: entry length out of bounds", "malformed");
    }
    const journal = view.getUint32(at + 4, true);
    const count = view.getUint32(at + 8, true);
    const tau = getU64(view, at + 16);
    const txn = getU64(view, at + 24);
    const writes: CrossbarWrite[] = [];
    let w = at + crossbar_entry_header_bytes;
    const end = at + size;
    for (let i = 0; i < count; i++) {
      if (end - w < crossbar_write_header_bytes) {
        throw new CrossbarError("entries: truncated write", "malformed");
      }
      const keyLength = view.getUint32(w, true);
      const payloadLength = view.getUint32(w + 4, true);
      const keyAt = w + crossbar_write_header_bytes;
      if (end - keyAt < keyLength + payloadLength) {
        throw new CrossbarError("entries: write length out of bounds", "malformed");
      }
      writes.push({
        key: bytes.slice(keyAt, keyAt + keyLength),
        payload: bytes.slice(keyAt + keyLength, keyAt + keyLength + payloadLength),
      });
      w = keyAt + keyLength + payloadLength;
    }
    if (w !== end) throw new CrossbarError("entries: length disagrees with writes", "malformed");
    entries.push({ tau, journal, txn, writes });
    at = end;
  }
  return entries;
}

function putU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % u32_span, true);
  view.setUint32(at + 4, Math.floor(value / u32_span), true);
}

/** A u64 that must be a safe integer; -1 when it is not (callers reject). */
export function getU64(view: DataView, at: number): number {
  const lo = view.getUint32(at, true);
  const hi = view.getUint32(at + 4, true);
  if (hi > tau_high_max) return -1;
  return hi * u32_span + lo;
}
