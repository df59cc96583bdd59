/*
 * commit.c - the commit path: at PRE_COMMIT, send the write set to the
 * sidecar and map its verdict to what the client sees.
 *
 * Only regular backends with a non-empty write set take part; read-only
 * transactions never contact the sidecar. A "committed" verdict is final:
 * the journal holds the commit durably, so a local failure after it is
 * logged loudly and left for replay to converge, never reported as a
 * failure the journal contradicts. Verdicts and failures map to SQLSTATEs
 * as in DESIGN.md section 7:
 *   committed      -> the local commit proceeds
 *   conflict       -> 40001 (OC000)      schema conflict -> 40001 (OC001)
 *   limit          -> 54000              not delivered   -> 08006
 *   sent, no verdict (timeout, lost connection, ERROR frame, cancel) -> 40003
 *
 * With replication on (docs/replication.md sections 5 and 6) a committed
 * transaction also takes its turn: it tells the applier its xid before the
 * request leaves, its verdict after, and waits in PRE_COMMIT until the
 * applier reaches its tau_commit in the total order; XACT_EVENT_COMMIT and
 * XACT_EVENT_ABORT report the local outcome. After the local commit, once
 * its locks are released, it waits for VISIBLE (every live QP applied it)
 * before the client hears of the commit: commit wait for strong reads. That
 * wait never throws, since the transaction is committed everywhere that
 * counts; on a timeout or a lost sidecar it logs a WARNING and returns.
 */
#include "ordo.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "replication.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/snapmgr.h"
#include "wire.h"

typedef enum CommitPhase {
  PHASE_IDLE,       /* nothing registered for this transaction */
  PHASE_REGISTERED, /* visibility entry in place, request not yet sent */
  PHASE_COMMITTED   /* the journal holds it */
} CommitPhase;

static CommitPhase phase = PHASE_IDLE;
static TransactionId phase_xid = InvalidTransactionId;
static uint64 phase_txn_sysid = 0;
static uint64 phase_txn_local_id = 0;
static int64 phase_tau_commit = 0;
/* The sidecar said no other QP counts (WIRE_REPLY_VISIBLE_WHEN_APPLIED_HERE): no WAIT_VISIBLE. */
static bool phase_visible_here = false;
static int64 last_tau_commit = 0;
/* replication_turn_sent was called and the turn is not yet finished. */
static bool turn_open = false;
/* A committed transaction waits for VISIBLE at this tau once its locks are released (0: none). */
static int64 visible_pending_tau = 0;

int64 commit_last_tau(void) { return last_tau_commit; }

static void encode_txn_id(uint8 out[WIRE_TXN_ID_BYTES], uint64 sysid, uint64 fxid) {
  int i;
  for (i = 0; i < 8; i++) {
    out[i] = (uint8)(sysid >> (8 * i));
    out[8 + i] = (uint8)(fxid >> (8 * i));
  }
}

/*
 * The transaction's start, on the Unix-epoch clock the sidecar uses. The
 * snapshot is taken after it, so a commit the sidecar stamps after our
 * snapshot (from any QP that shares this host's clock) gets a tau_commit
 * at or above it, and tau_start below it makes that commit conflict.
 */
static int64 transaction_start_us(void) {
  TimestampTz start = GetCurrentTransactionStartTimestamp();
  return (int64)start +
         (int64)(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC;
}

static void forget_registration(void) {
  if (phase != PHASE_IDLE) visibility_remove(phase_xid);
  phase = PHASE_IDLE;
  phase_xid = InvalidTransactionId;
}

static void report_verdict(const OrdoReply *reply) {
  bool has_detail = reply->detail[0] != '\0';
  /* A conflict names the commit it lost to: the retry should see it (commit_resource_release). */
  if (reply->verdict == WIRE_VERDICT_CONFLICT || reply->verdict == WIRE_VERDICT_SCHEMA_CONFLICT)
    replication_retry_after(reply->tau_commit);
  switch (reply->verdict) {
    case WIRE_VERDICT_CONFLICT:
      ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                      errmsg("ordo: change conflicts with another transaction, please retry (OC000)"),
                      has_detail ? errdetail("%s", reply->detail) : 0));
      break;
    case WIRE_VERDICT_LIMIT:
      ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                      errmsg("ordo: transaction exceeds a limit of the commit service"),
                      has_detail ? errdetail("%s", reply->detail) : 0));
      break;
    case WIRE_VERDICT_SCHEMA_CONFLICT:
      ereport(ERROR,
              (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
               errmsg("ordo: schema has been updated by another transaction, please retry (OC001)"),
               has_detail ? errdetail("%s", reply->detail) : 0));
      break;
    default:
      ereport(ERROR, (errcode(ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN),
                      errmsg("ordo: commit outcome unknown"),
                      errdetail("The commit service answered with verdict %u; the transaction may "
                                "or may not have committed.",
                                (unsigned)reply->verdict)));
  }
}

