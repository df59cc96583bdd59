/**
 * Wires the sidecar together for a real host: N journals in DATA/journal/<j>
 * on the real disk, the adjudicator rebuilt from all of their recent history
 * (merged by tau), the sans-I/O `Sidecar`, the crossbar service with its
 * subscriptions (`Replication`), and the Unix-socket server. Used by the process
 * entry (`main.ts`) and by tests that run a sidecar in-process.
 *
 * `plantedBugs` turns on deliberate bugs for tests of the history checker
 * (docs/checker.md, "Planted bugs"); only `main.ts` reads them, from
 * ORDO_PLANTED_BUGS.
 */
import fs from "node:fs";
import path from "node:path";
import type { Clock, TimerHandle, Timers } from "../clock";
import { Adjudicator, planted_snapshot_skew_us } from "../adjudicator/adjudicator";
import type { ConflictEngine } from "../adjudicator";
import { DirLock } from "../io/dir-lock";
import { FsDisk } from "../io/fs-disk";
import { QpProgressFile } from "./qp-progress-file";
import { MonotonicClock } from "../io/monotonic-clock";
import { SystemClock, SystemTimers } from "../io/system-clock";
import { JournalSet } from "../journal";
import type { JournalSetRecovery } from "../journal";
import { nativeAvailable, realtimeMicros } from "../native";
import { silent_logger } from "./log";
import type { Logger } from "./log";
import { SidecarServer } from "./server";
import type { SocketOwner } from "./server";
import {
  Retention,
  RetentionError,
  retention_interval_us_default,
  retention_keep_us_default,
} from "./retention";
import { Sidecar, startHorizon } from "./sidecar";
import { Replication } from "./subscriptions";
import { WaitStats, type WaitSummary } from "./wait-stats";

/** Bugs the sidecar can be started with (docs/checker.md, "Planted bugs"). Off by default. */
export const sidecar_planted_bugs = [
  "adjudicator-ignores-in-flight",
  "adjudicator-wrong-timestamp",
  "journal-acks-before-fsync",
] as const;
export type SidecarPlantedBug = (typeof sidecar_planted_bugs)[number];
/** How long `journal-acks-before-fsync` holds a group between acknowledging and writing it. */
export const planted_fsync_delay_ms = 200;

export function isSidecarPlantedBug(name: string): name is SidecarPlantedBug {
  return (sidecar_planted_bugs as readonly string[]).includes(name);
}

/** The environment variable that plants bugs; unset or empty means none. */
export const planted_bugs_env = "ORDO_PLANTED_BUGS";

/** Parses the value of ORDO_PLANTED_BUGS (main.ts reads it); an unknown name is an error, never ignored. */
export function parsePlantedBugs(value: string | undefined): SidecarPlantedBug[] {
  if (value === undefined || value.trim() === "") return [];
  const names = value
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  for (const name of names) {
    if (!isSidecarPlantedBug(name)) {
      throw new RangeError(
        `${planted_bugs_env}: unknown bug ${JSON.stringify(name)} (known: ${sidecar_planted_bugs.join(", ")})`,
      );
    }
  }
  return names as SidecarPlantedBug[];
}

export interface StartSidecarOptions {
  /** Deliberate bugs, for tests of the history checker only. Default none. */
  plantedBugs?: readonly SidecarPlantedBug[];
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
  /** The adjudicator's conflict table: native (default when the addon is loaded) or the TypeScript twin. */
  engine?: ConflictEngine;
  /** Called once if the journal fails; the process entry exits 1. Default: log only. */
  onFatal?: (error: unknown) => void;
  /** Journals to run (default 1); each commit goes whole into one of them. */
  journals?: number;
  /**
   * Fence a journal whose group has waited this long (µs) for its fsync: its
   * group is voided and placed in another journal (journal-set.ts). Default
   * 0, off: on one disk a stalled fsync usually stalls every journal's.
   */
  journalFenceAfterUs?: number;
  /** CLOCK_MONOTONIC for leases. Default: the real one. */
  monotonic?: Clock;
  /** Lease carried by each WATERMARK (default lease_us_default, 2 s). */
  leaseUs?: number;
  /** A QP lagging the release point by more than this loses its lease (default 2 s). */
  fenceAfterUs?: number;
  /** Heartbeat of idle journals while there are subscriptions (default 50 ms). */
  heartbeatIntervalUs?: number;
  /** Bytes a live subscription may hold unsent before it moves to catch-up. */
  subscriptionBufferBytesMax?: number;
  /**
   * Journal retention (retention.ts): records stay while within this many µs
   * below the clock or below any QP's reported progress. Default and minimum:
   * the history horizon's window (310 s).
   */
  journalKeepUs?: number;
  /** How often retention runs (µs, default 10 s); 0 turns it off (segments are kept forever). */
  retentionIntervalUs?: number;
  /** A journal segment's size bound (default journal_segment_bytes_default, 64 MiB). */
  journalSegmentBytesMax?: number;
}

