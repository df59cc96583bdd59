/**
 * Tests for the batch-shaped conflict table (src/adjudicator/conflict-table.ts,
 * src/adjudicator/conflict-batch.ts, NativeConflictTable in src/native and
 * native/conflict_table.cc): a property test that drives the native table
 * and the TypeScript twin with the same random batch sequences and demands
 * identical verdicts, details, conflict taus and state after every call;
 * targeted cases for in-batch order; and both doors of validation — the
 * wrapper's TypeError/RangeError before the native call, and the C++ side's
 * own rejection of malformed buffers reached through the unchecked binding.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ConflictBatch,
  ConflictVerdict,
  conflict_batch_magic,
  conflict_key_shared_bit,
  JsConflictTable,
  NativeConflictTable,
} from "../../src/adjudicator";
import type { ConflictTable } from "../../src/adjudicator";
import { nativeBindingUnchecked, OrdoNativeError } from "../../src/native";
import type { OrdoNativeErrorCode } from "../../src/native";

function throwsNative(fn: () => unknown, code: OrdoNativeErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof OrdoNativeError, `expected OrdoNativeError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

interface TxnSpec {
  tau: number;
  keys: { key: Uint8Array; shared: boolean }[];
}

function fill(batch: ConflictBatch, txns: readonly TxnSpec[]): ConflictBatch {
  batch.clear();
  for (const txn of txns) {
    batch.addTransaction(txn.tau);
    for (const { key, shared } of txn.keys) batch.addKey(key, shared);
  }
  return batch;
}

function results(batch: ConflictBatch): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < batch.txnCount; i++) {
    out.push([batch.verdicts[i], batch.details[i], batch.conflictTaus[i]]);
  }
  return out;
}

function state(table: ConflictTable): number[] {
  return [table.keyCount, table.inFlightCount, table.horizonTau];
}

// ---- random batch sequences -------------------------------------------------

/** Keys from a small pool so that conflicts are common: some differ in one byte, some are long. */
const long_key_bytes = 5000;
const base = new Uint8Array(long_key_bytes).map((_, i) => (i * 7) & 0xff);
const key_pool: Uint8Array[] = [
  new Uint8Array(0),
  Uint8Array.of(1),
  Uint8Array.of(2),
  Uint8Array.of(1, 0),
  Uint8Array.from([0x74, 0x31, 0, 0, 0, 0, 0, 0, 0x01]),
  Uint8Array.from([0x74, 0x31, 0, 0, 0, 0, 0, 0, 0x02]),
  base.slice(0, 17),
  base.slice(0, 16),
  // Either side of the native table's inline key bound (31 bytes inline, 32 in the arena).
  base.slice(0, 31),
  base.slice(0, 32),
  (() => {
    const k = base.slice(0, 32);
    k[31] ^= 1;
    return k;
  })(),
  base,
  (() => {
    const k = base.slice();
    k[long_key_bytes - 1] ^= 1;
    return k;
  })(),
];

type Step =
  | { op: "detect"; txns: { back: number; keys: { k: number; shared: boolean }[] }[] }
  | { op: "commit"; picks: number[]; gap: number }
  | { op: "abort"; picks: number[] }
  | { op: "forget"; back: number }
  | { op: "register"; txns: { gap: number; keys: { k: number; shared: boolean }[] }[] };

const keyRefs = fc.array(fc.record({ k: fc.nat(key_pool.length - 1), shared: fc.boolean() }), {
  maxLength: 6,
});
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("detect" as const),
      txns: fc.array(fc.record({ back: fc.nat(30), keys: keyRefs }), { maxLength: 8 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("commit" as const),
      picks: fc.array(fc.nat(), { maxLength: 4 }),
      gap: fc.nat(3),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("abort" as const),
      picks: fc.array(fc.nat(), { maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("forget" as const), back: fc.nat(40) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("register" as const),
      txns: fc.array(fc.record({ gap: fc.nat(3), keys: keyRefs }), { maxLength: 3 }),
    }),
  },
);

