/*
 * replication.c - the shared state of a QP's replication and the backend
 * side of the turn protocol (replication.h, docs/replication.md §4-§6).
 *
 * Shared memory holds applied_tau, the applier's lease, the applier's
 * failure (if it stopped), the id of the replication origin "ordo", and one
 * turn slot per PGPROC. A backend whose commit was approved at tau C waits
 * in PRE_COMMIT for its turn: until applied_tau reaches the reply's prev_tau
 * (the commit just before C), or the applier, following the crossbar's
 * total order, reaches C and grants it; it then holds the origin with progress C
 * while PostgreSQL writes its commit record, and releases it at
 * XACT_EVENT_COMMIT / ABORT. Only one process holds the origin at a time:
 * the applier never holds it while a turn is granted.
 *
 * The GUCs of replication are defined here; with ordo.replication off every
 * function of replication.h is a no-op and no applier runs.
 */
#include "ordo.h"

#include <time.h>

#include "access/twophase.h"
#include "access/xact.h"
#include "access/xlogdefs.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "applier.h"
#include "replication.h"

#define ordo_apply_lock_grace_ms_default 200
#define ordo_apply_lock_grace_ms_max 600000
#define ordo_retry_wait_ms_default 1000
#define ordo_retry_wait_ms_max 60000
#define replication_turn_poll_ms 100
#define replication_applier_restart_s 1

bool ordo_replication = false;
char *ordo_database = NULL;
int ordo_apply_lock_grace_ms = ordo_apply_lock_grace_ms_default;
int ordo_retry_wait_ms = ordo_retry_wait_ms_default;
OrdoReplicationShared *replication_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool turn_origin_set_up = false; /* this backend holds the origin for its turn */
/* pgprocnos to wake, collected under the mutex (nslots entries; see wake_buffer). */
static int *wake_procnos = NULL;

static int replication_slot_count(void) {
  return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static Size replication_shmem_size(void) {
  return add_size(offsetof(OrdoReplicationShared, slots),
                  mul_size(sizeof(OrdoTurnSlot), (Size)replication_slot_count()));
}

static void replication_shmem_request(void) {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(replication_shmem_size());
}

static void replication_shmem_startup(void) {
  bool found;
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  replication_shared = ShmemInitStruct("ordo replication", replication_shmem_size(), &found);
  if (!found) {
    memset(replication_shared, 0, replication_shmem_size());
    SpinLockInit(&replication_shared->mutex);
    pg_atomic_init_u64(&replication_shared->applied_tau, 0);
    pg_atomic_init_u64(&replication_shared->lease_until_us, 0);
    pg_atomic_init_u64(&replication_shared->applier_waiting_tau, 0);
    replication_shared->origin = InvalidRepOriginId;
    replication_shared->applier_latch = NULL;
    replication_shared->nslots = replication_slot_count();
  }
  LWLockRelease(AddinShmemInitLock);
}

static void register_applier(void) {
  BackgroundWorker worker;
  memset(&worker, 0, sizeof worker);
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = replication_applier_restart_s;
  strlcpy(worker.bgw_library_name, "ordo", BGW_MAXLEN);
  strlcpy(worker.bgw_function_name, "ordo_applier_main", BGW_MAXLEN);
  strlcpy(worker.bgw_name, "ordo applier", BGW_MAXLEN);
  strlcpy(worker.bgw_type, "ordo applier", BGW_MAXLEN);
  worker.bgw_main_arg = (Datum)0;
  worker.bgw_notify_pid = 0;
  RegisterBackgroundWorker(&worker);
}

void replication_init(void) {
  DefineCustomBoolVariable("ordo.replication", "Whether this query processor replicates.",
                           "On: an applier follows the commit order of every query processor, "
                           "and commits become visible in that order.",
                           &ordo_replication, false, PGC_POSTMASTER, 0, NULL, NULL, NULL);
  DefineCustomStringVariable("ordo.database", "Database the applier works in.", NULL,
                             &ordo_database, "postgres", PGC_POSTMASTER, 0, NULL, NULL, NULL);
  DefineCustomIntVariable("ordo.apply_lock_grace",
                          "How long the applier waits for a lock a local transaction holds.",
                          "After this the blocking transactions are cancelled with 40001.",
                          &ordo_apply_lock_grace_ms, ordo_apply_lock_grace_ms_default, 1,
                          ordo_apply_lock_grace_ms_max, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL,
                          NULL);
  DefineCustomIntVariable(
      "ordo.retry_wait",
      "How long the retry of a transaction that lost a conflict to a commit waits for this query "
      "processor to apply that commit.",
      "So that the retry sees the commit it lost to instead of losing to it again: at its BEGIN, "
      "or in the abort of a statement outside a block. 0: no wait.",
      &ordo_retry_wait_ms, ordo_retry_wait_ms_default, 0, ordo_retry_wait_ms_max, PGC_USERSET,
      GUC_UNIT_MS, NULL, NULL, NULL);
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = replication_shmem_request;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = replication_shmem_startup;
  if (ordo_replication) register_applier();
}

bool replication_enabled(void) { return ordo_replication; }

int64 replication_monotonic_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64)ts.tv_sec * INT64CONST(1000000) + (int64)(ts.tv_nsec / 1000);
}

