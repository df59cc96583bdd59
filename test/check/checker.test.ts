/**
 * Tests for src/check/checker.ts: one hand-built history per anomaly class,
 * each caught under the right class and naming the right transactions, and
 * valid histories (with fail and info transactions) that pass.
 */
import { strict as assert } from "node:assert";
import { checkHistory, type Anomaly, type CheckResult } from "../../src/check";
import { a, HistoryBuilder, r } from "./history-builder";

function only(result: CheckResult, cls: string): Anomaly {
  const found = result.anomalies.filter((x) => x.class === cls);
  assert.equal(found.length, 1, `expected one ${cls}, got ${JSON.stringify(result.counts)}`);
  return found[0];
}

function names(x: Anomaly): string[] {
  return x.txns.map((t) => t.name).sort();
}

function cycleNames(x: Anomaly): string[] {
  assert.ok(x.cycle, "a cycle anomaly carries its cycle");
  for (let i = 0; i < x.cycle.length; i++) {
    assert.equal(x.cycle[i].to, x.cycle[(i + 1) % x.cycle.length].from, "edges chain into a cycle");
  }
  return x.cycle.map((s) => s.from).sort();
}

describe("checkHistory: valid histories", () => {
  it("passes a serial history and counts its transactions", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1), r("x", [1])]);
    h.txn(1, [r("x", [1]), a("x", 2), a("y", 1)]);
    h.txn(0, [r("x", [1, 2]), r("y", [1])]);
    const res = checkHistory(h.ops);
    assert.deepEqual(res.anomalies, []);
    assert.equal(res.valid, true);
    assert.deepEqual(res.stats, { ok: 3, fail: 0, info: 0, txns: 3 });
  });

  it("passes with a failed txn nobody read and an info txn whose append was never seen", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1)]);
    h.txn(1, [a("x", 2)], "fail");
    h.txn(2, [a("x", 3), r("y", null)], "info");
    h.txn(3, [r("x", [1]), a("x", 4)]);
    h.txn(0, [r("x", [1, 4])]);
    const res = checkHistory(h.ops);
    assert.deepEqual(res.anomalies, []);
    assert.deepEqual(res.stats, { ok: 3, fail: 1, info: 1, txns: 5 });
  });

  it("treats an info txn whose append was read as committed, and finds it consistent", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1)]);
    h.txn(1, [a("x", 2), a("y", 7)], "info");
    h.txn(2, [r("x", [1, 2]), r("y", [7]), a("x", 3)]);
    h.txn(0, [r("x", [1, 2, 3])]);
    assert.equal(checkHistory(h.ops).valid, true);
  });

  it("uses an observed info txn in the graph: a cycle through it is caught", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1)]);
    const info = h.txn(1, [a("x", 2), a("y", 7)], "info");
    // reads y before the info txn's append but x after it: read skew
    const reader = h.txn(2, [r("x", [1, 2]), r("y", [])]);
    h.txn(3, [r("y", [7])]);
    const g = only(checkHistory(h.ops), "G-single");
    assert.deepEqual(cycleNames(g), [info, reader].sort());
  });

  it("treats an unfinished invoke as info", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1)]);
    h.invoke(1, [a("x", 2)]);
    h.txn(2, [r("x", [1, 2])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, true);
    assert.equal(res.stats.info, 1);
  });

  it("ignores operations that are not transactions", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1)]);
    h.ops.push({ index: 2, process: "nemesis", type: "info", f: "kill", value: null });
    h.txn(0, [r("x", [1])]);
    assert.equal(checkHistory(h.ops).valid, true);
  });
});

