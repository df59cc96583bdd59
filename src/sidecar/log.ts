/**
 * A small structured logger: one JSON object per line, written through an
 * injected sink (stderr in the process entry, an array in tests). The
 * sidecar's stdout carries only its ready line, so logs never mix into it.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Record<string, unknown>;

export interface Logger {
  log(level: LogLevel, event: string, fields?: LogFields): void;
}

/** Renders bigint and Error values, which JSON.stringify does not handle. */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  return value;
}

export class JsonLineLogger implements Logger {
  readonly #write: (line: string) => void;
  readonly #now: () => string;

  /** `now` renders the time of a line; injected so that tests and the simulator control it. */
  constructor(write: (line: string) => void, now: () => string) {
    this.#write = write;
    this.#now = now;
  }

  log(level: LogLevel, event: string, fields: LogFields = {}): void {
    this.#write(`${JSON.stringify({ time: this.#now(), level, event, ...fields }, replacer)}\n`);
  }
}

/** A logger that drops everything. */
export const silent_logger: Logger = { log: () => undefined };