int64 replication_applied_tau(void) {
  if (!ordo_replication || replication_shared == NULL) return PG_INT64_MAX;
  return (int64)pg_atomic_read_u64(&replication_shared->applied_tau);
}

void replication_advance_applied(int64 tau) {
  /* The applier and, at the end of its turn, a committing backend write it: a max by CAS. */
  uint64 seen = pg_atomic_read_u64(&replication_shared->applied_tau);
  while ((int64)seen < tau &&
         !pg_atomic_compare_exchange_u64(&replication_shared->applied_tau, &seen, (uint64)tau)) {
  }
}

void replication_check_live(void) {
  bool failed;
  int64 failed_tau = 0;
  char failure[ORDO_FAILURE_TEXT_BYTES];
  int64 lease;

  if (!ordo_replication || replication_shared == NULL) return;
  SpinLockAcquire(&replication_shared->mutex);
  failed = replication_shared->failed;
  if (failed) {
    failed_tau = replication_shared->failed_tau;
    memcpy(failure, replication_shared->failure, sizeof failure);
  }
  SpinLockRelease(&replication_shared->mutex);
  if (failed)
    ereport(ERROR,
            (errcode(ERRCODE_INTERNAL_ERROR),
             errmsg("ordo: this query processor stopped applying commits"),
             errdetail("Applying the commit at tau " INT64_FORMAT " failed: %s", failed_tau,
                       failure),
             errhint("Fix the cause, then restart the server, or end the \"ordo applier\" "
                     "process (pg_terminate_backend, from a database without ordo) so that it "
                     "starts again and retries.")));
  lease = (int64)pg_atomic_read_u64(&replication_shared->lease_until_us);
  if (lease <= replication_monotonic_us())
    ereport(ERROR,
            (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
             errmsg("ordo: this query processor is catching up, please retry (OC002)"),
             errdetail(lease == 0 ? "Its applier holds no lease from the commit service."
                                  : "Its applier's lease from the commit service expired.")));
}

/* ---- the backend side of the turn protocol ---- */

static OrdoTurnSlot *my_slot(void) {
  Assert(MyProc != NULL && MyProc->pgprocno < replication_shared->nslots);
  return &replication_shared->slots[MyProc->pgprocno];
}

static void wake_applier(void) {
  Latch *latch = replication_shared->applier_latch;
  if (latch != NULL) SetLatch(latch);
}

/*
 * The buffer replication_wake_turns collects into. A backend makes it at
 * replication_turn_sent, before its only call (at the end of its turn, where
 * an ERROR would PANIC); the applier at its first call.
 */
static int *wake_buffer(void) {
  if (wake_procnos == NULL)
    wake_procnos = MemoryContextAlloc(TopMemoryContext, sizeof(int) * replication_shared->nslots);
  return wake_procnos;
}

