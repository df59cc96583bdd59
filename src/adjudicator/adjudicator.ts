/**
 * Conflict detection under snapshot isolation, first committer wins
 * (DESIGN §3, invariant 4). Sans-I/O: it neither reads a clock nor touches a
 * disk; the sidecar feeds it requests, durable commit times and a history
 * horizon.
 *
 * A transaction T(S = tau_start, keys) is approved only if no committed or
 * in-flight transaction wrote one of T's keys after S; written keys also lose
 * to shared locks (kind 6) of others after S or in flight, while shared locks
 * never conflict with each other. In-flight transactions count as "after S"
 * because their tau_commit is assigned later, so a second concurrent writer
 * of a key loses even before the first one is durable.
 *
 * Lifecycle of an approved transaction: `adjudicate` → ticket (keys in
 * flight) → `confirm(ticket, tauCommit)` once the journal made it durable, or
 * `abandon(ticket)` if it never will be. History below `horizonTau` is
 * forgotten; a snapshot older than the horizon cannot be checked and loses.
 */
import { isWrittenKind } from "../protocol";
import type { Write } from "../protocol";
import { JsConflictTable, keyString } from "./conflict-table";
import type { ConflictTable, KeyConflict, KeySet } from "./conflict-table";
import { default_write_set_limits, exceededLimit } from "./limits";
import type { WriteSetLimits } from "./limits";

export type AdjudicatedWrite = Pick<Write, "kind" | "key" | "image">;

export interface TransactionToAdjudicate {
  tauStart: number;
  writes: readonly AdjudicatedWrite[];
}

/** An approved transaction whose keys are in flight until confirmed or abandoned. */
export interface Ticket {
  readonly id: number;
  readonly tauStart: number;
  readonly keys: KeySet;
}

export type Decision =
  | { readonly approved: true; readonly ticket: Ticket }
  | {
      readonly approved: false;
      readonly verdict: "conflict" | "limit_exceeded";
      readonly detail: string;
    };

export interface AdjudicatorOptions {
  table?: ConflictTable;
  /** Commits at or below this tau are already forgotten (e.g. not replayed at start). */
  horizonTau?: number;
  limits?: WriteSetLimits;
}

export class AdjudicatorError extends Error {
  readonly code: "unknown_ticket" | "invalid_tau" | "horizon_backwards";

  constructor(code: AdjudicatorError["code"], message: string) {
    super(message);
    this.name = "AdjudicatorError";
    this.code = code;
  }
}

/** Splits writes into distinct written and shared keys; a key written and shared counts as written. */
export function keySetOf(writes: readonly Pick<Write, "kind" | "key">[]): KeySet {
  const written = new Map<string, Uint8Array>();
  const shared = new Map<string, Uint8Array>();
  for (const write of writes) {
    const name = keyString(write.key);
    if (isWrittenKind(write.kind)) {
      written.set(name, write.key);
      shared.delete(name);
    } else if (!written.has(name)) {
      shared.set(name, write.key);
    }
  }
  return { written: [...written.values()], shared: [...shared.values()] };
}

function describe(conflict: KeyConflict, tauStart: number): string {
  switch (conflict.reason) {
    case "committed_write":
      return `key written by a later commit (tau_commit ${conflict.tauCommit} > tau_start ${tauStart})`;
    case "committed_shared":
      return `key locked shared by a later commit (tau_commit ${conflict.tauCommit} > tau_start ${tauStart})`;
    case "in_flight_write":
      return "key written by a concurrent transaction that is committing";
    case "in_flight_shared":
      return "key locked shared by a concurrent transaction that is committing";
  }
}

function checkTau(tau: number, what: string): void {
  if (!Number.isSafeInteger(tau)) {
    throw new AdjudicatorError("invalid_tau", `${what} ${tau} is not a safe integer`);
  }
}

