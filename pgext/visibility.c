/*
 * visibility.c - choosing tau_start so that the adjudicator never misses a
 * commit the transaction did not see.
 *
 * Shared memory holds a dense table of recent ordo commits of this QP:
 * {xid, INFLIGHT | COMMITTED, tau}. At PRE_COMMIT a transaction takes
 *   S = min(now_us - 1, transaction start - 1,
 *           over entries not visible in its snapshot:
 *             COMMITTED -> tau_commit - 1,
 *             INFLIGHT  -> the clock when it registered, minus 1)
 * and registers itself INFLIGHT with tau = now_us - 1 under the same lock. Every ordo
 * commit with tau_commit <= S is then visible in the snapshot (argument in
 * docs/extension.md), so "conflict iff a key was written after tau_start" is
 * first-committer-wins for exactly what the transaction saw.
 *
 * Entries whose xid precedes every backend's xmin and that committed locally
 * are visible to every current and future snapshot and are pruned.
 *
 * With replication on (docs/replication.md section 5) S is also at most the
 * applier's applied_tau, read under the lock before the scan, and the
 * applier registers each commit it applies as COMMITTED at its tau before
 * committing it (visibility_register_applied). Every commit at or below
 * applied_tau is then either pruned (visible to everyone) or an entry of the
 * table, so each commit at or below S is visible in the snapshot, remote
 * ones included.
 */
#include "ordo.h"

#include <sys/time.h>

#include "access/transam.h"
#include "miscadmin.h"
#include "replication.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/snapmgr.h"

#define visibility_prune_every_inserts 64
#define visibility_tranche_name "ordo_visibility"

typedef enum VisibilityState { VIS_INFLIGHT = 1, VIS_COMMITTED = 2 } VisibilityState;

typedef struct VisibilityEntry {
  TransactionId xid;
  uint32 state;
  int64 tau; /* INFLIGHT: the clock when it registered - 1; COMMITTED: its tau_commit */
} VisibilityEntry;

typedef struct VisibilityRing {
  LWLock *lock;
  /* Random at every start of the server: the upper half of this QP's txn ids (commit.c). */
  uint32 boot_nonce;
  uint32 slots;
  uint32 used; /* entries[0 .. used) are live; removal swaps the last one in */
  uint64 inserts;
  VisibilityEntry entries[FLEXIBLE_ARRAY_MEMBER];
} VisibilityRing;

static VisibilityRing *ring = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size visibility_shmem_size(void) {
  return add_size(offsetof(VisibilityRing, entries),
                  mul_size(sizeof(VisibilityEntry), (Size)ordo_visibility_slots));
}

static void visibility_shmem_request(void) {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(visibility_shmem_size());
  RequestNamedLWLockTranche(visibility_tranche_name, 1);
}

static void visibility_shmem_startup(void) {
  bool found;
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  ring = ShmemInitStruct("ordo visibility ring", visibility_shmem_size(), &found);
  if (!found) {
    ring->lock = &(GetNamedLWLockTranche(visibility_tranche_name))->lock;
    if (!pg_strong_random(&ring->boot_nonce, sizeof ring->boot_nonce))
      ring->boot_nonce = (uint32)visibility_now_us() ^ (uint32)MyProcPid;
    ring->slots = (uint32)ordo_visibility_slots;
    ring->used = 0;
    ring->inserts = 0;
  }
  LWLockRelease(AddinShmemInitLock);
}

void visibility_init(void) {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = visibility_shmem_request;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = visibility_shmem_startup;
}

uint32 visibility_boot_nonce(void) {
  Assert(ring != NULL);
  return ring->boot_nonce;
}

int64 visibility_now_us(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64)tv.tv_sec * INT64CONST(1000000) + (int64)tv.tv_usec;
}

static int find_entry(TransactionId xid) {
  uint32 i;
  for (i = 0; i < ring->used; i++)
    if (TransactionIdEquals(ring->entries[i].xid, xid)) return (int)i;
  return -1;
}

static void remove_at(uint32 i) {
  Assert(i < ring->used);
  ring->used--;
  if (i != ring->used) ring->entries[i] = ring->entries[ring->used];
}

/* Caller holds the lock exclusively. horizon: no running or future snapshot has an older xmin. */
static void prune(TransactionId horizon) {
  uint32 i = 0;
  while (i < ring->used) {
    VisibilityEntry *e = &ring->entries[i];
    if (e->state == VIS_COMMITTED && TransactionIdPrecedes(e->xid, horizon) &&
        TransactionIdDidCommit(e->xid))
      remove_at(i);
    else
      i++;
  }
}

static bool visible_in(TransactionId xid, Snapshot snapshot) {
  if (XidInMVCCSnapshot(xid, snapshot)) return false; /* running or future at snapshot time */
  return TransactionIdDidCommit(xid);
}

/*
 * The highest S such that every commit at or below S is visible in snapshot,
 * as visibility_begin computes it, without entering a transaction in the
 * ring. Used for a schema change's statements (ddl.c), whose checks of the
 * data run with the newest snapshot rather than the transaction's.
 */
int64 visibility_bound(Snapshot snapshot) {
  int64 now_us;
  int64 start;
  uint32 i;

  Assert(ring != NULL && IsMVCCSnapshot(snapshot));
  LWLockAcquire(ring->lock, LW_SHARED);
  now_us = visibility_now_us();
  start = replication_enabled() ? Min(now_us - 1, replication_applied_tau()) : now_us - 1;
  for (i = 0; i < ring->used; i++) {
    VisibilityEntry *e = &ring->entries[i];
    int64 bound;
    if (visible_in(e->xid, snapshot)) continue;
    if (e->state == VIS_INFLIGHT && replication_enabled()) continue;
    bound = e->state == VIS_COMMITTED ? e->tau - 1 : e->tau;
    if (bound < start) start = bound;
  }
  LWLockRelease(ring->lock);
  return start;
}

