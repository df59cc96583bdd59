/*
 * replication.h - the contract between a QP's committing backends and its
 * applier (docs/replication.md §4-§6).
 *
 * The applier (applier.c, a background worker) follows the crossbar's total
 * order and keeps `applied_tau`: every commit at or below it is visible on
 * this QP. A backend whose commit was approved at tau C waits in PRE_COMMIT
 * for its turn, commits locally with the replication origin's progress set
 * to C, and tells the applier it is done, so that commits become visible in
 * the total order (invariant 5). The shared state lives in replication.c.
 *
 * Turn slot states, one slot per backend (indexed by MyProc->pgprocno):
 *
 *   NONE ──sent──► SENT ──verdict committed──► WAITING ──applier──► GRANTED
 *     ▲              │ (other verdict/error)                          │
 *     └──────────────┘                          local commit ─► DONE  │
 *                                               local abort  ─► FAILED┘
 *
 * The applier reaching a record of this QP looks up the slot by xid: SENT,
 * it waits; WAITING, it grants the turn and waits for DONE or FAILED; FAILED
 * or no slot, it applies the record itself (the backend is gone or its local
 * commit failed: the journal is the truth).
 */
#ifndef ORDO_REPLICATION_H
#define ORDO_REPLICATION_H

#include "postgres.h"

typedef enum OrdoTurnState {
  ORDO_TURN_NONE = 0,
  ORDO_TURN_SENT,    /* COMMIT_REQUEST sent, no verdict yet */
  ORDO_TURN_WAITING, /* committed at tau, waiting for the applier */
  ORDO_TURN_GRANTED, /* the applier reached tau: commit locally now */
  ORDO_TURN_DONE,    /* committed locally */
  ORDO_TURN_FAILED,  /* local commit failed or abandoned: apply from the record */
} OrdoTurnState;

/* Called from _PG_init: shared memory, GUCs of replication, the applier worker. */
extern void replication_init(void);

/* Whether this QP replicates (ordo.replication = on): with it off, commits
 * take no turns, wait for no visibility and every read is local. */
extern bool replication_enabled(void);

/* Every commit at or below it is visible on this QP (0 before the applier
 * applied anything; PG_INT64_MAX when replication is off). */
extern int64 replication_applied_tau(void);

/* ERROR 40001 OC002 unless this QP holds a live lease (docs/replication.md
 * §6), or XX000 if its applier stopped on an error. Called at a transaction's
 * first statement. No-op when replication is off. */
extern void replication_check_live(void);

/* Backend side of the turn protocol. */
extern void replication_turn_sent(TransactionId xid);
extern void replication_turn_verdict(bool committed, int64 tau_commit, int64 prev_tau);
/* Blocks (interruptibly, in PRE_COMMIT) until the turn is granted, then sets
 * up the replication origin with progress tau_commit. */
extern void replication_turn_wait(void);
/* From XACT_EVENT_COMMIT (committed = true) or XACT_EVENT_ABORT: releases
 * the origin and reports the outcome to the applier. Never throws. */
extern void replication_turn_finish(bool committed);

/* Doomed local transactions (docs/replication.md §4): ERROR 40001 OC000 if
 * the applier marked this backend's current transaction as holding a row a
 * commit earlier in the commit order changes. Called at each statement and
 * at PRE_COMMIT; cheap when not marked. No-op when replication is off. */
extern void replication_check_doomed(void);
/* Clears this backend's doom mark; at transaction end. Never throws. Returns
 * the tau of the commit that doomed the ending transaction, 0 if none. */
extern int64 replication_doom_clear(void);

/* A retry after a lost conflict (docs/replication.md §4): the aborting
 * transaction lost to the commit at tau (0: unknown, ignored); the newest
 * such tau is kept. The retry must not take its snapshot before this QP
 * applied that commit, so the backend waits for it (up to ordo.retry_wait):
 * at the next BEGIN (or START TRANSACTION), which takes no snapshot, for a
 * transaction that began with one; else at the end of its abort, since its
 * retry takes its snapshot before any hook runs: replication_retry_transaction_end
 * (from XACT_EVENT_COMMIT / ABORT, once per transaction) decides, and
 * replication_retry_wait_after_locks (from the resource release after the
 * locks, which runs once per resource owner: it acts once) waits. None
 * throws of its own; the BEGIN wait can be cancelled. */
extern void replication_retry_after(int64 tau);
extern void replication_retry_transaction_end(bool aborted);
extern void replication_retry_wait_after_locks(void);
extern void replication_retry_wait_at_begin(void);

#endif /* ORDO_REPLICATION_H */
