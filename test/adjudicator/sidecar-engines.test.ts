/**
 * The sidecar's commit pipeline (src/sidecar/sidecar.ts) on each conflict
 * table engine: requests of one event-loop turn are adjudicated as one batch
 * in arrival order, the winner's append alone reaches the journal, a resend
 * in the same turn gets the first submission's outcome, and the horizon
 * timer forgets history — the same answers from the native table and the
 * TypeScript twin.
 */
import assert from "node:assert/strict";
import { Adjudicator } from "../../src/adjudicator";
import type { ConflictEngine } from "../../src/adjudicator";
import { ManualClock } from "../../src/clock";
import { Verdict } from "../../src/protocol";
import type { CommitReply } from "../../src/protocol";
import { horizon_margin_us, horizonAt, max_transaction_age_us, Sidecar } from "../../src/sidecar";
import type { CommitJournal } from "../../src/sidecar";
import { silent_logger } from "../../src/sidecar/log";
import { commitRequest, share, upd } from "../support/commits";
import { ManualTimers } from "../support/manual-timers";

const t0 = 1_700_000_000_000_000;

/** A journal that makes every append durable at the next tau, counting them. */
class CountingJournal implements CommitJournal {
  appended = 0;
  #tau = t0;

  appendPlaced(): Promise<{ tau: number; prevTau: number }> {
    this.appended += 1;
    this.#tau += 10;
    return Promise.resolve({ tau: this.#tau, prevTau: 0 });
  }
}

for (const engine of ["js", "native"] as ConflictEngine[]) {
  describe(`sidecar on the ${engine} conflict table`, () => {
    function setup() {
      const clock = new ManualClock(t0);
      const timers = new ManualTimers(clock);
      const journal = new CountingJournal();
      const adjudicator = new Adjudicator({ horizonTau: horizonAt(t0), engine });
      assert.equal(adjudicator.engine, engine);
      const sidecar = new Sidecar({
        journal,
        adjudicator,
        clock,
        timers,
        logger: silent_logger,
        onFatal: (error) => assert.fail(String(error)),
      });
      return { timers, journal, adjudicator, sidecar };
    }

    it("adjudicates one turn's requests as one ordered batch", async () => {
      const { journal, adjudicator, sidecar } = setup();
      const replies = (await Promise.all([
        sidecar.commit(commitRequest(t0, [upd("a")])),
        sidecar.commit(commitRequest(t0, [upd("a")])),
        sidecar.commit(commitRequest(t0, [share("p"), upd("b")])),
        sidecar.commit(commitRequest(t0, [share("p"), upd("c")])),
        sidecar.commit(commitRequest(t0, [upd("p")])),
      ])) as CommitReply[];
      assert.deepStrictEqual(
        replies.map((r) => r.verdict),
        [
          Verdict.Committed,
          Verdict.Conflict,
          Verdict.Committed,
          Verdict.Committed,
          Verdict.Conflict,
        ],
      );
      assert.match(replies[1].detail, /written by a concurrent/);
      assert.match(replies[4].detail, /locked shared by a concurrent/);
      assert.equal(journal.appended, 3);
      assert.equal(adjudicator.inFlightCount, 0);
      assert.equal(adjudicator.keyCount, 4);
      const late = (await sidecar.commit(commitRequest(t0 + 5, [upd("a")]))) as CommitReply;
      assert.match(late.detail, /later commit/);
    });

    it("gives a resend in the same turn the first submission's outcome", async () => {
      const { journal, sidecar } = setup();
      const request = commitRequest(t0, [upd("k")], { requestId: 1n });
      const [first, again] = (await Promise.all([
        sidecar.commit(request),
        sidecar.commit({ ...request, requestId: 2n }),
      ])) as CommitReply[];
      assert.equal(journal.appended, 1);
      assert.equal(first.verdict, Verdict.Committed);
      assert.equal(again.verdict, Verdict.Committed);
      assert.equal(again.requestId, 2n);
      assert.equal(again.tauCommit, first.tauCommit);
    });

    it("forgets history on the horizon timer and closes its table", async () => {
      const { timers, adjudicator, sidecar } = setup();
      sidecar.start();
      await sidecar.commit(commitRequest(t0, [upd("k")]));
      assert.equal(adjudicator.keyCount, 1);
      timers.advance(max_transaction_age_us + horizon_margin_us + 2_000_000);
      assert.equal(adjudicator.keyCount, 0);
      await sidecar.stop();
      adjudicator.close();
      assert.throws(() => adjudicator.keyCount);
    });
  });
}
