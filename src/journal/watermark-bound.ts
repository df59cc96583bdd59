/**
 * The journal set's durable watermark bound (`<dir>/watermark-bound`): a tau
 * that no watermark the set published is above. A heartbeat promises "no
 * record at or below the clock" without writing a record, so after a crash
 * a restarted set must not assign a tau at or below any such promise — even
 * if the host clock went back across the restart (an NTP step at boot). The
 * set never publishes a heartbeat watermark above the durable bound, moves
 * the bound ahead of the clock before the clock reaches it (one write and
 * fsync per `aheadUs / 2`), and at open starts every journal above it — as
 * CockroachDB persists its clock's upper bound.
 *
 * The file holds two 32-byte slots, written in turn: magic "OWB1", four zero
 * bytes, sequence number and bound (u64 each), CRC-32C of those 24 bytes,
 * four zero bytes. A write tears at most the slot it writes; the other holds
 * the last bound whose fsync returned, the only one anybody relied on. Open
 * takes the valid slot with the higher sequence number.
 */
import { join } from "node:path";
import { crc32c } from "../protocol/crc32c";
import type { Disk, DiskFile } from "./disk";
import { JournalError } from "./errors";

export const watermark_bound_file_name = "watermark-bound";
export const watermark_bound_slot_bytes = 32;
const watermark_bound_magic = 0x4f574231; // "OWB1"

interface Slot {
  seq: number;
  bound: number;
}

export class WatermarkBound {
  readonly #disk: Disk;
  readonly #dir: string;
  #file: DiskFile | null;
  #seq: number;
  #bound: number;
  /** The extension in flight, if any: one at a time. */
  #extending: Promise<void> | null = null;
  #target = 0;

  private constructor(disk: Disk, dir: string, file: DiskFile | null, slot: Slot) {
    this.#disk = disk;
    this.#dir = dir;
    this.#file = file;
    this.#seq = slot.seq;
    this.#bound = slot.bound;
  }

  /** Reads `<dir>/watermark-bound`; a set that never wrote one has bound 0. */
  static async open(disk: Disk, dir: string): Promise<WatermarkBound> {
    const names = await disk.list(dir);
    if (!names.includes(watermark_bound_file_name)) {
      return new WatermarkBound(disk, dir, null, { seq: 0, bound: 0 });
    }
    const path = join(dir, watermark_bound_file_name);
    const file = await disk.open(path, "readwrite");
    try {
      const bytes = await file.read(0, 2 * watermark_bound_slot_bytes);
      const slots = [0, 1]
        .map((k) =>
          decode(
            bytes.subarray(k * watermark_bound_slot_bytes, (k + 1) * watermark_bound_slot_bytes),
          ),
        )
        .filter((slot): slot is Slot => slot !== null);
      if (slots.length === 0) {
        // Created and written once before its directory entry and first slot were durable
        // together: no bound was ever relied on.
        if (bytes.length <= watermark_bound_slot_bytes) {
          return new WatermarkBound(disk, dir, file, { seq: 0, bound: 0 });
        }
        throw new JournalError("corrupt", `${path}: neither slot holds a valid bound`);
      }
      const newest = slots.reduce((a, b) => (b.seq > a.seq ? b : a));
      return new WatermarkBound(disk, dir, file, newest);
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
  }

  /** The highest bound whose fsync returned. */
  get durable(): number {
    return this.#bound;
  }

  /** An extension is being written. */
  get extending(): boolean {
    return this.#extending !== null;
  }

  /**
   * Makes `bound` durable (a no-op if it is not above the durable one);
   * resolves once it is. One write at a time: a call during one waits for
   * it, then writes its own if still higher.
   */
  async extend(bound: number): Promise<void> {
    if (!Number.isSafeInteger(bound) || bound < 0) {
      throw new JournalError(
        "invalid_argument",
        `bound must be a non-negative integer, got ${bound}`,
      );
    }
    if (bound > this.#target) this.#target = bound;
    while (this.#bound < bound) {
      if (this.#extending === null) {
        this.#extending = this.#write(this.#target).finally(() => (this.#extending = null));
      }
      await this.#extending;
    }
  }

  async #write(bound: number): Promise<void> {
    const seq = this.#seq + 1;
    let file = this.#file;
    if (file === null) {
      file = await this.#disk.open(join(this.#dir, watermark_bound_file_name), "create");
      this.#file = file;
      await file.write(0, encode({ seq, bound }));
      await file.sync();
      await this.#disk.syncDir(this.#dir);
    } else {
      await file.write((seq % 2) * watermark_bound_slot_bytes, encode({ seq, bound }));
      await file.sync();
    }
    this.#seq = seq;
    this.#bound = bound;
  }

  async close(): Promise<void> {
    await this.#extending?.catch(() => undefined);
    await this.#file?.close();
  }
}

function encode(slot: Slot): Uint8Array {
  const bytes = new Uint8Array(watermark_bound_slot_bytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, watermark_bound_magic);
  view.setBigUint64(8, BigInt(slot.seq));
  view.setBigUint64(16, BigInt(slot.bound));
  view.setUint32(24, crc32c(bytes.subarray(0, 24)));
  return bytes;
}

function decode(bytes: Uint8Array): Slot | null {
  if (bytes.length < watermark_bound_slot_bytes) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== watermark_bound_magic) return null;
  if (view.getUint32(24) !== crc32c(bytes.subarray(0, 24))) return null;
  const seq = Number(view.getBigUint64(8));
  const bound = Number(view.getBigUint64(16));
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(bound)) return null;
  return { seq, bound };
}
