/**
 * Tests for src/check/cli.ts: runCheckCommand reads a real history file and
 * returns 0 for a valid history, 1 for a forbidden anomaly, 2 for input it
 * cannot read, printing the report or the JSON result.
 */
import { strict as assert } from "node:assert";
import fs from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { registerCheckCommand, runCheckCommand, type CheckResult } from "../../src/check";
import { makeTempDir, removeTempDir } from "../support/temp-dir";
import { a, HistoryBuilder, r } from "./history-builder";

function capture(): {
  out: { stdout(t: string): void; stderr(t: string): void };
  stdout: string[];
  stderr: string[];
} {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { out: { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t) }, stdout, stderr };
}

describe("ordo check (runCheckCommand)", () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir("check")));
  afterEach(() => removeTempDir(dir));

  function write(name: string, text: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  }

  it("exits 0 on a valid history and prints the verdict", () => {
    const h = new HistoryBuilder();
    h.txn(0, [a(1, 1)]);
    h.txn(1, [r(1, [1])]);
    const c = capture();
    assert.equal(runCheckCommand({ history: write("ok.jsonl", h.text()) }, c.out), 0);
    assert.match(c.stdout.join(""), /2 transactions \(2 ok, 0 fail, 0 info\)/);
    assert.match(c.stdout.join(""), /Verdict: valid under snapshot isolation/);
  });

  it("exits 0 on write skew but reports it", () => {
    const h = new HistoryBuilder();
    h.invoke(0, [r("x", null), r("y", null), a("x", 1)]);
    h.invoke(1, [r("x", null), r("y", null), a("y", 2)]);
    h.complete(0, "ok", [r("x", []), r("y", []), a("x", 1)]);
    h.complete(1, "ok", [r("x", []), r("y", []), a("y", 2)]);
    h.txn(2, [r("x", [1]), r("y", [2])]);
    const c = capture();
    assert.equal(runCheckCommand({ history: write("skew.jsonl", h.text()) }, c.out), 0);
    assert.match(c.stdout.join(""), /G2-item \(allowed under snapshot isolation\)/);
  });

  it("exits 1 on read skew, explaining the cycle; --json gives the result", () => {
    const h = new HistoryBuilder();
    h.invoke(1, [r("x", null), r("y", null)]);
    h.txn(0, [a("x", 1), a("y", 1)]);
    h.complete(1, "ok", [r("x", []), r("y", [1])]);
    h.txn(2, [r("x", [1])]);
    const file = write("skew.jsonl", h.text());
    const c = capture();
    assert.equal(runCheckCommand({ history: file }, c.out), 1);
    const text = c.stdout.join("");
    assert.match(text, /G-single \(forbidden under snapshot isolation\): cycle of 2 transactions/);
    assert.match(
      text,
      /T2 = process 0, ok \(invoked at 1, ok at 2\): \[\[append "x" 1\] \[append "y" 1\]\]/,
    );
    assert.match(
      text,
      /T3 < T2 because T3 read key "x" = \[\] and did not observe T2's append of 1/,
    );
    assert.match(text, /T2 < T3 because T3 read key "y" = \[1\], which includes T2's append of 1/);
    assert.match(text, /Verdict: INVALID under snapshot isolation \(G-single\)/);
    const j = capture();
    assert.equal(runCheckCommand({ history: file, json: true }, j.out), 1);
    const result = JSON.parse(j.stdout.join("")) as CheckResult;
    assert.equal(result.valid, false);
    assert.deepEqual(result.counts, { "G-single": 1 });
  });

  it("exits 2 on a missing file or a malformed line", () => {
    const c = capture();
    assert.equal(runCheckCommand({ history: path.join(dir, "absent.jsonl") }, c.out), 2);
    assert.match(c.stderr.join(""), /cannot read/);
    const d = capture();
    assert.equal(
      runCheckCommand({ history: write("bad.jsonl", '{"index": 0}\nnope\n') }, d.out),
      2,
    );
    assert.match(d.stderr.join(""), /line 1: process/);
  });

  it("registers `check` with its options on a program", () => {
    const program = new Command();
    registerCheckCommand(program);
    const check = program.commands.find((cmd) => cmd.name() === "check");
    assert.ok(check);
    const flags = check.options.map((o) => o.long);
    assert.deepEqual(flags.sort(), [
      "--accounts",
      "--clients",
      "--dir",
      "--duration",
      "--fault-interval",
      "--faults",
      "--history",
      "--json",
      "--out",
      "--planted-bugs",
      "--qps",
      "--realtime",
      "--seed",
      "--workload",
    ]);
  });
});
