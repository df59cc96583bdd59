/**
 * The sidecar's sans-I/O core: takes decoded messages and produces replies.
 * A commit goes decode → limits → adjudicate → journal.append(body) →
 * confirm → reply `committed` with tau_commit. The journal, clock and timers
 * are injected, so the simulator can run this class unchanged.
 *
 * Invariant 1 (DESIGN §3): `committed` is only ever built from the value an
 * `append` resolved with, and `append` resolves only after the fsync that
 * covers the entry. A journal failure is fatal: every waiting request gets
 * ERROR `unavailable` (its outcome is unknown to the client), new requests
 * are refused, and `onFatal` tells the process to exit; recovery is restart
 * and replay.
 *
 * A transaction id seen again (a resend) gets the outcome of its first
 * submission instead of a conflict with itself, so a retried commit that is
 * durable is never reported as failed (invariant 7).
 *
 * Requests that arrive in the same event-loop turn are adjudicated together:
 * `commit` queues the request and the first one of the turn schedules one
 * flush (a microtask), which makes a single `adjudicateBatch` call — one
 * crossing into the native conflict table for the whole batch. Order is
 * arrival order, so an earlier approved request is in flight for later ones.
 */
import { buggify_off, type Buggify } from "../buggify";
import type { Clock, TimerHandle, Timers } from "../clock";
import { AdjudicatorError } from "../adjudicator";
import type { Adjudicator, Decision, Ticket } from "../adjudicator";
import { decodeCommitBody, encodeCommitBody, ErrorCode, MessageType, Verdict } from "../protocol";
import type { CommitReply, CommitRequest, ErrorMessage, Ping, Pong } from "../protocol";
import type { Logger } from "./log";

/** Longest a transaction may run; older snapshots are no longer checked. */
/** How each kind of refusal reaches the QP (docs/protocol.md, COMMIT_REPLY). */
const verdict_of_decision = {
  conflict: Verdict.Conflict,
  limit_exceeded: Verdict.LimitExceeded,
  schema_conflict: Verdict.SchemaConflict,
} as const;

export const max_transaction_age_us = 300_000_000;
/** Extra history kept past the longest transaction, for clock steps between hosts. */
export const horizon_margin_us = 10_000_000;
/** How often the history horizon moves forward. */
export const horizon_interval_us = 1_000_000;

/** What the sidecar needs of a journal (src/journal's `Journal` and `JournalSet` have it). */
export interface CommitJournal {
  /**
   * Resolves only after the entry is durable, with its tau_commit and the tau
   * just before it (no commit between them), which COMMIT_REPLY passes on as
   * prev_tau; a journal that cannot tell gives 0 (unknown).
   */
  appendPlaced(entry: {
    txnId: Uint8Array;
    tauStart: number;
    body: Uint8Array;
  }): Promise<{ tau: number; prevTau: number }>;
}

/** A journal entry read back at start. */
export interface RecoveredEntry {
  tauCommit: number;
  txnId: Uint8Array;
  tauStart: number;
  body: Uint8Array;
}

export interface SidecarOptions {
  journal: CommitJournal;
  adjudicator: Adjudicator;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  /** Called once when the journal failed; the process should exit non-zero. */
  onFatal: (error: unknown) => void;
  /** Simulation-only fault points (src/buggify). Default off. */
  buggify?: Buggify;
}

export type SidecarState = "running" | "stopping" | "stopped" | "failed";

/** A request waiting for the turn's batch; null: the sidecar failed before it was decided. */
interface QueuedRequest {
  readonly request: CommitRequest;
  readonly txn: string;
  readonly resolve: (decision: Decision | null) => void;
}

type Outcome =
  | { readonly kind: "committed"; readonly tauCommit: number; readonly prevTau: number }
  | { readonly kind: "error"; readonly code: ErrorCode; readonly message: string };

export class SidecarError extends Error {
  readonly code: "invariant" | "corrupt_entry";

  constructor(code: SidecarError["code"], message: string) {
    super(message);
    this.name = "SidecarError";
    this.code = code;
  }
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new SidecarError("invariant", message);
}

/** How long "sidecar.batch-delayed" holds a batch open. */
const buggify_batch_delay_us = 1_000;

