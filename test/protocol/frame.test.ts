/**
 * Tests for src/protocol/frame.ts: encode and scan round trips, every
 * rejection in the order docs/protocol.md gives, FrameDecoder across random
 * chunk boundaries, and agreement of the native scanner with the TypeScript
 * twin on byte soup and on corrupted frame streams.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeFrame,
  encodeFrameInto,
  FrameDecoder,
  frame_header_bytes,
  frame_payload_bytes_max,
  MessageType,
  protocol_version,
  FrameScan,
  scanFrames,
  scanFramesInto,
  scanFramesJs,
  type Engine,
  type ScanResult,
  type FrameErrorCode,
} from "../../src/protocol/frame";
import { crc32cJs } from "../../src/protocol/crc32c";
import { nativeAvailable, scanFramesNative } from "../../src/native";

interface Frame {
  type: number;
  payload: Uint8Array;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function encodeAll(frames: Frame[]): Uint8Array {
  return concat(frames.map((f) => encodeFrame(f.type, f.payload)));
}

/** Rewrites header fields of an encoded frame; `fixCrc` recomputes the CRC. */
function patchHeader(
  frame: Uint8Array,
  patch: { length?: number; version?: number; type?: number; flags?: number },
  fixCrc: boolean,
): Uint8Array {
  const out = frame.slice();
  const view = new DataView(out.buffer);
  if (patch.length !== undefined) view.setUint32(0, patch.length, true);
  if (patch.version !== undefined) out[4] = patch.version;
  if (patch.type !== undefined) out[5] = patch.type;
  if (patch.flags !== undefined) view.setUint16(6, patch.flags, true);
  if (fixCrc) {
    const crc = crc32cJs(out.subarray(frame_header_bytes), crc32cJs(out.subarray(4, 8)));
    view.setUint32(8, crc, true);
  }
  return out;
}

const frameArb: fc.Arbitrary<Frame> = fc
  .tuple(fc.integer({ min: 1, max: 5 }), fc.uint8Array({ maxLength: 200 }))
  .map(([type, payload]) => ({ type, payload }));
const framesArb = fc.array(frameArb, { maxLength: 12 });

const engines: Engine[] = ["js", "native"];

function requireEngine(ctx: Mocha.Context, engine: Engine): void {
  if (engine === "native" && !nativeAvailable()) ctx.skip(); // test/native fails loudly instead
}

function payloadsOf(
  buf: Uint8Array,
  frames: { type: number; payloadOffset: number; payloadLength: number }[],
): Frame[] {
  return frames.map((f) => ({
    type: f.type,
    payload: buf.slice(f.payloadOffset, f.payloadOffset + f.payloadLength),
  }));
}

