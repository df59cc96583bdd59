/**
 * The sidecar's record of every QP's reported progress (src/sidecar/retention.ts),
 * in one small JSON file of its data directory. A save writes a new file,
 * fsyncs it, renames it over the old one and fsyncs the directory, so a
 * crash leaves the old record or the new one, never a torn one.
 */
import fs, { promises as fsp } from "node:fs";
import path from "node:path";
import type { QpProgressStore } from "../sidecar/retention";
import { FsDisk } from "./fs-disk";

export const qp_progress_file_name = "qp-progress.json";

interface Saved {
  version: 1;
  /** QP system identifier (decimal) → the highest tau it reported applied. */
  qps: Record<string, number>;
}

export class QpProgressFile implements QpProgressStore {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = path.join(dataDir, qp_progress_file_name);
  }

  /** What was saved; empty when nothing ever was. Throws on a file that is not a saved record. */
  load(): Map<bigint, number> {
    let text: string;
    try {
      text = fs.readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
      throw error;
    }
    const fail = (why: string): never => {
      throw new Error(`${this.path}: ${why}`);
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

  async save(progress: ReadonlyMap<bigint, number>): Promise<void> {
    const record: Saved = { version: 1, qps: {} };
    for (const [qp, tau] of progress) record.qps[qp.toString()] = tau;
    const temporary = `${this.path}.tmp`;
    const file = await fsp.open(temporary, "w", 0o600);
    try {
      await file.writeFile(`${JSON.stringify(record)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await fsp.rename(temporary, this.path);
    await new FsDisk().syncDir(path.dirname(this.path));
  }
}
