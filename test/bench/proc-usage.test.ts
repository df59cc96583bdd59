/**
 * Tests for bench/proc-usage.ts: which process is which, and the per-group
 * difference of two snapshots (threads alive at both only).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { groupOf, snapshotUsage, usageBetween, type UsageSnapshot } from "../../bench/proc-usage";

describe("bench process usage", () => {
  it("tells the processes of a run apart by their command lines", () => {
    const cases: [string, string | undefined][] = [
      ["postgres: postgres postgres 127.0.0.1(45678) UPDATE", "backends"],
      ["postgres: app shop [local] idle in transaction", "backends"],
      ["postgres: ordo applier  waiting", "applier"],
      ["postgres: walwriter", "walwriter"],
      ["postgres: checkpointer", "other postgres"],
      ["/usr/lib/postgresql/15/bin/postgres -D /tmp/x/qp0/data", "other postgres"],
      ["/usr/lib/postgresql/15/bin/pgbench -n -b tpcb-like -c 8", "pgbench"],
      ["/usr/bin/node /work/dist/src/sidecar/main.js --data-dir d --socket s", "sidecar"],
      ["", "kernel"],
      ["/usr/bin/node dist/bench/e2e.js --cpu", undefined],
      ["bash", undefined],
    ];
    for (const [cmdline, group] of cases) assert.equal(groupOf(cmdline), group, cmdline);
  });

  it("adds up what the threads alive at both snapshots used, per group", () => {
    const before: UsageSnapshot = new Map([
      ["10/10", { group: "backends", ticks: 100, wakeups: 50 }],
      ["11/11", { group: "backends", ticks: 5, wakeups: 1 }],
      ["20/20", { group: "sidecar", ticks: 7, wakeups: 3 }],
      ["30/30", { group: "pgbench", ticks: 1, wakeups: 1 }], // gone before the end
    ]);
    const after: UsageSnapshot = new Map([
      ["10/10", { group: "backends", ticks: 130, wakeups: 80 }],
      ["11/11", { group: "backends", ticks: 6, wakeups: 4 }],
      ["20/20", { group: "sidecar", ticks: 27, wakeups: 13 }],
      ["21/21", { group: "sidecar", ticks: 900, wakeups: 900 }], // started after the start
    ]);
    const usage = usageBetween(before, after);
    assert.deepEqual(usage.get("backends"), { cpuMs: 310, wakeups: 33 });
    assert.deepEqual(usage.get("sidecar"), { cpuMs: 200, wakeups: 10 });
    assert.deepEqual(usage.get("pgbench"), { cpuMs: 0, wakeups: 0 });
  });

  it("reads a running process's threads", async function () {
    if (process.platform !== "linux") this.skip();
    // Its command line names the sidecar's entry, so it counts as one.
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 5000)", "sidecar/main.js"]);
    try {
      await new Promise((resolve) => child.once("spawn", resolve));
      const tasks = [...snapshotUsage()].filter(([task]) => task.startsWith(`${child.pid}/`));
      assert.ok(tasks.length >= 1, "its threads are in the snapshot");
      for (const [, task] of tasks) {
        assert.equal(task.group, "sidecar");
        assert.ok(task.ticks >= 0 && task.wakeups >= 0);
      }
    } finally {
      child.kill("SIGKILL");
    }
  });
});
