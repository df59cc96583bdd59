/**
 * Property tests for src/check: histories from a serial executor (random
 * transactions applied one at a time, failed ones dropped, info ones kept or
 * dropped wholly) are always valid, with and without real-time edges; and a
 * 100k-transaction history checks to completion.
 */
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { checkHistory } from "../../src/check";
import { seededRandom, serialHistory } from "./history-builder";

describe("checkHistory on serial histories", () => {
  it("finds no anomaly in any serial history", () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.record({
          txns: fc.integer({ min: 1, max: 120 }),
          processes: fc.integer({ min: 1, max: 6 }),
          activeKeys: fc.integer({ min: 1, max: 5 }),
          appendsPerKeyMax: fc.integer({ min: 1, max: 10 }),
          mopsMax: fc.integer({ min: 1, max: 6 }),
          failRate: fc.double({ min: 0, max: 0.3, noNaN: true }),
          infoRate: fc.double({ min: 0, max: 0.3, noNaN: true }),
        }),
        (seed, o) => {
          const ops = serialHistory(seededRandom(seed), o);
          for (const realtime of [false, true]) {
            const res = checkHistory(ops, { realtime });
            assert.deepEqual(res.anomalies, [], JSON.stringify(res.anomalies[0]));
            assert.equal(res.valid, true);
            assert.equal(res.stats.txns, o.txns);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("catches a serial history with one read rewound (the checker can fail)", () => {
    const ops = serialHistory(seededRandom(7), {
      txns: 200,
      processes: 3,
      activeKeys: 2,
      appendsPerKeyMax: 20,
      mopsMax: 4,
      failRate: 0,
      infoRate: 0,
    });
    // make the last read of a non-empty list forget its last element: a stale read
    for (let i = ops.length - 1; i >= 0; i--) {
      const op = ops[i];
      if (op.type !== "ok" || !op.value) continue;
      const at = op.value.findIndex((m) => m[0] === "r" && m[2] !== null && m[2].length > 1);
      if (at < 0 || op.value.slice(0, at).some((m) => m[1] === op.value![at][1])) continue;
      const m = op.value[at];
      const value = [...op.value];
      value[at] = ["r", m[1], (m[2] as (number | string)[]).slice(0, -1)];
      ops[i] = { ...op, value };
      break;
    }
    assert.equal(checkHistory(ops, { realtime: true }).valid, false);
  });

  it("checks a 100k-transaction serial history", function () {
    this.timeout(120_000);
    const ops = serialHistory(seededRandom(42), {
      txns: 100_000,
      processes: 10,
      activeKeys: 16,
      appendsPerKeyMax: 16,
      mopsMax: 4,
      failRate: 0.02,
      infoRate: 0.02,
    });
    const res = checkHistory(ops);
    assert.deepEqual(res.counts, {});
    assert.equal(res.stats.txns, 100_000);
    assert.equal(checkHistory(ops, { realtime: true }).valid, true);
  });
});
