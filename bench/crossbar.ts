/**
 * Benchmark of the crossbar's merge and route (src/crossbar), native engine and
 * TypeScript twin side by side in one process: records per second through
 * push + release + drain, p50/p99 time per release call, and V8 garbage
 * collections (count and pause time) seen during each run.
 *
 * Shape: k journals (1, 4, 16, 40, 64) each push batches of records with one
 * write (8-byte key, 16-byte payload); taus are equal across journals, so ties
 * are broken by journal id all the time; each journal's watermark follows its
 * batches. Four subscribers own the four quarters of the key space and drain
 * into reused buffers after every release. Batches are encoded before timing
 * (about 110 MB for 2 M records), so each push reads its batch cold from
 * memory; a caller that has just received a batch would find it in cache.
 *
 * Run: node dist/bench/crossbar.js [records_per_run]
 * `run(options)` returns the same figures as BenchRows for bench/native.ts.
 */
import { performance } from "node:perf_hooks";
import {
  CrossbarMerge,
  encodeBatch,
  type CrossbarRecord,
  type EngineKind,
  type SubscriberConfig,
} from "../src/crossbar";
import { nativeAvailable } from "../src/native";
import {
  benchCommand,
  bench_seconds_default,
  GcObserver,
  gcFlush,
  positiveInteger,
  type BenchOptions,
  type BenchRow,
} from "./common";

const journal_counts = [1, 4, 16, 40, 64];
const records_per_run_default = 2_000_000;
const batch_records = 1024;
const key_bytes = 8;
const payload_bytes = 16;
const subscriber_buffer_bytes = 64 * 1024 * 1024;
const warmup_records = 200_000;
/** Journal counts and records per run of `run()`, sized for a quick side-by-side. */
const run_journal_counts = [4, 64];
const run_records_per_second = 400_000;

/** xorshift32: deterministic keys without touching Math.random. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const subscribers: SubscriberConfig[] = [0x00, 0x40, 0x80, 0xc0].map((lo) => ({
  ranges: [[Uint8Array.of(lo), lo === 0xc0 ? new Uint8Array(0) : Uint8Array.of(lo + 0x40)]],
  bufferBytesMax: subscriber_buffer_bytes,
}));

interface Workload {
  journals: number;
  /** batches[round][journal] */
  batches: Uint8Array[][];
  watermarks: number[];
  records: number;
}

function workload(journals: number, records: number): Workload {
  const rounds = Math.max(1, Math.round(records / (journals * batch_records)));
  const next = rng(journals * 7919);
  const batches: Uint8Array[][] = [];
  const watermarks: number[] = [];
  const payload = new Uint8Array(payload_bytes).fill(0xab);
  for (let r = 0; r < rounds; r++) {
    const round: Uint8Array[] = [];
    for (let j = 0; j < journals; j++) {
      const recs: CrossbarRecord[] = [];
      for (let i = 0; i < batch_records; i++) {
        const key = new Uint8Array(key_bytes);
        for (let b = 0; b < key_bytes; b += 4) new DataView(key.buffer).setUint32(b, next());
        recs.push({
          tau: r * batch_records + i,
          txn: r * batch_records + i,
          writes: [{ key, payload }],
        });
      }
      round.push(encodeBatch(recs));
    }
    batches.push(round);
    watermarks.push((r + 1) * batch_records - 1);
  }
  return { journals, batches, watermarks, records: rounds * journals * batch_records };
}

