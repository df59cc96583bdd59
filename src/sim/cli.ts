/**
 * `ordo sim`: one seeded run of the simulator, with a progress bar on
 * stderr. Prints throughput and commit-to-visible p50/p99/p999 against
 * nominal (the same seed with no stalls), writes an SVG chart with --svg,
 * and on a failed check prints the seed and the command that replays it.
 */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { plantedBug, planted_bug_names } from "./bugs";
import type { PlantedBugName, PlantedBugs } from "./bugs";
import { passed, replayCommand, runScenario } from "./scenario";
import type { ScenarioOptions, SimDesign, SimResult } from "./scenario";
import { renderChart } from "./svg";

function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(value);
  if (m === null) throw new InvalidArgumentError("a duration like 60s or 500ms");
  return Math.round(Number(m[1]) * (m[2] === "ms" ? 1_000 : 1_000_000));
}

function parseNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("must be a non-negative number");
  return n;
}

function progress(label: string): (fraction: number) => void {
  let last = -1;
  return (fraction) => {
    const pct = Math.floor(fraction * 100);
    if (pct === last || !process.stderr.isTTY) return;
    last = pct;
    const bar = "#".repeat(Math.floor(pct / 4)).padEnd(25, ".");
    process.stderr.write(`\r${label} [${bar}] ${pct}%${pct === 100 ? "\n" : ""}`);
  };
}

function summary(r: SimResult): Record<string, number> {
  return {
    throughput: Math.round(r.throughput),
    p50_ms: r.commitToVisibleUs.p50 / 1000,
    p99_ms: r.commitToVisibleUs.p99 / 1000,
    p999_ms: r.commitToVisibleUs.p999 / 1000,
  };
}

