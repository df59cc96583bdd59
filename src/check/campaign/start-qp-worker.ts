/**
 * Worker-thread entry that starts one QP with src/cluster/postgres.ts
 * `startQp`. `pg_ctl start -w` is synchronous and takes seconds after a crash
 * (PostgreSQL syncs the data directory, then replays WAL); run on the main
 * thread it would freeze every campaign client, so the fault injector runs
 * it here instead.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { QpPaths } from "../../cluster/layout";
import { startQp } from "../../cluster/postgres";

startQp(workerData as QpPaths);
parentPort?.postMessage("started");
