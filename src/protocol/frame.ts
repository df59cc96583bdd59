/**
 * The frame layer of ordo's wire protocol (docs/protocol.md): a 12-byte
 * header (length, version, type, flags, CRC32C) before each payload.
 *
 * `scanFramesJs` is the reference scanner and the TypeScript twin of the
 * native one (native/frame.cc, reached through src/native); `scanFrames`
 * runs either. `FrameScan` and `scanFramesInto` are the garbage-free form:
 * the frames land in a reused typed array instead of one object each.
 * `FrameDecoder` turns a socket's chunks into whole frames.
 * A receiver checks, in this order: `length` against its bound (oversize,
 * decided from the header alone, so a peer cannot make it buffer a payload it
 * will reject), the version, the flags and type (malformed), then the CRC.
 * Payload decoding (the messages) lives elsewhere in src/protocol/.
 */
import { nativeAvailable, scanFramesIntoNative, scanFramesNative } from "../native";
import { crc32c, crc32cRange } from "./crc32c";
import {
  frame_scan_error_codes,
  scan_frame_words,
  scan_meta_consumed,
  scan_meta_count,
  scan_meta_error,
  scan_meta_output_full,
  scan_meta_words,
  scan_window_bytes_max,
} from "./frame-scan-layout";

export const frame_header_bytes = 12;
export const frame_payload_bytes_max = 16 * 1024 * 1024;
export const protocol_version = 1;

export const MessageType = {
  CommitRequest: 1,
  CommitReply: 2,
  Error: 3,
  Ping: 4,
  Pong: 5,
  Subscribe: 6,
  Record: 7,
  Watermark: 8,
  Applied: 9,
  WaitVisible: 10,
  Visible: 11,
} as const;

const message_type_min = MessageType.CommitRequest;
const message_type_max = MessageType.Visible;

/** Byte offsets inside the header. */
const header_length_at = 0;
const header_version_at = 4;
const header_type_at = 5;
const header_flags_at = 6;
const header_crc_at = 8;

export type FrameErrorCode = "oversize" | "unsupported_version" | "malformed" | "checksum";

/** Which scanner runs: the native addon or the TypeScript twin. */
export type Engine = "native" | "js";

export interface ScannedFrame {
  type: number;
  payloadOffset: number;
  payloadLength: number;
}

export interface ScanResult {
  frames: ScannedFrame[];
  consumed: number;
  error: { code: FrameErrorCode; offset: number } | null;
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

function checkEngine(engine: unknown): Engine {
  if (engine === "native" || engine === "js") return engine;
  throw new TypeError(`engine must be "native" or "js", got ${String(engine)}`);
}

function defaultEngine(): Engine {
  return nativeAvailable() ? "native" : "js";
}

function u32le(buf: Uint8Array, at: number): number {
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
}

function headerError(buf: Uint8Array, at: number, payloadBytesMax: number): FrameErrorCode | null {
  if (u32le(buf, at + header_length_at) > payloadBytesMax) return "oversize";
  if (buf[at + header_version_at] !== protocol_version) return "unsupported_version";
  const type = buf[at + header_type_at];
  const flags = buf[at + header_flags_at] | (buf[at + header_flags_at + 1] << 8);
  if (flags !== 0 || type < message_type_min || type > message_type_max) return "malformed";
  return null;
}

/**
 * Scans complete frames from offset 0 of `buf`. Stops at the first rejected
 * frame (`consumed` = its offset, `error` set) or at an incomplete one
 * (`consumed` = its offset, `error` null); the frames before are returned.
 */
export function scanFramesJs(buf: Uint8Array, payloadBytesMax: number): ScanResult {
  checkBytes(buf, "buf");
  checkInteger(payloadBytesMax, "payloadBytesMax", 0, frame_payload_bytes_max);
  const frames: ScannedFrame[] = [];
  let offset = 0;
  while (buf.length - offset >= frame_header_bytes) {
    const code = headerError(buf, offset, payloadBytesMax);
    if (code !== null) return { frames, consumed: offset, error: { code, offset } };
    const payloadOffset = offset + frame_header_bytes;
    const payloadLength = u32le(buf, offset + header_length_at);
    if (buf.length - payloadOffset < payloadLength) break;
    const headerCrc = crc32cRange(buf, offset + header_version_at, offset + header_crc_at, 0);
    const crc = crc32cRange(buf, payloadOffset, payloadOffset + payloadLength, headerCrc);
    if (crc !== u32le(buf, offset + header_crc_at)) {
      return { frames, consumed: offset, error: { code: "checksum", offset } };
    }
    frames.push({ type: buf[offset + header_type_at], payloadOffset, payloadLength });
    offset = payloadOffset + payloadLength;
  }
  return { frames, consumed: offset, error: null };
}

/** scanFramesJs or its native twin; `engine` defaults to native when loaded. */
export function scanFrames(buf: Uint8Array, payloadBytesMax: number, engine?: Engine): ScanResult {
  const chosen = engine === undefined ? defaultEngine() : checkEngine(engine);
  return chosen === "native"
    ? scanFramesNative(buf, payloadBytesMax)
    : scanFramesJs(buf, payloadBytesMax);
}

/** Frames a FrameScan holds unless told otherwise. */
export const frame_scan_capacity_default = 4096;
/** The most frames one scan reports (the native scanner's bound per call). */
export const frame_scan_capacity_max = 65536;

/**
 * The frames of one scan, reused across scans so that steady state allocates
 * nothing: `words` holds count, consumed, error, output-full, then (type,
 * payload offset, payload length) per frame, the layout the native scanner
 * writes in place.
 */
export class FrameScan {
  readonly capacity: number;
  readonly words: Uint32Array;

