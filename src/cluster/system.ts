/**
 * Process and user plumbing for running PostgreSQL and the sidecar on this
 * machine: PostgreSQL refuses to run as root, so when we are root its tools
 * run as the `postgres` user and the files it needs are handed to that user.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";

export const pg_user = "postgres";

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

export interface UserIds {
  readonly uid: number;
  readonly gid: number;
}

/** The uid/gid PostgreSQL runs as: `postgres` when we are root, else ourselves. */
export function pgUserIds(): UserIds {
  if (!isRoot()) return { uid: process.getuid!(), gid: process.getgid!() };
  const uid = Number(execFileSync("id", ["-u", pg_user], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", pg_user], { encoding: "utf8" }).trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error(`cannot resolve the ${pg_user} user`);
  }
  return { uid, gid };
}

export class CommandError extends Error {
  readonly code = "command_failed";
  constructor(
    message: string,
    readonly status: number | null,
    readonly output: string,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

/** Runs a command (as `postgres` when we are root) and returns its stdout. */
export function runAsPgUser(file: string, args: string[], options: { cwd?: string } = {}): string {
  const [cmd, argv] = isRoot() ? ["runuser", ["-u", pg_user, "--", file, ...args]] : [file, args];
  const result = spawnSync(cmd, argv, {
    encoding: "utf8",
    cwd: options.cwd ?? "/",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 120_000,
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim();
    throw new CommandError(
      `${file} ${args.join(" ")} failed (exit ${result.status}): ${output}`,
      result.status,
      output,
    );
  }
  return result.stdout;
}

/** Creates a directory (and parents) owned by the PostgreSQL user with `mode`. */
export function mkdirForPg(dir: string, mode: number): void {
  fs.mkdirSync(dir, { recursive: true, mode });
  fs.chmodSync(dir, mode);
  if (isRoot()) {
    const { uid, gid } = pgUserIds();
    fs.chownSync(dir, uid, gid);
  }
}

/** Asks the kernel for a free loopback TCP port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("no port"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

export async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.on("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes a file that the PostgreSQL user owns (chown when we are root). */
export function writeFileForPg(file: string, content: string, mode = 0o600): void {
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  if (isRoot()) {
    const { uid, gid } = pgUserIds();
    fs.chownSync(file, uid, gid);
  }
}
