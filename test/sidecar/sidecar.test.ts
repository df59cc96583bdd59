/**
 * Tests for src/sidecar/sidecar.ts, the sans-I/O commit pipeline, with a
 * journal the test controls: no `committed` before the append resolved
 * (invariant 1), a journal failure answers every waiter with `unavailable`
 * and stops the sidecar, resends of a transaction id get its first outcome,
 * and the horizon timer forgets old history.
 */
import assert from "node:assert/strict";
import { Adjudicator } from "../../src/adjudicator";
import { ManualClock } from "../../src/clock";
import { ErrorCode, MessageType, Verdict } from "../../src/protocol";
import type { CommitReply, ErrorMessage } from "../../src/protocol";
import { horizonAt, max_transaction_age_us, horizon_margin_us, Sidecar } from "../../src/sidecar";
import type { CommitJournal } from "../../src/sidecar";
import { silent_logger } from "../../src/sidecar/log";
import { commitRequest, upd } from "../support/commits";
import { ManualTimers } from "../support/manual-timers";

interface HeldAppend {
  tauStart: number;
  resolve: (tau: number) => void;
  reject: (error: unknown) => void;
}

/** A journal whose appends wait until the test resolves or rejects them. */
class HeldJournal implements CommitJournal {
  readonly held: HeldAppend[] = [];

  appendPlaced(entry: {
    txnId: Uint8Array;
    tauStart: number;
    body: Uint8Array;
  }): Promise<{ tau: number; prevTau: number }> {
    return new Promise((resolve, reject) =>
      this.held.push({
        tauStart: entry.tauStart,
        resolve: (tau) => resolve({ tau, prevTau: 0 }),
        reject,
      }),
    );
  }
}

const t0 = 1_700_000_000_000_000;

