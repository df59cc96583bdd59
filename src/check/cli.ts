/**
 * `ordo check --history FILE [--json] [--realtime]`: reads a list-append
 * history, checks it under snapshot isolation and prints the verdict.
 * `ordo check --dir DIR ...`: runs a fault campaign against the local
 * cluster in DIR (src/check/campaign/) and prints its verdict. Exit status:
 * 0 valid, 1 an anomaly forbidden under snapshot isolation (or a bank
 * violation, or a lost acknowledged append), 2 unreadable input or a
 * campaign that could not run.
 */
import fs from "node:fs";
import { InvalidArgumentError, type Command } from "commander";
import { formatCampaignReport } from "./campaign/report";
import { planted_bug_names, runCampaign } from "./campaign/runner";
import { isFaultMode, type FaultMode } from "./campaign/faults";
import { workload_kinds, type WorkloadKind } from "./campaign/types";
import { checkHistory } from "./checker";
import { CheckError } from "./errors";
import { parseHistory } from "./history";
import { formatReport } from "./report";

export const exit_valid = 0;
export const exit_invalid = 1;
export const exit_unreadable = 2;

export interface CheckCommandOptions {
  history: string;
  json?: boolean;
  realtime?: boolean;
}

export interface CheckCommandOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

const process_output: CheckCommandOutput = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