void replication_turn_sent(TransactionId xid) {
  OrdoTurnSlot *slot;
  if (!ordo_replication || replication_shared == NULL) return;
  (void)wake_buffer(); /* here, where an error is still allowed: turn_finish must not allocate */
  slot = my_slot();
  SpinLockAcquire(&replication_shared->mutex);
  slot->xid = xid;
  slot->state = ORDO_TURN_SENT;
  slot->doomed = false;
  slot->pid = MyProcPid;
  slot->tau = 0;
  slot->prev_tau = 0;
  SpinLockRelease(&replication_shared->mutex);
}

/* Wakes the applier if it waits for the turn of the local commit at tau (any, for 0). */
static void wake_applier_for(int64 tau) {
  int64 waiting = (int64)pg_atomic_read_u64(&replication_shared->applier_waiting_tau);
  if (waiting != 0 && (tau == 0 || waiting == tau)) wake_applier();
}

void replication_turn_verdict(bool committed, int64 tau_commit, int64 prev_tau) {
  OrdoTurnSlot *slot;
  if (!ordo_replication || replication_shared == NULL) return;
  slot = my_slot();
  SpinLockAcquire(&replication_shared->mutex);
  if (slot->state == ORDO_TURN_SENT) {
    slot->state = committed ? ORDO_TURN_WAITING : ORDO_TURN_NONE;
    slot->tau = committed ? tau_commit : 0;
    slot->prev_tau = committed ? prev_tau : 0;
  }
  SpinLockRelease(&replication_shared->mutex);
  /* (The spinlock release orders the slot before the read of applier_waiting_tau.) */
  wake_applier_for(committed ? tau_commit : 0);
}

void replication_wake_turns(void) {
  int64 applied;
  int n = 0;
  int i;
  int *procnos;
  if (!ordo_replication || replication_shared == NULL) return;
  procnos = wake_buffer();
  pg_memory_barrier(); /* applied_tau is written before the slots are read */
  applied = replication_applied_tau();
  SpinLockAcquire(&replication_shared->mutex);
  for (i = 0; i < replication_shared->nslots; i++) {
    OrdoTurnSlot *s = &replication_shared->slots[i];
    if ((s->state == ORDO_TURN_WAITING && s->prev_tau > 0 && s->prev_tau <= applied) ||
        (s->see_tau > 0 && s->see_tau <= applied))
      procnos[n++] = i;
  }
  SpinLockRelease(&replication_shared->mutex);
  for (i = 0; i < n; i++) SetLatch(&ProcGlobal->allProcs[procnos[i]].procLatch);
}

static void turn_give_up(int64 tau, const char *why) {
  ereport(ERROR,
          (errcode(ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN),
           errmsg("ordo: commit outcome unknown"),
           errdetail("The transaction committed in the journal at tau " INT64_FORMAT
                     ", but %s; it becomes visible here when the applier applies it from the "
                     "journal.",
                     tau, why)));
}

