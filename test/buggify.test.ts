/**
 * BUGGIFY fault points: off outside the simulator; in it, a point is on for a
 * run by the seed and then fires now and then, reproducibly.
 */
import assert from "node:assert/strict";
import { buggify_off, buggify_sites } from "../src/buggify";
import { SimBuggify } from "../src/sim/buggify";
import { Prng } from "../src/sim/prng";

describe("buggify", function () {
  it("never fires outside the simulator", function () {
    for (const site of buggify_sites)
      for (let i = 0; i < 1000; i++) assert.equal(buggify_off.fires(site), false);
  });

  it("switches each point on for a run by the seed, then fires it at about its rate", function () {
    let on = 0;
    let fires = 0;
    let draws = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const buggify = new SimBuggify(new Prng(seed), 0.25, 0.25);
      const site = buggify_sites[seed % buggify_sites.length]!;
      let fired = 0;
      for (let i = 0; i < 200; i++) if (buggify.fires(site)) fired++;
      if (fired > 0) {
        on++;
        fires += fired;
        draws += 200;
      }
      assert.deepEqual(buggify.fired(), fired > 0 ? { [site]: fired } : {});
    }
    assert.ok(on > 60 && on < 140, `on in ${on} of 400 runs`);
    assert.ok(Math.abs(fires / draws - 0.25) < 0.03, `fired ${fires} of ${draws}`);
  });

  it("replays the same decisions from the same seed", function () {
    const run = (seed: number): boolean[] => {
      const buggify = new SimBuggify(new Prng(seed), 1, 0.5);
      return Array.from({ length: 64 }, (_, i) => buggify.fires(buggify_sites[i % 3]!));
    };
    assert.deepEqual(run(7), run(7));
    assert.notDeepEqual(run(7), run(8));
  });
});
