/**
 * Tests for src/sidecar/subscriptions.ts through a sidecar on a real Unix
 * socket: WAIT_VISIBLE is answered at once with no QP subscribed, only after
 * the subscribed QP's APPLIED reaches tau, and — for a QP that disconnected —
 * only after the last lease sent to it has passed; the asking backend's own
 * QP counts as having applied the commit it just made; a commit that no
 * other QP must see is flagged as needing no WAIT_VISIBLE, and a QP that
 * joins later gets no lease before it applied it. A subscription may send
 * only APPLIED and PING.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { MonotonicClock } from "../../src/io/monotonic-clock";
import { CommitReplyFlag, ErrorCode, MessageType, Verdict } from "../../src/protocol";
import type { CommitReply, Message } from "../../src/protocol";
import { realClock, startSidecar } from "../../src/sidecar";
import type { RunningSidecar } from "../../src/sidecar";
import { commitRequest, upd } from "../support/commits";
import { SidecarClient } from "../support/sidecar-client";
import { SubscriberClient } from "../support/subscriber-client";
import { makeTempDir, removeTempDir } from "../support/temp-dir";

const clock = realClock();
const monotonic = new MonotonicClock();
const lease_us = 150_000;

describe("sidecar subscriptions and WAIT_VISIBLE", function () {
  let dir: string;
  let running: RunningSidecar;
  const sockets: { close(): void }[] = [];

  beforeEach(async () => {
    dir = makeTempDir("subscriptions");
    running = await startSidecar({
      dataDir: path.join(dir, "data"),
      socketPath: path.join(dir, "run", "sidecar.sock"),
      journals: 2,
      leaseUs: lease_us,
    });
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    await running.close();
    removeTempDir(dir);
  });

  const backend = async (): Promise<SidecarClient> => {
    const c = await SidecarClient.connect(running.socketPath);
    sockets.push(c);
    return c;
  };
  const commit = async (c: SidecarClient, key: string): Promise<number> => {
    const reply = (await c.commit(commitRequest(clock.nowMicros(), [upd(key)]))) as CommitReply;
    assert.equal(reply.verdict, Verdict.Committed);
    return reply.tauCommit;
  };
  /** Sends WAIT_VISIBLE, then a PING: once the PONG is back, the sidecar has seen the wait. */
  const waitVisible = async (
    c: SidecarClient,
    tau: number,
    id: bigint,
  ): Promise<Message | null> => {
    c.send({ type: MessageType.WaitVisible, requestId: id, tau });
    c.send({ type: MessageType.Ping, nonce: id });
    return c.next();
  };
  /** A QP applier that has applied everything so far and holds a lease. */
  const liveQp = async (qpId: bigint): Promise<SubscriberClient> => {
    const s = await SubscriberClient.subscribe(running.socketPath, { qpId });
    sockets.push(s);
    await s.untilWatermark(0);
    s.applied(s.watermark);
    await s.until(() => s.watermarks.some((w) => w.leaseUntilUs > 0), "a lease");
    return s;
  };

  it("answers at once when no QP is subscribed", async () => {
    const c = await backend();
    const tau = await commit(c, "a");
    assert.deepStrictEqual(await waitVisible(c, tau, 1n), {
      type: MessageType.Visible,
      requestId: 1n,
      tau,
    });
  });

  it("answers only once the QP's APPLIED reaches tau", async () => {
    const qp = await liveQp(7n);
    const c = await backend();
    const tau = await commit(c, "b");
    const first = await waitVisible(c, tau, 2n);
    assert.deepStrictEqual(first, { type: MessageType.Pong, nonce: 2n }, "not visible yet");
    await qp.until(() => qp.records.some((r) => r.tau === tau), "the record");
    qp.applied(tau - 1);
    c.send({ type: MessageType.Ping, nonce: 3n });
    assert.deepStrictEqual(await c.next(), { type: MessageType.Pong, nonce: 3n }, "still not");
    qp.applied(tau);
    assert.deepStrictEqual(await c.next(), { type: MessageType.Visible, requestId: 2n, tau });
    assert.equal(running.replication.appliedOf(7n), tau);
  });

  it("counts the asking backend's own QP as having applied the commit it just made", async () => {
    const own = await liveQp(11n);
    const other = await liveQp(12n);
    const c = await backend();
    const txnId = new Uint8Array(16);
    new DataView(txnId.buffer).setBigUint64(0, 11n, true); // the system id of QP 11
    const reply = (await c.commit(
      commitRequest(clock.nowMicros(), [upd("own")], { txnId }),
    )) as CommitReply;
    assert.equal(reply.verdict, Verdict.Committed);
    const tau = reply.tauCommit;
    // A wait for some other tau says nothing about QP 11.
    assert.deepStrictEqual(await waitVisible(c, tau - 1, 5n), {
      type: MessageType.Pong,
      nonce: 5n,
    });
    assert.ok((running.replication.appliedOf(11n) ?? 0) < tau - 1);
    assert.deepStrictEqual(await waitVisible(c, tau, 6n), { type: MessageType.Pong, nonce: 6n });
    assert.equal(running.replication.appliedOf(11n), tau, "QP 11 counted at once");
    await other.until(() => other.records.some((r) => r.tau === tau), "the record");
    other.applied(tau);
    assert.deepStrictEqual(await c.next(), {
      type: MessageType.Visible,
      requestId: 5n,
      tau: tau - 1,
    });
    assert.deepStrictEqual(await c.next(), { type: MessageType.Visible, requestId: 6n, tau });
    assert.ok(own.records.some((r) => r.tau === tau));
  });

  it("flags a commit no other QP must see as needing no WAIT_VISIBLE, and holds back a late QP's lease", async () => {
    const own = await liveQp(21n);
    const c = await backend();
    const txnId = new Uint8Array(16);
    new DataView(txnId.buffer).setBigUint64(0, 21n, true);
    const alone = (await c.commit(
      commitRequest(clock.nowMicros(), [upd("alone")], { txnId }),
    )) as CommitReply;
    assert.equal(alone.verdict, Verdict.Committed);
    assert.equal(alone.flags, CommitReplyFlag.VisibleWhenAppliedHere, "only QP 21 counts");
    assert.ok(alone.prevTau < alone.tauCommit); // 0: no commit before it
    // QP 22 subscribes from before that commit: no lease until it has applied it.
    const late = await SubscriberClient.subscribe(running.socketPath, {
      qpId: 22n,
      fromTau: alone.tauCommit - 1,
    });
    sockets.push(late);
    await late.untilWatermark(alone.tauCommit);
    await new Promise((r) => setTimeout(r, 100)); // heartbeats renew leases meanwhile
    assert.ok(
      late.watermarks.every((w) => w.leaseUntilUs === 0),
      "no lease below the skipped commit",
    );
    late.applied(alone.tauCommit);
    await late.until(() => late.watermarks.some((w) => w.leaseUntilUs > 0), "a lease");
    // Now QP 22 counts: a commit of QP 21 waits for it again.
    const txnId2 = new Uint8Array(16);
    new DataView(txnId2.buffer).setBigUint64(0, 21n, true);
    txnId2[8] = 1;
    const shared = (await c.commit(
      commitRequest(clock.nowMicros(), [upd("shared")], { txnId: txnId2 }),
    )) as CommitReply;
    assert.equal(shared.flags, 0, "QP 22 counts too");
    assert.ok(own.records.some((r) => r.tau === alone.tauCommit));
  });

  it("stops waiting for a QP that disconnected only after its lease has passed", async () => {
    const qp = await liveQp(9n);
    const c = await backend();
    const tau = await commit(c, "c");
    assert.deepStrictEqual(await waitVisible(c, tau, 4n), { type: MessageType.Pong, nonce: 4n });
    await qp.until(() => qp.records.some((r) => r.tau === tau), "the record");
    const lastLease = Math.max(...qp.watermarks.map((w) => w.leaseUntilUs));
    qp.close();
    const visible = await c.next();
    const now = monotonic.nowMicros();
    assert.deepStrictEqual(visible, { type: MessageType.Visible, requestId: 4n, tau });
    assert.ok(now > lastLease, `answered at ${now}, before the lease ${lastLease} passed`);
  });

  it("lets a subscription send only APPLIED and PING", async () => {
    const s = await SubscriberClient.subscribe(running.socketPath, { qpId: 5n });
    sockets.push(s);
    await s.untilWatermark(0);
    s.send(commitRequest(clock.nowMicros(), [upd("d")]));
    const error = await s.nextOther();
    assert.equal(error?.type, MessageType.Error);
    assert.equal((error as { code: number }).code, ErrorCode.Malformed);
  });
});
