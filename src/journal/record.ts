/**
 * On-disk format of journal segments: the segment header and the commit
 * record, their encoders and a validating decoder. docs/journal.md is the
 * prose version of this file; keep them in step.
 *
 * All integers are little-endian, as in the wire protocol.
 *
 * Segment header (segment_header_bytes = 32):
 *   magic "ORDOJRNL" (8) | u32 format_version | u32 journal_id |
 *   u64 segment_seq | u32 reserved (0) | u32 crc32c of bytes 0..27
 *
 * Record:
 *   u32 length | u32 crc32c | payload (length bytes)
 *   payload = u8 type (1 = commit) | i64 tau_commit | 16-byte txn_id |
 *             i64 tau_start | u32 body_length | body
 * The CRC is CRC32C of the 4 length bytes followed by the payload (as in the
 * wire protocol's frames, the checksum runs over the header field before it).
 * The length must also equal commit_payload_fixed_bytes + body_length.
 */
import { crc32c } from "../protocol/crc32c";

export const segment_magic = "ORDOJRNL";
export const segment_format_version = 1;
export const segment_header_bytes = 32;
const segment_header_crc_offset = 28;

export const record_header_bytes = 8;
export const record_type_commit = 1;
export const txn_id_bytes = 16;
/** type + tau_commit + txn_id + tau_start + body_length. */
export const commit_payload_fixed_bytes = 1 + 8 + txn_id_bytes + 8 + 4;
/** Largest commit body; above the protocol's 16 MiB frame payload bound, so any frame fits. */
export const record_body_bytes_max = 32 * 1024 * 1024;
export const record_payload_bytes_max = commit_payload_fixed_bytes + record_body_bytes_max;

const segment_name_digits = 20;
const segment_name_suffix = ".seg";
const segment_name_pattern = /^[0-9]{20}\.seg$/;

export interface CommitRecord {
  tauCommit: number;
  txnId: Uint8Array;
  tauStart: number;
  body: Uint8Array;
}

export interface SegmentHeader {
  formatVersion: number;
  journalId: number;
  segmentSeq: number;
}

export function segmentFileName(seq: number): string {
  assert(Number.isSafeInteger(seq) && seq >= 0, "segment seq out of range");
  return String(seq).padStart(segment_name_digits, "0") + segment_name_suffix;
}

/** The sequence number in a segment file name, or undefined for any other name. */
export function parseSegmentFileName(name: string): number | undefined {
  if (!segment_name_pattern.test(name)) return undefined;
  const seq = Number(name.slice(0, segment_name_digits));
  return Number.isSafeInteger(seq) ? seq : undefined;
}

const retention_name_pattern = /^retained-([0-9]{20})-([0-9]{20})$/;

/** What a retention marker's name says: segments before `firstSeq` are gone, and with them every record up to `throughTau`. */
export interface RetentionMark {
  firstSeq: number;
  throughTau: number;
}

/** The name of an empty file that records a retention step (the name is the record). */
export function retentionFileName(mark: RetentionMark): string {
  assert(Number.isSafeInteger(mark.firstSeq) && mark.firstSeq > 1, "retention seq out of range");
  assert(
    Number.isSafeInteger(mark.throughTau) && mark.throughTau >= 0,
    "retention tau out of range",
  );
  return `retained-${String(mark.firstSeq).padStart(20, "0")}-${String(mark.throughTau).padStart(20, "0")}`;
}

/** The mark a retention marker's name records, or undefined for any other name. */
export function parseRetentionFileName(name: string): RetentionMark | undefined {
  const match = retention_name_pattern.exec(name);
  if (match === null) return undefined;
  const firstSeq = Number(match[1]);
  const throughTau = Number(match[2]);
  if (!Number.isSafeInteger(firstSeq) || firstSeq < 2 || !Number.isSafeInteger(throughTau))
    return undefined;
  return { firstSeq, throughTau };
}

export function recordBytes(bodyLength: number): number {
  return record_header_bytes + commit_payload_fixed_bytes + bodyLength;
}

export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  const out = new Uint8Array(segment_header_bytes);
  const view = new DataView(out.buffer);
  for (let i = 0; i < segment_magic.length; i++) out[i] = segment_magic.charCodeAt(i);
  view.setUint32(8, header.formatVersion, true);
  view.setUint32(12, header.journalId, true);
  view.setBigUint64(16, BigInt(header.segmentSeq), true);
  view.setUint32(24, 0, true);
  view.setUint32(
    segment_header_crc_offset,
    crc32c(out.subarray(0, segment_header_crc_offset)),
    true,
  );
  return out;
}

