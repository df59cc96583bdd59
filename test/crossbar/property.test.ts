/**
 * Property tests for src/crossbar: the native engine, the TypeScript twin and
 * a brute-force model (test/crossbar/model.ts) run the same random scenario
 * side by side and must agree after every step: release summaries, drained
 * bytes, overflow reports, watermarks and rejections. Scenarios include empty
 * journals, equal taus across journals, watermarks that do not move, buffers
 * that fill, keys at range boundaries and batches that break tau order. A
 * second property mutates valid batches at random and checks both engines
 * reject (or accept) them alike.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CrossbarMerge,
  encodeBatch,
  type CrossbarRecord,
  type KeyRange,
  type SubscriberConfig,
} from "../../src/crossbar";
import { ModelCrossbar } from "./model";

const runs = 200;
/** Key bytes drawn from the edges of the byte range, so boundaries are hit often. */
const key_byte = fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff);
const key = fc
  .uint8Array({ minLength: 0, maxLength: 3 })
  .chain((shape) =>
    fc
      .array(key_byte, { minLength: shape.length, maxLength: shape.length })
      .map((b) => Uint8Array.from(b)),
  );

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const range: fc.Arbitrary<KeyRange> = fc
  .tuple(key, key, fc.boolean())
  .filter(([a, b, open]) => open || compareBytes(a, b) !== 0)
  .map(([a, b, open]) => {
    const [lo, hi] = compareBytes(a, b) < 0 ? [a, b] : [b, a];
    return open ? ([lo, new Uint8Array(0)] as const) : ([lo, hi] as const);
  });

const subscriber: fc.Arbitrary<SubscriberConfig> = fc.record({
  ranges: fc.array(range, { maxLength: 3 }),
  bufferBytesMax: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constant(1 << 20)),
});

const records: fc.Arbitrary<CrossbarRecord[]> = fc
  .uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 5 })
  .chain((taus) =>
    fc.tuple(
      ...[...taus]
        .sort((a, b) => a - b)
        .map((tau) =>
          fc.record({
            tau: fc.constant(tau),
            txn: fc.nat({ max: 2 ** 40 }),
            writes: fc.array(fc.record({ key, payload: fc.uint8Array({ maxLength: 4 }) }), {
              maxLength: 3,
            }),
          }),
        ),
    ),
  );

type Op =
  | {
      kind: "push";
      journal: number;
      records: CrossbarRecord[];
      watermark: number;
      shuffle: boolean;
    }
  | { kind: "advance"; journal: number; tau: number }
  | { kind: "release"; max: number }
  | { kind: "drain"; subscriber: number; capacity: number }
  | { kind: "reset"; subscriber: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("push" as const),
      journal: fc.nat(),
      records,
      watermark: fc.integer({ min: -1, max: 45 }),
      shuffle: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      journal: fc.nat(),
      tau: fc.integer({ min: -1, max: 45 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("release" as const),
      max: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constant(1e9)),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("drain" as const),
      subscriber: fc.nat(),
      capacity: fc.oneof(fc.integer({ min: 0, max: 120 }), fc.constant(1 << 21)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("reset" as const), subscriber: fc.nat() }),
  },
);

const scenario = fc.record({
  journals: fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 1, max: 6 }) },
    { weight: 1, arbitrary: fc.integer({ min: 7, max: 70 }) },
  ),
  subscribers: fc.array(subscriber, { maxLength: 4 }),
  ops: fc.array(op, { maxLength: 40 }),
  finish: fc.boolean(),
});

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
  } catch (error) {
    return String((error as { code?: unknown }).code);
  }
  return null;
}

