/**
 * Unit tests for src/crossbar/merge.ts, run against both engines: merge order
 * by (tau, journal id), the global watermark as the release bound (DESIGN §3
 * invariant 3), routing at key-range boundaries, bounded buffers that overflow
 * without blocking others, and rejection of malformed or out-of-order batches.
 */
import assert from "node:assert/strict";
import {
  CrossbarMerge,
  decodeEntries,
  encodeBatch,
  rangeContains,
  type CrossbarRecord,
  type EngineKind,
  type SubscriberConfig,
} from "../../src/crossbar";

const engines: EngineKind[] = ["native", "js"];
const buffer_large_bytes = 1 << 20;
const unbounded = new Uint8Array(0);

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function text(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

function rec(tau: number, ...keys: Uint8Array[]): CrossbarRecord {
  return { tau, txn: tau * 10, writes: keys.map((key) => ({ key, payload: bytes(tau & 0xff) })) };
}

/** Everything: one catch-all subscriber. */
const all: SubscriberConfig = {
  ranges: [[unbounded, unbounded]],
  bufferBytesMax: buffer_large_bytes,
};

function releasedOrder(merge: CrossbarMerge): [number, number][] {
  const order: [number, number][] = [];
  for (;;) {
    const summary = merge.release(1);
    if (summary.released === 0) return order;
    order.push([summary.lastTau, summary.lastJournal]);
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return String((error as { code?: unknown }).code);
  }
  return "none";
}

for (const engine of engines) {
  describe(`CrossbarMerge (${engine})`, () => {
    let merge: CrossbarMerge;
    afterEach(() => merge?.close());

    function open(journals: number, subscribers: SubscriberConfig[] = [all]): CrossbarMerge {
      merge = new CrossbarMerge({ journals, subscribers, engine });
      assert.equal(merge.engine, engine);
      return merge;
    }

    it("merges by (tau, journal id), equal taus broken by journal id", () => {
      open(3);
      merge.pushBatch(
        2,
        encodeBatch([rec(1, text("a")), rec(5, text("a")), rec(7, text("a"))]),
        10,
      );
      merge.pushBatch(0, encodeBatch([rec(5, text("a")), rec(7, text("a"))]), 10);
      merge.pushBatch(
        1,
        encodeBatch([rec(1, text("a")), rec(2, text("a")), rec(7, text("a"))]),
        10,
      );
      assert.equal(merge.globalWatermark, 10);
      assert.deepEqual(releasedOrder(merge), [
        [1, 1],
        [1, 2],
        [2, 1],
        [5, 0],
        [5, 2],
        [7, 0],
        [7, 1],
        [7, 2],
      ]);
      const entries = decodeEntries(merge.drain(0));
      assert.deepEqual(
        entries.map((e) => [e.tau, e.journal, e.txn]),
        [
          [1, 1, 10],
          [1, 2, 10],
          [2, 1, 20],
          [5, 0, 50],
          [5, 2, 50],
          [7, 0, 70],
          [7, 1, 70],
          [7, 2, 70],
        ],
      );
    });

    it("releases nothing above the global watermark", () => {
      open(2);
      merge.pushBatch(0, encodeBatch([rec(3), rec(6), rec(9)]));
      merge.pushBatch(1, encodeBatch([rec(4)]), 5);
      // W_0 = 9 (records advance it), W_1 = 5: global 5.
      assert.equal(merge.globalWatermark, 5);
      const summary = merge.release();
      assert.equal(summary.released, 2);
      assert.equal(summary.lastTau, 4);
      assert.equal(summary.pendingRecords, 2);
      assert.equal(summary.globalWatermark, 5);
      merge.advanceWatermark(1, 6);
      assert.deepEqual(releasedOrder(merge), [[6, 0]]);
      merge.advanceWatermark(1, 100);
      assert.deepEqual(releasedOrder(merge), [[9, 0]]);
    });

    it("a journal without a watermark, or one that does not move, holds everything back", () => {
      open(3);
      merge.pushBatch(0, encodeBatch([rec(1), rec(2)]), 50);
      merge.pushBatch(1, encodeBatch([rec(1)]), 50);
      assert.equal(merge.globalWatermark, -1);
      assert.equal(merge.release().released, 0);
      merge.advanceWatermark(2, 0);
      assert.equal(merge.release().released, 0);
      merge.advanceWatermark(2, 0); // does not move
      merge.pushBatch(2, encodeBatch([]), 0);
      merge.advanceWatermark(2, -1); // lower: no change
      assert.equal(merge.globalWatermark, 0);
      assert.equal(merge.release().released, 0);
      assert.equal(merge.release().pendingRecords, 3);
    });

    it("an idle journal whose watermark advances lets the others through", () => {
      open(2);
      merge.pushBatch(0, encodeBatch([rec(10), rec(20), rec(30)]));
      assert.equal(merge.release().released, 0);
      merge.advanceWatermark(1, 25); // heartbeat of an idle journal
      assert.deepEqual(releasedOrder(merge), [
        [10, 0],
        [20, 0],
      ]);
      merge.pushBatch(1, encodeBatch([rec(26)]), 40);
      assert.deepEqual(releasedOrder(merge), [
        [26, 1],
        [30, 0],
      ]);
    });

    it("routes at range boundaries: lo inclusive, hi exclusive, empty key, 0xff keys", () => {
      open(1, [
        { ranges: [[bytes(), bytes(0x10)]], bufferBytesMax: buffer_large_bytes }, // [ "", 0x10 )
        { ranges: [[bytes(0x10), bytes(0xff)]], bufferBytesMax: buffer_large_bytes }, // [0x10, 0xff)
        { ranges: [[bytes(0xff), unbounded]], bufferBytesMax: buffer_large_bytes }, // [0xff, inf)
        {
          ranges: [
            [bytes(0x05), bytes(0x06)],
            [bytes(0xff, 0xff), bytes(0xff, 0xff, 0x00)],
          ],
          bufferBytesMax: buffer_large_bytes,
        },
      ]);
      const keys = [
        bytes(),
        bytes(0x00),
        bytes(0x05),
        bytes(0x05, 0xff),
        bytes(0x06),
        bytes(0x0f, 0xff, 0xff),
        bytes(0x10),
        bytes(0xfe, 0xff),
        bytes(0xff),
        bytes(0xff, 0xff),
        bytes(0xff, 0xff, 0x00),
      ];
      merge.pushBatch(0, encodeBatch([rec(1, ...keys), rec(2, bytes(0x20))]), 2);
      assert.equal(merge.release().released, 2);
      const got = [0, 1, 2, 3].map((s) => decodeEntries(merge.drain(s)));
      const keysOf = (s: number, i: number): number[][] => got[s][i].writes.map((w) => [...w.key]);
      assert.deepEqual(keysOf(0, 0), [
        [],
        [0x00],
        [0x05],
        [0x05, 0xff],
        [0x06],
        [0x0f, 0xff, 0xff],
      ]);
      assert.equal(got[0].length, 1);
      assert.deepEqual(keysOf(1, 0), [[0x10], [0xfe, 0xff]]);
      assert.deepEqual(keysOf(1, 1), [[0x20]]);
      assert.deepEqual(keysOf(2, 0), [[0xff], [0xff, 0xff], [0xff, 0xff, 0x00]]);
      assert.equal(got[2].length, 1);
      assert.deepEqual(keysOf(3, 0), [[0x05], [0x05, 0xff], [0xff, 0xff]]);
      // Payloads travel with their keys.
      assert.deepEqual([...got[1][1].writes[0].payload], [2]);
    });

    it("routes one-write records like the rest, bounds sharing a first byte included", () => {
      const subscribers: SubscriberConfig[] = [
        { ranges: [[bytes(), bytes(0x10)]], bufferBytesMax: buffer_large_bytes },
        { ranges: [[bytes(0x40), bytes(0x40, 0x01)]], bufferBytesMax: buffer_large_bytes },
        {
          ranges: [
            [bytes(0x40, 0x01), bytes(0x40, 0x80)],
            [bytes(0xff, 0xff), unbounded],
          ],
          bufferBytesMax: buffer_large_bytes,
        },
        { ranges: [[bytes(0x40, 0x80, 0x00), bytes(0x41)]], bufferBytesMax: buffer_large_bytes },
      ];
      open(1, subscribers);
      const keys = [
        bytes(),
        bytes(0x0f, 0xff),
        bytes(0x10),
        bytes(0x3f, 0xff),
        bytes(0x40),
        bytes(0x40, 0x00),
        bytes(0x40, 0x01),
        bytes(0x40, 0x7f, 0xff),
        bytes(0x40, 0x80),
        bytes(0x40, 0x80, 0x00),
        bytes(0x40, 0xff),
        bytes(0x41),
        bytes(0xff),
        bytes(0xff, 0xff),
        bytes(0xff, 0xff, 0xff),
      ];
      merge.pushBatch(0, encodeBatch(keys.map((key, i) => rec(i + 1, key))), keys.length);
      assert.equal(merge.release().released, keys.length);
      subscribers.forEach((subscriber, s) => {
        const expected = keys
          .filter((key) => subscriber.ranges.some((range) => rangeContains(range, key)))
          .map((key) => [...key]);
        const got = decodeEntries(merge.drain(s)).map((entry) => {
          assert.equal(entry.writes.length, 1);
          return [...entry.writes[0].key];
        });
        assert.deepEqual(got, expected, `subscriber ${s}`);
      });
    });

    it("a full buffer overflows that subscriber only; the others keep receiving", () => {
      // One record with one 1-byte key and 1-byte payload encodes as 32 + 8 + 2 = 42 bytes.
      open(2, [
        { ranges: [[unbounded, unbounded]], bufferBytesMax: 100 },
        { ranges: [[unbounded, unbounded]], bufferBytesMax: buffer_large_bytes },
        { ranges: [[unbounded, unbounded]], bufferBytesMax: 84 }, // exactly two entries
      ]);
      merge.pushBatch(0, encodeBatch([1, 3, 5].map((t) => rec(t, text("k")))), 10);
      merge.pushBatch(1, encodeBatch([2, 4].map((t) => rec(t, text("k")))), 10);
      const summary = merge.release();
      assert.equal(summary.released, 5);
      assert.equal(summary.newlyOverflowed, 2);
      assert.deepEqual(merge.overflows(), [
        { subscriber: 0, tau: 3, journal: 0 },
        { subscriber: 2, tau: 3, journal: 0 },
      ]);
      assert.equal(merge.subscriberState(2).bufferedBytes, 84);
      assert.deepEqual(
        decodeEntries(merge.drain(0)).map((e) => e.tau),
        [1, 2],
      );
      assert.deepEqual(
        decodeEntries(merge.drain(1)).map((e) => e.tau),
        [1, 2, 3, 4, 5],
      );
      // Draining does not resume an overflowed subscriber; resetSubscriber does.
      merge.pushBatch(0, encodeBatch([rec(11, text("k"))]), 20);
      merge.advanceWatermark(1, 20);
      merge.release();
      assert.equal(merge.subscriberState(0).bufferedBytes, 0);
      merge.resetSubscriber(0);
      assert.deepEqual(merge.overflows(), [{ subscriber: 2, tau: 3, journal: 0 }]);
      merge.resetSubscriber(2);
      assert.deepEqual(merge.overflows(), []);
      merge.pushBatch(0, encodeBatch([rec(21, text("k"))]), 30);
      merge.advanceWatermark(1, 30);
      merge.release();
      assert.deepEqual(
        decodeEntries(merge.drain(0)).map((e) => e.tau),
        [21],
      );
    });

    it("drainInto moves whole entries only", () => {
      open(1);
      merge.pushBatch(0, encodeBatch([rec(1, text("k")), rec(2, text("k"))]), 2);
      merge.release();
      const out = new Uint8Array(60);
      assert.equal(merge.drainInto(0, out), 42);
      assert.equal(merge.drainInto(0, new Uint8Array(41)), 0);
      assert.equal(merge.drainInto(0, out), 42);
      assert.equal(decodeEntries(out.subarray(0, 42))[0].tau, 2);
      assert.equal(merge.drainInto(0, out), 0);
    });

    it("rejects malformed and out-of-order batches, changing nothing", () => {
      open(1);
      const good = encodeBatch([rec(5, text("a")), rec(6, text("b"))]);
      assert.equal(
        codeOf(() => merge.pushBatch(0, good.subarray(0, good.length - 1))),
        "malformed",
      );
      assert.equal(
        codeOf(() => merge.pushBatch(0, new Uint8Array(0))),
        "malformed",
      );
      const badMagic = good.slice();
      badMagic[0] ^= 1;
      assert.equal(
        codeOf(() => merge.pushBatch(0, badMagic)),
        "malformed",
      );
      const trailing = new Uint8Array(good.length + 1);
      trailing.set(good);
      assert.equal(
        codeOf(() => merge.pushBatch(0, trailing)),
        "malformed",
      );
      const badCount = good.slice();
      badCount[4] = 3;
      assert.equal(
        codeOf(() => merge.pushBatch(0, badCount)),
        "malformed",
      );
      const badKeyLength = good.slice();
      new DataView(badKeyLength.buffer).setUint32(8 + 24, 0xffffffff, true);
      assert.equal(
        codeOf(() => merge.pushBatch(0, badKeyLength)),
        "malformed",
      );
      const hugeTau = good.slice();
      new DataView(hugeTau.buffer).setUint32(8 + 12, 0x00200000, true); // tau >= 2^53
      assert.equal(
        codeOf(() => merge.pushBatch(0, hugeTau)),
        "malformed",
      );
      assert.equal(
        codeOf(() => merge.pushBatch(0, encodeBatch([rec(6), rec(6)]))),
        "out_of_order",
      );
      assert.equal(
        codeOf(() => merge.pushBatch(0, encodeBatch([rec(7), rec(6)]))),
        "out_of_order",
      );
      assert.equal(merge.release().pendingRecords, 0);
      merge.pushBatch(0, good, 6);
      // At or below the journal's watermark breaks its promise.
      assert.equal(
        codeOf(() => merge.pushBatch(0, encodeBatch([rec(6)]))),
        "out_of_order",
      );
      merge.advanceWatermark(0, 8);
      assert.equal(
        codeOf(() => merge.pushBatch(0, encodeBatch([rec(8)]))),
        "out_of_order",
      );
      assert.deepEqual(releasedOrder(merge), [
        [5, 0],
        [6, 0],
      ]);
    });

    it("checks arguments before the engine sees them", () => {
      open(2);
      assert.throws(() => merge.pushBatch(2, encodeBatch([])), RangeError);
      assert.throws(() => merge.pushBatch(-1, encodeBatch([])), RangeError);
      assert.throws(() => merge.pushBatch(0, [] as unknown as Uint8Array), TypeError);
      assert.throws(() => merge.pushBatch(0, encodeBatch([]), -2), RangeError);
      assert.throws(() => merge.pushBatch(0, encodeBatch([]), 2 ** 53), RangeError);
      assert.throws(() => merge.advanceWatermark(0, 1.5), RangeError);
      assert.throws(() => merge.release(-1), RangeError);
      assert.throws(() => merge.drain(1), RangeError);
      assert.throws(
        () => merge.drainInto(0, new Uint16Array(4) as unknown as Uint8Array),
        TypeError,
      );
      assert.throws(() => new CrossbarMerge({ journals: 0, subscribers: [], engine }), RangeError);
      assert.throws(
        () =>
          new CrossbarMerge({
            journals: 1,
            subscribers: [{ ranges: [[bytes(2), bytes(1)]], bufferBytesMax: 1 }],
            engine,
          }),
        RangeError,
      );
    });

    it("throws code closed after close; closing twice is fine", () => {
      open(1);
      merge.close();
      merge.close();
      assert.equal(
        codeOf(() => merge.release()),
        "closed",
      );
      assert.equal(
        codeOf(() => merge.pushBatch(0, encodeBatch([]))),
        "closed",
      );
      assert.equal(
        codeOf(() => merge.globalWatermark),
        "closed",
      );
      assert.equal(
        codeOf(() => merge.drain(0)),
        "closed",
      );
    });

    it("handles 64+ journals", () => {
      const journals = 67;
      open(journals);
      for (let j = journals - 1; j >= 0; j--) {
        merge.pushBatch(j, encodeBatch([rec(j % 5), rec(100 - j)]), 200);
      }
      const order = releasedOrder(merge);
      assert.equal(order.length, 2 * journals);
      const sorted = [...order].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      assert.deepEqual(order, sorted);
    });
  });
}
