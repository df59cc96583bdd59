/**
 * Tests for src/check/campaign/: the outcome mapping, the bank and
 * durability checkers on hand-made histories (bad ones must fail), and
 * short fault campaigns against a real local cluster — no faults, a killed
 * sidecar, a stalled journal (bank), a killed QP — each of which must come
 * out valid with no acknowledged append lost.
 */
import { strict as assert } from "node:assert";
import fs from "node:fs";
import path from "node:path";
import {
  AppendWorkload,
  checkBank,
  checkDurability,
  final_process,
  formatCampaignReport,
  outcomeOfCommitTag,
  outcomeOfError,
  parseAppendList,
  parseDurationMs,
  parseHistory,
  runCampaign,
  seededRandom,
  sqlStateOf,
  type BankOp,
  type CampaignResult,
  type HistoryOp,
} from "../../src/check";
import { status, up, down } from "../../src/cluster";
import { makeTempDir, removeTempDir } from "../support/temp-dir";
import { a, HistoryBuilder, r } from "./history-builder";

function pgError(code: string): Error {
  return Object.assign(new Error(`error ${code}`), { code });
}

describe("campaign outcome mapping", () => {
  it("calls any error before COMMIT a failure: nothing was committed", () => {
    for (const err of [
      pgError("40001"),
      pgError("40003"),
      pgError("57P01"),
      new Error("Connection terminated"),
    ]) {
      assert.equal(outcomeOfError("statements", err), "fail");
    }
  });

  it("calls COMMIT errors that promise nothing committed failures", () => {
    for (const code of ["40001", "40P01", "0A000", "54000", "08006"]) {
      assert.equal(outcomeOfError("commit", pgError(code)), "fail", code);
    }
  });

  it("leaves 40003, a lost connection, a timeout or a surprise at COMMIT unknown", () => {
    assert.equal(outcomeOfError("commit", pgError("40003")), "info");
    assert.equal(outcomeOfError("commit", new Error("Connection terminated unexpectedly")), "info");
    assert.equal(
      outcomeOfError("commit", Object.assign(new Error("reset"), { code: "ECONNRESET" })),
      "info",
    );
    assert.equal(
      outcomeOfError("commit", Object.assign(new Error("t"), { code: "op_timeout" })),
      "info",
    );
    assert.equal(outcomeOfError("commit", pgError("57P01")), "info");
    assert.equal(outcomeOfError("commit", pgError("XX000")), "info");
  });

  it("reads SQLSTATEs only, and a COMMIT answered ROLLBACK as a failure", () => {
    assert.equal(sqlStateOf(pgError("40P01")), "40P01");
    assert.equal(sqlStateOf(Object.assign(new Error(), { code: "ECONNREFUSED" })), null);
    assert.equal(outcomeOfCommitTag("COMMIT"), "ok");
    assert.equal(outcomeOfCommitTag("ROLLBACK"), "fail");
  });
});

describe("campaign options", () => {
  it("reads durations with units, seconds by default", () => {
    assert.equal(parseDurationMs("60s"), 60_000);
    assert.equal(parseDurationMs("500ms"), 500);
    assert.equal(parseDurationMs("2m"), 120_000);
    assert.equal(parseDurationMs("1.5"), 1500);
    assert.throws(() => parseDurationMs("soon"), /not a duration/);
    assert.throws(() => parseDurationMs("0s"), /positive/);
  });
});

