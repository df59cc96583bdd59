/**
 * A simulated disk behind src/journal's `Disk` interface. Writes land in a
 * page cache at once; `sync` takes a sampled fsync latency (on the host's
 * event queue, so a stalled host's fsync does not return during the stall)
 * and then makes the writes it covered durable. A crash keeps the durable
 * bytes plus a random prefix of the unsynced writes, the last of them
 * possibly torn, forgets files whose directory entry was never synced, and
 * may bring back a removed file whose removal was never synced, and keeps
 * only a prefix of the renames no directory sync covered (each whole: the
 * old name or the new one) — what a real disk may do, so the journal's
 * torn-tail cut is exercised.
 *
 * Planted bugs (sim only): `bugAckBeforeFsync` makes `sync` return at once
 * while the bytes become durable only after the fsync latency; the
 * durability checker must catch the acknowledged commits a crash then loses.
 * `bugLosesAtCrash` names a file (by its last path component) that every
 * crash loses, synced or not.
 */
import { dirname } from "node:path";
import type { Disk, DiskFile, DiskOpenMode } from "../journal";
import { Prng, sampleLatency } from "./prng";
import type { LatencyDist } from "./prng";
import type { SimHost } from "./world";

type Op =
  { kind: "write"; position: number; data: Uint8Array } | { kind: "truncate"; length: number };

interface FileState {
  /** What reads see: the page cache. */
  data: Bytes;
  /** What survives a crash for sure. */
  durable: Bytes;
  /** Writes and truncates since the last completed sync, in order. */
  unsynced: Op[];
  /** Its directory entry survives a crash. */
  named: boolean;
  /** Ops made durable so far (the index of `unsynced[0]` among all ops). */
  epoch: number;
}

export interface SimDiskOptions {
  fsync: LatencyDist;
  /** Planted bug: fsync returns before the bytes are durable. */
  bugAckBeforeFsync?: boolean;
  /** Planted bug: every crash loses the files of this name. */
  bugLosesAtCrash?: string;
}

export class SimDiskError extends Error {
  readonly code: "not_found" | "exists";

  constructor(code: SimDiskError["code"], message: string) {
    super(message);
    this.name = "SimDiskError";
    this.code = code;
  }
}

/** A byte buffer that grows by doubling, so appends cost amortized O(bytes). */
class Bytes {
  buf = new Uint8Array(256);
  length = 0;

  clone(): Bytes {
    const out = new Bytes();
    out.buf = this.buf.slice(0, Math.max(256, this.length));
    out.length = this.length;
    return out;
  }

  view(from: number, to: number): Uint8Array {
    return this.buf.slice(from, Math.min(to, this.length));
  }

  #reserve(length: number): void {
    if (length <= this.buf.length) return;
    let capacity = this.buf.length;
    while (capacity < length) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
  }

  apply(op: Op): void {
    if (op.kind === "truncate") {
      this.#reserve(op.length);
      if (op.length > this.length) this.buf.fill(0, this.length, op.length);
      this.length = op.length;
      return;
    }
    const end = op.position + op.data.length;
    this.#reserve(end);
    if (op.position > this.length) this.buf.fill(0, this.length, op.position);
    this.buf.set(op.data, op.position);
    if (end > this.length) this.length = end;
  }
}

