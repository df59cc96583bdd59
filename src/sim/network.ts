/**
 * The simulated network between hosts. Each message takes a sampled latency.
 * A `fifo` link delivers in send order, like one TCP connection (the
 * journal → crossbar and crossbar → subscriber streams rely on it); other
 * links may lose and reorder messages (client requests and replies, whose
 * senders time out and resend). Partitions drop everything between two hosts
 * for a while. A message to a host that is down, or that crashed after the
 * send, is lost; one to a stalled host waits for the stall's end.
 */
import type { LatencyDist, Prng } from "./prng";
import { sampleLatency } from "./prng";
import type { SimHost, World } from "./world";

export interface LinkOptions {
  latency: LatencyDist;
  /** Deliver in send order (a stream). Default false. */
  fifo?: boolean;
  /** Probability that a message is lost (non-fifo links only). */
  lossP?: number;
  /** A second stream between the same hosts, with its own order (a hedged path). */
  channel?: string;
}

export class SimNetwork {
  readonly #world: World;
  readonly #prng: Prng;
  /** Last delivery time per fifo link. */
  readonly #lastDelivery = new Map<string, number>();
  /** Partitioned host pairs ("a:b", a < b) until a virtual time. */
  readonly #partitions = new Map<string, number>();
  sent = 0;
  lost = 0;

  constructor(world: World, prng: Prng) {
    this.#world = world;
    this.#prng = prng;
  }

  /** Drops every message between `a` and `b` for `durationUs`. */
  partition(a: SimHost, b: SimHost, durationUs: number): void {
    const key = a.id < b.id ? `${a.id}:${b.id}` : `${b.id}:${a.id}`;
    this.#partitions.set(key, this.#world.now + durationUs);
    this.#world.trace(`partition ${a.name} ${b.name} ${durationUs}`);
  }

  /** Sends a message; `deliver` runs on `to` when it arrives (if it does). */
  send(from: SimHost, to: SimHost, link: LinkOptions, deliver: () => void): void {
    this.sent += 1;
    if (!from.up || !to.up || this.#partitioned(from, to)) {
      this.lost += 1;
      return;
    }
    if (link.fifo !== true && (link.lossP ?? 0) > 0 && this.#prng.chance(link.lossP ?? 0)) {
      this.lost += 1;
      return;
    }
    let delay = sampleLatency(this.#prng, link.latency);
    if (link.fifo === true) {
      const key = `${from.id}>${to.id}${link.channel === undefined ? "" : `:${link.channel}`}`;
      const at = Math.max(this.#world.now + delay, this.#lastDelivery.get(key) ?? 0);
      this.#lastDelivery.set(key, at);
      delay = at - this.#world.now;
    }
    const incarnation = to.incarnation;
    this.#world.schedule(to, delay, () => {
      if (to.incarnation !== incarnation) return;
      deliver();
    });
  }

  #partitioned(a: SimHost, b: SimHost): boolean {
    const key = a.id < b.id ? `${a.id}:${b.id}` : `${b.id}:${a.id}`;
    const until = this.#partitions.get(key);
    return until !== undefined && this.#world.now < until;
  }
}