  constructor(capacity = frame_scan_capacity_default) {
    checkInteger(capacity, "capacity", 1, frame_scan_capacity_max);
    this.capacity = capacity;
    this.words = new Uint32Array(scan_meta_words + scan_frame_words * capacity);
  }

  get count(): number {
    return this.words[scan_meta_count];
  }
  /** Offset of the first frame not reported: where the next scan starts. */
  get consumed(): number {
    return this.words[scan_meta_consumed];
  }
  /** Why the scan stopped at `consumed`, or null (the end, an incomplete frame, or full). */
  get error(): FrameErrorCode | null {
    const code = frame_scan_error_codes[this.words[scan_meta_error]];
    if (code === undefined)
      throw new Error(`unknown frame scan error ${this.words[scan_meta_error]}`);
    return code;
  }
  /** Stopped before a whole frame only for lack of room: scan again from `consumed`. */
  get outputFull(): boolean {
    return this.words[scan_meta_output_full] === 1;
  }
  type(i: number): number {
    return this.words[this.#at(i)];
  }
  payloadOffset(i: number): number {
    return this.words[this.#at(i) + 1];
  }
  payloadLength(i: number): number {
    return this.words[this.#at(i) + 2];
  }

  #at(i: number): number {
    if (!(i >= 0 && i < this.count && Number.isInteger(i))) {
      throw new RangeError(`frame ${i} out of range [0, ${this.count})`);
    }
    return scan_meta_words + scan_frame_words * i;
  }
}

/**
 * The TypeScript twin of the native scanner's one call: scans `buf` into
 * `words` (FrameScan's layout), at most (words.length - 4) / 3 frames, in the
 * order of checks of scanFramesJs. Returns the frame count.
 */
export function scanFramesIntoJs(
  buf: Uint8Array,
  payloadBytesMax: number,
  words: Uint32Array,
): number {
  const capacity = Math.min(
    Math.floor((words.length - scan_meta_words) / scan_frame_words),
    frame_scan_capacity_max,
  );
  let count = 0;
  let offset = 0;
  let error = 0;
  let outputFull = 0;
  while (buf.length - offset >= frame_header_bytes) {
    const code = headerError(buf, offset, payloadBytesMax);
    if (code !== null) {
      error = frame_scan_error_codes.indexOf(code);
      break;
    }
    const payloadOffset = offset + frame_header_bytes;
    const payloadLength = u32le(buf, offset + header_length_at);
    if (buf.length - payloadOffset < payloadLength) break;
    if (count === capacity) {
      outputFull = 1;
      break;
    }
    const headerCrc = crc32cRange(buf, offset + header_version_at, offset + header_crc_at, 0);
    const crc = crc32cRange(buf, payloadOffset, payloadOffset + payloadLength, headerCrc);
    if (crc !== u32le(buf, offset + header_crc_at)) {
      error = frame_scan_error_codes.indexOf("checksum");
      break;
    }
    const at = scan_meta_words + scan_frame_words * count;
    words[at] = buf[offset + header_type_at];
    words[at + 1] = payloadOffset;
    words[at + 2] = payloadLength;
    count++;
    offset = payloadOffset + payloadLength;
  }
  words[scan_meta_count] = count;
  words[scan_meta_consumed] = offset;
  words[scan_meta_error] = error;
  words[scan_meta_output_full] = outputFull;
  return count;
}

/**
 * Scans complete frames from offset 0 of `buf` into `into` (reused; nothing
 * allocated per frame) and returns it. Stops like scanFramesJs, and also when
 * `into` is full or after the first 1 GiB (`outputFull`: continue from
 * `consumed`). Both engines give the same words.
 */
export function scanFramesInto(
  buf: Uint8Array,
  payloadBytesMax: number,
  into: FrameScan,
  engine?: Engine,
): FrameScan {
  checkBytes(buf, "buf");
  checkInteger(payloadBytesMax, "payloadBytesMax", 0, frame_payload_bytes_max);
  if (!(into instanceof FrameScan)) throw new TypeError("into must be a FrameScan");
  const chosen = engine === undefined ? defaultEngine() : checkEngine(engine);
  const windowed = buf.length > scan_window_bytes_max;
  const window = windowed ? buf.subarray(0, scan_window_bytes_max) : buf;
  if (chosen === "native") scanFramesIntoNative(window, payloadBytesMax, into.words);
  else scanFramesIntoJs(window, payloadBytesMax, into.words);
  const words = into.words;
  if (windowed && words[scan_meta_error] === 0 && words[scan_meta_output_full] === 0) {
    // The window cut a frame that the whole buffer may hold.
    if (words[scan_meta_consumed] === 0) throw new Error("a scan window held no whole frame");
    words[scan_meta_output_full] = 1;
  }
  return into;
}

/** Writes one frame at `target[offset]`; returns the bytes written. */
export function encodeFrameInto(
  target: Uint8Array,
  offset: number,
  type: number,
  payload: Uint8Array,
): number {
  checkBytes(target, "target");
  checkBytes(payload, "payload");
  checkInteger(type, "type", message_type_min, message_type_max);
  checkInteger(payload.length, "payload length", 0, frame_payload_bytes_max);
  const frameBytes = frame_header_bytes + payload.length;
  checkInteger(offset, "offset", 0, target.length - frameBytes);
  const length = payload.length;
  // Payload first: set() copies correctly even when payload is a view of target.
  const payloadAt = offset + frame_header_bytes;
  target.set(payload, payloadAt);
  target[offset] = length & 0xff;
  target[offset + 1] = (length >>> 8) & 0xff;
  target[offset + 2] = (length >>> 16) & 0xff;
  target[offset + 3] = (length >>> 24) & 0xff;
  target[offset + header_version_at] = protocol_version;
  target[offset + header_type_at] = type;
  target[offset + header_flags_at] = 0;
  target[offset + header_flags_at + 1] = 0;
  const headerCrc = crc32c(target.subarray(offset + header_version_at, offset + header_crc_at));
  const crc = crc32c(target.subarray(payloadAt, payloadAt + length), headerCrc);
  target[offset + header_crc_at] = crc & 0xff;
  target[offset + header_crc_at + 1] = (crc >>> 8) & 0xff;
  target[offset + header_crc_at + 2] = (crc >>> 16) & 0xff;
  target[offset + header_crc_at + 3] = (crc >>> 24) & 0xff;
  return frameBytes;
}

/** One frame as a new Uint8Array. */
export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  checkBytes(payload, "payload");
  checkInteger(payload.length, "payload length", 0, frame_payload_bytes_max);
  const frame = new Uint8Array(frame_header_bytes + payload.length);
  const written = encodeFrameInto(frame, 0, type, payload);
  if (written !== frame.length) throw new Error("encodeFrameInto wrote a short frame");
  return frame;
}

export interface DecodedFrame {
  type: number;
  /** A copy owned by the caller: stays valid whatever the decoder does next. */
  payload: Uint8Array;
}

export interface DecodeResult {
  frames: DecodedFrame[];
  error: { code: FrameErrorCode } | null;
}

export interface FrameDecoderOptions {
  /** The receiver's bound, at most frame_payload_bytes_max (the default). */
  payloadBytesMax?: number;
  engine?: Engine;
}

/** Pending-bytes buffer to start with, and the most kept once it drains. */
const decoder_buffer_bytes_initial = 64 * 1024;
const decoder_buffer_bytes_retained_max = 1024 * 1024;

/**
 * Streaming decoder for one connection: push each chunk as it arrives and get
 * back every frame it completes. Partial frames wait in a growable buffer
 * (doubling, compacted only when full, so the copying is linear); a chunk
 * that arrives with nothing pending is scanned in place and only its tail is
 * kept. Payloads are returned as copies. After a rejected frame the decoder
 * stays failed: every later push returns the same error and no frames, as
 * the connection must close (docs/protocol.md).
 */
export class FrameDecoder {
  readonly #payloadBytesMax: number;
  readonly #engine: Engine;
  #buf: Uint8Array = new Uint8Array(0);
  #start = 0;
  #end = 0;
  #error: { code: FrameErrorCode } | null = null;
  /** Reused for every scan, so a push allocates only what it returns. */
  readonly #scan = new FrameScan();

