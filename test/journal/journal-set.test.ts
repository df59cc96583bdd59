/**
 * Tests for src/journal/journal-set.ts on real files with real fsyncs: commits
 * spread over the journals, taus strictly increase per journal, no watermark
 * ever passes a tau that is not durable yet, idle journals advance (on demand
 * and by heartbeat), each append learns the tau just before its own, and a
 * restart replays every journal.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { ManualClock } from "../../src/clock";
import { FsDisk } from "../../src/io/fs-disk";
import {
  JournalSet,
  WatermarkBound,
  watermark_bound_ahead_us_default,
  watermark_bound_file_name,
  watermark_bound_slot_bytes,
} from "../../src/journal";
import type { Disk, JournalEntry, JournalSetListener } from "../../src/journal";
import { freshTxnId } from "../support/commits";
import { makeTempDir, removeTempDir } from "../support/temp-dir";
import { TestDisk } from "./test-disk";

/** Checks the set's promise as it is reported: no entry at or below a watermark already published. */
class PromiseChecker implements JournalSetListener {
  readonly published: number[];
  readonly entries: { journal: number; tau: number }[] = [];
  readonly violations: string[] = [];

  constructor(journals: number) {
    this.published = new Array<number>(journals).fill(-1);
  }

  durable(journal: number, entries: readonly JournalEntry[], watermark: number): void {
    for (const entry of entries) {
      if (entry.tauCommit <= this.published[journal]!) {
        this.violations.push(
          `journal ${journal}: tau ${entry.tauCommit} <= W ${this.published[journal]}`,
        );
      }
      this.entries.push({ journal, tau: entry.tauCommit });
    }
    if (watermark < entries[entries.length - 1]!.tauCommit)
      this.violations.push("W below its entries");
    this.published[journal] = Math.max(this.published[journal]!, watermark);
  }

  watermarks(moves: readonly { journal: number; watermark: number }[]): void {
    for (const { journal, watermark } of moves) {
      this.published[journal] = Math.max(this.published[journal]!, watermark);
    }
  }
}

