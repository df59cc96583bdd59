/**
 * The simulated query processors: closed-loop clients that send commit
 * requests (random keys, tau_start = what their QP has applied, as
 * docs/replication.md §5 takes it), resend on timeout with the same
 * transaction id, and after `committed` wait until the commit is visible on
 * every QP (the WAIT_VISIBLE of replication.md §6) before the next one. Each
 * QP also runs an applier: a crossbar subscription whose RECORDs and
 * WATERMARKs it logs for the checkers.
 */
import {
  decodeCommitBody,
  decodeMessage,
  frame_header_bytes,
  MessageType,
  WriteKind,
} from "../protocol";
import type { CommitReply, CommitRequest, ErrorMessage, Write } from "../protocol";
import type { Prng } from "./prng";
import type { SimHost } from "./world";

/** A commit a QP received from the crossbar, as the checkers need it. */
export interface Sequence {
  taus: number[];
  journals: number[];
  txns: number[];
}

export interface TxnInfo {
  tauStart: number;
  keys: number[];
}

export function txnIdOf(txn: number): Uint8Array {
  const id = new Uint8Array(16);
  const view = new DataView(id.buffer);
  view.setUint32(0, Math.floor(txn / 0x1_0000_0000));
  view.setUint32(4, txn >>> 0);
  view.setUint32(8, 0x6f72646f); // "ordo": the rest is fixed
  return id;
}

export function txnOf(id: Uint8Array): number {
  const view = new DataView(id.buffer, id.byteOffset, id.byteLength);
  return view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
}

export function keyBytes(key: number): Uint8Array {
  const bytes = new Uint8Array(5);
  bytes[0] = 0x6b;
  new DataView(bytes.buffer).setUint32(1, key);
  return bytes;
}

export function keyOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
}

/** Decodes a commit body into the checkers' view of it. */
export function txnInfoOf(body: Uint8Array): { txn: number } & TxnInfo {
  const decoded = decodeCommitBody(body);
  return {
    txn: txnOf(decoded.txnId),
    tauStart: decoded.tauStart,
    keys: decoded.writes.map((w) => keyOf(w.key)),
  };
}

/** Tracks how far every QP has applied and wakes waiters once a tau is visible everywhere. */
export class VisibilityTracker {
  readonly #applied: number[];
  #min = -1;
  /** Waiters sorted by tau (ascending); few at a time, so a sorted array is enough. */
  #waiters: { tau: number; wake: () => void }[] = [];

  constructor(qps: number) {
    this.#applied = new Array<number>(qps).fill(-1);
  }

  applied(qp: number): number {
    return this.#applied[qp]!;
  }

  get min(): number {
    return this.#min;
  }

