/**
 * Deliberate bugs, switched on only in simulation (FoundationDB's
 * `ResolverBug`): each one breaks a guarantee the checkers must notice, and
 * test/sim/checkers.test.ts shows that they do. None of them touches
 * component code; they wrap the injected interfaces.
 *
 * - `adjudicatorIgnoresInFlight`: a `ConflictTable` wrapper that takes an
 *   approved transaction's keys out of flight at once and records them only
 *   when it commits, so a concurrent writer in a later batch is approved too
 *   (snapshot isolation checker).
 * - `crossbarWatermarkBump`: the crossbar is told each journal's watermark
 *   plus a bump, so it may release a record before an older one of another
 *   journal arrives (total order checker).
 * - `journalAckBeforeFsync`: the disk's fsync returns before the bytes are
 *   durable; a crash then loses acknowledged commits (durability checker).
 * - `applierResumesLate`: a QP whose subscription broke (a partition, a
 *   crash of the sidecar's host) resumes a little above what it applied,
 *   skipping commits (total order checker: missing below the applied point).
 * - `routerKeepsBrokenCopies` (split topology): the router keeps waiting for
 *   verdicts from a journal host whose connection broke, instead of sending
 *   its commits elsewhere (liveness checker: commits never placed).
 * - `crossbarPlacesEveryCopy` (split topology): the crossbar places a
 *   redirected commit's second copy as well (durability checker: a commit
 *   applied twice).
 * - `watermarkBoundLost`: a crash loses the journal sets' durable watermark
 *   bound (the simulated disk drops the file), so with a clock that steps
 *   back at the restart a journal assigns taus at or below watermarks it
 *   published before (total order, durability).
 * - `retentionForgetsQps` ("single" with retention): retention is told of no
 *   QP and no subscription, so it removes what a QP cut off for longer than
 *   the keep window still needs (the QP cannot catch up: liveness, and the
 *   catch-up's error).
 */
import {
  ConflictBatch,
  ConflictVerdict,
  conflict_batch_header_words,
  conflict_key_shared_bit,
} from "../adjudicator";
import type { ConflictTable } from "../adjudicator";

export interface PlantedBugs {
  adjudicatorIgnoresInFlight?: boolean;
  /** Microseconds added to every journal watermark the crossbar hears; 0: off. */
  crossbarWatermarkBumpUs?: number;
  journalAckBeforeFsync?: boolean;
  /** Microseconds above its applied tau from which a QP resubscribes; 0: off. */
  applierResumesLateUs?: number;
  routerKeepsBrokenCopies?: boolean;
  crossbarPlacesEveryCopy?: boolean;
  retentionForgetsQps?: boolean;
  watermarkBoundLost?: boolean;
}

export const planted_bug_names = [
  "adjudicator-ignores-in-flight",
  "crossbar-watermark-bump",
  "journal-ack-before-fsync",
  "applier-resumes-late",
  "router-keeps-broken-copies",
  "crossbar-places-every-copy",
  "retention-forgets-qps",
  "watermark-bound-lost",
] as const;

export type PlantedBugName = (typeof planted_bug_names)[number];

export function plantedBug(name: PlantedBugName): PlantedBugs {
  switch (name) {
    case "adjudicator-ignores-in-flight":
      return { adjudicatorIgnoresInFlight: true };
    case "crossbar-watermark-bump":
      return { crossbarWatermarkBumpUs: 20_000 };
    case "journal-ack-before-fsync":
      return { journalAckBeforeFsync: true };
    case "applier-resumes-late":
      return { applierResumesLateUs: 2_000 };
    case "router-keeps-broken-copies":
      return { routerKeepsBrokenCopies: true };
    case "crossbar-places-every-copy":
      return { crossbarPlacesEveryCopy: true };
    case "retention-forgets-qps":
      return { retentionForgetsQps: true };
    case "watermark-bound-lost":
      return { watermarkBoundLost: true };
  }
}

interface SavedKeys {
  keys: { key: Uint8Array; shared: boolean }[];
}

/** A conflict table that forgets in-flight keys between batches (planted bug). */
export class ForgetfulConflictTable implements ConflictTable {
  readonly #inner: ConflictTable;
  readonly #saved = new Map<number, SavedKeys>();
  #nextTicket = 1;

  constructor(inner: ConflictTable) {
    this.#inner = inner;
  }

  get engine(): ConflictTable["engine"] {
    return this.#inner.engine;
  }

  get keyCount(): number {
    return this.#inner.keyCount;
  }

  get inFlightCount(): number {
    return this.#saved.size;
  }

  get horizonTau(): number {
    return this.#inner.horizonTau;
  }

  detect(batch: ConflictBatch): void {
    this.#inner.detect(batch);
    const index = batch.index;
    const bytes = batch.keyBytes;
    let word = conflict_batch_header_words;
    let offset = 0;
    const inner: number[] = [];
    for (let txn = 0; txn < batch.txnCount; txn++) {
      const count = index[word++]!;
      const keys: SavedKeys["keys"] = [];
      for (let k = 0; k < count; k++) {
        const w = index[word++]!;
        const length = w & ~conflict_key_shared_bit;
        keys.push({
          key: bytes.slice(offset, offset + length),
          shared: (w & conflict_key_shared_bit) !== 0,
        });
        offset += length;
      }
      if (batch.verdicts[txn] === ConflictVerdict.Approved) {
        inner.push(batch.details[txn]!);
        const ticket = this.#nextTicket++;
        this.#saved.set(ticket, { keys });
        batch.details[txn] = ticket;
      }
    }
    // The bug: the keys leave flight before the transaction is durable.
    if (inner.length > 0) this.#inner.abortBatch(Uint32Array.from(inner), inner.length);
  }

  register(batch: ConflictBatch): void {
    this.#inner.register(batch);
  }

  commitBatch(tickets: Uint32Array, taus: Float64Array, count: number): void {
    const batch = new ConflictBatch();
    for (let i = 0; i < count; i++) {
      const saved = this.#saved.get(tickets[i]!);
      if (saved === undefined) throw new Error(`unknown ticket ${tickets[i]}`);
      this.#saved.delete(tickets[i]!);
      batch.addTransaction(taus[i]!);
      for (const { key, shared } of saved.keys) batch.addKey(key, shared);
    }
    if (count > 0) this.#inner.register(batch);
  }

  abortBatch(tickets: Uint32Array, count: number): void {
    for (let i = 0; i < count; i++) this.#saved.delete(tickets[i]!);
  }

  forgetBefore(horizonTau: number): void {
    this.#inner.forgetBefore(horizonTau);
  }

  close(): void {
    this.#inner.close();
  }
}
