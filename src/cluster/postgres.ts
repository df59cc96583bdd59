/**
 * One PostgreSQL query processor (QP) of a local cluster: initdb, the
 * configuration that loads the `ordo` extension and points it at the
 * sidecar, start and stop through pg_ctl, and `CREATE EXTENSION ordo`.
 * This is launcher code (like src/io/), so it touches processes and files.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "pg";
import type { QpPaths } from "./layout";
import { mkdirForPg, runAsPgUser, writeFileForPg } from "./system";

export const pg_major_default = 15;

export function pgBinDir(): string {
  const major = Number(process.env.ORDO_PG_MAJOR ?? pg_major_default);
  return `/usr/lib/postgresql/${major}/bin`;
}

function pgBin(tool: string): string {
  const file = path.join(pgBinDir(), tool);
  if (!fs.existsSync(file)) {
    throw new Error(`${file} not found: install PostgreSQL first (npm run setup)`);
  }
  return file;
}

export interface QpSettings {
  readonly port: number;
  readonly sidecarSocket: string;
  /** Extra postgresql.conf lines (`name = value`), e.g. from tests. */
  readonly extra?: Record<string, string>;
}

/** initdb into `qp.data` (once) and create the QP's socket directory. */
export function initQp(qp: QpPaths): void {
  mkdirForPg(qp.root, 0o700);
  mkdirForPg(qp.socketDir, 0o700);
  if (fs.existsSync(path.join(qp.data, "PG_VERSION"))) return;
  mkdirForPg(qp.data, 0o700);
  runAsPgUser(pgBin("initdb"), [
    "-D",
    qp.data,
    "-U",
    "postgres",
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
  ]);
}

/** Writes `ordo.conf` (included from postgresql.conf) with the QP's settings. */
export function configureQp(qp: QpPaths, settings: QpSettings): void {
  const conf: Record<string, string> = {
    port: String(settings.port),
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${qp.socketDir}'`,
    shared_preload_libraries: "'ordo'",
    "ordo.sidecar_socket": `'${settings.sidecarSocket}'`,
    max_connections: "100",
    logging_collector: "off",
    ...settings.extra,
  };
  const body =
    "# Written by `ordo up`; edits are overwritten.\n" +
    Object.entries(conf)
      .map(([k, v]) => `${k} = ${v}`)
      .join("\n") +
    "\n";
  writeFileForPg(path.join(qp.data, "ordo.conf"), body);
  const main = path.join(qp.data, "postgresql.conf");
  const current = fs.readFileSync(main, "utf8");
  const include = "include_if_exists = 'ordo.conf'";
  if (!current.includes(include)) writeFileForPg(main, `${current}\n${include}\n`);
}

export function startQp(qp: QpPaths): void {
  mkdirForPg(path.dirname(qp.log), 0o755);
  runAsPgUser(pgBin("pg_ctl"), ["-D", qp.data, "-l", qp.log, "-w", "-t", "60", "-s", "start"]);
}

export function stopQp(qp: QpPaths, mode: "fast" | "immediate" = "fast"): void {
  if (qpPid(qp) === null) return;
  runAsPgUser(pgBin("pg_ctl"), ["-D", qp.data, "-w", "-t", "60", "-s", "-m", mode, "stop"]);
}

/** The postmaster's pid from postmaster.pid, or null when not running. */
export function qpPid(qp: QpPaths): number | null {
  try {
    const first = fs.readFileSync(path.join(qp.data, "postmaster.pid"), "utf8").split("\n")[0];
    const pid = Number(first);
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/**
 * The QP's system identifier (what `pg_control_system()` reports and the
 * sidecar keys a QP's progress by), read from the first field of
 * `global/pg_control`, in the host's byte order; null before initdb.
 */
export function qpSystemIdentifier(qp: QpPaths): string | null {
  let fd: number;
  try {
    fd = fs.openSync(path.join(qp.data, "global", "pg_control"), "r");
  } catch {
    return null;
  }
  try {
    const field = Buffer.alloc(8);
    if (fs.readSync(fd, field, 0, 8, 0) !== 8) return null;
    const id = os.endianness() === "LE" ? field.readBigUInt64LE(0) : field.readBigUInt64BE(0);
    return id.toString();
  } finally {
    fs.closeSync(fd);
  }
}

export function qpUrl(port: number, database = "postgres"): string {
  return `postgres://postgres@127.0.0.1:${port}/${database}`;
}

/** CREATE EXTENSION ordo in the QP's default database (idempotent). */
export async function installExtension(port: number): Promise<void> {
  // On a restarted QP the extension exists and guards every statement: it
  // refuses them (40001 OC002) until the applier holds a lease again.
  await queryWhileCatchingUp(port, "CREATE EXTENSION IF NOT EXISTS ordo");
}

export const qp_live_timeout_ms = 30_000;

/** Runs sql, retrying 40001 (a QP catching up, OC002) for up to qp_live_timeout_ms. */
async function queryWhileCatchingUp(port: number, sql: string): Promise<void> {
  const deadline = Date.now() + qp_live_timeout_ms;
  const client = new Client({ connectionString: qpUrl(port) });
  await client.connect();
  try {
    for (;;) {
      try {
        await client.query(sql);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== "40001" || Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  } finally {
    await client.end();
  }
}

/**
 * Waits until the QP serves transactions: with replication on, a QP refuses
 * them (40001 OC002) until its applier has subscribed and holds a lease.
 */
export async function waitUntilLive(port: number): Promise<void> {
  await queryWhileCatchingUp(port, "SELECT 1");
}