/** The horizon for a given time: commits at or below it can no longer conflict with a live snapshot. */
export function horizonAt(nowMicros: number): number {
  return nowMicros - max_transaction_age_us - horizon_margin_us;
}

/**
 * The horizon a (re)starting sidecar's adjudicator begins at: the history
 * window below the clock, never below what retention removed (retention
 * keeps what the window needs, so only a clock that went back puts the
 * window below it, and then what was removed is the horizon).
 */
export function startHorizon(nowMicros: number, removedThroughTau: number): number {
  return Math.max(horizonAt(nowMicros), removedThroughTau);
}

function txnKey(txnId: Uint8Array): string {
  return Buffer.from(txnId.buffer, txnId.byteOffset, txnId.byteLength).toString("hex");
}

function isNonFatalJournalError(error: unknown): boolean {
  // An argument the journal refused was never written: that request fails alone.
  return (error as { code?: unknown } | null)?.code === "invalid_argument";
}

export class Sidecar {
  readonly #journal: CommitJournal;
  readonly #adjudicator: Adjudicator;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #logger: Logger;
  readonly #onFatal: (error: unknown) => void;
  readonly #buggify: Buggify;
  /** Durable commits within the horizon, by transaction id. */
  readonly #committed = new Map<string, number>();
  /** Commits on their way to the journal, by transaction id. */
  readonly #pending = new Map<string, Promise<Outcome>>();
  readonly #failed: Promise<Outcome>;
  #resolveFailed: (outcome: Outcome) => void = () => undefined;
  #state: SidecarState = "running";
  #horizonTimer: TimerHandle | null = null;
  #commits = 0;
  /** Requests of this turn, adjudicated together by the scheduled flush. */
  #queue: QueuedRequest[] = [];
  /** Transaction ids in the queue, so a resend in the same turn waits for the first. */
  readonly #queued = new Map<string, Promise<Decision | null>>();
  #flushing: Promise<void> | null = null;

