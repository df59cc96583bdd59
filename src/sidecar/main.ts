/**
 * The sidecar process entry:
 *
 *   node dist/src/sidecar/main.js --data-dir DIR --socket PATH
 *        [--max-frame-bytes N] [--max-connections N] [--socket-owner USER]
 *        [--engine native|js] [--journals N] [--journal-fence-ms MS]
 *        [--journal-keep-s S] [--journal-retention-ms MS]
 *
 * Opens the journal in DIR/journal, rebuilds the adjudicator from its recent
 * history, listens on PATH, then prints exactly one JSON line to stdout:
 * `{"event":"ready","pid":...,"socket":"...","journal":{...}}`. Logs are JSON
 * lines on stderr. SIGTERM or SIGINT stops accepting, lets in-flight appends
 * finish, closes the journal, removes the socket and exits 0. A journal
 * failure exits 1: recovery is a restart, which replays the journal.
 * SIGUSR2 logs a `stats` line (commit latency, visibility waits) for the
 * window since the last one and starts a new window: a benchmark measures
 * its run alone, not the load before it.
 *
 * ORDO_PLANTED_BUGS (comma-separated names, docs/checker.md "Planted bugs")
 * starts it with deliberate bugs, for tests of the history checker. This is
 * the only place that reads it; a warning line says so at start.
 */
import fs from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { defaultConflictEngine } from "../adjudicator";
import type { ConflictEngine } from "../adjudicator";
import { nativeAvailable } from "../native";
import { frame_payload_bytes_max } from "../protocol";
import { JsonLineLogger } from "./log";
import type { Logger } from "./log";
import { connections_max_default } from "./server";
import type { SocketOwner } from "./server";
import { retention_interval_us_default, retention_keep_us_default } from "./retention";
import { parsePlantedBugs, planted_bugs_env, startSidecar } from "./start";
import type { RunningSidecar } from "./start";

const exit_fatal = 1;

function parseCount(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed <= 0) {
    throw new InvalidArgumentError("must be a positive integer");
  }
  return parsed;
}

/** A user name from /etc/passwd, or a numeric uid[:gid]. */
export function resolveSocketOwner(spec: string): SocketOwner {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(spec);
  if (numeric !== null) {
    const uid = Number(numeric[1]);
    return { uid, gid: numeric[2] === undefined ? uid : Number(numeric[2]) };
  }
  for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
    const fields = line.split(":");
    if (fields[0] === spec && fields.length >= 4) {
      return { uid: Number(fields[2]), gid: Number(fields[3]) };
    }
  }
  throw new InvalidArgumentError(`no such user: ${spec}`);
}

/** The conflict table engine; native needs the built addon. */
export function parseEngine(value: string): ConflictEngine {
  if (value !== "native" && value !== "js") {
    throw new InvalidArgumentError('must be "native" or "js"');
  }
  if (value === "native" && !nativeAvailable()) {
    throw new InvalidArgumentError("the native addon is not loaded (build it with node-gyp)");
  }
  return value;
}

function parseMillis(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n) || n > 60_000) {
    throw new InvalidArgumentError("must be a number of milliseconds from 0 to 60000");
  }
  return n;
}

function parseKeepSeconds(value: string): number {
  const n = Number(value);
  const least = retention_keep_us_default / 1e6;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < least) {
    throw new InvalidArgumentError(`must be a whole number of seconds, at least ${least}`);
  }
  return n;
}

function parseRetentionMillis(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n > 3_600_000) {
    throw new InvalidArgumentError("must be a whole number of milliseconds from 0 to 3600000");
  }
  return n;
}

interface CliOptions {
  engine: ConflictEngine;
  dataDir: string;
  socket: string;
  maxFrameBytes: number;
  maxConnections: number;
  journals: number;
  journalFenceMs: number;
  journalKeepS: number;
  journalRetentionMs: number;
  socketOwner?: SocketOwner;
}

