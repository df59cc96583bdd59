/**
 * N journals behind one `append` (docs/replication.md §2): the sidecar's
 * commit path writes each commit whole into ONE journal — the one with the
 * fewest bytes waiting for their fsync (ties: lowest id) — so there is no
 * two-phase commit and writes scale with the number of journals.
 *
 * Each journal j publishes a watermark W_j (`Journal.promisedTau`): one below
 * the lowest tau awaiting its fsync, else the highest tau assigned or
 * promised. The set keeps every W_j moving:
 *
 * - heartbeat: `heartbeat()` raises every idle journal to the clock;
 * - on demand: when any journal makes tau C durable, every idle journal is
 *   raised to at least C at once (it is idle, so nothing it emits later can be
 *   at or below C), and a journal whose fsync was in flight is raised when it
 *   returns. So a record is releasable as soon as every older fsync returned.
 * - at open: every journal is raised to max(every replayed tau, clock), so a
 *   restart never reuses a tau at or below a watermark published before it.
 *
 * Durable entries and watermark moves go to one `JournalSetListener` (the
 * crossbar service), in an order that keeps the promise: a journal's entries
 * are listed before its watermark passes them.
 */
import { join } from "node:path";
import { buggify_off, type Buggify } from "../buggify";
import type { Clock } from "../clock";
import type { Disk } from "./disk";
import { JournalError } from "./errors";
import { Journal } from "./journal";
import type {
  Placed,
  JournalAppend,
  JournalEntry,
  JournalOptions,
  JournalRecovery,
  TauFloor,
} from "./journal";

/** Most journals one sidecar runs (the crossbar's bound is higher). */
export const journals_max = 256;

/** What the set tells the crossbar service. */
export interface JournalSetListener {
  /** Entries of `journal` made durable, in tau order; `watermark` covers them. */
  durable(journal: number, entries: readonly JournalEntry[], watermark: number): void;
  /** Journals whose watermark moved without new entries. */
  watermarks(moves: readonly { journal: number; watermark: number }[]): void;
}

export interface JournalSetOptions {
  /** Journal j lives in `dir/<j>`. */
  dir: string;
  disk: Disk;
  clock: Clock;
  /** Journals to run (>= 1). Journals found on disk beyond it are opened too. */
  journals: number;
  segmentBytesMax?: number;
  batchBytesMax?: number;
  engine?: JournalOptions["engine"];
  /** Deliberate bugs for checker tests (docs/checker.md, "Planted bugs"), given to every journal. */
  plantedBugs?: JournalOptions["plantedBugs"];
  /** Simulation-only fault points (src/buggify), given to every journal. Default off. */
  buggify?: Buggify;
}

export interface JournalSetRecovery {
  journals: (JournalRecovery & { journal: number })[];
  /** Highest replayed tau of any journal, 0 if none. */
  lastTau: number;
  /** Records replayed in all journals. */
  entries: number;
  truncatedBytes: number;
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`journal set assertion failed: ${message}`);
}

export class JournalSet {
  readonly #journals: Journal[];
  readonly #clock: Clock;
  readonly #buggify: Buggify;
  #listener: JournalSetListener | null = null;
  /** Highest tau any journal made durable (or replayed). */
  #maxDurableTau = 0;
  /** The watermark last reported per journal. */
  readonly #reported: number[];

  private constructor(journals: Journal[], clock: Clock, buggify: Buggify) {
    this.#journals = journals;
    this.#clock = clock;
    this.#buggify = buggify;
    this.#reported = journals.map(() => -1);
  }