export class SimDisk implements Disk {
  readonly #host: SimHost;
  readonly #prng: Prng;
  readonly #options: SimDiskOptions;
  readonly #files = new Map<string, FileState>();
  readonly #dirs = new Set<string>();
  /** Removed files whose removal no directory sync made durable yet: a crash may bring them back. */
  readonly #removed = new Map<string, FileState>();
  /** Renames no directory sync made durable yet, oldest first: a crash keeps a prefix of them. */
  readonly #renames: {
    from: string;
    to: string;
    state: FileState;
    replaced: FileState | undefined;
  }[] = [];
  /** Bumped by a crash: handles of the dead incarnation hang forever. */
  #generation = 0;
  syncs = 0;

  constructor(host: SimHost, prng: Prng, options: SimDiskOptions) {
    this.#host = host;
    this.#prng = prng;
    this.#options = options;
  }

  async mkdir(dir: string): Promise<void> {
    this.#dirs.add(dir);
  }

  async list(dir: string): Promise<string[]> {
    const names = new Set<string>();
    for (const path of this.#files.keys()) {
      if (dirname(path) === dir) names.add(path.slice(dir.length + 1));
    }
    for (const sub of this.#dirs) {
      if (dirname(sub) === dir) names.add(sub.slice(dir.length + 1));
    }
    return [...names].sort();
  }

  async open(path: string, mode: DiskOpenMode): Promise<DiskFile> {
    const existing = this.#files.get(path);
    if (mode === "create") {
      if (existing !== undefined) throw new SimDiskError("exists", `${path} exists`);
      const state: FileState = {
        data: new Bytes(),
        durable: new Bytes(),
        unsynced: [],
        named: false,
        epoch: 0,
      };
      this.#files.set(path, state);
      return this.#handle(path, state);
    }
    if (existing === undefined) throw new SimDiskError("not_found", `${path} does not exist`);
    return this.#handle(path, existing);
  }

  async syncDir(dir: string): Promise<void> {
    for (let i = this.#renames.length - 1; i >= 0; i--) {
      if (dirname(this.#renames[i]!.to) === dir) this.#renames.splice(i, 1);
    }
    for (const [path, state] of this.#files) if (dirname(path) === dir) state.named = true;
    for (const path of [...this.#removed.keys()])
      if (dirname(path) === dir) this.#removed.delete(path);
  }

  async remove(path: string): Promise<void> {
    const state = this.#files.get(path);
    if (state === undefined) return;
    this.#files.delete(path);
    if (state.named) this.#removed.set(path, state);
  }

  async rename(from: string, to: string): Promise<void> {
    if (dirname(from) !== dirname(to)) throw new Error(`rename across directories: ${from} ${to}`);
    const state = this.#files.get(from);
    if (state === undefined) throw new SimDiskError("not_found", `${from} does not exist`);
    if (from === to) return;
    const replaced = this.#files.get(to);
    this.#files.delete(from);
    this.#files.set(to, state);
    this.#renames.push({ from, to, state, replaced });
  }

  /**
   * The machine lost power: durable bytes stay, a random prefix of each file's
   * unsynced writes survives (the last one possibly torn), unnamed files vanish.
   */
  crash(): void {
    this.#generation += 1;
    // Renames are journaled in order: a prefix of them made it, whole.
    const kept = this.#prng.int(this.#renames.length + 1);
    for (let i = 0; i < kept; i++) this.#renames[i]!.state.named = true;
    for (let i = this.#renames.length - 1; i >= kept; i--) {
      const { from, to, state, replaced } = this.#renames[i]!;
      if (this.#files.get(to) !== state) continue;
      if (replaced === undefined) this.#files.delete(to);
      else this.#files.set(to, replaced);
      if (state.named) this.#files.set(from, state);
    }
    this.#renames.length = 0;
    for (const [path, state] of this.#removed) {
      if (!this.#files.has(path) && this.#prng.chance(0.5)) this.#files.set(path, state);
    }
    this.#removed.clear();
    for (const [path, state] of [...this.#files]) {
      const lost = this.#options.bugLosesAtCrash;
      if (!state.named || (lost !== undefined && path.endsWith(`/${lost}`))) {
        this.#files.delete(path);
        continue;
      }
      const data = state.durable;
      const keep = this.#prng.int(state.unsynced.length + 1);
      for (let i = 0; i < keep; i++) data.apply(state.unsynced[i]!);
      const torn = state.unsynced[keep];
      if (torn !== undefined && torn.kind === "write" && this.#prng.chance(0.5)) {
        const cut = this.#prng.int(torn.data.length + 1);
        data.apply({ kind: "write", position: torn.position, data: torn.data.slice(0, cut) });
      }
      state.data = data.clone();
      state.durable = data;
      state.unsynced = [];
      state.epoch = 0;
    }
  }

  #handle(path: string, state: FileState): DiskFile {
    const generation = this.#generation;
    const alive = (): boolean => generation === this.#generation;
    const hang = new Promise<never>(() => undefined);
    const settleSync = (): Promise<void> => this.#sync(state, alive);
    return {
      path,
      async size() {
        if (!alive()) return hang;
        return state.data.length;
      },
      async read(position: number, length: number) {
        if (!alive()) return hang;
        return state.data.view(position, position + length);
      },
      async write(position: number, data: Uint8Array) {
        if (!alive()) return hang;
        const op: Op = { kind: "write", position, data: data.slice() };
        state.data.apply(op);
        state.unsynced.push(op);
      },
      async truncate(length: number) {
        if (!alive()) return hang;
        const op: Op = { kind: "truncate", length };
        state.data.apply(op);
        state.unsynced.push(op);
      },
      sync() {
        if (!alive()) return hang;
        return settleSync();
      },
      async close() {
        return undefined;
      },
    };
  }

  #sync(state: FileState, alive: () => boolean): Promise<void> {
    this.syncs += 1;
    const covered = state.unsynced.length;
    const epoch = state.epoch;
    const latency = sampleLatency(this.#prng, this.#options.fsync);
    const settle = (): void => {
      if (!alive()) return;
      // Ops already made durable by a sync that settled first are skipped.
      const done = state.epoch - epoch;
      if (covered <= done) return;
      for (let i = 0; i < covered - done; i++) state.durable.apply(state.unsynced[i]!);
      state.unsynced = state.unsynced.slice(covered - done);
      state.epoch += covered - done;
    };
    if (this.#options.bugAckBeforeFsync === true) {
      this.#host.timers.schedule(latency, settle);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#host.timers.schedule(latency, () => {
        settle();
        resolve();
      });
    });
  }
}
