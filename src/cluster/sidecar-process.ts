/**
 * Starts and stops the sidecar as its own process for a local cluster. The
 * sidecar writes one JSON line `{"event":"ready",...}` to stdout once it is
 * listening; stdout and stderr both go to the cluster's sidecar.log, and we
 * read the ready line back from there, so a detached sidecar never writes
 * into a pipe whose reader has gone.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { isRoot, pg_user, processAlive, sleepMs } from "./system";

export const sidecar_ready_timeout_ms = 30_000;
export const sidecar_stop_timeout_ms = 15_000;

export interface SidecarReady {
  readonly event: "ready";
  readonly pid: number;
  readonly socket: string;
  readonly [key: string]: unknown;
}

export interface SidecarLaunch {
  readonly dataDir: string;
  readonly socket: string;
  readonly logFile: string;
  readonly pidFile: string;
  readonly extraArgs?: readonly string[];
  /** Extra environment variables for the sidecar process (e.g. ORDO_PLANTED_BUGS in tests). */
  readonly env?: Readonly<Record<string, string>>;
}

export function sidecarEntry(): string {
  return path.resolve(__dirname, "..", "sidecar", "main.js");
}

export async function startSidecar(launch: SidecarLaunch): Promise<SidecarReady> {
  fs.mkdirSync(path.dirname(launch.logFile), { recursive: true });
  const offset = fs.existsSync(launch.logFile) ? fs.statSync(launch.logFile).size : 0;
  const log = fs.openSync(launch.logFile, "a");
  const args = [sidecarEntry(), "--data-dir", launch.dataDir, "--socket", launch.socket];
  if (isRoot()) args.push("--socket-owner", pg_user);
  args.push(...(launch.extraArgs ?? []));
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ["ignore", log, log],
    ...(launch.env !== undefined ? { env: { ...process.env, ...launch.env } } : {}),
  });
  fs.closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start the sidecar");
  let exited: number | null = null;
  child.on("exit", (code, signal) => {
    exited = code ?? (signal ? 128 : 1);
  });
  child.unref();
  fs.writeFileSync(launch.pidFile, `${pid}\n`);

  const deadline = Date.now() + sidecar_ready_timeout_ms;
  while (Date.now() < deadline) {
    const ready = readReadyLine(launch.logFile, offset);
    if (ready !== null) return ready;
    if (exited !== null) {
      throw new Error(`the sidecar exited (${exited}) before it was ready; see ${launch.logFile}`);
    }
    await sleepMs(25);
  }
  process.kill(pid, "SIGKILL");
  throw new Error(
    `the sidecar was not ready within ${sidecar_ready_timeout_ms} ms; see ${launch.logFile}`,
  );
}

function readReadyLine(logFile: string, offset: number): SidecarReady | null {
  const text = fs.readFileSync(logFile, "utf8").slice(offset);
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const parsed = JSON.parse(line) as { event?: string };
      if (parsed.event === "ready") return parsed as SidecarReady;
    } catch {
      // a log line still being written
    }
  }
  return null;
}

export function sidecarPid(pidFile: string): number | null {
  try {
    const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** SIGTERM, wait for a clean exit, then SIGKILL. */
export async function stopSidecar(
  pidFile: string,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  const pid = sidecarPid(pidFile);
  if (pid === null) return;
  process.kill(pid, signal);
  const deadline = Date.now() + sidecar_stop_timeout_ms;
  while (processAlive(pid) && Date.now() < deadline) await sleepMs(20);
  if (processAlive(pid)) {
    process.kill(pid, "SIGKILL");
    while (processAlive(pid)) await sleepMs(20);
  }
  fs.rmSync(pidFile, { force: true });
}
