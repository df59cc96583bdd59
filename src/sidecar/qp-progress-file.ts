/**
 * The sidecar's record of every QP's reported progress (retention.ts), in
 * one small JSON file of its data directory. A save writes a new file,
 * fsyncs it, renames it over the old one and fsyncs the directory, so a
 * crash leaves the old record or the new one, never a torn one.
 *
 * Sans-I/O: the disk is passed in (`FsDisk` in the sidecar, `SimDisk` in the
 * simulator).
 */
import path from "node:path";
import type { Disk } from "../journal";
import type { QpProgressStore } from "./retention";

export const qp_progress_file_name = "qp-progress.json";

interface Saved {
  version: 1;
  /** QP system identifier (decimal) → the highest tau it reported applied. */
  qps: Record<string, number>;
}

export class QpProgressFile implements QpProgressStore {
  readonly path: string;
  readonly #disk: Disk;
  readonly #dir: string;

  constructor(disk: Disk, dataDir: string) {
    this.#disk = disk;
    this.#dir = dataDir;
    this.path = path.join(dataDir, qp_progress_file_name);
  }

  /** What was saved; empty when nothing ever was. Throws on a file that is not a saved record. */
  async load(): Promise<Map<bigint, number>> {
    const names = await this.#disk.list(this.#dir);
    if (!names.includes(qp_progress_file_name)) return new Map();
    const file = await this.#disk.open(this.path, "read");
    let bytes: Uint8Array;
    try {
      bytes = await file.read(0, await file.size());
    } finally {
      await file.close();
    }
    return parse(this.path, new TextDecoder().decode(bytes));
  }

  async save(progress: ReadonlyMap<bigint, number>): Promise<void> {
    const record: Saved = { version: 1, qps: {} };
    for (const [qp, tau] of progress) record.qps[qp.toString()] = tau;
    const temporary = `${this.path}.tmp`;
    await this.#disk.remove(temporary); // left by a crash mid-save
    const file = await this.#disk.open(temporary, "create");
    try {
      await file.write(0, new TextEncoder().encode(`${JSON.stringify(record)}\n`));
      await file.sync();
    } finally {
      await file.close();
    }
    await this.#disk.rename(temporary, this.path);
    await this.#disk.syncDir(this.#dir);
  }
}

function parse(where: string, text: string): Map<bigint, number> {
  const fail = (why: string): never => {
    throw new Error(`${where}: ${why}`);
  };
  let saved: unknown;
  try {
    saved = JSON.parse(text);
  } catch {
    fail("not JSON");
  }
  const record = saved as Partial<Saved> | null;
  if (record === null || typeof record !== "object" || record.version !== 1)
    fail("unknown version");
  if (typeof record!.qps !== "object" || record!.qps === null) fail("no qps");
  const progress = new Map<bigint, number>();
  for (const [qp, tau] of Object.entries(record!.qps!)) {
    if (!/^[0-9]+$/.test(qp) || !Number.isSafeInteger(tau) || tau < 0) {
      fail(`bad entry ${qp}: ${String(tau)}`);
    }
    progress.set(BigInt(qp), tau);
  }
  return progress;
}