  constructor(options: SidecarOptions) {
    this.#journal = options.journal;
    this.#adjudicator = options.adjudicator;
    this.#clock = options.clock;
    this.#timers = options.timers;
    this.#logger = options.logger;
    this.#onFatal = options.onFatal;
    this.#buggify = options.buggify ?? buggify_off;
    this.#failed = new Promise<Outcome>((resolve) => {
      this.#resolveFailed = resolve;
    });
  }

  get state(): SidecarState {
    return this.#state;
  }

  /** Commits appended but not yet settled. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Commits acknowledged since start. */
  get commitCount(): number {
    return this.#commits;
  }

  /** Replays durable entries newer than the adjudicator's horizon; returns how many. */
  async recover(entries: AsyncIterable<RecoveredEntry>): Promise<number> {
    assert(this.#pending.size === 0, "recover must run before any commit");
    let count = 0;
    for await (const entry of entries) {
      let body;
      try {
        body = decodeCommitBody(entry.body);
      } catch (error) {
        throw new SidecarError(
          "corrupt_entry",
          `journal entry at tau ${entry.tauCommit} does not decode: ${(error as Error).message}`,
        );
      }
      this.#adjudicator.registerCommitted(body.writes, entry.tauCommit);
      this.#committed.set(txnKey(entry.txnId), entry.tauCommit);
      count += 1;
    }
    return count;
  }

  /** Arms the timer that moves the history horizon forward. */
  start(): void {
    assert(this.#horizonTimer === null, "sidecar started twice");
    this.advanceHorizon();
    this.#armHorizon();
  }

  /** Forgets history older than the longest transaction (plus a margin). */
  advanceHorizon(): void {
    const horizon = horizonAt(this.#clock.nowMicros());
    if (horizon <= this.#adjudicator.horizonTau) return;
    this.#adjudicator.forgetBefore(horizon);
    for (const [txn, tau] of this.#committed) {
      if (tau > horizon) break;
      this.#committed.delete(txn);
    }
  }

  ping(message: Ping): Pong {
    return { type: MessageType.Pong, nonce: message.nonce };
  }

  /** Decides one commit; resolves with the reply to send (never rejects). */
  async commit(request: CommitRequest): Promise<CommitReply | ErrorMessage> {
    if (this.#state !== "running") {
      return this.#errorReply(
        request,
        ErrorCode.Unavailable,
        `sidecar is ${this.#state}; nothing was committed`,
      );
    }
    const txn = txnKey(request.txnId);
    const durable = this.#committed.get(txn);
    if (durable !== undefined) return this.#committedReply(request, durable, 0); // a retry
    const inFlight = this.#pending.get(txn);
    if (inFlight !== undefined) return this.#reply(request, await inFlight);
    const queued = this.#queued.get(txn);
    if (queued !== undefined) {
      await queued;
      return this.commit(request);
    }

    if (!Number.isSafeInteger(request.tauStart)) {
      // Refused alone, as the adjudicator would; the batch never sees it.
      throw new AdjudicatorError(
        "invalid_tau",
        `tau_start ${request.tauStart} is not a safe integer`,
      );
    }
    const decision = await this.#enqueue(request, txn);
    if (decision === null) {
      return this.#errorReply(
        request,
        ErrorCode.Unavailable,
        "journal failed; commit outcome unknown",
      );
    }
    if (!decision.approved) {
      const verdict = verdict_of_decision[decision.verdict];
      // The commit it lost to: the QP's retry waits until it applied it (docs/protocol.md).
      // One still in flight has no tau yet: the reply waits until it is durable.
      const conflictTau = decision.lostToInFlight
        ? await this.#inFlightTau()
        : decision.conflictTau;
      return {
        type: MessageType.CommitReply,
        requestId: request.requestId,
        verdict,
        flags: 0,
        tauCommit: conflictTau,
        prevTau: 0,
        detail: decision.detail,
      };
    }
    const outcome = this.#pending.get(txn);
    assert(outcome !== undefined, "an approved commit is pending from its flush on");
    try {
      return this.#reply(request, await outcome);
    } finally {
      this.#pending.delete(txn);
    }
  }

  /**
   * Once every commit in flight now has settled: the newest tau_commit among
   * them (0: none committed). A commit in flight now is at or below it.
   */
  async #inFlightTau(): Promise<number> {
    let newest = 0;
    for (const outcome of await Promise.all([...this.#pending.values()])) {
      if (outcome.kind === "committed" && outcome.tauCommit > newest) newest = outcome.tauCommit;
    }
    return newest;
  }

  /** Refuses new commits and resolves once every pending commit has settled. */
  async stop(): Promise<void> {
    if (this.#state === "running") this.#state = "stopping";
    this.#disarmHorizon();
    if (this.#flushing !== null) await this.#flushing;
    await Promise.allSettled([...this.#pending.values()]);
    if (this.#state === "stopping") this.#state = "stopped";
  }

  #enqueue(request: CommitRequest, txn: string): Promise<Decision | null> {
    const decided = new Promise<Decision | null>((resolve) => {
      this.#queue.push({ request, txn, resolve });
    });
    this.#queued.set(txn, decided);
    this.#flushing ??= this.#buggify.fires("sidecar.batch-delayed")
      ? this.#delayedFlush()
      : this.#nextFlush();
    return decided;
  }

  /** The batch of this turn's requests, adjudicated once the turn's synchronous work is done. */
  #nextFlush(): Promise<void> {
    return Promise.resolve().then(() => {
      this.#flushing = null;
      this.#flush();
    });
  }

  /** The batch waits a while, as behind a busy event loop, so that later requests join it. */
  #delayedFlush(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#timers.schedule(buggify_batch_delay_us, () => {
        this.#flushing = null;
        this.#flush();
        resolve();
      });
    });
  }

  /** Adjudicates the turn's requests in one batch; approved ones start their append. */
  #flush(): void {
    let items = this.#queue;
    this.#queue = [];
    if (items.length > 1 && this.#buggify.fires("sidecar.batch-split")) {
      // Only the first now; the rest form the next batch, a turn later.
      this.#queue = items.slice(1);
      items = items.slice(0, 1);
      this.#flushing = this.#nextFlush();
    }
    for (const item of items) this.#queued.delete(item.txn);
    if (this.#state === "failed") {
      for (const item of items) item.resolve(null);
      return;
    }
    let decisions: Decision[];
    try {
      decisions = this.#adjudicator.adjudicateBatch(items.map((item) => item.request));
    } catch (error) {
      // The adjudicator refused its own input: a bug. Stop like a failed journal.
      this.#fail(error);
      for (const item of items) item.resolve(null);
      return;
    }
    for (let i = 0; i < items.length; i++) {
      const decision = decisions[i];
      if (decision.approved) {
        const { request, txn } = items[i];
        this.#pending.set(
          txn,
          Promise.race([this.#append(request, decision.ticket), this.#failed]),
        );
      }
      items[i].resolve(decision);
    }
  }

  async #append(request: CommitRequest, ticket: Ticket): Promise<Outcome> {
    let tauCommit: number;
    let prevTau: number;
    try {
      ({ tau: tauCommit, prevTau } = await this.#journal.appendPlaced({
        txnId: request.txnId,
        tauStart: request.tauStart,
        body: encodeCommitBody(request),
      }));
    } catch (error) {
      this.#adjudicator.abandon(ticket);
      if (isNonFatalJournalError(error)) {
        this.#logger.log("warn", "append_refused", { error });
        return {
          kind: "error",
          code: ErrorCode.Internal,
          message: `journal refused the commit: ${(error as Error).message}`,
        };
      }
      this.#fail(error);
      return {
        kind: "error",
        code: ErrorCode.Unavailable,
        message: "journal failed; commit outcome unknown",
      };
    }
    // The append resolved: the entry is durable. Only now may `committed` leave.
    try {
      assert(Number.isSafeInteger(tauCommit), `journal returned tau_commit ${tauCommit}`);
      assert(
        tauCommit > request.tauStart,
        `tau_commit ${tauCommit} is not after tau_start ${request.tauStart}`,
      );
      assert(
        Number.isSafeInteger(prevTau) && prevTau >= 0 && prevTau < tauCommit,
        `prev_tau ${prevTau} is not below tau_commit ${tauCommit}`,
      );
    } catch (error) {
      // A broken invariant is a bug: stop like a failed journal; a restart replays the journal.
      this.#fail(error);
      return {
        kind: "error",
        code: ErrorCode.Unavailable,
        message: "internal invariant failed; commit outcome unknown",
      };
    }
    this.#adjudicator.confirm(ticket, tauCommit);
    this.#committed.set(txnKey(request.txnId), tauCommit);
    this.#commits += 1;
    return { kind: "committed", tauCommit, prevTau };
  }

  #fail(error: unknown): void {
    if (this.#state === "failed") return;
    this.#state = "failed";
    this.#disarmHorizon();
    this.#logger.log("error", "sidecar_failed", { error });
    this.#resolveFailed({
      kind: "error",
      code: ErrorCode.Unavailable,
      message: "journal failed; commit outcome unknown",
    });
    this.#onFatal(error);
  }

  #reply(request: CommitRequest, outcome: Outcome): CommitReply | ErrorMessage {
    if (outcome.kind === "committed") {
      return this.#committedReply(request, outcome.tauCommit, outcome.prevTau);
    }
    return this.#errorReply(request, outcome.code, outcome.message);
  }

  #committedReply(request: CommitRequest, tauCommit: number, prevTau: number): CommitReply {
    assert(
      this.#committed.get(txnKey(request.txnId)) === tauCommit,
      "a committed reply needs a tau_commit that the journal made durable",
    );
    return {
      type: MessageType.CommitReply,
      requestId: request.requestId,
      verdict: Verdict.Committed,
      flags: 0,
      tauCommit,
      prevTau,
      detail: "",
    };
  }

  #errorReply(request: CommitRequest, code: ErrorCode, message: string): ErrorMessage {
    return { type: MessageType.Error, code, requestId: request.requestId, message };
  }

  #armHorizon(): void {
    this.#horizonTimer = this.#timers.schedule(horizon_interval_us, () => {
      this.#horizonTimer = null;
      if (this.#state !== "running") return;
      this.advanceHorizon();
      this.#armHorizon();
    });
  }

  #disarmHorizon(): void {
    if (this.#horizonTimer !== null) {
      this.#timers.cancel(this.#horizonTimer);
      this.#horizonTimer = null;
    }
  }
}
