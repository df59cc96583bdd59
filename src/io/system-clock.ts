/**
 * The real clock and timers: the only place in ordo that reads wall time or
 * arms Node timers. Components get these through their constructors.
 */
import type { Clock, Micros, TimerHandle, Timers } from "../clock";

const us_per_ms = 1000;

/**
 * Wall-clock (CLOCK_REALTIME) microseconds. The journal's tau_commit must
 * never fall below a CLOCK_REALTIME reading the extension took before sending
 * a commit on the same host, so this clock rounds up to the end of the
 * current millisecond rather than down: a reading is never behind the real
 * time. (The native addon's microsecond clock replaces this where loaded.)
 */
export class SystemClock implements Clock {
  nowMicros(): Micros {
    return (Date.now() + 1) * us_per_ms - 1;
  }
}

interface NodeTimerHandle extends TimerHandle {
  readonly timer: NodeJS.Timeout;
}

export class SystemTimers implements Timers {
  #next = 1;

  schedule(delayMicros: Micros, fn: () => void): TimerHandle {
    const timer = setTimeout(fn, Math.max(0, delayMicros / us_per_ms));
    const handle: NodeTimerHandle = { id: this.#next++, timer };
    return handle;
  }

  cancel(handle: TimerHandle): void {
    clearTimeout((handle as NodeTimerHandle).timer);
  }
}