describe("checkHistory: anomalies", () => {
  it("G0: write cycle", () => {
    const h = new HistoryBuilder();
    const t1 = h.txn(0, [a("x", 1), a("y", 1)]);
    const t2 = h.txn(1, [a("x", 2), a("y", 2)]);
    h.txn(2, [r("x", [1, 2]), r("y", [2, 1])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, false);
    const g0 = only(res, "G0");
    assert.deepEqual(cycleNames(g0), [t1, t2].sort());
    assert.ok(g0.cycle!.every((s) => s.type === "ww"));
  });

  it("G1a: aborted read", () => {
    const h = new HistoryBuilder();
    const failed = h.txn(0, [a("x", 1)], "fail");
    const reader = h.txn(1, [r("x", [1])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, false);
    assert.deepEqual(names(only(res, "G1a")), [failed, reader].sort());
  });

  it("an info txn's unseen write cannot make a G1a", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1)], "info");
    h.txn(1, [r("x", [])]);
    assert.deepEqual(checkHistory(h.ops).anomalies, []);
  });

  it("G1b: intermediate read", () => {
    const h = new HistoryBuilder();
    const writer = h.txn(0, [a("x", 1), a("x", 2)]);
    const reader = h.txn(1, [r("x", [1])]);
    h.txn(2, [r("x", [1, 2])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, false);
    assert.deepEqual(names(only(res, "G1b")), [writer, reader].sort());
  });

  it("G1c: circular information flow", () => {
    const h = new HistoryBuilder();
    h.invoke(0, [a("x", 1), r("y", null)]);
    h.invoke(1, [a("y", 2), r("x", null)]);
    const t1 = h.complete(0, "ok", [a("x", 1), r("y", [2])]);
    const t2 = h.complete(1, "ok", [a("y", 2), r("x", [1])]);
    const g = only(checkHistory(h.ops), "G1c");
    assert.deepEqual(cycleNames(g), [t1, t2].sort());
    assert.ok(g.cycle!.every((s) => s.type === "wr"));
    assert.match(
      g.cycle![0].explanation,
      /read key "[xy]" = \[[12]\], which includes T\d+'s append of [12]/,
    );
  });

  it("G-single: read skew", () => {
    const h = new HistoryBuilder();
    h.invoke(1, [r("x", null), r("y", null)]);
    const writer = h.txn(0, [a("x", 1), a("y", 1)]);
    const reader = h.complete(1, "ok", [r("x", []), r("y", [1])]);
    h.txn(2, [r("x", [1])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, false);
    assert.deepEqual(Object.keys(res.counts), ["G-single"]);
    const g = only(res, "G-single");
    assert.deepEqual(cycleNames(g), [writer, reader].sort());
    assert.deepEqual(g.cycle!.map((s) => s.type).sort(), ["rw", "wr"]);
    const rw = g.cycle!.find((s) => s.type === "rw")!;
    assert.equal(rw.from, reader);
    assert.equal(rw.key, "x");
    assert.equal(rw.value, 1);
  });

  it("lost update: two txns read one version and both append", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1)]);
    h.invoke(1, [r("x", null), a("x", 2)]);
    h.invoke(2, [r("x", null), a("x", 3)]);
    const t1 = h.complete(1, "ok", [r("x", [1]), a("x", 2)]);
    const t2 = h.complete(2, "ok", [r("x", [1]), a("x", 3)]);
    h.txn(0, [r("x", [1, 2, 3])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, false);
    const lu = only(res, "lost-update");
    assert.deepEqual(names(lu), [t1, t2].sort());
    assert.equal(lu.key, "x");
    assert.deepEqual(cycleNames(only(res, "G-single")), [t1, t2].sort());
  });

  it("G-nonadjacent: long fork", () => {
    const h = new HistoryBuilder();
    h.invoke(2, [r("x", null), r("y", null)]);
    h.invoke(3, [r("y", null), r("x", null)]);
    const wx = h.txn(0, [a("x", 1)]);
    const wy = h.txn(1, [a("y", 1)]);
    const r1 = h.complete(2, "ok", [r("x", [1]), r("y", [])]);
    const r2 = h.complete(3, "ok", [r("y", [1]), r("x", [])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, false);
    const g = only(res, "G-nonadjacent");
    assert.deepEqual(cycleNames(g), [wx, wy, r1, r2].sort());
    assert.equal(g.cycle!.filter((s) => s.type === "rw").length, 2);
    assert.deepEqual(Object.keys(res.counts), ["G-nonadjacent"]);
  });

  it("G2-item: write skew is reported but allowed under SI", () => {
    const h = new HistoryBuilder();
    h.invoke(0, [r("x", null), r("y", null), a("x", 1)]);
    h.invoke(1, [r("x", null), r("y", null), a("y", 2)]);
    const t1 = h.complete(0, "ok", [r("x", []), r("y", []), a("x", 1)]);
    const t2 = h.complete(1, "ok", [r("x", []), r("y", []), a("y", 2)]);
    h.txn(2, [r("x", [1]), r("y", [2])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, true);
    const g = only(res, "G2-item");
    assert.equal(g.forbidden, false);
    assert.deepEqual(cycleNames(g), [t1, t2].sort());
    assert.deepEqual(
      g.cycle!.map((s) => s.type),
      ["rw", "rw"],
    );
    assert.deepEqual(Object.keys(res.counts), ["G2-item"]);
  });

  it("internal: a read that misses the txn's own append", () => {
    const h = new HistoryBuilder();
    const t = h.txn(0, [a("x", 5), r("x", [])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, false);
    assert.deepEqual(names(only(res, "internal")), [t]);
  });

  it("internal: a second read that changed without the txn writing", () => {
    const h = new HistoryBuilder();
    h.txn(1, [a("x", 1)]);
    const t = h.txn(0, [r("x", []), r("x", [1])]);
    assert.deepEqual(names(only(checkHistory(h.ops), "internal")), [t]);
  });

  it("incompatible order: reads that are not prefixes of one another", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1)]);
    h.txn(1, [a("x", 2)]);
    const t3 = h.txn(2, [r("x", [1, 2])]);
    const t4 = h.txn(3, [r("x", [2, 1])]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, false);
    assert.deepEqual(names(only(res, "incompatible-order")), [t3, t4].sort());
  });

  it("duplicate: an element read twice", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a("x", 1)]);
    const t = h.txn(1, [r("x", [1, 1])]);
    assert.deepEqual(names(only(checkHistory(h.ops), "duplicate")), [t]);
  });

  it("garbage read: an element nobody appended", () => {
    const h = new HistoryBuilder();
    const t = h.txn(1, [r("x", [9])]);
    assert.deepEqual(names(only(checkHistory(h.ops), "garbage-read")), [t]);
  });

  it("malformed: the same value appended twice to one key", () => {
    const h = new HistoryBuilder();
    const t1 = h.txn(0, [a("x", 1)]);
    const t2 = h.txn(1, [a("x", 1)]);
    const res = checkHistory(h.ops);
    assert.equal(res.valid, false);
    assert.deepEqual(names(only(res, "malformed")), [t1, t2].sort());
  });

  it("malformed: a completion without an invocation, an ok that differs from its invoke", () => {
    const h = new HistoryBuilder();
    h.ops.push({ index: 0, process: 4, type: "ok", f: "txn", value: [a("x", 1)] });
    h.invoke(0, [a("x", 2)]);
    h.complete(0, "ok", [a("x", 3)]);
    const res = checkHistory(h.ops);
    assert.equal(res.counts.malformed, 2);
    assert.equal(res.valid, false);
  });

  it("realtime: a stale read after a completed write is G-single-realtime only with the option", () => {
    const h = new HistoryBuilder();
    const w = h.txn(0, [a("x", 1)]);
    const rd = h.txn(1, [r("x", [])]);
    h.txn(2, [r("x", [1])]);
    assert.equal(checkHistory(h.ops).valid, true);
    const res = checkHistory(h.ops, { realtime: true });
    assert.equal(res.valid, false);
    const g = only(res, "G-single-realtime");
    assert.deepEqual(cycleNames(g), [w, rd].sort());
    assert.deepEqual(g.cycle!.map((s) => s.type).sort(), ["rt", "rw"]);
  });

  it("finds the one anomaly after a long valid prefix", () => {
    const h = new HistoryBuilder();
    for (let i = 0; i < 200; i++)
      h.txn(i % 5, [
        a("k", i),
        r(
          "k",
          Array.from({ length: i + 1 }, (_, j) => j),
        ),
      ]);
    h.txn(7, [
      r(
        "k",
        Array.from({ length: 199 }, (_, j) => j),
      ),
    ]);
    h.txn(8, [a("z", 1)], "fail");
    h.txn(9, [r("z", [1])]);
    const res = checkHistory(h.ops);
    assert.deepEqual(Object.keys(res.counts), ["G1a"]);
  });
});
