/**
 * The campaign's nemesis: crashes and stalls of a local cluster's real
 * processes, and the heal that undoes them.
 *
 *   kill-sidecar   SIGKILL the sidecar, wait a moment, start it again (it
 *                  replays its journal)
 *   stall-journal  SIGSTOP the sidecar — the journals live in it — for
 *                  0.5–2 s, then SIGCONT
 *   kill-qp        SIGKILL one QP's postmaster and its backends (a crash of
 *                  the whole instance), then start it again; PostgreSQL runs
 *                  crash recovery
 *   kill-host      SIGKILL the sidecar and every QP at once (the one host
 *                  losing power): QPs run with synchronous_commit = off, so
 *                  what they had not flushed comes back only by replay from
 *                  the journals (DESIGN §4)
 *
 * `runFaultSchedule` injects one fault every interval (with seeded jitter and
 * choice) until stopped. Launcher code: it signals and starts processes.
 */
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleepFor } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { ClusterLayout, type QpPaths } from "../../cluster/layout";
import { qpPid } from "../../cluster/postgres";
import { sidecarPid, startSidecar, stopSidecar } from "../../cluster/sidecar-process";
import { processAlive } from "../../cluster/system";
import { statField } from "../../io/proc-stat";
import type { Random } from "./random";

export const fault_kinds = ["kill-sidecar", "stall-journal", "kill-qp", "kill-host"] as const;
export type FaultKind = (typeof fault_kinds)[number];
export type FaultMode = "none" | FaultKind | "all";
export const fault_modes: readonly FaultMode[] = ["none", ...fault_kinds, "all"];

export const stall_ms_min = 500;
export const stall_ms_max = 2000;
/** How long a killed process stays down before it is started again. */
export const down_ms_min = 200;
export const down_ms_max = 1000;
/** Jitter of the fault interval, as a share of it either way. */
const interval_jitter_share = 0.25;
const process_exit_wait_ms = 10_000;
const qp_start_attempts_max = 5;
const qp_start_retry_ms = 500;

export interface FaultEvent {
  kind: FaultKind;
  /** Milliseconds since the schedule started. */
  atMs: number;
  /** What was hit: `sidecar (pid 123)`, `qp1 (pid 456)`. */
  target: string;
  /** How long the target was down or stopped. */
  downMs: number;
  /** From the signal until the target was back (started, continued). */
  tookMs?: number;
  /** Set when the fault could not be injected or healed. */
  error?: string;
}

export function isFaultMode(x: string): x is FaultMode {
  return (fault_modes as readonly string[]).includes(x);
}

async function sleepMs(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleepFor(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    if ((err as { name?: string }).name !== "AbortError") throw err;
  }
}

/** Runs src/cluster/postgres.ts `startQp` on a worker thread, so clients keep running meanwhile. */
function startQpOffThread(qp: QpPaths): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, "start-qp-worker.js"), { workerData: qp });
    let started = false;
    worker.on("message", () => (started = true));
    worker.on("error", reject);
    worker.on("exit", (code) => {
      if (started) resolve();
      else reject(new Error(`starting qp${qp.index} failed (worker exit ${code})`));
    });
  });
}

/** Children of `pid`, from /proc (Linux). */
function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(statField(stat, 4)) === pid) children.push(Number(name));
    } catch {
      // the process is gone
    }
  }
  return children;
}