async function main(): Promise<void> {
  const program = new Command()
    .name("ordo-sidecar")
    .description("ordo's commit sidecar: adjudicates and journals commits sent over a Unix socket")
    .requiredOption("--data-dir <dir>", "durable state (the journal lives in DIR/journal)")
    .requiredOption("--socket <path>", "Unix socket to listen on (its directory must be 0700)")
    .option(
      "--max-frame-bytes <n>",
      "largest frame payload accepted",
      parseCount,
      frame_payload_bytes_max,
    )
    .option(
      "--max-connections <n>",
      "connections served at once",
      parseCount,
      connections_max_default,
    )
    .option(
      "--engine <engine>",
      "conflict table engine: native or js (default native when the addon is loaded)",
      parseEngine,
      defaultConflictEngine(),
    )
    .option(
      "--journals <n>",
      "journals to run (DIR/journal/0..N-1); each commit goes whole into one",
      parseCount,
      1,
    )
    .option(
      "--journal-fence-ms <ms>",
      "fence a journal whose fsync has waited this long: its commits go to another journal (0: off)",
      parseMillis,
      0,
    )
    .option(
      "--journal-keep-s <s>",
      "keep journal records this long below the clock and below each QP's progress (at least the history horizon)",
      parseKeepSeconds,
      retention_keep_us_default / 1e6,
    )
    .option(
      "--journal-retention-ms <ms>",
      "how often segments nobody needs are removed (0: keep every segment forever)",
      parseRetentionMillis,
      retention_interval_us_default / 1000,
    )
    .option(
      "--socket-owner <user>",
      "chown the socket and its directory to this user",
      resolveSocketOwner,
    )
    .parse(process.argv);
  const cli = program.opts<CliOptions>();
  const logger: Logger = new JsonLineLogger(
    (line) => process.stderr.write(line),
    () => new Date().toISOString(),
  );

  const plantedBugs = parsePlantedBugs(process.env[planted_bugs_env]);
  if (plantedBugs.length > 0) {
    logger.log("warn", "planted_bugs", {
      bugs: plantedBugs,
      message: `PLANTED BUGS ON (${plantedBugs.join(", ")}): this sidecar is broken on purpose; never use it for data`,
    });
  }

  let running: RunningSidecar | null = null;
  let stopping = false;
  const onFatal = (error: unknown): void => {
    logger.log("error", "fatal", { error });
    process.exitCode = exit_fatal;
    // Pending replies (ERROR unavailable) get one turn to leave, then the process ends.
    setImmediate(() => process.exit(exit_fatal));
  };
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.log("info", "stopping", { signal });
    const current = running;
    if (current === null) process.exit(0);
    current.close().then(
      () => {
        logger.log("info", "stopped", { commits: current.sidecar.commitCount });
        process.exit(0);
      },
      (error: unknown) => {
        logger.log("error", "stop_failed", { error });
        process.exit(exit_fatal);
      },
    );
  };
  // SIGUSR2: log the stats of the window since the last one (or the start) and start a new one.
  process.on("SIGUSR2", () => {
    if (running !== null) logger.log("info", "stats", { window: true, ...running.takeStats() });
  });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  running = await startSidecar({
    dataDir: cli.dataDir,
    socketPath: cli.socket,
    maxFrameBytes: cli.maxFrameBytes,
    maxConnections: cli.maxConnections,
    socketOwner: cli.socketOwner ?? null,
    engine: cli.engine,
    journals: cli.journals,
    journalFenceAfterUs: Math.round(cli.journalFenceMs * 1000),
    journalKeepUs: cli.journalKeepS * 1_000_000,
    retentionIntervalUs: cli.journalRetentionMs * 1000,
    plantedBugs,
    logger,
    onFatal,
  });
  process.stdout.write(`${JSON.stringify(running.ready)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level: "error", event: "start_failed", error: { name: (error as Error).name, message: (error as Error).message, code: (error as { code?: unknown }).code } })}\n`,
  );
  process.exit(exit_fatal);
});
