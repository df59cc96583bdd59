/**
 * Tests for src/journal/record-buffer.ts and the native record batches behind
 * it (native/records.{h,cc}): the native engine and the TypeScript twin encode
 * identical bytes and decode every buffer identically, valid or not
 * (truncated, flipped bytes, bad lengths, out-of-order taus), and agree with
 * the one-record decoder of src/journal/record.ts on where the good records
 * end. Also checks both doors of the native encoder: the wrapper's argument
 * checks and the C++ side's own, and that lent buffers outlive growth and close.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeRecord,
  encodeRecords,
  record_header_bytes,
  type CommitRecord,
} from "../../src/journal/record";
import {
  decodeRecords,
  RecordBatchEncoder,
  RecordIndex,
  type RecordEngine,
} from "../../src/journal/record-buffer";
import {
  nativeAvailable,
  nativeBindingUnchecked,
  NativeRecordEncoder,
  OrdoNativeError,
  records_meta_words,
  records_record_words,
  sealRecordsNative,
  type OrdoNativeErrorCode,
} from "../../src/native";

const runs = 300;
const tau_base = 1_700_000_000_000_000;

const recordArb = fc.record({
  gap: fc.integer({ min: 1, max: 1000 }),
  startBack: fc.integer({ min: 0, max: 5000 }),
  txnId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  body: fc.uint8Array({ maxLength: 300 }),
});

/** Records with strictly increasing taus from `tau_base`. */
const batchArb = fc
  .tuple(fc.array(recordArb, { maxLength: 40 }), fc.constantFrom(tau_base, 1, 2 ** 53 - 50_000))
  .map(([specs, base]) => {
    let tau = base;
    return specs.map((s): CommitRecord => {
      tau += s.gap;
      return { tauCommit: tau, txnId: s.txnId, tauStart: Math.max(0, tau - s.startBack), body: s.body };
    });
  });

function encodeWith(engine: RecordEngine, records: readonly CommitRecord[]): Uint8Array {
  const encoder = new RecordBatchEncoder({ engine, initialBytes: 64 });
  try {
    for (const r of records) encoder.add(r.tauCommit, r.txnId, r.tauStart, r.body);
    return encoder.encode().slice();
  } finally {
    encoder.close();
  }
}

/** Damage applied to an encoded buffer. */
const damageArb = fc.oneof(
  fc.record({ kind: fc.constant("none" as const) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constant("length" as const),
    record: fc.nat(),
    value: fc.oneof(fc.nat(100), fc.constant(0xffffffff), fc.integer({ min: 0, max: 0xffffffff })),
  }),
  fc.record({ kind: fc.constant("garbage" as const), bytes: fc.uint8Array({ maxLength: 200 }) }),
);

type Damage = typeof damageArb extends fc.Arbitrary<infer T> ? T : never;

function damage(bytes: Uint8Array, records: readonly CommitRecord[], d: Damage): Uint8Array {
  const out = bytes.slice();
  switch (d.kind) {
    case "none":
      return out;
    case "truncate":
      return out.subarray(0, Math.floor(d.at * out.length));
    case "flip":
      if (out.length > 0) out[Math.min(out.length - 1, Math.floor(d.at * out.length))] ^= d.mask;
      return out;
    case "length": {
      if (records.length === 0) return out;
      let at = 0;
      for (let i = 0; i < d.record % records.length; i++) {
        at += record_header_bytes + 37 + records[i]!.body.length;
      }
      new DataView(out.buffer).setUint32(at, d.value, true);
      return out;
    }
    case "garbage": {
      const joined = new Uint8Array(out.length + d.bytes.length);
      joined.set(out);
      joined.set(d.bytes, out.length);
      return joined;
    }
  }
}

/** Meta words and the decoded records' words: what both engines must agree on. */
function usedWords(index: RecordIndex): number[] {
  return Array.from(index.words.subarray(0, records_meta_words + records_record_words * index.count));
}

