/**
 * One process per data directory: a lock file naming the process that holds
 * it, as PostgreSQL's postmaster.pid does. Two sidecars on one directory
 * would both append to its journals, and the second one's replay would cut a
 * group the first is still writing as a torn tail — after which the first
 * acknowledges it. So the sidecar takes this lock before it opens anything
 * in the directory, and refuses to start while a live process holds it.
 *
 * The file is made whole before it gets its name (written under a unique
 * name, then hard-linked to `sidecar.lock`, which fails if the name exists),
 * so a reader never sees a half-written one. It holds the pid and, where
 * /proc has it, the process's start time, so a pid reused by another
 * process after a crash is told apart. A lock whose process is gone (a
 * crash, kill -9) is stale and taken over. A lock naming this very
 * process is stale too unless this process holds it (a container restarts
 * its main process with the same pid), so one process may not open a
 * directory twice either.
 *
 * This is the sidecar's I/O shell (it reads and writes files and probes
 * processes); no sans-I/O component uses it.
 */
import fs from "node:fs";
import path from "node:path";
import { statField } from "./proc-stat";

export const lock_file_name = "sidecar.lock";

/** Directories locked by this process (resolved paths). */
const held = new Set<string>();

export class DirLockError extends Error {
  readonly code = "data_dir_in_use";
  /** The process holding the lock. */
  readonly pid: number;

  constructor(message: string, pid: number) {
    super(message);
    this.name = "DirLockError";
    this.pid = pid;
  }
}

export class DirLock {
  readonly path: string;
  readonly #dir: string;
  #released = false;

  private constructor(dir: string) {
    this.#dir = dir;
    this.path = path.join(dir, lock_file_name);
  }

  /**
   * Takes the lock of `dir` (which must exist) or throws `DirLockError`
   * naming the live process that holds it.
   */
  static acquire(dir: string): DirLock {
    const resolved = path.resolve(dir);
    const lock = new DirLock(resolved);
    const mine = `${process.pid}\n${startTimeOf(process.pid) ?? ""}\n`;
    const scratch = `${lock.path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    fs.writeFileSync(scratch, mine, { mode: 0o600, flag: "wx" });
    try {
      // Twice at most: once more after removing a stale lock.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          fs.linkSync(scratch, lock.path);
          held.add(resolved);
          return lock;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        }
        const holder = readHolder(lock.path);
        if (holder !== undefined && isLive(holder, resolved)) {
          throw new DirLockError(
            `the data directory ${resolved} is in use by process ${holder.pid} ` +
              `(${lock.path}); stop it first, or remove that file if no such process runs`,
            holder.pid,
          );
        }
        fs.rmSync(lock.path, { force: true });
      }
      throw new Error(`${lock.path}: could not take the lock (another process raced for it)`);
    } finally {
      fs.rmSync(scratch, { force: true });
    }
  }

  /** Gives the lock up (removes the file if it still names this process). Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    held.delete(this.#dir);
    if (readHolder(this.path)?.pid === process.pid) fs.rmSync(this.path, { force: true });
  }
}

interface Holder {
  pid: number;
  /** The process's start time when it took the lock, if /proc told it. */
  startTime: string | undefined;
}

/** The holder a lock file names; undefined when it is missing or holds no pid. */
function readHolder(file: string): Holder | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const [first, second] = text.split("\n");
  const pid = Number(first);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return { pid, startTime: second ? second : undefined };
}

/**
 * Start time of a process (field 22 of /proc/PID/stat, clock ticks after
 * boot); undefined where there is no such process or no /proc.
 */
function startTimeOf(pid: number): string | undefined {
  try {
    return statField(fs.readFileSync(`/proc/${pid}/stat`, "utf8"), 22);
  } catch {
    return undefined;
  }
}

/** Whether the holder still holds `dir`: another live process, or this one while it holds it. */
function isLive(holder: Holder, dir: string): boolean {
  if (holder.pid === process.pid) return held.has(dir);
  const startTime = startTimeOf(holder.pid);
  if (holder.startTime !== undefined && startTime !== undefined) {
    return startTime === holder.startTime; // another process with a reused pid: stale
  }
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
