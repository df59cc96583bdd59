/**
 * The adjudicator's public door: first-committer-wins conflict detection
 * under snapshot isolation (DESIGN §3, invariant 4), its swappable conflict
 * table, and the write-set limits.
 */
export { Adjudicator, AdjudicatorError, keySetOf } from "./adjudicator";
export type {
  AdjudicatedWrite,
  AdjudicatorOptions,
  Decision,
  Ticket,
  TransactionToAdjudicate,
} from "./adjudicator";
export { JsConflictTable, keyString } from "./conflict-table";
export type { ConflictReason, ConflictTable, KeyConflict, KeySet } from "./conflict-table";
export {
  default_write_set_limits,
  exceededLimit,
  write_set_bytes_max,
  write_set_rows_max,
} from "./limits";
export type { WriteSetLimits } from "./limits";
