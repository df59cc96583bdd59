/**
 * Tests for src/adjudicator: the snapshot-isolation cases one by one, the
 * history horizon, the limits, and a property test that replays random
 * schedules against a brute-force model that keeps every commit and checks
 * each new transaction against all of them directly. Every case runs on both
 * conflict table engines, the native one and the TypeScript twin.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  Adjudicator,
  AdjudicatorError,
  write_set_bytes_max,
  write_set_rows_max,
} from "../../src/adjudicator";
import type { AdjudicatorOptions, ConflictEngine, Decision, Ticket } from "../../src/adjudicator";
import { WriteKind } from "../../src/protocol";
import type { Write } from "../../src/protocol";
import { del, ins, share, upd, write } from "../support/commits";

const engines: readonly ConflictEngine[] = ["js", "native"];
let engine: ConflictEngine = "js";

function newAdjudicator(options: AdjudicatorOptions = {}): Adjudicator {
  const adjudicator = new Adjudicator({ engine, ...options });
  assert.equal(adjudicator.engine, engine);
  return adjudicator;
}

function approve(adjudicator: Adjudicator, tauStart: number, writes: Write[]): Ticket {
  const decision = adjudicator.adjudicate({ tauStart, writes });
  assert.ok(decision.approved, `expected approval, got ${JSON.stringify(decision)}`);
  return decision.ticket;
}

/** `conflictTau`: the commit the loser must see before its retry (0: one still in flight). */
function expectConflict(decision: Decision, pattern: RegExp, conflictTau?: number): void {
  assert.ok(!decision.approved, "expected a conflict");
  assert.equal(decision.verdict, "conflict");
  assert.match(decision.detail, pattern);
  if (conflictTau !== undefined) assert.equal(decision.conflictTau, conflictTau);
}

