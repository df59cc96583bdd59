/**
 * A real local cluster for end-to-end tests: a temp directory, the sidecar
 * process and N PostgreSQL QPs started through src/cluster, pg clients to
 * them, and a stop that always runs. Nothing here is faked.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "pg";
import { down, status, up, type ClusterStatus } from "../../src/cluster";
import { ClusterLayout } from "../../src/cluster/layout";
import { qpPid, startQp as startQpProcess } from "../../src/cluster/postgres";
import { sleepMs } from "../../src/cluster/system";
import { startSidecar, stopSidecar, type SidecarReady } from "../../src/cluster/sidecar-process";

export interface LocalCluster {
  readonly dir: string;
  readonly layout: ClusterLayout;
  readonly status: () => ClusterStatus;
  /** A connected client to QP `index`; closed by `stop()`. */
  client(index?: number): Promise<Client>;
  /** SIGKILL QP `index`: its postmaster and every backend (pg_ctl gives them a process group). */
  killQp(index: number): Promise<void>;
  /** Starts QP `index` again (crash recovery runs first). */
  startQp(index: number): void;
  /** SIGKILL the sidecar and wait until it is gone. */
  killSidecar(): Promise<void>;
  stopSidecar(): Promise<void>;
  /** Starts the sidecar again and returns its ready line. */
  startSidecar(): Promise<SidecarReady>;
  stop(): Promise<void>;
}

export async function startLocalCluster(
  options: {
    qps?: number;
    journals?: number;
    replication?: boolean;
    pgSettings?: Record<string, string>;
  } = {},
): Promise<LocalCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ordo-e2e-"));
  const layout = new ClusterLayout(dir);
  const clients: Client[] = [];
  await up({
    dir,
    qps: options.qps ?? 1,
    journals: options.journals ?? 1,
    replication: options.replication ?? false,
    pgSettings: options.pgSettings ?? {},
  });
  const sidecarLaunch = {
    dataDir: layout.sidecarData,
    socket: layout.sidecarSocket,
    logFile: layout.sidecarLog,
    pidFile: layout.sidecarPidFile,
  };
  return {
    dir,
    layout,
    status: () => status({ dir }),
    async client(index = 0) {
      const qp = status({ dir }).qps[index];
      if (!qp) throw new Error(`no QP ${index}`);
      const client = new Client({ connectionString: qp.url });
      client.on("error", () => undefined); // a terminated backend must not crash the test run
      await client.connect();
      clients.push(client);
      return client;
    },
    async killQp(index: number) {
      const pid = status({ dir }).qps[index]?.pid;
      if (!pid) throw new Error(`QP ${index} is not running`);
      process.kill(-pid, "SIGKILL");
      while (qpPid(layout.qp(index)) !== null) await sleepMs(20);
      await sleepMs(100); // let the kernel reap the group before a restart reuses its shared memory
    },
    startQp(index: number) {
      startQpProcess(layout.qp(index));
    },
    async killSidecar() {
      await stopSidecar(layout.sidecarPidFile, "SIGKILL");
    },
    async stopSidecar() {
      await stopSidecar(layout.sidecarPidFile, "SIGTERM");
    },
    async startSidecar() {
      return startSidecar(sidecarLaunch);
    },
    async stop() {
      await Promise.allSettled(clients.map((c) => c.end()));
      try {
        await down({ dir, immediate: true });
      } finally {
        if (!process.env.ORDO_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Runs `fn` and returns the error's SQLSTATE and message, or null when it succeeded. */
export async function sqlError(
  fn: () => Promise<unknown>,
): Promise<{ code: string; message: string } | null> {
  try {
    await fn();
    return null;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { code: e.code ?? "?", message: e.message ?? String(err) };
  }
}
