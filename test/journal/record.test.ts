/**
 * Tests for src/journal/record.ts: the segment header and commit record
 * round-trip, and the decoder rejects every single-byte change and every
 * truncation instead of trusting its input.
 */
import { strict as assert } from "node:assert";
import {
  decodeRecord,
  decodeSegmentHeader,
  encodeRecords,
  encodeSegmentHeader,
  parseSegmentFileName,
  record_header_bytes,
  recordBytes,
  segment_header_bytes,
  segmentFileName,
  type CommitRecord,
} from "../../src/journal/record";

const sample: CommitRecord = {
  tauCommit: 1_700_000_000_123_456,
  txnId: Uint8Array.from({ length: 16 }, (_, i) => i + 1),
  tauStart: 1_700_000_000_000_001,
  body: Uint8Array.from([1, 2, 3, 250, 0, 7]),
};

describe("journal record format", () => {
  it("round-trips records back to back", () => {
    const second: CommitRecord = {
      ...sample,
      tauCommit: sample.tauCommit + 1,
      body: new Uint8Array(0),
    };
    const bytes = encodeRecords([sample, second]);
    assert.equal(bytes.length, recordBytes(6) + recordBytes(0));
    const first = decodeRecord(bytes, 0);
    assert.equal(first.kind, "ok");
    if (first.kind !== "ok") return;
    assert.deepEqual(first.record, sample);
    const next = decodeRecord(bytes, first.bytes);
    assert.equal(next.kind, "ok");
    if (next.kind === "ok") assert.deepEqual(next.record, second);
  });

  it("pins the byte layout", () => {
    const bytes = encodeRecords([sample]);
    const view = new DataView(bytes.buffer);
    assert.equal(view.getUint32(0, true), bytes.length - record_header_bytes);
    assert.equal(bytes[8], 1, "type commit");
    assert.equal(view.getBigInt64(9, true), BigInt(sample.tauCommit));
    assert.deepEqual(bytes.subarray(17, 33), sample.txnId);
    assert.equal(view.getBigInt64(33, true), BigInt(sample.tauStart));
    assert.equal(view.getUint32(41, true), 6);
    assert.deepEqual(bytes.subarray(45), sample.body);
  });

  it("rejects every single-byte change", () => {
    const bytes = encodeRecords([sample]);
    for (let i = 0; i < bytes.length; i++) {
      const copy = bytes.slice();
      copy[i] = copy[i]! ^ 0x01;
      assert.notEqual(decodeRecord(copy, 0).kind, "ok", `flip at byte ${i} accepted`);
    }
  });

  it("reports a truncated record as short", () => {
    const bytes = encodeRecords([sample]);
    for (let length = 0; length < bytes.length; length++) {
      const result = decodeRecord(bytes.subarray(0, length), 0);
      assert.equal(result.kind, "short", `length ${length}`);
    }
  });

  it("round-trips the segment header and rejects damage", () => {
    const header = { formatVersion: 1, journalId: 42, segmentSeq: 9 };
    const bytes = encodeSegmentHeader(header);
    assert.equal(bytes.length, segment_header_bytes);
    assert.deepEqual(decodeSegmentHeader(bytes), header);
    for (let i = 0; i < bytes.length; i++) {
      const copy = bytes.slice();
      copy[i] = copy[i]! ^ 0x80;
      assert.equal(typeof decodeSegmentHeader(copy), "string", `flip at byte ${i} accepted`);
    }
    assert.equal(typeof decodeSegmentHeader(bytes.subarray(0, 31)), "string");
  });

  it("names segments so that names sort by sequence", () => {
    assert.equal(segmentFileName(12), "00000000000000000012.seg");
    assert.equal(parseSegmentFileName("00000000000000000012.seg"), 12);
    assert.equal(parseSegmentFileName("12.seg"), undefined);
    assert.equal(parseSegmentFileName("00000000000000000012.seg.tmp"), undefined);
  });
});