describe("crossbar engines agree with each other and with a brute-force model", () => {
  it("random scenarios", () => {
    fc.assert(
      fc.property(scenario, ({ journals, subscribers, ops, finish }) => {
        const native = new CrossbarMerge({ journals, subscribers, engine: "native" });
        const js = new CrossbarMerge({ journals, subscribers, engine: "js" });
        const model = new ModelCrossbar(journals, subscribers);
        const released: { native: [number, number][]; js: [number, number][] } = {
          native: [],
          js: [],
        };
        const step = (o: Op): void => {
          switch (o.kind) {
            case "push": {
              const journal = o.journal % journals;
              const recs = o.shuffle && o.records.length > 1 ? [...o.records].reverse() : o.records;
              const batch = encodeBatch(recs);
              const expected = model.pushBatch(journal, recs, o.watermark);
              assert.equal(
                codeOf(() => native.pushBatch(journal, batch, o.watermark)),
                expected,
              );
              assert.equal(
                codeOf(() => js.pushBatch(journal, batch, o.watermark)),
                expected,
              );
              break;
            }
            case "advance": {
              const journal = o.journal % journals;
              model.advanceWatermark(journal, o.tau);
              native.advanceWatermark(journal, o.tau);
              js.advanceWatermark(journal, o.tau);
              break;
            }
            case "release": {
              const expected = model.release(o.max);
              const a = { ...native.release(o.max) };
              const b = { ...js.release(o.max) };
              assert.deepEqual(a, expected);
              assert.deepEqual(b, expected);
              if (a.released > 0) released.native.push([a.lastTau, a.lastJournal]);
              if (b.released > 0) released.js.push([b.lastTau, b.lastJournal]);
              break;
            }
            case "drain": {
              if (subscribers.length === 0) break;
              const s = o.subscriber % subscribers.length;
              const expected = model.drain(s, o.capacity);
              const outA = new Uint8Array(o.capacity);
              const outB = new Uint8Array(o.capacity);
              const lengthA = native.drainInto(s, outA);
              const lengthB = js.drainInto(s, outB);
              assert.deepEqual(outA.subarray(0, lengthA), expected);
              assert.deepEqual(outB.subarray(0, lengthB), expected);
              break;
            }
            case "reset": {
              if (subscribers.length === 0) break;
              const s = o.subscriber % subscribers.length;
              model.reset(s);
              native.resetSubscriber(s);
              js.resetSubscriber(s);
              break;
            }
          }
          assert.equal(native.globalWatermark, model.globalWatermark);
          assert.equal(js.globalWatermark, model.globalWatermark);
          for (let s = 0; s < subscribers.length; s++) {
            assert.deepEqual(native.subscriberState(s), model.state(s));
            assert.deepEqual(js.subscriberState(s), model.state(s));
          }
          assert.deepEqual(native.overflows(), js.overflows());
        };
        try {
          for (const o of ops) step(o);
          if (finish) {
            for (let j = 0; j < journals; j++) step({ kind: "advance", journal: j, tau: 100 });
            step({ kind: "release", max: 1e9 });
            assert.equal(model.pending.length, 0);
            for (let s = 0; s < subscribers.length; s++)
              step({ kind: "drain", subscriber: s, capacity: 1 << 21 });
          }
          // The whole release sequence is sorted by (tau, journal), whatever
          // the interleaving of pushes, watermarks and releases.
          const log = model.releasedLog.map((r) => [r.tau, r.journal]);
          const sorted = [...log].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          assert.deepEqual(log, sorted);
          assert.deepEqual(released.native, released.js);
        } finally {
          native.close();
          js.close();
        }
      }),
      { numRuns: runs },
    );
  });

  it("release(1) steps give the brute-force order", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.nat(), records, fc.integer({ min: -1, max: 45 })), { maxLength: 12 }),
        fc.array(fc.integer({ min: -1, max: 45 }), { minLength: 8, maxLength: 8 }),
        (journals, pushes, finals) => {
          const engines = [
            new CrossbarMerge({ journals, subscribers: [], engine: "native" }),
            new CrossbarMerge({ journals, subscribers: [], engine: "js" }),
          ];
          const model = new ModelCrossbar(journals, []);
          try {
            for (const [j, recs, watermark] of pushes) {
              const journal = j % journals;
              const expected = model.pushBatch(journal, recs, watermark);
              for (const e of engines)
                assert.equal(
                  codeOf(() => e.pushBatch(journal, encodeBatch(recs), watermark)),
                  expected,
                );
            }
            for (let j = 0; j < journals; j++) {
              model.advanceWatermark(j, finals[j]);
              for (const e of engines) e.advanceWatermark(j, finals[j]);
            }
            // Brute force: sort every accepted record, keep those at or below min_j W_j.
            const gw = model.globalWatermark;
            const expected = model.pending
              .filter((r) => r.tau <= gw)
              .sort((a, b) => a.tau - b.tau || a.journal - b.journal)
              .map((r) => [r.tau, r.journal]);
            for (const e of engines) {
              const order: number[][] = [];
              for (let s = e.release(1); s.released === 1; s = e.release(1))
                order.push([s.lastTau, s.lastJournal]);
              assert.deepEqual(order, expected);
              assert.equal(e.globalWatermark, gw);
            }
          } finally {
            for (const e of engines) e.close();
          }
        },
      ),
      { numRuns: runs },
    );
  });

  it("mutated batches are rejected or accepted alike", () => {
    fc.assert(
      fc.property(
        records,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: -2, max: 2 }),
        (recs, flips, resize) => {
          const good = encodeBatch(recs);
          const bad = new Uint8Array(Math.max(0, good.length + resize));
          bad.set(good.subarray(0, Math.min(good.length, bad.length)));
          for (const [at, value] of flips) if (bad.length > 0) bad[at % bad.length] = value;
          const engines = [
            new CrossbarMerge({
              journals: 1,
              subscribers: [
                { ranges: [[new Uint8Array(0), new Uint8Array(0)]], bufferBytesMax: 1 << 20 },
              ],
              engine: "native",
            }),
            new CrossbarMerge({
              journals: 1,
              subscribers: [
                { ranges: [[new Uint8Array(0), new Uint8Array(0)]], bufferBytesMax: 1 << 20 },
              ],
              engine: "js",
            }),
          ];
          try {
            const codes = engines.map((e) => codeOf(() => e.pushBatch(0, bad, -1)));
            assert.equal(codes[0], codes[1]);
            if (codes[0] === null) {
              for (const e of engines) e.advanceWatermark(0, 2 ** 53 - 1);
              const summaries = engines.map((e) => ({ ...e.release() }));
              assert.deepEqual(summaries[0], summaries[1]);
              assert.deepEqual(engines[0].drain(0), engines[1].drain(0));
            }
          } finally {
            for (const e of engines) e.close();
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
