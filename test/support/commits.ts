/**
 * Builders for commit requests and journal bodies in tests: readable keys,
 * unique transaction ids, and sensible defaults, so a test states only what
 * it is about.
 */
import { MessageType, WriteKind } from "../../src/protocol";
import type { CommitRequest, Write, WriteKind as Kind } from "../../src/protocol";

const text = new TextEncoder();

export function bytes(value: string): Uint8Array {
  return text.encode(value);
}

let nextTxn = 1n;

/** A fresh 16-byte transaction id: system id 0x07d0 then a counter. */
export function freshTxnId(): Uint8Array {
  const id = new Uint8Array(16);
  const view = new DataView(id.buffer);
  view.setBigUint64(0, 0x07d0n, true);
  view.setBigUint64(8, nextTxn++, true);
  return id;
}

/** A write of `kind` to a readable key; inserts and updates carry a small image. */
export function write(kind: Kind, key: string, image = ""): Write {
  const takesImage = kind === WriteKind.Insert || kind === WriteKind.Update;
  return { kind, key: bytes(key), image: bytes(takesImage ? image || `row:${key}` : "") };
}

export const ins = (key: string, image = ""): Write => write(WriteKind.Insert, key, image);
export const upd = (key: string, image = ""): Write => write(WriteKind.Update, key, image);
export const del = (key: string): Write => write(WriteKind.Delete, key);
export const share = (key: string): Write => write(WriteKind.SharedLock, key);

let nextRequest = 1n;

export function commitRequest(
  tauStart: number,
  writes: Write[],
  overrides: Partial<Omit<CommitRequest, "type">> = {},
): CommitRequest {
  return {
    type: MessageType.CommitRequest,
    requestId: overrides.requestId ?? nextRequest++,
    txnId: overrides.txnId ?? freshTxnId(),
    tauStart,
    writes,
  };
}
