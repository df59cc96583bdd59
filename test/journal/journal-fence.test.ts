/**
 * Fencing in src/journal/journal-set.ts, on real files: a journal whose fsync
 * stalls is fenced, its group is voided and placed again in another journal,
 * the watermark moves on without it, and the voided records never count —
 * not when the stalled fsync finally returns, not after a restart, not after
 * a crash at any of the steps (files cut to what a returned fsync covered).
 */
import assert from "node:assert/strict";
import fsp from "node:fs/promises";
import path from "node:path";
import { ManualClock } from "../../src/clock";
import { FsDisk } from "../../src/io/fs-disk";
import {
  JournalSet,
  watermark_bound_ahead_us_default,
  watermark_bound_file_name,
} from "../../src/journal";
import type { JournalEntry, JournalSetListener, Placed } from "../../src/journal";
import { freshTxnId } from "../support/commits";
import { makeTempDir, removeTempDir } from "../support/temp-dir";
import { TestDisk } from "./test-disk";

/** Every published entry, and a check of the set's promise (nothing at or below a published watermark). */
class Listener implements JournalSetListener {
  readonly published: number[];
  readonly entries: { journal: number; tau: number; body: string }[] = [];
  readonly violations: string[] = [];

  constructor(journals: number) {
    this.published = new Array<number>(journals).fill(-1);
  }

  durable(journal: number, entries: readonly JournalEntry[], watermark: number): void {
    for (const e of entries) {
      if (e.tauCommit <= this.published[journal]!)
        this.violations.push(
          `journal ${journal}: tau ${e.tauCommit} <= W ${this.published[journal]}`,
        );
      this.entries.push({ journal, tau: e.tauCommit, body: new TextDecoder().decode(e.body) });
    }
    this.published[journal] = Math.max(this.published[journal]!, watermark);
  }

  watermarks(moves: readonly { journal: number; watermark: number }[]): void {
    for (const { journal, watermark } of moves)
      this.published[journal] = Math.max(this.published[journal]!, watermark);
  }

  /** The global watermark: the lowest published W_j. */
  get global(): number {
    return Math.min(...this.published);
  }
}