describe("conflict table: native and twin agree", () => {
  it("gives identical verdicts and state on random batch sequences", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 60 }), (steps) => {
        const tables: ConflictTable[] = [new JsConflictTable(0), new NativeConflictTable(0)];
        const batches = [new ConflictBatch(), new ConflictBatch()];
        const inFlight: { ticket: number; tauStart: number }[] = [];
        let now = 100;
        let horizon = 0;
        try {
          for (const step of steps) {
            switch (step.op) {
              case "detect": {
                // Equal taus are common: many transactions share `now - back`.
                const txns = step.txns.map((t) => ({
                  tau: now - t.back,
                  keys: t.keys.map(({ k, shared }) => ({ key: key_pool[k], shared })),
                }));
                const answers = tables.map((table, i) => {
                  table.detect(fill(batches[i], txns));
                  return results(batches[i]);
                });
                assert.deepStrictEqual(answers[1], answers[0]);
                answers[0].forEach(([verdict, ticket], i) => {
                  if (verdict === ConflictVerdict.Approved)
                    inFlight.push({ ticket, tauStart: txns[i].tau });
                });
                break;
              }
              case "commit":
              case "abort": {
                const chosen = new Set(
                  step.picks.filter(() => inFlight.length > 0).map((p) => p % inFlight.length),
                );
                const settled = [...chosen].map((i) => inFlight[i]);
                for (const s of settled) inFlight.splice(inFlight.indexOf(s), 1);
                const tickets = Uint32Array.from(settled.map((s) => s.ticket));
                if (step.op === "commit") {
                  const taus = Float64Array.from(
                    settled.map((s) => Math.max(now, s.tauStart + 1) + step.gap),
                  );
                  for (const table of tables) table.commitBatch(tickets, taus, tickets.length);
                  now = Math.max(now, ...taus) + 1;
                } else {
                  for (const table of tables) table.abortBatch(tickets, tickets.length);
                }
                break;
              }
              case "forget": {
                horizon = Math.max(horizon, now - step.back);
                for (const table of tables) table.forgetBefore(horizon);
                break;
              }
              case "register": {
                const txns = step.txns.map((t) => ({
                  tau: now + t.gap - 20,
                  keys: t.keys.map(({ k, shared }) => ({ key: key_pool[k], shared })),
                }));
                tables.forEach((table, i) => table.register(fill(batches[i], txns)));
                now += 4;
                break;
              }
            }
            assert.deepStrictEqual(state(tables[1]), state(tables[0]));
            assert.equal(tables[0].inFlightCount, inFlight.length);
          }
        } finally {
          for (const table of tables) table.close();
        }
      }),
      { numRuns: 300 },
    );
  });
});