static void commit_pre_commit(void) {
  OrdoWriteSetStats stats = capture_stats();
  FullTransactionId fxid;
  Snapshot snapshot;
  uint8 txn_id[WIRE_TXN_ID_BYTES];
  int64 tau_start;
  uint64 request_id;
  wire_buf *frame;
  OrdoReply reply;
  OrdoSendOutcome outcome;

  /* Doomed by the applier (docs/replication.md section 4): a clean 40001, nothing sent. */
  replication_check_doomed();
  if (stats.writes == 0) return; /* DDL counts: a DDL-only transaction is sent too */
  Assert(phase == PHASE_IDLE && !turn_open);
  limits_check_age();

  fxid = GetTopFullTransactionId(); /* a transaction that wrote, locked or changed a schema has one */
  if (!FirstSnapshotSet && stats.writes > stats.ddl)
    elog(WARNING, "ordo: a writing transaction without a snapshot");
  snapshot = GetTransactionSnapshot();
  phase_txn_sysid = GetSystemIdentifier();
  /*
   * txn_id = system id, then the xid in the low half and this server start's
   * random nonce in the high half. Not the full transaction id: with
   * synchronous_commit off a crash can lose the last commits from the WAL,
   * and the restarted server hands out their xids again, while the journal
   * still holds them under their old txn ids (the sidecar would take the
   * new transaction for a retry of the old one). The applier matches its
   * turns by the low half.
   */
  phase_txn_local_id = ((uint64)visibility_boot_nonce() << 32) | XidFromFullTransactionId(fxid);
  encode_txn_id(txn_id, phase_txn_sysid, phase_txn_local_id);

  tau_start = visibility_begin(XidFromFullTransactionId(fxid), snapshot, transaction_start_us());
  if (stats.ddl > 0) {
    /* A schema change checked the data with newer snapshots than the transaction's (ddl.c). */
    int64 seen = ddl_seen_tau();
    if (seen > tau_start) tau_start = seen;
  }
  phase = PHASE_REGISTERED;
  phase_xid = XidFromFullTransactionId(fxid);

  frame = capture_request_buffer();
  request_id = transport_next_request_id();
  wire_commit_request_finish(frame, request_id, txn_id, tau_start, stats.writes);
  Assert(!frame->failed && frame->len >= WIRE_COMMIT_REQUEST_PREFIX_BYTES);
  capture_log_write_set(DEBUG1);
  elog(DEBUG1, "ordo: sending transaction " UINT64_FORMAT ":" UINT64_FORMAT
               " (request " UINT64_FORMAT ", tau_start " INT64_FORMAT ", %zu bytes)",
       phase_txn_sysid, phase_txn_local_id, request_id, tau_start, frame->len);

  if (replication_enabled()) {
    replication_turn_sent(phase_xid);
    turn_open = true;
  }
  outcome = transport_commit(frame->data, frame->len, request_id, &reply);
  if (turn_open && (outcome != ORDO_REPLY_RECEIVED || reply.verdict != WIRE_VERDICT_COMMITTED)) {
    /* Not committed, or unknown: the applier applies the record itself if there is one. */
    replication_turn_verdict(false, 0, 0);
    turn_open = false;
  }
  if (outcome == ORDO_NOT_DELIVERED) {
    forget_registration();
    transport_disconnect();
    ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
                    errmsg("ordo: commit service unavailable"),
                    errdetail("Nothing was committed. %s", reply.problem ? reply.problem : "")));
  }
  if (outcome == ORDO_OUTCOME_UNKNOWN) {
    forget_registration();
    transport_disconnect();
    ereport(ERROR,
            (errcode(ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN),
             errmsg("ordo: commit outcome unknown"),
             errdetail("The transaction may or may not have committed. %s",
                       reply.problem ? reply.problem : "")));
  }
  if (reply.verdict != WIRE_VERDICT_COMMITTED) {
    forget_registration();
    report_verdict(&reply);
  }
  if (reply.tau_commit <= tau_start)
    elog(WARNING, "ordo: tau_commit " INT64_FORMAT " is not after tau_start " INT64_FORMAT,
         reply.tau_commit, tau_start);
  visibility_mark_committed(phase_xid, reply.tau_commit);
  phase = PHASE_COMMITTED;
  phase_tau_commit = reply.tau_commit;
  phase_visible_here = (reply.flags & WIRE_REPLY_VISIBLE_WHEN_APPLIED_HERE) != 0;
  last_tau_commit = reply.tau_commit;
  elog(DEBUG1, "ordo: transaction " UINT64_FORMAT ":" UINT64_FORMAT " committed at tau " INT64_FORMAT,
       phase_txn_sysid, phase_txn_local_id, reply.tau_commit);
  if (turn_open) {
    /* Our turn in the total order: returns with the origin's progress set to tau_commit. */
    replication_turn_verdict(true, reply.tau_commit, reply.prev_tau);
    replication_turn_wait();
    elog(DEBUG1, "ordo: transaction " UINT64_FORMAT ":" UINT64_FORMAT " has its turn",
         phase_txn_sysid, phase_txn_local_id);
  }
}

