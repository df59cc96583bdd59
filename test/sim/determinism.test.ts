/**
 * The simulator replays a run exactly from its seed: the same seed gives the
 * same trace hash and the same figures; another seed gives another run.
 */
import assert from "node:assert/strict";
import { runScenario } from "../../src/sim";
import type { ScenarioOptions } from "../../src/sim";
import { Prng } from "../../src/sim/prng";

const small: ScenarioOptions = {
  seed: 11,
  design: "single",
  journals: 3,
  clients: 6,
  keys: 200,
  durationUs: 100_000,
  crashRate: 10,
  downUs: 5_000,
  clientLossP: 0.01,
};

describe("sim determinism", () => {
  it("prng streams are reproducible and forks are independent", () => {
    const a = new Prng(5);
    const b = new Prng(5);
    const xs = Array.from({ length: 8 }, () => a.nextU32());
    assert.deepEqual(
      xs,
      Array.from({ length: 8 }, () => b.nextU32()),
    );
    assert.notDeepEqual(new Prng(6).nextU32(), new Prng(5).nextU32());
    assert.notEqual(new Prng(5).fork("x").nextU32(), new Prng(5).fork("y").nextU32());
  });

  it("same seed, same trace hash (single sidecar with crashes and loss)", async () => {
    const first = await runScenario(small);
    const second = await runScenario(small);
    assert.equal(first.traceHash, second.traceHash);
    assert.equal(first.acked, second.acked);
    assert.deepEqual(first.commitToVisibleUs, second.commitToVisibleUs);
    assert.ok(first.acked > 0, "the run committed something");
    const other = await runScenario({ ...small, seed: 12 });
    assert.notEqual(other.traceHash, first.traceHash);
  });

  it("same seed, same trace hash and the same fault points fired (BUGGIFY on)", async () => {
    // Seeds whose runs switch on different points: each replays exactly.
    for (const seed of [11, 21, 31]) {
      const options: ScenarioOptions = { ...small, seed, buggify: true };
      const first = await runScenario(options);
      const second = await runScenario(options);
      assert.equal(first.traceHash, second.traceHash, `seed ${seed}`);
      assert.deepEqual(first.buggifyFired, second.buggifyFired, `seed ${seed}`);
    }
    const off = await runScenario(small);
    assert.deepEqual(off.buggifyFired, {});
  });

  for (const design of ["fenced", "hedged"] as const) {
    it(`same seed, same trace hash (split journals with stalls, crashes and partitions, ${design})`, async () => {
      const options: ScenarioOptions = {
        seed: 3,
        design,
        journals: 6,
        durationUs: 200_000,
        stallRate: 5,
        stallUs: 50_000,
        crashRate: 10,
        downUs: 10_000,
        partitionRate: 20,
        partitionUs: 10_000,
      };
      const first = await runScenario(options);
      const second = await runScenario(options);
      assert.equal(first.traceHash, second.traceHash);
      assert.equal(first.acked, second.acked);
      assert.ok(first.stalls > 0 && first.crashes > 0 && first.partitions > 0);
      assert.ok(first.fences > 0, "a stalled journal was fenced");
    });
  }
});