/** What `RunningSidecar.takeStats` answers (and the `stats` log line holds). */
export interface SidecarStatsWindow {
  visibleWait: WaitSummary;
  commitLatency: WaitSummary;
  /** Each journal group's writes and fsync, from its taus to the fsync's return. */
  journalSync: WaitSummary;
  journalFences: number;
}

/** One journal's recovery in the ready line. */
export interface ReadyJournal {
  journal: number;
  lastTau: number;
  recovered: number;
  truncatedBytes: number;
}

export interface ReadyEvent {
  event: "ready";
  pid: number;
  socket: string;
  /** All journals together. */
  journal: { lastTau: number; recovered: number; truncatedBytes: number };
  /** Each journal. */
  journals: ReadyJournal[];
}

export interface RunningSidecar {
  readonly socketPath: string;
  readonly journalDir: string;
  readonly recovery: JournalSetRecovery;
  /** Journal entries replayed into the adjudicator (those newer than its horizon). */
  readonly replayed: number;
  readonly sidecar: Sidecar;
  readonly server: SidecarServer;
  /** Every journal (`readFrom` merges them by tau). */
  readonly journal: JournalSet;
  readonly replication: Replication;
  /** Journal retention, null when off (`retentionIntervalUs` 0). */
  readonly retention: Retention | null;
  /** The line `main.ts` prints once listening. */
  readonly ready: ReadyEvent;
  /** Commit latency and visibility waits since the last call (or the start), then a new window. */
  takeStats(): SidecarStatsWindow;
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