function throwsNative(fn: () => unknown, code: OrdoNativeErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof OrdoNativeError, `expected OrdoNativeError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

describe("record buffers (native and TypeScript twin)", () => {
  before(function () {
    if (!nativeAvailable()) this.skip();
  });

  it("encode identical bytes, equal to encodeRecords", () => {
    fc.assert(
      fc.property(batchArb, (records) => {
        const js = encodeWith("js", records);
        const native = encodeWith("native", records);
        assert.deepEqual(native, js);
        assert.deepEqual(js, encodeRecords(records));
      }),
      { numRuns: runs },
    );
  });

  it("decode every buffer identically, damaged or not, at any index capacity", () => {
    fc.assert(
      fc.property(
        batchArb,
        damageArb,
        fc.integer({ min: 1, max: 50 }),
        fc.constantFrom(0, tau_base, tau_base + 500),
        (records, d, capacity, lastTau) => {
          const bytes = damage(encodeRecords(records), records, d);
          const js = decodeRecords(bytes, lastTau, new RecordIndex(capacity), "js");
          const native = decodeRecords(bytes, lastTau, new RecordIndex(capacity), "native");
          assert.deepEqual(usedWords(native), usedWords(js));
          assert.equal(native.reason(bytes, lastTau), js.reason(bytes, lastTau));
        },
      ),
      { numRuns: runs },
    );
  });

  it("stop where decodeRecord finds the first bad record (the last good offset)", () => {
    fc.assert(
      fc.property(batchArb, damageArb, (records, d) => {
        const bytes = damage(encodeRecords(records), records, d);
        const index = decodeRecords(bytes, 0, new RecordIndex(64), "native");
        // The reference: one record at a time, strictly increasing taus.
        let at = 0;
        let last = 0;
        const expected: CommitRecord[] = [];
        let firstBad: "short" | "bad" | null = null;
        while (at < bytes.length) {
          const one = decodeRecord(bytes, at);
          if (one.kind !== "ok") {
            firstBad = one.kind;
            break;
          }
          if (one.record.tauCommit <= last) {
            firstBad = "bad";
            break;
          }
          expected.push(one.record);
          last = one.record.tauCommit;
          at += one.bytes;
        }
        assert.equal(index.consumed, at);
        assert.equal(index.count, expected.length);
        assert.equal(index.error === null, firstBad === null);
        assert.equal(index.error === "short", firstBad === "short");
        for (let i = 0; i < expected.length; i++) assert.deepEqual(index.record(bytes, i), expected[i]);
      }),
      { numRuns: runs },
    );
  });

  it("report each rejection with its code", () => {
    const record: CommitRecord = {
      tauCommit: 100,
      txnId: new Uint8Array(16).fill(7),
      tauStart: 50,
      body: Uint8Array.of(1, 2, 3),
    };
    const good = encodeRecords([record]);
    const cases: [string, (b: Uint8Array, v: DataView) => void, number][] = [
      ["short", (b) => b.fill(0, 0, 0), 5],
      ["length_out_of_bounds", (_b, v) => v.setUint32(0, 36, true), 0],
      ["checksum", (b) => (b[20] ^= 1), 0],
      ["tau_not_increasing", () => undefined, 100],
    ];
    for (const engine of ["native", "js"] as const) {
      for (const [code, mutate, lastTau] of cases) {
        const bytes = code === "short" ? good.slice(0, 5) : good.slice();
        mutate(bytes, new DataView(bytes.buffer));
        const index = decodeRecords(bytes, lastTau, new RecordIndex(4), engine);
        assert.equal(index.error, code, `${engine} ${code}`);
        assert.equal(index.consumed, 0);
        assert.equal(index.count, 0);
      }
    }
  });

  it("returns views that stay valid until the next encode, also across growth and close", () => {
    for (const engine of ["native", "js"] as const) {
      const encoder = new RecordBatchEncoder({ engine, initialBytes: 64 });
      const small = { txnId: new Uint8Array(16).fill(7), body: Uint8Array.of(9) };
      encoder.add(5, small.txnId, 1, small.body);
      const first = encoder.encode();
      const firstCopy = first.slice();
      encoder.add(6, small.txnId, 2, Uint8Array.of(1, 2, 3));
      assert.deepEqual(first, firstCopy, `${engine}: adding after an encode leaves its bytes alone`);
      const second = encoder.encode();
      assert.notEqual(second.buffer, first.buffer);
      encoder.add(7, small.txnId, 3, small.body);
      const third = encoder.encode();
      assert.equal(third.buffer, first.buffer, `${engine}: steady state alternates two buffers`);
      encoder.add(8, small.txnId, 4, new Uint8Array(10_000).fill(3));
      const grown = encoder.encode();
      encoder.close();
      encoder.close();
      assert.equal(decodeRecords(grown, 0, new RecordIndex(2), engine).count, 1);
      assert.equal(decodeRecords(third, 0, new RecordIndex(2), engine).count, 1);
      assert.throws(() => encoder.add(9, small.txnId, 0, small.body), /closed/);
    }
  });

  it("seals staged bytes only after checking them on the C++ side", () => {
    const raw = nativeBindingUnchecked();
    const good = encodeWith("js", [
      { tauCommit: 5, txnId: new Uint8Array(16), tauStart: 1, body: Uint8Array.of(1, 2) },
      { tauCommit: 9, txnId: new Uint8Array(16).fill(1), tauStart: 2, body: new Uint8Array(0) },
    ]);
    const unsealed = good.slice();
    const dv = new DataView(unsealed.buffer);
    dv.setUint32(4, 0, true);
    dv.setUint32(8 + 39 + 4, 0, true);
    const sealed = unsealed.slice();
    raw.recordsSeal(sealed, sealed.length, 2);
    assert.deepEqual(sealed, good);
    const refused = (mutate: (b: Uint8Array, v: DataView) => void, length: number, count: number): void => {
      const bytes = unsealed.slice();
      mutate(bytes, new DataView(bytes.buffer));
      const before = bytes.slice();
      throwsNative(() => raw.recordsSeal(bytes, length, count), "malformed");
      assert.deepEqual(bytes, before, "a refused batch changes nothing");
    };
    const none = (): void => undefined;
    refused(none, unsealed.length, 1);
    refused(none, unsealed.length, 3);
    refused(none, unsealed.length - 1, 2);
    refused((_b, v) => v.setUint32(0, 0xffffffff, true), unsealed.length, 2);
    refused((_b, v) => v.setUint32(0, 36, true), unsealed.length, 2);
    refused((b) => (b[8] = 2), unsealed.length, 2);
    refused((_b, v) => v.setUint32(8 + 33, 3, true), unsealed.length, 2);
    refused((_b, v) => v.setUint32(8 + 1, 0, true), unsealed.length, 2);
    refused((_b, v) => v.setUint32(8 + 25 + 4, 0x200000, true), unsealed.length, 2);
    throwsNative(() => raw.recordsSeal(unsealed, unsealed.length + 1, 2), "out_of_range");
    throwsNative(() => raw.recordsSeal(unsealed, 0, -1), "out_of_range");
    throwsNative(() => raw.recordsSeal([] as unknown as Uint8Array, 0, 0), "invalid_argument");
    raw.recordsSeal(new Uint8Array(0), 0, 0);
    assert.throws(() => sealRecordsNative(unsealed, unsealed.length + 1, 2), RangeError);
    assert.throws(() => sealRecordsNative(unsealed, 0, 0.5), RangeError);
  });

  it("checks arguments in the wrapper before the native call", () => {
    const encoder = new RecordBatchEncoder({ engine: "native" });
    const id = new Uint8Array(16);
    assert.throws(() => encoder.add(0, id, 0, new Uint8Array(0)), RangeError);
    assert.throws(() => encoder.add(2 ** 53, id, 0, new Uint8Array(0)), RangeError);
    assert.throws(() => encoder.add(1, id, -1, new Uint8Array(0)), RangeError);
    assert.throws(() => encoder.add(1, new Uint8Array(15), 0, new Uint8Array(0)), TypeError);
    assert.throws(() => encoder.add(1, id, 0, "x" as unknown as Uint8Array), TypeError);
    encoder.close();
    const native = new NativeRecordEncoder(16);
    assert.throws(() => native.encode(new Float64Array(2), [], 1), TypeError);
    assert.throws(() => native.encode(Float64Array.of(1.5, 0), [id, id], 1), RangeError);
    native.close();
    throwsNative(() => native.encode(new Float64Array(0), [], 0), "closed");
    assert.throws(() => decodeRecords(new Uint8Array(0), -1, new RecordIndex(1)), RangeError);
    assert.throws(() => new RecordIndex(0), RangeError);
  });

  it("checks arguments again on the C++ side", () => {
    const raw = nativeBindingUnchecked();
    const id = new Uint8Array(16);
    const out = new Float64Array(1);
    throwsNative(() => raw.recordsEncoderOpen(0), "out_of_range");
    throwsNative(() => raw.recordsEncode({}, new Float64Array(2), [id, id], 1, out), "invalid_argument");
    const handle = raw.recordsEncoderOpen(64);
    throwsNative(() => raw.recordsEncode(handle, new Float64Array(1), [id, id], 1, out), "out_of_range");
    throwsNative(() => raw.recordsEncode(handle, Float64Array.of(0, 0), [id, id], 1, out), "out_of_range");
    throwsNative(() => raw.recordsEncode(handle, Float64Array.of(1, 0), [id], 1, out), "out_of_range");
    throwsNative(
      () => raw.recordsEncode(handle, Float64Array.of(1, 0), [new Uint8Array(3), id], 1, out),
      "out_of_range",
    );
    throwsNative(
      () => raw.recordsEncode(handle, Float64Array.of(1, 0), [id, "x" as unknown as Uint8Array], 1, out),
      "invalid_argument",
    );
    throwsNative(
      () => raw.recordsEncode(handle, Float64Array.of(NaN, 0), [id, id], 1, out),
      "out_of_range",
    );
    const lent = raw.recordsEncode(handle, Float64Array.of(1, 0), [id, id], 1, out);
    assert.ok(lent instanceof ArrayBuffer);
    assert.equal(out[0], record_header_bytes + 37 + 16);
    assert.equal(raw.recordsEncode(handle, Float64Array.of(1, 0), [id, id], 1, out), undefined);
    raw.recordsEncoderClose(handle);
    throwsNative(() => raw.recordsEncode(handle, Float64Array.of(1, 0), [id, id], 1, out), "closed");
    throwsNative(() => raw.recordsDecode(new Uint8Array(4), -1, new Float64Array(10)), "out_of_range");
    throwsNative(() => raw.recordsDecode(new Uint8Array(4), 0, new Float64Array(9)), "out_of_range");
    throwsNative(() => raw.recordsDecode(new Uint16Array(4) as unknown as Uint8Array, 0, new Float64Array(10)), "invalid_argument");
    assert.equal(new Uint8Array(lent).length >= out[0], true);
  });
});