int64 visibility_begin(TransactionId xid, Snapshot snapshot, int64 snapshot_bound_us) {
  int64 now_us;
  int64 start;
  uint32 i;
  TransactionId horizon = InvalidTransactionId;
  bool want_prune;

  Assert(ring != NULL && TransactionIdIsNormal(xid) && IsMVCCSnapshot(snapshot));
  /* Read without the lock: a stale guess only moves pruning by one commit. */
  want_prune = ring->used * 2 > ring->slots || ring->inserts % visibility_prune_every_inserts == 0;
  if (want_prune) horizon = GetOldestNonRemovableTransactionId(NULL);

  LWLockAcquire(ring->lock, LW_EXCLUSIVE);
  if (TransactionIdIsValid(horizon)) prune(horizon);
  if (ring->used >= ring->slots) {
    LWLockRelease(ring->lock);
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("ordo: transaction exceeds the visibility limit: all %u slots of "
                           "ordo.visibility_slots are in use",
                           (unsigned)ordo_visibility_slots),
                    errdetail("Nothing was committed."),
                    errhint("Raise ordo.visibility_slots or end long-running transactions.")));
  }
  now_us = visibility_now_us();
  /*
   * With replication, applied_tau bounds S (read before the scan, after the
   * applier's commits below it entered the table); the transaction's start
   * is not needed and would only add false conflicts with commits stamped
   * between BEGIN and the snapshot that the snapshot sees.
   */
  if (replication_enabled())
    start = Min(now_us - 1, replication_applied_tau());
  else
    start = Min(now_us, snapshot_bound_us) - 1;
  for (i = 0; i < ring->used; i++) {
    VisibilityEntry *e = &ring->entries[i];
    int64 bound;
    if (TransactionIdEquals(e->xid, xid) || visible_in(e->xid, snapshot)) continue;
    /*
     * With replication an INFLIGHT entry bounds nothing: it has no verdict
     * yet, so its turn has not come and applied_tau (read above, under this
     * lock) is below its tau_commit. A commit stuck in a stalled journal
     * then does not hold back every other transaction's tau_start.
     */
    if (e->state == VIS_INFLIGHT && replication_enabled()) continue;
    bound = e->state == VIS_COMMITTED ? e->tau - 1 : e->tau;
    if (bound < start) start = bound;
  }
  Assert(find_entry(xid) < 0);
  ring->entries[ring->used].xid = xid;
  ring->entries[ring->used].state = VIS_INFLIGHT;
  /*
   * The sidecar stamps our commit after this (at or above its clock then), so
   * now_us - 1 bounds it from below. Using our tau_start instead would chain:
   * each transaction's S would be at most the S of one still in flight, and
   * under steady load S would stop moving and every write would conflict.
   */
  ring->entries[ring->used].tau = now_us - 1;
  ring->used++;
  ring->inserts++;
  i = ring->used;
  LWLockRelease(ring->lock);
  elog(DEBUG2, "ordo: tau_start " INT64_FORMAT " (now " INT64_FORMAT "), %u visibility entries",
       start, now_us, i);

  Assert(start < now_us);
  return start;
}

/*
 * The applier is about to commit xid, which applies the journal's commit at
 * tau_commit: enter it as COMMITTED so that a backend whose snapshot does not
 * see it yet keeps tau_start below it. Called after xid exists and before the
 * commit; visibility_remove(xid) if the applier's transaction aborts instead.
 */
void visibility_register_applied(TransactionId xid, int64 tau_commit) {
  TransactionId horizon = InvalidTransactionId;
  int i;
  Assert(ring != NULL && TransactionIdIsNormal(xid));
  if (ring->used * 2 > ring->slots || ring->inserts % visibility_prune_every_inserts == 0)
    horizon = GetOldestNonRemovableTransactionId(NULL);
  LWLockAcquire(ring->lock, LW_EXCLUSIVE);
  if (TransactionIdIsValid(horizon)) prune(horizon);
  i = find_entry(xid);
  if (i < 0 && ring->used >= ring->slots) {
    LWLockRelease(ring->lock);
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("ordo: all %u slots of ordo.visibility_slots are in use",
                           (unsigned)ordo_visibility_slots),
                    errhint("Raise ordo.visibility_slots or end long-running transactions.")));
  }
  if (i < 0) {
    i = (int)ring->used++;
    ring->inserts++;
  }
  ring->entries[i].xid = xid;
  ring->entries[i].state = VIS_COMMITTED;
  ring->entries[i].tau = tau_commit;
  LWLockRelease(ring->lock);
}

void visibility_mark_committed(TransactionId xid, int64 tau_commit) {
  int i;
  LWLockAcquire(ring->lock, LW_EXCLUSIVE);
  i = find_entry(xid);
  if (i >= 0) {
    Assert(ring->entries[i].state == VIS_INFLIGHT && tau_commit > ring->entries[i].tau);
    ring->entries[i].state = VIS_COMMITTED;
    ring->entries[i].tau = tau_commit;
  }
  LWLockRelease(ring->lock);
  if (i < 0) elog(WARNING, "ordo: visibility entry of transaction %u is missing", xid);
}

void visibility_remove(TransactionId xid) {
  int i;
  if (ring == NULL) return;
  LWLockAcquire(ring->lock, LW_EXCLUSIVE);
  i = find_entry(xid);
  if (i >= 0) remove_at((uint32)i);
  LWLockRelease(ring->lock);
}