async function waitGone(pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + process_exit_wait_ms;
  while (pids.some(processAlive)) {
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(", ")} did not exit`);
    await sleepMs(10);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** Injects faults into, and heals, the local cluster in `dir`. */
export class ClusterFaults {
  private readonly layout: ClusterLayout;
  private stalledPid: number | null = null;

  constructor(
    dir: string,
    private readonly random: Random,
    private readonly log: (line: string) => void = () => undefined,
    /** Environment of a restarted sidecar (planted bugs stay planted across kills). */
    private readonly sidecarEnv: Readonly<Record<string, string>> = {},
  ) {
    this.layout = new ClusterLayout(dir);
  }

  private qpCount(): number {
    const config = JSON.parse(fs.readFileSync(this.layout.configFile, "utf8")) as {
      qps: unknown[];
    };
    return config.qps.length;
  }

  private async startSidecar(): Promise<void> {
    await startSidecar({
      dataDir: this.layout.sidecarData,
      socket: this.layout.sidecarSocket,
      logFile: this.layout.sidecarLog,
      pidFile: this.layout.sidecarPidFile,
      env: this.sidecarEnv,
    });
  }

  private async startQp(index: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await startQpOffThread(this.layout.qp(index));
        return;
      } catch (err) {
        // Backends of the killed postmaster may still hold its shared memory.
        if (attempt >= qp_start_attempts_max) throw err;
        await sleepMs(qp_start_retry_ms);
      }
    }
  }

  async inject(kind: FaultKind, atMs: number): Promise<FaultEvent> {
    const downMs =
      kind === "stall-journal"
        ? this.random.int(stall_ms_min, stall_ms_max)
        : this.random.int(down_ms_min, down_ms_max);
    const event: FaultEvent = { kind, atMs, target: "", downMs };
    const began = Date.now();
    try {
      if (kind === "kill-host") {
        event.target = "sidecar and every QP";
        const pids: number[] = [];
        const sidecar = sidecarPid(this.layout.sidecarPidFile);
        if (sidecar !== null) pids.push(sidecar);
        for (let index = 0; index < this.qpCount(); index++) {
          const pid = qpPid(this.layout.qp(index));
          if (pid !== null) pids.push(pid, ...childPids(pid));
        }
        for (const pid of pids) signal(pid, "SIGKILL");
        await waitGone(pids);
        await sleepMs(downMs);
        await this.startSidecar();
        for (let index = 0; index < this.qpCount(); index++) await this.startQp(index);
      } else if (kind === "kill-qp") {
        const index = this.random.int(0, this.qpCount() - 1);
        const pid = qpPid(this.layout.qp(index));
        event.target = `qp${index} (pid ${pid ?? "none"})`;
        if (pid !== null) {
          const backends = childPids(pid);
          signal(pid, "SIGKILL");
          for (const child of backends) signal(child, "SIGKILL");
          await waitGone([pid, ...backends]);
        }
        await sleepMs(downMs);
        await this.startQp(index);
      } else {
        const pid = sidecarPid(this.layout.sidecarPidFile);
        event.target = `sidecar (pid ${pid ?? "none"})`;
        if (kind === "kill-sidecar") {
          if (pid !== null) await stopSidecar(this.layout.sidecarPidFile, "SIGKILL");
          await sleepMs(downMs);
          await this.startSidecar();
        } else if (pid !== null) {
          signal(pid, "SIGSTOP");
          this.stalledPid = pid;
          await sleepMs(downMs);
          signal(pid, "SIGCONT");
          this.stalledPid = null;
        }
      }
    } catch (err) {
      event.error = (err as Error).message;
    }
    event.tookMs = Date.now() - began;
    this.log(
      `fault: ${kind} ${event.target}, down ${downMs} ms, back after ${event.tookMs} ms` +
        (event.error ? ` FAILED: ${event.error}` : ""),
    );
    return event;
  }

  /** Continues a stopped sidecar and starts whatever is down. Returns what it did. */
  async heal(): Promise<string[]> {
    const done: string[] = [];
    if (this.stalledPid !== null) {
      signal(this.stalledPid, "SIGCONT");
      done.push(`continued sidecar (pid ${this.stalledPid})`);
      this.stalledPid = null;
    }
    if (sidecarPid(this.layout.sidecarPidFile) === null) {
      await this.startSidecar();
      done.push("started the sidecar");
    }
    for (let index = 0; index < this.qpCount(); index++) {
      if (qpPid(this.layout.qp(index)) !== null) continue;
      await this.startQp(index);
      done.push(`started qp${index}`);
    }
    for (const line of done) this.log(`heal: ${line}`);
    return done;
  }
}

export interface FaultScheduleOptions {
  readonly mode: FaultMode;
  readonly intervalMs: number;
  readonly random: Random;
  readonly faults: Pick<ClusterFaults, "inject">;
  readonly signal: AbortSignal;
  readonly nowMs: () => number;
}

/** Injects a fault every interval (±25 %, seeded) until `signal` aborts; returns what it did. */
export async function runFaultSchedule(options: FaultScheduleOptions): Promise<FaultEvent[]> {
  const events: FaultEvent[] = [];
  if (options.mode === "none") return events;
  if (!(options.intervalMs > 0)) throw new RangeError(`fault interval must be positive`);
  const start = options.nowMs();
  while (!options.signal.aborted) {
    const jitter = (options.random.next() * 2 - 1) * interval_jitter_share;
    await sleepMs(Math.round(options.intervalMs * (1 + jitter)), options.signal);
    if (options.signal.aborted) break;
    const kind = options.mode === "all" ? options.random.pick(fault_kinds) : options.mode;
    events.push(await options.faults.inject(kind, options.nowMs() - start));
  }
  return events;
}