describe("campaign workloads and checkers", () => {
  it("appends each value at most once per key and rotates keys", () => {
    const w = new AppendWorkload(seededRandom(5), {
      keyBase: 100,
      keysActive: 4,
      appendsPerKey: 3,
    });
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      for (const m of w.next()) {
        assert.ok(typeof m[1] === "number" && m[1] >= 100);
        if (m[0] !== "append") continue;
        const id = `${m[1]}:${m[2]}`;
        assert.ok(!seen.has(id), `duplicate append ${id}`);
        seen.add(id);
      }
    }
    assert.ok(w.keys().length > 4, "retired keys are replaced by new ones");
    assert.deepEqual(parseAppendList(""), []);
    assert.deepEqual(parseAppendList("3,1,2"), [3, 1, 2]);
  });

  function bankOp(
    index: number,
    process: number | string,
    type: BankOp["type"],
    f: string,
    value: BankOp["value"],
  ): BankOp {
    return { index, process, type, f, value, time: index };
  }

  it("accepts a bank history whose reads all see the total", () => {
    const ops = [
      bankOp(0, 0, "invoke", "transfer", { from: 0, to: 1, amount: 5 }),
      bankOp(1, 0, "ok", "transfer", { from: 0, to: 1, amount: 5 }),
      bankOp(2, 1, "invoke", "read", null),
      bankOp(3, 1, "ok", "read", { "0": 95, "1": 105, "2": 100 }),
      bankOp(4, final_process, "invoke", "read", null),
      bankOp(5, final_process, "ok", "read", { "0": 95, "1": 105, "2": 100 }),
    ];
    const result = checkBank(ops, { accounts: [0, 1, 2], total: 300, finalProcess: final_process });
    assert.equal(result.valid, true);
    assert.equal(result.reads, 2);
    assert.equal(result.finalTotal, 300);
  });

  it("rejects a bank history with money in flight, a missing account or a changed final total", () => {
    const ops = [
      bankOp(0, 1, "invoke", "read", null),
      bankOp(1, 1, "ok", "read", { "0": 95, "1": 100, "2": 100 }), // saw the debit, not the credit
      bankOp(2, 2, "invoke", "read", null),
      bankOp(3, 2, "ok", "read", { "0": 100, "1": 100 }), // account 2 vanished
      bankOp(4, 3, "invoke", "read", null),
      bankOp(5, 3, "fail", "read", null), // ignored
      bankOp(6, final_process, "invoke", "read", null),
      bankOp(7, final_process, "ok", "read", { "0": 100, "1": 105, "2": 100 }),
    ];
    const result = checkBank(ops, { accounts: [0, 1, 2], total: 300, finalProcess: final_process });
    assert.equal(result.valid, false);
    assert.deepEqual(
      result.violations.map((v) => v.index),
      [1, 3, 7],
    );
    assert.equal(result.finalTotal, 305);
    assert.match(result.violations[1]!.why, /missing \[2\]/);
    const none = checkBank([], { accounts: [0, 1], total: 200, finalProcess: final_process });
    assert.equal(none.valid, false, "no final read is a failure too");
  });

  it("finds an acknowledged append missing from the final read", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a(1, 1), a(2, 1)]);
    h.txn(1, [a(1, 2)]);
    h.invoke(2, [a(2, 2)]);
    h.complete(2, "info", [a(2, 2)]);
    const ops: HistoryOp[] = [
      ...h.ops,
      {
        index: 100,
        process: final_process,
        type: "invoke",
        f: "txn",
        value: [r(1, null), r(2, null)],
      },
      { index: 101, process: final_process, type: "ok", f: "txn", value: [r(1, [1]), r(2, [1])] },
    ];
    const result = checkDurability(ops, final_process);
    assert.equal(result.valid, false);
    assert.equal(result.acknowledged, 3);
    assert.deepEqual(
      result.lost.map((l) => [l.key, l.value]),
      [[1, 2]],
    );
    const fine = checkDurability(
      [...ops.slice(0, -1), { ...ops[ops.length - 1]!, value: [r(1, [1, 2]), r(2, [1])] }],
      final_process,
    );
    assert.equal(fine.valid, true, "an info append that is missing is not lost");
  });
});

