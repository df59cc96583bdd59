/**
 * Records a campaign's history as it happens: every operation is kept in
 * memory for the checkers and written at once as one JSON line (the format
 * of docs/checker.md) to the history file, so a campaign that dies still
 * leaves the history up to that moment.
 */
import fs from "node:fs";
import path from "node:path";
import type { OpType } from "../types";

export interface RecordedOp<V> {
  index: number;
  process: number | string;
  type: OpType;
  f: string;
  value: V;
  /** Nanoseconds since the recorder started. */
  time: number;
}

export class HistoryRecorder<V> {
  readonly ops: RecordedOp<V>[] = [];
  private readonly pending = new Map<number | string, string>();
  private readonly start: bigint;
  private fd: number | null;

  /**
   * @param file where the JSON lines go (created, parents too), or null to keep the history in memory only
   * @param nowNs monotonic time in nanoseconds
   */
  constructor(
    readonly file: string | null,
    private readonly nowNs: () => bigint,
  ) {
    this.start = nowNs();
    if (file === null) {
      this.fd = null;
    } else {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      this.fd = fs.openSync(file, "w");
    }
  }

  private record(process: number | string, type: OpType, f: string, value: V): RecordedOp<V> {
    const op: RecordedOp<V> = {
      index: this.ops.length,
      process,
      type,
      f,
      value,
      time: Number(this.nowNs() - this.start),
    };
    this.ops.push(op);
    if (this.fd !== null) fs.writeSync(this.fd, JSON.stringify(op) + "\n");
    return op;
  }

  invoke(process: number | string, f: string, value: V): RecordedOp<V> {
    if (this.pending.has(process)) {
      throw new Error(
        `process ${String(process)} invoked while its ${this.pending.get(process)} is pending`,
      );
    }
    this.pending.set(process, f);
    return this.record(process, "invoke", f, value);
  }

  complete(process: number | string, type: Exclude<OpType, "invoke">, value: V): RecordedOp<V> {
    const f = this.pending.get(process);
    if (f === undefined) throw new Error(`process ${String(process)} completes nothing`);
    this.pending.delete(process);
    return this.record(process, type, f, value);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
