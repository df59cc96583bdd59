/**
 * The sidecar's public door: the sans-I/O commit pipeline (`Sidecar`), its
 * Unix-socket server, and `startSidecar`, which wires both to a real journal.
 * The process entry is `main.ts` (docs/sidecar.md).
 */
export {
  Sidecar,
  SidecarError,
  horizonAt,
  horizon_interval_us,
  horizon_margin_us,
  max_transaction_age_us,
} from "./sidecar";
export type { CommitJournal, RecoveredEntry, SidecarOptions, SidecarState } from "./sidecar";
export {
  SidecarServer,
  SidecarServerError,
  close_linger_ms,
  connection_in_flight_max_default,
  connections_max_default,
  prepareSocketDir,
} from "./server";
export type { SidecarServerOptions, SocketOwner } from "./server";
export { realClock, startSidecar } from "./start";
export type { ReadyEvent, RunningSidecar, StartSidecarOptions } from "./start";
export { JsonLineLogger, silent_logger } from "./log";
export type { LogFields, Logger, LogLevel } from "./log";
