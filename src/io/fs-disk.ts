/**
 * The real `Disk` for the journal: node:fs/promises file handles with
 * positional reads and writes, fdatasync for files and fsync for directories.
 * This is the only journal code that touches the file system.
 */
import fs, { promises as fsp } from "node:fs";
import type { Disk, DiskFile, DiskOpenMode } from "../journal";

const open_flags: Record<DiskOpenMode, string> = {
  read: "r",
  readwrite: "r+",
  create: "wx+",
};

export class FsDisk implements Disk {
  async mkdir(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
  }

  async list(dir: string): Promise<string[]> {
    return fsp.readdir(dir);
  }

  async open(path: string, mode: DiskOpenMode): Promise<DiskFile> {
    return new FsDiskFile(path, await fsp.open(path, open_flags[mode]));
  }

  async remove(path: string): Promise<void> {
    await fsp.rm(path, { force: true });
  }

  async rename(from: string, to: string): Promise<void> {
    await fsp.rename(from, to);
  }

  async syncDir(dir: string): Promise<void> {
    const handle = await fsp.open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

class FsDiskFile implements DiskFile {
  readonly path: string;
  readonly #handle: fsp.FileHandle;

  constructor(path: string, handle: fsp.FileHandle) {
    this.path = path;
    this.#handle = handle;
  }

  async size(): Promise<number> {
    return (await this.#handle.stat()).size;
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    const buffer = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.#handle.read(
        buffer,
        filled,
        length - filled,
        position + filled,
      );
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === length ? buffer : buffer.subarray(0, filled);
  }

  /**
   * A synchronous pwrite: it only copies into the page cache (the fsync is
   * what waits for the device), and on the event loop it costs less than a
   * round trip through the thread pool, which a journal would pay per group.
   */
  async write(position: number, data: Uint8Array): Promise<void> {
    let written = 0;
    while (written < data.length) {
      const bytesWritten = fs.writeSync(
        this.#handle.fd,
        data,
        written,
        data.length - written,
        position + written,
      );
      if (bytesWritten <= 0) throw new Error(`${this.path}: write made no progress`);
      written += bytesWritten;
    }
  }

  async sync(): Promise<void> {
    // fdatasync flushes the data and the file size, which is all a reader needs.
    await this.#handle.datasync();
  }

  async truncate(length: number): Promise<void> {
    await this.#handle.truncate(length);
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}
