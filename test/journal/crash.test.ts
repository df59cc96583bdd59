/**
 * Property test for src/journal/journal.ts crash recovery: random groups of
 * acknowledged appends, then appends whose fsync fails (their bytes are
 * written but not durable), then a "crash" that cuts every file anywhere in
 * its non-durable region, scrambles a non-durable byte, or drops a segment
 * whose creation never became durable. Reopening must recover a prefix of
 * the commits in tau order that contains every acknowledged one. The journal
 * that writes and the one that recovers use different record engines
 * (src/journal/record-buffer.ts), so each reads what the other wrote.
 */
import { strict as assert } from "node:assert";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { ManualClock } from "../../src/clock";
import { FsDisk } from "../../src/io/fs-disk";
import { Journal, type JournalAppend, type JournalEntry } from "../../src/journal";
import type { RecordEngine } from "../../src/journal/record-buffer";
import { nativeAvailable } from "../../src/native";
import { TestDisk } from "./test-disk";

const runs = 60;
const per_mille = 1000;

interface CrashPoint {
  cut: number;
  flip: number | undefined;
  dropIfNotDurable: boolean;
}

const scenario = fc.record({
  segmentBytesMax: fc.constantFrom(256, 700, 1 << 20),
  batchBytesMax: fc.constantFrom(64, 300, 1 << 16),
  acked: fc.array(fc.array(fc.nat(120), { minLength: 1, maxLength: 6 }), { maxLength: 6 }),
  unacked: fc.array(fc.nat(120), { maxLength: 6 }),
  crash: fc.array(
    fc.record({
      cut: fc.integer({ min: 0, max: per_mille }).map((n) => n / per_mille),
      flip: fc.option(
        fc.integer({ min: 0, max: per_mille - 1 }).map((n) => n / per_mille),
        { nil: undefined },
      ),
      dropIfNotDurable: fc.boolean(),
    }),
    { minLength: 1, maxLength: 8 },
  ),
});

function makeEntry(n: number, bodyBytes: number): JournalAppend {
  const txnId = new Uint8Array(16);
  new DataView(txnId.buffer).setUint32(12, n);
  const body = new Uint8Array(bodyBytes).fill(n & 0xff);
  return { txnId, tauStart: 1_000 + n, body };
}

function idOf(e: { txnId: Uint8Array }): number {
  return new DataView(e.txnId.buffer, e.txnId.byteOffset, 16).getUint32(12);
}

async function readAll(journal: Journal): Promise<JournalEntry[]> {
  const out: JournalEntry[] = [];
  for await (const e of journal.readFrom(0)) out.push(e);
  return out;
}

/** Applies a crash to one file: only bytes no returned fsync covered may change. */
async function crashFile(path: string, written: number, durable: number, point: CrashPoint) {
  if (durable === 0 && point.dropIfNotDurable) {
    await fsp.rm(path, { force: true });
    return;
  }
  const cut = durable + Math.floor(point.cut * (written - durable));
  await fsp.truncate(path, cut);
  if (point.flip !== undefined && cut > durable) {
    const at = durable + Math.floor(point.flip * (cut - durable));
    const file = await fsp.open(path, "r+");
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0x5a;
    await file.write(byte, 0, 1, at);
    await file.close();
  }
}

/** The real file system, without device flushes (the crash model is the test's own). */
function fileSystem(): TestDisk {
  const disk = new TestDisk(new FsDisk());
  disk.skipDeviceSync = true;
  return disk;
}

/** [writer, recoverer] engine pairs; only the twin when the addon is not built. */
const engine_pairs: [RecordEngine, RecordEngine][] = nativeAvailable()
  ? [
      ["native", "js"],
      ["js", "native"],
    ]
  : [["js", "js"]];

for (const [writeEngine, readEngine] of engine_pairs)
  describe(`journal crash recovery (property, ${writeEngine} writes, ${readEngine} recovers)`, function () {
    this.timeout(240_000);
    let root: string;

    before(async () => {
      root = await fsp.mkdtemp(join(tmpdir(), "ordo-journal-crash-"));
    });

    after(async () => {
      await fsp.rm(root, { recursive: true, force: true });
    });

    it("recovers a prefix holding every acknowledged commit", async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(scenario, async (s) => {
          const dir = join(root, `run-${run++}`);
          const clock = new ManualClock(5_000);
          const options = {
            dir,
            clock,
            segmentBytesMax: s.segmentBytesMax,
            batchBytesMax: s.batchBytesMax,
          };
          const disk = fileSystem();
          const journal = await Journal.open({ ...options, disk, engine: writeEngine });
          let n = 0;
          const order: number[] = [];
          const acked: number[] = [];
          for (const group of s.acked) {
            const entries = group.map((bytes) => makeEntry(n++, bytes));
            order.push(...entries.map(idOf));
            await Promise.all(entries.map((e) => journal.append(e)));
            acked.push(...entries.map(idOf));
            clock.advance(3);
          }
          disk.failSyncs = true;
          const doomed = s.unacked.map((bytes) => makeEntry(n++, bytes));
          order.push(...doomed.map(idOf));
          const outcomes = await Promise.allSettled(doomed.map((e) => journal.append(e)));
          assert.ok(outcomes.every((o) => o.status === "rejected"));
          await journal.close();

          let i = 0;
          for (const [path, track] of disk.tracks) {
            await crashFile(path, track.written, track.durable, s.crash[i++ % s.crash.length]!);
          }

          const reopened = await Journal.open({
            ...options,
            disk: fileSystem(),
            engine: readEngine,
          });
          const recovered = await readAll(reopened);
          const ids = recovered.map(idOf);
          assert.ok(ids.length >= acked.length, `lost acknowledged commits: ${ids} vs ${acked}`);
          assert.deepEqual(ids, order.slice(0, ids.length), "not a prefix in commit order");
          for (let k = 1; k < recovered.length; k++) {
            assert.ok(recovered[k]!.tauCommit > recovered[k - 1]!.tauCommit);
          }
          const tau = await reopened.append(makeEntry(n, 10));
          await reopened.close();
          const again = await Journal.open({ ...options, disk: fileSystem(), engine: writeEngine });
          const final = await readAll(again);
          await again.close();
          assert.equal(final.length, recovered.length + 1);
          assert.equal(final[final.length - 1]!.tauCommit, tau);
          assert.equal(again.recovery.truncatedBytes, 0);
        }),
        { numRuns: runs },
      );
    });
  });
