/**
 * The journal's public door: a durable, append-only, group-committed log of
 * whole approved commits in tau_commit order (DESIGN §2–§4). Everything else
 * in this folder is internal. The real `Disk` adapter is `FsDisk` in
 * `src/io/fs-disk.ts`.
 */
export {
  Journal,
  journal_batch_bytes_default,
  journal_preallocate_bytes_default,
  journal_segment_bytes_default,
  type JournalAppend,
  type JournalEntry,
  type JournalOptions,
  type JournalRecovery,
  type Placed,
} from "./journal";
export { JournalError, type JournalErrorCode } from "./errors";
export type { Disk, DiskFile, DiskOpenMode } from "./disk";
export { record_body_bytes_max } from "./record";
export {
  WatermarkBound,
  watermark_bound_file_name,
  watermark_bound_slot_bytes,
} from "./watermark-bound";
export {
  JournalSet,
  journals_max,
  mergeJournals,
  watermark_bound_ahead_us_default,
  type JournalSetListener,
  type JournalSetOptions,
  type JournalSetRecovery,
  type MergedEntry,
} from "./journal-set";