  if (
    options.journalKeepUs !== undefined &&
    !(options.journalKeepUs >= retention_keep_us_default)
  ) {
    throw new RetentionError(
      `journalKeepUs must be at least ${retention_keep_us_default} (the history horizon's window), ` +
        `got ${options.journalKeepUs}`,
    );
  }
  const bugs = new Set<SidecarPlantedBug>(options.plantedBugs ?? []);
  for (const bug of bugs) {
    if (!isSidecarPlantedBug(bug)) throw new RangeError(`unknown planted bug ${String(bug)}`);
  }
  // Before anything in the directory is opened: one sidecar per data directory.
  const lock = DirLock.acquire(dataDir);
  const journalSync = new WaitStats();
  const disk = new FsDisk();
  const journal = await JournalSet.open({
    dir: journalDir,
    disk,
    clock,
    journals: options.journals ?? 1,
    ...(options.journalSegmentBytesMax !== undefined
      ? { segmentBytesMax: options.journalSegmentBytesMax }
      : {}),
    fenceAfterUs: options.journalFenceAfterUs ?? 0,
    onSynced: (micros) => journalSync.record(micros),
    ...(bugs.has("journal-acks-before-fsync")
      ? {
          plantedBugs: {
            acksBeforeFsync: {
              delay: () =>
                new Promise<void>((resolve) => {
                  timers.schedule(planted_fsync_delay_ms * 1000, resolve);
                }),
            },
          },
        }
      : {}),
  }).catch((error: unknown) => {
    lock.release();
    throw error;
  });
  let replication: Replication | null = null;
  let server: SidecarServer | null = null;
  let retention: Retention | null = null;
  try {
    const horizon = startHorizon(clock.nowMicros(), journal.removedThroughTau);
    const adjudicator = new Adjudicator({
      horizonTau: horizon,
      engine: options.engine,
      plantedBugs: {
        ignoresInFlight: bugs.has("adjudicator-ignores-in-flight"),
        snapshotSkewUs: bugs.has("adjudicator-wrong-timestamp") ? planted_snapshot_skew_us : 0,
      },
    });
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
    replication = new Replication({
      journals: journal,
      monotonic: options.monotonic ?? new MonotonicClock(),
      timers,
      logger,
      leaseUs: options.leaseUs,
      fenceAfterUs: options.fenceAfterUs,
      heartbeatIntervalUs: options.heartbeatIntervalUs,
      subscriptionBufferBytesMax: options.subscriptionBufferBytesMax,
    });
    server = await SidecarServer.listen({
      socketPath: options.socketPath,
      sidecar,
      logger,
      payloadBytesMax: options.maxFrameBytes,
      maxConnections: options.maxConnections,
      maxInFlightPerConnection: options.maxInFlightPerConnection,
      socketOwner: options.socketOwner ?? null,
      replication,
    });
    sidecar.start();
    const retentionIntervalUs = options.retentionIntervalUs ?? retention_interval_us_default;
    if (retentionIntervalUs > 0) {
      const replicating = replication;
      const progressFile = new QpProgressFile(disk, dataDir);
      retention = new Retention({
        journals: journal,
        clock,
        timers,
        logger,
        store: progressFile,
        saved: await progressFile.load(),
        qpApplied: () => replicating.qpApplied(),
        lowestSentTau: () => replicating.service.lowestSentTau,
        intervalUs: retentionIntervalUs,
        ...(options.journalKeepUs !== undefined ? { keepUs: options.journalKeepUs } : {}),
      });
      retention.start();
    }
    // Stalled journals are looked for four times per fence interval (at least every millisecond).
    let fenceCheck: TimerHandle | null = null;
    if (journal.fencing) {
      const everyUs = Math.max(1_000, Math.floor((options.journalFenceAfterUs ?? 0) / 4));
      const check = (): void => {
        journal.checkFences();
        fenceCheck = timers.schedule(everyUs, check);
      };
      fenceCheck = timers.schedule(everyUs, check);
    }
    const recovery = journal.recovery();
    const ready: ReadyEvent = {
      event: "ready",
      pid: process.pid,
      socket: server.socketPath,
      journal: {
        lastTau: recovery.lastTau,
        recovered: recovery.entries,
        truncatedBytes: recovery.truncatedBytes,
      },
      journals: recovery.journals.map((r) => ({
        journal: r.journal,
        lastTau: r.lastTau,
        recovered: r.entries,
        truncatedBytes: r.truncatedBytes,
      })),
    };
    logger.log("info", "recovered", {
      ...recovery,
      replayed,
      horizon,
      removedThroughTau: journal.removedThroughTau,
      watermarkBound: journal.watermarkBound,
      voidRanges: journal.voidRanges.length,
    });
    const listening = server;
    const replicating = replication;
    const retaining = retention;
    let closing: Promise<void> | null = null;
    const takeStats = (): SidecarStatsWindow => {
      const window = {
        visibleWait: replicating.visibleWaits.summary(),
        commitLatency: listening.commitLatency.summary(),
        journalSync: journalSync.summary(),
        journalFences: journal.fences,
      };
      journalSync.reset();
      replicating.visibleWaits.reset();
      listening.commitLatency.reset();
      return window;
    };
    const close = async (): Promise<void> => {
      if (fenceCheck !== null) timers.cancel(fenceCheck);
      listening.stopAccepting();
      await retaining?.stop();
      await retaining
        ?.saveProgress()
        .catch((error: unknown) => logger.log("warn", "qp_progress_not_saved", { error }));
      await sidecar.stop();
      await listening.close();
      logger.log("info", "stats", { ...takeStats() });
      replicating.close();
      adjudicator.close();
      try {
        await journal.close();
      } catch (error) {
        if (!fatal) throw error;
      } finally {
        lock.release();
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
      replication: replicating,
      retention: retaining,
      ready,
      takeStats,
      close: () => (closing ??= close()),
    };
  } catch (error) {
    await retention?.stop();
    await server?.close().catch(() => undefined);
    replication?.close();
    await journal.close().catch(() => undefined);
    lock.release();
    throw error;
  }
}
