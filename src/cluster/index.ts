/**
 * A local ordo cluster in one directory: one sidecar and N PostgreSQL QPs
 * with the `ordo` extension, started and stopped by `ordo up` / `ordo down`.
 *
 * `up` initializes the directory once (initdb per QP, free loopback ports),
 * starts the sidecar, then the QPs, installs the extension, and reports the
 * connection URLs. Later `up`s reuse the directory and its data.
 */
import fs from "node:fs";
import { ClusterLayout } from "./layout";
import {
  configureQp,
  initQp,
  installExtension,
  qpPid,
  qpSystemIdentifier,
  qpUrl,
  startQp,
  stopQp,
  type QpSettings,
  waitUntilLive,
} from "./postgres";
import { sidecarPid, startSidecar, stopSidecar } from "./sidecar-process";
import { freePort, mkdirForPg, portIsFree } from "./system";

export { ClusterLayout } from "./layout";

export const qps_max = 16;
export const journals_default = 1;

interface ClusterConfig {
  readonly version: 1;
  qps: { port: number }[];
  /** Journals the sidecar runs (absent in older directories: 1). */
  journals?: number;
}

export interface UpOptions {
  readonly dir: string;
  readonly qps?: number;
  /** Extra postgresql.conf settings for every QP. */
  readonly pgSettings?: Record<string, string>;
  /** Extra command-line arguments for the sidecar. */
  readonly sidecarArgs?: readonly string[];
  /** Journals the sidecar runs; stored in cluster.json, so later `up`s keep it. Default 1. */
  readonly journals?: number;
  /**
   * Active-active replication on the QPs (`ordo.replication = on`,
   * `synchronous_commit = off`, docs/replication.md). Default true; false
   * gives QPs that commit through the sidecar but keep their own data.
   */
  readonly replication?: boolean;
  /**
   * Extra environment variables for the sidecar process this call starts
   * (tests use ORDO_PLANTED_BUGS). Not stored: a sidecar started later by
   * another `up` does not get them.
   */
  readonly env?: Readonly<Record<string, string>>;
}

export interface ClusterStatus {
  qps: {
    url: string;
    port: number;
    pid?: number | null;
    dataDir: string;
    /** What the sidecar keys the QP's progress by (`ordo qp-progress`); null before initdb. */
    systemIdentifier?: string | null;
  }[];
  sidecar: { socket: string; dataDir: string; log: string; pid?: number | null };
}

function readConfig(layout: ClusterLayout): ClusterConfig | null {
  if (!fs.existsSync(layout.configFile)) return null;
  const config = JSON.parse(fs.readFileSync(layout.configFile, "utf8")) as ClusterConfig;
  if (config.version !== 1 || !Array.isArray(config.qps) || config.qps.length === 0) {
    throw new Error(`${layout.configFile}: not an ordo cluster configuration`);
  }
  return config;
}

function writeConfig(layout: ClusterLayout, config: ClusterConfig): void {
  fs.writeFileSync(layout.configFile, JSON.stringify(config, null, 2) + "\n");
}

async function prepare(layout: ClusterLayout, qpCount: number): Promise<ClusterConfig> {
  if (!Number.isInteger(qpCount) || qpCount < 1 || qpCount > qps_max) {
    throw new RangeError(`--qps must be an integer from 1 to ${qps_max}, got ${qpCount}`);
  }
  // PostgreSQL's user must be able to pass through DIR to reach its data.
  fs.mkdirSync(layout.dir, { recursive: true });
  fs.chmodSync(layout.dir, 0o755);
  const config = readConfig(layout) ?? { version: 1, qps: [] };
  if (config.qps.length > 0 && config.qps.length !== qpCount) {
    throw new Error(
      `${layout.dir} was initialized with ${config.qps.length} QP(s); ` +
        `use --qps ${config.qps.length} or a new --dir`,
    );
  }
  while (config.qps.length < qpCount) config.qps.push({ port: 0 });
  for (const [index, qp] of config.qps.entries()) {
    // A running QP keeps its port; a stopped one moves if something took it.
    if (qpPid(layout.qp(index)) !== null) continue;
    if (qp.port === 0 || !(await portIsFree(qp.port))) qp.port = await freePort();
  }
  mkdirForPg(layout.runDir, 0o700);
  mkdirForPg(layout.logDir, 0o755);
  fs.mkdirSync(layout.sidecarData, { recursive: true, mode: 0o700 });
  writeConfig(layout, config);
  return config;
}

