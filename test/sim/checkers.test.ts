/**
 * Each planted bug breaks one guarantee, and the checker for that guarantee
 * catches it; with no bug planted the same runs are clean.
 */
import assert from "node:assert/strict";
import { passed, plantedBug, runScenario } from "../../src/sim";
import type { ScenarioOptions } from "../../src/sim";

const contended: ScenarioOptions = {
  seed: 1,
  design: "single",
  journals: 4,
  clients: 16,
  keys: 30,
  writesMax: 3,
  durationUs: 200_000,
};

describe("sim checkers catch planted bugs", () => {
  it("a clean run passes every checker", async () => {
    const result = await runScenario({ ...contended, crashRate: 10, downUs: 5_000 });
    assert.ok(passed(result), JSON.stringify({ checks: result.checks, errors: result.errors }));
    assert.ok(result.crashes > 0 && result.acked > 0);
  });

  it("snapshot isolation: an adjudicator that ignores in-flight keys", async () => {
    const result = await runScenario({
      ...contended,
      bugs: plantedBug("adjudicator-ignores-in-flight"),
    });
    assert.ok(
      result.checks !== null && result.checks.snapshotIsolation.length > 0,
      JSON.stringify(result.checks),
    );
  });

  it("total order: a crossbar told watermarks above the journals' promises", async () => {
    const result = await runScenario({ ...contended, bugs: plantedBug("crossbar-watermark-bump") });
    assert.ok(
      result.checks !== null && result.checks.totalOrder.length > 0,
      JSON.stringify(result.checks),
    );
  });

  for (const design of ["baseline", "hedged"] as const) {
    it(`total order: the same bug in the split topology (${design})`, async () => {
      const result = await runScenario({
        seed: 2,
        design,
        journals: 6,
        durationUs: 200_000,
        bugs: plantedBug("crossbar-watermark-bump"),
      });
      assert.ok(!passed(result), JSON.stringify({ checks: result.checks, errors: result.errors }));
    });
  }

  it("durability: a journal disk that acknowledges before fsync, then crashes", async () => {
    const result = await runScenario({
      ...contended,
      keys: 100_000,
      crashRate: 20,
      downUs: 5_000,
      bugs: plantedBug("journal-ack-before-fsync"),
    });
    assert.ok(
      result.checks !== null && result.checks.durability.length > 0,
      JSON.stringify(result.checks),
    );
  });
});
