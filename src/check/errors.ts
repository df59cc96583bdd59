/**
 * The history checker's one error class. Input that cannot be read as a
 * history (bad JSON, a line of the wrong shape, an unreadable file) becomes a
 * `CheckError` with a stable `code`, so the `ordo check` command can tell
 * "unreadable input" (exit 2) from "anomalies found" (exit 1) without
 * parsing messages. Anomalies in a well-formed history are results, not
 * errors.
 */

export type CheckErrorCode =
  /** A line of the history is not JSON or not a history operation. */
  | "malformed_line"
  /** The history file could not be read. */
  | "unreadable"
  /** A caller passed a value outside the documented bounds. */
  | "invalid_argument";

export class CheckError extends Error {
  readonly code: CheckErrorCode;
  /** 1-based line number of the offending line, for `malformed_line`. */
  readonly line: number | undefined;

  constructor(code: CheckErrorCode, message: string, options?: { cause?: unknown; line?: number }) {
    super(`check: ${message}`, options);
    this.name = "CheckError";
    this.code = code;
    this.line = options?.line;
  }
}
