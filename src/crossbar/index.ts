/**
 * The crossbar's public door: the k-way merge by (tau_commit, journal id) up
 * to the global watermark, key-range routing into bounded subscriber buffers
 * (merge.ts, two engines behind one class), and the batch and entry formats
 * (format.ts, specified in docs/crossbar.md).
 */
export {
  CrossbarMerge,
  JsMergeEngine,
  NativeMergeEngine,
  type CrossbarMergeOptions,
  type EngineKind,
  type MergeEngine,
  type OverflowReport,
} from "./merge";
export {
  compareKeys,
  CrossbarError,
  crossbar_batch_bytes_max,
  crossbar_entry_header_bytes,
  crossbar_journals_max,
  crossbar_key_bytes_max,
  crossbar_payload_bytes_max,
  crossbar_subscribers_max,
  crossbar_tau_max,
  crossbar_watermark_none,
  decodeEntries,
  emptyReleaseSummary,
  emptySubscriberState,
  encodeBatch,
  encodeConfig,
  rangeContains,
  type CrossbarEntry,
  type CrossbarErrorCode,
  type CrossbarRecord,
  type CrossbarWrite,
  type KeyRange,
  type ReleaseSummary,
  type SubscriberConfig,
  type SubscriberState,
} from "./format";
export {
  CrossbarService,
  CrossbarServiceError,
  subscription_buffer_bytes_default,
  type CrossbarServiceOptions,
  type DurableEntry,
  type JournalReader,
  type SubscriberSink,
  type SubscriptionMode,
  type SubscriptionOptions,
} from "./service";