  constructor(options: FrameDecoderOptions = {}) {
    const { payloadBytesMax = frame_payload_bytes_max, engine } = options;
    this.#payloadBytesMax = checkInteger(
      payloadBytesMax,
      "payloadBytesMax",
      0,
      frame_payload_bytes_max,
    );
    this.#engine = engine === undefined ? defaultEngine() : checkEngine(engine);
  }

  /** The error that failed this decoder, or null. */
  get error(): { code: FrameErrorCode } | null {
    return this.#error;
  }

  /** Bytes received but not yet part of a whole frame. */
  get pendingBytes(): number {
    return this.#end - this.#start;
  }

  push(chunk: Uint8Array): DecodeResult {
    checkBytes(chunk, "chunk");
    if (this.#error !== null) return { frames: [], error: this.#error };
    let view: Uint8Array;
    if (this.#start === this.#end) {
      view = chunk;
    } else {
      this.#append(chunk);
      view = this.#buf.subarray(this.#start, this.#end);
    }
    const scan = this.#scan;
    const frames: DecodedFrame[] = [];
    let base = 0;
    for (;;) {
      const window = base === 0 ? view : view.subarray(base);
      scanFramesInto(window, this.#payloadBytesMax, scan, this.#engine);
      for (let i = 0; i < scan.count; i++) {
        const at = base + scan.payloadOffset(i);
        frames.push({ type: scan.type(i), payload: view.slice(at, at + scan.payloadLength(i)) });
      }
      base += scan.consumed;
      if (!scan.outputFull) break;
    }
    const error = scan.error;
    if (error !== null) {
      this.#error = { code: error };
      this.#release();
      return { frames, error: this.#error };
    }
    if (view === chunk) {
      this.#keepTail(chunk, base);
    } else {
      this.#start += base;
      if (this.#start === this.#end) this.#drained();
    }
    // A pending remainder is one incomplete frame that passed the oversize check.
    assert(
      this.pendingBytes < frame_header_bytes + this.#payloadBytesMax || this.pendingBytes === 0,
    );
    return { frames, error: null };
  }

  #keepTail(chunk: Uint8Array, consumed: number): void {
    assert(this.#start === 0 && this.#end === 0, "keepTail with bytes pending");
    if (consumed < chunk.length) this.#append(chunk.subarray(consumed));
  }

  #append(bytes: Uint8Array): void {
    const pending = this.#end - this.#start;
    const needed = pending + bytes.length;
    if (this.#end + bytes.length > this.#buf.length) {
      if (needed <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let capacity = Math.max(this.#buf.length, decoder_buffer_bytes_initial);
        while (capacity < needed) capacity *= 2;
        const grown = new Uint8Array(capacity);
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = pending;
    }
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  #drained(): void {
    this.#start = 0;
    this.#end = 0;
    if (this.#buf.length > decoder_buffer_bytes_retained_max) this.#buf = new Uint8Array(0);
  }

  #release(): void {
    this.#buf = new Uint8Array(0);
    this.#start = 0;
    this.#end = 0;
  }
}

function assert(condition: boolean, what = "invariant"): asserts condition {
  if (!condition) throw new Error(`frame: assertion failed: ${what}`);
}
