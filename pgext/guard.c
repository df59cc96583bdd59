/*
 * guard.c - what ordo forces or refuses in a database where it is installed.
 *
 * - Whether ordo is installed in this database (cached per backend; any
 *   change to pg_proc, as CREATE/DROP EXTENSION makes, drops the cache).
 * - Isolation: every transaction runs at REPEATABLE READ (snapshot
 *   isolation, what the adjudicator decides under). The session default is
 *   set when the session starts and after any utility statement; a level
 *   asked for with BEGIN / SET TRANSACTION is upgraded before the first
 *   snapshot. The assignment bypasses the GUC stack on purpose, so a rolled
 *   back transaction cannot restore READ COMMITTED.
 * - TRUNCATE of a captured table is refused (it bypasses row capture), and
 *   so is dropping the capture trigger, except by a superuser.
 * - Leases: with replication on, a transaction's first statement (not
 *   BEGIN, COMMIT, SET, ...) fails unless this QP's applier holds a live
 *   lease, so no transaction starts on a QP that may miss an acknowledged
 *   commit (docs/replication.md section 6).
 * - Doomed transactions: every statement (but transaction control, so
 *   ROLLBACK still works) fails with 40001 once the applier marked the
 *   transaction as holding a row an earlier commit changes (section 4).
 * Outside databases with ordo installed, nothing here changes behaviour.
 */
#include "ordo.h"

#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_trigger.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

typedef enum InstalledState { INSTALLED_UNKNOWN, INSTALLED_NO, INSTALLED_YES } InstalledState;

static InstalledState installed_state = INSTALLED_UNKNOWN;
static bool session_start_checked = false;
static LocalTransactionId live_checked_lxid = InvalidLocalTransactionId;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static void installed_invalidate(Datum arg, int cacheid, uint32 hashvalue) {
  installed_state = INSTALLED_UNKNOWN;
}

bool ordo_extension_installed(void) {
  if (installed_state == INSTALLED_UNKNOWN) {
    if (!IsTransactionState() || !OidIsValid(MyDatabaseId)) return false;
    installed_state = OidIsValid(get_extension_oid("ordo", true)) ? INSTALLED_YES : INSTALLED_NO;
  }
  return installed_state == INSTALLED_YES;
}

bool ordo_namespace_is_captured(Oid nsp) {
  const char *nspname;
  if (!OidIsValid(nsp) || IsCatalogNamespace(nsp) || IsToastNamespace(nsp)) return false;
  if (isAnyTempNamespace(nsp)) return false;
  nspname = get_namespace_name(nsp);
  if (nspname == NULL) return false;
  return strcmp(nspname, "ordo") != 0 && strcmp(nspname, "information_schema") != 0;
}

static bool captured_kind(char relkind, char persistence, Oid nsp) {
  if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE) return false;
  if (persistence != RELPERSISTENCE_PERMANENT) return false;
  return ordo_namespace_is_captured(nsp);
}

/* At each statement (the caller checked backend and extension): fails a transaction the
 * applier doomed; once per transaction, at its first statement, checks the lease. */
void guard_check_live(void) {
  if (MyProc == NULL) return;
  /* Every statement: the applier may have doomed this transaction (docs/replication.md §4). */
  replication_check_doomed();
  if (MyProc->lxid == live_checked_lxid) return;
  /* The extension's own script runs before the applier can take a lease. */
  if (!replication_enabled() || creating_extension) return;
  live_checked_lxid = MyProc->lxid; /* a failure aborts the transaction: no second check */
  replication_check_live();
}

/*
 * Statements that do not count as a transaction's first: transaction
 * control, settings, and the few that read no table (so an operator can
 * still ALTER SYSTEM on a QP that is catching up).
 */
static bool is_transaction_control(Node *parsetree) {
  return IsA(parsetree, TransactionStmt) || IsA(parsetree, VariableSetStmt) ||
         IsA(parsetree, VariableShowStmt) || IsA(parsetree, AlterSystemStmt) ||
         IsA(parsetree, CheckPointStmt) || IsA(parsetree, DiscardStmt) ||
         IsA(parsetree, LoadStmt) || IsA(parsetree, ListenStmt) || IsA(parsetree, UnlistenStmt);
}

bool ordo_relation_is_captured(Relation rel) {
  return captured_kind(rel->rd_rel->relkind, rel->rd_rel->relpersistence,
                       RelationGetNamespace(rel));
}

void guard_enforce_isolation(void) {
  if (DefaultXactIsoLevel != XACT_REPEATABLE_READ) DefaultXactIsoLevel = XACT_REPEATABLE_READ;
  if (XactIsoLevel != XACT_REPEATABLE_READ && IsTransactionState() && !FirstSnapshotSet &&
      !IsSubTransaction())
    XactIsoLevel = XACT_REPEATABLE_READ;
}