/*
 * Commit wait (docs/replication.md section 6): runs in CommitTransaction
 * after the locks are released, with interrupts held; never throws.
 */
static void wait_visible(int64 tau) {
  const char *problem = NULL;
  if (transport_wait_visible(tau, ordo_visible_timeout_ms, &problem)) {
    elog(DEBUG1, "ordo: tau " INT64_FORMAT " is visible on every live query processor", tau);
    return;
  }
  ereport(WARNING,
          (errmsg("ordo: the commit at tau " INT64_FORMAT " is durable, but it was not confirmed "
                  "visible on every query processor",
                  tau),
           errdetail("%s Transactions on other query processors may not see it yet.",
                     problem ? problem : "")));
}

/* ordo.planted_bugs (defined in ordo.c): deliberate bugs for checker tests, '' in production. */
extern char *ordo_planted_bugs;

/* Whether `name` is one of the comma-separated names in ordo.planted_bugs. */
static bool planted_bug_on(const char *name) {
  const char *cursor = ordo_planted_bugs;
  size_t len = strlen(name);
  if (cursor == NULL) return false;
  while (*cursor != '\0') {
    const char *end = strchr(cursor, ',');
    size_t item = end ? (size_t)(end - cursor) : strlen(cursor);
    if (item == len && strncmp(cursor, name, len) == 0) return true;
    if (end == NULL) break;
    cursor = end + 1;
  }
  return false;
}

static void commit_resource_release(ResourceReleasePhase release_phase, bool isCommit,
                                    bool isTopLevel, void *arg) {
  int64 tau = visible_pending_tau;
  if (release_phase != RESOURCE_RELEASE_AFTER_LOCKS || !isTopLevel) return;
  /*
   * Lost a conflict: the retry must not take its snapshot before this QP
   * applied the commit it lost to (docs/replication.md section 4). For a
   * transaction that did not begin with BEGIN the wait is here, after the
   * locks are released (that apply may need our rows) and before the client
   * hears the end of its command; else it is at the retry's BEGIN.
   */
  if (MyBackendType == B_BACKEND) replication_retry_wait_after_locks();
  if (tau == 0) return;
  visible_pending_tau = 0;
  /* Planted bug skip-visible-wait: the client hears "committed" before other QPs show it. */
  if (planted_bug_on("skip-visible-wait")) return;
  if (isCommit && MyBackendType == B_BACKEND) wait_visible(tau);
}

static void commit_on_abort(void) {
  if (phase == PHASE_COMMITTED)
    ereport(WARNING,
            (errmsg("ordo: transaction " UINT64_FORMAT ":" UINT64_FORMAT
                    " committed in the journal at tau " INT64_FORMAT " but its local commit failed",
                    phase_txn_sysid, phase_txn_local_id, phase_tau_commit),
             errdetail("The journal is the system of record; replay brings this server up to "
                       "date.")));
  else if (phase == PHASE_REGISTERED)
    transport_disconnect(); /* interrupted mid-exchange: the connection's state is unknown */
  forget_registration();
}

static void commit_xact_callback(XactEvent event, void *arg) {
  if (MyBackendType != B_BACKEND) {
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
      capture_forget();
    return;
  }
  switch (event) {
    case XACT_EVENT_PRE_COMMIT:
      commit_pre_commit();
      break;
    case XACT_EVENT_PRE_PREPARE:
      if (capture_stats().writes > 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("ordo: PREPARE TRANSACTION is not supported for transactions that "
                               "write captured tables")));
      break;
    case XACT_EVENT_COMMIT:
      if (turn_open) {
        replication_turn_finish(true);
        turn_open = false;
        /* Waited for after the locks are released (commit_resource_release), unless the
         * sidecar said no other QP counts: then our local commit made it visible everywhere. */
        if (phase == PHASE_COMMITTED && !phase_visible_here) visible_pending_tau = phase_tau_commit;
      }
      (void)replication_doom_clear();
      replication_retry_transaction_end(false);
      phase = PHASE_IDLE; /* the entry stays COMMITTED until pruned */
      phase_xid = InvalidTransactionId;
      capture_forget();
      break;
    case XACT_EVENT_ABORT:
      if (turn_open) {
        replication_turn_finish(false);
        turn_open = false;
      }
      visible_pending_tau = 0;
      /* Doomed for a commit earlier in the order: the retry should see that commit. */
      replication_retry_after(replication_doom_clear());
      replication_retry_transaction_end(true);
      commit_on_abort();
      capture_forget();
      break;
    case XACT_EVENT_PREPARE:
      replication_retry_transaction_end(false);
      capture_forget();
      break;
    default:
      break;
  }
}

void commit_init(void) {
  RegisterXactCallback(commit_xact_callback, NULL);
  RegisterResourceReleaseCallback(commit_resource_release, NULL);
}