describe("journal set", () => {
  let dir: string;
  let clock: ManualClock;
  const open = (journals: number): Promise<JournalSet> =>
    JournalSet.open({ dir: path.join(dir, "journal"), disk: new FsDisk(), clock, journals });
  const append = (set: JournalSet, tauStart: number, body = "x"): Promise<number> =>
    set.append({ txnId: freshTxnId(), tauStart, body: new TextEncoder().encode(body) });

  beforeEach(() => {
    dir = makeTempDir("journal-set");
    clock = new ManualClock(1_700_000_000_000_000);
  });
  afterEach(() => removeTempDir(dir));

  it("spreads commits over the journals, with strictly increasing taus in each", async () => {
    const set = await open(4);
    const checker = new PromiseChecker(4);
    set.listen(checker);
    const taus: number[] = [];
    for (let round = 0; round < 5; round++) {
      const batch = [];
      for (let i = 0; i < 12; i++)
        batch.push(append(set, clock.nowMicros() - 10, `r${round}-${i}`));
      taus.push(...(await Promise.all(batch)));
      clock.advance(3);
    }
    assert.deepStrictEqual(checker.violations, []);
    const used = new Set(checker.entries.map((e) => e.journal));
    assert.ok(used.size >= 2, `commits went to ${used.size} journal(s)`);
    for (let j = 0; j < 4; j++) {
      const own: number[] = [];
      for await (const entry of set.readJournal(j, 0)) own.push(entry.tauCommit);
      for (let i = 1; i < own.length; i++) assert.ok(own[i]! > own[i - 1]!, "strictly increasing");
    }
    // Every acknowledged commit is in exactly one journal, and the merged read has them all in order.
    const merged = [];
    for await (const entry of set.readFrom(0)) merged.push(entry);
    assert.equal(merged.length, taus.length);
    for (let i = 1; i < merged.length; i++) {
      const a = merged[i - 1]!;
      const b = merged[i]!;
      // Unique across journals too: a QP records its progress as one tau.
      assert.ok(
        a.tauCommit < b.tauCommit,
        `taus ${a.tauCommit} and ${b.tauCommit} in order, unique`,
      );
    }
    assert.deepStrictEqual(
      [...taus].sort((a, b) => a - b),
      merged.map((e) => e.tauCommit).sort((a, b) => a - b),
    );
    await set.close();
  });

  it("never publishes a watermark at or above a tau still waiting for its fsync", async () => {
    const set = await open(3);
    const checker = new PromiseChecker(3);
    set.listen(checker);
    const pending: Promise<number>[] = [];
    for (let i = 0; i < 40; i++) {
      pending.push(append(set, 0, `w${i}`));
      if (i % 7 === 0) {
        clock.advance(1);
        set.heartbeat();
        // While a group is in flight its journal's watermark stays below it.
        for (let j = 0; j < 3; j++) {
          const journal = set.journal(j);
          if (journal.syncing) assert.ok(set.watermarks()[j]! < journal.lastTau);
        }
      }
      if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(pending);
    assert.deepStrictEqual(checker.violations, []);
    assert.equal(checker.entries.length, 40);
    await set.close();
  });

  it("advances idle journals on demand and by heartbeat", async () => {
    const set = await open(3);
    const checker = new PromiseChecker(3);
    set.listen(checker);
    const start = clock.nowMicros();
    assert.deepStrictEqual(checker.published, [start, start, start], "raised to the clock at open");
    clock.advance(50);
    const tau = await append(set, 0);
    assert.equal(tau, start + 50);
    // Journal 0 wrote it; the idle others promised nothing at or below it at once.
    assert.ok(
      checker.published.every((w) => w >= tau),
      JSON.stringify(checker.published),
    );
    clock.advance(1000);
    set.heartbeat();
    assert.deepStrictEqual(checker.published, [start + 1050, start + 1050, start + 1050]);
    // A raised watermark binds later taus, even with the clock behind it.
    clock.set(start);
    const later = await append(set, 0);
    assert.ok(later > start + 1050);
    await set.close();
  });

  it("tells each append the tau of the commit just before it, across journals", async () => {
    const set = await open(3);
    const entry = (i: number) => ({
      txnId: freshTxnId(),
      tauStart: 0,
      body: new TextEncoder().encode(`p${i}`),
    });
    const placed = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => set.appendPlaced(entry(i))));
    const sorted = [...placed].sort((a, b) => a.tau - b.tau);
    for (let i = 1; i < sorted.length; i++) {
      // Whatever journal each went to, no commit lies between prevTau and tau.
      assert.equal(sorted[i]!.prevTau, sorted[i - 1]!.tau);
    }
    assert.ok(sorted[0]!.prevTau < sorted[0]!.tau);
    clock.advance(500);
    set.heartbeat(); // a promise is no commit: prevTau still names the last commit
    const after = await set.appendPlaced(entry(9));
    assert.equal(after.prevTau, sorted[sorted.length - 1]!.tau);
    assert.ok(after.tau > clock.nowMicros() - 1);
    await set.close();
  });

  it("replays every journal after a restart and keeps taus above everything before", async () => {
    const first = await open(4);
    const taus = await Promise.all(
      Array.from({ length: 20 }, (_, i) => append(first, clock.nowMicros() - 1, `a${i}`)),
    );
    const highest = Math.max(...taus);
    await first.close();
    clock.set(clock.nowMicros() - 1_000_000); // the clock stepped back across the restart

    const second = await open(2); // asked for fewer: the four on disk are all opened
    assert.equal(second.count, 4);
    const recovery = second.recovery();
    assert.equal(recovery.entries, 20);
    assert.equal(recovery.lastTau, highest);
    assert.equal(recovery.journals.length, 4);
    const replayed = [];
    for await (const entry of second.readFrom(0)) replayed.push(entry.tauCommit);
    assert.deepStrictEqual(
      replayed,
      [...taus].sort((a, b) => a - b),
    );
    const next = await append(second, 0);
    assert.ok(next > highest);
    await second.close();
  });
});

/** The durable bound a fresh open of `dir` reads (closing what it opened). */
async function durableOf(disk: Disk, dir: string): Promise<number> {
  const bound = await WatermarkBound.open(disk, dir);
  try {
    return bound.durable;
  } finally {
    await bound.close();
  }
}

