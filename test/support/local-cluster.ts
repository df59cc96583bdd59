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
import { startSidecar, stopSidecar, type SidecarReady } from "../../src/cluster/sidecar-process";

export interface LocalCluster {
  readonly dir: string;
  readonly layout: ClusterLayout;
  readonly status: () => ClusterStatus;
  /** A connected client to QP `index`; closed by `stop()`. */
  client(index?: number): Promise<Client>;
  /** SIGKILL the sidecar and wait until it is gone. */
  killSidecar(): Promise<void>;
  stopSidecar(): Promise<void>;
  /** Starts the sidecar again and returns its ready line. */
  startSidecar(): Promise<SidecarReady>;
  stop(): Promise<void>;
}

export async function startLocalCluster(
  options: { qps?: number; pgSettings?: Record<string, string> } = {},
): Promise<LocalCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ordo-e2e-"));
  const layout = new ClusterLayout(dir);
  const clients: Client[] = [];
  await up({ dir, qps: options.qps ?? 1, pgSettings: options.pgSettings ?? {} });
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