function setup() {
  const clock = new ManualClock(t0);
  const timers = new ManualTimers(clock);
  const journal = new HeldJournal();
  const adjudicator = new Adjudicator({ horizonTau: horizonAt(t0) });
  const fatal: unknown[] = [];
  const sidecar = new Sidecar({
    journal,
    adjudicator,
    clock,
    timers,
    logger: silent_logger,
    onFatal: (error) => fatal.push(error),
  });
  return { clock, timers, journal, adjudicator, sidecar, fatal };
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function track<T>(promise: Promise<T>): { done: boolean; value?: T } {
  const state: { done: boolean; value?: T } = { done: false };
  void promise.then((value) => {
    state.done = true;
    state.value = value;
  });
  return state;
}

describe("sidecar core", () => {
  it("replies committed only after the append resolved, with its tau", async () => {
    const { journal, sidecar } = setup();
    const reply = track(sidecar.commit(commitRequest(t0, [upd("k")], { requestId: 9n })));
    await settle();
    assert.equal(journal.held.length, 1);
    assert.equal(reply.done, false, "no reply while the append is pending");
    journal.held[0].resolve(t0 + 5);
    await settle();
    assert.deepStrictEqual(reply.value, {
      type: MessageType.CommitReply,
      requestId: 9n,
      verdict: Verdict.Committed,
      flags: 0,
      tauCommit: t0 + 5,
      prevTau: 0, // this journal does not tell
      detail: "",
    });
  });

  it("answers a writer that lost to one in flight once that one is durable, naming its tau", async () => {
    const { journal, sidecar } = setup();
    const first = track(sidecar.commit(commitRequest(t0, [upd("k")])));
    const second = track(sidecar.commit(commitRequest(t0, [upd("k")])));
    await settle();
    assert.equal(journal.held.length, 1, "the loser never touches the journal");
    assert.equal(second.done, false, "no reply while the commit it lost to has no tau");
    journal.held[0].resolve(t0 + 1);
    await settle();
    assert.equal((first.value as CommitReply).verdict, Verdict.Committed);
    const lost = second.value as CommitReply;
    assert.equal(lost.verdict, Verdict.Conflict);
    assert.match(lost.detail, /concurrent/);
    assert.equal(lost.tauCommit, t0 + 1, "the retry waits to see the commit it lost to");
    const third = (await sidecar.commit(commitRequest(t0, [upd("k")]))) as CommitReply;
    assert.equal(third.verdict, Verdict.Conflict);
    assert.equal(third.tauCommit, t0 + 1, "the durable commit a retry must see first");
  });

  it("asserts invariant 1: a tau_commit not after tau_start never becomes committed", async () => {
    const { journal, sidecar, fatal } = setup();
    const reply = sidecar.commit(commitRequest(t0, [upd("k")]));
    await settle();
    journal.held[0].resolve(t0);
    const answer = (await reply) as ErrorMessage;
    assert.equal(answer.type, MessageType.Error);
    assert.equal(answer.code, ErrorCode.Unavailable);
    assert.equal(sidecar.state, "failed");
    assert.match(String(fatal[0]), /tau_commit .* is not after tau_start/);
  });

  it("on a journal failure answers every waiter unavailable, stops, and reports fatal once", async () => {
    const { journal, sidecar, fatal } = setup();
    const replies = [1, 2, 3].map((i) =>
      sidecar.commit(commitRequest(t0, [upd(`k${i}`)], { requestId: BigInt(i) })),
    );
    await settle();
    assert.equal(journal.held.length, 3);
    journal.held[1].reject(Object.assign(new Error("fsync failed"), { code: "fsync_failed" }));
    const answered = (await Promise.all(replies)) as ErrorMessage[];
    assert.deepStrictEqual(
      answered.map((r) => [r.type, r.code, r.requestId]),
      [1n, 2n, 3n].map((id) => [MessageType.Error, ErrorCode.Unavailable, id]),
    );
    assert.equal(sidecar.state, "failed");
    assert.equal(fatal.length, 1);
    const later = (await sidecar.commit(
      commitRequest(t0, [upd("z")], { requestId: 4n }),
    )) as ErrorMessage;
    assert.equal(later.code, ErrorCode.Unavailable);
    assert.equal(journal.held.length, 3, "nothing more reaches the journal");
    // A late success of another append changes nothing that was sent.
    journal.held[0].resolve(t0 + 1);
    await settle();
    assert.equal(fatal.length, 1);
  });

  it("fails only the request the journal refused as an invalid argument", async () => {
    const { journal, sidecar, fatal } = setup();
    const reply = sidecar.commit(commitRequest(t0, [upd("k")]));
    await settle();
    journal.held[0].reject(Object.assign(new Error("too big"), { code: "invalid_argument" }));
    assert.equal(((await reply) as ErrorMessage).code, ErrorCode.Internal);
    assert.equal(sidecar.state, "running");
    assert.equal(fatal.length, 0);
    // Its keys were released.
    const again = sidecar.commit(commitRequest(t0, [upd("k")]));
    await settle();
    journal.held[1].resolve(t0 + 1);
    assert.equal(((await again) as CommitReply).verdict, Verdict.Committed);
  });

  it("gives a resent transaction id the outcome of its first submission", async () => {
    const { journal, sidecar } = setup();
    const request = commitRequest(t0, [upd("k")], { requestId: 1n });
    const first = sidecar.commit(request);
    const whileInFlight = sidecar.commit({ ...request, requestId: 2n });
    await settle();
    assert.equal(journal.held.length, 1, "the resend is not appended again");
    journal.held[0].resolve(t0 + 7);
    const afterCommit = await sidecar.commit({ ...request, requestId: 3n });
    for (const [reply, id] of [
      [await first, 1n],
      [await whileInFlight, 2n],
      [afterCommit, 3n],
    ] as const) {
      assert.equal(reply.type, MessageType.CommitReply);
      assert.equal(reply.requestId, id);
      assert.equal((reply as CommitReply).tauCommit, t0 + 7);
    }
  });

  it("stop refuses new commits and waits for pending appends", async () => {
    const { journal, sidecar } = setup();
    const pending = sidecar.commit(commitRequest(t0, [upd("k")]));
    await settle();
    const stopped = track(sidecar.stop());
    const refused = (await sidecar.commit(commitRequest(t0, [upd("j")]))) as ErrorMessage;
    assert.equal(refused.code, ErrorCode.Unavailable);
    await settle();
    assert.equal(stopped.done, false);
    journal.held[0].resolve(t0 + 1);
    assert.equal(((await pending) as CommitReply).verdict, Verdict.Committed);
    await settle();
    assert.equal(stopped.done, true);
    assert.equal(sidecar.state, "stopped");
  });

  it("moves the history horizon forward on its timer", async () => {
    const { journal, sidecar, timers, adjudicator } = setup();
    sidecar.start();
    const reply = sidecar.commit(commitRequest(t0, [upd("k")]));
    await settle();
    journal.held[0].resolve(t0 + 1);
    await reply;
    assert.equal(adjudicator.keyCount, 1);
    timers.advance(max_transaction_age_us + horizon_margin_us + 2_000_000);
    assert.ok(adjudicator.horizonTau > t0 + 1);
    assert.equal(adjudicator.keyCount, 0, "the old commit is forgotten");
    const stale = (await sidecar.commit(commitRequest(t0 + 2, [upd("k")]))) as CommitReply;
    assert.match(stale.detail, /snapshot too old/);
    await sidecar.stop();
    assert.equal(timers.pendingCount, 0);
  });
});