describe("fault campaigns against a real cluster", function () {
  this.timeout(120_000);
  let dir: string;
  const lines: string[] = [];
  const log = (line: string): void => void lines.push(line);

  before(() => (dir = makeTempDir("campaign")));
  after(async () => {
    try {
      if (status({ dir }).sidecar.pid !== null) await down({ dir, immediate: true });
    } catch {
      // never started
    }
    if (!process.env.ORDO_KEEP_TEST_DIRS) removeTempDir(dir);
  });

  function assertValid(result: CampaignResult): void {
    assert.equal(result.valid, true, formatCampaignReport(result));
    assert.ok(result.counts.ok > 0, "some transactions committed");
    for (const g of result.groups) {
      if (g.durability) assert.deepEqual(g.durability.lost, [], "no acknowledged append lost");
    }
  }

  it("append, no faults: starts a cluster, checks the history, stops the cluster", async () => {
    const result = await runCampaign({
      dir,
      durationMs: 5000,
      clients: 4,
      workload: "append",
      log,
    });
    assertValid(result);
    assert.equal(result.startedCluster, true);
    assert.equal(result.faults.length, 0);
    const group = result.groups[0]!;
    assert.ok(group.durability!.acknowledged > 0);
    assert.equal(group.check!.valid, true);
    // The history file is the checker's format and holds the final reads.
    const ops = parseHistory(fs.readFileSync(group.historyFile, "utf8"));
    assert.ok(ops.some((op) => op.process === final_process && op.type === "ok"));
    assert.equal(path.dirname(group.historyFile), path.join(dir, "check"));
    assert.equal(status({ dir }).sidecar.pid, null, "the campaign stopped the cluster it started");
    assert.match(formatCampaignReport(result), /Verdict: valid/);
    await up({ dir }); // the other campaigns use this running cluster
  });

  it("append, kill-sidecar every 2 s: no acknowledged append lost", async () => {
    const result = await runCampaign({
      dir,
      durationMs: 8000,
      clients: 4,
      workload: "append",
      faults: "kill-sidecar",
      faultIntervalMs: 2000,
      seed: 11,
      log,
    });
    assertValid(result);
    assert.equal(result.startedCluster, false);
    assert.ok(result.faults.length >= 1, "at least one fault injected");
    assert.ok(result.faults.every((f) => f.kind === "kill-sidecar" && f.error === undefined));
    assert.ok(result.groups[0]!.durability!.acknowledged > 0);
  });

  it("append, whole-host crashes: replay from the journals loses no acknowledged append", async () => {
    const result = await runCampaign({
      dir,
      durationMs: 8000,
      clients: 4,
      workload: "append",
      faults: "kill-host",
      faultIntervalMs: 3000,
      seed: 11,
      log,
    });
    assertValid(result);
    assert.equal(result.startedCluster, false);
    assert.ok(result.faults.length >= 1, "at least one fault injected");
    assert.ok(result.faults.every((f) => f.kind === "kill-host" && f.error === undefined));
    assert.ok(result.groups[0]!.durability!.acknowledged > 0);
  });

  it("bank, stall-journal: every read sees the total, and the final total holds", async () => {
    const result = await runCampaign({
      dir,
      durationMs: 6000,
      clients: 4,
      workload: "bank",
      faults: "stall-journal",
      faultIntervalMs: 1500,
      seed: 12,
      log,
    });
    assertValid(result);
    assert.ok(result.faults.length >= 1);
    const bank = result.groups[0]!.bank!;
    assert.ok(bank.reads > 0);
    assert.equal(bank.finalTotal, bank.expectedTotal);
  });

  it("append, kill-qp: PostgreSQL crash recovery keeps acknowledged commits", async () => {
    const result = await runCampaign({
      dir,
      durationMs: 4000,
      clients: 4,
      workload: "append",
      faults: "kill-qp",
      faultIntervalMs: 1500,
      seed: 13,
      log,
    });
    assertValid(result);
    assert.ok(result.faults.length >= 1);
    assert.ok(result.faults.every((f) => f.kind === "kill-qp" && f.error === undefined));
    assert.ok(
      status({ dir }).qps.every((qp) => qp.pid !== null),
      "the QP was started again",
    );
  });
});