for (const engine of ["js", "native"] as const) {
  const make = (horizon = 0): ConflictTable =>
    engine === "js" ? new JsConflictTable(horizon) : new NativeConflictTable(horizon);
  const k = (s: string) => new TextEncoder().encode(s);

  describe(`conflict table (${engine})`, () => {
    it("decides a batch in order: the first writer of a key wins, shared locks coexist", () => {
      const table = make();
      const batch = fill(new ConflictBatch(), [
        { tau: 10, keys: [{ key: k("a"), shared: false }] },
        { tau: 10, keys: [{ key: k("a"), shared: false }] },
        { tau: 10, keys: [{ key: k("p"), shared: true }] },
        {
          tau: 10,
          keys: [
            { key: k("p"), shared: true },
            { key: k("b"), shared: false },
          ],
        },
        {
          tau: 10,
          keys: [
            { key: k("c"), shared: false },
            { key: k("p"), shared: false },
          ],
        },
        { tau: 10, keys: [] },
        { tau: -5, keys: [{ key: k("z"), shared: false }] },
      ]);
      table.detect(batch);
      assert.deepStrictEqual(results(batch), [
        [ConflictVerdict.Approved, 0, 0],
        [ConflictVerdict.InFlightWrite, 0, 0],
        [ConflictVerdict.Approved, 1, 0],
        [ConflictVerdict.Approved, 2, 0],
        [ConflictVerdict.InFlightShared, 1, 0],
        [ConflictVerdict.Approved, 3, 0],
        [ConflictVerdict.TooOld, 0, 0],
      ]);
      assert.deepStrictEqual(state(table), [3, 4, 0]);
      table.commitBatch(Uint32Array.of(0, 2), Float64Array.of(20, 21), 2);
      table.abortBatch(Uint32Array.of(1, 3), 2);
      assert.deepStrictEqual(state(table), [3, 0, 0]);
      const next = fill(new ConflictBatch(), [
        { tau: 19, keys: [{ key: k("p"), shared: false }] },
        {
          tau: 21,
          keys: [
            { key: k("a"), shared: true },
            { key: k("b"), shared: false },
          ],
        },
      ]);
      table.detect(next);
      assert.deepStrictEqual(results(next), [
        [ConflictVerdict.CommittedShared, 0, 21],
        [ConflictVerdict.Approved, 3, 0], // the free list is LIFO: 3 was freed last
      ]);
      table.forgetBefore(21);
      assert.deepStrictEqual(state(table), [2, 1, 21], "a and b stay in flight");
      table.close();
    });

    it("validates arguments before anything changes", () => {
      const table = make(5);
      const batch = fill(new ConflictBatch(), [
        { tau: 10, keys: [{ key: k("a"), shared: false }] },
      ]);
      table.detect(batch);
      assert.throws(() => table.detect({} as ConflictBatch), TypeError);
      assert.throws(
        () => table.commitBatch([0] as unknown as Uint32Array, Float64Array.of(11), 1),
        TypeError,
      );
      assert.throws(() => table.commitBatch(Uint32Array.of(0), Float64Array.of(10), 1), RangeError);
      assert.throws(
        () => table.commitBatch(Uint32Array.of(0), Float64Array.of(11.5), 1),
        RangeError,
      );
      assert.throws(() => table.commitBatch(Uint32Array.of(0), Float64Array.of(11), 2), RangeError);
      assert.throws(
        () => table.commitBatch(Uint32Array.of(0, 0), Float64Array.of(11, 12), 2),
        RangeError,
      );
      assert.throws(() => table.commitBatch(Uint32Array.of(7), Float64Array.of(11), 1), RangeError);
      assert.throws(() => table.abortBatch(Uint32Array.of(1), 1), RangeError);
      assert.throws(() => table.abortBatch(Uint32Array.of(0), -1), RangeError);
      assert.throws(() => table.forgetBefore(4), RangeError);
      assert.throws(() => table.forgetBefore(Number.NaN), RangeError);
      assert.throws(() => table.forgetBefore("6" as unknown as number), TypeError);
      assert.throws(() => batch.addTransaction(2 ** 53), RangeError);
      assert.throws(() => batch.addKey("a" as unknown as Uint8Array, false), TypeError);
      batch.index[0] = 0; // a batch corrupted by hand
      assert.throws(() => table.detect(batch), RangeError);
      assert.deepStrictEqual(state(table), [1, 1, 5]);
      table.abortBatch(Uint32Array.of(0), 1);
      assert.deepStrictEqual(state(table), [0, 0, 5]);
      table.close();
      table.close();
    });
  });
}

