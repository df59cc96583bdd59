/**
 * One durable journal: an append-only log of whole approved commits in a
 * directory, in strictly increasing tau_commit order, with group commit
 * (DESIGN §2–§4, invariants 1, 2 and 7).
 *
 * - `append` resolves only after the fsync covering the record returned
 *   (invariant 1). While one write+fsync is in flight, new appends queue;
 *   when it completes, every queued append goes out in as few writes as
 *   `batchBytesMax` allows and ONE fsync.
 * - tau_commit is assigned when a group is cut, in arrival order:
 *   `max(last + 1, clock.nowMicros(), tau_start + 1)`, so it is strictly
 *   increasing (invariant 2), never below the clock and above tau_start.
 * - A failed write or fsync is fatal. After a failed fsync the state of the
 *   page cache is unknown (PostgreSQL's "fsyncgate"), so the journal never
 *   retries: every pending and later append rejects with `fsync_failed`, and
 *   recovery is a restart plus replay.
 * - `open` replays every segment, validating each record. A bad record in the
 *   last segment is a torn tail: the file is cut there and fsynced. A bad
 *   record anywhere else is corruption of acknowledged data and is reported,
 *   never dropped (invariant 7).
 *
 * The journal keeps no entries in memory, only one small descriptor per
 * segment (its durable length and tau range) so `readFrom` can skip segments.
 *
 * The segment being written is kept zero-filled ahead of its records
 * (`preallocateBytes`), as PostgreSQL zero-fills its WAL segments: a group's
 * fdatasync then overwrites blocks the file already has, so it flushes data
 * alone and not the file's size and block map (on ext4 that is a journal
 * commit of the file system besides the device flush, and about a third of
 * an idle fdatasync). Replay ends a segment at its first zero record; a zero
 * tail is no torn tail. A sealed segment is cut to its records.
 *
 * Records are encoded a batch at a time and scanned a chunk at a time by
 * src/journal/record-buffer.ts, natively when the addon is loaded
 * (`JournalOptions.engine`); both engines write and accept the same bytes.
 *
 * `plantedBugs.acksBeforeFsync` (docs/checker.md, "Planted bugs") breaks
 * invariant 1 on purpose, for tests of the fault campaign; it is off unless
 * the sidecar process is started with ORDO_PLANTED_BUGS.
 */
import { dirname, join } from "node:path";
import { buggify_off, type Buggify } from "../buggify";
import type { Clock } from "../clock";
import type { Disk, DiskFile } from "./disk";
import { JournalError } from "./errors";
import {
  decodeSegmentHeader,
  encodeSegmentHeader,
  parseRetentionFileName,
  parseSegmentFileName,
  record_body_bytes_max,
  recordBytes,
  segment_format_version,
  segment_header_bytes,
  segmentFileName,
  retentionFileName,
  txn_id_bytes,
  type RetentionMark,
} from "./record";
import { defaultRecordEngine, RecordBatchEncoder, type RecordEngine } from "./record-buffer";
import { RecordScanner } from "./scanner";

export const journal_segment_bytes_default = 64 * 1024 * 1024;
export const journal_batch_bytes_default = 4 * 1024 * 1024;
export const journal_preallocate_bytes_default = 1024 * 1024;
/** Smallest segment bound accepted (tests use tiny segments to force rotation). */
export const journal_segment_bytes_min = 128;
export const journal_batch_bytes_min = 64;
const journal_id_max = 0xffff_ffff;

export interface JournalAppend {
  /** Exactly 16 bytes. */
  txnId: Uint8Array;
  tauStart: number;
  body: Uint8Array;
}

export interface JournalEntry {
  tauCommit: number;
  txnId: Uint8Array;
  tauStart: number;
  body: Uint8Array;
}

/** The highest tau assigned by any journal sharing it. */
export interface TauFloor {
  last: number;
}

export interface JournalOptions {
  dir: string;
  disk: Disk;
  clock: Clock;
  /** Stored in every segment header; a segment of another journal is refused. Default 0. */
  journalId?: number;
  /**
   * Shared by the journals of one set: every tau any of them assigns is above
   * `last`, so taus are unique across journals (a QP's progress is one tau).
   */
  tauFloor?: TauFloor;
  /** A segment is closed and a new one started once the next write would pass this. Default 64 MiB. */
  segmentBytesMax?: number;
  /** Bytes per group-commit write (a larger single record is written alone). Default 4 MiB. */
  batchBytesMax?: number;
  /**
   * Zeros kept written ahead of the records in the segment being written, so
   * that most fsyncs flush no file metadata. When less than half of it is
   * left, the next write adds this much. 0 turns it off. Default 1 MiB.
   */
  preallocateBytes?: number;
  /**
   * Who encodes and scans records: "native" (native/records.cc) or "js" (the
   * TypeScript twin). Default: native when the addon is loaded.
   */
  engine?: RecordEngine;
  /**
   * Called once per group, after its fsync returned and before any of its
   * appends resolves, with the group's entries in tau order (the crossbar's
   * feed). It must not throw.
   */
  onDurable?: (entries: readonly JournalEntry[]) => void;
  /**
   * Called once per group whose fsync returned, with how long (µs, on
   * `clock`) its writes and fsync took from the moment it got its taus.
   * For statistics; it must not throw.
   */
  onSynced?: (micros: number) => void;
  /** Deliberate bugs for checker tests; never set outside them. */
  plantedBugs?: JournalPlantedBugs;
  /** Simulation-only fault points (src/buggify). Default off. */
  buggify?: Buggify;
}

