/**
 * Tests for journal retention (src/sidecar/retention.ts) through a sidecar on
 * a real Unix socket with real files: segments go once they are below both
 * the clock's and every QP's keep window, a QP's reported progress holds
 * them (and is saved, so it still does after a restart while that QP is
 * away), a subscriber that asks for removed records is told to rebuild, and
 * the saved progress file is checked when loaded.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { Clock } from "../../src/clock";
import { FsDisk } from "../../src/io/fs-disk";
import { QpProgressFile, qp_progress_file_name } from "../../src/sidecar/qp-progress-file";
import { ErrorCode, MessageType, Verdict } from "../../src/protocol";
import type { CommitReply } from "../../src/protocol";
import { realClock, startSidecar } from "../../src/sidecar";
import type { RunningSidecar, StartSidecarOptions } from "../../src/sidecar";
import { Retention, RetentionError, retention_keep_us_default } from "../../src/sidecar/retention";
import { commitRequest, upd } from "../support/commits";
import { SidecarClient } from "../support/sidecar-client";
import { SubscriberClient } from "../support/subscriber-client";
import { makeTempDir, removeTempDir } from "../support/temp-dir";

/** The real clock, moved forward at will: records can be made to age. */
class AgingClock implements Clock {
  readonly #real = realClock();
  offsetUs = 0;

  nowMicros(): number {
    return this.#real.nowMicros() + this.offsetUs;
  }
}

const keep_us = retention_keep_us_default;

