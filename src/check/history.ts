/**
 * Reads a history in Elle's list-append form: one JSON object per line
 * (`{"index", "process", "type", "f", "value", "time"?}`), blank lines
 * skipped. Checks the shape of every line and fails with the line number on
 * the first bad one; relations between lines (pairing, unique appends) are the
 * checker's business and come back as `malformed` anomalies instead.
 */
import { CheckError } from "./errors";
import type { HistoryOp, Key, Mop, OpType, Value } from "./types";

const op_types: ReadonlySet<string> = new Set(["invoke", "ok", "fail", "info"]);
/** Longest line quoted back in an error message. */
const error_excerpt_chars_max = 120;

function isKey(x: unknown): x is Key {
  return (typeof x === "number" && Number.isFinite(x)) || typeof x === "string";
}

function excerpt(line: string): string {
  return line.length <= error_excerpt_chars_max
    ? line
    : `${line.slice(0, error_excerpt_chars_max)}...`;
}

function parseMop(raw: unknown, type: OpType): Mop | string {
  if (!Array.isArray(raw) || raw.length !== 3) return "a micro-op must be [f, key, value]";
  const [f, key, v] = raw as unknown[];
  if (!isKey(key)) return "a key must be a number or a string";
  if (f === "append") {
    if (!isKey(v)) return "an appended value must be a number or a string";
    return ["append", key, v];
  }
  if (f === "r") {
    if (v === null) {
      if (type === "ok") return "a read in an ok completion must carry its list";
      return ["r", key, null];
    }
    if (!Array.isArray(v)) return "a read's value must be a list or null";
    for (const e of v as unknown[]) {
      if (!isKey(e)) return "a read list's elements must be numbers or strings";
    }
    return ["r", key, v as Value[]];
  }
  return `unknown micro-op ${JSON.stringify(f)} (expected "append" or "r")`;
}

function parseTxnValue(raw: unknown, type: OpType): readonly Mop[] | null | string {
  if (raw === null || raw === undefined) {
    return type === "fail" || type === "info" ? null : `an ${type} txn must carry its micro-ops`;
  }
  if (!Array.isArray(raw)) return "value must be a list of micro-ops";
  const mops: Mop[] = [];
  for (const m of raw as unknown[]) {
    const parsed = parseMop(m, type);
    if (typeof parsed === "string") return parsed;
    mops.push(parsed);
  }
  return mops;
}

/** Validates one decoded line; returns the operation or what is wrong with it. */
function toOp(raw: unknown, ordinal: number): HistoryOp | string {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return "not a JSON object";
  const o = raw as Record<string, unknown>;
  const index = o.index === undefined ? ordinal : o.index;
  if (typeof index !== "number" || !Number.isSafeInteger(index) || index < 0) {
    return "index must be a non-negative integer";
  }
  if (!isKey(o.process)) return "process must be a number or a string";
  if (typeof o.type !== "string" || !op_types.has(o.type)) {
    return 'type must be "invoke", "ok", "fail" or "info"';
  }
  const type = o.type as OpType;
  if (typeof o.f !== "string") return "f must be a string";
  if (o.time !== undefined && (typeof o.time !== "number" || !Number.isFinite(o.time))) {
    return "time must be a number";
  }
  let value: readonly Mop[] | null = null;
  if (o.f === "txn") {
    const parsed = parseTxnValue(o.value, type);
    if (typeof parsed === "string") return parsed;
    value = parsed;
  }
  const op: HistoryOp = { index, process: o.process, type, f: o.f, value };
  if (typeof o.time === "number") op.time = o.time;
  return op;
}

/**
 * Parses a whole history. Throws `CheckError("malformed_line")` naming the
 * 1-based line number of the first line that is not a valid operation.
 */
export function parseHistory(text: string): HistoryOp[] {
  const ops: HistoryOp[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new CheckError(
        "malformed_line",
        `line ${i + 1}: not valid JSON (${(err as Error).message}): ${excerpt(line)}`,
        { cause: err, line: i + 1 },
      );
    }
    const op = toOp(raw, ops.length);
    if (typeof op === "string") {
      throw new CheckError("malformed_line", `line ${i + 1}: ${op}: ${excerpt(line)}`, {
        line: i + 1,
      });
    }
    ops.push(op);
  }
  return ops;
}