export class Adjudicator {
  readonly #table: ConflictTable;
  readonly #limits: WriteSetLimits;
  readonly #inFlight = new Map<number, Ticket>();
  #horizonTau: number;
  #nextTicket = 1;

  constructor(options: AdjudicatorOptions = {}) {
    this.#table = options.table ?? new JsConflictTable();
    this.#limits = options.limits ?? default_write_set_limits;
    this.#horizonTau = options.horizonTau ?? Number.MIN_SAFE_INTEGER;
    checkTau(this.#horizonTau, "horizon");
  }

  /** Snapshots older than this cannot be checked; commits at or below it are forgotten. */
  get horizonTau(): number {
    return this.#horizonTau;
  }

  /** Approved transactions not yet confirmed or abandoned. */
  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  get keyCount(): number {
    return this.#table.keyCount;
  }

  /** Decides one transaction; an approved one holds its keys in flight. */
  adjudicate(txn: TransactionToAdjudicate): Decision {
    checkTau(txn.tauStart, "tau_start");
    const limit = exceededLimit(txn.writes, this.#limits);
    if (limit !== null) return { approved: false, verdict: "limit_exceeded", detail: limit };
    if (txn.tauStart < this.#horizonTau) {
      return {
        approved: false,
        verdict: "conflict",
        detail: `snapshot too old: tau_start ${txn.tauStart} is before the history horizon ${this.#horizonTau}`,
      };
    }
    const keys = keySetOf(txn.writes);
    const conflict = this.#table.findConflict(keys, txn.tauStart);
    if (conflict !== null) {
      return { approved: false, verdict: "conflict", detail: describe(conflict, txn.tauStart) };
    }
    this.#table.reserve(keys);
    const ticket: Ticket = { id: this.#nextTicket++, tauStart: txn.tauStart, keys };
    this.#inFlight.set(ticket.id, ticket);
    return { approved: true, ticket };
  }

  /** Decides a batch in order: each approved transaction is in flight for the ones after it. */
  adjudicateBatch(txns: readonly TransactionToAdjudicate[]): Decision[] {
    return txns.map((txn) => this.adjudicate(txn));
  }

  /** The ticket's commit is durable at `tauCommit`: its keys move from in flight to committed. */
  confirm(ticket: Ticket, tauCommit: number): void {
    checkTau(tauCommit, "tau_commit");
    if (tauCommit <= ticket.tauStart) {
      throw new AdjudicatorError(
        "invalid_tau",
        `tau_commit ${tauCommit} must be after tau_start ${ticket.tauStart}`,
      );
    }
    this.#take(ticket);
    this.#table.release(ticket.keys);
    this.#table.commit(ticket.keys, tauCommit);
  }

  /** The ticket's commit will never be durable: its keys leave flight, nothing is recorded. */
  abandon(ticket: Ticket): void {
    this.#take(ticket);
    this.#table.release(ticket.keys);
  }

  /** Records a commit known to be durable (journal replay at start). */
  registerCommitted(writes: readonly Pick<Write, "kind" | "key">[], tauCommit: number): void {
    checkTau(tauCommit, "tau_commit");
    if (tauCommit <= this.#horizonTau) return;
    this.#table.commit(keySetOf(writes), tauCommit);
  }

  /** Forgets commits at or below `horizonTau`; later snapshots older than it lose. */
  forgetBefore(horizonTau: number): void {
    checkTau(horizonTau, "horizon");
    if (horizonTau < this.#horizonTau) {
      throw new AdjudicatorError(
        "horizon_backwards",
        `horizon ${horizonTau} is behind the current ${this.#horizonTau}`,
      );
    }
    this.#horizonTau = horizonTau;
    this.#table.forgetBefore(horizonTau);
  }

  #take(ticket: Ticket): void {
    if (this.#inFlight.get(ticket.id) !== ticket) {
      throw new AdjudicatorError("unknown_ticket", `ticket ${ticket.id} is not in flight`);
    }
    this.#inFlight.delete(ticket.id);
  }
}
