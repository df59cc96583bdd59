/**
 * Fault points inside component code that fire only in simulation
 * (FoundationDB's BUGGIFY). Each point takes a path that is legal but rare
 * in production — a group commit cut short, a batch split, a heartbeat
 * missed, a subscriber dropped to catch-up — so that the simulator's
 * checkers see those paths under every seed instead of once a month.
 *
 * Components take a `Buggify` like a clock (DESIGN §5); outside the
 * simulator it is `buggify_off`, whose `fires` is always false. A point must
 * never break a guarantee: it only picks another allowed behaviour.
 */

export const buggify_sites = [
  /** Journal: the group being cut takes only the first waiting append; the rest form later groups. */
  "journal.group-cut-short",
  /** Journal: a group is written one record per write before its one fsync (a crash can tear it between writes). */
  "journal.write-per-record",
  /** Journal set: a heartbeat raises no journal (watermarks lag until a commit or the next beat). */
  "journal-set.heartbeat-skipped",
  /** Sidecar: a batch stays open a millisecond, as behind a busy event loop, so that later requests join it. */
  "sidecar.batch-delayed",
  /** Sidecar: a batch adjudicates only its first request; the rest go to the next batch. */
  "sidecar.batch-split",
  /** Crossbar: a live subscription is sent back to catch up from the journals, as if its buffer were full. */
  "crossbar.fall-behind",
] as const;

export type BuggifySite = (typeof buggify_sites)[number];

export interface Buggify {
  /** True when the fault point fires this time. */
  fires(site: BuggifySite): boolean;
}

/** Production: no fault point ever fires. */
export const buggify_off: Buggify = { fires: () => false };