  /** Opens (creating if needed) every journal under `options.dir` and replays each. */
  static async open(options: JournalSetOptions): Promise<JournalSet> {
    const requested = options.journals;
    if (!Number.isInteger(requested) || requested < 1 || requested > journals_max) {
      throw new JournalError(
        "invalid_argument",
        `journals must be an integer from 1 to ${journals_max}, got ${requested}`,
      );
    }
    await options.disk.mkdir(options.dir);
    // A journal on disk is never left out: its records are part of the order.
    const names = await options.disk.list(options.dir);
    if (names.some((name) => name.endsWith(".seg"))) {
      // A single journal of the earlier layout: its records must not be skipped.
      throw new JournalError(
        "corrupt",
        `${options.dir} holds segments of a single journal; move them into ${join(options.dir, "0")}`,
      );
    }
    const onDisk = names.filter((name) => /^\d+$/.test(name)).map(Number);
    const count = Math.max(requested, ...onDisk.map((id) => id + 1));
    if (count > journals_max) {
      throw new JournalError(
        "corrupt",
        `${options.dir} holds journal ${count - 1}, above ${journals_max - 1}`,
      );
    }
    const journals: Journal[] = [];
    const tauFloor: TauFloor = { last: 0 };
    let set: JournalSet | null = null;
    try {
      for (let id = 0; id < count; id++) {
        journals.push(
          await Journal.open({
            dir: join(options.dir, String(id)),
            disk: options.disk,
            clock: options.clock,
            journalId: id,
            tauFloor,
            segmentBytesMax: options.segmentBytesMax,
            batchBytesMax: options.batchBytesMax,
            engine: options.engine,
            plantedBugs: options.plantedBugs,
            buggify: options.buggify,
            onDurable: (entries) => {
              assert(set !== null, "a durable group before the set opened");
              set.#onDurable(id, entries);
            },
          }),
        );
      }
    } catch (error) {
      await Promise.allSettled(journals.map((journal) => journal.close()));
      throw error;
    }
    set = new JournalSet(journals, options.clock, options.buggify ?? buggify_off);
    const start = Math.max(options.clock.nowMicros(), ...journals.map((j) => j.lastTau));
    tauFloor.last = Math.max(...journals.map((j) => j.lastTau));
    set.#maxDurableTau = Math.max(0, ...journals.map((j) => j.lastTau));
    for (const journal of journals) journal.raiseWatermark(start);
    return set;
  }

  get count(): number {
    return this.#journals.length;
  }

  journal(id: number): Journal {
    const journal = this.#journals[id];
    assert(journal !== undefined, `no journal ${id}`);
    return journal;
  }

  /** W_j of every journal. */
  watermarks(): number[] {
    return this.#journals.map((journal) => journal.promisedTau);
  }