void replication_turn_wait(void) {
  OrdoTurnSlot *slot;
  RepOriginId origin;
  int64 tau;

  if (!ordo_replication || replication_shared == NULL) return;
  slot = my_slot();
  for (;;) {
    uint32 state;
    bool doomed;
    bool failed;
    int64 prev_tau;
    /* Before the slot is read: a waker that moved applied_tau sees WAITING, or we see its move. */
    pg_memory_barrier();
    SpinLockAcquire(&replication_shared->mutex);
    state = slot->state;
    doomed = slot->doomed;
    tau = slot->tau;
    prev_tau = slot->prev_tau;
    failed = replication_shared->failed;
    /*
     * Our own grant: every commit up to prev_tau, the one just before ours in
     * the total order, is visible here, so ours is next (docs/replication.md §5).
     */
    if (state == ORDO_TURN_WAITING && !doomed && prev_tau > 0 &&
        prev_tau <= replication_applied_tau())
      slot->state = state = ORDO_TURN_GRANTED;
    SpinLockRelease(&replication_shared->mutex);
    if (state == ORDO_TURN_GRANTED) break;
    if (state != ORDO_TURN_WAITING)
      elog(ERROR, "ordo: waiting for a commit turn in state %u", (unsigned)state);
    /* Only our own turn moves applied_tau to tau: if it got there, our record was not where
     * the reply said (a broken invariant). Waiting on would hold our rows for good. */
    if (replication_applied_tau() >= tau)
      turn_give_up(tau, "the commit order passed that tau without giving this transaction its turn");
    if (doomed)
      turn_give_up(tau, "a schema change before it in the commit order needed a lock it held");
    if (failed) turn_give_up(tau, "this query processor stopped applying commits");
    if (QueryCancelPending) {
      /* The journal holds the commit: a cancel here cannot undo it. */
      QueryCancelPending = false;
      turn_give_up(tau, "it was cancelled while waiting to become visible in commit order");
    }
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                    replication_turn_poll_ms, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
  origin = replication_shared->origin;
  Assert(origin != InvalidRepOriginId && !turn_origin_set_up);
  replorigin_session_setup(origin);
  turn_origin_set_up = true;
  replorigin_session_origin = origin;
  replorigin_session_origin_lsn = (XLogRecPtr)tau;
  replorigin_session_origin_timestamp = GetCurrentTimestamp();
}

void replication_turn_finish(bool committed) {
  OrdoTurnSlot *slot;
  bool granted;
  int64 tau;
  if (!ordo_replication || replication_shared == NULL || MyProc == NULL) return;
  slot = my_slot();
  SpinLockAcquire(&replication_shared->mutex);
  granted = slot->state == ORDO_TURN_GRANTED;
  tau = slot->tau;
  SpinLockRelease(&replication_shared->mutex);
  if (turn_origin_set_up) {
    turn_origin_set_up = false;
    replorigin_session_reset();
    replorigin_session_origin = InvalidRepOriginId;
    replorigin_session_origin_lsn = InvalidXLogRecPtr;
    replorigin_session_origin_timestamp = 0;
  }
  /*
   * Our commit at tau is visible (XACT_EVENT_COMMIT runs after the procarray
   * update) and, since the applier granted the turn, so is every commit
   * before it: applied_tau moves now rather than when the applier wakes, so
   * a transaction that starts next and sees this commit gets a tau_start at
   * or above it (visibility.c) instead of a false conflict with it.
   * After the origin is released: the applier may go on as soon as it sees
   * this (take_turn in applier.c).
   */
  if (committed && granted) replication_advance_applied(tau);
  SpinLockAcquire(&replication_shared->mutex);
  if (slot->state == ORDO_TURN_SENT || slot->state == ORDO_TURN_WAITING ||
      slot->state == ORDO_TURN_GRANTED)
    slot->state = committed ? ORDO_TURN_DONE : ORDO_TURN_FAILED;
  SpinLockRelease(&replication_shared->mutex);
  if (committed && granted) {
    /* The next local commit in the total order may be waiting for just this. */
    replication_wake_turns();
    wake_applier_for(tau);
  } else {
    wake_applier();
  }
}

/* ---- doomed local transactions (§4) ---- */

void replication_check_doomed(void) {
  OrdoTurnSlot *slot;
  bool doomed;
  if (!ordo_replication || replication_shared == NULL || MyProc == NULL) return;
  slot = my_slot();
  /* Unlocked first look: a 4-byte read, and almost always no mark. */
  if (slot->doom_lxid == InvalidLocalTransactionId) return;
  SpinLockAcquire(&replication_shared->mutex);
  doomed = slot->doom_pid == MyProcPid && slot->doom_lxid == MyProc->lxid;
  SpinLockRelease(&replication_shared->mutex);
  if (doomed)
    ereport(ERROR,
            (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
             errmsg("ordo: change conflicts with another transaction, please retry (OC000)"),
             errdetail("A commit earlier in the commit order changed a row this transaction "
                       "holds.")));
}

int64 replication_doom_clear(void) {
  OrdoTurnSlot *slot;
  int64 tau = 0;
  if (!ordo_replication || replication_shared == NULL || MyProc == NULL) return 0;
  slot = my_slot();
  if (slot->doom_lxid == InvalidLocalTransactionId) return 0;
  /* A mark for another pid is stale (an earlier backend in this PGPROC): cleared too. */
  SpinLockAcquire(&replication_shared->mutex);
  if (slot->doom_pid == MyProcPid) tau = slot->doom_tau;
  slot->doom_pid = 0;
  slot->doom_lxid = InvalidLocalTransactionId;
  slot->doom_at_us = 0;
  slot->doom_tau = 0;
  slot->doom_signalled_at_us = 0;
  SpinLockRelease(&replication_shared->mutex);
  return tau;
}

/* ---- a retry after a lost conflict sees the commit it lost to (§4) ---- */

/* The newest commit the current transaction lost to; 0: none. */
static int64 retry_lost_tau = 0;
/* What a transaction begun with BEGIN lost to, for its retry's BEGIN to wait for; 0: none. */
static int64 retry_at_begin_tau = 0;
/* The current transaction began with BEGIN or START TRANSACTION: its retry will too. */
static bool retry_from_begin = false;
/* Decided at the end of an aborted transaction: wait for this tau once its locks are released. */
static int64 retry_wait_after_locks = 0;

void replication_retry_after(int64 tau) {
  if (tau > retry_lost_tau) retry_lost_tau = tau;
}

/* Waits until applied_tau >= tau, at most ordo.retry_wait; interruptible unless interrupts are
 * held (in an abort). Never throws an error of its own. */
static void wait_applied(int64 tau) {
  int64 deadline;
  OrdoTurnSlot *slot;

  if (ordo_retry_wait_ms == 0 || proc_exit_inprogress) return;
  if (replication_applied_tau() >= tau) return;
  slot = my_slot();
  SpinLockAcquire(&replication_shared->mutex);
  slot->see_tau = tau;
  SpinLockRelease(&replication_shared->mutex);
  /* After see_tau is set (the release orders it): a waker that moved applied_tau sees it, or we
   * see the move. */
  deadline = replication_monotonic_us() + (int64)ordo_retry_wait_ms * 1000;
  PG_TRY();
  {
    for (;;) {
      int64 now = replication_monotonic_us();
      int64 remaining_ms = (deadline - now + 999) / 1000;
      pg_memory_barrier();
      if (replication_applied_tau() >= tau) break;
      /* No applier, or none that holds a lease: the retry fails with XX000 or OC002 anyway. */
      if (replication_shared->failed ||
          (int64)pg_atomic_read_u64(&replication_shared->lease_until_us) <= now)
        break;
      if (remaining_ms <= 0) {
        elog(DEBUG1,
             "ordo: gave up waiting %d ms for this query processor to apply the commit at "
             "tau " INT64_FORMAT " (applied " INT64_FORMAT ")",
             ordo_retry_wait_ms, tau, replication_applied_tau());
        break;
      }
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                      Min(remaining_ms, replication_turn_poll_ms), PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS(); /* a cancel ends the wait (a no-op while interrupts are held) */
    }
  }
  PG_FINALLY();
  {
    SpinLockAcquire(&replication_shared->mutex);
    slot->see_tau = 0;
    SpinLockRelease(&replication_shared->mutex);
  }
  PG_END_TRY();
}

void replication_retry_transaction_end(bool aborted) {
  int64 lost = retry_lost_tau;
  bool from_begin = retry_from_begin;
  retry_lost_tau = 0;
  retry_from_begin = false;
  retry_wait_after_locks = 0;
  if (!aborted || lost <= 0) return;
  /* Begun with BEGIN, it is retried from its BEGIN: wait there (replication_retry_wait_at_begin),
   * after the client heard the error; a client that reads the error and the end of the
   * command as one (pgbench) then holds none of its other sessions' statements back. */
  if (from_begin)
    retry_at_begin_tau = Max(retry_at_begin_tau, lost);
  else
    retry_wait_after_locks = lost;
}

void replication_retry_wait_after_locks(void) {
  int64 tau = retry_wait_after_locks;
  retry_wait_after_locks = 0; /* once: the release callbacks run for every resource owner */
  if (!ordo_replication || replication_shared == NULL || MyProc == NULL || tau <= 0) return;
  wait_applied(tau);
}

void replication_retry_wait_at_begin(void) {
  int64 tau = retry_at_begin_tau;
  retry_at_begin_tau = 0;
  retry_from_begin = true;
  if (!ordo_replication || replication_shared == NULL || MyProc == NULL || tau <= 0) return;
  wait_applied(tau);
}
