/**
 * The journal set's void log (`<dir>/voids`): which records of which journal
 * are void. When the set fences a journal whose fsync stalls
 * (journal-set.ts), the group it had in flight is placed again in another
 * journal, and its records on the stalled journal's disk — they may still
 * become durable there — must never count. The set makes a void record
 * durable here before anything could read past them, and every reader of
 * the set skips the records it names.
 *
 * A void record is 32 bytes: magic "OVD1", journal id (u32), first and last
 * tau of the void range (u64 each), CRC-32C of those 24 bytes, four zero
 * bytes. A record the crash tore is cut at open: nobody relied on it, since
 * the set waits for this file's fsync before it acts on a void.
 */
import { join } from "node:path";
import { crc32c } from "../protocol/crc32c";
import type { Disk, DiskFile } from "./disk";
import { JournalError } from "./errors";

export const void_record_bytes = 32;
const void_magic = 0x4f564431; // "OVD1"

export interface VoidRange {
  journal: number;
  /** First and last tau of the void records (inclusive). */
  fromTau: number;
  toTau: number;
}

export class VoidLog {
  readonly #file: DiskFile;
  #size: number;
  readonly #ranges: VoidRange[];
  /** Appends run one after the other: each is a write and an fsync. */
  #tail: Promise<void> = Promise.resolve();

  private constructor(file: DiskFile, size: number, ranges: VoidRange[]) {
    this.#file = file;
    this.#size = size;
    this.#ranges = ranges;
  }

  /** Opens (creating if needed) `<dir>/voids` and reads every whole record. */
  static async open(disk: Disk, dir: string): Promise<VoidLog> {
    const path = join(dir, "voids");
    const names = await disk.list(dir);
    if (!names.includes("voids")) {
      const file = await disk.open(path, "create");
      await disk.syncDir(dir);
      return new VoidLog(file, 0, []);
    }
    const file = await disk.open(path, "readwrite");
    try {
      const size = await file.size();
      const bytes = await file.read(0, size);
      const ranges: VoidRange[] = [];
      let valid = 0;
      while (valid + void_record_bytes <= bytes.length) {
        const range = decode(bytes.subarray(valid, valid + void_record_bytes));
        if (range === null) break;
        ranges.push(range);
        valid += void_record_bytes;
      }
      if (valid < size) {
        // A torn last record (its fsync never returned, so the set never acted on it).
        if (size - valid > void_record_bytes) {
          throw new JournalError(
            "corrupt",
            `${path}: bad void record at byte ${valid} of ${size}, not at the end`,
          );
        }
        await file.truncate(valid);
        await file.sync();
      }
      return new VoidLog(file, valid, ranges);
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
  }

  /** Every void range, in the order they were made durable. */
  get ranges(): readonly VoidRange[] {
    return this.#ranges;
  }

  /** Makes `range` durable (write and fsync); resolves once it is, then it is in `ranges`. */
  append(range: VoidRange): Promise<void> {
    const run = async (): Promise<void> => {
      const position = this.#size;
      await this.#file.write(position, encode(range));
      await this.#file.sync();
      this.#size = position + void_record_bytes;
      this.#ranges.push({ ...range });
    };
    const next = this.#tail.then(run);
    this.#tail = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.#tail;
    await this.#file.close();
  }
}

function encode(range: VoidRange): Uint8Array {
  const bytes = new Uint8Array(void_record_bytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, void_magic);
  view.setUint32(4, range.journal);
  view.setBigUint64(8, BigInt(range.fromTau));
  view.setBigUint64(16, BigInt(range.toTau));
  view.setUint32(24, crc32c(bytes.subarray(0, 24)));
  return bytes;
}

function decode(bytes: Uint8Array): VoidRange | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== void_magic) return null;
  if (view.getUint32(24) !== crc32c(bytes.subarray(0, 24))) return null;
  const fromTau = Number(view.getBigUint64(8));
  const toTau = Number(view.getBigUint64(16));
  if (!Number.isSafeInteger(toTau) || fromTau > toTau) return null;
  return { journal: view.getUint32(4), fromTau, toTau };
}