for (const each of engines) {
  describe(`adjudicator (${each})`, () => {
    before(() => {
      engine = each;
    });

    it("second concurrent writer of a key loses while the first is in flight", () => {
      const adj = newAdjudicator();
      approve(adj, 100, [upd("k")]);
      expectConflict(
        adj.adjudicate({ tauStart: 100, writes: [upd("k")] }),
        /concurrent transaction/,
        0,
      );
    });

    it("second writer loses after the first committed past its snapshot", () => {
      const adj = newAdjudicator();
      const first = approve(adj, 100, [upd("k")]);
      adj.confirm(first, 150);
      expectConflict(
        adj.adjudicate({ tauStart: 120, writes: [del("k")] }),
        /later commit.*150 > tau_start 120/,
        150,
      );
    });

    it("a commit before tau_start is no conflict; one after tau_start is", () => {
      const adj = newAdjudicator();
      adj.confirm(approve(adj, 100, [ins("k")]), 150);
      approve(adj, 150, [upd("k")]); // commit at 150 is in the snapshot taken at 150
      const adj2 = newAdjudicator();
      adj2.confirm(approve(adj2, 100, [ins("k")]), 150);
      expectConflict(adj2.adjudicate({ tauStart: 149, writes: [upd("k")] }), /later commit/);
    });

    it("transactions on disjoint keys both commit", () => {
      const adj = newAdjudicator();
      const a = approve(adj, 100, [upd("a"), ins("c")]);
      const b = approve(adj, 100, [upd("b"), del("d")]);
      adj.confirm(a, 110);
      adj.confirm(b, 111);
      approve(adj, 111, [upd("a"), upd("b")]);
    });

    it("shared locks do not conflict with each other", () => {
      const adj = newAdjudicator();
      const a = approve(adj, 100, [share("parent"), ins("child1")]);
      approve(adj, 100, [share("parent"), ins("child2")]);
      adj.confirm(a, 120);
      approve(adj, 100, [share("parent"), ins("child3")]);
    });

    it("a shared lock conflicts with a write of the key, in both orders", () => {
      // shared first (in flight, then committed), write second
      const adj = newAdjudicator();
      const s = approve(adj, 100, [share("parent"), ins("child")]);
      expectConflict(
        adj.adjudicate({ tauStart: 100, writes: [del("parent")] }),
        /locked shared by a concurrent/,
      );
      adj.confirm(s, 130);
      expectConflict(
        adj.adjudicate({ tauStart: 110, writes: [del("parent")] }),
        /locked shared by a later commit/,
        130,
      );
      approve(adj, 130, [del("parent")]);

      // write first (in flight, then committed), shared second
      const adj2 = newAdjudicator();
      const w = approve(adj2, 100, [del("parent")]);
      expectConflict(
        adj2.adjudicate({ tauStart: 100, writes: [share("parent")] }),
        /written by a concurrent/,
      );
      adj2.confirm(w, 130);
      expectConflict(
        adj2.adjudicate({ tauStart: 110, writes: [share("parent")] }),
        /written by a later/,
      );
      approve(adj2, 130, [share("parent")]);
    });

    it("unique-key and lock writes are written keys", () => {
      const adj = newAdjudicator();
      approve(adj, 100, [write(WriteKind.UniqueKey, "email=x")]);
      expectConflict(
        adj.adjudicate({ tauStart: 100, writes: [write(WriteKind.UniqueKey, "email=x")] }),
        /concurrent/,
      );
      approve(adj, 100, [write(WriteKind.Lock, "row")]);
      expectConflict(adj.adjudicate({ tauStart: 100, writes: [share("row")] }), /concurrent/);
    });

    it("a key both written and shared by one transaction counts as written", () => {
      const adj = newAdjudicator();
      const t = approve(adj, 100, [share("k"), upd("k"), share("k")]);
      assert.equal(t.keys.written.length, 1);
      assert.equal(t.keys.shared.length, 0);
      expectConflict(
        adj.adjudicate({ tauStart: 100, writes: [share("k")] }),
        /written by a concurrent/,
      );
    });

    it("abandon frees the keys without recording a commit", () => {
      const adj = newAdjudicator();
      const t = approve(adj, 100, [upd("k"), share("s")]);
      adj.abandon(t);
      assert.equal(adj.inFlightCount, 0);
      assert.equal(adj.keyCount, 0);
      approve(adj, 50, [upd("k"), upd("s")]);
      assert.throws(
        () => adj.abandon(t),
        (e: unknown) => e instanceof AdjudicatorError && e.code === "unknown_ticket",
      );
      assert.throws(
        () => adj.confirm(t, 200),
        (e: unknown) => e instanceof AdjudicatorError && e.code === "unknown_ticket",
      );
    });

    it("refuses a tau_commit that is not after tau_start", () => {
      const adj = newAdjudicator();
      const t = approve(adj, 100, [upd("k")]);
      assert.throws(
        () => adj.confirm(t, 100),
        (e: unknown) => e instanceof AdjudicatorError && e.code === "invalid_tau",
      );
    });

    it("forgets history at or below the horizon and rejects older snapshots", () => {
      const adj = newAdjudicator();
      adj.confirm(approve(adj, 100, [upd("old")]), 200);
      adj.confirm(approve(adj, 100, [upd("new")]), 400);
      adj.forgetBefore(300);
      assert.equal(adj.keyCount, 1, "only the commit above the horizon is kept");
      expectConflict(
        adj.adjudicate({ tauStart: 299, writes: [upd("x")] }),
        /snapshot too old.*299.*300/,
      );
      approve(adj, 300, [upd("old")]);
      expectConflict(adj.adjudicate({ tauStart: 350, writes: [upd("new")] }), /later commit/);
      assert.throws(
        () => adj.forgetBefore(250),
        (e: unknown) => e instanceof AdjudicatorError && e.code === "horizon_backwards",
      );
    });

    it("keeps in-flight keys across forgetting", () => {
      const adj = newAdjudicator();
      const t = approve(adj, 100, [upd("k")]);
      adj.forgetBefore(1000);
      expectConflict(adj.adjudicate({ tauStart: 1000, writes: [upd("k")] }), /concurrent/);
      adj.confirm(t, 1001);
      expectConflict(adj.adjudicate({ tauStart: 1000, writes: [upd("k")] }), /later commit/);
    });

    it("rebuilds from recovered commits newer than the horizon", () => {
      const adj = newAdjudicator({ horizonTau: 500 });
      adj.registerCommitted([upd("a")], 400); // at or below the horizon: ignored
      adj.registerCommitted([upd("b"), share("c")], 600);
      assert.equal(adj.keyCount, 2);
      expectConflict(adj.adjudicate({ tauStart: 550, writes: [upd("b")] }), /later commit/);
      expectConflict(adj.adjudicate({ tauStart: 550, writes: [upd("c")] }), /locked shared/);
      approve(adj, 550, [upd("a"), share("c")]);
    });

    it("answers limit exceeded with the limit and the value", () => {
      const adj = newAdjudicator();
      const rows = Array.from({ length: write_set_rows_max + 1 }, (_, i) => del(`k${i}`));
      const tooMany = adj.adjudicate({ tauStart: 1, writes: rows });
      assert.ok(!tooMany.approved && tooMany.verdict === "limit_exceeded");
      assert.match(
        tooMany.detail,
        new RegExp(`${write_set_rows_max + 1} rows.*write_set_rows_max ${write_set_rows_max}`),
      );
      // Shared locks and unique keys do not count as rows.
      const many = [...rows.slice(1), share("s"), write(WriteKind.UniqueKey, "u")];
      assert.ok(adj.adjudicate({ tauStart: 1, writes: many }).approved);

      const big = {
        kind: WriteKind.Insert,
        key: new Uint8Array([1]),
        image: new Uint8Array(write_set_bytes_max + 1),
      };
      const tooBig = adj.adjudicate({ tauStart: 1, writes: [big] });
      assert.ok(!tooBig.approved && tooBig.verdict === "limit_exceeded");
      assert.match(tooBig.detail, /10485761 bytes.*write_set_bytes_max 10485760/);
    });

    it("adjudicates a batch in order", () => {
      const adj = newAdjudicator();
      const decisions = adj.adjudicateBatch([
        { tauStart: 1, writes: [upd("a")] },
        { tauStart: 1, writes: [upd("b")] },
        { tauStart: 1, writes: [upd("a")] },
      ]);
      assert.deepStrictEqual(
        decisions.map((d) => d.approved),
        [true, true, false],
      );
    });
  });
}

