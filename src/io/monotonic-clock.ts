/**
 * CLOCK_MONOTONIC in microseconds, for leases (docs/replication.md §6): the
 * sidecar sends `lease_until_us` on this clock and the extension compares it
 * with `clock_gettime(CLOCK_MONOTONIC)` on the same host. On Linux
 * `process.hrtime.bigint()` reads CLOCK_MONOTONIC. Not a wall clock: never use
 * it for taus.
 */
import type { Clock, Micros } from "../clock";

const ns_per_us = 1000n;

export class MonotonicClock implements Clock {
  nowMicros(): Micros {
    return Number(process.hrtime.bigint() / ns_per_us);
  }
}
