/**
 * Tests for src/crossbar/service.ts through a sidecar started in-process on a
 * real Unix socket with 4 real journals: every subscriber receives the same
 * sequence in (tau, journal) order and nothing above the watermark; a
 * subscriber that stops reading blocks no one, then catches up from disk
 * with no gap and no duplicate; SUBSCRIBE from_tau after a restart gets
 * exactly the later commits; ranges filter writes.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { CrossbarService } from "../../src/crossbar";
import type { DurableEntry, JournalReader, SubscriberSink } from "../../src/crossbar";
import {
  decodeMessage,
  encodeCommitBody,
  frame_header_bytes,
  MessageType,
  Verdict,
} from "../../src/protocol";
import type { CommitReply, ErrorMessage } from "../../src/protocol";
import { realClock, startSidecar } from "../../src/sidecar";
import type { RunningSidecar, StartSidecarOptions } from "../../src/sidecar";
import { bytes, commitRequest, ins, upd } from "../support/commits";
import { SidecarClient } from "../support/sidecar-client";
import { SubscriberClient } from "../support/subscriber-client";
import { makeTempDir, removeTempDir } from "../support/temp-dir";

const clock = realClock();

function tauOf(reply: CommitReply | ErrorMessage): number {
  assert.equal(reply.type, MessageType.CommitReply);
  assert.equal(reply.verdict, Verdict.Committed, reply.detail);
  return reply.tauCommit;
}

const order = (s: SubscriberClient): string[] => s.records.map((r) => `${r.tau}/${r.journal}`);

describe("crossbar service over a Unix socket", function () {
  let dir: string;
  let running: RunningSidecar | null = null;
  const sockets: { close(): void }[] = [];

  const options = (extra: Partial<StartSidecarOptions> = {}): StartSidecarOptions => ({
    dataDir: path.join(dir, "data"),
    socketPath: path.join(dir, "run", "sidecar.sock"),
    journals: 4,
    ...extra,
  });
  const client = async (): Promise<SidecarClient> => {
    const c = await SidecarClient.connect(running!.socketPath);
    sockets.push(c);
    return c;
  };
  const subscriber = async (
    extra: Parameters<typeof SubscriberClient.subscribe>[1] = {},
  ): Promise<SubscriberClient> => {
    const s = await SubscriberClient.subscribe(running!.socketPath, extra);
    sockets.push(s);
    return s;
  };
  /** `count` commits over `connections` connections at once; returns their taus. */
  const commitMany = async (count: number, connections: number, image = ""): Promise<number[]> => {
    const clients = await Promise.all(Array.from({ length: connections }, () => client()));
    const replies = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        clients[i % connections]!.commit(
          commitRequest(clock.nowMicros(), [ins(`k/${i}/${Math.random()}`, image)]),
        ),
      ),
    );
    return replies.map(tauOf);
  };

  beforeEach(async () => {
    dir = makeTempDir("crossbar-service");
    running = await startSidecar(options());
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    await running?.close();
    running = null;
    removeTempDir(dir);
  });

  it("gives every subscriber the same (tau, journal) order, up to the watermark", async () => {
    const early = await subscriber();
    const taus = await commitMany(60, 4);
    const late = await subscriber();
    const top = Math.max(...taus);
    await early.untilWatermark(top);
    await late.untilWatermark(top);
    assert.equal(early.violation, null);
    assert.equal(late.violation, null);
    assert.equal(early.records.length, 60);
    assert.deepStrictEqual(order(late), order(early));
    assert.ok(
      new Set(early.records.map((r) => r.journal)).size >= 2,
      "commits used several journals",
    );
    // The same order the journals hold on disk.
    const onDisk: string[] = [];
    for await (const e of running!.journal.readFrom(0)) onDisk.push(`${e.tauCommit}/${e.journal}`);
    assert.deepStrictEqual(order(early), onDisk);
    assert.deepStrictEqual(
      early.records.map((r) => r.tau).sort((a, b) => a - b),
      [...taus].sort((a, b) => a - b),
    );
    // Nothing above the global watermark: every record is covered by a later watermark.
    assert.ok(early.records.every((r) => r.tau <= early.watermark));
    assert.ok(running!.replication.service.releasePoint >= top);
  });

  it("keeps a paused subscriber from blocking another; it catches up from disk", async () => {
    await running!.close();
    running = await startSidecar(options({ subscriptionBufferBytesMax: 32 * 1024 }));
    const slow = await subscriber();
    const fast = await subscriber();
    await slow.untilWatermark(0);
    slow.pause();
    const image = "x".repeat(16 * 1024);
    const taus: number[] = [];
    for (let round = 0; round < 8; round++) taus.push(...(await commitMany(25, 3, image)));
    const top = Math.max(...taus);
    await fast.untilWatermark(top);
    assert.equal(
      fast.records.length,
      200,
      "the fast subscriber got everything while the slow one slept",
    );
    assert.ok(slow.records.length < 200);
    assert.ok(
      running!.replication.service.fellBehindCount >= 1,
      "the slow one left the live stream",
    );
    slow.resume();
    await slow.untilWatermark(top);
    assert.equal(slow.violation, null);
    assert.deepStrictEqual(order(slow), order(fast), "no gap, no duplicate");
    assert.equal(new Set(order(slow)).size, 200);
  });

  it("sends exactly the later commits to SUBSCRIBE from_tau after a restart", async () => {
    const before = await commitMany(6, 2);
    const from = [...before].sort((a, b) => a - b)[2]!;
    for (const s of sockets.splice(0)) s.close();
    await running!.close();
    running = await startSidecar(options());
    assert.equal(running.recovery.entries, 6);
    assert.equal(running.ready.journals.length, 4);
    const after = await commitMany(3, 1);
    const s = await subscriber({ fromTau: from });
    await s.untilWatermark(Math.max(...after));
    const expected = [...before.filter((t) => t > from), ...after].sort((a, b) => a - b);
    assert.deepStrictEqual(
      s.records.map((r) => r.tau),
      expected,
    );
  });

  it("routes only the writes inside a subscriber's ranges", async () => {
    const ranged = await subscriber({ ranges: [{ lo: bytes("b"), hi: bytes("c") }] });
    const c = await client();
    const t1 = tauOf(await c.commit(commitRequest(clock.nowMicros(), [upd("a/1"), upd("b/1")])));
    const t2 = tauOf(await c.commit(commitRequest(clock.nowMicros(), [upd("c/1")])));
    await ranged.untilWatermark(Math.max(t1, t2));
    assert.deepStrictEqual(
      ranged.records.map((r) => [r.tau, r.body.writes.map((w) => new TextDecoder().decode(w.key))]),
      [[t1, ["b/1"]]],
    );
  });
});