// ---- property test against a brute-force model -----------------------------

interface ModelTxn {
  tau: number; // Infinity while in flight
  written: Set<string>;
  shared: Set<string>;
}

function modelKeys(writes: Write[]): { written: Set<string>; shared: Set<string> } {
  const written = new Set<string>();
  const shared = new Set<string>();
  for (const w of writes) {
    const k = Buffer.from(w.key).toString("hex");
    if (w.kind === WriteKind.SharedLock) shared.add(k);
    else written.add(k);
  }
  for (const k of written) shared.delete(k);
  return { written, shared };
}

function modelApproves(
  all: ModelTxn[],
  horizon: number,
  tauStart: number,
  writes: Write[],
): boolean {
  if (tauStart < horizon) return false;
  const mine = modelKeys(writes);
  for (const other of all) {
    if (other.tau <= tauStart) continue;
    for (const k of mine.written) if (other.written.has(k) || other.shared.has(k)) return false;
    for (const k of mine.shared) if (other.written.has(k)) return false;
  }
  return true;
}

type Op =
  | { op: "begin"; back: number; writes: Write[] }
  | { op: "confirm"; pick: number; gap: number }
  | { op: "abandon"; pick: number }
  | { op: "forget"; back: number }
  | { op: "register"; writes: Write[]; gap: number };

const keyName = fc.constantFrom("a", "b", "c", "d", "e");
const writeOp = fc
  .record({ kind: fc.integer({ min: 1, max: 6 }), key: keyName })
  .map(({ kind, key }) => write(kind as WriteKind, key));
const writesArb = fc.array(writeOp, { minLength: 0, maxLength: 4 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("begin" as const),
      back: fc.nat(40),
      writes: writesArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("confirm" as const), pick: fc.nat(), gap: fc.nat(5) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("abandon" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("forget" as const), back: fc.nat(60) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("register" as const),
      writes: writesArb,
      gap: fc.nat(5),
    }),
  },
);

for (const each of engines) {
  describe(`adjudicator against a brute-force model (${each})`, () => {
    before(() => {
      engine = each;
    });

    it("approves exactly what the model approves, whatever it forgot", () => {
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
          const adj = newAdjudicator({ horizonTau: 0 });
          const model: ModelTxn[] = [];
          const inFlight: { ticket: Ticket; txn: ModelTxn }[] = [];
          let now = 100;
          let horizon = 0;
          for (const step of ops) {
            switch (step.op) {
              case "begin": {
                const tauStart = now - step.back;
                const decision = adj.adjudicate({ tauStart, writes: step.writes });
                assert.equal(
                  decision.approved,
                  modelApproves(model, horizon, tauStart, step.writes),
                );
                if (decision.approved) {
                  const txn = { tau: Infinity, ...modelKeys(step.writes) };
                  model.push(txn);
                  inFlight.push({ ticket: decision.ticket, txn });
                }
                break;
              }
              case "confirm": {
                if (inFlight.length === 0) break;
                const [{ ticket, txn }] = inFlight.splice(step.pick % inFlight.length, 1);
                const tau = Math.max(now, ticket.tauStart + 1) + step.gap;
                adj.confirm(ticket, tau);
                txn.tau = tau;
                now = tau + 1;
                break;
              }
              case "abandon": {
                if (inFlight.length === 0) break;
                const [{ ticket, txn }] = inFlight.splice(step.pick % inFlight.length, 1);
                adj.abandon(ticket);
                model.splice(model.indexOf(txn), 1);
                break;
              }
              case "forget": {
                horizon = Math.max(horizon, now - step.back);
                adj.forgetBefore(horizon);
                break;
              }
              case "register": {
                const tau = now + step.gap;
                adj.registerCommitted(step.writes, tau);
                model.push({ tau, ...modelKeys(step.writes) });
                now = tau + 1;
                break;
              }
            }
            assert.equal(adj.inFlightCount, inFlight.length);
          }
        }),
        { numRuns: 400 },
      );
    });
  });
}
