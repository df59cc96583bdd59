/**
 * Shared pieces of ordo's benchmarks: the row every hot-path benchmark
 * reports (native engine and TypeScript twin side by side), percentiles, a
 * V8 garbage-collection observer, a time-bounded measuring loop, and a table
 * printer that pairs each native row with its twin and prints the ratio.
 *
 * Benchmarks are not sans-I/O components: they read the real clock
 * (performance.now) and observe the real GC, which is the point.
 */
import { PerformanceObserver, performance } from "node:perf_hooks";
import { Command, InvalidArgumentError } from "commander";

export interface BenchRow {
  path: string;
  workload: string;
  engine: "native" | "js";
  opsPerSec: number;
  unit: string;
  p50Us: number;
  p99Us: number;
  gcCount: number;
  gcPauseMs: number;
}

/** Options every benchmark's `run` accepts. */
export interface BenchOptions {
  /** Measuring time per workload and engine. */
  seconds?: number;
}

export const bench_seconds_default = 1;
/** Time given to pending GC callbacks before and after a measurement. */
const gc_flush_ms = 30;
const us_per_ms = 1000;
const ms_per_s = 1000;
const samples_initial = 1024;

/** The `p` quantile (0..1) of ascending `sorted`; 0 when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Counts V8 garbage collections and their pause time while it is connected. */
export class GcObserver {
  count = 0;
  pauseMs = 0;
  readonly #observer: PerformanceObserver;

  constructor() {
    this.#observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        this.count++;
        this.pauseMs += entry.duration;
      }
    });
    this.#observer.observe({ entryTypes: ["gc"] });
  }

  disconnect(): void {
    this.#observer.disconnect();
  }
}

/** Lets queued GC entries reach the observer. */
export function gcFlush(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, gc_flush_ms));
}

export interface TimedRun {
  path: string;
  workload: string;
  engine: "native" | "js";
  unit: string;
  /** Operations (in `unit`) one call of `batch` performs. */
  opsPerBatch: number;
  seconds: number;
  /** One timed batch. */
  batch: () => void;
  /** Untimed calls before measuring (JIT warm-up). */
  warmupBatches?: number;
}

/**
 * Calls `run.batch` until `run.seconds` have passed and reports throughput,
 * p50/p99 per batch, and the GCs seen meanwhile.
 */
export async function measure(run: TimedRun, gc: GcObserver): Promise<BenchRow> {
  for (let i = 0; i < (run.warmupBatches ?? 50); i++) run.batch();
  await gcFlush();
  const gcCount = gc.count;
  const gcPause = gc.pauseMs;
  let samples = new Float64Array(samples_initial);
  let n = 0;
  const budgetMs = run.seconds * ms_per_s;
  const start = performance.now();
  let now = start;
  while (now - start < budgetMs) {
    const t0 = now;
    run.batch();
    now = performance.now();
    if (n === samples.length) {
      const grown = new Float64Array(samples.length * 2);
      grown.set(samples);
      samples = grown;
    }
    samples[n++] = now - t0;
  }
  const elapsedMs = now - start;
  await gcFlush();
  const sorted = samples.subarray(0, n).sort();
  return {
    path: run.path,
    workload: run.workload,
    engine: run.engine,
    opsPerSec: ((n * run.opsPerBatch) / elapsedMs) * ms_per_s,
    unit: run.unit,
    p50Us: percentile(sorted, 0.5) * us_per_ms,
    p99Us: percentile(sorted, 0.99) * us_per_ms,
    gcCount: gc.count - gcCount,
    gcPauseMs: gc.pauseMs - gcPause,
  };
}

function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} K/s`;
  return `${perSecond.toFixed(0)} /s`;
}

function formatUs(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} us`;
}

/**
 * Prints `rows` as an aligned table; each row's ratio is its throughput over
 * the js row of the same path and workload ("-" when there is none).
 */
export function printRows(
  rows: readonly BenchRow[],
  log: (line: string) => void = console.log,
): void {
  const twin = new Map<string, BenchRow>();
  for (const row of rows)
    if (row.engine === "js") twin.set(`${row.path}\u0000${row.workload}`, row);
  const header = [
    "path",
    "workload",
    "engine",
    "ops/s",
    "unit",
    "ratio",
    "p50",
    "p99",
    "GCs",
    "GC pause",
  ];
  const lines = rows.map((row) => {
    const reference = twin.get(`${row.path}\u0000${row.workload}`);
    const ratio =
      reference === undefined ? "-" : `${(row.opsPerSec / reference.opsPerSec).toFixed(2)}x`;
    return [
      row.path,
      row.workload,
      row.engine,
      formatRate(row.opsPerSec),
      row.unit,
      ratio,
      formatUs(row.p50Us),
      formatUs(row.p99Us),
      String(row.gcCount),
      `${row.gcPauseMs.toFixed(1)} ms`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  log(format(header));
  for (const line of lines) log(format(line));
}

/** A commander argument parser: a whole number of at least 1. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError("must be a positive integer");
  return n;
}

/** A commander argument parser: a finite number above 0. */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError("must be a positive number");
  }
  return n;
}

/** A bench's command line: `--help`, and unknown or bad options end it with a message. */
export function benchCommand(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .showHelpAfterError("(--help lists the options)")
    .allowExcessArguments(false);
}

/** `--seconds N` and `--json` from `argv` (process.argv.slice(2)). */
export function parseBenchArgs(
  name: string,
  description: string,
  argv: readonly string[],
): { seconds: number; json: boolean } {
  const command = benchCommand(name, description)
    .option("--seconds <n>", "seconds per measurement", positiveNumber, bench_seconds_default)
    .option("--json", "print the rows as JSON", false)
    .parse(argv, { from: "user" });
  return command.opts<{ seconds: number; json: boolean }>();
}
