/**
 * Tests for src/journal/journal.ts against real files and real fsyncs in a
 * temporary directory: durability and order across reopen, group commit,
 * torn-tail recovery, corruption, fsync failure, rotation and readFrom.
 * Every test runs with both record engines (src/journal/record-buffer.ts).
 */
import { strict as assert } from "node:assert";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/clock";
import { FsDisk } from "../../src/io/fs-disk";
import {
  Journal,
  JournalError,
  type JournalAppend,
  type JournalEntry,
  type JournalOptions,
} from "../../src/journal";
import { recordBytes, segment_header_bytes, segmentFileName } from "../../src/journal/record";
import type { RecordEngine } from "../../src/journal/record-buffer";
import { nativeAvailable } from "../../src/native";
import { TestDisk } from "./test-disk";

const clock_start_us = 1_700_000_000_000_000;

function txnId(n: number): Uint8Array {
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(0, 0x6f72646f);
  new DataView(id.buffer).setUint32(12, n);
  return id;
}

function entry(
  n: number,
  bodyBytes = 10 + (n % 7),
  tauStart = clock_start_us - 1000,
): JournalAppend {
  const body = new Uint8Array(bodyBytes);
  for (let i = 0; i < bodyBytes; i++) body[i] = (n * 31 + i) & 0xff;
  return { txnId: txnId(n), tauStart, body };
}

async function readAll(journal: Journal, afterTau = 0): Promise<JournalEntry[]> {
  const out: JournalEntry[] = [];
  for await (const e of journal.readFrom(afterTau)) out.push(e);
  return out;
}