/** Bugs the journal can be told to have (docs/checker.md, "Planted bugs"). */
export interface JournalPlantedBugs {
  /**
   * `journal-acks-before-fsync`: a group is published (`onDurable`) and its
   * appends resolve as soon as its taus are assigned; only then does the
   * journal wait `delay()` and write and fsync it. A crash in that window
   * loses acknowledged commits.
   */
  readonly acksBeforeFsync?: { readonly delay: () => Promise<void> };
}

export interface JournalRecovery {
  /** Segment files found. */
  segments: number;
  /** Valid records replayed. */
  entries: number;
  /**
   * Bytes cut from the end of the last segment (a torn tail or torn header);
   * zeros written ahead of the records are not counted.
   */
  truncatedBytes: number;
  /** tau_commit of the last replayed record, 0 if none. */
  lastTau: number;
}

interface SegmentInfo {
  readonly seq: number;
  readonly path: string;
  /** Bytes (header included) known durable: readers stop here. */
  durableBytes: number;
  /** tau of the last durable record; for a segment with none, the previous segment's. */
  durableLastTau: number;
}

/** Where an append landed in the order of taus. */
export interface Placed {
  readonly tau: number;
  /**
   * The tau of the commit assigned just before it by any journal sharing the
   * tau floor (no record lies strictly between the two); for a journal
   * without a floor, its own last tau or promise.
   */
  readonly prevTau: number;
}

interface Pending {
  readonly entry: JournalAppend;
  readonly bytes: number;
  tau: number;
  prevTau: number;
  readonly resolve: (placed: Placed) => void;
  readonly reject: (error: JournalError) => void;
}

/** An append a journal gave up (`Journal.abandon`): the caller places it elsewhere and settles it. */
export interface AbandonedAppend {
  readonly entry: JournalAppend;
  /** Its tau in the group in flight; 0 for an append still queued (never written). */
  readonly tau: number;
  readonly resolve: (placed: Placed) => void;
  readonly reject: (error: JournalError) => void;
}

/** What `Journal.abandon` hands over. */
export interface Abandoned {
  /** The group in flight, in tau order: written (maybe not all of it), its fsync not returned. */
  readonly group: readonly AbandonedAppend[];
  /** Appends queued behind it: no tau, never written. */
  readonly queued: readonly AbandonedAppend[];
  /** Resolves once the group's fsync returned or failed: the journal is free again. */
  readonly settled: Promise<void>;
}

export class Journal {
  readonly #dir: string;
  readonly #disk: Disk;
  readonly #clock: Clock;
  readonly #journalId: number;
  readonly #segmentBytesMax: number;
  readonly #batchBytesMax: number;
  readonly #preallocateBytes: number;
  readonly #buggify: Buggify;
  readonly #engine: RecordEngine;
  /** Reused for every batch; its bytes are rewritten once the write of the last batch returned. */
  readonly #encoder: RecordBatchEncoder;

  /** Every segment, oldest first; the last is the one being written. */
  readonly #segments: SegmentInfo[] = [];
  #file: DiskFile | undefined;
  /** Bytes written to the current segment (durable or not). */
  #writeOffset = 0;
  /** Length of the current segment's file: its records, then zeros (`preallocateBytes`). */
  #fileBytes = 0;
  #writeLastTau = 0;

