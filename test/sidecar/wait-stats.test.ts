/** Tests src/sidecar/wait-stats.ts: bounded memory, exact percentiles. */
import assert from "node:assert/strict";
import { WaitStats, wait_samples_max } from "../../src/sidecar/wait-stats";

describe("WaitStats", function () {
  it("reports zeros before any wait", function () {
    assert.deepEqual(new WaitStats().summary(), {
      count: 0,
      p50Us: 0,
      p99Us: 0,
      p999Us: 0,
      maxUs: 0,
    });
  });

  it("gives percentiles over the recorded waits", function () {
    const stats = new WaitStats();
    for (let i = 1000; i >= 1; i--) stats.record(i);
    const s = stats.summary();
    assert.equal(s.count, 1000);
    assert.equal(s.p50Us, 501);
    assert.equal(s.p99Us, 991);
    assert.equal(s.maxUs, 1000);
  });

  it("keeps only the most recent waits", function () {
    const stats = new WaitStats();
    for (let i = 0; i < wait_samples_max; i++) stats.record(1_000_000);
    for (let i = 0; i < wait_samples_max; i++) stats.record(5);
    const s = stats.summary();
    assert.equal(s.count, 2 * wait_samples_max);
    assert.equal(s.maxUs, 5);
  });

  it("refuses a negative wait", function () {
    assert.throws(() => new WaitStats().record(-1), RangeError);
  });
});
