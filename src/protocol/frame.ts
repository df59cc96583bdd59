/**
 * The frame layer of ordo's wire protocol (docs/protocol.md): a 12-byte
 * header (length, version, type, flags, CRC32C) before each payload.
 *
 * `scanFramesJs` is the reference scanner and the TypeScript twin of the
 * native one (native/frame.cc, reached through src/native); `scanFrames`
 * runs either. `FrameDecoder` turns a socket's chunks into whole frames.
 * A receiver checks, in this order: `length` against its bound (oversize,
 * decided from the header alone, so a peer cannot make it buffer a payload it
 * will reject), the version, the flags and type (malformed), then the CRC.
 * Payload decoding (the messages) lives elsewhere in src/protocol/.
 */
import { nativeAvailable, scanFramesNative } from "../native";
import { crc32c, crc32cRange } from "./crc32c";

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
    const result = scanFrames(view, this.#payloadBytesMax, this.#engine);
    const frames: DecodedFrame[] = result.frames.map((f) => ({
      type: f.type,
      payload: view.slice(f.payloadOffset, f.payloadOffset + f.payloadLength),
    }));
    if (result.error !== null) {
      this.#error = { code: result.error.code };
      this.#release();
      return { frames, error: this.#error };
    }
    if (view === chunk) {
      this.#keepTail(chunk, result.consumed);
    } else {
      this.#start += result.consumed;
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
