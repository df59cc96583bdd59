/**
 * The journal's one error class. Every failure that crosses the journal's
 * public door is a `JournalError` with a stable `code`, so the sidecar can map
 * it to a protocol reply (a failed journal means `unavailable`) without
 * parsing messages.
 */

export type JournalErrorCode =
  /** A write or fsync on the commit path failed; the journal is dead until reopened. */
  | "fsync_failed"
  /** The journal was closed (or is closing) when the call was made. */
  | "closed"
  /** Durable data failed validation where it cannot be a torn tail. */
  | "corrupt"
  /** A caller passed a value outside the documented bounds. */
  | "invalid_argument"
  /** Reading or opening the journal's files failed (not on the commit path). */
  | "io_failed"
  /** A reader asked for records that retention removed (`Journal.removeThrough`). */
  | "removed";

export class JournalError extends Error {
  readonly code: JournalErrorCode;

  constructor(code: JournalErrorCode, message: string, options?: { cause?: unknown }) {
    super(`journal: ${message}`, options);
    this.name = "JournalError";
    this.code = code;
  }
}
