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
 * - at open: every journal is raised to max(every replayed tau, clock, the
 *   durable watermark bound), so a restart never reuses a tau at or below a
 *   watermark published before it, whatever the clock did meanwhile:
 *   heartbeats promise no more than the bound (watermark-bound.ts), which
 *   the set keeps `watermarkBoundAheadUs` ahead of the clock.
 *
 * Durable entries and watermark moves go to one `JournalSetListener` (the
 * crossbar service), in an order that keeps the promise: a journal's entries
 * are listed before its watermark passes them.
 *
 * Fencing (`fenceAfterUs`, off by default): the global watermark is the
 * lowest W_j, so one journal whose fsync stalls holds back every commit of
 * every journal (the story of docs/simulator.md). When a group has waited
 * longer than `fenceAfterUs` for its fsync, and another journal is free, the
 * set fences that journal: it takes the group and the appends queued behind
 * it over (`Journal.abandon`), makes a void record of the group's taus
 * durable in the void log (void-log.ts), then lets the journal's watermark
 * move on (`Journal.release`) and places those appends again, in other
 * journals, at new taus; their callers learn only the new tau. The stalled
 * fsync may still make the group durable on its disk: every reader of the
 * set skips void records, so a commit counts exactly once, at the tau its
 * caller was told. The journal takes appends again once its fsync returned.
 * Nothing is lost on a crash at any point: before the void record is
 * durable, nothing above the group was released and nothing of it was
 * acknowledged (the group counts if its fsync made it durable); after, the
 * group is void and its appends count where they were placed again.
 */
import { join } from "node:path";
import { buggify_off, type Buggify } from "../buggify";
import type { Clock } from "../clock";
import type { Disk } from "./disk";
import { JournalError } from "./errors";
import { Journal } from "./journal";
import type {
  AbandonedAppend,
  Placed,
  JournalAppend,
  JournalEntry,
  JournalOptions,
  JournalRecovery,
  TauFloor,
} from "./journal";
import { VoidLog } from "./void-log";
import type { VoidRange } from "./void-log";
import { WatermarkBound } from "./watermark-bound";