describe("journal set: durable watermark bound", () => {
  let dir: string;
  let clock: ManualClock;
  const journalDir = (): string => path.join(dir, "journal");
  const open = (journals: number, disk: Disk = new FsDisk()): Promise<JournalSet> =>
    JournalSet.open({ dir: journalDir(), disk, clock, journals });
  const append = (set: JournalSet): Promise<number> =>
    set.append({ txnId: freshTxnId(), tauStart: 0, body: new TextEncoder().encode("x") });
  const start = 1_700_000_000_000_000;

  beforeEach(() => {
    dir = makeTempDir("journal-bound");
    clock = new ManualClock(start);
  });
  afterEach(() => removeTempDir(dir));

  it("starts above every watermark published before a restart, though the clock went back", async () => {
    const first = await open(2);
    const checker = new PromiseChecker(2);
    first.listen(checker);
    clock.advance(300_000);
    first.heartbeat(); // a promise with no record behind it
    const published = Math.max(...checker.published);
    assert.equal(published, start + 300_000);
    await first.close();
    clock.set(start - 60_000_000); // an NTP step back at boot
    const second = await open(2);
    assert.ok(second.watermarkBound > published);
    const tau = await append(second);
    assert.ok(
      tau > published,
      `tau ${tau} at or below the watermark ${published} published before`,
    );
    await second.close();
  });

  it("never publishes a heartbeat above the durable bound, and moves the bound ahead of the clock", async () => {
    const disk = new TestDisk(new FsDisk());
    const set = await open(1, disk);
    const checker = new PromiseChecker(1);
    set.listen(checker);
    const bound = set.watermarkBound;
    assert.equal(bound, start + watermark_bound_ahead_us_default);
    // The bound's next fsync is held: heartbeats stop at the bound.
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    disk.syncGateFor = (file) => (file.endsWith(watermark_bound_file_name) ? held : undefined);
    clock.advance(2 * watermark_bound_ahead_us_default);
    set.heartbeat();
    assert.equal(checker.published[0], bound);
    set.heartbeat();
    assert.equal(checker.published[0], bound);
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(set.watermarkBound, clock.nowMicros() + watermark_bound_ahead_us_default);
    set.heartbeat();
    assert.equal(checker.published[0], clock.nowMicros());
    // Half a lead later the bound moves on by itself; within it, it does not.
    clock.advance(watermark_bound_ahead_us_default / 2 - 1);
    set.heartbeat();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(set.watermarkBound, start + 3 * watermark_bound_ahead_us_default);
    clock.advance(2);
    set.heartbeat();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(set.watermarkBound, clock.nowMicros() + watermark_bound_ahead_us_default);
    await set.close();
  });

  it("reads the newer of its two slots, the older when the newer is torn, and refuses two bad ones", async () => {
    const disk = new FsDisk();
    await disk.mkdir(dir);
    const bound = await WatermarkBound.open(disk, dir);
    assert.equal(bound.durable, 0);
    for (const b of [10, 20, 30]) await bound.extend(b);
    await bound.extend(25); // never backwards
    assert.equal(bound.durable, 30);
    await bound.close();
    const file = path.join(dir, watermark_bound_file_name);
    assert.equal(await durableOf(disk, dir), 30);
    // The third write went to slot 1 (0, 0, 1 by sequence number 1, 2, 3): tear it.
    const bytes = fs.readFileSync(file);
    bytes[watermark_bound_slot_bytes + 20] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const reopened = await WatermarkBound.open(disk, dir);
    assert.equal(reopened.durable, 20);
    // The next write goes over the torn slot, never over the one it relies on.
    await reopened.extend(40);
    await reopened.close();
    assert.equal(await durableOf(disk, dir), 40);
    const both = fs.readFileSync(file);
    both[20] ^= 0xff;
    both[watermark_bound_slot_bytes + 20] ^= 0xff;
    fs.writeFileSync(file, both);
    await assert.rejects(WatermarkBound.open(disk, dir), /neither slot/);
  });
});
