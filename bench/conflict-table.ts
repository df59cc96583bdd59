/**
 * Benchmark of the adjudicator's conflict table (src/adjudicator), native
 * engine and TypeScript twin side by side in one process: transactions per
 * second through the whole steady-state cycle — build a ConflictBatch,
 * `detect`, `commitBatch` the previous batch's winners, and every few batches
 * `forgetBefore` — with p50/p99 per batch and the V8 GCs seen meanwhile.
 *
 * Shape: batches of 256 transactions, 5 written keys each (16 bytes: table
 * id, primary key), drawn in sequence from 1 M distinct keys, so the table
 * holds about 500 K live keys once warm. Commit confirmations lag one batch
 * (the journal's fsync), so the previous batch's keys are in flight while the
 * next one is decided. At 5 % conflicts, one transaction in twenty also
 * writes a key of the previous batch and loses to it (in flight).
 * Batches are built the way a caller builds them: keys copied from the pool
 * into one reused ConflictBatch (`addKeyFrom`, no views, no garbage), and
 * that building is part of the timed cycle.
 *
 * Run: node dist/bench/conflict-table.js [--seconds N] [--json]
 */
import {
  ConflictBatch,
  ConflictVerdict,
  createConflictTable,
  type ConflictEngine,
  type ConflictTable,
} from "../src/adjudicator";
import { nativeAvailable } from "../src/native";
import {
  type BenchOptions,
  type BenchRow,
  bench_seconds_default,
  GcObserver,
  measure,
  parseBenchArgs,
  printRows,
} from "./common";

const path = "adjudicator/conflict-table";
const key_count = 1_000_000;
const key_bytes = 16;
const keys_per_txn = 5;
const batch_txns = 256;
/** Taus advance one per transaction; history kept is this many transactions. */
const history_txns = 100_000;
const forget_every_batches = 16;
/** Batches run before measuring, to fill the table to its steady state. */
const fill_batches = Math.ceil((history_txns * 1.2) / batch_txns);
/**
 * Batches of a throwaway workload run first, so the JIT has compiled the
 * shared batch-building code before any row is timed (its garbage would
 * otherwise count against the first row).
 */
const jit_warmup_batches = 400;

/** 1 M distinct keys: an 8-byte table id, then an 8-byte primary key. */
function keyPool(): Uint8Array {
  const pool = new Uint8Array(key_count * key_bytes);
  const view = new DataView(pool.buffer);
  for (let i = 0; i < key_count; i++) {
    view.setUint32(i * key_bytes, 0x7461626c, true); // "lbat"
    view.setUint32(i * key_bytes + 4, i % 17, true);
    view.setUint32(i * key_bytes + 8, Math.imul(i, 0x9e3779b1) >>> 0, true);
    view.setUint32(i * key_bytes + 12, i, true);
  }
  return pool;
}

/** One engine's steady-state loop; `step()` is one timed batch. */
class Workload {
  readonly #table: ConflictTable;
  readonly #batch = new ConflictBatch();
  readonly #pool: Uint8Array;
  readonly #conflictEvery: number;
  readonly #pending = new Uint32Array(batch_txns);
  readonly #pendingTaus = new Float64Array(batch_txns);
  #pendingCount = 0;
  #nextKey = 0;
  #tau = 1;
  #batches = 0;
  approved = 0;
  decided = 0;

  constructor(engine: ConflictEngine, pool: Uint8Array, conflictEvery: number) {
    this.#table = createConflictTable(engine, 0);
    this.#pool = pool;
    this.#conflictEvery = conflictEvery;
  }

  step(): void {
    const batch = this.#batch;
    const pool = this.#pool;
    batch.clear();
    const previousFirstKey = this.#nextKey - batch_txns * keys_per_txn;
    for (let t = 0; t < batch_txns; t++) {
      batch.addTransaction(this.#tau);
      for (let k = 0; k < keys_per_txn; k++) {
        let key = this.#nextKey++ % key_count;
        if (
          k === 0 &&
          this.#conflictEvery > 0 &&
          t % this.#conflictEvery === 0 &&
          previousFirstKey >= 0
        ) {
          // The first key of the previous batch's next transaction: a winner, still in flight.
          key = (previousFirstKey + (t + 1) * keys_per_txn) % key_count;
        }
        batch.addKeyFrom(pool, key * key_bytes, key_bytes, false);
      }
    }
    this.#table.detect(batch);
    // The previous batch's winners became durable meanwhile.
    this.#table.commitBatch(this.#pending, this.#pendingTaus, this.#pendingCount);
    this.#pendingCount = 0;
    for (let t = 0; t < batch_txns; t++) {
      this.#tau++;
      if (batch.verdicts[t] !== ConflictVerdict.Approved) continue;
      this.#pending[this.#pendingCount] = batch.details[t];
      this.#pendingTaus[this.#pendingCount] = this.#tau;
      this.#pendingCount++;
    }
    this.approved += this.#pendingCount;
    this.decided += batch_txns;
    if (++this.#batches % forget_every_batches === 0 && this.#tau > history_txns) {
      this.#table.forgetBefore(this.#tau - history_txns);
    }
  }

  get keyCount(): number {
    return this.#table.keyCount;
  }

  close(): void {
    this.#table.close();
  }
}

/** Runs every workload on both engines (the twin only when native is missing). */
export async function run(options: BenchOptions = {}): Promise<BenchRow[]> {
  const seconds = options.seconds ?? bench_seconds_default;
  const engines: ConflictEngine[] = nativeAvailable() ? ["native", "js"] : ["js"];
  const pool = keyPool();
  const gc = new GcObserver();
  const rows: BenchRow[] = [];
  try {
    const warmup = new Workload(engines[0], pool, 20);
    for (let i = 0; i < jit_warmup_batches; i++) warmup.step();
    warmup.close();
    for (const [label, conflictEvery] of [
      ["0 %", 0],
      ["5 %", 20],
    ] as const) {
      for (const engine of engines) {
        const workload = new Workload(engine, pool, conflictEvery);
        for (let i = 0; i < fill_batches; i++) workload.step();
        workload.approved = 0;
        workload.decided = 0;
        const row = await measure(
          {
            path,
            workload: `${keys_per_txn} keys/txn, 1M keys, ${label} conflicts, batch ${batch_txns}`,
            engine,
            unit: "txn",
            opsPerBatch: batch_txns,
            seconds,
            batch: () => workload.step(),
          },
          gc,
        );
        const conflictRate = 1 - workload.approved / Math.max(1, workload.decided);
        const expected = conflictEvery === 0 ? 0 : 1 / conflictEvery;
        if (Math.abs(conflictRate - expected) > 0.01) {
          throw new Error(
            `${engine}: conflict rate ${conflictRate} is not the workload's ${label}`,
          );
        }
        workload.close();
        rows.push(row);
      }
    }
  } finally {
    gc.disconnect();
  }
  return rows;
}

async function main(): Promise<void> {
  const args = parseBenchArgs(
    "bench-conflict-table",
    "the adjudicator's conflict table, native and TypeScript twin",
    process.argv.slice(2),
  );
  const rows = await run({ seconds: args.seconds });
  if (args.json) console.log(JSON.stringify(rows));
  else printRows(rows);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
