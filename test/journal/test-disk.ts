/**
 * A `Disk` wrapper for journal tests: passes everything to a real disk and
 * counts fsyncs, can hold fsyncs behind a gate, can make writes or fsyncs
 * fail, and tracks per file how many bytes were written and how many a
 * returned fsync covered (so a test can cut a file anywhere a crash could).
 */
import type { Disk, DiskFile, DiskOpenMode } from "../../src/journal";

export interface FileTrack {
  /** High-water mark of bytes written. */
  written: number;
  /** Bytes covered by the last fsync that returned. */
  durable: number;
}

export class TestDisk implements Disk {
  readonly inner: Disk;
  /** File fsyncs that returned successfully. */
  syncs = 0;
  /** Opens in "read" mode, per path. */
  readonly readOpens = new Map<string, number>();
  readonly tracks = new Map<string, FileTrack>();
  failSyncs = false;
  failWrites = false;
  /**
   * Fsyncs return without asking the device: for tests whose crash model is
   * the `tracks` above (they cut files themselves), where a real flush only
   * adds time — and seconds of it when the machine's disk is busy.
   */
  skipDeviceSync = false;
  /** While set, every file fsync waits for it before running. */
  syncGate: Promise<void> | undefined;
  /** While set, a file fsync waits for what it returns for the file's path (if anything). */
  syncGateFor: ((path: string) => Promise<void> | undefined) | undefined;
  /** Called after each file fsync returned, with the bytes it covered. */
  onSynced: ((path: string, durable: number) => void) | undefined;

  constructor(inner: Disk) {
    this.inner = inner;
  }

  mkdir(dir: string): Promise<void> {
    return this.inner.mkdir(dir);
  }

  list(dir: string): Promise<string[]> {
    return this.inner.list(dir);
  }

  async open(path: string, mode: DiskOpenMode): Promise<DiskFile> {
    const file = await this.inner.open(path, mode);
    if (mode === "read") this.readOpens.set(path, (this.readOpens.get(path) ?? 0) + 1);
    if (!this.tracks.has(path)) {
      const size = await file.size();
      this.tracks.set(path, { written: size, durable: mode === "create" ? 0 : size });
    }
    return new TestFile(this, file, this.tracks.get(path)!);
  }

  remove(path: string): Promise<void> {
    this.tracks.delete(path);
    return this.inner.remove(path);
  }

  rename(from: string, to: string): Promise<void> {
    const track = this.tracks.get(from);
    this.tracks.delete(from);
    if (track !== undefined) this.tracks.set(to, track);
    else this.tracks.delete(to);
    return this.inner.rename(from, to);
  }

  syncDir(dir: string): Promise<void> {
    if (this.skipDeviceSync) return Promise.resolve();
    return this.inner.syncDir(dir);
  }
}

class TestFile implements DiskFile {
  readonly #disk: TestDisk;
  readonly #inner: DiskFile;
  readonly #track: FileTrack;

  constructor(disk: TestDisk, inner: DiskFile, track: FileTrack) {
    this.#disk = disk;
    this.#inner = inner;
    this.#track = track;
  }

  get path(): string {
    return this.#inner.path;
  }

  size(): Promise<number> {
    return this.#inner.size();
  }

  read(position: number, length: number): Promise<Uint8Array> {
    return this.#inner.read(position, length);
  }

  async write(position: number, data: Uint8Array): Promise<void> {
    if (this.#disk.failWrites) throw new Error("injected write failure");
    await this.#inner.write(position, data);
    this.#track.written = Math.max(this.#track.written, position + data.length);
  }

  async sync(): Promise<void> {
    const covered = this.#track.written;
    if (this.#disk.syncGate !== undefined) await this.#disk.syncGate;
    const gate = this.#disk.syncGateFor?.(this.path);
    if (gate !== undefined) await gate;
    if (this.#disk.failSyncs) throw new Error("injected fsync failure (EIO)");
    if (!this.#disk.skipDeviceSync) await this.#inner.sync();
    this.#track.durable = Math.max(this.#track.durable, covered);
    this.#disk.syncs++;
    this.#disk.onSynced?.(this.path, this.#track.durable);
  }

  async truncate(length: number): Promise<void> {
    await this.#inner.truncate(length);
    this.#track.written = length;
    this.#track.durable = Math.min(this.#track.durable, length);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
