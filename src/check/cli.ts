/**
 * `ordo check --history FILE [--json] [--realtime]`: reads a list-append
 * history, checks it under snapshot isolation and prints the verdict. The
 * only file of the checker that does I/O. Exit status: 0 valid, 1 an
 * anomaly forbidden under snapshot isolation, 2 unreadable input.
 */
import fs from "node:fs";
import type { Command } from "commander";
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

/** Adds `check` to the `ordo` program. */
export function registerCheckCommand(program: Command): void {
  program
    .command("check")
    .description("check a list-append history (Elle format, JSON lines) under snapshot isolation")
    .requiredOption("--history <file>", "history file, one JSON operation per line")
    .option("--json", "print the result as one JSON object")
    .option("--realtime", "also order transactions by real time (strong snapshot isolation)")
    .action((opts: CheckCommandOptions) => {
      process.exitCode = runCheckCommand(opts);
    });
}