function assertSameEntry(actual: JournalEntry, expected: JournalAppend, tau: number): void {
  assert.equal(actual.tauCommit, tau);
  assert.deepEqual(actual.txnId, expected.txnId);
  assert.equal(actual.tauStart, expected.tauStart);
  assert.deepEqual(actual.body, expected.body);
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof JournalError, `expected JournalError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

/** Both engines when the addon is built (test/native fails when it is not). */
const engines: RecordEngine[] = nativeAvailable() ? ["native", "js"] : ["js"];

for (const engine of engines)
  describe(`journal (${engine} records)`, () => {
    let dir: string;
    let clock: ManualClock;
    const open = (extra: Partial<JournalOptions> = {}): Promise<Journal> =>
      Journal.open({ dir, disk: new FsDisk(), clock, engine, ...extra });
    const segmentPath = (seq: number): string => join(dir, segmentFileName(seq));

    beforeEach(async () => {
      dir = join(await fsp.mkdtemp(join(tmpdir(), "ordo-journal-")), "j");
      clock = new ManualClock(clock_start_us);
    });

    afterEach(async () => {
      await fsp.rm(join(dir, ".."), { recursive: true, force: true });
    });

    it("assigns increasing taus above tau_start and the clock, and keeps them across reopen", async () => {
      const journal = await open();
      assert.equal(journal.watermark, 0);
      assert.deepEqual(journal.recovery, {
        segments: 0,
        entries: 0,
        truncatedBytes: 0,
        lastTau: 0,
      });
      const appends: JournalAppend[] = [];
      const taus: number[] = [];
      for (let i = 0; i < 30; i++) {
        // Some transactions started "in the future" relative to this clock.
        const tauStart = i % 5 === 0 ? clock.nowMicros() + 500 : clock.nowMicros() - 10;
        const e = entry(i, 5 + i, tauStart);
        appends.push(e);
        const clockBefore = clock.nowMicros();
        const tau = await journal.append(e);
        assert.ok(tau > e.tauStart, "tau_commit above tau_start");
        assert.ok(tau >= clockBefore, "tau_commit not below the clock");
        if (taus.length > 0) assert.ok(tau > taus[taus.length - 1]!, "strictly increasing");
        assert.ok(journal.watermark >= tau);
        taus.push(tau);
        if (i % 3 === 0) clock.advance(7);
      }
      assert.equal(journal.watermark, taus[taus.length - 1]);
      await journal.close();

      const reopened = await open();
      assert.deepEqual(reopened.recovery, {
        segments: 1,
        entries: 30,
        truncatedBytes: 0,
        lastTau: taus[taus.length - 1],
      });
      assert.equal(reopened.watermark, taus[taus.length - 1]);
      const read = await readAll(reopened);
      assert.equal(read.length, 30);
      read.forEach((e, i) => assertSameEntry(e, appends[i]!, taus[i]!));
      const tail = await readAll(reopened, taus[19]!);
      assert.deepEqual(
        tail.map((e) => e.tauCommit),
        taus.slice(20),
      );
      await reopened.close();
    });

    it("covers many concurrent appends with few fsyncs", async () => {
      const disk = new TestDisk(new FsDisk());
      const journal = await open({ disk });
      const before = disk.syncs;
      const count = 200;
      const taus = await Promise.all(
        Array.from({ length: count }, (_, i) => journal.append(entry(i))),
      );
      const fsyncs = disk.syncs - before;
      assert.ok(fsyncs >= 1 && fsyncs <= count / 20, `${fsyncs} fsyncs for ${count} appends`);
      for (let i = 1; i < count; i++) assert.ok(taus[i]! > taus[i - 1]!, "arrival order kept");
      // Appends that arrive while an fsync is in flight share the next one.
      const first = journal.append(entry(1000));
      await Promise.resolve();
      await Promise.resolve();
      const more = Array.from({ length: 50 }, (_, i) => journal.append(entry(2000 + i)));
      await Promise.all([first, ...more]);
      assert.ok(disk.syncs - before - fsyncs <= 3, "late arrivals batched");
      await journal.close();
    });

    it("resolves no append before the fsync covering it returned", async () => {
      const disk = new TestDisk(new FsDisk());
      const journal = await open({ disk });
      let release!: () => void;
      disk.syncGate = new Promise<void>((resolve) => (release = resolve));
      const durableAt = new Map<number, number>();
      let durable = segment_header_bytes;
      disk.onSynced = (_path, bytes) => (durable = bytes);
      const resolved: number[] = [];
      const appends = Array.from({ length: 40 }, (_, i) => entry(i, 1 + i * 3));
      const promises = appends.map((e) =>
        journal.append(e).then((tau) => {
          resolved.push(tau);
          durableAt.set(tau, durable);
          return tau;
        }),
      );
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(resolved.length, 0, "resolved while its fsync was held");
      assert.equal(journal.watermark, 0, "watermark published before fsync");
      release();
      disk.syncGate = undefined;
      const taus = await Promise.all(promises);
      // Each record must lie entirely within the bytes the last returned fsync covered.
      let end = segment_header_bytes;
      taus.forEach((tau, i) => {
        end += recordBytes(appends[i]!.body.length);
        assert.ok(
          durableAt.get(tau)! >= end,
          `tau ${tau} acknowledged before its bytes were synced`,
        );
      });
      await journal.close();
    });

    it("close waits for pending appends, then refuses new ones", async () => {
      const journal = await open();
      const pending = Array.from({ length: 10 }, (_, i) => journal.append(entry(i)));
      await journal.close();
      const taus = await Promise.all(pending);
      assert.equal(taus.length, 10);
      await rejectsWith(journal.append(entry(99)), "closed");
      await journal.close();
      const reopened = await open();
      assert.equal((await readAll(reopened)).length, 10);
      await reopened.close();
    });

    it("rejects invalid appends and options", async () => {
      const journal = await open();
      await rejectsWith(
        journal.append({ ...entry(1), txnId: new Uint8Array(15) }),
        "invalid_argument",
      );
      await rejectsWith(journal.append({ ...entry(1), tauStart: -1 }), "invalid_argument");
      await rejectsWith(journal.append({ ...entry(1), tauStart: 1.5 }), "invalid_argument");
      await assert.rejects(() => journal.readFrom(-1)[Symbol.asyncIterator]().next(), JournalError);
      await journal.close();
      await rejectsWith(open({ segmentBytesMax: 10 }), "invalid_argument");
      await rejectsWith(open({ journalId: -1 }), "invalid_argument");
    });

    describe("torn tail", () => {
      async function writeFive(): Promise<{ taus: number[]; appends: JournalAppend[] }> {
        const journal = await open();
        const appends = Array.from({ length: 5 }, (_, i) => entry(i, 20));
        const taus: number[] = [];
        for (const e of appends) taus.push(await journal.append(e));
        await journal.close();
        return { taus, appends };
      }

      async function recoverAndContinue(
        expected: { taus: number[]; appends: JournalAppend[] },
        keep: number,
      ): Promise<void> {
        const journal = await open();
        assert.ok(journal.recovery.truncatedBytes > 0, "torn bytes reported");
        assert.equal(journal.recovery.entries, keep);
        const read = await readAll(journal);
        assert.equal(read.length, keep);
        read.forEach((e, i) => assertSameEntry(e, expected.appends[i]!, expected.taus[i]!));
        const next = entry(100, 33);
        const tau = await journal.append(next);
        assert.ok(tau > expected.taus[keep - 1]!);
        await journal.close();
        const again = await open();
        assert.equal(again.recovery.truncatedBytes, 0);
        const all = await readAll(again);
        assert.equal(all.length, keep + 1);
        assertSameEntry(all[keep]!, next, tau);
        await again.close();
      }

      it("cuts garbage after the last record", async () => {
        const written = await writeFive();
        await fsp.appendFile(segmentPath(1), Buffer.from("this is not a record at all"));
        await recoverAndContinue(written, 5);
      });

      it("cuts a record torn in half", async () => {
        const written = await writeFive();
        const size = (await fsp.stat(segmentPath(1))).size;
        await fsp.truncate(segmentPath(1), size - Math.floor(recordBytes(20) / 2));
        await recoverAndContinue(written, 4);
      });

      it("cuts a last record with a flipped byte", async () => {
        const written = await writeFive();
        const file = await fsp.open(segmentPath(1), "r+");
        const size = (await file.stat()).size;
        const at = size - 5;
        const byte = Buffer.alloc(1);
        await file.read(byte, 0, 1, at);
        byte[0] = byte[0]! ^ 0x40;
        await file.write(byte, 0, 1, at);
        await file.close();
        await recoverAndContinue(written, 4);
      });

      it("rewrites a last segment whose header was torn", async () => {
        const journal = await open({ segmentBytesMax: 256 });
        const taus: number[] = [];
        for (let i = 0; i < 6; i++) taus.push(await journal.append(entry(i, 40)));
        await journal.close();
        const names = (await fsp.readdir(dir)).sort();
        assert.ok(names.length >= 2);
        const nextSeq = names.length + 1;
        await fsp.writeFile(segmentPath(nextSeq), Buffer.from("ORDOJ"));
        const reopened = await open({ segmentBytesMax: 256 });
        assert.equal(reopened.recovery.truncatedBytes, 5);
        assert.equal(reopened.recovery.entries, 6);
        const tau = await reopened.append(entry(7, 40));
        assert.ok(tau > taus[5]!);
        await reopened.close();
        const again = await open({ segmentBytesMax: 256 });
        assert.equal((await readAll(again)).length, 7);
        await again.close();
      });
    });

    it("reports corruption in a segment that is not the last", async () => {
      const journal = await open({ segmentBytesMax: 256 });
      for (let i = 0; i < 10; i++) await journal.append(entry(i, 40));
      await journal.close();
      assert.ok((await fsp.readdir(dir)).length >= 3);
      const file = await fsp.open(segmentPath(1), "r+");
      await file.write(Buffer.from([0xff]), 0, 1, segment_header_bytes + 20);
      await file.close();
      await rejectsWith(open({ segmentBytesMax: 256 }), "corrupt");
    });

    it("reports a missing segment and a foreign journal id", async () => {
      const journal = await open({ segmentBytesMax: 256 });
      for (let i = 0; i < 10; i++) await journal.append(entry(i, 40));
      await journal.close();
      await rejectsWith(open({ segmentBytesMax: 256, journalId: 7 }), "corrupt");
      await fsp.rm(segmentPath(2));
      await rejectsWith(open({ segmentBytesMax: 256 }), "corrupt");
    });

    it("reports a missing first segment", async () => {
      const journal = await open({ segmentBytesMax: 256 });
      for (let i = 0; i < 10; i++) await journal.append(entry(i, 40));
      await journal.close();
      await fsp.rm(segmentPath(1));
      await rejectsWith(open({ segmentBytesMax: 256 }), "corrupt");
    });

    describe("retention", () => {
      const segmentFiles = async (): Promise<string[]> =>
        (await fsp.readdir(dir)).filter((name) => name.endsWith(".seg")).sort();
      const markers = async (): Promise<string[]> =>
        (await fsp.readdir(dir)).filter((name) => name.startsWith("retained-"));

      it("removes the sealed segments a tau covers, never the one being written, and refuses readers from below them", async () => {
        const journal = await open({ segmentBytesMax: 256 });
        const appends = Array.from({ length: 12 }, (_, i) => entry(i, 40));
        const taus: number[] = [];
        for (const e of appends) taus.push(await journal.append(e));
        const before = await segmentFiles();
        assert.ok(before.length >= 4, `${before.length} segments`);
        assert.deepEqual(await journal.removeThrough(taus[0]! - 1), { segments: 0, bytes: 0 });

        const removed = await journal.removeThrough(taus[5]!);
        assert.ok(removed.segments > 0 && removed.bytes > 0);
        const through = journal.removedThroughTau;
        assert.ok(through > 0 && through <= taus[5]!, "only whole segments at or below the tau");
        const after = await segmentFiles();
        assert.equal(after.length, before.length - removed.segments);
        assert.deepEqual(after, before.slice(removed.segments), "the oldest go first");
        assert.equal((await markers()).length, 1);
        const kept = taus.filter((tau) => tau > through);
        assert.deepEqual(
          (await readAll(journal, through)).map((e) => e.tauCommit),
          kept,
        );
        await rejectsWith(readAll(journal, 0), "removed");
        await rejectsWith(readAll(journal, through - 1), "removed");

        // Everything: the segment being written stays, with the newest records.
        await journal.removeThrough(taus[11]! + 1_000_000);
        assert.ok((await segmentFiles()).length >= 1);
        assert.equal((await markers()).length, 1, "the older marker is gone");
        const last = journal.removedThroughTau;
        const tail = taus.filter((tau) => tau > last);
        assert.ok(tail.length > 0);
        assert.deepEqual(
          (await readAll(journal, last)).map((e) => e.tauCommit),
          tail,
        );
        await journal.close();

        const reopened = await open({ segmentBytesMax: 256 });
        assert.equal(reopened.removedThroughTau, last);
        assert.equal(reopened.recovery.entries, tail.length);
        assert.deepEqual(
          (await readAll(reopened, last)).map((e) => e.tauCommit),
          tail,
        );
        await rejectsWith(readAll(reopened, 0), "removed");
        const next = await reopened.append(entry(20, 40));
        assert.ok(next > taus[11]!);
        await reopened.close();
      });

      it("finishes a removal a crash cut short, and tells a lost first segment from a removed one", async () => {
        const journal = await open({ segmentBytesMax: 256 });
        const taus: number[] = [];
        for (let i = 0; i < 12; i++) taus.push(await journal.append(entry(i, 40)));
        await journal.close();
        const before = await segmentFiles();
        const saved = new Map<string, Buffer>();
        for (const name of before) saved.set(name, await fsp.readFile(join(dir, name)));

        const again = await open({ segmentBytesMax: 256 });
        const { segments } = await again.removeThrough(taus[6]!);
        assert.ok(segments >= 2);
        const through = again.removedThroughTau;
        await again.close();
        // The crash came after the marker was durable and before the segments were unlinked.
        for (const name of before.slice(0, segments)) {
          await fsp.writeFile(join(dir, name), saved.get(name)!);
        }
        const reopened = await open({ segmentBytesMax: 256 });
        assert.deepEqual(await segmentFiles(), before.slice(segments), "open finished the removal");
        assert.equal(reopened.removedThroughTau, through);
        assert.deepEqual(
          (await readAll(reopened, through)).map((e) => e.tauCommit),
          taus.filter((tau) => tau > through),
        );
        await reopened.close();

        // The first segment the marker names is gone: that is corruption, not retention.
        await fsp.rm(join(dir, before[segments]!));
        await rejectsWith(open({ segmentBytesMax: 256 }), "corrupt");
      });

      it("rejects a negative tau", async () => {
        const journal = await open();
        await rejectsWith(journal.removeThrough(-1), "invalid_argument");
        await journal.close();
      });
    });

    it("fails every pending and later append after an fsync failure", async () => {
      const disk = new TestDisk(new FsDisk());
      const journal = await open({ disk });
      const good = await journal.append(entry(0));
      let release!: () => void;
      disk.syncGate = new Promise<void>((resolve) => (release = resolve));
      disk.failSyncs = true;
      const inFlight = journal.append(entry(1));
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      const queued = Array.from({ length: 5 }, (_, i) => journal.append(entry(10 + i)));
      release();
      await rejectsWith(inFlight, "fsync_failed");
      for (const p of queued) await rejectsWith(p, "fsync_failed");
      disk.failSyncs = false;
      disk.syncGate = undefined;
      // No retry: the journal stays failed even though the disk "recovered".
      await rejectsWith(journal.append(entry(20)), "fsync_failed");
      assert.ok(journal.failed);
      assert.equal(journal.watermark, good);
      await journal.close();
      const reopened = await open();
      const read = await readAll(reopened);
      assert.ok(read.length >= 1 && read[0]!.tauCommit === good);
      await reopened.close();
    });

    it("fails appends after a write failure", async () => {
      const disk = new TestDisk(new FsDisk());
      const journal = await open({ disk });
      disk.failWrites = true;
      await rejectsWith(journal.append(entry(1)), "fsync_failed");
      disk.failWrites = false;
      await rejectsWith(journal.append(entry(2)), "fsync_failed");
      await journal.close();
    });

    it("rotates segments and reads from a tau without opening earlier segments", async () => {
      const segmentBytesMax = 512;
      const journal = await open({ segmentBytesMax, batchBytesMax: 200 });
      const appends = Array.from({ length: 60 }, (_, i) => entry(i, 30 + (i % 4) * 10));
      const taus: number[] = [];
      for (let i = 0; i < appends.length; i += 6) {
        taus.push(...(await Promise.all(appends.slice(i, i + 6).map((e) => journal.append(e)))));
      }
      await journal.close();
      const names = (await fsp.readdir(dir)).sort();
      assert.ok(names.length >= 5, `expected several segments, got ${names.length}`);
      for (const name of names.slice(0, -1)) {
        const size = (await fsp.stat(join(dir, name))).size;
        assert.ok(size <= segmentBytesMax, `${name} is ${size} bytes`);
      }

      const disk = new TestDisk(new FsDisk());
      const reopened = await open({ disk, segmentBytesMax, batchBytesMax: 200 });
      assert.equal(reopened.recovery.segments, names.length);
      assert.equal(reopened.recovery.entries, 60);
      const all = await readAll(reopened);
      all.forEach((e, i) => assertSameEntry(e, appends[i]!, taus[i]!));
      disk.readOpens.clear();
      const from = 50;
      const tail = await readAll(reopened, taus[from - 1]!);
      assert.deepEqual(
        tail.map((e) => e.tauCommit),
        taus.slice(from),
      );
      // Entries 50.. live in the last few segments: the first half is never opened.
      for (let seq = 1; seq <= Math.floor(names.length / 2); seq++) {
        assert.equal(disk.readOpens.get(segmentPath(seq)), undefined, `segment ${seq} opened`);
      }
      assert.ok(disk.readOpens.size < names.length / 2, `opened ${disk.readOpens.size} segments`);
      assert.deepEqual(await readAll(reopened, taus[59]!), []);
      await reopened.close();
    });

    describe("zeros ahead of the records", () => {
      const sizeOf = async (path: string): Promise<number> => (await fsp.stat(path)).size;
      /** The journal directory as a crash would leave it: no close, every write on disk. */
      const crashImage = async (): Promise<string> => {
        const image = `${dir}-crash-${Math.random().toString(36).slice(2)}`;
        await fsp.cp(dir, image, { recursive: true });
        return image;
      };
      const recordsEnd = (appends: JournalAppend[]): number =>
        segment_header_bytes + appends.reduce((sum, e) => sum + recordBytes(e.body.length), 0);

      it("keeps zeros ahead of the records; replay ends at them and cuts nothing", async () => {
        const preallocateBytes = 4096;
        const journal = await open({ preallocateBytes });
        const appends: JournalAppend[] = [];
        const taus: number[] = [];
        for (let i = 0; i < 30; i++) {
          appends.push(entry(i, 40 + i));
          taus.push(await journal.append(appends[i]!));
          // After every group at least half of `preallocateBytes` is zeros.
          const end = recordsEnd(appends);
          assert.ok((await sizeOf(segmentPath(1))) >= end + preallocateBytes / 2);
        }
        const end = recordsEnd(appends);
        const size = await sizeOf(segmentPath(1));
        const tail = await fsp.readFile(segmentPath(1));
        assert.ok(
          tail.subarray(end).every((byte) => byte === 0),
          "the bytes after the records are zeros",
        );
        const image = await crashImage();

        const recovered = await Journal.open({ dir: image, disk: new FsDisk(), clock, engine });
        assert.equal(recovered.recovery.entries, 30);
        assert.equal(recovered.recovery.truncatedBytes, 0, "a zero tail is no torn tail");
        assert.equal(await sizeOf(join(image, segmentFileName(1))), size, "the zeros stay");
        (await readAll(recovered)).forEach((e, i) => assertSameEntry(e, appends[i]!, taus[i]!));
        const next = entry(99, 25);
        const tau = await recovered.append(next);
        assert.ok(tau > taus[29]!);
        await recovered.close();
        assert.equal(
          await sizeOf(join(image, segmentFileName(1))),
          end + recordBytes(25),
          "a clean close cuts the zeros",
        );
        const again = await Journal.open({ dir: image, disk: new FsDisk(), clock, engine });
        assert.equal(again.recovery.entries, 31);
        assertSameEntry((await readAll(again, taus[29]!))[0]!, next, tau);
        await again.close();
        await journal.close();
        assert.equal(await sizeOf(segmentPath(1)), end);
      });

      it("cuts a torn record in the zeros", async () => {
        const journal = await open({ preallocateBytes: 4096 });
        const appends = Array.from({ length: 5 }, (_, i) => entry(i, 30));
        const taus: number[] = [];
        for (const e of appends) taus.push(await journal.append(e));
        const image = await crashImage();
        await journal.close();
        const last = join(image, segmentFileName(1));
        const size = await sizeOf(last);
        const end = recordsEnd(appends);
        // A record the journal was writing: a length and checksum, then nothing.
        const file = await fsp.open(last, "r+");
        const torn = Buffer.alloc(12, 0xab);
        await file.write(torn, 0, torn.length, end);
        await file.close();

        const recovered = await Journal.open({ dir: image, disk: new FsDisk(), clock, engine });
        assert.equal(recovered.recovery.entries, 5);
        assert.equal(recovered.recovery.truncatedBytes, size - end);
        assert.equal(await sizeOf(last), end);
        const tau = await recovered.append(entry(5, 30));
        assert.ok(tau > taus[4]!);
        await recovered.close();
        const again = await Journal.open({ dir: image, disk: new FsDisk(), clock, engine });
        assert.equal(again.recovery.truncatedBytes, 0);
        assert.equal((await readAll(again)).length, 6);
        await again.close();
      });

      it("seals each rotated segment at its records", async () => {
        const segmentBytesMax = 600;
        const journal = await open({ segmentBytesMax, preallocateBytes: 400 });
        const appends = Array.from({ length: 24 }, (_, i) => entry(i, 40));
        const taus: number[] = [];
        for (const e of appends) taus.push(await journal.append(e));
        const image = await crashImage();
        await journal.close();
        const names = (await fsp.readdir(image)).sort();
        assert.ok(names.length >= 4, `expected several segments, got ${names.length}`);
        for (const name of names) {
          const size = await sizeOf(join(image, name));
          assert.ok(size <= segmentBytesMax, `${name} is ${size} bytes`);
          if (name === names[names.length - 1]) continue; // the last one keeps its zeros
          const records = (size - segment_header_bytes) / recordBytes(40);
          assert.ok(Number.isInteger(records) && records > 0, `${name} ends at its records`);
        }
        // Every segment but the last is read to its end: a zero tail there would be corruption.
        const recovered = await Journal.open({
          dir: image,
          disk: new FsDisk(),
          clock,
          engine,
          segmentBytesMax,
        });
        assert.equal(recovered.recovery.entries, 24);
        assert.equal(recovered.recovery.truncatedBytes, 0);
        (await readAll(recovered)).forEach((e, i) => assertSameEntry(e, appends[i]!, taus[i]!));
        await recovered.close();
      });

      it("writes no zeros when turned off", async () => {
        const journal = await open({ preallocateBytes: 0 });
        const appends: JournalAppend[] = [];
        for (let i = 0; i < 5; i++) {
          appends.push(entry(i, 30));
          await journal.append(appends[i]!);
          assert.equal(await sizeOf(segmentPath(1)), recordsEnd(appends));
        }
        await journal.close();
        await rejectsWith(open({ preallocateBytes: -1 }), "invalid_argument");
        await rejectsWith(open({ preallocateBytes: 1.5 }), "invalid_argument");
      });
    });

    it("keeps taus increasing when the clock goes back across a reopen", async () => {
      const journal = await open();
      clock.advance(1_000_000);
      const before = await journal.append(entry(1));
      await journal.close();
      clock.set(clock_start_us - 5_000_000);
      const reopened = await open();
      const after = await reopened.append(entry(2, 10, clock.nowMicros() - 1));
      assert.ok(after > before, `${after} <= ${before}`);
      clock.advance(10_000_000);
      const later = await reopened.append(entry(3));
      assert.ok(later >= clock.nowMicros() && later > after);
      await reopened.close();
    });

    it("streams durable entries to a reader while appends continue", async () => {
      const journal = await open({ segmentBytesMax: 1024, batchBytesMax: 256 });
      const taus: number[] = [];
      for (let i = 0; i < 20; i++) taus.push(await journal.append(entry(i, 50)));
      const writer = (async () => {
        for (let i = 20; i < 60; i++) taus.push(await journal.append(entry(i, 50)));
      })();
      const seen: number[] = [];
      let cursor = 0;
      while (seen.length < 60) {
        for await (const e of journal.readFrom(cursor)) {
          assert.ok(e.tauCommit <= journal.watermark, "reader saw a non-durable entry");
          seen.push(e.tauCommit);
          cursor = e.tauCommit;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      await writer;
      assert.deepEqual(seen, taus);
      await journal.close();
    });
  });
