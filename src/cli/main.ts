/**
 * The `ordo` command line: `up`, `down` and `status` for a local cluster;
 * `qp-progress` and `forget-qp` for what journal retention holds for QPs.
 * Output meant for programs is one JSON line on stdout; words for people go
 * to stderr.
 */
import fs from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { registerCheckCommand } from "../check";
import { registerSimCommand } from "../sim/cli";
import { down, status, up, type ClusterStatus } from "../cluster";
import { ClusterLayout } from "../cluster/layout";
import { isRoot } from "../cluster/system";
import { DirLock, DirLockError } from "../io/dir-lock";
import { FsDisk } from "../io/fs-disk";
import { QpProgressFile } from "../sidecar/qp-progress-file";

const default_dir_root = "/var/lib/ordo/local";
const default_dir_user = ".ordo/cluster";
const foreground_poll_ms = 1000;

function defaultDir(): string {
  return process.env.ORDO_DIR ?? (isRoot() ? default_dir_root : default_dir_user);
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

/** The sidecar's data directory of the cluster in `dir`; throws if there is none. */
function sidecarDataOf(dir: string): string {
  const data = new ClusterLayout(dir).sidecarData;
  if (!fs.existsSync(data)) throw new Error(`no cluster in ${dir} (${data} does not exist)`);
  return data;
}

function withoutPids(s: ClusterStatus): unknown {
  return {
    qps: s.qps.map(({ url, port }) => ({ url, port })),
    sidecar: { socket: s.sidecar.socket, dataDir: s.sidecar.dataDir, log: s.sidecar.log },
  };
}

async function foreground(dir: string, started: ClusterStatus): Promise<void> {
  process.stderr.write(
    `ordo: cluster up in ${dir}\n` +
      started.qps.map((qp) => `  connect: psql ${qp.url}\n`).join("") +
      "  stop with Ctrl-C\n",
  );
  let stopping = false;
  const stop = async (reason: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`ordo: ${reason}, stopping the cluster\n`);
    try {
      await down({ dir });
      process.exit(0);
    } catch (err) {
      process.stderr.write(`ordo: ${(err as Error).message}\n`);
      process.exit(1);
    }
  };
  process.on("SIGINT", () => void stop("interrupted"));
  process.on("SIGTERM", () => void stop("terminated"));
  // The monitor keeps the process alive until a signal or a dead process stops the cluster.
  setInterval(() => {
    const now = status({ dir });
    if (now.sidecar.pid === null) void stop(`the sidecar exited (see ${now.sidecar.log})`);
    const dead = now.qps.find((qp) => qp.pid === null);
    if (dead) void stop(`the QP on port ${dead.port} exited`);
  }, foreground_poll_ms);
}

interface UpCommandOptions {
  dir: string;
  qps?: number;
  journals?: number;
  journalFenceMs?: string;
  journalKeepS?: string;
  replication: boolean;
  detach?: boolean;
}

export function buildProgram(): Command {
  const program = new Command();
  program.name("ordo").description("distributed SQL on stock PostgreSQL").showHelpAfterError();

  program
    .command("up")
    .description("initialize (once) and start a local cluster: a sidecar and N PostgreSQL QPs")
    .option("--dir <dir>", "cluster directory", defaultDir())
    .option("--qps <n>", "number of PostgreSQL query processors", parsePositiveInt)
    .option("--journals <n>", "journals the sidecar runs (kept for later ups)", parsePositiveInt)
    .option(
      "--journal-fence-ms <ms>",
      "fence a journal whose fsync has waited this long; its commits go to another journal (default off)",
    )
    .option(
      "--journal-keep-s <s>",
      "keep journal records this long below the clock and below each QP's progress (default 310)",
    )
    .option("--no-replication", "QPs keep their own data instead of applying every commit")
    .option("--detach", "start in the background and return")
    .action(async (opts: UpCommandOptions) => {
      const started = await up({
        dir: opts.dir,
        replication: opts.replication,
        ...(opts.qps ? { qps: opts.qps } : {}),
        ...(opts.journals ? { journals: opts.journals } : {}),
        sidecarArgs: [
          ...(opts.journalFenceMs !== undefined ? ["--journal-fence-ms", opts.journalFenceMs] : []),
          ...(opts.journalKeepS !== undefined ? ["--journal-keep-s", opts.journalKeepS] : []),
        ],
      });
      process.stdout.write(JSON.stringify(withoutPids(started)) + "\n");
      if (!opts.detach) await foreground(opts.dir, started);
    });

  program
    .command("down")
    .description("stop a local cluster")
    .option("--dir <dir>", "cluster directory", defaultDir())
    .action(async (opts: { dir: string }) => {
      await down({ dir: opts.dir });
    });

  program
    .command("status")
    .description("print the cluster's URLs and process ids as JSON")
    .option("--dir <dir>", "cluster directory", defaultDir())
    .action((opts: { dir: string }) => {
      process.stdout.write(JSON.stringify(status({ dir: opts.dir })) + "\n");
    });

  program
    .command("qp-progress")
    .description(
      "print each QP's progress as the sidecar last saved it: journal retention keeps every record a QP may still need",
    )
    .option("--dir <dir>", "cluster directory", defaultDir())
    .action(async (opts: { dir: string }) => {
      const file = new QpProgressFile(new FsDisk(), sidecarDataOf(opts.dir));
      const qps = [...(await file.load())].map(([id, tau]) => ({
        system_identifier: id.toString(),
        applied_tau: tau,
        applied_at: new Date(tau / 1000).toISOString(),
      }));
      process.stdout.write(JSON.stringify({ qps }) + "\n");
    });

  program
    .command("forget-qp")
    .description(
      "stop keeping journal records for a QP that is gone for good (the cluster must be down); " +
        "that QP can no longer catch up once they are removed",
    )
    .argument("<system-identifier>", "the QP's SELECT system_identifier FROM pg_control_system()")
    .option("--dir <dir>", "cluster directory", defaultDir())
    .action(async (id: string, opts: { dir: string }) => {
      if (!/^[0-9]{1,20}$/.test(id)) {
        throw new InvalidArgumentError(`a system identifier is a decimal number, got ${id}`);
      }
      const dataDir = sidecarDataOf(opts.dir);
      let lock: DirLock;
      try {
        lock = DirLock.acquire(dataDir);
      } catch (error) {
        if (error instanceof DirLockError) {
          throw new Error(
            `the sidecar is running (pid ${error.pid}); stop the cluster first: ordo down --dir ${opts.dir}`,
          );
        }
        throw error;
      }
      try {
        const file = new QpProgressFile(new FsDisk(), dataDir);
        const progress = await file.load();
        const tau = progress.get(BigInt(id));
        if (tau === undefined) {
          const known = [...progress.keys()].join(", ") || "none";
          throw new Error(`no QP ${id} in ${file.path} (known: ${known})`);
        }
        progress.delete(BigInt(id));
        await file.save(progress);
        process.stderr.write(`ordo: forgot QP ${id} (it had applied up to tau ${tau})\n`);
      } finally {
        lock.release();
      }
    });

  registerCheckCommand(program);
  registerSimCommand(program);
  return program;
}

/** Runs the command line `argv` (process.argv's shape); exits 1 with the message on an error. */
export function main(argv: readonly string[]): void {
  buildProgram()
    .parseAsync([...argv])
    .catch((err: unknown) => {
      process.stderr.write(`ordo: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}

// `node dist/src/cli/main.js ...`; bin/ordo.js (however it is linked) calls main itself.
if (require.main === module) main(process.argv);
