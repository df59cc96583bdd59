/**
 * Wires the sidecar together for a real host: the journal in DATA/journal on
 * the real disk, the adjudicator rebuilt from the journal's recent history,
 * the sans-I/O `Sidecar`, and the Unix-socket server. Used by the process
 * entry (`main.ts`) and by tests that run a sidecar in-process.
 */
import fs from "node:fs";
import path from "node:path";
import type { Clock, Timers } from "../clock";
import { Adjudicator } from "../adjudicator";
import { FsDisk } from "../io/fs-disk";
import { SystemClock, SystemTimers } from "../io/system-clock";
import { Journal } from "../journal";
import type { JournalRecovery } from "../journal";
import { nativeAvailable, realtimeMicros } from "../native";
import { silent_logger } from "./log";
import type { Logger } from "./log";
import { SidecarServer } from "./server";
import type { SocketOwner } from "./server";
import { horizonAt, Sidecar } from "./sidecar";

export interface StartSidecarOptions {
  /** Durable state lives under it (DATA/journal). Created 0700 if missing. */
  dataDir: string;
  socketPath: string;
  /** Largest frame payload accepted (default and maximum frame_payload_bytes_max). */
  maxFrameBytes?: number;
  maxConnections?: number;
  maxInFlightPerConnection?: number;
  socketOwner?: SocketOwner | null;
  clock?: Clock;
  timers?: Timers;
  logger?: Logger;
  /** Called once if the journal fails; the process entry exits 1. Default: log only. */
  onFatal?: (error: unknown) => void;
}

export interface ReadyEvent {
  event: "ready";
  pid: number;
  socket: string;
  journal: { lastTau: number; recovered: number; truncatedBytes: number };
}

export interface RunningSidecar {
  readonly socketPath: string;
  readonly journalDir: string;
  readonly recovery: JournalRecovery;
  /** Journal entries replayed into the adjudicator (those newer than its horizon). */
  readonly replayed: number;
  readonly sidecar: Sidecar;
  readonly server: SidecarServer;
  readonly journal: Journal;
  /** The line `main.ts` prints once listening. */
  readonly ready: ReadyEvent;
  /** Stops accepting, lets pending appends finish, closes the journal and removes the socket. */
  close(): Promise<void>;
}

/** A clock that reads CLOCK_REALTIME through the native addon in whole microseconds. */
class NativeRealtimeClock implements Clock {
  nowMicros(): number {
    return realtimeMicros();
  }
}

/** The best real clock on this host: the native microsecond clock, or the millisecond fallback. */
export function realClock(): Clock {
  return nativeAvailable() ? new NativeRealtimeClock() : new SystemClock();
}

export async function startSidecar(options: StartSidecarOptions): Promise<RunningSidecar> {
  const clock = options.clock ?? realClock();
  const timers = options.timers ?? new SystemTimers();
  const logger = options.logger ?? silent_logger;
  const dataDir = path.resolve(options.dataDir);
  const journalDir = path.join(dataDir, "journal");
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  const journal = await Journal.open({ dir: journalDir, disk: new FsDisk(), clock });
  let server: SidecarServer | null = null;
  try {
    const horizon = horizonAt(clock.nowMicros());
    const adjudicator = new Adjudicator({ horizonTau: horizon });
    let fatal = false;
    const sidecar = new Sidecar({
      journal,
      adjudicator,
      clock,
      timers,
      logger,
      onFatal: (error) => {
        fatal = true;
        server?.stopAccepting();
        (options.onFatal ?? (() => undefined))(error);
      },
    });
    const replayed = await sidecar.recover(journal.readFrom(Math.max(0, horizon)));
    server = await SidecarServer.listen({
      socketPath: options.socketPath,
      sidecar,
      logger,
      payloadBytesMax: options.maxFrameBytes,
      maxConnections: options.maxConnections,
      maxInFlightPerConnection: options.maxInFlightPerConnection,
      socketOwner: options.socketOwner ?? null,
    });
    sidecar.start();
    const recovery = journal.recovery;
    const ready: ReadyEvent = {
      event: "ready",
      pid: process.pid,
      socket: server.socketPath,
      journal: {
        lastTau: journal.lastTau,
        recovered: recovery.entries,
        truncatedBytes: recovery.truncatedBytes,
      },
    };
    logger.log("info", "recovered", { ...recovery, replayed, horizon });
    const listening = server;
    let closing: Promise<void> | null = null;
    const close = async (): Promise<void> => {
      listening.stopAccepting();
      await sidecar.stop();
      await listening.close();
      try {
        await journal.close();
      } catch (error) {
        if (!fatal) throw error;
      }
    };
    return {
      socketPath: listening.socketPath,
      journalDir,
      recovery,
      replayed,
      sidecar,
      server: listening,
      journal,
      ready,
      close: () => (closing ??= close()),
    };
  } catch (error) {
    await server?.close().catch(() => undefined);
    await journal.close().catch(() => undefined);
    throw error;
  }
}
