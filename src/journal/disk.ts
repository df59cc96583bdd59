/**
 * The journal's view of a disk. The journal never touches `fs` itself: it gets
 * a `Disk` through its options, so tests can count or fail fsyncs and the
 * simulator can crash it at any byte. The real adapter is `FsDisk` in
 * `src/io/fs-disk.ts`.
 *
 * Files are addressed by explicit positions (pread/pwrite), never by a shared
 * cursor, so a journal's bookkeeping of "how many bytes are in this segment"
 * is the single source of truth about where the next record goes.
 */

export type DiskOpenMode =
  /** Existing file, read only. */
  | "read"
  /** Existing file, read and write. */
  | "readwrite"
  /** New file, read and write; fails if the name already exists. */
  | "create";

export interface DiskFile {
  readonly path: string;
  /** Current length in bytes. */
  size(): Promise<number>;
  /**
   * Up to `length` bytes starting at `position`; fewer only at end of file.
   * The result is a fresh buffer the caller may keep.
   */
  read(position: number, length: number): Promise<Uint8Array>;
  /**
   * Writes all of `data` at `position` (the whole buffer or an error). The
   * caller reuses `data` once this resolves: keep a copy, never the buffer.
   */
  write(position: number, data: Uint8Array): Promise<void>;
  /** Makes every completed write of this file durable (fdatasync or stronger). */
  sync(): Promise<void>;
  /** Sets the length to `length` bytes. */
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface Disk {
  /** Creates `dir` and missing parents; succeeds if it exists. */
  mkdir(dir: string): Promise<void>;
  /** Names (not paths) of the entries of `dir`. */
  list(dir: string): Promise<string[]>;
  open(path: string, mode: DiskOpenMode): Promise<DiskFile>;
  /** Makes the entries of `dir` (creations, removals) durable. */
  syncDir(dir: string): Promise<void>;
  /** Removes the file's name (durable once its directory is synced); succeeds if it is gone. */
  remove(path: string): Promise<void>;
  /**
   * Gives `from`'s file the name `to` in the same directory, replacing any
   * file of that name at once for readers; durable once the directory is
   * synced (a crash before that leaves the old name or the new one, whole).
   */
  rename(from: string, to: string): Promise<void>;
}
