/**
 * Tests for src/native/index.ts and the addon behind it (native/). These fail
 * when the addon is not built, so CI notices a broken native build instead of
 * silently running the TypeScript twins. They check both doors: the wrapper's
 * argument checks, and the C++ side's own checks reached through the raw
 * binding, which must throw OrdoNativeError rather than crash.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import {
  crc32cNative,
  nativeAvailable,
  nativeBindingUnchecked,
  nativeCrc32cHardware,
  nativeLoadError,
  OrdoNativeError,
  realtimeMicros,
  scanFramesNative,
  type OrdoNativeErrorCode,
} from "../../src/native";
import { crc32cJs } from "../../src/protocol/crc32c";
import { encodeFrame, frame_payload_bytes_max, MessageType } from "../../src/protocol/frame";

const us_per_ms = 1000;
const clock_sanity_us = 1_000_000;

function throwsNative(fn: () => unknown, code: OrdoNativeErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof OrdoNativeError, `expected OrdoNativeError, got ${String(error)}`);
    assert.ok(error instanceof Error);
    assert.equal(error.code, code);
    return true;
  });
}

describe("native addon", () => {
  it("is built and loaded", () => {
    assert.equal(nativeLoadError(), null, `addon failed to load: ${nativeLoadError()?.message}`);
    assert.equal(nativeAvailable(), true);
    assert.equal(typeof nativeCrc32cHardware(), "boolean");
  });

  describe("wrapper checks arguments before the call", () => {
    it("crc32cNative", () => {
      assert.throws(() => crc32cNative("abc" as unknown as Uint8Array), TypeError);
      assert.throws(() => crc32cNative(new Uint16Array(4) as unknown as Uint8Array), TypeError);
      assert.throws(() => crc32cNative(new Uint8Array(4), -1), RangeError);
      assert.throws(() => crc32cNative(new Uint8Array(4), 2 ** 32), RangeError);
      assert.throws(() => crc32cNative(new Uint8Array(4), 1.5), RangeError);
      assert.throws(() => crc32cNative(new Uint8Array(4), null as unknown as number), TypeError);
    });

    it("scanFramesNative", () => {
      const buf = new Uint8Array(12);
      assert.throws(() => scanFramesNative({} as Uint8Array, 0), TypeError);
      assert.throws(() => scanFramesNative(buf, -1), RangeError);
      assert.throws(() => scanFramesNative(buf, frame_payload_bytes_max + 1), RangeError);
      assert.throws(() => scanFramesNative(buf, Number.POSITIVE_INFINITY), RangeError);
      assert.throws(() => scanFramesNative(buf, undefined as unknown as number), TypeError);
    });
  });

  describe("C++ side checks again and throws OrdoNativeError", () => {
    const raw = () => nativeBindingUnchecked();
    const out = () => new Uint32Array(4 + 3 * 8);

    it("crc32c rejects non-bytes, bad seeds and wrong arity", () => {
      throwsNative(() => raw().crc32c("abc" as unknown as Uint8Array, 0), "invalid_argument");
      throwsNative(() => raw().crc32c(new Uint8ClampedArray(2) as unknown as Uint8Array, 0), "invalid_argument");
      throwsNative(() => raw().crc32c(new DataView(new ArrayBuffer(2)) as unknown as Uint8Array, 0), "invalid_argument");
      throwsNative(() => raw().crc32c(new Uint8Array(2), -1), "out_of_range");
      throwsNative(() => raw().crc32c(new Uint8Array(2), 2 ** 32), "out_of_range");
      throwsNative(() => raw().crc32c(new Uint8Array(2), Number.NaN), "out_of_range");
      throwsNative(() => raw().crc32c(new Uint8Array(2), "0" as unknown as number), "invalid_argument");
      throwsNative(() => (raw().crc32c as (...args: unknown[]) => number)(new Uint8Array(2)), "invalid_argument");
    });

    it("scanFrames rejects bad buffers, bounds and output arrays", () => {
      const buf = new Uint8Array(24);
      throwsNative(() => raw().scanFrames([] as unknown as Uint8Array, 0, out()), "invalid_argument");
      throwsNative(() => raw().scanFrames(buf, -1, out()), "out_of_range");
      throwsNative(() => raw().scanFrames(buf, frame_payload_bytes_max + 1, out()), "out_of_range");
      throwsNative(() => raw().scanFrames(buf, 0.5, out()), "out_of_range");
      throwsNative(() => raw().scanFrames(buf, 0, new Int32Array(16) as unknown as Uint32Array), "invalid_argument");
      throwsNative(() => raw().scanFrames(buf, 0, new Uint32Array(6)), "out_of_range");
    });

    it("scanFrames honours a small output array and reports it full", () => {
      const frame = encodeFrame(MessageType.Ping, Uint8Array.of(1));
      const buf = new Uint8Array(frame.length * 3);
      for (let i = 0; i < 3; i++) buf.set(frame, i * frame.length);
      const small = new Uint32Array(4 + 3 * 2);
      assert.equal(raw().scanFrames(buf, 100, small), 2);
      assert.deepEqual(Array.from(small), [2, 2 * frame.length, 0, 1, 4, 12, 1, 4, 25, 1]);
    });

    it("treats a detached buffer as empty instead of crashing", () => {
      const backing = new ArrayBuffer(16);
      const view = new Uint8Array(backing);
      structuredClone(backing, { transfer: [backing] });
      assert.equal(view.length, 0);
      assert.equal(raw().crc32c(view, 0), 0);
      assert.equal(raw().scanFrames(view, 0, out()), 0);
    });
  });

  it("table path agrees with the twin (the SSE4.2 path is checked in test/protocol)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.integer({ min: 0, max: 0xffffffff }), (data, seed) => {
        assert.equal(nativeBindingUnchecked().crc32cTable(data, seed), crc32cJs(data, seed));
        assert.equal(crc32cNative(data, seed), crc32cJs(data, seed));
      }),
      { numRuns: 200 },
    );
  });

  it("realtimeMicros is an integer near Date.now() in microseconds", () => {
    const before = Date.now() * us_per_ms;
    const now = realtimeMicros();
    const after = Date.now() * us_per_ms;
    assert.ok(Number.isSafeInteger(now));
    assert.ok(now >= before - clock_sanity_us && now <= after + clock_sanity_us, `${now} vs ${before}`);
  });

  it("loads in a worker thread and unloads with it", async () => {
    const wrapper = path.resolve(__dirname, "../../src/native/index.js");
    const source = `
      const { parentPort } = require("node:worker_threads");
      const native = require(${JSON.stringify(wrapper)});
      parentPort.postMessage({
        available: native.nativeAvailable(),
        crc: native.crc32cNative(new TextEncoder().encode("123456789")),
      });`;
    const worker = new Worker(source, { eval: true });
    const messages: unknown[] = [];
    worker.on("message", (message) => messages.push(message));
    const exitCode = await new Promise<number>((resolve, reject) => {
      worker.once("exit", resolve);
      worker.once("error", reject);
    });
    assert.equal(exitCode, 0);
    assert.deepEqual(messages, [{ available: true, crc: 0xe3069283 }]);
    // The main thread's instance is unaffected by the worker's cleanup.
    assert.equal(crc32cNative(new TextEncoder().encode("123456789")), 0xe3069283);
  });
});