export function registerSimCommand(program: Command): void {
  program
    .command("sim")
    .description(
      "run the deterministic simulator: one seed drives network, disks, stalls, crashes and workload",
    )
    .option("--seed <n>", "the seed", parseNumber, 1)
    .option(
      "--journals <n>",
      "journals (each on its own host unless --design single)",
      parseNumber,
      40,
    )
    .option("--design <d>", "single | baseline | fenced | hedged", "baseline")
    .option("--stall-ms <ms>", "length of each stall", parseNumber, 1000)
    .option("--stall-rate <r>", "stalls per journal host per second", parseNumber, 0)
    .option(
      "--crash-rate <r>",
      "crashes per second: of the sidecar host (single), of a journal host (fenced, hedged)",
      parseNumber,
      0,
    )
    .option("--down-ms <ms>", "how long a crashed host stays down", parseNumber)
    .option(
      "--clock-step-back-ms <ms>",
      "a crashed host's clock comes back up to this far behind where it was",
      parseNumber,
    )
    .option(
      "--partition-rate <r>",
      "network partitions per second: a QP from the sidecar (single), a journal host from the crossbar or the adjudicator (fenced, hedged)",
      parseNumber,
      0,
    )
    .option("--partition-ms <ms>", "length of each partition", parseNumber)
    .option("--client-loss <p>", "probability that a commit request or reply is lost", parseNumber)
    .option(
      "--fence-ms <ms>",
      "silence after which a journal is fenced (fenced, hedged); fsync wait after which the sidecar fences a journal (single, default off)",
      parseNumber,
    )
    .option(
      "--retention-ms <ms>",
      "journal retention with this keep window, small segments (single; default off)",
      parseNumber,
    )
    .option("--qps <n>", "query processors (default 4)", parseNumber)
    .option("--clients <n>", "closed-loop clients (default 2 per journal)", parseNumber)
    .option("--keys <n>", "keys the clients write (default 100000)", parseNumber)
    .option("--writes-max <n>", "most keys one commit writes (default 4)", parseNumber)
    .option("--duration <d>", "virtual duration", parseDuration, 10_000_000)
    .option("--engine <e>", "native | js (crossbar and adjudicator)")
    .option("--bug <name>", `plant a bug: ${planted_bug_names.join(", ")}`)
    .option("--buggify", "switch on fault points inside the components (src/buggify)")
    .option("--no-nominal", "skip the run without stalls")
    .option("--no-check", "skip the checkers (saves memory on long runs)")
    .option("--svg <file>", "write a chart of throughput and latency over virtual time")
    .option("--json", "print one JSON object")
    .action(async (o: Record<string, unknown>) => {
      const design = o.design as SimDesign;
      if (!["single", "baseline", "fenced", "hedged"].includes(design))
        throw new InvalidArgumentError("--design single|baseline|fenced|hedged");
      const bugs: PlantedBugs = o.bug === undefined ? {} : plantedBug(o.bug as PlantedBugName);
      const base: ScenarioOptions = {
        seed: o.seed as number,
        design,
        journals: o.journals as number,
        durationUs: o.duration as number,
        stallUs: (o.stallMs as number) * 1000,
        stallRate: o.stallRate as number,
        crashRate: o.crashRate as number,
        partitionRate: o.partitionRate as number,
        ...(o.downMs !== undefined ? { downUs: (o.downMs as number) * 1000 } : {}),
        ...(o.clockStepBackMs !== undefined
          ? { clockStepBackUs: (o.clockStepBackMs as number) * 1000 }
          : {}),
        ...(o.partitionMs !== undefined ? { partitionUs: (o.partitionMs as number) * 1000 } : {}),
        ...(o.clientLoss !== undefined ? { clientLossP: o.clientLoss as number } : {}),
        ...(o.qps !== undefined ? { qps: o.qps as number } : {}),
        ...(o.keys !== undefined ? { keys: o.keys as number } : {}),
        ...(o.writesMax !== undefined ? { writesMax: o.writesMax as number } : {}),
        clients: o.clients as number | undefined,
        engine: o.engine as ScenarioOptions["engine"],
        bugs,
        buggify: o.buggify === true,
        ...(o.fenceMs !== undefined ? { fenceAfterUs: (o.fenceMs as number) * 1000 } : {}),
        ...(o.retentionMs !== undefined
          ? { retentionKeepUs: (o.retentionMs as number) * 1000 }
          : {}),
        check: o.check as boolean,
      };
      const runs: { label: string; result: SimResult }[] = [];
      if (o.nominal !== false && (base.stallRate ?? 0) > 0) {
        runs.push({
          label: "nominal (no stalls)",
          result: await runScenario({ ...base, stallRate: 0, onProgress: progress("nominal") }),
        });
      }
      const main = await runScenario({ ...base, onProgress: progress(design) });
      runs.push({
        label: `${design}, stalls ${o.stallMs} ms at ${o.stallRate}/s per host`,
        result: main,
      });
      const nominal = runs.length > 1 ? runs[0]!.result : null;
      const report = {
        seed: base.seed,
        design,
        journals: base.journals,
        virtual_s: base.durationUs / 1e6,
        ...summary(main),
        nominal: nominal === null ? null : summary(nominal),
        of_nominal: nominal === null ? null : main.throughput / Math.max(1, nominal.throughput),
        stalls: main.stalls,
        crashes: main.crashes,
        partitions: main.partitions,
        fences: main.fences,
        redirects: main.redirects,
        ...(base.retentionKeepUs !== undefined ? { removed_segments: main.removedSegments } : {}),
        sim_to_real: base.durationUs / 1000 / main.realMs,
        trace: main.traceHash,
        checks: main.checks,
        errors: main.errors,
        ...(base.buggify === true ? { buggify_fired: main.buggifyFired } : {}),
      };
      if (o.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      if (typeof o.svg === "string") writeFileSync(o.svg, renderChart(runs));
      if (!passed(main)) {
        process.stderr.write(
          `ordo sim: seed ${base.seed} FAILED; replay with:\n  ${replayCommand(base)}\n`,
        );
        process.exitCode = 1;
      }
    });
}