/** The header in `bytes`, or a reason why it is not one. */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader | string {
  if (bytes.length < segment_header_bytes) return `short header (${bytes.length} bytes)`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, segment_header_bytes);
  for (let i = 0; i < segment_magic.length; i++) {
    if (bytes[i] !== segment_magic.charCodeAt(i)) return "bad magic";
  }
  const crc = view.getUint32(segment_header_crc_offset, true);
  if (crc !== crc32c(bytes.subarray(0, segment_header_crc_offset)))
    return "header checksum mismatch";
  const formatVersion = view.getUint32(8, true);
  if (formatVersion !== segment_format_version)
    return `unsupported format version ${formatVersion}`;
  const seq = view.getBigUint64(16, true);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) return "segment seq out of range";
  return { formatVersion, journalId: view.getUint32(12, true), segmentSeq: Number(seq) };
}

/**
 * Encodes `records` back to back into one buffer (one group-commit write).
 * The caller has validated every field; this asserts the lengths add up.
 */
export function encodeRecords(records: readonly CommitRecord[]): Uint8Array {
  let total = 0;
  for (const r of records) total += recordBytes(r.body.length);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const r of records) {
    assert(r.txnId.length === txn_id_bytes, "txn id must be 16 bytes");
    assert(r.body.length <= record_body_bytes_max, "body too large");
    assert(Number.isSafeInteger(r.tauCommit) && r.tauCommit > 0, "tau_commit out of range");
    assert(Number.isSafeInteger(r.tauStart) && r.tauStart >= 0, "tau_start out of range");
    const payloadLength = commit_payload_fixed_bytes + r.body.length;
    const p = at + record_header_bytes;
    out[p] = record_type_commit;
    view.setBigInt64(p + 1, BigInt(r.tauCommit), true);
    out.set(r.txnId, p + 9);
    view.setBigInt64(p + 25, BigInt(r.tauStart), true);
    view.setUint32(p + 33, r.body.length, true);
    out.set(r.body, p + commit_payload_fixed_bytes);
    view.setUint32(at, payloadLength, true);
    view.setUint32(at + 4, recordChecksum(out, at, payloadLength), true);
    at = p + payloadLength;
  }
  assert(at === total, "encoded length mismatch");
  return out;
}

export type RecordDecode =
  | { kind: "ok"; record: CommitRecord; bytes: number }
  /** Fewer bytes available than the record needs: a torn write or the end of the data. */
  | { kind: "short"; need: number }
  | { kind: "bad"; reason: string };

/**
 * Decodes and validates one record at `bytes[at..]`. Never trusts its input:
 * bounds, checksum, type and inner lengths are all checked. The returned
 * buffers are copies.
 */
export function decodeRecord(bytes: Uint8Array, at: number): RecordDecode {
  if (bytes.length - at < record_header_bytes) return { kind: "short", need: record_header_bytes };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const length = view.getUint32(at, true);
  if (length < commit_payload_fixed_bytes || length > record_payload_bytes_max) {
    return { kind: "bad", reason: `record length ${length} out of bounds` };
  }
  const need = record_header_bytes + length;
  if (bytes.length - at < need) return { kind: "short", need };
  const p = at + record_header_bytes;
  if (view.getUint32(at + 4, true) !== recordChecksum(bytes, at, length)) {
    return { kind: "bad", reason: "record checksum mismatch" };
  }
  if (bytes[p] !== record_type_commit)
    return { kind: "bad", reason: `unknown record type ${bytes[p]}` };
  const bodyLength = view.getUint32(p + 33, true);
  if (bodyLength !== length - commit_payload_fixed_bytes) {
    return { kind: "bad", reason: "record body length disagrees with record length" };
  }
  const tauCommit = view.getBigInt64(p + 1, true);
  const tauStart = view.getBigInt64(p + 25, true);
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  if (tauCommit <= 0n || tauCommit > max) return { kind: "bad", reason: "tau_commit out of range" };
  if (tauStart < 0n || tauStart > max) return { kind: "bad", reason: "tau_start out of range" };
  const record: CommitRecord = {
    tauCommit: Number(tauCommit),
    txnId: bytes.slice(p + 9, p + 9 + txn_id_bytes),
    tauStart: Number(tauStart),
    body: bytes.slice(p + commit_payload_fixed_bytes, p + length),
  };
  return { kind: "ok", record, bytes: need };
}

/** CRC32C of the length field and the payload of the record at `at`. */
function recordChecksum(bytes: Uint8Array, at: number, payloadLength: number): number {
  const p = at + record_header_bytes;
  return crc32c(bytes.subarray(p, p + payloadLength), crc32c(bytes.subarray(at, at + 4)));
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`journal record assertion failed: ${message}`);
}