describe("frame", () => {
  it("has the constants of docs/protocol.md", () => {
    assert.equal(frame_header_bytes, 12);
    assert.equal(frame_payload_bytes_max, 16_777_216);
    assert.equal(protocol_version, 1);
    assert.deepEqual(MessageType, {
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
    });
  });

  it("encodes the header byte for byte", () => {
    const frame = encodeFrame(MessageType.Ping, Uint8Array.of(8, 7, 6, 5, 4, 3, 2, 1));
    const view = new DataView(frame.buffer);
    assert.equal(frame.length, 20);
    assert.equal(view.getUint32(0, true), 8);
    assert.equal(frame[4], 1);
    assert.equal(frame[5], 4);
    assert.equal(view.getUint16(6, true), 0);
    const expected = crc32cJs(frame.subarray(12), crc32cJs(Uint8Array.of(1, 4, 0, 0)));
    assert.equal(view.getUint32(8, true), expected);
  });

  it("encodeFrameInto writes at an offset and returns the bytes written", () => {
    const target = new Uint8Array(40).fill(0xee);
    const payload = Uint8Array.of(1, 2, 3);
    assert.equal(encodeFrameInto(target, 5, MessageType.Pong, payload), 15);
    assert.deepEqual(target.subarray(5, 20), encodeFrame(MessageType.Pong, payload));
    assert.equal(target[4], 0xee);
    assert.equal(target[20], 0xee);
    assert.throws(() => encodeFrameInto(target, 26, MessageType.Pong, payload), RangeError);
    assert.throws(() => encodeFrameInto(target, -1, MessageType.Pong, payload), RangeError);
  });

  it("encode rejects unknown types and non-byte payloads", () => {
    assert.throws(() => encodeFrame(0, new Uint8Array(0)), RangeError);
    assert.throws(() => encodeFrame(12, new Uint8Array(0)), RangeError);
    assert.throws(() => encodeFrame(1.5, new Uint8Array(0)), RangeError);
    assert.throws(() => encodeFrame(1, [1, 2] as unknown as Uint8Array), TypeError);
  });

  it("scan rejects a bad payloadBytesMax or buffer on both engines", () => {
    for (const scan of [scanFramesJs, scanFramesNative]) {
      if (scan === scanFramesNative && !nativeAvailable()) continue;
      const buf = new Uint8Array(0);
      assert.throws(() => scan(buf, -1), RangeError);
      assert.throws(() => scan(buf, 0.5), RangeError);
      assert.throws(() => scan(buf, Number.NaN), RangeError);
      assert.throws(() => scan(buf, frame_payload_bytes_max + 1), RangeError);
      assert.throws(() => scan(buf, "1" as unknown as number), TypeError);
      assert.throws(() => scan([] as unknown as Uint8Array, 0), TypeError);
    }
    assert.throws(() => scanFrames(new Uint8Array(0), 0, "wasm" as Engine), TypeError);
    assert.throws(() => new FrameDecoder({ payloadBytesMax: -1 }), RangeError);
  });

  for (const engine of engines) {
    describe(`scanFrames (${engine})`, () => {
      beforeEach(function () {
        requireEngine(this, engine);
      });

      const scan = (buf: Uint8Array, max = frame_payload_bytes_max) => scanFrames(buf, max, engine);

      it("round-trips random frame streams", () => {
        fc.assert(
          fc.property(framesArb, (frames) => {
            const buf = encodeAll(frames);
            const result = scan(buf);
            assert.equal(result.error, null);
            assert.equal(result.consumed, buf.length);
            assert.deepEqual(payloadsOf(buf, result.frames), frames);
          }),
        );
      });

      it("reports offsets relative to the view it was given", () => {
        const frame = encodeFrame(MessageType.Ping, Uint8Array.of(9, 9));
        const outer = new Uint8Array(frame.length + 7);
        outer.set(frame, 7);
        const result = scan(outer.subarray(7));
        assert.deepEqual(result.frames, [{ type: 4, payloadOffset: 12, payloadLength: 2 }]);
      });

      it("stops at an incomplete frame without an error", () => {
        const a = encodeFrame(MessageType.Ping, new Uint8Array(8));
        const b = encodeFrame(MessageType.Pong, new Uint8Array(8));
        const both = concat([a, b]);
        for (let cut = 0; cut <= both.length; cut++) {
          const result = scan(both.subarray(0, cut));
          assert.equal(result.error, null);
          const whole = cut === both.length ? 2 : cut >= a.length ? 1 : 0;
          assert.equal(result.frames.length, whole);
          assert.equal(result.consumed, whole === 2 ? both.length : whole * a.length);
        }
      });

      const good = encodeFrame(MessageType.CommitRequest, Uint8Array.of(1, 2, 3, 4));
      const cases: [string, Uint8Array, FrameErrorCode][] = [
        ["an oversize length", patchHeader(good, { length: 1000 }, false), "oversize"],
        ["version 2", patchHeader(good, { version: 2 }, true), "unsupported_version"],
        ["version 0", patchHeader(good, { version: 0 }, true), "unsupported_version"],
        ["nonzero flags", patchHeader(good, { flags: 0x0100 }, true), "malformed"],
        ["type 0", patchHeader(good, { type: 0 }, true), "malformed"],
        ["type 12", patchHeader(good, { type: 12 }, true), "malformed"],
        [
          "a flipped payload bit",
          concat([good.subarray(0, 12), Uint8Array.of(1, 2, 3, 5)]),
          "checksum",
        ],
        ["a wrong CRC", patchHeader(good, {}, false).fill(0, 8, 12), "checksum"],
        // Order of checks: the first failing rule names the error.
        [
          "oversize and a bad version",
          patchHeader(good, { length: 1000, version: 9 }, false),
          "oversize",
        ],
        [
          "a bad version and flags",
          patchHeader(good, { version: 9, flags: 1 }, false),
          "unsupported_version",
        ],
        ["bad flags and CRC", patchHeader(good, { flags: 1 }, false), "malformed"],
      ];
      for (const [name, bad, code] of cases) {
        it(`rejects ${name} as ${code}, after the good frames before it`, () => {
          const buf = concat([good, good, bad, good]);
          const result = scan(buf, 100);
          assert.deepEqual(result.error, { code, offset: 2 * good.length });
          assert.equal(result.consumed, 2 * good.length);
          assert.equal(result.frames.length, 2);
        });
      }

      it("decides oversize from the 12 header bytes alone", () => {
        const header = patchHeader(good, { length: 101 }, false).subarray(0, 12);
        assert.deepEqual(scan(header, 100).error, { code: "oversize", offset: 0 });
        assert.equal(scan(header.subarray(0, 11), 100).error, null);
        const huge = patchHeader(good, { length: 0xffffffff }, false).subarray(0, 12);
        assert.deepEqual(scan(huge).error, { code: "oversize", offset: 0 });
      });

      it("accepts a payload exactly at payloadBytesMax, not one byte more", () => {
        for (const max of [0, 1, 7, 64]) {
          const atMax = encodeFrame(MessageType.Ping, new Uint8Array(max).fill(3));
          assert.equal(scan(atMax, max).error, null);
          assert.equal(scan(atMax, max).frames.length, 1);
          const over = encodeFrame(MessageType.Ping, new Uint8Array(max + 1));
          assert.deepEqual(scan(over, max).error, { code: "oversize", offset: 0 });
        }
      });

      it("scans more frames than one native batch holds", () => {
        const frames = Array.from({ length: 10_000 }, (_, i) => ({
          type: (i % 5) + 1,
          payload: Uint8Array.of(i & 0xff),
        }));
        const buf = encodeAll(frames);
        const result = scan(buf);
        assert.equal(result.error, null);
        assert.equal(result.consumed, buf.length);
        assert.deepEqual(payloadsOf(buf, result.frames), frames);
      });
    });
  }

  describe("native agrees with the twin", function () {
    before(function () {
      if (!nativeAvailable()) this.skip(); // test/native fails loudly instead
    });

    const maxArb = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constant(frame_payload_bytes_max));

    it("on random byte soup", () => {
      // Bias the soup towards plausible headers so checks past the first run.
      const soupArb = fc.array(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          fc.constantFrom(Uint8Array.of(1), Uint8Array.of(1, 4, 0, 0), Uint8Array.of(0, 0, 0, 0)),
          frameArb.map((f) => encodeFrame(f.type, f.payload)),
        ),
        { maxLength: 8 },
      );
      fc.assert(
        fc.property(soupArb, maxArb, (parts, max) => {
          const buf = concat(parts);
          assert.deepEqual(scanFramesNative(buf, max), scanFramesJs(buf, max));
        }),
        { numRuns: 500 },
      );
    });

    type Corruption =
      | { kind: "flip"; at: number; bit: number }
      | { kind: "truncate"; at: number }
      | { kind: "length"; frame: number; length: number }
      | { kind: "none" };

    const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
      fc.record({
        kind: fc.constant("flip" as const),
        at: fc.nat(),
        bit: fc.integer({ min: 0, max: 7 }),
      }),
      fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant("length" as const),
        frame: fc.nat(),
        length: fc.oneof(
          fc.integer({ min: 0, max: 400 }),
          fc.constant(0xffffffff),
          fc.constant(frame_payload_bytes_max + 1),
        ),
      }),
      fc.constant({ kind: "none" as const }),
    );

    function corrupt(frames: Frame[], c: Corruption): Uint8Array {
      const encoded = frames.map((f) => encodeFrame(f.type, f.payload));
      const buf = concat(encoded);
      if (buf.length === 0) return buf;
      switch (c.kind) {
        case "flip":
          buf[c.at % buf.length] ^= 1 << c.bit;
          return buf;
        case "truncate":
          return buf.subarray(0, c.at % (buf.length + 1));
        case "length": {
          const index = c.frame % encoded.length;
          const at = encoded.slice(0, index).reduce((n, e) => n + e.length, 0);
          new DataView(buf.buffer).setUint32(at, c.length, true);
          return buf;
        }
        case "none":
          return buf;
      }
    }

    it("on valid frame streams with one corruption", () => {
      fc.assert(
        fc.property(
          framesArb,
          corruptionArb,
          fc.boolean(),
          fc.nat(300),
          (frames, c, atBoundary, max) => {
            const buf = corrupt(frames, c);
            // Put the bound exactly at (or one below) some frame's payload length.
            const bound =
              atBoundary && frames.length > 0
                ? Math.max(0, frames[max % frames.length].payload.length - (max & 1))
                : max;
            assert.deepEqual(scanFramesNative(buf, bound), scanFramesJs(buf, bound));
            assert.deepEqual(
              scanFramesNative(buf, frame_payload_bytes_max),
              scanFramesJs(buf, frame_payload_bytes_max),
            );
          },
        ),
        { numRuns: 500 },
      );
    });
    /** scanFramesInto run to the end of `buf` through a FrameScan of `capacity`, as a ScanResult. */
    function scanInto(buf: Uint8Array, max: number, scan: FrameScan, engine: Engine): ScanResult {
      const result: ScanResult = { frames: [], consumed: 0, error: null };
      let base = 0;
      for (;;) {
        scanFramesInto(buf.subarray(base), max, scan, engine);
        for (let i = 0; i < scan.count; i++) {
          result.frames.push({
            type: scan.type(i),
            payloadOffset: base + scan.payloadOffset(i),
            payloadLength: scan.payloadLength(i),
          });
        }
        base += scan.consumed;
        if (!scan.outputFull) break;
        assert.equal(scan.count, scan.capacity, "output full only when the scan is full");
      }
      result.consumed = base;
      const code = scan.error;
      if (code !== null) result.error = { code, offset: base };
      return result;
    }

    it("scanFramesInto: same words on both engines, and the frames of scanFramesJs", () => {
      const streamArb = fc.oneof(
        fc.tuple(framesArb, corruptionArb).map(([frames, c]) => corrupt(frames, c)),
        fc
          .array(
            fc.oneof(
              fc.uint8Array({ maxLength: 40 }),
              frameArb.map((f) => encodeFrame(f.type, f.payload)),
            ),
            { maxLength: 8 },
          )
          .map(concat),
      );
      fc.assert(
        fc.property(streamArb, maxArb, fc.integer({ min: 1, max: 6 }), (buf, max, capacity) => {
          const native = new FrameScan(capacity);
          const js = new FrameScan(capacity);
          scanFramesInto(buf, max, native, "native");
          scanFramesInto(buf, max, js, "js");
          assert.deepEqual(native.words, js.words);
          const expected = scanFramesJs(buf, max);
          assert.deepEqual(scanInto(buf, max, native, "native"), expected);
          assert.deepEqual(scanInto(buf, max, js, "js"), expected);
        }),
        { numRuns: 500 },
      );
    });

    it("scanFramesInto reuses its FrameScan and checks its arguments", () => {
      const buf = concat([
        encodeFrame(MessageType.CommitRequest, Uint8Array.of(1, 2)),
        Uint8Array.of(1),
      ]);
      for (const engine of engines) {
        const scan = new FrameScan(2);
        assert.equal(scanFramesInto(buf, frame_payload_bytes_max, scan, engine), scan);
        assert.equal(scan.count, 1);
        assert.equal(scan.type(0), MessageType.CommitRequest);
        assert.equal(scan.payloadOffset(0), frame_header_bytes);
        assert.equal(scan.payloadLength(0), 2);
        assert.equal(scan.consumed, frame_header_bytes + 2);
        assert.equal(scan.error, null);
        assert.equal(scan.outputFull, false);
        assert.throws(() => scan.type(1), RangeError);
        scanFramesInto(new Uint8Array(0), 0, scan, engine);
        assert.equal(scan.count, 0);
        assert.throws(() => scan.type(0), RangeError);
        assert.throws(
          () => scanFramesInto([] as unknown as Uint8Array, 0, scan, engine),
          TypeError,
        );
        assert.throws(() => scanFramesInto(buf, -1, scan, engine), RangeError);
        assert.throws(() => scanFramesInto(buf, 0, {} as FrameScan, engine), TypeError);
      }
      for (const engine of engines) {
        // More frames in one push than the decoder's FrameScan holds.
        const many = concat(
          Array.from({ length: 5000 }, (_, i) =>
            encodeFrame(MessageType.CommitRequest, Uint8Array.of(i & 0xff)),
          ),
        );
        const decoded = new FrameDecoder({ engine }).push(concat([many, many.subarray(0, 7)]));
        assert.equal(decoded.error, null);
        assert.equal(decoded.frames.length, 5000);
        assert.deepEqual(decoded.frames[4999].payload, Uint8Array.of(4999 & 0xff));
      }
      assert.throws(() => new FrameScan(0), RangeError);
      assert.throws(() => new FrameScan(65537), RangeError);
      assert.throws(() => scanFramesInto(buf, 0, new FrameScan(), "wasm" as Engine), TypeError);
    });
  });

  for (const engine of engines) {
    describe(`FrameDecoder (${engine})`, () => {
      beforeEach(function () {
        requireEngine(this, engine);
      });

      it("yields the same frames however the stream is chunked", () => {
        const chunkedArb = framesArb.chain((frames) => {
          const length = encodeAll(frames).length;
          return fc.tuple(
            fc.constant(frames),
            fc.uniqueArray(fc.integer({ min: 0, max: length }), { maxLength: 20 }),
          );
        });
        fc.assert(
          fc.property(chunkedArb, ([frames, cuts]) => {
            const buf = encodeAll(frames);
            const points = [0, ...cuts.sort((a, b) => a - b), buf.length];
            const decoder = new FrameDecoder({ engine });
            const got: Frame[] = [];
            for (let i = 1; i < points.length; i++) {
              const result = decoder.push(buf.subarray(points[i - 1], points[i]));
              assert.equal(result.error, null);
              got.push(...result.frames);
            }
            assert.deepEqual(got, frames);
            assert.equal(decoder.pendingBytes, 0);
          }),
          { numRuns: 300 },
        );
      });

      it("returns payload copies that later pushes do not change", () => {
        const decoder = new FrameDecoder({ engine });
        const chunk = encodeFrame(MessageType.Ping, Uint8Array.of(1, 2, 3));
        const first = decoder.push(chunk).frames[0].payload;
        chunk.fill(0);
        decoder.push(encodeFrame(MessageType.Ping, Uint8Array.of(4, 5, 6)).subarray(0, 13));
        assert.deepEqual(first, Uint8Array.of(1, 2, 3));
      });

      it("carries a large frame across many small chunks", () => {
        const payload = Uint8Array.from({ length: 300_000 }, (_, i) => i & 0xff);
        const buf = encodeFrame(MessageType.CommitRequest, payload);
        const decoder = new FrameDecoder({ engine });
        const got: Frame[] = [];
        for (let at = 0; at < buf.length; at += 4093) {
          got.push(...decoder.push(buf.subarray(at, at + 4093)).frames);
        }
        assert.equal(got.length, 1);
        assert.deepEqual(got[0].payload, payload);
      });

      it("rejects an oversize header as soon as it arrives, then stays failed", () => {
        const decoder = new FrameDecoder({ engine, payloadBytesMax: 10 });
        const ok = encodeFrame(MessageType.Ping, new Uint8Array(8));
        const big = encodeFrame(MessageType.Ping, new Uint8Array(11));
        assert.equal(decoder.push(concat([ok, big.subarray(0, 6)])).frames.length, 1);
        const result = decoder.push(big.subarray(6, 12));
        assert.deepEqual(result, { frames: [], error: { code: "oversize" } });
        assert.deepEqual(decoder.push(ok), { frames: [], error: { code: "oversize" } });
        assert.deepEqual(decoder.error, { code: "oversize" });
      });

      it("returns the good frames of a chunk before its bad one", () => {
        const decoder = new FrameDecoder({ engine });
        const ok = encodeFrame(MessageType.Pong, Uint8Array.of(7));
        const bad = ok.slice();
        bad[12] ^= 0xff;
        const result = decoder.push(concat([ok, bad, ok]));
        assert.equal(result.frames.length, 1);
        assert.deepEqual(result.error, { code: "checksum" });
      });
    });
  }
});