function readHistoryFile(path: string): string {
  try {
    return fs.readFileSync(path, "utf8");
  } catch (err) {
    throw new CheckError("unreadable", `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Runs the check command and returns its exit status; all output goes through `out`. */
export function runCheckCommand(
  opts: CheckCommandOptions,
  out: CheckCommandOutput = process_output,
): number {
  let result;
  try {
    const ops = parseHistory(readHistoryFile(opts.history));
    result = checkHistory(ops, { realtime: opts.realtime === true });
  } catch (err) {
    if (!(err instanceof CheckError)) throw err;
    out.stderr(`ordo: ${err.message}\n`);
    return exit_unreadable;
  }
  if (opts.json) out.stdout(JSON.stringify(result) + "\n");
  else out.stdout(formatReport(result, opts.history));
  return result.valid ? exit_valid : exit_invalid;
}

export interface CampaignCommandOptions {
  dir: string;
  qps?: number;
  clients?: number;
  /** Milliseconds. */
  duration?: number;
  workload?: WorkloadKind;
  faults?: FaultMode;
  /** Milliseconds. */
  faultInterval?: number;
  seed?: number;
  out?: string;
  accounts?: number;
  json?: boolean;
  realtime?: boolean;
  /** Deliberate bugs for the cluster the campaign starts (docs/checker.md, "Planted bugs"). */
  plantedBugs?: string[];
}

export const campaign_duration_ms_default = 60_000;

const duration_units_ms: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `60s`, `500ms`, `2m`, `1h`, or a plain number of seconds, to milliseconds. */
export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) throw new InvalidArgumentError(`not a duration: ${text} (e.g. 60s, 500ms, 2m)`);
  const ms = Number(m[1]) * duration_units_ms[m[2] ?? "s"]!;
  if (!(ms > 0)) throw new InvalidArgumentError("a duration must be positive");
  return Math.round(ms);
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

function parseInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError("must be an integer");
  return n;
}

function parseWorkload(value: string): WorkloadKind {
  if (!(workload_kinds as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`must be one of ${workload_kinds.join(", ")}`);
  }
  return value as WorkloadKind;
}

/** `a,b` to a list of planted bug names; each must be known. */
function parsePlantedBugs(value: string): string[] {
  const names = value
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  for (const name of names) {
    if (!planted_bug_names.includes(name)) {
      throw new InvalidArgumentError(
        `unknown bug ${name} (known: ${planted_bug_names.join(", ")})`,
      );
    }
  }
  return names;
}

function parseFaults(value: string): FaultMode {
  if (!isFaultMode(value)) {
    throw new InvalidArgumentError("must be none, kill-sidecar, stall-journal, kill-qp or all");
  }
  return value;
}

/** Runs a fault campaign and returns its exit status; progress goes to stderr. */
export async function runCampaignCommand(
  opts: CampaignCommandOptions,
  out: CheckCommandOutput = process_output,
): Promise<number> {
  let result;
  try {
    result = await runCampaign({
      dir: opts.dir,
      ...(opts.qps !== undefined ? { qps: opts.qps } : {}),
      ...(opts.clients !== undefined ? { clients: opts.clients } : {}),
      durationMs: opts.duration ?? campaign_duration_ms_default,
      workload: opts.workload ?? "append",
      faults: opts.faults ?? "none",
      ...(opts.faultInterval !== undefined ? { faultIntervalMs: opts.faultInterval } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      ...(opts.out !== undefined ? { out: opts.out } : {}),
      ...(opts.accounts !== undefined ? { accounts: opts.accounts } : {}),
      realtime: opts.realtime === true,
      ...(opts.plantedBugs !== undefined ? { plantedBugs: opts.plantedBugs } : {}),
      log: (line) => out.stderr(`ordo check: ${line}\n`),
    });
  } catch (err) {
    out.stderr(`ordo: campaign failed: ${(err as Error).message}\n`);
    return exit_unreadable;
  }
  if (opts.json) out.stdout(JSON.stringify(result) + "\n");
  else out.stdout(formatCampaignReport(result));
  return result.valid ? exit_valid : exit_invalid;
}

/** Adds `check` to the `ordo` program. */
export function registerCheckCommand(program: Command): void {
  program
    .command("check")
    .description(
      "check a list-append history (Elle format, JSON lines) under snapshot isolation, " +
        "or run a fault campaign against a local cluster (--dir)",
    )
    .option("--history <file>", "history file to check, one JSON operation per line")
    .option("--json", "print the result as one JSON object")
    .option("--realtime", "also order transactions by real time (strong snapshot isolation)")
    .option("--dir <dir>", "campaign: the cluster directory (started and stopped if not running)")
    .option("--qps <n>", "campaign: QPs of a cluster it starts", parsePositiveInt)
    .option("--clients <n>", "campaign: concurrent clients", parsePositiveInt)
    .option("--duration <time>", "campaign: how long to run (60s, 500ms, 2m)", parseDurationMs)
    .option("--workload <kind>", "campaign: append or bank", parseWorkload)
    .option(
      "--faults <kind>",
      "campaign: none, kill-sidecar, stall-journal, kill-qp or all",
      parseFaults,
    )
    .option(
      "--fault-interval <time>",
      "campaign: time between faults (default 5s)",
      parseDurationMs,
    )
    .option("--seed <n>", "campaign: seed of its random choices", parseInteger)
    .option("--out <file>", "campaign: history file (default DIR/check/history-<time>.jsonl)")
    .option("--accounts <n>", "campaign: bank accounts", parsePositiveInt)
    .option(
      "--planted-bugs <names>",
      `campaign, tests only: start the cluster with these bugs (${planted_bug_names.join(", ")})`,
      parsePlantedBugs,
    )
    .action(async (opts: Partial<CheckCommandOptions> & Partial<CampaignCommandOptions>) => {
      if (opts.dir !== undefined) {
        if (opts.history !== undefined) {
          process.stderr.write(
            "ordo: give --history (check a file) or --dir (run a campaign), not both\n",
          );
          process.exitCode = exit_unreadable;
          return;
        }
        process.exitCode = await runCampaignCommand({ ...opts, dir: opts.dir });
      } else if (opts.history !== undefined) {
        process.exitCode = runCheckCommand({ ...opts, history: opts.history });
      } else {
        process.stderr.write("ordo: check needs --history FILE or --dir DIR\n");
        process.exitCode = exit_unreadable;
      }
    });
}
