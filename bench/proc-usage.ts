/**
 * Where a benchmark's CPU goes, by process role: CPU time and voluntary
 * context switches (sleeps that ended in a wake-up) of every thread on the
 * machine, read from /proc (Linux) before and after a run and grouped by
 * what the process is — PostgreSQL backends, the ordo applier, the WAL
 * writer, other PostgreSQL processes, pgbench, the sidecar, kernel threads.
 * Machine-wide: run it on an otherwise idle machine. Elsewhere than Linux it
 * reports nothing.
 */
import fs from "node:fs";
import { statField } from "../src/io/proc-stat";

/** /proc reports CPU times in USER_HZ ticks, 100 a second on Linux. */
const ms_per_tick = 10;

export const usage_groups = [
  "backends",
  "pgbench",
  "sidecar",
  "applier",
  "walwriter",
  "other postgres",
  "kernel",
] as const;
export type UsageGroup = (typeof usage_groups)[number];

interface TaskUsage {
  group: UsageGroup;
  ticks: number;
  wakeups: number;
}

/** Every thread's counters at one moment, by "pid/tid". */
export type UsageSnapshot = Map<string, TaskUsage>;

export interface GroupUsage {
  cpuMs: number;
  wakeups: number;
}

/** The role of a process, from its command line; undefined for the rest of the machine. */
export function groupOf(cmdline: string): UsageGroup | undefined {
  if (cmdline === "") return "kernel";
  if (cmdline.includes("sidecar/main.js")) return "sidecar";
  if (/(^|\/)pgbench( |$)/.test(cmdline)) return "pgbench";
  if (cmdline.startsWith("postgres: ordo applier")) return "applier";
  if (cmdline.startsWith("postgres: walwriter")) return "walwriter";
  // A backend's title: "postgres: USER DATABASE HOST(PORT) STATE" or "[local]".
  if (/^postgres: \S+ \S+ (\S+\(\d+\)|\[local\])/.test(cmdline)) return "backends";
  if (cmdline.startsWith("postgres: ") || /\/bin\/postgres /.test(cmdline)) return "other postgres";
  return undefined;
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** Reads every thread's CPU ticks and voluntary switches now (an empty map without /proc). */
export function snapshotUsage(): UsageSnapshot {
  const snapshot: UsageSnapshot = new Map();
  let pids: string[];
  try {
    pids = fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return snapshot;
  }
  for (const pid of pids) {
    const group = groupOf(readOrEmpty(`/proc/${pid}/cmdline`).split("\0").join(" ").trim());
    if (group === undefined) continue;
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      const stat = readOrEmpty(`/proc/${pid}/task/${tid}/stat`);
      const status = readOrEmpty(`/proc/${pid}/task/${tid}/status`);
      if (stat === "" || status === "") continue;
      // utime and stime.
      const ticks = Number(statField(stat, 14)) + Number(statField(stat, 15));
      const wakeups = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      snapshot.set(`${pid}/${tid}`, { group, ticks, wakeups });
    }
  }
  return snapshot;
}

/**
 * Per group, what the threads alive at both snapshots used in between (a
 * process that started or ended between them is left out: pgbench's and the
 * backends' connections live through a run).
 */
export function usageBetween(
  before: UsageSnapshot,
  after: UsageSnapshot,
): Map<UsageGroup, GroupUsage> {
  const usage = new Map<UsageGroup, GroupUsage>(
    usage_groups.map((group) => [group, { cpuMs: 0, wakeups: 0 }]),
  );
  for (const [task, end] of after) {
    const start = before.get(task);
    if (start === undefined || start.group !== end.group) continue;
    const group = usage.get(end.group)!;
    group.cpuMs += Math.max(0, end.ticks - start.ticks) * ms_per_tick;
    group.wakeups += Math.max(0, end.wakeups - start.wakeups);
  }
  return usage;
}
