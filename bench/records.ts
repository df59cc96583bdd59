/**
 * Benchmark of journal record batches (src/journal/record-buffer.ts), native
 * engine and TypeScript twin side by side: encoding a group-commit batch of
 * 256 commit records with ~200-byte bodies (stage + one encode call), and
 * decoding/validating such a batch into a reused RecordIndex. Inputs are
 * built before timing; steady state should make no per-record garbage.
 *
 * Run: node dist/bench/records.js [--seconds N] [--json]
 */
import {
  decodeRecords,
  RecordBatchEncoder,
  RecordIndex,
  type RecordEngine,
} from "../src/journal/record-buffer";
import { nativeAvailable } from "../src/native";
import {
  bench_seconds_default,
  GcObserver,
  measure,
  parseBenchArgs,
  printRows,
  type BenchOptions,
  type BenchRow,
} from "./common";

const batch_records = 256;
const body_bytes_min = 150;
const body_bytes_spread = 100;
const txn_id_bytes = 16;
const tau_base = 1_700_000_000_000_000;

interface Input {
  txnIds: Uint8Array[];
  bodies: Uint8Array[];
  tauStarts: number[];
}

function makeInput(): Input {
  const txnIds: Uint8Array[] = [];
  const bodies: Uint8Array[] = [];
  const tauStarts: number[] = [];
  for (let i = 0; i < batch_records; i++) {
    const id = new Uint8Array(txn_id_bytes);
    new DataView(id.buffer).setUint32(12, i);
    txnIds.push(id);
    const body = new Uint8Array(body_bytes_min + ((i * 37) % body_bytes_spread));
    for (let b = 0; b < body.length; b++) body[b] = (i * 31 + b) & 0xff;
    bodies.push(body);
    tauStarts.push(tau_base - 1000 + i);
  }
  return { txnIds, bodies, tauStarts };
}

export async function run(options: BenchOptions = {}): Promise<BenchRow[]> {
  const seconds = options.seconds ?? bench_seconds_default;
  const engines: RecordEngine[] = nativeAvailable() ? ["native", "js"] : ["js"];
  const input = makeInput();
  const gc = new GcObserver();
  const rows: BenchRow[] = [];
  try {
    for (const engine of engines) {
      const encoder = new RecordBatchEncoder({ engine });
      let tau = tau_base;
      const encodeBatch = (): Uint8Array => {
        // tau + i + 1, not ++tau: an incremented double in a loop (captured or
        // not) can end up boxed once per record, which would be the bench's garbage.
        const first = tau + 1;
        for (let i = 0; i < batch_records; i++) {
          encoder.add(first + i, input.txnIds[i], input.tauStarts[i], input.bodies[i]);
        }
        tau += batch_records;
        return encoder.encode();
      };
      rows.push(
        await measure(
          {
            path: "records",
            workload: `encode ${batch_records} x ~200 B`,
            engine,
            unit: "records",
            opsPerBatch: batch_records,
            seconds,
            batch: () => void encodeBatch(),
          },
          gc,
        ),
      );
      const encoded = encodeBatch().slice();
      encoder.close();
      const index = new RecordIndex(batch_records);
      rows.push(
        await measure(
          {
            path: "records",
            workload: `decode ${batch_records} x ~200 B`,
            engine,
            unit: "records",
            opsPerBatch: batch_records,
            seconds,
            batch: () => {
              decodeRecords(encoded, 0, index, engine);
              if (index.count !== batch_records || index.error !== null) {
                throw new Error(`${engine}: decoded ${index.count} records, error ${index.error}`);
              }
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

if (require.main === module) {
  const args = parseBenchArgs(
    "bench-records",
    "journal record batches, native and TypeScript twin",
    process.argv.slice(2),
  );
  run({ seconds: args.seconds })
    .then((rows) => (args.json ? console.log(JSON.stringify(rows, null, 2)) : printRows(rows)))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