describe("journal retention in the sidecar", function () {
  let dir: string;
  let clock: AgingClock;
  let running: RunningSidecar | null;
  const sockets: { close(): void }[] = [];

  const start = async (extra: Partial<StartSidecarOptions> = {}): Promise<RunningSidecar> => {
    running = await startSidecar({
      dataDir: path.join(dir, "data"),
      socketPath: path.join(dir, "run", "sidecar.sock"),
      clock,
      journalSegmentBytesMax: 1024,
      // Passes run when the test asks (`retention.pass()`).
      retentionIntervalUs: 3_600_000_000,
      ...extra,
    });
    return running;
  };
  const segments = (): string[] =>
    fs.readdirSync(path.join(dir, "data", "journal", "0")).filter((n) => n.endsWith(".seg"));

  beforeEach(() => {
    dir = makeTempDir("retention");
    clock = new AgingClock();
    running = null;
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    await running?.close();
    removeTempDir(dir);
  });

  /** APPLIED, then a PING on the same connection: once the PONG is back, the sidecar has read it. */
  let nonce = 1n;
  const applied = async (s: SubscriberClient, tau: number): Promise<void> => {
    s.applied(tau);
    const sent = nonce++;
    s.send({ type: MessageType.Ping, nonce: sent });
    assert.deepEqual(await s.nextOther(), { type: MessageType.Pong, nonce: sent });
  };

  const commitMany = async (sidecar: RunningSidecar, n: number, prefix: string) => {
    const c = await SidecarClient.connect(sidecar.socketPath);
    sockets.push(c);
    const taus: number[] = [];
    for (let i = 0; i < n; i++) {
      const reply = (await c.commit(
        commitRequest(clock.nowMicros(), [upd(`${prefix}${i}`, "x".repeat(64))]),
      )) as CommitReply;
      assert.equal(reply.verdict, Verdict.Committed);
      taus.push(reply.tauCommit);
    }
    return taus;
  };

  it("keeps what a QP may need, removes the rest, and tells a subscriber from below it to rebuild", async () => {
    const sidecar = await start();
    const qp = await SubscriberClient.subscribe(sidecar.socketPath, { qpId: 7n });
    sockets.push(qp);
    const old = await commitMany(sidecar, 40, "old");
    const initial = segments().length;
    assert.ok(initial >= 4, `${initial} segments`);
    await qp.untilWatermark(old[old.length - 1]!);
    await applied(qp, old[old.length - 1]!);

    // The old records age past the window below the clock, newer ones follow.
    clock.offsetUs += keep_us + 90_000_000;
    const fresh = await commitMany(sidecar, 5, "new");
    await qp.untilWatermark(fresh[fresh.length - 1]!);
    // The QP has applied only the old ones: a crash of it would need the rest.
    const count = segments().length;
    const held = await sidecar.retention!.pass();
    assert.equal(held.segments, 0, "the QP's window holds every segment");
    assert.equal(segments().length, count);

    // Once it applied the new ones too, the old segments are nobody's.
    await applied(qp, fresh[fresh.length - 1]!);
    const pass = await sidecar.retention!.pass();
    assert.ok(pass.segments > 0, "old segments removed");
    assert.ok(pass.cutoffTau < fresh[0]!, "never a record the window keeps");
    assert.ok(sidecar.journal.removedThroughTau > 0);
    assert.ok(sidecar.journal.removedThroughTau <= pass.cutoffTau);
    const saved = JSON.parse(
      fs.readFileSync(path.join(dir, "data", qp_progress_file_name), "utf8"),
    ) as { qps: Record<string, number> };
    assert.equal(saved.qps["7"], fresh[fresh.length - 1]);

    // A QP that asks for records that are gone is told so, and why.
    const late = await SubscriberClient.subscribe(sidecar.socketPath, { qpId: 9n, fromTau: 0 });
    sockets.push(late);
    const error = await late.nextOther();
    assert.ok(error !== null && error.type === MessageType.Error, "an ERROR");
    assert.equal(error.code, ErrorCode.Unavailable);
    assert.match(error.message, /removed by retention.*must be rebuilt/);
    await late.until(() => late.closed, "the close").catch(() => undefined);
    assert.ok(late.closed);

    // One that asks from what it has applied is served.
    const back = await SubscriberClient.subscribe(sidecar.socketPath, {
      qpId: 7n,
      fromTau: fresh[0]!,
    });
    sockets.push(back);
    await back.untilWatermark(fresh[fresh.length - 1]!);
    assert.deepEqual(
      back.records.map((r) => r.tau),
      fresh.slice(1),
    );
  });

  it("still holds an away QP's records after a restart, from its saved progress", async () => {
    let sidecar = await start();
    const qp = await SubscriberClient.subscribe(sidecar.socketPath, { qpId: 7n });
    sockets.push(qp);
    const old = await commitMany(sidecar, 30, "old");
    await qp.untilWatermark(old[old.length - 1]!);
    await applied(qp, old[5]!);
    await sidecar.retention!.pass(); // saves QP 7's progress
    qp.close();
    await sidecar.close();
    running = null;

    clock.offsetUs += 2 * keep_us;
    sidecar = await start();
    assert.equal(sidecar.retention!.progress.get(7n), old[5]);
    await commitMany(sidecar, 5, "new");
    const before = segments().length;
    const pass = await sidecar.retention!.pass();
    assert.ok(pass.cutoffTau <= old[5]! - keep_us, "QP 7's window bounds the cutoff");
    assert.equal(pass.segments, 0);
    assert.equal(segments().length, before);
    // It comes back and catches up from where it was.
    const back = await SubscriberClient.subscribe(sidecar.socketPath, {
      qpId: 7n,
      fromTau: old[5]!,
    });
    sockets.push(back);
    await back.until(() => back.records.length >= old.length - 6 + 5, "the catch-up");
    assert.deepEqual(
      back.records.slice(0, old.length - 6).map((r) => r.tau),
      old.slice(6),
    );
  });

  it("saves a QP that has applied nothing yet, so it holds every record across a restart", async () => {
    let sidecar = await start();
    const qp = await SubscriberClient.subscribe(sidecar.socketPath, { qpId: 8n, fromTau: 0 });
    const old = await commitMany(sidecar, 30, "old");
    await qp.untilWatermark(old[old.length - 1]!);
    qp.close();
    await sidecar.retention!.pass();
    await sidecar.close();
    running = null;

    clock.offsetUs += 2 * keep_us;
    sidecar = await start();
    assert.equal(sidecar.retention!.progress.get(8n), 0);
    await commitMany(sidecar, 5, "new");
    const before = segments().length;
    assert.equal((await sidecar.retention!.pass()).segments, 0);
    assert.equal(segments().length, before);
  });

  it("keeps every segment with retention off", async () => {
    const sidecar = await start({ retentionIntervalUs: 0 });
    assert.equal(sidecar.retention, null);
  });

  it("refuses a keep window below the history horizon", async () => {
    await assert.rejects(start({ journalKeepUs: keep_us - 1 }), RetentionError);
    assert.equal(running, null);
    assert.throws(
      () =>
        new Retention({
          journals: null as never,
          clock,
          timers: null as never,
          logger: { log: () => undefined },
          store: { save: async () => undefined },
          saved: new Map(),
          qpApplied: () => new Map(),
          lowestSentTau: () => undefined,
          keepUs: 0,
        }),
      RetentionError,
    );
  });

  it("loads what it saved and refuses a damaged progress file", async () => {
    fs.mkdirSync(path.join(dir, "data"), { recursive: true });
    const file = new QpProgressFile(new FsDisk(), path.join(dir, "data"));
    assert.deepEqual(await file.load(), new Map());
    const progress = new Map([
      [7n, 1_700_000_000_000_000],
      [18_446_744_073_709_551_615n, 5],
    ]);
    await file.save(progress);
    assert.deepEqual(await file.load(), progress);
    fs.writeFileSync(file.path, '{"version":1,"qps":{"7":-1}}');
    await assert.rejects(file.load(), /bad entry 7/);
    fs.writeFileSync(file.path, "{");
    await assert.rejects(file.load(), /not JSON/);
    // A temporary file left by a crash mid-save does not stop the next save.
    fs.writeFileSync(`${file.path}.tmp`, "{");
    await file.save(progress);
    assert.deepEqual(await file.load(), progress);
    assert.ok(!fs.existsSync(`${file.path}.tmp`));
  });
});