describe("crossbar service catch-up", () => {
  /** A sink that holds what it was written until the test drains it. */
  class HeldSink implements SubscriberSink {
    readonly frames: Uint8Array[] = [];
    held = 0;
    #drain: (() => void)[] = [];
    closed = false;
    write(frame: Uint8Array): void {
      this.frames.push(frame);
      this.held += frame.length;
    }
    get bufferedBytes(): number {
      return this.held;
    }
    onDrain(callback: () => void): void {
      if (this.held === 0) queueMicrotask(callback);
      else this.#drain.push(callback);
    }
    drain(): void {
      this.held = 0;
      for (const callback of this.#drain.splice(0)) callback();
    }
    records(): [number, number][] {
      const out: [number, number][] = [];
      for (const frame of this.frames) {
        const message = decodeMessage(frame[5]!, frame.subarray(frame_header_bytes));
        if (message.type === MessageType.Record) out.push([message.tauCommit, message.journalId]);
      }
      return out;
    }
  }

  it("owes a subscription that fell behind between two records of one tau the second", async () => {
    // Two journals may assign the same tau (an on-demand heartbeat raised the idle one).
    const body = encodeCommitBody({ txnId: new Uint8Array(16), tauStart: 1, writes: [] });
    const entries: DurableEntry[] = [
      { tauCommit: 10, journal: 0, body },
      { tauCommit: 10, journal: 1, body },
      { tauCommit: 11, journal: 0, body },
    ];
    const reader: JournalReader = {
      async *readAll(afterTau, upToTau) {
        for (const e of entries) if (e.tauCommit > afterTau && e.tauCommit <= upToTau) yield e;
      },
    };
    const service = new CrossbarService({ journals: 2, reader, engine: "js", bufferBytesMax: 1 });
    const sink = new HeldSink();
    service.subscribe({ fromTau: 0, ranges: [{ lo: bytes(""), hi: bytes("") }], sink });
    await new Promise((resolve) => setImmediate(resolve)); // catch-up finds nothing: live
    // The first record of tau 10 puts the sink over its bound: back to catch-up.
    service.durable(0, [entries[0]!], 10);
    service.durable(1, [entries[1]!], 10);
    service.durable(0, [entries[2]!], 11);
    service.watermarks([{ journal: 1, watermark: 11 }]);
    assert.deepEqual(sink.records(), [[10, 0]]);
    for (let i = 0; i < 10; i++) {
      sink.drain();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(sink.records(), [
      [10, 0],
      [10, 1],
      [11, 0],
    ]);
    service.close();
  });
});
