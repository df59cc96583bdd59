/*
 * applier.h - the shared state behind replication.h, as replication.c and
 * the applier worker (applier.c) see it. Backends use only replication.h.
 *
 * One OrdoReplicationShared lives in shared memory. Turn slots are indexed
 * by pgprocno and guarded by `mutex` together with the failure fields;
 * lease_until_us is an atomic written only by the applier; applied_tau an
 * atomic max written by the applier and, at the end of its turn, by the
 * backend that holds the turn.
 */
#ifndef ORDO_APPLIER_H
#define ORDO_APPLIER_H

#include "postgres.h"

#include "port/atomics.h"
#include "replication/origin.h"
#include "storage/latch.h"
#include "storage/spin.h"

#include "replication.h"

#define ORDO_FAILURE_TEXT_BYTES 1024

typedef struct OrdoTurnSlot {
  TransactionId xid;
  uint32 state; /* OrdoTurnState */
  bool doomed;  /* the applier needs a lock this waiting transaction holds (§5): give up, 40003 */
  int pid;      /* the backend that took the slot, to notice it is gone */
  int64 tau;    /* tau_commit once WAITING */
  int64 prev_tau; /* once WAITING: the tau just before tau in the total order; 0: unknown */
  /* Doomed by the applier (§4): the local transaction doom_lxid of backend
   * doom_pid holds a row a commit earlier in the commit order changes. Its
   * next statement or its COMMIT fails with 40001; if it still blocks the
   * applier ordo.apply_lock_grace after doom_at_us, it gets the
   * recovery-conflict signal. Written by the applier, cleared by the
   * backend at transaction end; independent of the turn fields above. */
  int doom_pid;
  LocalTransactionId doom_lxid;
  int64 doom_at_us; /* replication_monotonic_us() when marked */
  int64 doom_tau;   /* the commit that needed the row: the retry waits until it is applied */
  int64 doom_signalled_at_us; /* when the applier last signalled it (0: never) */
  /* Set by a backend whose aborted transaction lost to the commit at see_tau
   * while it waits for applied_tau to reach it (replication_wait_retry): whoever
   * moves applied_tau there wakes it. 0 when not waiting. */
  int64 see_tau;
} OrdoTurnSlot;

typedef struct OrdoReplicationShared {
  slock_t mutex;
  pg_atomic_uint64 applied_tau;    /* int64; every commit at or below it is visible here */
  pg_atomic_uint64 lease_until_us; /* int64, CLOCK_MONOTONIC µs; 0 = no lease */
  RepOriginId origin;              /* the "ordo" origin, InvalidRepOriginId until the applier knows it */
  Latch *applier_latch;            /* NULL while no applier runs */
  /* int64: the tau of the local commit whose turn the applier waits for; 0 when none */
  pg_atomic_uint64 applier_waiting_tau;
  int applier_pid;
  bool failed; /* the applier stopped on an error applying failed_tau */
  int64 failed_tau;
  char failure[ORDO_FAILURE_TEXT_BYTES];
  int nslots;
  OrdoTurnSlot slots[FLEXIBLE_ARRAY_MEMBER];
} OrdoReplicationShared;

/* replication.c */
extern bool ordo_replication;
extern char *ordo_database;
extern int ordo_apply_lock_grace_ms;
extern int ordo_retry_wait_ms;
extern OrdoReplicationShared *replication_shared;

extern int64 replication_monotonic_us(void);
extern void replication_advance_applied(int64 tau); /* applied_tau = max(applied_tau, tau) */
/* Wakes every backend waiting for its turn whose prev_tau is now at or below applied_tau. */
extern void replication_wake_turns(void);

/* applier.c: the background worker's entry point (bgw_function_name). */
extern PGDLLEXPORT void ordo_applier_main(Datum main_arg);

#endif /* ORDO_APPLIER_H */