/** Most journals one sidecar runs (the crossbar's bound is higher). */
export const journals_max = 256;
/** How far ahead of the clock the durable watermark bound is kept (µs): an fsync every half of it. */
export const watermark_bound_ahead_us_default = 1_000_000;

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
  /** Every journal's `preallocateBytes` (default 1 MiB). */
  preallocateBytes?: number;
  engine?: JournalOptions["engine"];
  /** Deliberate bugs for checker tests (docs/checker.md, "Planted bugs"), given to every journal. */
  plantedBugs?: JournalOptions["plantedBugs"];
  /** Simulation-only fault points (src/buggify), given to every journal. Default off. */
  buggify?: Buggify;
  /**
   * Fence a journal whose group has waited this long (µs) for its fsync, as
   * `heartbeat` finds it (see the top of this file). 0 or absent: never.
   */
  fenceAfterUs?: number;
  /** Every journal's `onSynced`: how long each group's writes and fsync took (µs). */
  onSynced?: (micros: number) => void;
  /** The durable watermark bound's lead on the clock (µs, default 1 s). */
  watermarkBoundAheadUs?: number;
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
  readonly #voidLog: VoidLog;
  /** Void ranges per journal (what the void log holds, and what is being made durable there). */
  readonly #voided: VoidRange[][];
  readonly #fenceAfterUs: number;
  /** Journals fenced now: they take no appends until their stalled fsync returned. */
  readonly #fenced = new Set<number>();
  #fences = 0;
  /** A void record could not be made durable: the set stops taking appends. */
  #voidFailure: JournalError | undefined;
  /** No heartbeat watermark goes above its durable value. */
  readonly #bound: WatermarkBound;
  readonly #boundAheadUs: number;

  private constructor(
    journals: Journal[],
    clock: Clock,
    buggify: Buggify,
    voidLog: VoidLog,
    fenceAfterUs: number,
    bound: WatermarkBound,
    boundAheadUs: number,
  ) {
    this.#bound = bound;
    this.#boundAheadUs = boundAheadUs;
    this.#journals = journals;
    this.#clock = clock;
    this.#buggify = buggify;
    this.#reported = journals.map(() => -1);
    this.#voidLog = voidLog;
    this.#fenceAfterUs = fenceAfterUs;
    this.#voided = journals.map(() => []);
    for (const range of voidLog.ranges) this.#voided[range.journal]?.push(range);
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
    const fenceAfterUs = options.fenceAfterUs ?? 0;
    if (!Number.isSafeInteger(fenceAfterUs) || fenceAfterUs < 0) {
      throw new JournalError(
        "invalid_argument",
        `fenceAfterUs must be a non-negative integer, got ${fenceAfterUs}`,
      );
    }
    const boundAheadUs = options.watermarkBoundAheadUs ?? watermark_bound_ahead_us_default;
    if (!Number.isSafeInteger(boundAheadUs) || boundAheadUs < 2) {
      throw new JournalError(
        "invalid_argument",
        `watermarkBoundAheadUs must be an integer of at least 2, got ${boundAheadUs}`,
      );
    }
    const journals: Journal[] = [];
    const tauFloor: TauFloor = { last: 0 };
    let set: JournalSet | null = null;
    let voidLog: VoidLog | null = null;
    let bound: WatermarkBound | null = null;
    try {
      bound = await WatermarkBound.open(options.disk, options.dir);
      voidLog = await VoidLog.open(options.disk, options.dir);
      for (const range of voidLog.ranges) {
        if (range.journal >= count) {
          throw new JournalError(
            "corrupt",
            `${options.dir}/voids names journal ${range.journal}, which is not on disk`,
          );
        }
      }
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
            preallocateBytes: options.preallocateBytes,
            engine: options.engine,
            plantedBugs: options.plantedBugs,
            buggify: options.buggify,
            onSynced: options.onSynced,
            onDurable: (entries) => {
              assert(set !== null, "a durable group before the set opened");
              set.#onDurable(id, entries);
            },
          }),
        );
      }
    } catch (error) {
      await Promise.allSettled([
        ...journals.map((journal) => journal.close()),
        voidLog?.close() ?? Promise.resolve(),
        bound?.close() ?? Promise.resolve(),
      ]);
      throw error;
    }
    set = new JournalSet(
      journals,
      options.clock,
      options.buggify ?? buggify_off,
      voidLog,
      fenceAfterUs,
      bound,
      boundAheadUs,
    );
    // Above every promise made before (none was above the durable bound or
    // a durable record), above every void range (a tau inside one would be
    // skipped by every reader), and the bound ahead of it before it is promised.
    const start = Math.max(
      options.clock.nowMicros(),
      bound.durable,
      ...journals.map((j) => j.lastTau),
      ...voidLog.ranges.map((range) => range.toTau),
    );
    try {
      await bound.extend(start + boundAheadUs);
    } catch (error) {
      await set.close().catch(() => undefined);
      throw error;
    }
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
    return this.#voidFailure !== undefined || this.#journals.some((journal) => journal.failed);
  }

  /** Fences so far (see the top of this file). */
  get fences(): number {
    return this.#fences;
  }

  /** Journals fenced now. */
  get fenced(): readonly number[] {
    return [...this.#fenced];
  }

  /** Every void range (void-log.ts): records readers skip. */
  get voidRanges(): readonly VoidRange[] {
    return this.#voided.flat();
  }

  /** The highest tau retention removed from any journal: reading from below it fails with `removed`. */
  get removedThroughTau(): number {
    return Math.max(0, ...this.#journals.map((journal) => journal.removedThroughTau));
  }

  /** Retention on every journal (`Journal.removeThrough`): what each one removed. */
  async removeThrough(
    tau: number,
  ): Promise<{ journal: number; segments: number; bytes: number }[]> {
    const removed = await Promise.all(this.#journals.map((journal) => journal.removeThrough(tau)));
    return removed.map((r, journal) => ({ journal, ...r }));
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

  /**
   * The journal the next commit goes to: fewest bytes waiting for fsync, ties
   * to the lowest id, skipping fenced journals (unless every one is).
   */
  choose(): number {
    let best = -1;
    for (let id = 0; id < this.#journals.length; id++) {
      if (this.#fenced.has(id)) continue;
      if (best < 0 || this.#journals[id]!.unsyncedBytes < this.#journals[best]!.unsyncedBytes)
        best = id;
    }
    if (best >= 0) return best;
    // Every journal fenced (they are fenced one at a time, so only briefly): the least loaded.
    best = 0;
    for (let id = 1; id < this.#journals.length; id++) {
      if (this.#journals[id]!.unsyncedBytes < this.#journals[best]!.unsyncedBytes) best = id;
    }
    return best;
  }

  /** Appends the commit whole to one journal; resolves with its tau once durable. */
  async append(entry: JournalAppend): Promise<number> {
    return (await this.appendPlaced(entry)).tau;
  }

  /** Like `append`, also telling the tau just before the commit's (`Placed`). */
  appendPlaced(entry: JournalAppend): Promise<Placed> {
    if (this.#voidFailure !== undefined) return Promise.reject(this.#voidFailure);
    return this.#journals[this.choose()]!.appendPlaced(entry);
  }

  /**
   * Raises every idle journal's watermark to the clock, never above the
   * durable bound, and moves the bound on when the clock is within half its
   * lead of it (the periodic heartbeat); fences stalled ones.
   */
  heartbeat(): void {
    if (this.#buggify.fires("journal-set.heartbeat-skipped")) return;
    const now = this.#clock.nowMicros();
    const bound = this.#bound;
    if (now + this.#boundAheadUs / 2 > bound.durable && !bound.extending) {
      // A failed write leaves heartbeats at the old bound; the next heartbeat tries again.
      bound.extend(now + this.#boundAheadUs).catch(() => undefined);
    }
    const promise = Math.min(now, bound.durable);
    const moved: number[] = [];
    for (const [id, journal] of this.#journals.entries()) {
      if (journal.syncing || journal.failed) continue;
      journal.raiseWatermark(promise);
      moved.push(id);
    }
    this.#report(moved);
    if (this.#fenceAfterUs > 0) this.#checkFences(now);
  }

  /** The durable watermark bound: no watermark of this set was published above it. */
  get watermarkBound(): number {
    return this.#bound.durable;
  }

  /** Whether the set fences stalled journals (`fenceAfterUs` > 0). */
  get fencing(): boolean {
    return this.#fenceAfterUs > 0;
  }

  /** Fences every journal whose group has waited `fenceAfterUs` for its fsync (heartbeat does it too). */
  checkFences(): void {
    if (this.#fenceAfterUs > 0) this.#checkFences(this.#clock.nowMicros());
  }

  /** Durable entries with tau > afterTau of one journal, from disk, void records left out. */
  readJournal(journal: number, afterTau: number): AsyncIterable<JournalEntry> {
    return this.#withoutVoid(journal, this.journal(journal).readFrom(afterTau));
  }

  /** Every journal's durable entries with tau > afterTau, merged by (tau, journal): the replay order. */
  readFrom(afterTau: number): AsyncIterable<MergedEntry> {
    return this.readAll(afterTau);
  }

  /** Every journal's durable entries with tau > afterTau, merged by (tau, journal), void records left out. */
  readAll(afterTau: number, upToTau = Number.MAX_SAFE_INTEGER): AsyncIterable<MergedEntry> {
    return mergeJournals(
      this.#journals.map((journal, id) => this.#withoutVoid(id, journal.readFrom(afterTau))),
      upToTau,
    );
  }

  /** Waits for pending appends, then closes every journal. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([
      ...this.#journals.map((journal) => journal.close()),
      this.#voidLog.close(),
      this.#bound.close(),
    ]);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure !== undefined) throw failure.reason;
  }

  /** `entries` without void records; as it is when there are none and can be none. */
  #withoutVoid(journal: number, entries: AsyncIterable<JournalEntry>): AsyncIterable<JournalEntry> {
    const ranges = this.#voided[journal]!;
    if (ranges.length === 0 && this.#fenceAfterUs === 0) return entries;
    return this.#skipVoid(ranges, entries);
  }

  async *#skipVoid(
    ranges: readonly VoidRange[],
    entries: AsyncIterable<JournalEntry>,
  ): AsyncIterable<JournalEntry> {
    // The live list: a range voided while the reader runs applies too (its records
    // cannot have been read yet: they were never durable-and-published).
    for await (const entry of entries) {
      const tau = entry.tauCommit;
      if (ranges.length > 0 && ranges.some((r) => tau >= r.fromTau && tau <= r.toTau)) continue;
      yield entry;
    }
  }

  // ---- fencing ----------------------------------------------------------------

  #checkFences(now: number): void {
    if (this.#journals.length < 2) return;
    for (const [id, journal] of this.#journals.entries()) {
      const since = journal.syncingSince;
      if (since === 0 || now - since < this.#fenceAfterUs || this.#fenced.has(id)) continue;
      // Only with somewhere else to go.
      const free = this.#journals.some(
        (other, o) => o !== id && !this.#fenced.has(o) && !other.failed,
      );
      if (!free) return;
      this.#fence(id);
    }
  }

  #fence(id: number): void {
    const journal = this.#journals[id]!;
    const abandoned = journal.abandon();
    if (abandoned === null) return;
    this.#fenced.add(id);
    this.#fences += 1;
    // Queued appends were never written: they go elsewhere at once.
    for (const append of abandoned.queued) this.#placeAgain(append);
    const group = abandoned.group;
    const range: VoidRange = {
      journal: id,
      fromTau: group[0]!.tau,
      toTau: group[group.length - 1]!.tau,
    };
    // Readers skip the range from now on; the journal holds its watermark below it until
    // the void record is durable.
    this.#voided[id]!.push(range);
    const voided = this.#voidLog.append(range).then(
      () => {
        journal.release();
        this.#report([id]);
        for (const append of group) this.#placeAgain(append);
      },
      (error: unknown) => {
        // Whether the void record is durable is unknown: the group may count on a
        // restart, or not. Stop, like a journal whose fsync failed.
        const failure = new JournalError(
          "fsync_failed",
          `void log write or fsync failed, journal set stopped: ${String(error)}`,
          { cause: error },
        );
        this.#voidFailure ??= failure;
        journal.failAbandoned(failure);
        for (const append of group) append.reject(failure);
      },
    );
    void Promise.all([voided, abandoned.settled]).then(() => this.#fenced.delete(id));
  }

  /** Places an abandoned append in another journal; its caller hears only the new tau. */
  #placeAgain(append: AbandonedAppend): void {
    if (this.#voidFailure !== undefined) {
      append.reject(this.#voidFailure);
      return;
    }
    this.#journals[this.choose()]!.appendPlaced(append.entry).then(append.resolve, append.reject);
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
