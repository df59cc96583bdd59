/**
 * Tests for the crossbar's native door (NativeCrossbar in src/native/index.ts
 * and the functions native/bind_*.cc registers): the C++ side rejects bad
 * arguments and hostile bytes on its own, reached through the raw binding,
 * with OrdoNativeError and a stable code instead of a crash; handles are type
 * tagged; use after close throws "closed"; crossbars left open in a worker are
 * freed when the worker's environment shuts down.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { encodeBatch, encodeConfig } from "../../src/crossbar";
import {
  nativeBindingUnchecked,
  NativeCrossbar,
  OrdoNativeError,
  type OrdoNativeErrorCode,
} from "../../src/native";

function throwsNative(fn: () => unknown, code: OrdoNativeErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof OrdoNativeError, `expected OrdoNativeError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

const catch_all = [
  { ranges: [[new Uint8Array(0), new Uint8Array(0)] as const], bufferBytesMax: 1 << 16 },
];

describe("native crossbar door", () => {
  it("NativeCrossbar throws OrdoNativeError closed after close", () => {
    const crossbar = new NativeCrossbar(2, catch_all);
    crossbar.close();
    crossbar.close();
    throwsNative(() => crossbar.pushBatch(0, encodeBatch([]), -1), "closed");
    throwsNative(() => crossbar.globalWatermark, "closed");
  });

  it("the C++ side checks arguments again", () => {
    const raw = nativeBindingUnchecked();
    const config = encodeConfig(catch_all);
    const handle = raw.crossbarOpen(2, config);
    try {
      throwsNative(() => raw.crossbarOpen(0, config), "out_of_range");
      throwsNative(() => raw.crossbarOpen(2, new Uint8Array(3)), "malformed");
      throwsNative(() => raw.crossbarOpen(2, config.subarray(0, config.length - 1)), "malformed");
      throwsNative(() => raw.crossbarOpen(2, "x" as unknown as Uint8Array), "invalid_argument");
      throwsNative(() => raw.crossbarPushBatch({}, 0, encodeBatch([]), -1), "invalid_argument");
      throwsNative(() => raw.crossbarPushBatch(handle, 2, encodeBatch([]), -1), "out_of_range");
      throwsNative(() => raw.crossbarPushBatch(handle, 0, encodeBatch([]), -2), "out_of_range");
      throwsNative(
        () => raw.crossbarPushBatch(handle, 0, encodeBatch([]), 2 ** 53),
        "out_of_range",
      );
      throwsNative(() => raw.crossbarPushBatch(handle, 0, new Uint8Array(8), -1), "malformed");
      throwsNative(
        () =>
          raw.crossbarPushBatch(
            handle,
            0,
            encodeBatch([
              { tau: 3, txn: 0, writes: [] },
              { tau: 3, txn: 0, writes: [] },
            ]),
            -1,
          ),
        "out_of_order",
      );
      throwsNative(
        () => (raw.crossbarPushBatch as (...a: unknown[]) => void)(handle, 0),
        "invalid_argument",
      );
      throwsNative(() => raw.crossbarRelease(handle, 1, new Float64Array(2)), "out_of_range");
      throwsNative(() => raw.crossbarRelease(handle, 1.5, new Float64Array(8)), "out_of_range");
      throwsNative(
        () => raw.crossbarRelease(handle, 1, new Float32Array(8) as unknown as Float64Array),
        "invalid_argument",
      );
      throwsNative(() => raw.crossbarDrainInto(handle, 1, new Uint8Array(8)), "out_of_range");
      throwsNative(
        () => raw.crossbarSubscriberState(handle, 0, new Float64Array(1)),
        "out_of_range",
      );
      throwsNative(() => raw.crossbarClose(12), "invalid_argument");
    } finally {
      raw.crossbarClose(handle);
    }
    throwsNative(() => raw.crossbarRelease(handle, 1, new Float64Array(8)), "closed");
    throwsNative(() => raw.crossbarGlobalWatermark(handle), "closed");
  });

  it("frees crossbars left open when a worker's environment shuts down", async () => {
    const crossbar = path.resolve(__dirname, "../../src/crossbar/index.js");
    const source = `
      const { parentPort } = require("node:worker_threads");
      const x = require(${JSON.stringify(crossbar)});
      const opened = [];
      for (let i = 0; i < 8; i++) {
        const merge = new x.CrossbarMerge({
          journals: 4,
          subscribers: [{ ranges: [[new Uint8Array(0), new Uint8Array(0)]], bufferBytesMax: 1 << 20 }],
          engine: "native",
        });
        merge.pushBatch(0, x.encodeBatch([{ tau: 1, txn: 1, writes: [{ key: new Uint8Array(1), payload: new Uint8Array(1) }] }]), 5);
        opened.push(merge);
      }
      opened[0].close();
      parentPort.postMessage(opened.length);`;
    const worker = new Worker(source, { eval: true });
    const messages: unknown[] = [];
    worker.on("message", (message) => messages.push(message));
    const exitCode = await new Promise<number>((resolve, reject) => {
      worker.once("exit", resolve);
      worker.once("error", reject);
    });
    assert.equal(exitCode, 0);
    assert.deepEqual(messages, [8]);
    // The main thread's crossbars are unaffected.
    const main = new NativeCrossbar(1, catch_all);
    main.pushBatch(0, encodeBatch([{ tau: 1, txn: 1, writes: [] }]), 1);
    assert.equal(main.globalWatermark, 1);
    main.close();
  });
});