void guard_require_write_isolation(void) {
  if (IsolationUsesXactSnapshot()) return;
  guard_enforce_isolation(); /* the next transaction of this session runs at repeatable read */
  ereport(ERROR,
          (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
           errmsg("ordo: writes need repeatable read isolation"),
           errdetail("This transaction took its snapshot at read committed before ordo could "
                     "upgrade it."),
           errhint("Retry the transaction; this session now runs at repeatable read.")));
}

static void check_truncate(TruncateStmt *stmt) {
  ListCell *lc;
  if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA) return;
  foreach (lc, stmt->relations) {
    RangeVar *rv = lfirst_node(RangeVar, lc);
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    if (!OidIsValid(relid)) continue; /* TRUNCATE itself reports it */
    if (!captured_kind(get_rel_relkind(relid), get_rel_persistence(relid),
                       get_rel_namespace(relid)))
      continue;
    ereport(ERROR,
            (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
             errmsg("ordo: TRUNCATE is not supported on table \"%s.%s\"",
                    get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)),
             errdetail("TRUNCATE removes rows without row-level capture, so other query "
                       "processors would never learn of it."),
             errhint("Use DELETE instead.")));
  }
}

static void check_drop_trigger(DropStmt *stmt) {
  ListCell *lc;
  if (stmt->removeType != OBJECT_TRIGGER || superuser()) return;
  foreach (lc, stmt->objects) {
    List *names = (List *)lfirst(lc);
    if (strcmp(strVal(llast(names)), ORDO_TRIGGER_NAME) == 0)
      ereport(ERROR,
              (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
               errmsg("ordo: only a superuser may drop trigger \"%s\"", ORDO_TRIGGER_NAME),
               errdetail("The trigger captures the table's writes for the commit service.")));
  }
}

/*
 * A table about to become a partition has its own capture trigger; the
 * parent's trigger is cloned onto it on ATTACH and would collide by name.
 * Dropping it first is transactional: a failed ATTACH brings it back.
 */
static void prepare_attach_partition(AlterTableStmt *stmt) {
  ListCell *lc;
  foreach (lc, stmt->cmds) {
    AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
    PartitionCmd *pc;
    Oid relid;
    Oid trigger_oid;
    ObjectAddress trigger;
    if (cmd->subtype != AT_AttachPartition) continue;
    pc = (PartitionCmd *)cmd->def;
    relid = RangeVarGetRelid(pc->name, NoLock, true);
    if (!OidIsValid(relid) || get_rel_relispartition(relid)) continue;
    trigger_oid = get_trigger_oid(relid, ORDO_TRIGGER_NAME, true);
    if (!OidIsValid(trigger_oid)) continue;
    ObjectAddressSet(trigger, TriggerRelationId, trigger_oid);
    performDeletion(&trigger, DROP_RESTRICT, 0);
    CommandCounterIncrement();
  }
}

static void guard_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
                                 ProcessUtilityContext context, ParamListInfo params,
                                 QueryEnvironment *queryEnv, DestReceiver *dest,
                                 QueryCompletion *qc) {
  Node *parsetree = pstmt->utilityStmt;
  bool active = MyBackendType == B_BACKEND && IsTransactionState() && ordo_extension_installed();

  if (active && !is_transaction_control(parsetree)) guard_check_live();
  /* The retry of a block that lost a conflict: before it takes a snapshot (replication.h). */
  if (active && IsA(parsetree, TransactionStmt) &&
      (((TransactionStmt *)parsetree)->kind == TRANS_STMT_BEGIN ||
       ((TransactionStmt *)parsetree)->kind == TRANS_STMT_START))
    replication_retry_wait_at_begin();
  if (active && IsA(parsetree, TruncateStmt)) check_truncate((TruncateStmt *)parsetree);
  if (active && IsA(parsetree, DropStmt)) check_drop_trigger((DropStmt *)parsetree);
  if (active && IsA(parsetree, AlterTableStmt))
    prepare_attach_partition((AlterTableStmt *)parsetree);

  if (prev_ProcessUtility)
    prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
  else
    standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest,
                            qc);

  /* Re-check: CREATE EXTENSION ordo turns it on for this very session. */
  if (MyBackendType == B_BACKEND && IsTransactionState() && ordo_extension_installed())
    guard_enforce_isolation();
}

/*
 * The first commit a backend sees is InitPostgres's own transaction, after
 * the database, its settings and the client's options are in place and
 * before the first query takes a snapshot: the one point where the session
 * default can be set so that even the first transaction runs at
 * repeatable read.
 */
static void guard_xact_callback(XactEvent event, void *arg) {
  if (event != XACT_EVENT_PRE_COMMIT || session_start_checked) return;
  session_start_checked = true;
  if (MyBackendType == B_BACKEND && OidIsValid(MyDatabaseId) && ordo_extension_installed())
    DefaultXactIsoLevel = XACT_REPEATABLE_READ;
}

void guard_init(void) {
  CacheRegisterSyscacheCallback(PROCOID, installed_invalidate, (Datum)0);
  RegisterXactCallback(guard_xact_callback, NULL);
  prev_ProcessUtility = ProcessUtility_hook;
  ProcessUtility_hook = guard_ProcessUtility;
}
