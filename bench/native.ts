/**
 * `npm run bench:native`: every native hot path next to its TypeScript twin
 * in one process (DESIGN §6): operations per second, the native/js ratio,
 * p50 and p99 time per batch, and V8 GC count and pause time during each run.
 *
 * Paths: CRC32C over 4 KiB buffers, frame scanning (src/protocol/frame.ts),
 * journal record batches (bench/records.ts), the crossbar's merge and route
 * (bench/crossbar.ts), and the adjudicator's conflict table
 * (bench/conflict-table.ts) when that benchmark is present.
 *
 * Run: node dist/bench/native.js [--seconds N] [--json]   (N per workload and engine, default 1)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
  crc32cNative,
  nativeAvailable,
  nativeCrc32cHardware,
  nativeLoadError,
} from "../src/native";
import { crc32cJs } from "../src/protocol/crc32c";
import {
  encodeFrame,
  frame_payload_bytes_max,
  FrameScan,
  MessageType,
  scanFramesInto,
} from "../src/protocol/frame";
import { run as runCrossbar } from "./crossbar";
import {
  GcObserver,
  measure,
  parseBenchArgs,
  printRows,
  type BenchOptions,
  type BenchRow,
} from "./common";
import { run as runRecords } from "./records";

const crc_buffer_bytes = 4096;
const crc_buffers_per_batch = 64;
const scan_frames_per_buffer = 256;
const scan_payload_bytes = 200;
type Engine = "native" | "js";

function engines(): Engine[] {
  return nativeAvailable() ? ["native", "js"] : ["js"];
}

async function runCrc32c(options: BenchOptions): Promise<BenchRow[]> {
  const buffers: Uint8Array[] = [];
  for (let i = 0; i < crc_buffers_per_batch; i++) {
    const buffer = new Uint8Array(crc_buffer_bytes);
    for (let b = 0; b < buffer.length; b++) buffer[b] = (i * 131 + b * 7) & 0xff;
    buffers.push(buffer);
  }
  const gc = new GcObserver();
  const rows: BenchRow[] = [];
  try {
    for (const engine of engines()) {
      const crc = engine === "native" ? crc32cNative : crc32cJs;
      let sink = 0;
      rows.push(
        await measure(
          {
            path: "crc32c",
            workload: "4 KiB buffers",
            engine,
            unit: "buffers",
            opsPerBatch: crc_buffers_per_batch,
            seconds: options.seconds ?? 1,
            batch: () => {
              for (const buffer of buffers) sink ^= crc(buffer, 0);
            },
          },
          gc,
        ),
      );
      if (sink === 0.5) console.log("unreachable");
    }
  } finally {
    gc.disconnect();
  }
  return rows;
}

async function runFrames(options: BenchOptions): Promise<BenchRow[]> {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < scan_frames_per_buffer; i++) {
    const payload = new Uint8Array(scan_payload_bytes).fill(i & 0xff);
    frames.push(encodeFrame(MessageType.CommitRequest, payload));
  }
  const buffer = Buffer.concat(frames);
  const gc = new GcObserver();
  const rows: BenchRow[] = [];
  try {
    for (const engine of engines()) {
      // Reused across batches: the scan allocates nothing per frame.
      const scan = new FrameScan(scan_frames_per_buffer);
      rows.push(
        await measure(
          {
            path: "frame",
            workload: `scan ${scan_frames_per_buffer} x ${scan_payload_bytes} B`,
            engine,
            unit: "frames",
            opsPerBatch: scan_frames_per_buffer,
            seconds: options.seconds ?? 1,
            batch: () => {
              scanFramesInto(buffer, frame_payload_bytes_max, scan, engine);
              if (scan.count !== scan_frames_per_buffer || scan.consumed !== buffer.length)
                throw new Error("frame scan lost frames");
            },
          },
          gc,
        ),
      );
    }
  } finally {
    gc.disconnect();
  }
  return rows;
}

/** bench/conflict-table.ts's run, if that benchmark is there. */
async function loadConflictTable(): Promise<
  ((options: BenchOptions) => Promise<BenchRow[]>) | string
> {
  const compiled = path.join(__dirname, "conflict-table.js");
  if (!fs.existsSync(compiled)) return "bench/conflict-table.ts not present";
  const modulePath = "./conflict-table";
  const loaded = (await import(modulePath)) as { run?: unknown };
  if (typeof loaded.run !== "function") return "bench/conflict-table.ts exports no run()";
  return loaded.run as (options: BenchOptions) => Promise<BenchRow[]>;
}

async function main(): Promise<void> {
  const args = parseBenchArgs(
    "bench-native",
    "every native hot path beside its TypeScript twin",
    process.argv.slice(2),
  );
  const options: BenchOptions = { seconds: args.seconds };
  const notes: string[] = [];
  notes.push(`native crc32c path: ${nativeCrc32cHardware() ? "sse4.2 instruction" : "table"}`);
  if (!nativeAvailable())
    notes.push(`native addon not loaded (${nativeLoadError()?.message}); js only`);
  const rows: BenchRow[] = [];
  const log = (line: string): void => {
    if (!args.json) console.error(line);
  };
  log("crc32c ...");
  rows.push(...(await runCrc32c(options)));
  log("frame ...");
  rows.push(...(await runFrames(options)));
  log("records ...");
  rows.push(...(await runRecords(options)));
  log("crossbar ...");
  rows.push(...(await runCrossbar(options)));
  const conflictTable = await loadConflictTable();
  if (typeof conflictTable === "string") notes.push(`conflict table skipped: ${conflictTable}`);
  else {
    log("conflict table ...");
    rows.push(...(await conflictTable(options)));
  }
  if (args.json) {
    console.log(JSON.stringify({ rows, notes }, null, 2));
    return;
  }
  printRows(rows);
  for (const note of notes) console.log(`note: ${note}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
