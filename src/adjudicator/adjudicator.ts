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
 *
 * The conflict table behind it is batch-shaped (conflict-table.ts): this
 * class checks limits and arguments, encodes a batch into one reused
 * `ConflictBatch`, and makes one `detect` call for the whole batch on either
 * engine (`engine: "native" | "js"`, native by default when the addon is
 * loaded). Callers on the hot path may drive a `ConflictTable` directly.
 *
 * `plantedBugs` (docs/checker.md, "Planted bugs") breaks the rule on purpose
 * so tests can show the history checker notices; it is off unless the
 * sidecar process is started with ORDO_PLANTED_BUGS.
 */
import { isWrittenKind } from "../protocol";
import type { Write } from "../protocol";
import { nativeAvailable, NativeConflictTable } from "../native";
import { ConflictBatch, ConflictVerdict } from "./conflict-batch";
import type { ConflictEngine } from "./conflict-batch";
import { conflictReason, JsConflictTable, keyString } from "./conflict-table";
import type { ConflictReason, ConflictTable, KeySet } from "./conflict-table";
import { default_write_set_limits, exceededLimit } from "./limits";
import { SchemaVersions, tableSetOf } from "./schema";
import type { TableSet } from "./schema";
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
  readonly tables: TableSet;
}

export type Decision =
  | { readonly approved: true; readonly ticket: Ticket }
  | {
      readonly approved: false;
      readonly verdict: "conflict" | "limit_exceeded" | "schema_conflict";
      readonly detail: string;
      /**
       * The tau_commit of the durable commit this transaction lost to, once
       * known (a committed write, lock or schema change); 0 for a commit still
       * in flight, a limit or a snapshot past the horizon. A retry that starts
       * after its QP applied it sees that commit.
       */
      readonly conflictTau: number;
      /** It lost to a commit still in flight (approved, not yet durable): conflictTau is 0. */
      readonly lostToInFlight: boolean;
    };

export interface AdjudicatorOptions {
  /** A table to use (its horizon is moved up to `horizonTau`); default: a new one of `engine`. */
  table?: ConflictTable;
  /** Which conflict table to build when none is given; default native when the addon is loaded. */
  engine?: ConflictEngine;
  /** Commits at or below this tau are already forgotten (e.g. not replayed at start). */
  horizonTau?: number;
  limits?: WriteSetLimits;
  /** Deliberate bugs for checker tests; never set outside them. */
  plantedBugs?: AdjudicatorPlantedBugs;
}

/** Bugs the adjudicator can be told to have (docs/checker.md, "Planted bugs"). */
export interface AdjudicatorPlantedBugs {
  /** `adjudicator-ignores-in-flight`: a conflict with an in-flight transaction approves. */
  readonly ignoresInFlight?: boolean;
  /** `adjudicator-wrong-timestamp`: conflicts are checked against tau_start + this (µs). */
  readonly snapshotSkewUs?: number;
}

/** The skew `adjudicator-wrong-timestamp` adds to tau_start: it thinks snapshots are 1 s newer. */
export const planted_snapshot_skew_us = 1_000_000;
/** Tickets of transactions approved only by a planted bug live outside the conflict table. */
const planted_ticket_id_base = 2 ** 32;

export class AdjudicatorError extends Error {
  readonly code: "unknown_ticket" | "invalid_tau" | "horizon_backwards";

  constructor(code: AdjudicatorError["code"], message: string) {
    super(message);
    this.name = "AdjudicatorError";
    this.code = code;
  }
}

/** The engine used when none is asked for: native when the addon is loaded, else the twin. */
export function defaultConflictEngine(): ConflictEngine {
  return nativeAvailable() ? "native" : "js";
}