/** Starts (initializing once) the sidecar and every QP; returns their status. */
export async function up(options: UpOptions): Promise<ClusterStatus> {
  const layout = new ClusterLayout(options.dir);
  const existing = readConfig(layout);
  const config = await prepare(layout, options.qps ?? existing?.qps.length ?? 1);
  const journals = options.journals ?? config.journals ?? journals_default;
  if (!Number.isInteger(journals) || journals < 1) {
    throw new RangeError(`--journals must be a positive integer, got ${journals}`);
  }
  if (config.journals !== journals) {
    config.journals = journals;
    writeConfig(layout, config);
  }
  if (sidecarPid(layout.sidecarPidFile) === null) {
    await startSidecar({
      dataDir: layout.sidecarData,
      socket: layout.sidecarSocket,
      logFile: layout.sidecarLog,
      pidFile: layout.sidecarPidFile,
      extraArgs: ["--journals", String(journals), ...(options.sidecarArgs ?? [])],
      ...(options.env !== undefined ? { env: options.env } : {}),
    });
  }
  const replicationSettings: Record<string, string> =
    options.replication === false ? {} : { "ordo.replication": "on", synchronous_commit: "off" };
  try {
    for (const [index, { port }] of config.qps.entries()) {
      const qp = layout.qp(index);
      const settings: QpSettings = {
        port,
        sidecarSocket: layout.sidecarSocket,
        extra: { ...replicationSettings, ...(options.pgSettings ?? {}) },
      };
      initQp(qp);
      if (qpPid(qp) === null) {
        configureQp(qp, settings);
        startQp(qp);
      }
      await installExtension(port);
      if (options.replication !== false) await waitUntilLive(port);
    }
  } catch (err) {
    await down({ dir: layout.dir });
    throw err;
  }
  return status({ dir: layout.dir });
}

/** Stops every QP, then the sidecar. Safe to call on a stopped cluster. */
export async function down(options: { dir: string; immediate?: boolean }): Promise<void> {
  const layout = new ClusterLayout(options.dir);
  const config = readConfig(layout);
  if (config === null) throw new Error(`${layout.dir} is not an ordo cluster directory`);
  const errors: unknown[] = [];
  for (let index = 0; index < config.qps.length; index++) {
    try {
      stopQp(layout.qp(index), options.immediate ? "immediate" : "fast");
    } catch (err) {
      errors.push(err);
    }
  }
  await stopSidecar(layout.sidecarPidFile);
  if (errors.length > 0) throw errors[0];
}

/** The cluster's URLs, sockets and process ids (null where not running). */
export function status(options: { dir: string }): ClusterStatus {
  const layout = new ClusterLayout(options.dir);
  const config = readConfig(layout);
  if (config === null) throw new Error(`${layout.dir} is not an ordo cluster directory`);
  return {
    qps: config.qps.map(({ port }, index) => ({
      url: qpUrl(port),
      port,
      pid: qpPid(layout.qp(index)),
      dataDir: layout.qp(index).data,
      systemIdentifier: qpSystemIdentifier(layout.qp(index)),
    })),
    sidecar: {
      socket: layout.sidecarSocket,
      dataDir: layout.sidecarData,
      log: layout.sidecarLog,
      pid: sidecarPid(layout.sidecarPidFile),
    },
  };
}
