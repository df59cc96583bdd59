/**
 * Streams the records of one segment file from disk, a chunk at a time, so
 * neither replay nor `readFrom` ever holds a whole segment (or the whole
 * journal) in memory. The scanner stops at `end`: for replay that is the file
 * size, for readers the durable length of the segment when they looked.
 */
import type { DiskFile } from "./disk";
import { decodeRecord, type CommitRecord } from "./record";

/** Bytes read from disk at a time (a record larger than this is read whole). */
export const scan_chunk_bytes = 1024 * 1024;

export type ScanStep =
  | { kind: "record"; record: CommitRecord; offset: number; next: number }
  | { kind: "end" }
  /** The bytes at `offset` are not a valid record (torn, truncated or corrupt). */
  | { kind: "bad"; offset: number; reason: string };

export class RecordScanner {
  readonly #file: DiskFile;
  readonly #end: number;
  #position: number;
  #buffer: Uint8Array = new Uint8Array(0);
  #bufferStart = 0;

  constructor(file: DiskFile, start: number, end: number) {
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end)) {
      throw new RangeError(`bad scan range ${start}..${end}`);
    }
    this.#file = file;
    this.#position = start;
    this.#end = end;
  }

  /** File offset of the next record to be scanned. */
  get position(): number {
    return this.#position;
  }

  async next(): Promise<ScanStep> {
    const at = this.#position;
    if (at === this.#end) return { kind: "end" };
    let decoded = decodeRecord(this.#buffer, at - this.#bufferStart);
    if (decoded.kind === "short") {
      if (at + decoded.need > this.#end) {
        return { kind: "bad", offset: at, reason: `record runs past the end (${this.#end})` };
      }
      await this.#fill(at, decoded.need);
      decoded = decodeRecord(this.#buffer, 0);
      if (decoded.kind === "short") {
        return { kind: "bad", offset: at, reason: "file shorter than expected" };
      }
    }
    if (decoded.kind === "bad") return { kind: "bad", offset: at, reason: decoded.reason };
    this.#position = at + decoded.bytes;
    return { kind: "record", record: decoded.record, offset: at, next: this.#position };
  }

  /** Loads at least `need` bytes starting at `at` (fewer only if the file is short). */
  async #fill(at: number, need: number): Promise<void> {
    const length = Math.min(Math.max(need, scan_chunk_bytes), this.#end - at);
    this.#buffer = await this.#file.read(at, length);
    this.#bufferStart = at;
  }
}