interface Gate {
  promise: Promise<void>;
  open: () => void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const ticks = async (n = 20): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

async function readBodies(
  set: JournalSet,
): Promise<{ tau: number; journal: number; body: string }[]> {
  const out = [];
  for await (const e of set.readAll(0))
    out.push({ tau: e.tauCommit, journal: e.journal, body: new TextDecoder().decode(e.body) });
  return out;
}

describe("journal set fencing", () => {
  let dir: string;
  let clock: ManualClock;
  let disk: TestDisk;
  const journalDir = (): string => path.join(dir, "journal");
  const open = (fenceAfterUs = 1_000): Promise<JournalSet> =>
    JournalSet.open({ dir: journalDir(), disk, clock, journals: 3, fenceAfterUs });
  const append = (set: JournalSet, body: string): Promise<Placed> =>
    set.appendPlaced({
      txnId: freshTxnId(),
      tauStart: 0,
      body: new TextEncoder().encode(body),
    });

  beforeEach(() => {
    dir = makeTempDir("journal-fence");
    clock = new ManualClock(1_700_000_000_000_000);
    disk = new TestDisk(new FsDisk());
    disk.skipDeviceSync = true;
  });
  afterEach(() => removeTempDir(dir));

  /** The void log's fsyncs wait for (or fail with) what `gate` returns; the journals' gate stays. */
  function gateVoidLog(gate: () => Promise<void>): void {
    const journals = disk.syncGateFor;
    disk.syncGateFor = (p) => (p.endsWith(`${path.sep}voids`) ? gate() : journals?.(p));
  }

  /** Starts a group on journal 0 whose fsync waits for `stall`; returns its append and original tau. */
  async function stallJournal0(
    set: JournalSet,
    stall: Gate,
  ): Promise<{ stalled: Promise<Placed>; originalTau: number }> {
    disk.syncGateFor = (p) => (p.includes(`${path.sep}0${path.sep}`) ? stall.promise : undefined);
    const stalled = append(set, "stalled"); // the first append goes to journal 0
    await ticks();
    assert.ok(set.journal(0).syncing, "journal 0 is waiting for its fsync");
    return { stalled, originalTau: set.journal(0).lastTau };
  }

  it("fences a stalled journal: its commit is placed again elsewhere, the watermark moves on, the void records never count", async () => {
    const set = await open();
    const listener = new Listener(3);
    set.listen(listener);
    const stall = gate();
    const { stalled, originalTau } = await stallJournal0(set, stall);

    // Another commit goes elsewhere and is durable, but the global watermark waits for journal 0.
    const other = await append(set, "other");
    assert.ok(other.tau > originalTau);
    assert.ok(listener.global < originalTau, "held below the stalled group");

    clock.advance(999);
    set.checkFences();
    assert.equal(set.fences, 0, "not before fenceAfterUs");
    clock.advance(2);
    set.checkFences();
    assert.equal(set.fences, 1);
    assert.deepEqual(set.fenced, [0]);

    const placed = await stalled; // acknowledged from its new place
    assert.ok(placed.tau > other.tau, `placed again at ${placed.tau}, above ${other.tau}`);
    const at = listener.entries.find((e) => e.body === "stalled");
    assert.ok(at !== undefined && at.journal !== 0 && at.tau === placed.tau);
    set.heartbeat();
    assert.ok(listener.global >= placed.tau, "the watermark moved past the stalled group");
    assert.deepEqual(set.voidRanges, [{ journal: 0, fromTau: originalTau, toTau: originalTau }]);

    // The stalled fsync returns: the records become durable on journal 0, and stay void.
    stall.open();
    await ticks();
    assert.deepEqual(set.fenced, []);
    assert.equal(listener.entries.filter((e) => e.body === "stalled").length, 1);
    const raw = [];
    for await (const e of set.journal(0).readFrom(0)) raw.push(e.tauCommit);
    assert.deepEqual(raw, [originalTau], "journal 0's own file holds the void record");
    const bodies = await readBodies(set);
    assert.deepEqual(
      bodies.filter((b) => b.body === "stalled").map((b) => b.tau),
      [placed.tau],
    );

    // Journal 0 takes commits again.
    const after = await Promise.all(Array.from({ length: 6 }, (_, i) => append(set, `after${i}`)));
    assert.ok(after.every((p) => p.tau > placed.tau));
    assert.deepEqual(listener.violations, []);
    await set.close();

    // A restart (fencing off) still leaves the void records out.
    const again = await open(0);
    const replayed = await readBodies(again);
    assert.equal(replayed.filter((b) => b.body === "stalled").length, 1);
    assert.equal(replayed.find((b) => b.body === "stalled")!.tau, placed.tau);
    assert.equal(replayed.length, 1 + 1 + 6);
    await again.close();
  });

  it("moves the appends queued behind the stalled group at once", async () => {
    const set = await open();
    set.listen(new Listener(3));
    const stall = gate();
    const { stalled } = await stallJournal0(set, stall);
    // Force more appends onto journal 0 behind the stalled group.
    const queued = [0, 1, 2].map((i) =>
      set.journal(0).appendPlaced({
        txnId: freshTxnId(),
        tauStart: 0,
        body: new TextEncoder().encode(`queued${i}`),
      }),
    );
    clock.advance(5_000);
    set.checkFences();
    const placed = await Promise.all([stalled, ...queued]);
    const bodies = await readBodies(set);
    for (const [i, p] of placed.entries()) {
      const body = i === 0 ? "stalled" : `queued${i - 1}`;
      const found = bodies.filter((b) => b.body === body);
      assert.equal(found.length, 1, body);
      assert.equal(found[0]!.tau, p.tau);
      assert.notEqual(found[0]!.journal, 0);
    }
    stall.open();
    await set.close();
  });

  it("holds appends made to a fenced journal until its void record is durable", async () => {
    const set = await open();
    const listener = new Listener(3);
    set.listen(listener);
    const stall = gate();
    const voidStall = gate();
    const { stalled, originalTau } = await stallJournal0(set, stall);
    gateVoidLog(() => voidStall.promise);
    clock.advance(5_000);
    set.checkFences();
    stall.open(); // the stalled fsync returns before the void record is durable
    await ticks();
    // Straight to the fenced journal (the set itself sends it nothing): it waits.
    const direct = set.journal(0).appendPlaced({
      txnId: freshTxnId(),
      tauStart: 0,
      body: new TextEncoder().encode("direct"),
    });
    let directDone = false;
    void direct.then(() => (directDone = true));
    await ticks();
    assert.equal(directDone, false);
    assert.ok(set.watermarks()[0]! < originalTau, "still promising below the group");
    voidStall.open();
    await Promise.all([stalled, direct]);
    const bodies = await readBodies(set);
    assert.equal(bodies.filter((b) => b.body === "stalled").length, 1);
    assert.equal(bodies.filter((b) => b.body === "direct").length, 1);
    assert.deepEqual(listener.violations, []);
    await set.close();
  });

  it("stops, like a failed fsync, when the void record cannot be made durable", async () => {
    const set = await open();
    set.listen(new Listener(3));
    const stall = gate();
    const { stalled } = await stallJournal0(set, stall);
    gateVoidLog(() => Promise.reject(new Error("EIO")));
    clock.advance(5_000);
    set.checkFences();
    await assert.rejects(stalled, /void log write or fsync failed/);
    assert.equal(set.failed, true);
    await assert.rejects(append(set, "later"), /void log/);
    stall.open();
    await set.close(); // does not hang on the journal that was fenced
  });

  it("does not fence a lone journal, or one with nowhere to go", async () => {
    const single = await JournalSet.open({
      dir: path.join(dir, "one"),
      disk,
      clock,
      journals: 1,
      fenceAfterUs: 1_000,
    });
    const stall = gate();
    disk.syncGateFor = () => stall.promise;
    const pending = append(single, "x");
    await ticks();
    clock.advance(10_000);
    single.checkFences();
    assert.equal(single.fences, 0);
    stall.open();
    await pending;
    await single.close();
  });

  it("starts above a void range after a crash, though the watermark bound lagged behind its taus", async () => {
    const set = await open();
    set.listen(new Listener(3));
    const start = clock.nowMicros();
    // The bound's next fsync never returns: the clock runs past the bound.
    const boundStall = gate();
    const stall = gate();
    disk.syncGateFor = (p) =>
      p.endsWith(watermark_bound_file_name)
        ? boundStall.promise
        : p.includes(`${path.sep}0${path.sep}`)
          ? stall.promise
          : undefined;
    // What a crash leaves of the bound: its last durable slots (the held write is lost).
    const boundFile = path.join(journalDir(), watermark_bound_file_name);
    const durableBound = await fsp.readFile(boundFile);
    clock.advance(2 * watermark_bound_ahead_us_default);
    set.heartbeat();
    const stalled = append(set, "stalled"); // journal 0, at a tau above the durable bound
    await ticks();
    const originalTau = set.journal(0).lastTau;
    assert.ok(originalTau > set.watermarkBound);
    // Its new place's fsync waits too: the crash comes after the void record, before it.
    disk.syncGateFor = (p) =>
      p.endsWith(watermark_bound_file_name) || /[/\\][012][/\\]/.test(p)
        ? stall.promise
        : undefined;
    clock.advance(5_000);
    set.checkFences();
    await ticks();
    assert.deepEqual(set.voidRanges, [{ journal: 0, fromTau: originalTau, toTau: originalTau }]);
    void stalled.catch(() => undefined);
    // Crash; the host comes back with its clock just below the voided tau.
    for (const [file, track] of disk.tracks) await fsp.truncate(file, track.durable);
    await fsp.writeFile(boundFile, durableBound);
    disk.syncGateFor = undefined;
    clock.set(originalTau - 1);
    const again = await open(0);
    const placed = await append(again, "new"); // journal 0 again: all idle
    assert.ok(
      placed.tau > originalTau,
      `tau ${placed.tau} inside the void range at ${originalTau}`,
    );
    const bodies = await readBodies(again);
    assert.deepEqual(
      bodies.map((b) => b.body),
      ["new"],
      "the new commit counts; the stalled one was never acknowledged",
    );
    assert.ok(start < originalTau);
    await again.close();
    boundStall.open();
    stall.open();
    await set.close().catch(() => undefined);
  });

  for (const point of ["before-void", "after-void"] as const) {
    it(`a crash ${point === "before-void" ? "before the void record is durable" : "after the commit was placed again"} keeps every commit exactly once`, async () => {
      const set = await open();
      set.listen(new Listener(3));
      const stall = gate();
      const voidStall = gate();
      const { stalled, originalTau } = await stallJournal0(set, stall);
      const acked: string[] = [];
      for (let i = 0; i < 4; i++) {
        await append(set, `before${i}`);
        acked.push(`before${i}`);
      }
      // The void log's fsync waits too, so the crash can land before it.
      gateVoidLog(() => voidStall.promise);
      clock.advance(5_000);
      set.checkFences();
      assert.equal(set.fences, 1);
      let stalledAcked = false;
      void stalled.then(() => (stalledAcked = true));
      if (point === "before-void") {
        // The stalled group becomes durable on journal 0; the void record is not.
        stall.open();
        await ticks();
        assert.equal(stalledAcked, false, "not acknowledged before the void is durable");
      } else {
        voidStall.open();
        await stalled;
        stall.open();
        await ticks();
      }
      // Crash: every file keeps only what a returned fsync covered; the old process is gone
      // (its set is left as it is, never closed: nothing it does later may touch the files).
      for (const [file, track] of disk.tracks) await fsp.truncate(file, track.durable);
      disk.syncGateFor = undefined;

      const again = await open(0);
      const bodies = await readBodies(again);
      for (const body of acked)
        assert.equal(bodies.filter((b) => b.body === body).length, 1, `${body} exactly once`);
      const copies = bodies.filter((b) => b.body === "stalled");
      assert.equal(copies.length, 1, "the stalled commit exactly once");
      if (point === "before-void") {
        assert.equal(copies[0]!.tau, originalTau, "it counts where it first was");
        assert.equal(copies[0]!.journal, 0);
        assert.equal(again.voidRanges.length, 0);
      } else {
        assert.notEqual(copies[0]!.journal, 0, "it counts where it was placed again");
        assert.equal(again.voidRanges.length, 1);
      }
      await again.close();
      // The crashed process's set, checked against no more: let it finish and close its files.
      voidStall.open();
      await set.close().catch(() => undefined);
    });
  }
});