  update(qp: number, tau: number): void {
    if (tau <= this.#applied[qp]!) return;
    this.#applied[qp] = tau;
    let min = Number.POSITIVE_INFINITY;
    for (const a of this.#applied) if (a < min) min = a;
    if (min <= this.#min) return;
    this.#min = min;
    let i = 0;
    while (i < this.#waiters.length && this.#waiters[i]!.tau <= min) i++;
    if (i === 0) return;
    const woken = this.#waiters.slice(0, i);
    this.#waiters = this.#waiters.slice(i);
    for (const w of woken) w.wake();
  }

  /** Resolves once every QP has applied `tau`. */
  visible(tau: number): Promise<void> {
    if (tau <= this.#min) return Promise.resolve();
    return new Promise((wake) => {
      let at = this.#waiters.length;
      while (at > 0 && this.#waiters[at - 1]!.tau > tau) at--;
      this.#waiters.splice(at, 0, { tau, wake });
    });
  }
}

/** One QP's applier state: the stream it got and how far it applied. */
export class QpApplier {
  readonly qp: number;
  readonly host: SimHost;
  readonly sequence: Sequence = { taus: [], journals: [], txns: [] };
  /** Txn details, kept only by the QP the SI checker reads. */
  readonly infos: Map<number, TxnInfo> | null;
  readonly #tracker: VisibilityTracker;
  readonly #record: boolean;
  #readyWaiters: (() => void)[] = [];
  #lastTau = -1;
  #lastJournal = -1;
  #watermark = -1;
  /** The subscription stream frames are taken from; frames of an older one are dropped. */
  #generation = 0;
  /** A resubscription resends from this tau: records up to (lastTau, lastJournal) above it are already applied. */
  #resumeFrom = Number.POSITIVE_INFINITY;
  /** Frames that did not decode or went backwards: reported by the total order checker. */
  readonly anomalies: string[] = [];

  constructor(
    qp: number,
    host: SimHost,
    tracker: VisibilityTracker,
    record: boolean,
    keepInfos: boolean,
  ) {
    this.qp = qp;
    this.host = host;
    this.#tracker = tracker;
    this.#record = record;
    this.infos = keepInfos ? new Map() : null;
  }

  get applied(): number {
    return this.#tracker.applied(this.qp);
  }

  /** Resolves once the QP has applied something (so tau_start is above the horizon). */
  ready(): Promise<void> {
    if (this.applied > 0) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /**
   * A new subscription stream (after a crash of the crossbar's host or a
   * broken connection): returns its generation, and the tau it must resend
   * from — what the QP applied, as the real applier resumes from its origin.
   */
  resubscribe(): { generation: number; fromTau: number } {
    this.#generation += 1;
    const fromTau = Math.max(0, this.applied);
    this.#resumeFrom = fromTau;
    return { generation: this.#generation, fromTau };
  }

  get generation(): number {
    return this.#generation;
  }

  /** Frames from the crossbar, in stream order, from subscription stream `generation`. */
  receive(frames: readonly Uint8Array[], generation = this.#generation): void {
    if (generation !== this.#generation) return; // a broken stream's last frames
    for (const frame of frames) {
      const message = decodeMessage(frame[5]!, frame.subarray(frame_header_bytes));
      if (message.type === MessageType.Record) {
        const tau = message.tauCommit;
        const journal = message.journalId;
        if (
          tau > this.#resumeFrom &&
          (tau < this.#lastTau || (tau === this.#lastTau && journal <= this.#lastJournal))
        ) {
          continue; // resent after a resubscription: applied already
        }
        if (
          tau <= this.#watermark ||
          tau < this.#lastTau ||
          (tau === this.#lastTau && journal <= this.#lastJournal)
        ) {
          this.anomalies.push(
            `qp ${this.qp} got (${tau}, ${journal}) after (${this.#lastTau}, ${this.#lastJournal}) / watermark ${this.#watermark}`,
          );
          continue;
        }
        this.#lastTau = tau;
        this.#lastJournal = journal;
        this.#resumeFrom = Number.POSITIVE_INFINITY; // past what was applied: order is checked again
        if (this.#record || this.infos !== null) {
          const info = txnInfoOf(message.body);
          if (this.#record) {
            this.sequence.taus.push(message.tauCommit);
            this.sequence.journals.push(message.journalId);
            this.sequence.txns.push(info.txn);
          }
          this.infos?.set(info.txn, { tauStart: info.tauStart, keys: info.keys });
        }
        // Another journal may still send a record at this same tau: only what is below it is applied.
        this.#advance(message.tauCommit - 1);
      } else if (message.type === MessageType.Watermark) {
        if (message.tau > this.#watermark) this.#watermark = message.tau;
        this.#advance(message.tau);
      }
    }
  }

  #advance(tau: number): void {
    this.#tracker.update(this.qp, tau);
    if (this.applied > 0 && this.#readyWaiters.length > 0) {
      const waiters = this.#readyWaiters;
      this.#readyWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}

export interface WorkloadOptions {
  keys: number;
  writesMax: number;
  clientTimeoutUs: number;
}

/** What a commit request path looks like to a client: send, maybe get a reply. */
export type CommitTransport = (
  from: SimHost,
  request: CommitRequest,
  reply: (r: CommitReply | ErrorMessage) => void,
) => void;

export interface ClientStats {
  acked(txn: number, tau: number, info: TxnInfo, requestedAt: number): void;
  visible(txn: number, tau: number, ackedAt: number, requestedAt: number): void;
  conflict(): void;
  unavailable(): void;
}

/** A closed-loop client of one QP. */
export class Client {
  readonly #id: number;
  readonly #qp: QpApplier;
  readonly #prng: Prng;
  readonly #options: WorkloadOptions;
  readonly #send: CommitTransport;
  readonly #tracker: VisibilityTracker;
  readonly #stats: ClientStats;
  readonly #now: () => number;
  #counter = 0;
  #requestId = 1n;

  constructor(
    id: number,
    qp: QpApplier,
    prng: Prng,
    options: WorkloadOptions,
    send: CommitTransport,
    tracker: VisibilityTracker,
    stats: ClientStats,
    now: () => number,
  ) {
    this.#id = id;
    this.#qp = qp;
    this.#prng = prng;
    this.#options = options;
    this.#send = send;
    this.#tracker = tracker;
    this.#stats = stats;
    this.#now = now;
  }

  async run(until: () => boolean): Promise<void> {
    await this.#qp.ready();
    while (!until()) {
      const txn = this.#id * 0x100_0000 + this.#counter++;
      const tauStart = this.#qp.applied;
      const count = this.#prng.range(1, this.#options.writesMax);
      const keys = new Set<number>();
      while (keys.size < count) keys.add(this.#prng.int(this.#options.keys));
      const writes: Write[] = [...keys].map((key) => ({
        kind: WriteKind.Update,
        key: keyBytes(key),
        image: new Uint8Array(8),
      }));
      const requestedAt = this.#now();
      const reply = await this.#commit(txn, tauStart, writes, until);
      if (reply === null) return;
      if (reply.type === MessageType.CommitReply && reply.verdict === 0) {
        const ackedAt = this.#now();
        this.#stats.acked(txn, reply.tauCommit, { tauStart, keys: [...keys] }, requestedAt);
        await this.#tracker.visible(reply.tauCommit);
        this.#stats.visible(txn, reply.tauCommit, ackedAt, requestedAt);
      } else if (reply.type === MessageType.CommitReply) {
        this.#stats.conflict();
      } else {
        this.#stats.unavailable();
        await this.#sleep(this.#options.clientTimeoutUs);
      }
    }
  }

  /** Sends until a reply comes back; resends (same txn id) after each timeout. */
  async #commit(
    txn: number,
    tauStart: number,
    writes: Write[],
    until: () => boolean,
  ): Promise<CommitReply | ErrorMessage | null> {
    const txnId = txnIdOf(txn);
    for (;;) {
      if (until()) return null;
      const request: CommitRequest = {
        type: MessageType.CommitRequest,
        requestId: this.#requestId++,
        txnId,
        tauStart,
        writes,
      };
      const reply = await new Promise<CommitReply | ErrorMessage | null>((resolve) => {
        const timer = this.#qp.host.timers.schedule(this.#options.clientTimeoutUs, () =>
          resolve(null),
        );
        this.#send(this.#qp.host, request, (r) => {
          this.#qp.host.timers.cancel(timer);
          resolve(r);
        });
      });
      if (reply !== null) return reply;
    }
  }

  #sleep(us: number): Promise<void> {
    return new Promise((resolve) => this.#qp.host.timers.schedule(us, resolve));
  }
}