describe("native conflict table door", () => {
  it("throws OrdoNativeError closed after close", () => {
    const table = new NativeConflictTable();
    table.close();
    throwsNative(() => table.detect(new ConflictBatch()), "closed");
    throwsNative(() => table.keyCount, "closed");
    throwsNative(() => table.forgetBefore(0), "closed");
    throwsNative(() => table.abortBatch(new Uint32Array(0), 0), "closed");
  });

  it("C++ rejects malformed batches and arguments on its own", () => {
    const raw = nativeBindingUnchecked();
    const handle = raw.conflictTableOpen(0);
    const out = () => [new Uint8Array(4), new Uint32Array(4), new Float64Array(4)] as const;
    const detect = (index: number[], taus: number[], bytes: number) =>
      raw.conflictTableDetect(
        handle,
        Uint32Array.from(index),
        Float64Array.from(taus),
        new Uint8Array(bytes),
        ...out(),
      );
    const m = conflict_batch_magic;
    const sh = conflict_key_shared_bit;
    detect([m, 1, 6, 3, 1, 3], [1], 3); // well formed: one txn, one 3-byte key
    throwsNative(() => detect([m + 1, 0, 4, 0], [], 0), "malformed");
    throwsNative(() => detect([m, 0, 4], [], 0), "malformed");
    throwsNative(() => detect([m, 1, 6, 3, 1, 3], [], 3), "malformed"); // no tau
    throwsNative(() => detect([m, 1, 6, 3, 1, 3], [1], 2), "malformed"); // bytes short
    throwsNative(() => detect([m, 1, 6, 3, 1, 4], [1], 4), "malformed"); // lengths disagree
    throwsNative(() => detect([m, 1, 6, 3, 2, 3], [1], 3), "malformed"); // count past index
    throwsNative(() => detect([m, 1, 7, 3, 1, 3], [1], 3), "malformed"); // index words past array
    throwsNative(() => detect([m, 1, 6, 3, 1, (sh | 0x7fffffff) >>> 0], [1], 3), "malformed");
    throwsNative(() => detect([m, 2, 6, 3, 1, 3], [1, 1], 3), "malformed"); // second txn missing
    throwsNative(() => detect([m, 0xffffffff, 4, 0], [], 0), "malformed");
    throwsNative(() => detect([m, 1, 6, 3, 1, 3], [1.5], 3), "out_of_range");
    throwsNative(() => detect([m, 1, 6, 3, 1, 3], [2 ** 60], 3), "out_of_range");
    throwsNative(
      () =>
        raw.conflictTableDetect(
          handle,
          Uint32Array.from([m, 1, 5, 0, 0]),
          Float64Array.of(1),
          new Uint8Array(0),
          new Uint8Array(0),
          new Uint32Array(1),
          new Float64Array(1),
        ),
      "out_of_range",
    );
    throwsNative(
      () =>
        raw.conflictTableDetect(
          {},
          new Uint32Array(4),
          new Float64Array(0),
          new Uint8Array(0),
          ...out(),
        ),
      "invalid_argument",
    );
    throwsNative(
      () =>
        raw.conflictTableDetect(
          handle,
          new Int32Array(4) as unknown as Uint32Array,
          new Float64Array(0),
          new Uint8Array(0),
          ...out(),
        ),
      "invalid_argument",
    );
    throwsNative(
      () => raw.conflictTableCommit(handle, Uint32Array.of(9), Float64Array.of(5), 1),
      "out_of_range",
    );
    throwsNative(
      () => raw.conflictTableCommit(handle, Uint32Array.of(0), Float64Array.of(1), 1),
      "out_of_range",
    );
    throwsNative(
      () => raw.conflictTableCommit(handle, Uint32Array.of(0), Float64Array.of(5), 2),
      "out_of_range",
    );
    throwsNative(
      () => raw.conflictTableCommit(handle, Uint32Array.of(0, 0), Float64Array.of(5, 6), 2),
      "out_of_range",
    );
    throwsNative(() => raw.conflictTableAbort(handle, Uint32Array.of(0), -1), "out_of_range");
    throwsNative(() => raw.conflictTableForget(handle, -1), "out_of_range");
    throwsNative(() => raw.conflictTableForget(handle, Number.POSITIVE_INFINITY), "out_of_range");
    throwsNative(
      () => (raw.conflictTableForget as (...a: unknown[]) => void)(handle),
      "invalid_argument",
    );
    throwsNative(() => raw.conflictTableState(handle, new Float64Array(2)), "out_of_range");
    throwsNative(() => raw.crossbarClose(handle), "invalid_argument"); // tags differ
    const summary = new Float64Array(3);
    raw.conflictTableState(handle, summary);
    assert.deepStrictEqual([...summary], [1, 1, 0], "rejected calls changed nothing");
    raw.conflictTableCommit(handle, Uint32Array.of(0), Float64Array.of(5), 1);
    raw.conflictTableState(handle, summary);
    assert.deepStrictEqual([...summary], [1, 0, 0]);
    raw.conflictTableClose(handle);
    raw.conflictTableClose(handle);
    throwsNative(() => raw.conflictTableState(handle, summary), "closed");
  });

  it("grows past many keys and forgets them all", () => {
    const tables = [new JsConflictTable(0), new NativeConflictTable(0)];
    const batch = new ConflictBatch();
    const key = new Uint8Array(12);
    const view = new DataView(key.buffer);
    for (const table of tables) {
      for (let round = 0; round < 20; round++) {
        batch.clear();
        for (let t = 0; t < 500; t++) {
          batch.addTransaction(round * 10 + 1);
          view.setUint32(0, round * 500 + t, true);
          view.setUint32(8, t % 7, true);
          batch.addKey(key, false);
        }
        table.register(batch);
      }
      assert.equal(table.keyCount, 10_000);
      table.forgetBefore(95);
      assert.equal(table.keyCount, 5_000);
      table.forgetBefore(1000);
      assert.equal(table.keyCount, 0);
      table.close();
    }
  });
});

