/**
 * Benchmark of durable appends on a real disk: one journal (src/journal) on
 * real files, `clients` closed-loop appenders of ~300-byte commits, each
 * append timed from call to its fsync's resolve. It runs the journal with its
 * segment zero-filled ahead of the records (`preallocateBytes`, the default)
 * and without it, alternating rounds so that a noisy disk hurts both alike,
 * and prints the two side by side with their ratio.
 *
 * Run: node dist/bench/journal-disk.js [--seconds N] [--rounds N]
 *        [--clients 1,8] [--dir PATH] [--json]
 * `--dir` puts the journal on the device to measure (default: the OS's
 * temporary directory).
 */
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { FsDisk } from "../src/io/fs-disk";
import { SystemClock } from "../src/io/system-clock";
import { Journal, journal_preallocate_bytes_default } from "../src/journal";
import { benchCommand, percentile, positiveInteger, positiveNumber } from "./common";

const body_bytes = 300;
const txn_id_bytes = 16;

interface Settings {
  seconds: number;
  rounds: number;
  clients: number[];
  dir: string;
  json: boolean;
}

interface Round {
  appends: number;
  fsyncs: number;
  seconds: number;
  latenciesMs: number[];
}

interface Row {
  clients: number;
  preallocateBytes: number;
  appendsPerSec: number;
  appendsPerFsync: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

function parseClients(value: string): number[] {
  return value.split(",").map((c) => positiveInteger(c));
}

function parseArgs(argv: readonly string[]): Settings {
  return benchCommand("bench-journal", "durable appends of one journal on a real disk")
    .option("--seconds <n>", "seconds per round", positiveNumber, 5)
    .option("--rounds <n>", "rounds of each setting, alternating", positiveInteger, 3)
    .option("--clients <list>", "appender counts, comma-separated", parseClients, [1, 8])
    .option("--dir <path>", "where the journal lies (the device to measure)", tmpdir())
    .option("--json", "print the rows as JSON", false)
    .parse(argv, { from: "user" })
    .opts<Settings>();
}

/** Appends from `clients` loops for `seconds` into a new journal in `dir`. */
async function runRound(
  dir: string,
  clients: number,
  preallocateBytes: number,
  seconds: number,
): Promise<Round> {
  let fsyncs = 0;
  const journal = await Journal.open({
    dir,
    disk: new FsDisk(),
    clock: new SystemClock(),
    preallocateBytes,
    onDurable: () => fsyncs++,
  });
  const body = new Uint8Array(body_bytes).fill(0x5a);
  const latenciesMs: number[] = [];
  let appends = 0;
  let next = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const txnId = new Uint8Array(txn_id_bytes);
      new DataView(txnId.buffer).setUint32(12, next++);
      const t0 = performance.now();
      await journal.append({ txnId, tauStart: 0, body });
      latenciesMs.push(performance.now() - t0);
      appends++;
    }
  };
  // Warm-up: the first groups create the segment and its first zeros.
  for (let i = 0; i < 20; i++) {
    await journal.append({ txnId: new Uint8Array(txn_id_bytes).fill(0xff - i), tauStart: 0, body });
  }
  fsyncs = 0;
  await Promise.all(Array.from({ length: clients }, loop));
  const elapsed = (performance.now() - start) / 1000;
  await journal.close();
  return { appends, fsyncs, seconds: elapsed, latenciesMs };
}

function summarize(clients: number, preallocateBytes: number, rounds: Round[]): Row {
  const all = rounds.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const appends = rounds.reduce((sum, r) => sum + r.appends, 0);
  const fsyncs = rounds.reduce((sum, r) => sum + r.fsyncs, 0);
  const seconds = rounds.reduce((sum, r) => sum + r.seconds, 0);
  return {
    clients,
    preallocateBytes,
    appendsPerSec: appends / seconds,
    appendsPerFsync: fsyncs === 0 ? 0 : appends / fsyncs,
    p50Ms: percentile(all, 0.5),
    p99Ms: percentile(all, 0.99),
    p999Ms: percentile(all, 0.999),
  };
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const root = await fsp.mkdtemp(join(settings.dir, "ordo-bench-journal-"));
  const variants = [journal_preallocate_bytes_default, 0];
  const rows: Row[] = [];
  try {
    for (const clients of settings.clients) {
      const rounds = new Map<number, Round[]>(variants.map((v) => [v, []]));
      for (let round = 0; round < settings.rounds; round++) {
        // Alternate which variant goes first, so drift hurts both alike.
        const order = round % 2 === 0 ? variants : [...variants].reverse();
        for (const preallocateBytes of order) {
          const dir = join(root, `c${clients}-p${preallocateBytes}-r${round}`);
          rounds
            .get(preallocateBytes)!
            .push(await runRound(dir, clients, preallocateBytes, settings.seconds));
          await fsp.rm(dir, { recursive: true, force: true });
        }
      }
      for (const v of variants) rows.push(summarize(clients, v, rounds.get(v)!));
    }
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
  if (settings.json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  console.log(
    `journal on ${settings.dir}: ${settings.rounds} rounds of ${settings.seconds} s per variant, ` +
      `${body_bytes}-byte bodies; each append timed to its fsync`,
  );
  console.log("clients  zero-filled  appends/s  per fsync  p50 ms  p99 ms  p999 ms  vs no zeros");
  for (const row of rows) {
    const other = rows.find((r) => r.clients === row.clients && r !== row)!;
    const ratio =
      row.preallocateBytes > 0 ? `${(row.appendsPerSec / other.appendsPerSec).toFixed(2)}x` : "-";
    console.log(
      [
        String(row.clients).padStart(7),
        (row.preallocateBytes > 0 ? `${row.preallocateBytes >> 10} KiB` : "no").padStart(11),
        row.appendsPerSec.toFixed(0).padStart(9),
        row.appendsPerFsync.toFixed(1).padStart(9),
        row.p50Ms.toFixed(3).padStart(6),
        row.p99Ms.toFixed(3).padStart(6),
        row.p999Ms.toFixed(3).padStart(7),
        ratio.padStart(11),
      ].join("  "),
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
