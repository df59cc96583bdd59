/**
 * Streams the records of one segment file from disk, a chunk at a time, so
 * neither replay nor `readFrom` ever holds a whole segment (or the whole
 * journal) in memory. The scanner stops at `end`: for replay that is the file
 * size, for readers the durable length of the segment when they looked.
 *
 * Each chunk is validated by `decodeRecords` (src/journal/record-buffer.ts)
 * in one call, native or TypeScript, into a reused index: replay counts
 * records and follows taus without materializing them, and readers copy out
 * only the records they return. Taus must increase strictly from `lastTau`.
 */
import type { DiskFile } from "./disk";
import type { CommitRecord } from "./record";
import { record_header_bytes } from "./record";
import { decodeRecords, RecordIndex, type RecordEngine } from "./record-buffer";

/** Bytes read from disk at a time (a record larger than this is read whole). */
export const scan_chunk_bytes = 1024 * 1024;

export type ScanStep =
  | { kind: "record"; record: CommitRecord; offset: number; next: number }
  | { kind: "end" }
  /** The bytes at `offset` are not a valid record (torn, truncated, corrupt or out of order). */
  | { kind: "bad"; offset: number; reason: string };

export type ScanBatch =
  /** `index` holds `index.count >= 1` records of `bytes`, whose byte 0 is at file offset `base`. */
  | { kind: "records"; index: RecordIndex; bytes: Uint8Array; base: number }
  | { kind: "end" }
  | { kind: "bad"; offset: number; reason: string };

export interface RecordScannerOptions {
  engine: RecordEngine;
  /** Every tau_commit must be above this and above the record before it. */
  lastTau: number;
}

export class RecordScanner {
  readonly #file: DiskFile;
  readonly #end: number;
  readonly #engine: RecordEngine;
  readonly #index = new RecordIndex();
  #position: number;
  #lastTau: number;
  #buffer: Uint8Array = new Uint8Array(0);
  #bufferStart = 0;
  /** The batch `next()` is walking, and the next record in it. */
  #batch: Extract<ScanBatch, { kind: "records" }> | undefined;
  #batchNext = 0;

  constructor(file: DiskFile, start: number, end: number, options: RecordScannerOptions) {
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end)) {
      throw new RangeError(`bad scan range ${start}..${end}`);
    }
    this.#file = file;
    this.#position = start;
    this.#end = end;
    this.#engine = options.engine;
    this.#lastTau = options.lastTau;
  }

  /** File offset of the next record to be scanned. */
  get position(): number {
    return this.#position;
  }

  /** tau_commit of the last record scanned (the starting lastTau before any). */
  get lastTau(): number {
    return this.#lastTau;
  }

  /**
   * The next run of valid records, decoded in one call. The index and bytes
   * are reused: they are valid until the next call.
   */
  async nextBatch(): Promise<ScanBatch> {
    assert(this.#batch === undefined, "nextBatch while next() is inside a batch");
    const at = this.#position;
    if (at === this.#end) return { kind: "end" };
    let index = this.#decode(at);
    if (index.count === 0 && (index.error === null || index.error === "short")) {
      const need = index.error === "short" ? index.need : record_header_bytes;
      if (at + need > this.#end) {
        return { kind: "bad", offset: at, reason: `record runs past the end (${this.#end})` };
      }
      await this.#fill(at, need);
      index = this.#decode(at);
      if (index.count === 0 && (index.error === null || index.error === "short")) {
        return { kind: "bad", offset: at, reason: "file shorter than expected" };
      }
    }
    if (index.count === 0) {
      const bytes = this.#buffer.subarray(at - this.#bufferStart);
      const reason = index.reason(bytes, this.#lastTau) ?? "record rejected";
      return { kind: "bad", offset: at, reason };
    }
    const base = at;
    this.#position = at + index.consumed;
    this.#lastTau = index.lastTau;
    return { kind: "records", index, bytes: this.#buffer.subarray(at - this.#bufferStart), base };
  }

  /** The next record, copied out of the scanner's buffer. */
  async next(): Promise<ScanStep> {
    if (this.#batch === undefined) {
      const batch = await this.nextBatch();
      if (batch.kind !== "records") return batch;
      this.#batch = batch;
      this.#batchNext = 0;
    }
    const { index, bytes, base } = this.#batch;
    const i = this.#batchNext++;
    if (this.#batchNext === index.count) this.#batch = undefined;
    const offset = base + index.offset(i);
    return {
      kind: "record",
      record: index.record(bytes, i),
      offset,
      next: offset + index.recordBytes(i),
    };
  }

  /** Decodes from file offset `at` in the current buffer (nothing if it is not there). */
  #decode(at: number): RecordIndex {
    const from = at - this.#bufferStart;
    const bytes =
      from >= 0 && from <= this.#buffer.length ? this.#buffer.subarray(from) : new Uint8Array(0);
    return decodeRecords(bytes, this.#lastTau, this.#index, this.#engine);
  }

  /** Loads at least `need` bytes starting at `at` (fewer only if the file is short). */
  async #fill(at: number, need: number): Promise<void> {
    const length = Math.min(Math.max(need, scan_chunk_bytes), this.#end - at);
    this.#buffer = await this.#file.read(at, length);
    this.#bufferStart = at;
  }
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`journal scanner assertion failed: ${message}`);
}