describe("conflict table at scale: native and twin agree", () => {
  it("agrees across the inline key bound, out-of-order commits and arena compaction", () => {
    const tables: ConflictTable[] = [new JsConflictTable(0), new NativeConflictTable(0)];
    const batches = [new ConflictBatch(), new ConflictBatch()];
    // Lengths around the 31-byte inline bound; 1000-byte keys churn the
    // arena past its 1 MiB compaction floor.
    const lengths = [0, 1, 8, 15, 16, 17, 30, 31, 32, 33, 40, 40, 40, 1000];
    const key = new Uint8Array(1000);
    const view = new DataView(key.buffer);
    let now = 10;
    for (let round = 0; round < 120; round++) {
      const txns: TxnSpec[] = [];
      for (let t = 0; t < 64; t++) {
        const keys: TxnSpec["keys"] = [];
        for (let j = 0; j < 4; j++) {
          const length = lengths[(round * 64 + t * 4 + j) % lengths.length];
          key.fill(0x5a);
          const id = (round * 256 + t * 4 + j) % 9000;
          if (length >= 4) view.setUint32(length - 4, id, true);
          else for (let b = 0; b < length; b++) key[b] = (id >> (8 * b)) & 0xff;
          keys.push({ key: key.slice(0, length), shared: j === 3 });
        }
        txns.push({ tau: now, keys });
      }
      const answers = tables.map((table, i) => {
        table.detect(fill(batches[i], txns));
        return results(batches[i]);
      });
      assert.deepStrictEqual(answers[1], answers[0]);
      const tickets: number[] = [];
      for (const [verdict, ticket] of answers[0])
        if (verdict === ConflictVerdict.Approved) tickets.push(ticket);
      // Commit in reverse, with falling taus: history arrives out of tau order.
      tickets.reverse();
      const taus = Float64Array.from(tickets, (_, i) => now + 1 + tickets.length - i);
      for (const table of tables) {
        table.commitBatch(Uint32Array.from(tickets), taus, tickets.length);
        if (round % 5 === 4) table.forgetBefore(now - 30 + (round % 3));
      }
      now += 70;
      assert.deepStrictEqual(state(tables[1]), state(tables[0]));
    }
    for (const table of tables) table.forgetBefore(now);
    assert.deepStrictEqual(state(tables[1]), state(tables[0]));
    assert.equal(tables[0].keyCount, 0);
    for (const table of tables) table.close();
  });

  it("matches over thousands of keys with deletes, regrowth and forgetting", () => {
    let x = 0x9e3779b9;
    const rand = (n: number) => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x % n;
    };
    const tables: ConflictTable[] = [new JsConflictTable(0), new NativeConflictTable(0)];
    const batches = [new ConflictBatch(), new ConflictBatch()];
    const key = new Uint8Array(3);
    const inFlight: number[] = [];
    let now = 10;
    for (let round = 0; round < 200; round++) {
      const txns: TxnSpec[] = [];
      for (let t = 0; t < 64; t++) {
        const keys: TxnSpec["keys"] = [];
        for (let j = 0; j < 5; j++) {
          const id = rand(6000);
          key[0] = id & 0xff;
          key[1] = id >> 8;
          key[2] = rand(2);
          keys.push({ key: key.slice(), shared: rand(8) === 0 });
        }
        txns.push({ tau: now - rand(5), keys });
      }
      const answers = tables.map((table, i) => {
        table.detect(fill(batches[i], txns));
        return results(batches[i]);
      });
      assert.deepStrictEqual(answers[1], answers[0]);
      for (const [verdict, ticket] of answers[0])
        if (verdict === ConflictVerdict.Approved) inFlight.push(ticket);
      const settle = inFlight.splice(0, Math.floor(inFlight.length * 0.8));
      const aborts = Uint32Array.from(settle.filter((_, i) => i % 5 === 0));
      const commits = Uint32Array.from(settle.filter((_, i) => i % 5 !== 0));
      const taus = new Float64Array(commits.length).fill(now + 1);
      for (const table of tables) {
        table.abortBatch(aborts, aborts.length);
        table.commitBatch(commits, taus, commits.length);
        if (round % 7 === 6) table.forgetBefore(now - 20);
      }
      now += 2;
      assert.deepStrictEqual(state(tables[1]), state(tables[0]));
    }
    assert.ok(tables[0].keyCount > 1000);
    for (const table of tables) table.close();
  });
});
