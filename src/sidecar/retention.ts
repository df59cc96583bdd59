/**
 * Journal retention: removes the journal segments nobody can need any more
 * (docs/journal.md, "Retention"). A record stays while
 *
 * - a restarted sidecar would replay it into the adjudicator: its tau is
 *   above the history horizon (`keepUs` below the clock, sidecar.ts);
 * - a QP could need it to catch up: its tau is above `keepUs` below the
 *   highest tau that QP reported applied. Every QP that ever subscribed
 *   counts, connected or not, and what each reported is saved (`store`), so
 *   a sidecar restarted while a QP is down keeps what that QP needs. A QP's
 *   durable progress (its replication origin, written with
 *   `synchronous_commit = off`) trails what it reported by a few WAL-writer
 *   rounds, far under `keepUs`;
 * - a connected subscription has not been sent it yet (a catch-up reads it).
 *
 * A QP that never comes back holds every record after its last report, as an
 * abandoned replication slot holds PostgreSQL's WAL.
 *
 * A `keepUs` below the history horizon's window is safe but costs: a
 * restarted sidecar starts its adjudicator's horizon at what was removed and
 * refuses older transactions. The sidecar (start.ts) keeps it at the window
 * or above; the simulator, whose runs last a second, runs it shorter.
 *
 * Sans-I/O: the clock, timers and the progress store are passed in.
 */
import type { Clock, TimerHandle, Timers } from "../clock";
import type { JournalSet } from "../journal";
import type { Logger } from "./log";
import { horizon_margin_us, max_transaction_age_us } from "./sidecar";

export const retention_interval_us_default = 10_000_000;
/** The history horizon's window: what the adjudicator replays at start. */
export const retention_keep_us_default = max_transaction_age_us + horizon_margin_us;

/** Where the QPs' reported progress is kept across restarts. */
export interface QpProgressStore {
  /** Makes `progress` (QP system identifier → highest tau applied) durable. */
  save(progress: ReadonlyMap<bigint, number>): Promise<void>;
}

export interface RetentionOptions {
  journals: JournalSet;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  store: QpProgressStore;
  /** What `store` held at start. */
  saved: ReadonlyMap<bigint, number>;
  /** The QPs known now and the highest tau each applied (Replication.qpApplied). */
  qpApplied: () => ReadonlyMap<bigint, number>;
  /** The lowest tau every subscription was sent, undefined with none (CrossbarService.lowestSentTau). */
  lowestSentTau: () => number | undefined;
  /** How often a pass runs (µs). Default 10 s. */
  intervalUs?: number;
  /** How far below the clock and each QP's progress records stay (µs). Default: the horizon's window. */
  keepUs?: number;
}

export interface RetentionPass {
  /** Records at or below it may go; 0 when none may. */
  cutoffTau: number;
  segments: number;
  bytes: number;
}

export class RetentionError extends Error {
  readonly code = "invalid_option";
  constructor(message: string) {
    super(message);
    this.name = "RetentionError";
  }
}

export class Retention {
  readonly #options: RetentionOptions;
  readonly #intervalUs: number;
  readonly #keepUs: number;
  readonly #progress = new Map<bigint, number>();
  #timer: TimerHandle | null = null;
  #running: Promise<RetentionPass> | null = null;
  #stopped = false;
  #saving: Promise<void> = Promise.resolve();
  /** `progress` moved since it was last saved. */
  #unsaved = false;

  constructor(options: RetentionOptions) {
    this.#options = options;
    this.#intervalUs = options.intervalUs ?? retention_interval_us_default;
    this.#keepUs = options.keepUs ?? retention_keep_us_default;
    if (!Number.isSafeInteger(this.#intervalUs) || this.#intervalUs < 1) {
      throw new RetentionError(`intervalUs must be a positive integer, got ${this.#intervalUs}`);
    }
    if (!Number.isSafeInteger(this.#keepUs) || this.#keepUs < 1) {
      throw new RetentionError(`keepUs must be a positive integer, got ${this.#keepUs}`);
    }
    for (const [qp, tau] of options.saved) this.#progress.set(qp, tau);
  }

  /** Every QP's progress as known (saved, then reported). */
  get progress(): ReadonlyMap<bigint, number> {
    return this.#progress;
  }

  /** Runs a pass every `intervalUs`. */
  start(): void {
    if (this.#stopped || this.#timer !== null) return;
    const tick = (): void => {
      this.#timer = null;
      void this.pass()
        .catch((error: unknown) => this.#options.logger.log("error", "retention_failed", { error }))
        .finally(() => {
          if (!this.#stopped) this.#timer = this.#options.timers.schedule(this.#intervalUs, tick);
        });
    };
    this.#timer = this.#options.timers.schedule(this.#intervalUs, tick);
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) this.#options.timers.cancel(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
  }

  /** One pass: saves the QPs' progress, then removes what nobody needs. One at a time. */
  pass(): Promise<RetentionPass> {
    if (this.#running === null) {
      this.#running = this.#pass().finally(() => (this.#running = null));
    }
    return this.#running;
  }

  /**
   * Saves what the QPs reported since the last save (the sidecar does it as
   * it stops, so the file is current after a clean shutdown).
   */
  saveProgress(): Promise<void> {
    return this.#saveProgress();
  }

  /** One save at a time: each waits for the one before. */
  #saveProgress(): Promise<void> {
    const next = this.#saving.catch(() => undefined).then(() => this.#saveOnce());
    this.#saving = next;
    return next;
  }

  async #saveOnce(): Promise<void> {
    for (const [qp, tau] of this.#options.qpApplied()) {
      if (tau > (this.#progress.get(qp) ?? -1)) {
        this.#progress.set(qp, tau);
        this.#unsaved = true;
      }
    }
    if (!this.#unsaved) return;
    this.#unsaved = false;
    await this.#options.store.save(this.#progress).catch((error: unknown) => {
      this.#unsaved = true;
      throw error;
    });
  }

  async #pass(): Promise<RetentionPass> {
    const { journals, clock, logger } = this.#options;
    // Saved before anything is removed on its account.
    await this.#saveProgress();
    let cutoff = clock.nowMicros() - this.#keepUs;
    for (const tau of this.#progress.values()) cutoff = Math.min(cutoff, tau - this.#keepUs);
    const sent = this.#options.lowestSentTau();
    // A catch-up reads from one below what it was sent (CrossbarService).
    if (sent !== undefined) cutoff = Math.min(cutoff, sent - 1);
    if (cutoff <= 0) return { cutoffTau: 0, segments: 0, bytes: 0 };
    const removed = await journals.removeThrough(cutoff);
    let segments = 0;
    let bytes = 0;
    for (const r of removed) {
      segments += r.segments;
      bytes += r.bytes;
    }
    if (segments > 0) {
      logger.log("info", "journal_segments_removed", {
        throughTau: cutoff,
        segments,
        bytes,
        journals: removed.filter((r) => r.segments > 0),
      });
    }
    return { cutoffTau: cutoff, segments, bytes };
  }
}