/** A new, empty conflict table of `engine` whose history starts at `horizonTau`. */
export function createConflictTable(
  engine: ConflictEngine = defaultConflictEngine(),
  horizonTau: number = Number.MIN_SAFE_INTEGER,
): ConflictTable {
  if (engine === "native") return new NativeConflictTable(horizonTau);
  if (engine === "js") return new JsConflictTable(horizonTau);
  throw new TypeError(`engine must be "native" or "js", got ${String(engine)}`);
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

function describe(reason: ConflictReason, tauCommit: number, tauStart: number): string {
  switch (reason) {
    case "committed_write":
      return `key written by a later commit (tau_commit ${tauCommit} > tau_start ${tauStart})`;
    case "committed_shared":
      return `key locked shared by a later commit (tau_commit ${tauCommit} > tau_start ${tauStart})`;
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

function addKeys(batch: ConflictBatch, keys: KeySet): void {
  for (const key of keys.written) batch.addKey(key, false);
  for (const key of keys.shared) batch.addKey(key, true);
}

export class Adjudicator {
  readonly #table: ConflictTable;
  readonly #limits: WriteSetLimits;
  readonly #inFlight = new Map<number, Ticket>();
  readonly #schema = new SchemaVersions();
  readonly #batch = new ConflictBatch();
  readonly #settleTickets = new Uint32Array(1);
  readonly #settleTaus = new Float64Array(1);
  readonly #ignoresInFlight: boolean;
  readonly #snapshotSkewUs: number;
  /** Tickets approved only because of `ignoresInFlight`, unknown to the conflict table. */
  readonly #plantedTickets = new Set<number>();
  #plantedTicketNext = planted_ticket_id_base;

  constructor(options: AdjudicatorOptions = {}) {
    const horizonTau = options.horizonTau ?? Number.MIN_SAFE_INTEGER;
    checkTau(horizonTau, "horizon");
    this.#ignoresInFlight = options.plantedBugs?.ignoresInFlight === true;
    this.#snapshotSkewUs = options.plantedBugs?.snapshotSkewUs ?? 0;
    checkTau(this.#snapshotSkewUs, "planted snapshot skew");
    this.#limits = options.limits ?? default_write_set_limits;
    if (options.table !== undefined) {
      this.#table = options.table;
      if (horizonTau > this.#table.horizonTau) this.#table.forgetBefore(horizonTau);
    } else {
      this.#table = createConflictTable(options.engine, horizonTau);
    }
  }

  /** Which conflict table engine decides. */
  get engine(): ConflictEngine {
    return this.#table.engine;
  }

  /** Snapshots older than this cannot be checked; commits at or below it are forgotten. */
  get horizonTau(): number {
    return this.#table.horizonTau;
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
    return this.adjudicateBatch([txn])[0];
  }

  /**
   * Decides a batch in order, in one call to the conflict table: each
   * approved transaction is in flight for the ones after it.
   */
  adjudicateBatch(txns: readonly TransactionToAdjudicate[]): Decision[] {
    for (const txn of txns) checkTau(txn.tauStart, "tau_start");
    const decisions: Decision[] = new Array<Decision>(txns.length);
    const keySets: (KeySet | null)[] = new Array<KeySet | null>(txns.length).fill(null);
    const tableSets: TableSet[] = txns.map((txn) => tableSetOf(txn.writes));
    const batch = this.#batch;
    batch.clear();
    for (let i = 0; i < txns.length; i++) {
      const limit = exceededLimit(txns[i].writes, this.#limits);
      if (limit !== null) {
        decisions[i] = {
          approved: false,
          verdict: "limit_exceeded",
          detail: limit,
          conflictTau: 0,
          lostToInFlight: false,
        };
        continue;
      }
      const schemaConflict = this.#schema.check(tableSets[i], txns[i].tauStart);
      if (schemaConflict !== null) {
        decisions[i] = {
          approved: false,
          verdict: "schema_conflict",
          detail: schemaConflict.detail,
          conflictTau: schemaConflict.tau,
          lostToInFlight: schemaConflict.tau === 0,
        };
        continue;
      }
      const keys = keySetOf(txns[i].writes);
      keySets[i] = keys;
      // Planted bug `adjudicator-wrong-timestamp`: the snapshot looks newer than it is.
      batch.addTransaction(txns[i].tauStart + this.#snapshotSkewUs);
      addKeys(batch, keys);
    }
    this.#table.detect(batch);
    let at = 0;
    for (let i = 0; i < txns.length; i++) {
      const keys = keySets[i];
      if (keys === null) continue;
      const decision = this.#decision(at++, txns[i].tauStart, keys, tableSets[i]);
      decisions[i] = decision;
      if (decision.approved) this.#schema.reserve(decision.ticket.tables);
    }
    return decisions;
  }

  #decision(at: number, tauStart: number, keys: KeySet, tables: TableSet): Decision {
    const batch = this.#batch;
    const verdict = batch.verdicts[at] as ConflictVerdict;
    if (verdict === ConflictVerdict.Approved) {
      const ticket: Ticket = { id: batch.details[at], tauStart, keys, tables };
      assert(!this.#inFlight.has(ticket.id), `ticket ${ticket.id} handed out twice`);
      this.#inFlight.set(ticket.id, ticket);
      return { approved: true, ticket };
    }
    if (verdict === ConflictVerdict.TooOld) {
      return {
        approved: false,
        verdict: "conflict",
        detail: `snapshot too old: tau_start ${tauStart} is before the history horizon ${this.horizonTau}`,
        conflictTau: 0,
        lostToInFlight: false,
      };
    }
    const reason = conflictReason(verdict);
    assert(reason !== null, `unknown verdict ${verdict}`);
    if (this.#ignoresInFlight && (reason === "in_flight_write" || reason === "in_flight_shared")) {
      // Planted bug `adjudicator-ignores-in-flight`: approve despite the concurrent writer.
      // The table never saw this ticket; confirm registers its keys as committed.
      const ticket: Ticket = { id: this.#plantedTicketNext++, tauStart, keys, tables };
      this.#plantedTickets.add(ticket.id);
      this.#inFlight.set(ticket.id, ticket);
      return { approved: true, ticket };
    }
    return {
      approved: false,
      verdict: "conflict",
      detail: describe(reason, batch.conflictTaus[at], tauStart),
      conflictTau: batch.conflictTaus[at],
      lostToInFlight: reason === "in_flight_write" || reason === "in_flight_shared",
    };
  }

  /** The ticket's commit is durable at `tauCommit`: its keys move from in flight to committed. */
  confirm(ticket: Ticket, tauCommit: number): void {
    this.confirmBatch([ticket], [tauCommit]);
  }

  /** Confirms many tickets in one table call; all arguments are checked before any changes. */
  confirmBatch(tickets: readonly Ticket[], tauCommits: readonly number[]): void {
    assert(tickets.length === tauCommits.length, "one tau_commit per ticket");
    for (let i = 0; i < tickets.length; i++) {
      checkTau(tauCommits[i], "tau_commit");
      if (tauCommits[i] <= tickets[i].tauStart) {
        throw new AdjudicatorError(
          "invalid_tau",
          `tau_commit ${tauCommits[i]} must be after tau_start ${tickets[i].tauStart}`,
        );
      }
    }
    if (
      this.#snapshotSkewUs !== 0 ||
      (this.#plantedTickets.size > 0 && tickets.some((t) => this.#plantedTickets.has(t.id)))
    ) {
      for (let i = 0; i < tickets.length; i++) this.#confirmOne(tickets[i], tauCommits[i]);
      return;
    }
    const ids = this.#checkTickets(tickets);
    const taus = tickets.length === 1 ? this.#settleTaus : new Float64Array(tickets.length);
    for (let i = 0; i < tickets.length; i++) taus[i] = tauCommits[i];
    this.#table.commitBatch(ids, taus, tickets.length);
    for (let i = 0; i < tickets.length; i++) {
      this.#inFlight.delete(tickets[i].id);
      this.#schema.release(tickets[i].tables);
      this.#schema.commit(tickets[i].tables, tauCommits[i]);
    }
  }

  /** The ticket's commit will never be durable: its keys leave flight, nothing is recorded. */
  abandon(ticket: Ticket): void {
    this.abandonBatch([ticket]);
  }

  /**
   * Confirms one ticket under a planted bug, registering its keys as a
   * durable commit: a ticket the table never saw, or (wrong timestamp) one
   * whose skewed tau_start the table would find after its tau_commit, so it
   * leaves the table's flight first.
   */
  #confirmOne(ticket: Ticket, tauCommit: number): void {
    if (!this.#plantedTickets.has(ticket.id)) {
      this.#table.abortBatch(this.#checkTickets([ticket]), 1);
    } else if (this.#inFlight.get(ticket.id) !== ticket) {
      throw new AdjudicatorError("unknown_ticket", `ticket ${ticket.id} is not in flight`);
    }
    this.#plantedTickets.delete(ticket.id);
    this.#inFlight.delete(ticket.id);
    this.#schema.release(ticket.tables);
    this.#schema.commit(ticket.tables, tauCommit);
    if (tauCommit <= this.horizonTau) return;
    const batch = this.#batch;
    batch.clear();
    batch.addTransaction(tauCommit);
    addKeys(batch, ticket.keys);
    this.#table.register(batch);
  }

  /** Abandons many tickets in one table call. */
  abandonBatch(tickets: readonly Ticket[]): void {
    const planted = tickets.filter((t) => this.#plantedTickets.has(t.id));
    if (planted.length > 0) {
      for (const ticket of planted) {
        if (this.#inFlight.get(ticket.id) !== ticket) {
          throw new AdjudicatorError("unknown_ticket", `ticket ${ticket.id} is not in flight`);
        }
        this.#plantedTickets.delete(ticket.id);
        this.#inFlight.delete(ticket.id);
        this.#schema.release(ticket.tables);
      }
      tickets = tickets.filter((t) => !planted.includes(t));
      if (tickets.length === 0) return;
    }
    const ids = this.#checkTickets(tickets);
    this.#table.abortBatch(ids, tickets.length);
    for (const ticket of tickets) {
      this.#inFlight.delete(ticket.id);
      this.#schema.release(ticket.tables);
    }
  }

  /** Records a commit known to be durable (journal replay at start). */
  registerCommitted(writes: readonly Pick<Write, "kind" | "key">[], tauCommit: number): void {
    checkTau(tauCommit, "tau_commit");
    if (tauCommit <= this.horizonTau) return;
    this.#schema.commit(tableSetOf(writes), tauCommit);
    const batch = this.#batch;
    batch.clear();
    batch.addTransaction(tauCommit);
    addKeys(batch, keySetOf(writes));
    this.#table.register(batch);
  }

  /** Forgets commits at or below `horizonTau`; later snapshots older than it lose. */
  forgetBefore(horizonTau: number): void {
    checkTau(horizonTau, "horizon");
    const current = this.horizonTau;
    if (horizonTau < current) {
      throw new AdjudicatorError(
        "horizon_backwards",
        `horizon ${horizonTau} is behind the current ${current}`,
      );
    }
    this.#table.forgetBefore(horizonTau);
    this.#schema.forgetBefore(horizonTau);
  }

  /** Frees the conflict table (native memory at once); later calls throw. */
  close(): void {
    this.#table.close();
  }

  /** Ticket ids of `tickets`, each in flight and named once. */
  #checkTickets(tickets: readonly Ticket[]): Uint32Array {
    const ids = tickets.length === 1 ? this.#settleTickets : new Uint32Array(tickets.length);
    const seen = tickets.length === 1 ? null : new Set<number>();
    for (let i = 0; i < tickets.length; i++) {
      const ticket = tickets[i];
      if (this.#inFlight.get(ticket.id) !== ticket || seen?.has(ticket.id) === true) {
        throw new AdjudicatorError("unknown_ticket", `ticket ${ticket.id} is not in flight`);
      }
      seen?.add(ticket.id);
      ids[i] = ticket.id;
    }
    return ids;
  }
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`adjudicator invariant broken: ${message}`);
}
