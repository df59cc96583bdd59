/**
 * The simulator's `Buggify` (src/buggify): as in FoundationDB, each fault
 * point is switched on for a run with probability `enableP`, decided by the
 * seed the first time the point is reached; a point that is on fires with
 * probability `fireP` each time. So every run exercises a different few
 * rare paths, often, and the same seed replays them exactly.
 */
import type { Buggify, BuggifySite } from "../buggify";
import type { Prng } from "./prng";

export const buggify_enable_p = 0.25;
export const buggify_fire_p = 0.25;

export class SimBuggify implements Buggify {
  readonly #prng: Prng;
  readonly #enableP: number;
  readonly #fireP: number;
  /** Per point: its own stream when on for this run, null when off. */
  readonly #points = new Map<BuggifySite, Prng | null>();
  readonly #fired = new Map<BuggifySite, number>();

  constructor(prng: Prng, enableP = buggify_enable_p, fireP = buggify_fire_p) {
    this.#prng = prng;
    this.#enableP = enableP;
    this.#fireP = fireP;
  }

  fires(site: BuggifySite): boolean {
    let point = this.#points.get(site);
    if (point === undefined) {
      const stream = this.#prng.fork(site);
      point = stream.chance(this.#enableP) ? stream : null;
      this.#points.set(site, point);
    }
    if (point === null || !point.chance(this.#fireP)) return false;
    this.#fired.set(site, (this.#fired.get(site) ?? 0) + 1);
    return true;
  }

  /** How often each point fired in this run. */
  fired(): Partial<Record<BuggifySite, number>> {
    return Object.fromEntries(this.#fired) as Partial<Record<BuggifySite, number>>;
  }
}