interface RunResult {
  recordsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  gcCount: number;
  gcPauseMs: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function runOnce(engine: EngineKind, w: Workload, gc: GcObserver): Promise<RunResult> {
  const merge = new CrossbarMerge({ journals: w.journals, subscribers, engine });
  const outs = subscribers.map(() => new Uint8Array(subscriber_buffer_bytes));
  const releaseMs = new Float64Array(w.batches.length);
  await gcFlush();
  const gcCountBefore = gc.count;
  const gcPauseBefore = gc.pauseMs;
  let released = 0;
  const start = performance.now();
  for (let r = 0; r < w.batches.length; r++) {
    const round = w.batches[r];
    for (let j = 0; j < w.journals; j++) merge.pushBatch(j, round[j], w.watermarks[r]);
    const t0 = performance.now();
    released += merge.release().released;
    releaseMs[r] = performance.now() - t0;
    for (let s = 0; s < subscribers.length; s++) merge.drainInto(s, outs[s]);
  }
  const elapsedMs = performance.now() - start;
  await gcFlush();
  merge.close();
  if (released !== w.records) throw new Error(`${engine}: released ${released} of ${w.records}`);
  releaseMs.sort();
  return {
    recordsPerSecond: (released / elapsedMs) * 1000,
    p50Ms: percentile(releaseMs, 0.5),
    p99Ms: percentile(releaseMs, 0.99),
    gcCount: gc.count - gcCountBefore,
    gcPauseMs: gc.pauseMs - gcPauseBefore,
  };
}

function fmtRate(perSecond: number): string {
  return `${(perSecond / 1e6).toFixed(2)} M/s`;
}

/**
 * The merge+route workload for bench/native.ts: for 4 and 64 journals, each
 * engine merges about `seconds` x 400k records (push + release + drain).
 */
export async function run(options: BenchOptions = {}): Promise<BenchRow[]> {
  const seconds = options.seconds ?? bench_seconds_default;
  const records = Math.max(batch_records * 64, Math.round(seconds * run_records_per_second));
  const engines: EngineKind[] = nativeAvailable() ? ["native", "js"] : ["js"];
  const gc = new GcObserver();
  const rows: BenchRow[] = [];
  try {
    const warm = workload(4, warmup_records);
    for (const engine of engines) await runOnce(engine, warm, gc);
    for (const journals of run_journal_counts) {
      const w = workload(journals, records);
      for (const engine of engines) {
        const r = await runOnce(engine, w, gc);
        rows.push({
          path: "crossbar",
          workload: `merge+route ${journals} journals`,
          engine,
          opsPerSec: r.recordsPerSecond,
          unit: "records",
          p50Us: r.p50Ms * 1000,
          p99Us: r.p99Ms * 1000,
          gcCount: r.gcCount,
          gcPauseMs: r.gcPauseMs,
        });
      }
    }
  } finally {
    gc.disconnect();
  }
  return rows;
}

async function main(): Promise<void> {
  const gc = new GcObserver();
  const command = benchCommand(
    "bench-crossbar",
    "the crossbar's merge and route, native and TypeScript twin",
  )
    .argument("[records_per_run]", "records per run", positiveInteger, records_per_run_default)
    .parse(process.argv.slice(2), { from: "user" });
  const recordsPerRun = command.processedArgs[0] as number;
  const engines: EngineKind[] = nativeAvailable() ? ["native", "js"] : ["js"];
  console.log(
    `crossbar merge+route: ${recordsPerRun} records/run, batches of ${batch_records}, ` +
      `${subscribers.length} subscribers over 4 key ranges, key ${key_bytes} B, payload ${payload_bytes} B`,
  );
  console.log(
    "(records/s covers push + release + drain; p50/p99 are per release call, one call per round)",
  );
  const warm = workload(4, warmup_records);
  for (const engine of engines) await runOnce(engine, warm, gc);
  const header = [
    "journals",
    "engine",
    "records/s",
    "ratio",
    "p50 release",
    "p99 release",
    "batch recs",
    "GCs",
    "GC pause",
  ];
  console.log(header.join("\t"));
  for (const journals of journal_counts) {
    const w = workload(journals, recordsPerRun);
    const results = new Map<EngineKind, RunResult>();
    for (const engine of engines) results.set(engine, await runOnce(engine, w, gc));
    const twin = results.get("js");
    for (const engine of engines) {
      const r = results.get(engine) as RunResult;
      const ratio = twin === undefined ? 1 : r.recordsPerSecond / twin.recordsPerSecond;
      console.log(
        [
          journals,
          engine,
          fmtRate(r.recordsPerSecond),
          `${ratio.toFixed(2)}x`,
          `${r.p50Ms.toFixed(3)} ms`,
          `${r.p99Ms.toFixed(3)} ms`,
          journals * batch_records,
          r.gcCount,
          `${r.gcPauseMs.toFixed(1)} ms`,
        ].join("\t"),
      );
    }
  }
  gc.disconnect();
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