  /** Highest tau assigned by any journal. */
  get lastTau(): number {
    return Math.max(...this.#journals.map((journal) => journal.lastTau));
  }

  get failed(): boolean {
    return this.#journals.some((journal) => journal.failed);
  }

  recovery(): JournalSetRecovery {
    const journals = this.#journals.map((journal, id) => ({ journal: id, ...journal.recovery }));
    return {
      journals,
      lastTau: Math.max(0, ...journals.map((r) => r.lastTau)),
      entries: journals.reduce((sum, r) => sum + r.entries, 0),
      truncatedBytes: journals.reduce((sum, r) => sum + r.truncatedBytes, 0),
    };
  }

  /** Sets the one listener (the crossbar service) and tells it every current watermark. */
  listen(listener: JournalSetListener): void {
    assert(this.#listener === null, "journal set has a listener already");
    this.#listener = listener;
    this.#report(this.#journals.map((_, id) => id));
  }

  /** The journal the next commit goes to: fewest bytes waiting for fsync, ties to the lowest id. */
  choose(): number {
    let best = 0;
    for (let id = 1; id < this.#journals.length; id++) {
      if (this.#journals[id]!.unsyncedBytes < this.#journals[best]!.unsyncedBytes) best = id;
    }
    return best;
  }

  /** Appends the commit whole to one journal; resolves with its tau once durable. */
  append(entry: JournalAppend): Promise<number> {
    return this.#journals[this.choose()]!.append(entry);
  }

  /** Like `append`, also telling the tau just before the commit's (`Placed`). */
  appendPlaced(entry: JournalAppend): Promise<Placed> {
    return this.#journals[this.choose()]!.appendPlaced(entry);
  }

  /** Like `append`, also telling which journal holds the commit. */
  async appendTo(entry: JournalAppend): Promise<{ journal: number; tau: number }> {
    const journal = this.choose();
    return { journal, tau: await this.#journals[journal]!.append(entry) };
  }

  /** Raises every idle journal's watermark to the clock (the periodic heartbeat). */
  heartbeat(): void {
    if (this.#buggify.fires("journal-set.heartbeat-skipped")) return;
    const now = this.#clock.nowMicros();
    const moved: number[] = [];
    for (const [id, journal] of this.#journals.entries()) {
      if (journal.syncing || journal.failed) continue;
      journal.raiseWatermark(now);
      moved.push(id);
    }
    this.#report(moved);
  }

  /** Durable entries with tau > afterTau of one journal, from disk. */
  readJournal(journal: number, afterTau: number): AsyncIterable<JournalEntry> {
    return this.journal(journal).readFrom(afterTau);
  }

  /** Every journal's durable entries with tau > afterTau, merged by (tau, journal): the replay order. */
  readFrom(afterTau: number): AsyncIterable<MergedEntry> {
    return this.readAll(afterTau);
  }

  /** Every journal's durable entries with tau > afterTau, merged by (tau, journal). */
  readAll(afterTau: number, upToTau = Number.MAX_SAFE_INTEGER): AsyncIterable<MergedEntry> {
    return mergeJournals(
      this.#journals.map((journal) => journal.readFrom(afterTau)),
      upToTau,
    );
  }

  /** Waits for pending appends, then closes every journal. */
  async close(): Promise<void> {
    const results = await Promise.allSettled(this.#journals.map((journal) => journal.close()));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure !== undefined) throw failure.reason;
  }

  #onDurable(id: number, entries: readonly JournalEntry[]): void {
    assert(entries.length > 0, "empty durable group");
    const last = entries[entries.length - 1]!.tauCommit;
    if (last > this.#maxDurableTau) this.#maxDurableTau = last;
    const journal = this.#journals[id]!;
    // On-demand heartbeat: idle journals (this one included, once its fsync
    // returned) can promise nothing at or below the newest durable tau.
    const moved: number[] = [];
    for (const [other, candidate] of this.#journals.entries()) {
      if (candidate.syncing || candidate.failed) continue;
      candidate.raiseWatermark(this.#maxDurableTau);
      if (other !== id) moved.push(other);
    }
    const watermark = journal.promisedTau;
    assert(watermark >= last, "watermark below a durable entry");
    this.#reported[id] = watermark;
    try {
      this.#listener?.durable(id, entries, watermark);
      this.#report(moved);
    } catch (error) {
      // A listener that throws is a bug. The group is durable and its appends
      // must still resolve, so the error leaves on its own and stops the process.
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  #report(ids: readonly number[]): void {
    const moves: { journal: number; watermark: number }[] = [];
    for (const id of ids) {
      const watermark = this.#journals[id]!.promisedTau;
      if (watermark <= this.#reported[id]!) continue;
      this.#reported[id] = watermark;
      moves.push({ journal: id, watermark });
    }
    if (moves.length > 0) this.#listener?.watermarks(moves);
  }
}

/** A journal entry with the id of the journal that holds it. */
export interface MergedEntry extends JournalEntry {
  journal: number;
}

/**
 * Merges per-journal streams (each in strictly increasing tau) by (tau,
 * journal id), stopping at the first entry above `upToTau`. Closes every
 * stream it opened, however iteration ends.
 */
export async function* mergeJournals(
  streams: readonly AsyncIterable<JournalEntry>[],
  upToTau: number,
): AsyncIterable<MergedEntry> {
  const iterators = streams.map((stream) => stream[Symbol.asyncIterator]());
  try {
    const heads: (JournalEntry | null)[] = [];
    for (const iterator of iterators) heads.push(await nextUpTo(iterator, upToTau));
    for (;;) {
      let best = -1;
      for (let id = 0; id < heads.length; id++) {
        const head = heads[id];
        if (head === null || head === undefined) continue;
        if (best < 0 || head.tauCommit < heads[best]!.tauCommit) best = id;
      }
      if (best < 0) return;
      const entry = heads[best]!;
      heads[best] = await nextUpTo(iterators[best]!, upToTau);
      assert(
        heads[best] === null || heads[best]!.tauCommit > entry.tauCommit,
        "journal out of order",
      );
      yield { ...entry, journal: best };
    }
  } finally {
    await Promise.allSettled(iterators.map((iterator) => iterator.return?.()));
  }
}

async function nextUpTo(
  iterator: AsyncIterator<JournalEntry>,
  upToTau: number,
): Promise<JournalEntry | null> {
  const step = await iterator.next();
  if (step.done === true || step.value.tauCommit > upToTau) return null;
  return step.value;
}
