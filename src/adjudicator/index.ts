/**
 * The adjudicator's public door: first-committer-wins conflict detection
 * under snapshot isolation (DESIGN §3, invariant 4), its batch-shaped
 * conflict table in two engines (native and the TypeScript twin), the batch
 * format, and the write-set limits.
 */
export {
  Adjudicator,
  AdjudicatorError,
  createConflictTable,
  defaultConflictEngine,
  keySetOf,
} from "./adjudicator";
export type {
  AdjudicatedWrite,
  AdjudicatorOptions,
  Decision,
  Ticket,
  TransactionToAdjudicate,
} from "./adjudicator";
export { conflictReason, JsConflictTable, keyString } from "./conflict-table";
export type { ConflictReason, ConflictTable, KeySet } from "./conflict-table";
export {
  checkBatch,
  ConflictBatch,
  ConflictVerdict,
  conflict_batch_header_words,
  conflict_batch_index_words_max,
  conflict_batch_key_bytes_max,
  conflict_batch_magic,
  conflict_batch_txns_max,
  conflict_key_bytes_max,
  conflict_key_shared_bit,
  conflict_tickets_max,
} from "./conflict-batch";
export type { ConflictEngine } from "./conflict-batch";
export { NativeConflictTable } from "../native";
export {
  default_write_set_limits,
  exceededLimit,
  write_set_bytes_max,
  write_set_rows_max,
} from "./limits";
export type { WriteSetLimits } from "./limits";
export { SchemaVersions, tableOfKey, tableSetOf } from "./schema";
export type { TableSet } from "./schema";
