/**
 * What a client may conclude about a transaction from the way it ended: the
 * outcome mapping of the fault campaign. Getting this wrong makes the
 * checker lie — a transaction called `fail` that did commit shows up as an
 * aborted read (G1a), one called `ok` that did not shows up as a lost
 * acknowledged append — so it is a pure function with its own tests.
 *
 * ordo commits only at COMMIT (the extension sends the write set at
 * PRE_COMMIT), so any error before COMMIT means nothing was committed. At
 * COMMIT, the SQLSTATEs of docs/protocol.md that promise "nothing committed"
 * are failures; 40003, a lost connection, a timeout or anything unexpected
 * leave the outcome unknown (`info`), which is always safe to claim.
 */

export type TxnPhase = "statements" | "commit";
export type TxnOutcome = "ok" | "fail" | "info";

/** SQLSTATEs at COMMIT after which nothing was committed (ordo's contract). */
export const commit_fail_sqlstates: ReadonlySet<string> = new Set([
  "40001", // serialization failure: adjudicator conflict, or PostgreSQL's own
  "40P01", // deadlock detected
  "0A000", // table without a primary key written
  "54000", // transaction over a limit
  "08006", // commit service unavailable before the commit was sent
]);

/** SQLSTATE for "commit outcome unknown". */
export const sqlstate_outcome_unknown = "40003";

/** The SQLSTATE of a node-postgres error, or null for a connection or timeout error. */
export function sqlStateOf(err: unknown): string | null {
  if (typeof err !== "object" || err === null) return null;
  const code = (err as { code?: unknown }).code;
  // Node's own errors (ECONNRESET, ...) also carry `code`; SQLSTATEs are five characters.
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  return null;
}

/** The outcome of a transaction that threw `err` during `phase`. */
export function outcomeOfError(phase: TxnPhase, err: unknown): "fail" | "info" {
  if (phase === "statements") return "fail";
  const state = sqlStateOf(err);
  if (state !== null && commit_fail_sqlstates.has(state)) return "fail";
  return "info";
}

/**
 * The outcome of a COMMIT that returned: PostgreSQL answers COMMIT of an
 * aborted transaction with the tag ROLLBACK and no error.
 */
export function outcomeOfCommitTag(command: string | null | undefined): "ok" | "fail" {
  return command === "ROLLBACK" ? "fail" : "ok";
}
