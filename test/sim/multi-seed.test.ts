/**
 * A short multi-seed run: many small scenarios (crashes after which the
 * host's clock steps back, partitions, message loss, clock skew; stalls in
 * the split topologies) with BUGGIFY on, each
 * checked, a third of them with the TypeScript twins instead of the native
 * engines, two thirds of the single sidecar's with journal retention. A failure names the seed and the command that replays it. Every
 * fault point must have fired in some run, or it guards nothing.
 */
import assert from "node:assert/strict";
import { passed, replayCommand, runScenario } from "../../src/sim";
import type { ScenarioOptions, SimDesign } from "../../src/sim";
import { buggify_sites, type BuggifySite } from "../../src/buggify";

const seeds = Number(process.env.ORDO_SIM_SEEDS ?? 400);

describe("sim multi-seed", () => {
  it(`${seeds} seeds of small scenarios pass every checker`, async () => {
    const designs: SimDesign[] = ["single", "single", "baseline", "fenced", "single", "hedged"];
    const fired = new Map<BuggifySite, number>();
    let removedSegments = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const design = designs[seed % designs.length]!;
      // Every third seed runs the TypeScript twins of the crossbar, adjudicator and record engines.
      const engine = seed % 3 === 0 ? ({ engine: "js" } as const) : {};
      const options: ScenarioOptions =
        design === "single"
          ? {
              seed,
              design,
              ...engine,
              journals: 1 + (seed % 4),
              clients: 6,
              keys: 100,
              durationUs: 50_000,
              crashRate: 20,
              downUs: 3_000,
              clockStepBackUs: 5_000,
              partitionRate: 40,
              partitionUs: 4_000,
              clientLossP: 0.01,
              // Half the runs fence journals whose fsync waits (JournalSet's fencing, void log).
              ...(seed % 2 === 0 ? { fenceAfterUs: 700 } : {}),
              // Retention with a keep window shorter than the partitions: QPs hold records by their progress.
              ...(seed % 3 === 1 ? { retentionKeepUs: 3_000 } : {}),
              buggify: true,
            }
          : {
              seed,
              design,
              ...engine,
              journals: 4,
              clients: 6,
              keys: 100,
              durationUs: 100_000,
              stallRate: 5,
              stallUs: 30_000,
              // Journal hosts crash and are cut off only where the design fences them.
              ...(design === "baseline"
                ? {}
                : {
                    crashRate: 10,
                    downUs: 10_000,
                    clockStepBackUs: 5_000,
                    partitionRate: 20,
                    partitionUs: 10_000,
                  }),
              buggify: true,
            };
      const result = await runScenario(options);
      assert.ok(
        passed(result),
        `seed ${seed} failed: ${JSON.stringify({ checks: result.checks, errors: result.errors })}\nreplay: ${replayCommand(options)}`,
      );
      removedSegments += result.removedSegments;
      for (const [site, n] of Object.entries(result.buggifyFired))
        fired.set(site as BuggifySite, (fired.get(site as BuggifySite) ?? 0) + n);
    }
    if (seeds >= 100) {
      const never = buggify_sites.filter((site) => !fired.has(site));
      assert.deepEqual(never, [], `fault points that never fired: ${never.join(", ")}`);
      assert.ok(removedSegments > 0, "retention never removed a segment");
    }
  });
});