  /** Highest tau_commit assigned (durable or in flight). */
  #last = 0;
  readonly #tauFloor: TauFloor | undefined;
  /** Highest tau_commit whose fsync returned. */
  #durableTau = 0;
  /** Lowest tau of the group being written and fsynced, 0 when none is. */
  #inFlightFirstTau = 0;
  /** Clock time (µs) at which the group in flight got its taus, 0 when none is in flight. */
  #inFlightSince = 0;
  /** The group in flight, while one is. */
  #inFlight: Pending[] | null = null;
  /** The abandoned group (`abandon`): its fsync goes on, it is neither published nor acknowledged. */
  #abandoned: {
    group: Pending[];
    released: boolean;
    synced: boolean;
    settle: () => void;
    /** Resolves at `release`. */
    whenReleased: Promise<void>;
    markReleased: () => void;
  } | null = null;
  /** Bytes of records queued or in flight: appended, not yet durable. */
  #unsyncedBytes = 0;
  readonly #onDurable: ((entries: readonly JournalEntry[]) => void) | undefined;
  readonly #onSynced: ((micros: number) => void) | undefined;
  readonly #acksBeforeFsync: { readonly delay: () => Promise<void> } | undefined;

  #queue: Pending[] = [];
  #flushing = false;
  #drainWaiters: (() => void)[] = [];
  #failure: JournalError | undefined;
  #closing = false;
  #closed = false;
  #recovery: JournalRecovery = { segments: 0, entries: 0, truncatedBytes: 0, lastTau: 0 };
  /** Every record with a tau at or below it was removed (`removeThrough`); 0 if none was. */
  #removedThroughTau = 0;
  /** The retention marker in the directory, if any (`removeThrough`). */
  #mark: RetentionMark | undefined;
  /** A `removeThrough` is running. */
  #removing = false;

  private constructor(options: JournalOptions) {
    this.#dir = options.dir;
    this.#disk = options.disk;
    this.#clock = options.clock;
    this.#journalId = options.journalId ?? 0;
    this.#tauFloor = options.tauFloor;
    this.#segmentBytesMax = options.segmentBytesMax ?? journal_segment_bytes_default;
    this.#batchBytesMax = options.batchBytesMax ?? journal_batch_bytes_default;
    this.#preallocateBytes = options.preallocateBytes ?? journal_preallocate_bytes_default;
    this.#buggify = options.buggify ?? buggify_off;
    this.#engine = options.engine ?? defaultRecordEngine();
    this.#encoder = new RecordBatchEncoder({ engine: this.#engine });
    this.#onDurable = options.onDurable;
    this.#onSynced = options.onSynced;
    this.#acksBeforeFsync = options.plantedBugs?.acksBeforeFsync;
  }

  /** The record engine in use. */
  get engine(): RecordEngine {
    return this.#engine;
  }

  /** Opens (creating if needed) the journal in `options.dir`, replays it and cuts a torn tail. */
  static async open(options: JournalOptions): Promise<Journal> {
    validateOptions(options);
    const journal = new Journal(options);
    try {
      await journal.#replay();
    } catch (error) {
      await journal.#file?.close().catch(() => undefined);
      journal.#encoder.close();
      if (error instanceof JournalError) throw error;
      throw new JournalError("io_failed", `cannot open ${options.dir}: ${String(error)}`, {
        cause: error,
      });
    }
    return journal;
  }

  /** Highest durable tau_commit (0 if none). No future record will have a tau at or below it. */
  get watermark(): number {
    return this.#durableTau;
  }

  /** Highest tau_commit assigned so far, durable or still waiting for its fsync. */
  get lastTau(): number {
    return this.#last;
  }

  /**
   * The journal's promise W_j: no record with a tau at or below it will ever
   * come from this journal that `onDurable` has not already listed. One below
   * the lowest tau awaiting its fsync; with none in flight, the highest tau
   * assigned or promised (`raiseWatermark`).
   */
  get promisedTau(): number {
    return this.#inFlightFirstTau > 0 ? this.#inFlightFirstTau - 1 : this.#last;
  }

  /** True while a group is being written or fsynced. */
  get syncing(): boolean {
    return this.#inFlightFirstTau > 0;
  }

  /** Clock time (µs) at which the group in flight got its taus; 0 when none is in flight. */
  get syncingSince(): number {
    return this.#inFlightFirstTau > 0 ? this.#inFlightSince : 0;
  }

  /**
   * Gives up the group in flight and every append queued behind it (a fence,
   * journal-set.ts): the caller places them in another journal and settles
   * their promises. The group's fsync goes on, but the group is never
   * published (`onDurable`) nor acknowledged, and until `release` the
   * journal keeps promising below its first tau — the caller releases it
   * once the group is void for every reader (its void record is durable).
   * Returns null when no group is in flight (or one was abandoned already).
   * Until `settled` resolves, later appends wait behind that fsync.
   */
  abandon(): Abandoned | null {
    const group = this.#inFlight;
    if (group === null || this.#abandoned !== null || this.#failure !== undefined) return null;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    let markReleased!: () => void;
    const whenReleased = new Promise<void>((resolve) => (markReleased = resolve));
    this.#abandoned = { group, released: false, synced: false, settle, whenReleased, markReleased };
    const queued = this.#queue;
    this.#queue = [];
    for (const pending of group) this.#unsyncedBytes -= pending.bytes;
    for (const pending of queued) this.#unsyncedBytes -= pending.bytes;
    assert(this.#unsyncedBytes >= 0, "unsynced bytes below zero");
    const handOver = (pending: Pending): AbandonedAppend => ({
      entry: pending.entry,
      tau: pending.tau,
      resolve: pending.resolve,
      reject: pending.reject,
    });
    return { group: group.map(handOver), queued: queued.map(handOver), settled };
  }

  /** The abandoned group is void for every reader: stop promising below it (see `abandon`). */
  release(): void {
    const abandoned = this.#abandoned;
    assert(abandoned !== null && !abandoned.released, "release without an abandoned group");
    abandoned.released = true;
    this.#inFlightFirstTau = 0;
    if (abandoned.synced) this.#abandoned = null;
    abandoned.markReleased();
  }

  /**
   * The caller could not make the abandoned group void (its void record's
   * write or fsync failed): the journal fails, as after a failed fsync —
   * whether the group counts is decided by the next replay.
   */
  failAbandoned(error: JournalError): void {
    const abandoned = this.#abandoned;
    assert(abandoned !== null && !abandoned.released, "failAbandoned without an unreleased group");
    this.#failure ??= error;
    const queued = this.#queue;
    this.#queue = [];
    for (const pending of queued) pending.reject(this.#failure);
    abandoned.markReleased(); // the flush loop wakes and stops: the journal failed
  }

  /** Bytes of records appended but not yet durable (queued or in flight). */
  get unsyncedBytes(): number {
    return this.#unsyncedBytes;
  }

  /**
   * Promises that every tau assigned from now on is above `tau` (a heartbeat
   * of an idle journal). Raises `promisedTau` once nothing is in flight; the
   * promise lives in memory only: the journal set keeps its heartbeats under
   * a durable bound and starts a reopened journal above it
   * (watermark-bound.ts, docs/replication.md §2).
   */
  raiseWatermark(tau: number): void {
    if (!Number.isSafeInteger(tau) || tau < 0) {
      throw new JournalError(
        "invalid_argument",
        `watermark must be a non-negative integer, got ${tau}`,
      );
    }
    if (tau > this.#last) this.#last = tau;
  }

  /** Every record with a tau at or below it was removed by retention (0: none was). */
  get removedThroughTau(): number {
    return this.#removedThroughTau;
  }

  /**
   * Retention: removes the oldest segments whose records all have a tau at
   * or below `tau`, never the one being written. A marker file whose name
   * records the new first segment and the highest tau removed is made
   * durable first, so a crash part way leaves a journal that `open` finishes
   * cleaning, and a missing first segment is still told from a removed one.
   * A reader that then asks for records after a tau below the highest tau
   * removed fails with `removed`. Resolves with what it removed (nothing
   * while another removal runs or the journal is closing).
   */
  async removeThrough(tau: number): Promise<{ segments: number; bytes: number }> {
    if (!Number.isSafeInteger(tau) || tau < 0) {
      throw new JournalError("invalid_argument", `tau must be a non-negative integer, got ${tau}`);
    }
    const none = { segments: 0, bytes: 0 };
    if (this.#removing || this.#closing || this.#closed) return none;
    let count = 0;
    while (count < this.#segments.length - 1 && this.#segments[count]!.durableLastTau <= tau) {
      count++;
    }
    if (count === 0) return none;
    this.#removing = true;
    try {
      const removed = this.#segments.slice(0, count);
      const mark: RetentionMark = {
        firstSeq: this.#segments[count]!.seq,
        throughTau: removed[removed.length - 1]!.durableLastTau,
      };
      const previous = this.#mark;
      try {
        const marker = await this.#disk.open(join(this.#dir, retentionFileName(mark)), "create");
        await marker.close();
        await this.#disk.syncDir(this.#dir);
      } catch (error) {
        throw new JournalError(
          "io_failed",
          `cannot mark retention in ${this.#dir}: ${String(error)}`,
          {
            cause: error,
          },
        );
      }
      // Segments are only ever added at the end, so the first `count` are still these.
      this.#segments.splice(0, count);
      this.#mark = mark;
      this.#removedThroughTau = mark.throughTau;
      try {
        for (const segment of removed) await this.#disk.remove(segment.path);
        if (previous !== undefined) {
          await this.#disk.remove(join(this.#dir, retentionFileName(previous)));
        }
        await this.#disk.syncDir(this.#dir);
      } catch (error) {
        // The marker is durable: the next open removes what is left.
        throw new JournalError("io_failed", `removing segments of ${this.#dir}: ${String(error)}`, {
          cause: error,
        });
      }
      let bytes = 0;
      for (const segment of removed) bytes += segment.durableBytes;
      return { segments: count, bytes };
    } finally {
      this.#removing = false;
    }
  }

  /** What `open` found on disk. */
  get recovery(): JournalRecovery {
    return { ...this.#recovery };
  }

  /** True once a write or fsync failed; every append now rejects with `fsync_failed`. */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Resolves with the record's tau_commit once the fsync covering it returned. */
  async append(entry: JournalAppend): Promise<number> {
    return (await this.appendPlaced(entry)).tau;
  }

  /** Like `append`, also telling the tau just before the record's. */
  appendPlaced(entry: JournalAppend): Promise<Placed> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closing) return Promise.reject(new JournalError("closed", "journal is closed"));
    const invalid = checkAppend(entry);
    if (invalid !== undefined) return Promise.reject(new JournalError("invalid_argument", invalid));
    return new Promise<Placed>((resolve, reject) => {
      const bytes = recordBytes(entry.body.length);
      this.#unsyncedBytes += bytes;
      this.#queue.push({ entry, bytes, tau: 0, prevTau: 0, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        void this.#flushLoop();
      }
    });
  }

  /**
   * Durable entries with tauCommit > afterTau, in order, read from disk. Works
   * while appends continue: each segment is read up to its durable length at
   * the moment the reader reaches it, so nothing above the watermark of that
   * moment is ever returned.
   */
  async *readFrom(afterTau: number): AsyncIterable<JournalEntry> {
    if (!Number.isSafeInteger(afterTau) || afterTau < 0) {
      throw new JournalError(
        "invalid_argument",
        `afterTau must be a non-negative integer, got ${afterTau}`,
      );
    }
    let cursor = afterTau;
    while (true) {
      if (cursor < this.#removedThroughTau) {
        throw new JournalError(
          "removed",
          `${this.#dir}: records up to tau ${this.#removedThroughTau} were removed by retention; asked for those after tau ${cursor}`,
        );
      }
      const index = this.#firstSegmentAfter(cursor);
      if (index === undefined) return;
      const segment = this.#segments[index]!;
      const end = segment.durableBytes;
      const lastTau = segment.durableLastTau;
      const file = await this.#openForRead(segment.path);
      try {
        const scanner = new RecordScanner(file, segment_header_bytes, end, {
          engine: this.#engine,
          lastTau: index > 0 ? this.#segments[index - 1]!.durableLastTau : this.#removedThroughTau,
        });
        while (true) {
          const step = await scanner.next();
          if (step.kind === "end") break;
          if (step.kind === "bad") {
            throw new JournalError(
              "corrupt",
              `${segment.path} at byte ${step.offset}, below its durable length ${end}: ${step.reason}`,
            );
          }
          if (step.record.tauCommit > cursor) {
            yield step.record;
            cursor = step.record.tauCommit;
          }
        }
      } finally {
        await file.close().catch(() => undefined);
      }
      if (cursor !== lastTau) {
        throw new JournalError(
          "corrupt",
          `${segment.path}: durable records end at tau ${cursor}, expected ${lastTau}`,
        );
      }
    }
  }

  /** Waits for every pending append's fsync, then closes the files. Idempotent. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#flushing) await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    if (this.#closed) return;
    this.#closed = true;
    this.#encoder.close();
    const file = this.#file;
    this.#file = undefined;
    if (file === undefined) return;
    try {
      // A clean close leaves the segment as long as its records (not synced:
      // after a crash replay reads a zero tail as the end).
      if (this.#failure === undefined) await this.#cutZeros(file, false);
      await file.close();
    } catch (error) {
      if (this.#failure === undefined) {
        throw new JournalError("io_failed", `closing ${file.path}: ${String(error)}`, {
          cause: error,
        });
      }
    }
  }

  // ---- group commit -------------------------------------------------------

  async #flushLoop(): Promise<void> {
    // Let appends made in the same turn of the event loop join the first group.
    await Promise.resolve();
    try {
      while (this.#queue.length > 0 && this.#failure === undefined) {
        // Appends made to a journal whose abandoned group is not released yet wait for it.
        const abandoned = this.#abandoned;
        if (abandoned !== null && !abandoned.released) {
          await abandoned.whenReleased;
          continue;
        }
        let group = this.#queue;
        this.#queue = [];
        if (group.length > 1 && this.#buggify.fires("journal.group-cut-short")) {
          this.#queue = group.slice(1);
          group = group.slice(0, 1);
        }
        await this.#commitGroup(group);
      }
    } finally {
      this.#flushing = false;
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Assigns taus to `group`, writes it in batches, fsyncs once, then resolves it. */
  async #commitGroup(group: Pending[]): Promise<void> {
    // An abandoned group holds the promise below it until released; a later group would lift it.
    assert(
      this.#abandoned === null || this.#abandoned.released,
      "a group formed while an abandoned one is not released",
    );
    for (const pending of group) {
      // The last commit of any journal sharing the floor (heartbeat promises
      // are no commits); a journal of its own counts its promises too.
      pending.prevTau = this.#tauFloor?.last ?? this.#last;
      pending.tau = this.#assignTau(pending.entry.tauStart);
    }
    const planted = this.#acksBeforeFsync;
    if (planted !== undefined) {
      // Planted bug `journal-acks-before-fsync`: publish and acknowledge first, skipping
      // the invariant 1 assertion below on purpose, then wait and write and fsync.
      this.#publish(group);
      for (const pending of group) pending.resolve({ tau: pending.tau, prevTau: pending.prevTau });
      await planted.delay();
    } else {
      this.#inFlightFirstTau = group[0]!.tau;
      this.#inFlightSince = this.#clock.nowMicros();
      this.#inFlight = group;
    }
    try {
      const perRecord = group.length > 1 && this.#buggify.fires("journal.write-per-record");
      let first = 0;
      while (first < group.length) {
        let bytes = group[first]!.bytes;
        let end = first + 1;
        while (
          !perRecord &&
          end < group.length &&
          bytes + group[end]!.bytes <= this.#batchBytesMax
        ) {
          bytes += group[end]!.bytes;
          end++;
        }
        await this.#writeBatch(group.slice(first, end), bytes);
        first = end;
      }
      await this.#syncCurrent();
    } catch (error) {
      this.#fail(error, group);
      return;
    }
    const lastTau = group[group.length - 1]!.tau;
    assert(this.#durableTau === lastTau, "group not durable after its fsync");
    if (this.#onSynced !== undefined && planted === undefined) {
      this.#onSynced(Math.max(0, this.#clock.nowMicros() - this.#inFlightSince));
    }
    this.#inFlight = null;
    const abandoned = this.#abandoned;
    if (abandoned !== null && abandoned.group === group) {
      // Fenced: the caller placed these appends elsewhere; on this disk they are void.
      this.#settleAbandoned();
      return;
    }
    this.#inFlightFirstTau = 0;
    for (const pending of group) this.#unsyncedBytes -= pending.bytes;
    assert(this.#unsyncedBytes >= 0, "unsynced bytes below zero");
    if (planted !== undefined) return; // already published and acknowledged (planted bug)
    this.#publish(group);
    for (const pending of group) {
      // Invariant 1: never acknowledge a record that no returned fsync covers.
      assert(pending.tau <= this.#durableTau, "acknowledging a record before its fsync");
      pending.resolve({ tau: pending.tau, prevTau: pending.prevTau });
    }
  }

  #publish(group: Pending[]): void {
    if (this.#onDurable === undefined) return;
    this.#onDurable(
      group.map((p) => ({
        tauCommit: p.tau,
        txnId: p.entry.txnId,
        tauStart: p.entry.tauStart,
        body: p.entry.body,
      })),
    );
  }

  #assignTau(tauStart: number): number {
    const floor = this.#tauFloor?.last ?? 0;
    const tau = Math.max(this.#last + 1, floor + 1, this.#clock.nowMicros(), tauStart + 1);
    assert(Number.isSafeInteger(tau), "tau_commit overflow");
    assert(tau > this.#last, "tau_commit not increasing");
    this.#last = tau;
    if (this.#tauFloor !== undefined) this.#tauFloor.last = tau;
    return tau;
  }

  async #writeBatch(batch: Pending[], bytes: number): Promise<void> {
    const hasRecords = this.#writeOffset > segment_header_bytes;
    if (hasRecords && this.#writeOffset + bytes > this.#segmentBytesMax) await this.#rotate();
    const encoder = this.#encoder;
    encoder.clear();
    for (const p of batch) encoder.add(p.tau, p.entry.txnId, p.entry.tauStart, p.entry.body);
    // The view is into the encoder's reused buffer: the write completes before the next encode.
    const encoded = encoder.encode();
    assert(encoded.length === bytes, "batch length mismatch");
    const file = this.#requireFile();
    await file.write(this.#writeOffset, encoded);
    this.#writeOffset += bytes;
    this.#writeLastTau = batch[batch.length - 1]!.tau;
    if (this.#writeOffset > this.#fileBytes) this.#fileBytes = this.#writeOffset;
    await this.#zeroAhead(file);
  }

  /**
   * Keeps zeros written ahead of the records (`preallocateBytes`): the group
   * that writes them flushes the file's new length and blocks with its fsync;
   * the groups after it overwrite zeros and flush data alone.
   */
  async #zeroAhead(file: DiskFile): Promise<void> {
    const ahead = this.#preallocateBytes;
    if (ahead === 0 || this.#fileBytes - this.#writeOffset >= ahead / 2) return;
    const to = Math.min(this.#segmentBytesMax, this.#writeOffset + ahead);
    let at = this.#fileBytes;
    while (at < to) {
      const length = Math.min(to - at, zeros.length);
      await file.write(at, length === zeros.length ? zeros : zeros.subarray(0, length));
      at += length;
    }
    if (at > this.#fileBytes) this.#fileBytes = at;
  }

  /** Cuts the zeros after the records of the current segment (sealing or closing it). */
  async #cutZeros(file: DiskFile, sync: boolean): Promise<void> {
    if (this.#fileBytes <= this.#writeOffset) return;
    await file.truncate(this.#writeOffset);
    if (sync) await file.sync();
    this.#fileBytes = this.#writeOffset;
  }

  /** fsyncs the current segment and publishes what it covered. */
  async #syncCurrent(): Promise<void> {
    const offset = this.#writeOffset;
    const lastTau = this.#writeLastTau;
    await this.#requireFile().sync();
    const segment = this.#segments[this.#segments.length - 1]!;
    assert(offset >= segment.durableBytes, "durable length going backwards");
    segment.durableBytes = offset;
    if (lastTau > segment.durableLastTau) segment.durableLastTau = lastTau;
    if (lastTau > this.#durableTau) this.#durableTau = lastTau;
  }

  /** Seals the current segment (fsync) and starts the next one. */
  async #rotate(): Promise<void> {
    await this.#syncCurrent();
    const previous = this.#segments[this.#segments.length - 1]!;
    const file = this.#requireFile();
    // A sealed segment ends at its records: replay reads every segment but
    // the last to its end. The cut is durable before the next segment exists.
    await this.#cutZeros(file, true);
    this.#file = undefined;
    await file.close();
    await this.#createSegment(previous.seq + 1, previous.durableLastTau);
  }

  #fail(error: unknown, group: Pending[]): void {
    const failure =
      this.#failure ??
      new JournalError("fsync_failed", `write or fsync failed, journal stopped: ${String(error)}`, {
        cause: error,
      });
    this.#failure = failure;
    this.#inFlight = null;
    const queued = this.#queue;
    this.#queue = [];
    // An abandoned group belongs to whoever took it over.
    if (this.#abandoned?.group === group) this.#settleAbandoned();
    else for (const pending of group) pending.reject(failure);
    for (const pending of queued) pending.reject(failure);
  }

  /**
   * The abandoned group's fsync returned or failed: later appends may form
   * groups again. Until `release` the journal still promises below the
   * group's first tau (`#inFlightFirstTau` stays).
   */
  #settleAbandoned(): void {
    const abandoned = this.#abandoned;
    assert(abandoned !== null, "no abandoned group");
    abandoned.synced = true;
    if (abandoned.released) this.#abandoned = null;
    abandoned.settle();
  }

  #requireFile(): DiskFile {
    const file = this.#file;
    assert(file !== undefined, "no open segment");
    return file;
  }

  // ---- segments -------------------------------------------------------------

  async #createSegment(seq: number, lastTau: number): Promise<void> {
    const path = join(this.#dir, segmentFileName(seq));
    const file = await this.#disk.open(path, "create");
    this.#file = file;
    await file.write(
      0,
      encodeSegmentHeader({
        formatVersion: segment_format_version,
        journalId: this.#journalId,
        segmentSeq: seq,
      }),
    );
    await file.sync();
    await this.#disk.syncDir(this.#dir);
    this.#segments.push({ seq, path, durableBytes: segment_header_bytes, durableLastTau: lastTau });
    this.#writeOffset = segment_header_bytes;
    this.#fileBytes = segment_header_bytes;
  }

  /** Index of the first segment holding a durable record with tau > `tau`. */
  #firstSegmentAfter(tau: number): number | undefined {
    let low = 0;
    let high = this.#segments.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#segments[middle]!.durableLastTau > tau) high = middle;
      else low = middle + 1;
    }
    return low < this.#segments.length ? low : undefined;
  }

  async #openForRead(path: string): Promise<DiskFile> {
    try {
      return await this.#disk.open(path, "read");
    } catch (error) {
      throw new JournalError("io_failed", `cannot read ${path}: ${String(error)}`, {
        cause: error,
      });
    }
  }

  // ---- replay -------------------------------------------------------------

  async #replay(): Promise<void> {
    await this.#disk.mkdir(this.#dir);
    const names = await this.#disk.list(this.#dir);
    let seqs = names
      .map(parseSegmentFileName)
      .filter((seq): seq is number => seq !== undefined)
      .sort((a, b) => a - b);
    const marks = names
      .map(parseRetentionFileName)
      .filter((mark): mark is RetentionMark => mark !== undefined)
      .sort((a, b) => a.firstSeq - b.firstSeq || a.throughTau - b.throughTau);
    const mark = marks[marks.length - 1];
    if (mark !== undefined) {
      // Finish a removal a crash cut short: the marker was durable before it began.
      const stale = seqs.filter((seq) => seq < mark.firstSeq);
      for (const seq of stale) await this.#disk.remove(join(this.#dir, segmentFileName(seq)));
      for (const old of marks.slice(0, -1)) {
        await this.#disk.remove(join(this.#dir, retentionFileName(old)));
      }
      if (stale.length > 0 || marks.length > 1) await this.#disk.syncDir(this.#dir);
      seqs = seqs.filter((seq) => seq >= mark.firstSeq);
      this.#mark = mark;
      this.#removedThroughTau = mark.throughTau;
      this.#last = mark.throughTau;
    }
    const firstSeq = mark?.firstSeq ?? 1;
    if ((seqs.length > 0 || mark !== undefined) && seqs[0] !== firstSeq) {
      throw new JournalError(
        "corrupt",
        `${this.#dir}: segment ${firstSeq} is missing (${seqs.length > 0 ? `the first is ${seqs[0]}` : "none is left"})`,
      );
    }
    for (let i = 1; i < seqs.length; i++) {
      if (seqs[i] !== seqs[i - 1]! + 1) {
        throw new JournalError(
          "corrupt",
          `${this.#dir}: segment ${seqs[i - 1]! + 1} is missing (found ${seqs[i - 1]} then ${seqs[i]})`,
        );
      }
    }
    this.#recovery.segments = seqs.length;
    for (let i = 0; i < seqs.length; i++) {
      await this.#replaySegment(seqs[i]!, i === seqs.length - 1);
    }
    this.#recovery.lastTau = this.#last;
    this.#durableTau = this.#last;
    if (seqs.length === 0) {
      // A new journal: make the directory's own entry durable too.
      await this.#disk.syncDir(dirname(this.#dir));
      await this.#createSegment(1, 0);
    }
  }

  async #replaySegment(seq: number, isLast: boolean): Promise<void> {
    const path = join(this.#dir, segmentFileName(seq));
    const file = await this.#disk.open(path, isLast ? "readwrite" : "read");
    let keep = false;
    try {
      const size = await file.size();
      const header = decodeSegmentHeader(await file.read(0, segment_header_bytes));
      if (typeof header === "string") {
        // The header is fsynced before any record is written, so only a last
        // segment no longer than a header can hold a torn one: its creation was
        // cut short and nothing in it was ever acknowledged.
        if (!isLast || size > segment_header_bytes) {
          throw new JournalError("corrupt", `${path}: ${header}`);
        }
        await file.truncate(0);
        await file.write(
          0,
          encodeSegmentHeader({
            formatVersion: segment_format_version,
            journalId: this.#journalId,
            segmentSeq: seq,
          }),
        );
        await file.sync();
        this.#recovery.truncatedBytes += size;
        this.#adoptLast(seq, path, file, segment_header_bytes);
        this.#fileBytes = segment_header_bytes;
        keep = true;
        return;
      }
      if (header.segmentSeq !== seq) {
        throw new JournalError("corrupt", `${path}: header says segment ${header.segmentSeq}`);
      }
      if (header.journalId !== this.#journalId) {
        throw new JournalError(
          "corrupt",
          `${path}: belongs to journal ${header.journalId}, not ${this.#journalId}`,
        );
      }
      const validEnd = await this.#replayRecords(file, path, size, isLast);
      let fileBytes = size;
      if (validEnd < size && !(await allZero(file, validEnd, size))) {
        // A torn tail (zeros written ahead of the records are none).
        assert(isLast, "cutting a segment that is not the last");
        await file.truncate(validEnd);
        await file.sync();
        this.#recovery.truncatedBytes += size - validEnd;
        fileBytes = validEnd;
      }
      if (isLast) {
        this.#adoptLast(seq, path, file, validEnd);
        this.#fileBytes = fileBytes;
        keep = true;
      } else {
        this.#segments.push({ seq, path, durableBytes: validEnd, durableLastTau: this.#last });
      }
    } finally {
      if (!keep) await file.close();
    }
  }

  /** Scans a segment's records, a chunk per step; returns where the valid data ends. */
  async #replayRecords(
    file: DiskFile,
    path: string,
    size: number,
    isLast: boolean,
  ): Promise<number> {
    const scanner = new RecordScanner(file, segment_header_bytes, size, {
      engine: this.#engine,
      lastTau: this.#last,
    });
    while (true) {
      const step = await scanner.nextBatch();
      if (step.kind === "end") return size;
      if (step.kind === "bad") {
        if (!isLast) {
          throw new JournalError("corrupt", `${path} at byte ${step.offset}: ${step.reason}`);
        }
        return step.offset;
      }
      const { index } = step;
      assert(index.count > 0 && index.lastTau > this.#last, "scanner batch");
      this.#last = index.lastTau;
      this.#recovery.entries += index.count;
    }
  }

  #adoptLast(seq: number, path: string, file: DiskFile, size: number): void {
    this.#segments.push({ seq, path, durableBytes: size, durableLastTau: this.#last });
    this.#file = file;
    this.#writeOffset = size;
    this.#writeLastTau = this.#last;
  }
}

function validateOptions(options: JournalOptions): void {
  const fail = (message: string): never => {
    throw new JournalError("invalid_argument", message);
  };
  if (typeof options.dir !== "string" || options.dir.length === 0)
    fail("dir must be a non-empty path");
  const journalId = options.journalId ?? 0;
  if (!Number.isInteger(journalId) || journalId < 0 || journalId > journal_id_max) {
    fail(`journalId must be a u32, got ${journalId}`);
  }
  const segmentBytesMax = options.segmentBytesMax ?? journal_segment_bytes_default;
  if (!Number.isSafeInteger(segmentBytesMax) || segmentBytesMax < journal_segment_bytes_min) {
    fail(
      `segmentBytesMax must be an integer >= ${journal_segment_bytes_min}, got ${segmentBytesMax}`,
    );
  }
  const batchBytesMax = options.batchBytesMax ?? journal_batch_bytes_default;
  if (!Number.isSafeInteger(batchBytesMax) || batchBytesMax < journal_batch_bytes_min) {
    fail(`batchBytesMax must be an integer >= ${journal_batch_bytes_min}, got ${batchBytesMax}`);
  }
  const preallocateBytes = options.preallocateBytes ?? journal_preallocate_bytes_default;
  if (!Number.isSafeInteger(preallocateBytes) || preallocateBytes < 0) {
    fail(`preallocateBytes must be a non-negative integer, got ${preallocateBytes}`);
  }
}

/** Written ahead of the records (`preallocateBytes`); never modified. */
const zeros = new Uint8Array(256 * 1024);

/** True when bytes `from`..`to` of `file` are all zero. */
async function allZero(file: DiskFile, from: number, to: number): Promise<boolean> {
  for (let at = from; at < to; at += zeros.length) {
    const chunk = await file.read(at, Math.min(zeros.length, to - at));
    for (const byte of chunk) if (byte !== 0) return false;
  }
  return true;
}

/** Why `entry` cannot be appended, or undefined if it can. */
function checkAppend(entry: JournalAppend): string | undefined {
  if (!(entry.txnId instanceof Uint8Array) || entry.txnId.length !== txn_id_bytes) {
    return `txnId must be ${txn_id_bytes} bytes`;
  }
  if (!Number.isSafeInteger(entry.tauStart) || entry.tauStart < 0) {
    return `tauStart must be a non-negative integer, got ${entry.tauStart}`;
  }
  if (!(entry.body instanceof Uint8Array)) return "body must be a Uint8Array";
  if (entry.body.length > record_body_bytes_max) {
    return `body of ${entry.body.length} bytes exceeds record_body_bytes_max (${record_body_bytes_max})`;
  }
  return undefined;
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`journal assertion failed: ${message}`);
}
