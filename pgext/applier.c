/*
 * applier.c - the "ordo applier" background worker: makes every commit of
 * every QP visible on this QP, in the crossbar's total order
 * (docs/replication.md §4, §5, §8).
 *
 * It subscribes to every key from the sidecar, starting after the progress
 * of the replication origin "ordo" (the tau of the last commit in this
 * QP's WAL), and handles each frame in stream order:
 *  - RECORD of another QP: applied in one local transaction under
 *    session_replication_role = replica, with the origin's progress set to
 *    the record's tau, so the progress commits atomically with the rows.
 *  - RECORD of this QP: its backend takes its turn once everything before it
 *    is visible (often already, from the reply's prev_tau); if it has not,
 *    the applier grants it, and waits until the backend's local commit is
 *    done. If the backend failed or is gone, the applier applies the record
 *    itself.
 *  - WATERMARK W: every record at or below W has been handled, so
 *    applied_tau moves to W; the lease is stored for replication_check_live.
 * applied_tau is reported with APPLIED after each batch of frames that
 * applied a commit here (a WAIT_VISIBLE on another QP may wait on it), and
 * otherwise at most every applier_report_interval_ms; a commit of this QP
 * made in its turn is reported by its backend's WAIT_VISIBLE.
 *
 * A local transaction that holds a lock an apply needs is doomed (§4): the
 * apply waits at most apply_first_lock_wait_ms for a row lock (then
 * apply_lock_poll_ms per retry, at once after a doom); on timeout the
 * transactions holding the record's rows (their xmax) are marked doomed, so
 * their next statement or COMMIT fails with 40001, and get the
 * recovery-conflict signal (as on a hot standby) if they still block one
 * grace later; for DDL every holder of a lock on its table (or, for DDL on
 * other objects, every transaction that did such DDL) is doomed the same
 * way. The apply is retried. Any other error stops the applier: it records the failure in
 * shared memory, and the QP refuses new transactions with XX000.
 */
#include "ordo.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/subtrans.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/origin.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/procsignal.h"
#include "storage/sinvaladt.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "common/hashfn.h"

#include "applier.h"
#include "wire.h"

#define applier_poll_ms 10
#define applier_report_interval_ms 10
#define applier_extension_poll_ms 100
#define applier_reconnect_min_ms 100
#define applier_reconnect_max_ms 2000
#define applier_turn_poll_ms 100
#define apply_lock_poll_ms 5 /* how long one apply attempt waits for a row lock */
#define apply_first_lock_wait_ms 1 /* the first attempt, before any holder is doomed */
#define applier_retry_pause_ms 2
/* Attempts of a schema change whose lock no key names before every local transaction is doomed. */
#define apply_unnamed_lock_attempts 3
#define applier_recv_chunk_bytes (64 * 1024)
#define applier_retry_log_every 20
#define applier_plan_cache_entries 256

typedef enum ApplyOutcome {
  APPLY_OK,
  APPLY_LOCK_CONFLICT, /* lock timeout or deadlock with a local transaction: doom it, retry */
  APPLY_RETRY,         /* the origin is still held by a finishing backend, or a cancel: retry */
  APPLY_FAILED         /* a bug or divergence: stop */
} ApplyOutcome;

typedef struct PlanEntry {
  uint32 hash; /* hash key: of the SQL text */
  char *sql;   /* in TopMemoryContext */
  SPIPlanPtr plan;
} PlanEntry;

static pgsocket sock = PGINVALID_SOCKET;
static OrdoSocketWait sock_wait = {NULL, -1, 0}; /* open exactly while sock is */
static uint8 *in_buf = NULL;
static size_t in_len = 0;
static size_t in_cap = 0;
static StringInfoData out_buf;
static RepOriginId origin = InvalidRepOriginId;
static uint64 my_system_id = 0;
static int64 reported_tau = -1;
static TimestampTz reported_at = 0;
static MemoryContext record_cxt = NULL;
static HTAB *plans = NULL;

/* ---- small helpers ---- */

static uint64 load_le64(const uint8 *p) {
  uint64 v = 0;
  int i;
  for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static void *grow_top(void *ctx, void *old, size_t new_cap) {
  (void)ctx;
  if (old == NULL) return MemoryContextAlloc(TopMemoryContext, new_cap);
  return repalloc(old, new_cap);
}

static void applier_sleep(long ms) {
  (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
                  PG_WAIT_EXTENSION);
  ResetLatch(MyLatch);
  CHECK_FOR_INTERRUPTS();
  if (ConfigReloadPending) {
    ConfigReloadPending = false;
    ProcessConfigFile(PGC_SIGHUP);
  }
}

static void applier_on_exit(int code, Datum arg) {
  if (replication_shared == NULL) return;
  SpinLockAcquire(&replication_shared->mutex);
  if (replication_shared->applier_pid == MyProcPid) {
    replication_shared->applier_latch = NULL;
    replication_shared->applier_pid = 0;
  }
  SpinLockRelease(&replication_shared->mutex);
}

static void set_failed(int64 tau, const char *text) {
  SpinLockAcquire(&replication_shared->mutex);
  replication_shared->failed = true;
  replication_shared->failed_tau = tau;
  strlcpy(replication_shared->failure, text, ORDO_FAILURE_TEXT_BYTES);
  SpinLockRelease(&replication_shared->mutex);
}

/* ---- the sidecar connection ---- */

static void disconnect(void) {
  socket_wait_close(&sock_wait);
  if (sock != PGINVALID_SOCKET) close(sock);
  sock = PGINVALID_SOCKET;
  in_len = 0;
  resetStringInfo(&out_buf);
}

static bool connect_sidecar(void) {
  struct sockaddr_un addr;
  int fd;
  if (ordo_sidecar_socket == NULL || ordo_sidecar_socket[0] == '\0') return false;
  if (strlen(ordo_sidecar_socket) >= sizeof addr.sun_path) return false;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  strlcpy(addr.sun_path, ordo_sidecar_socket, sizeof addr.sun_path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return false;
  }
  sock = fd;
  in_len = 0;
  resetStringInfo(&out_buf);
  socket_wait_open(&sock_wait, fd);
  return true;
}

/* Sends what it can of out_buf; false when the connection is lost. */
static bool flush_out(void) {
  size_t sent = 0;
  while (sent < (size_t)out_buf.len) {
    ssize_t n = send(sock, out_buf.data + sent, out_buf.len - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    ereport(LOG, (errmsg("ordo applier: lost the sidecar connection: %m")));
    return false;
  }
  if (sent > 0) {
    memmove(out_buf.data, out_buf.data + sent, out_buf.len - sent);
    out_buf.len -= (int)sent;
    out_buf.data[out_buf.len] = '\0';
  }
  return true;
}

/* Appends one frame built by encode into out_buf. */
static void queue_frame(const wire_buf *frame) {
  Assert(!frame->failed);
  appendBinaryStringInfo(&out_buf, (const char *)frame->data, (int)frame->len);
}

static void queue_applied(int64 tau) {
  uint8 bytes[WIRE_FRAME_HEADER_BYTES + 8];
  wire_buf buf;
  wire_buf_init(&buf, NULL, NULL);
  buf.data = bytes;
  buf.cap = sizeof bytes;
  wire_encode_applied(&buf, tau);
  queue_frame(&buf);
  reported_tau = tau;
  reported_at = GetCurrentTimestamp();
}

/*
 * Queues APPLIED when applied_tau changed: if force, else at most every
 * report interval. The caller flushes (once per batch of frames, and before
 * waiting for a turn).
 */
static void maybe_report(bool force) {
  int64 tau = replication_applied_tau();
  if (tau == reported_tau) return;
  if (!force && !TimestampDifferenceExceeds(reported_at, GetCurrentTimestamp(),
                                            applier_report_interval_ms))
    return;
  queue_applied(tau);
}

/* Reads what the socket has; false on end of stream or error. */
static bool read_available(void) {
  for (;;) {
    ssize_t n;
    if (in_cap - in_len < applier_recv_chunk_bytes) {
      size_t cap = in_cap ? in_cap : 2 * applier_recv_chunk_bytes;
      while (cap - in_len < applier_recv_chunk_bytes) cap *= 2;
      in_buf = grow_top(NULL, in_buf, cap);
      in_cap = cap;
    }
    n = recv(sock, in_buf + in_len, in_cap - in_len, MSG_DONTWAIT);
    if (n > 0) {
      in_len += (size_t)n;
      continue;
    }
    if (n == 0) {
      ereport(LOG, (errmsg("ordo applier: the sidecar closed the connection")));
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    ereport(LOG, (errmsg("ordo applier: could not read from the sidecar: %m")));
    return false;
  }
}

/* ---- applying one commit ---- */

static void plans_reset(void) {
  HASH_SEQ_STATUS seq;
  PlanEntry *e;
  if (plans == NULL) return;
  hash_seq_init(&seq, plans);
  while ((e = hash_seq_search(&seq)) != NULL) {
    if (e->plan) SPI_freeplan(e->plan);
    if (e->sql) pfree(e->sql);
  }
  hash_destroy(plans);
  plans = NULL;
}

/* A prepared plan for sql with nargs text parameters, kept across transactions. */
static SPIPlanPtr plan_for(const char *sql, int nargs) {
  uint32 hash = hash_bytes((const unsigned char *)sql, (int)strlen(sql));
  PlanEntry *e;
  bool found;
  Oid *argtypes;
  SPIPlanPtr plan;
  int i;

  if (plans == NULL) {
    HASHCTL ctl;
    memset(&ctl, 0, sizeof ctl);
    ctl.keysize = sizeof(uint32);
    ctl.entrysize = sizeof(PlanEntry);
    ctl.hcxt = TopMemoryContext;
    plans = hash_create("ordo applier plans", applier_plan_cache_entries, &ctl,
                        HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  }
  e = hash_search(plans, &hash, HASH_ENTER, &found);
  if (found && e->plan != NULL && strcmp(e->sql, sql) == 0) return e->plan;
  if (!found) {
    e->sql = NULL;
    e->plan = NULL;
  }
  argtypes = palloc(sizeof(Oid) * Max(nargs, 1));
  for (i = 0; i < nargs; i++) argtypes[i] = TEXTOID;
  plan = SPI_prepare(sql, nargs, argtypes);
  if (plan == NULL)
    elog(ERROR, "ordo: could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
  if (SPI_keepplan(plan) != 0) elog(ERROR, "ordo: could not keep the plan of \"%s\"", sql);
  /* Replace (a hash collision or a first use). */
  if (e->plan) SPI_freeplan(e->plan);
  if (e->sql) pfree(e->sql);
  e->sql = MemoryContextStrdup(TopMemoryContext, sql);
  e->plan = plan;
  return plan;
}

/* Runs sql (cached plan) with its text parameters; anything but `expected` is an ERROR. */
static void execute_plan(const char *sql, int nargs, Datum *values, const char *nulls,
                         int expected) {
  int ret = SPI_execute_plan(plan_for(sql, nargs), values, nulls, false, 0);
  if (ret != expected) elog(ERROR, "ordo: \"%s\" returned %s", sql, SPI_result_code_string(ret));
}

static char *key_name(const char *data, uint16 len) { return pnstrdup(data, len); }

/* Opens the table a primary key names, with the lock its row change needs. */
static Relation open_key_table(const wire_key *key, LOCKMODE mode) {
  RangeVar *rv = makeRangeVar(key_name(key->schema, key->schema_len),
                              key_name(key->table, key->table_len), -1);
  return table_openrv(rv, mode);
}

/* The primary key's columns in index order (the order of the key's values). */
static int primary_key_columns(Relation rel, AttrNumber *attnums) {
  Oid pk = RelationGetPrimaryKeyIndex(rel);
  Relation index;
  int n;
  int i;
  if (!OidIsValid(pk))
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("ordo: table \"%s.%s\" has no primary key",
                           get_namespace_name(RelationGetNamespace(rel)),
                           RelationGetRelationName(rel))));
  index = index_open(pk, AccessShareLock);
  n = index->rd_index->indnkeyatts;
  for (i = 0; i < n; i++) attnums[i] = index->rd_index->indkey.values[i];
  index_close(index, AccessShareLock);
  return n;
}

static const char *qualified_name(Relation rel) {
  return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                    RelationGetRelationName(rel));
}

static Datum text_param(const wire_value *v, char *null_flag) {
  if (v->is_null) {
    *null_flag = 'n';
    return (Datum)0;
  }
  *null_flag = ' ';
  return PointerGetDatum(cstring_to_text_with_len(v->data, (int)v->len));
}

static void decode_key_or_fail(const wire_write *w, wire_key *key) {
  if (!wire_decode_key(w->key, w->key_len, key) || key->tag != WIRE_KEY_TAG_PRIMARY)
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                    errmsg("ordo: a write of kind %u has a malformed primary key", w->kind)));
}

/* Insert or update: upsert by primary key from the row image. */
static void apply_upsert(const wire_write *w) {
  wire_key key;
  wire_image image;
  Relation rel;
  TupleDesc desc;
  AttrNumber pk[INDEX_MAX_KEYS];
  int npk;
  StringInfoData cols, vals, sets;
  Datum *values;
  char *nulls;
  const uint8 *cursor;
  const uint8 *end;
  int nargs = 0;
  int i;
  StringInfoData sql;

  decode_key_or_fail(w, &key);
  if (!wire_decode_image(w->image, w->image_len, &image))
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("ordo: a malformed row image")));
  rel = open_key_table(&key, RowExclusiveLock);
  desc = RelationGetDescr(rel);
  npk = primary_key_columns(rel, pk);
  initStringInfo(&cols);
  initStringInfo(&vals);
  initStringInfo(&sets);
  values = palloc(sizeof(Datum) * Max(image.natts, 1));
  nulls = palloc(Max(image.natts, 1));
  cursor = image.columns;
  end = image.columns + image.columns_len;
  for (i = 0; i < image.natts; i++) {
    const char *name;
    uint16 name_len;
    wire_value v;
    char *colname;
    AttrNumber attnum;
    Form_pg_attribute att;
    bool is_pk = false;
    int k;
    if (!wire_next_column(&cursor, end, &name, &name_len, &v))
      ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("ordo: a malformed row image")));
    colname = key_name(name, name_len);
    attnum = get_attnum(RelationGetRelid(rel), colname);
    if (attnum == InvalidAttrNumber)
      ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                      errmsg("ordo: column \"%s\" of table %s does not exist here", colname,
                             qualified_name(rel))));
    att = TupleDescAttr(desc, attnum - 1);
    if (att->attgenerated) continue; /* computed here from the other columns */
    for (k = 0; k < npk; k++) is_pk |= pk[k] == attnum;
    values[nargs] = text_param(&v, &nulls[nargs]);
    nargs++;
    appendStringInfo(&cols, "%s%s", nargs > 1 ? ", " : "", quote_identifier(colname));
    appendStringInfo(&vals, "%s$%d::text::%s", nargs > 1 ? ", " : "", nargs,
                     format_type_be(att->atttypid));
    if (!is_pk)
      appendStringInfo(&sets, "%s%s = EXCLUDED.%s", sets.len > 0 ? ", " : "",
                       quote_identifier(colname), quote_identifier(colname));
  }
  initStringInfo(&sql);
  appendStringInfo(&sql, "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE VALUES (%s) ON CONFLICT (",
                   qualified_name(rel), cols.data, vals.data);
  for (i = 0; i < npk; i++)
    appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "",
                     quote_identifier(NameStr(TupleDescAttr(desc, pk[i] - 1)->attname)));
  if (sets.len > 0)
    appendStringInfo(&sql, ") DO UPDATE SET %s", sets.data);
  else
    appendStringInfoString(&sql, ") DO NOTHING");
  table_close(rel, NoLock);
  execute_plan(sql.data, nargs, values, nulls, SPI_OK_INSERT);
}

/* Delete by primary key. */
static void apply_delete(const wire_write *w) {
  wire_key key;
  Relation rel;
  TupleDesc desc;
  AttrNumber pk[INDEX_MAX_KEYS];
  int npk;
  Datum values[INDEX_MAX_KEYS];
  char nulls[INDEX_MAX_KEYS];
  const uint8 *cursor;
  const uint8 *end;
  StringInfoData lhs, rhs, sql;
  int i;

  decode_key_or_fail(w, &key);
  rel = open_key_table(&key, RowExclusiveLock);
  desc = RelationGetDescr(rel);
  npk = primary_key_columns(rel, pk);
  if (key.ncols != npk)
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                    errmsg("ordo: a key of table %s has %u columns, its primary key here has %d",
                           qualified_name(rel), (unsigned)key.ncols, npk)));
  initStringInfo(&lhs);
  initStringInfo(&rhs);
  cursor = key.values;
  end = key.values + key.values_len;
  for (i = 0; i < npk; i++) {
    wire_value v;
    Form_pg_attribute att = TupleDescAttr(desc, pk[i] - 1);
    if (!wire_next_value(&cursor, end, &v))
      ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("ordo: a malformed key")));
    values[i] = text_param(&v, &nulls[i]);
    appendStringInfo(&lhs, "%s%s", i > 0 ? ", " : "", quote_identifier(NameStr(att->attname)));
    appendStringInfo(&rhs, "%s$%d::text::%s", i > 0 ? ", " : "", i + 1,
                     format_type_be(att->atttypid));
  }
  initStringInfo(&sql);
  appendStringInfo(&sql, "DELETE FROM %s WHERE (%s) = (%s)", qualified_name(rel), lhs.data,
                   rhs.data);
  table_close(rel, NoLock);
  execute_plan(sql.data, npk, values, nulls, SPI_OK_DELETE);
}

/* DDL: the statement as the same role with the same search_path (both local to the transaction).
 * A statement with several keys carries its text in the first write only. */
static void apply_ddl(const wire_write *w) {
  wire_ddl_image ddl;
  char *path;
  char *role;
  char *statement;
  int ret;

  if (!wire_decode_ddl_image(w->image, w->image_len, &ddl))
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("ordo: a malformed DDL image")));
  if (ddl.statement_len == 0) return; /* another key of the statement before it (ddl.c) */
  path = pnstrdup(ddl.search_path, ddl.search_path_len);
  role = pnstrdup(ddl.role, ddl.role_len);
  statement = pnstrdup(ddl.statement, ddl.statement_len);
  (void)set_config_option("search_path", path, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true,
                          0, false);
  if (role[0] != '\0' && OidIsValid(get_role_oid(role, true)))
    (void)set_config_option("role", role, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
                            false);
  else if (role[0] != '\0')
    ereport(LOG, (errmsg("ordo applier: role \"%s\" does not exist here; running \"%s\" as the "
                         "applier",
                         role, statement)));
  else
    (void)set_config_option("role", "none", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
                            false);
  ret = SPI_execute(statement, false, 0);
  if (ret < 0) elog(ERROR, "ordo: \"%s\" returned %s", statement, SPI_result_code_string(ret));
  /* Back to the applier's own role for the next write (the transaction end resets both too). */
  (void)set_config_option("role", "none", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
                          false);
}

static void reset_origin_session(bool *set_up) {
  if (!*set_up) return;
  *set_up = false;
  replorigin_session_reset();
  replorigin_session_origin = InvalidRepOriginId;
  replorigin_session_origin_lsn = InvalidXLogRecPtr;
  replorigin_session_origin_timestamp = 0;
}

static bool record_has_ddl(const wire_message *m);

/* One attempt at applying a commit in one local transaction. *error is set unless APPLY_OK. */
static ApplyOutcome apply_attempt(const wire_message *m, int64 tau, int lock_wait_ms,
                                  bool *ddl_seen, ErrorData **error) {
  MemoryContext outer = CurrentMemoryContext;
  volatile bool origin_set_up = false;
  volatile bool registered = false;
  volatile bool setting_up_origin = false;
  volatile TransactionId xid = InvalidTransactionId;
  ErrorData *edata = NULL;
  volatile bool saw_ddl = false;

  *error = NULL;
  /* Poll briefly: a blocker is marked doomed at the first timeout and usually
   * releases its row at its next statement; the grace counts from the mark. */
  SetConfigOption("lock_timeout", psprintf("%d", Min(ordo_apply_lock_grace_ms, lock_wait_ms)),
                  PGC_SUSET, PGC_S_OVERRIDE);
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PG_TRY();
  {
    const uint8 *cursor = m->writes;
    const uint8 *end = m->writes + m->writes_len;
    wire_write w;
    uint32 n = 0;

    PushActiveSnapshot(GetTransactionSnapshot());
    xid = GetTopTransactionId();
    visibility_register_applied(xid, tau); /* a ring entry, so tau_start stays right (§5) */
    registered = true;
    setting_up_origin = true;
    replorigin_session_setup(origin);
    setting_up_origin = false;
    origin_set_up = true;
    replorigin_session_origin = origin;
    replorigin_session_origin_lsn = (XLogRecPtr)tau;
    replorigin_session_origin_timestamp = GetCurrentTimestamp();

    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "ordo: SPI_connect failed");
    while (wire_next_write(&cursor, end, &w)) {
      n++;
      switch (w.kind) {
        case WIRE_KIND_INSERT:
        case WIRE_KIND_UPDATE:
          apply_upsert(&w);
          break;
        case WIRE_KIND_DELETE:
          apply_delete(&w);
          break;
        case WIRE_KIND_LOCK:
        case WIRE_KIND_UNIQUE:
        case WIRE_KIND_SHARED_LOCK:
          break;
        case WIRE_KIND_DDL:
          apply_ddl(&w);
          saw_ddl = true;
          break;
        default:
          elog(ERROR, "ordo: unknown write kind %u", (unsigned)w.kind);
      }
    }
    if (n != m->write_count) elog(ERROR, "ordo: the commit's writes do not decode");
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(outer);
    edata = CopyErrorData();
    FlushErrorState();
    AbortCurrentTransaction();
  }
  PG_END_TRY();
  MemoryContextSwitchTo(outer);
  {
    bool set_up = origin_set_up;
    reset_origin_session(&set_up);
  }
  /* A failed schema change may have left plans behind too; a failed row change (a lock
   * timeout, most often) leaves the cached plans as good as they were. */
  if (saw_ddl || (edata != NULL && record_has_ddl(m))) *ddl_seen = true;
  if (edata == NULL) return APPLY_OK;
  if (registered) visibility_remove(xid);
  *error = edata;
  if (setting_up_origin && edata->sqlerrcode == ERRCODE_OBJECT_IN_USE) return APPLY_RETRY;
  /* A cancel (pg_cancel_backend, a stray SIGINT) says nothing about the commit: never a reason
   * to stop applying. apply_commit logs it and retries. */
  if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED) return APPLY_RETRY;
  if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
      edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED)
    return APPLY_LOCK_CONFLICT;
  return APPLY_FAILED;
}

/*
 * Doomed local transactions (§4). A row change waits for the transactions
 * that hold its row: the in-progress xmax of the row's current version (the
 * members of a multixact xmax). Each is first marked doomed in its turn slot,
 * so its next statement or its COMMIT fails with a clean 40001; one still
 * blocking ordo.apply_lock_grace later (idle in transaction, or a statement
 * that reaches no hook), or one in a lock wait of its own, gets the hot
 * standby's lock-conflict signal. A transaction waiting for its turn is
 * never doomed for a row change: its commit is final and by §5 it holds no
 * row an earlier commit changes, so finding one is a broken invariant,
 * logged, and the apply keeps retrying. Where the row's holders cannot be
 * found (an uncommitted insert of the key, an error looking), every writer
 * of the table is treated the same way but for turn-waiting ones.
 * DDL waits for table locks: every holder of a lock on the table gets the
 * signal at once, and a backend waiting for its turn is told to give up
 * (40003, §5).
 */

#define applier_row_holders_max 64

typedef enum RowHolders {
  HOLDERS_FOUND,  /* xids[0..n) hold the row (possibly none) */
  HOLDERS_UNKNOWN /* use every writer of the table */
} RowHolders;

/* The in-progress top-level transactions holding the current version of the row w changes. */
static RowHolders row_holders(const wire_write *w, TransactionId *xids, int *nxids) {
  MemoryContext outer = CurrentMemoryContext;
  ResourceOwner owner = CurrentResourceOwner;
  volatile RowHolders result = HOLDERS_UNKNOWN;
  volatile int n = 0;

  *nxids = 0;
  BeginInternalSubTransaction(NULL);
  MemoryContextSwitchTo(outer);
  PG_TRY();
  {
    wire_key key;
    Relation rel;
    TupleDesc desc;
    AttrNumber pk[INDEX_MAX_KEYS];
    Datum values[INDEX_MAX_KEYS];
    char nulls[INDEX_MAX_KEYS];
    const uint8 *cursor;
    const uint8 *end;
    StringInfoData lhs, rhs, sql;
    int npk;
    int i;
    int ret;
    bool found = false;
    Oid tableoid = InvalidOid;
    ItemPointerData tid;

    decode_key_or_fail(w, &key);
    rel = open_key_table(&key, AccessShareLock);
    desc = RelationGetDescr(rel);
    npk = primary_key_columns(rel, pk);
    if (key.ncols != npk) elog(ERROR, "ordo: a key does not match the primary key");
    initStringInfo(&lhs);
    initStringInfo(&rhs);
    cursor = key.values;
    end = key.values + key.values_len;
    for (i = 0; i < npk; i++) {
      wire_value v;
      Form_pg_attribute att = TupleDescAttr(desc, pk[i] - 1);
      if (!wire_next_value(&cursor, end, &v)) elog(ERROR, "ordo: a malformed key");
      values[i] = text_param(&v, &nulls[i]);
      appendStringInfo(&lhs, "%s%s", i > 0 ? ", " : "", quote_identifier(NameStr(att->attname)));
      appendStringInfo(&rhs, "%s$%d::text::%s", i > 0 ? ", " : "", i + 1,
                       format_type_be(att->atttypid));
    }
    initStringInfo(&sql);
    appendStringInfo(&sql, "SELECT tableoid, ctid FROM %s WHERE (%s) = (%s)", qualified_name(rel),
                     lhs.data, rhs.data);
    table_close(rel, NoLock);

    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "ordo: SPI_connect failed");
    ret = SPI_execute_plan(plan_for(sql.data, npk), values, nulls, false, 1);
    if (ret != SPI_OK_SELECT)
      elog(ERROR, "ordo: \"%s\" returned %s", sql.data, SPI_result_code_string(ret));
    if (SPI_processed == 1) {
      bool isnull_oid, isnull_tid;
      Datum oid_datum = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull_oid);
      Datum tid_datum = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull_tid);
      if (!isnull_oid && !isnull_tid) {
        found = true;
        tableoid = DatumGetObjectId(oid_datum);
        ItemPointerCopy((ItemPointer)DatumGetPointer(tid_datum), &tid);
      }
    }
    SPI_finish();

    if (found) {
      /* The visible version's header: its xmax names who updated, deleted or locked it. */
      Relation heap = table_open(tableoid, AccessShareLock);
      HeapTupleData tuple;
      Buffer buf = InvalidBuffer;
      uint16 infomask = 0;
      TransactionId xmax = InvalidTransactionId;
      bool fetched;
      if (heap->rd_rel->relam != HEAP_TABLE_AM_OID) elog(ERROR, "ordo: not a heap table");
      tuple.t_self = tid;
      fetched = heap_fetch(heap, SnapshotAny, &tuple, &buf, true);
      if (fetched) {
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        infomask = tuple.t_data->t_infomask;
        xmax = HeapTupleHeaderGetRawXmax(tuple.t_data);
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
      }
      if (BufferIsValid(buf)) ReleaseBuffer(buf);
      table_close(heap, NoLock);
      if (!fetched) elog(ERROR, "ordo: the row version moved");
      if (!(infomask & HEAP_XMAX_INVALID) && TransactionIdIsValid(xmax)) {
        MultiXactMember *members = NULL;
        int nmembers = 0;
        TransactionId single = xmax;
        if (infomask & HEAP_XMAX_IS_MULTI) {
          nmembers = GetMultiXactIdMembers((MultiXactId)xmax, &members, false,
                                           HEAP_XMAX_IS_LOCKED_ONLY(infomask));
        } else {
          nmembers = 1;
        }
        for (i = 0; i < nmembers && n < applier_row_holders_max; i++) {
          TransactionId x = (infomask & HEAP_XMAX_IS_MULTI) ? members[i].xid : single;
          if (!TransactionIdIsValid(x) || !TransactionIdIsInProgress(x)) continue;
          xids[n++] = SubTransGetTopmostTransaction(x);
        }
        if (members) pfree(members);
      }
      result = HOLDERS_FOUND;
    }
    /* No visible row: an uncommitted insert of the key may be what blocks: unknown. */
    ReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(outer);
    CurrentResourceOwner = owner;
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(outer);
    FlushErrorState();
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(outer);
    CurrentResourceOwner = owner;
    result = HOLDERS_UNKNOWN;
    n = 0;
  }
  PG_END_TRY();
  *nxids = n;
  return result;
}

static void signal_conflict(PGPROC *proc) {
  VirtualTransactionId vxid;
  GET_VXID_FROM_PGPROC(vxid, *proc);
  if (VirtualTransactionIdIsValid(vxid))
    (void)CancelVirtualTransaction(vxid, PROCSIG_RECOVERY_CONFLICT_LOCK);
}

/*
 * Dooms the local transaction xid of proc that holds a row of the commit at
 * tau (precise: its xmax; else a writer of the table). 1 when it was marked
 * or signalled, 0 when left alone.
 */
static int doom_row_holder(PGPROC *proc, TransactionId xid, const wire_message *m, int64 tau,
                           bool precise) {
  OrdoTurnSlot *slot;
  uint32 state;
  int64 turn_tau;
  int64 now = replication_monotonic_us();
  int64 marked_at = -1;
  int64 grace_us = (int64)ordo_apply_lock_grace_ms * 1000;
  LocalTransactionId lxid;
  int pid = proc->pid;
  bool lock_wait = proc->waitLock != NULL;
  bool signal = false;

  if (proc == MyProc || pid == 0 || proc->pgprocno >= replication_shared->nslots) return 0;
  if (proc->statusFlags & PROC_IS_AUTOVACUUM) return 0;
  lxid = proc->lxid;
  if (!TransactionIdEquals(proc->xid, xid) || lxid == InvalidLocalTransactionId) return 0;
  slot = &replication_shared->slots[proc->pgprocno];
  SpinLockAcquire(&replication_shared->mutex);
  state = slot->pid == pid ? slot->state : ORDO_TURN_NONE;
  turn_tau = slot->tau;
  if (state != ORDO_TURN_WAITING && state != ORDO_TURN_GRANTED && state != ORDO_TURN_SENT) {
    if (slot->doom_pid == pid && slot->doom_lxid == lxid) {
      marked_at = slot->doom_at_us;
    } else {
      slot->doom_pid = pid;
      slot->doom_lxid = lxid;
      slot->doom_at_us = now;
      slot->doom_tau = tau;
      slot->doom_signalled_at_us = 0;
    }
    /*
     * A statement stuck in a lock wait never reaches a hook, marked just now
     * or earlier (it may have entered the wait after the mark): signal it at
     * once. Its lock may be held by a local commit that waits for its turn
     * behind this very apply, which would leave all three waiting out the
     * grace. A session idle in transaction is signalled once the grace is
     * over. Once per grace at most: a second signal that reaches the backend
     * while it aborts for the first would end its session.
     */
    if ((lock_wait || (marked_at >= 0 && now - marked_at >= grace_us)) &&
        (slot->doom_signalled_at_us == 0 || now - slot->doom_signalled_at_us >= grace_us)) {
      slot->doom_signalled_at_us = now;
      signal = true;
    }
  }
  SpinLockRelease(&replication_shared->mutex);

  if (state == ORDO_TURN_WAITING || state == ORDO_TURN_GRANTED) {
    if (precise)
      ereport(WARNING,
              (errmsg("ordo applier: commit at tau " INT64_FORMAT " (transaction %u of its query "
                      "processor) needs a row held by local transaction %u, which waits for its "
                      "turn at tau " INT64_FORMAT,
                      tau, (TransactionId)(load_le64(m->txn_id + 8) & 0xFFFFFFFFu), xid, turn_tau),
               errdetail("Two approved commits wrote one row with overlapping intervals "
                         "(docs/replication.md section 5): a broken invariant. Retrying without "
                         "cancelling the committed transaction (backend %d).",
                         pid)));
    return 0;
  }
  /* Awaiting its verdict: the adjudicator rejects it (it wrote a key C wrote after its start). */
  if (state == ORDO_TURN_SENT) return 0;
  if (signal) signal_conflict(proc);
  return 1;
}

/* Every writer of table relid (what a row change would wait for) is doomed as a row holder. */
static int doom_table_writers(Oid relid, const wire_message *m, int64 tau) {
  LOCKTAG tag;
  VirtualTransactionId *vxids;
  int doomed = 0;
  SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
  vxids = GetLockConflicts(&tag, ExclusiveLock, NULL);
  for (; VirtualTransactionIdIsValid(*vxids); vxids++) {
    PGPROC *proc = BackendIdGetProc(vxids->backendId);
    TransactionId xid;
    if (proc == NULL) continue;
    xid = proc->xid;
    if (!TransactionIdIsValid(xid)) continue; /* no xid: it holds no row */
    doomed += doom_row_holder(proc, xid, m, tau, false);
  }
  return doomed;
}

/*
 * Every holder of the lock tag (a table a DDL changes; the catalog lock of
 * DDL on other objects, ddl.c). One waiting for its turn gives up (40003,
 * §5); the others are doomed like holders of a row: marked at once (their
 * next statement or COMMIT fails with 40001), signalled one grace later.
 */
static int doom_locker(PGPROC *proc, const wire_message *m, int64 tau) {
  bool waiting = false;
  if (proc == NULL || proc == MyProc) return 0;
  if (proc->statusFlags & PROC_IS_AUTOVACUUM) return 0;
  if (proc->pgprocno < replication_shared->nslots) {
    OrdoTurnSlot *slot = &replication_shared->slots[proc->pgprocno];
    SpinLockAcquire(&replication_shared->mutex);
    if (slot->pid == proc->pid &&
        (slot->state == ORDO_TURN_WAITING || slot->state == ORDO_TURN_GRANTED)) {
      waiting = true;
      slot->doomed = true;
    }
    SpinLockRelease(&replication_shared->mutex);
  }
  if (waiting) {
    SetLatch(&proc->procLatch);
    return 1;
  }
  return doom_row_holder(proc, proc->xid, m, tau, false);
}

static int doom_lockers(const LOCKTAG *tag, const wire_message *m, int64 tau) {
  VirtualTransactionId *vxids;
  int doomed = 0;
  vxids = GetLockConflicts(tag, AccessExclusiveLock, NULL);
  for (; VirtualTransactionIdIsValid(*vxids); vxids++)
    doomed += doom_locker(BackendIdGetProc(vxids->backendId), m, tau);
  return doomed;
}

/* Whether the record changes a schema. */
static bool record_has_ddl(const wire_message *m) {
  const uint8 *cursor = m->writes;
  const uint8 *end = m->writes + m->writes_len;
  wire_write w;
  while (wire_next_write(&cursor, end, &w))
    if (w.kind == WIRE_KIND_DDL) return true;
  return false;
}

/*
 * The safety net of a schema change whose apply waits for a lock that no key
 * of its record names, so doom_blockers found no holder (a new table's
 * foreign key locks the table it references; ddl.c names what it can):
 * every local transaction of this database in progress is doomed as a
 * holder of that lock would be. Left waiting, a writer of the locked table
 * would commit behind the schema change and wait for its turn forever.
 */
static int doom_every_transaction(const wire_message *m, int64 tau) {
  int doomed = 0;
  uint32 i;
  for (i = 0; i < ProcGlobal->allProcCount; i++) {
    PGPROC *proc = &ProcGlobal->allProcs[i];
    if (proc == MyProc || proc->pid == 0 || proc->databaseId != MyDatabaseId) continue;
    if (proc->isBackgroundWorker || proc->lxid == InvalidLocalTransactionId) continue;
    doomed += doom_locker(proc, m, tau);
  }
  return doomed;
}

static int doom_table_lockers(Oid relid, const wire_message *m, int64 tau) {
  LOCKTAG tag;
  SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
  return doom_lockers(&tag, m, tau);
}

/* DDL on other objects: every local transaction that did such DDL too (ddl.c). */
static int doom_catalog_ddl(const wire_message *m, int64 tau) {
  LOCKTAG tag;
  ddl_catalog_locktag(&tag);
  return doom_lockers(&tag, m, tau);
}

static int doom_blockers(const wire_message *m, int64 tau) {
  const uint8 *cursor = m->writes;
  const uint8 *end = m->writes + m->writes_len;
  wire_write w;
  int doomed = 0;
  MemoryContext outer = CurrentMemoryContext;

  StartTransactionCommand();
  while (wire_next_write(&cursor, end, &w)) {
    wire_key key;
    Oid nsp;
    Oid relid;
    TransactionId xids[applier_row_holders_max];
    int nxids = 0;
    int i;
    if (w.kind == WIRE_KIND_LOCK || w.kind == WIRE_KIND_UNIQUE ||
        w.kind == WIRE_KIND_SHARED_LOCK)
      continue;
    if (!wire_decode_key(w.key, w.key_len, &key)) continue;
    if (w.kind == WIRE_KIND_DDL && key.schema_len == 0 && key.table_len == 0) {
      doomed += doom_catalog_ddl(m, tau);
      continue;
    }
    nsp = get_namespace_oid(key_name(key.schema, key.schema_len), true);
    if (!OidIsValid(nsp)) continue;
    relid = get_relname_relid(key_name(key.table, key.table_len), nsp);
    if (!OidIsValid(relid)) continue;
    if (w.kind == WIRE_KIND_DDL) {
      doomed += doom_table_lockers(relid, m, tau);
      continue;
    }
    if (row_holders(&w, xids, &nxids) == HOLDERS_UNKNOWN) {
      doomed += doom_table_writers(relid, m, tau);
      continue;
    }
    for (i = 0; i < nxids; i++) {
      int pid = BackendXidGetPid(xids[i]);
      PGPROC *proc = pid != 0 ? BackendPidGetProc(pid) : NULL;
      if (proc != NULL) doomed += doom_row_holder(proc, xids[i], m, tau, true);
    }
  }
  CommitTransactionCommand();
  MemoryContextSwitchTo(outer);
  return doomed;
}

/* Applies a commit from its record, retrying past doomed local transactions. False: failed. */
static bool apply_commit(const wire_message *m, int64 tau) {
  int attempt;
  for (attempt = 1;; attempt++) {
    bool ddl_seen = false;
    ErrorData *error = NULL;
    int signalled_now = 0;
    /* The first wait is short: the holders are not doomed yet, so only a
     * statement about to end would release the row; doom them sooner. */
    ApplyOutcome outcome = apply_attempt(
        m, tau, attempt == 1 ? apply_first_lock_wait_ms : apply_lock_poll_ms, &ddl_seen, &error);
    if (ddl_seen) plans_reset();
    if (outcome == APPLY_OK) return true;
    if (outcome == APPLY_FAILED) {
      char *text = error->detail ? psprintf("%s (%s)", error->message, error->detail)
                                 : pstrdup(error->message);
      set_failed(tau, text);
      ereport(LOG, (errmsg("ordo: applying commit at tau " INT64_FORMAT " failed: %s", tau, text),
                    errdetail("SQLSTATE %s. This query processor stops applying commits and "
                              "refuses new transactions until the cause is fixed.",
                              unpack_sql_state(error->sqlerrcode)),
                    error->context ? errcontext("%s", error->context) : 0));
      return false;
    }
    if (outcome == APPLY_LOCK_CONFLICT) {
      int signalled = doom_blockers(m, tau);
      if (signalled == 0 && attempt >= apply_unnamed_lock_attempts && record_has_ddl(m)) {
        signalled = doom_every_transaction(m, tau);
        if (attempt == apply_unnamed_lock_attempts)
          ereport(LOG, (errmsg("ordo applier: the schema change at tau " INT64_FORMAT
                               " waits for a lock that none of its keys names; dooming every "
                               "local transaction in progress (%d)",
                               tau, signalled)));
      }
      signalled_now = signalled;
      if (attempt % applier_retry_log_every == 1)
        ereport(LOG, (errmsg("ordo applier: commit at tau " INT64_FORMAT
                             " waits for locks of local transactions (%s); doomed %d of them",
                             tau, error->message, signalled)));
    } else if (attempt % applier_retry_log_every == 1) {
      ereport(LOG, (errmsg("ordo applier: retrying commit at tau " INT64_FORMAT ": %s", tau,
                           error->message)));
    }
    FreeErrorData(error);
    (void)flush_out(); /* queued reports leave before we wait; a lost connection shows later */
    /* Just doomed someone: wait on the row in the next attempt rather than sleep here. */
    if (!(outcome == APPLY_LOCK_CONFLICT && signalled_now > 0)) applier_sleep(applier_retry_pause_ms);
  }
}

/* ---- the turn of a commit of this QP (§5) ---- */

typedef enum TurnResult { TURN_DONE, TURN_APPLY } TurnResult;

static bool backend_alive(int procno, int pid) {
  return pid != 0 && ProcGlobal->allProcs[procno].pid == pid;
}

static TurnResult wait_for_turn(TransactionId xid, int64 tau);

/*
 * The turn of the local commit xid at tau. While it lasts applier_waiting_tau
 * says so, and the backend wakes us when its verdict or its local commit
 * lands; backends never wake us for other turns.
 */
static TurnResult take_turn(TransactionId xid, int64 tau) {
  TurnResult result;
  pg_atomic_write_u64(&replication_shared->applier_waiting_tau, (uint64)tau);
  pg_memory_barrier(); /* published before the slot is read */
  result = wait_for_turn(xid, tau);
  pg_atomic_write_u64(&replication_shared->applier_waiting_tau, 0);
  return result;
}

static TurnResult wait_for_turn(TransactionId xid, int64 tau) {
  for (;;) {
    int procno = -1;
    OrdoTurnSlot seen;
    int i;
    /*
     * The backend moves applied_tau to tau when its turn commits, before it
     * marks the slot DONE; by the time we look again it may have started its
     * next transaction and reused the slot. Either way the commit is here.
     */
    if (replication_applied_tau() >= tau) return TURN_DONE;
    memset(&seen, 0, sizeof seen);
    SpinLockAcquire(&replication_shared->mutex);
    for (i = 0; i < replication_shared->nslots; i++) {
      OrdoTurnSlot *s = &replication_shared->slots[i];
      if (s->state != ORDO_TURN_NONE && TransactionIdEquals(s->xid, xid)) {
        procno = i;
        seen = *s;
        break;
      }
    }
    if (procno >= 0) {
      OrdoTurnSlot *s = &replication_shared->slots[procno];
      if (s->state == ORDO_TURN_WAITING && s->tau == tau) s->state = ORDO_TURN_GRANTED;
      if (s->state == ORDO_TURN_DONE || s->state == ORDO_TURN_FAILED) s->state = ORDO_TURN_NONE;
    }
    SpinLockRelease(&replication_shared->mutex);

    if (procno < 0) return TURN_APPLY; /* the backend is gone or never got the verdict */
    switch ((OrdoTurnState)seen.state) {
      case ORDO_TURN_DONE:
        return TURN_DONE;
      case ORDO_TURN_FAILED:
        return TURN_APPLY;
      case ORDO_TURN_WAITING:
        if (seen.tau != tau) {
          ereport(WARNING, (errmsg("ordo applier: transaction %u waits for its turn at tau " INT64_FORMAT
                                   " but its record is at tau " INT64_FORMAT,
                                   xid, seen.tau, tau)));
          return TURN_APPLY;
        }
        SetLatch(&ProcGlobal->allProcs[procno].procLatch); /* granted above */
        break;
      case ORDO_TURN_SENT:
      case ORDO_TURN_GRANTED:
      default:
        break;
    }
    /* Reports queued so far leave before we wait: WAIT_VISIBLEs may be waiting on them. */
    (void)flush_out(); /* a lost connection shows in the main loop */
    if (!backend_alive(procno, seen.pid)) {
      SpinLockAcquire(&replication_shared->mutex);
      if (TransactionIdEquals(replication_shared->slots[procno].xid, xid))
        replication_shared->slots[procno].state = ORDO_TURN_NONE;
      SpinLockRelease(&replication_shared->mutex);
      return TURN_APPLY;
    }
    applier_sleep(applier_turn_poll_ms);
  }
}

/* ---- frames ---- */

/* A RECORD in stream order. False when the applier failed. */
static bool handle_record(const wire_message *m, bool *applied_here) {
  int64 tau = m->tau_commit;
  uint64 system_id = load_le64(m->txn_id);
  TransactionId xid = (TransactionId)(load_le64(m->txn_id + 8) & 0xFFFFFFFFu);

  *applied_here = false;
  if (tau <= replication_applied_tau()) return true; /* already here (resubscription overlap) */
  /*
   * Every record below tau has been handled (the stream is in total order
   * and has no gaps), so everything up to tau - 1 is visible here: a local
   * commit whose prev_tau is below tau may take its turn now.
   */
  replication_advance_applied(tau - 1);
  replication_wake_turns();
  if (system_id == my_system_id && take_turn(xid, tau) == TURN_DONE) {
    replication_advance_applied(tau);
    replication_wake_turns();
    return true;
  }
  *applied_here = true;
  pgstat_report_activity(STATE_RUNNING, psprintf("applying commit at tau " INT64_FORMAT, tau));
  if (!apply_commit(m, tau)) return false;
  pgstat_report_activity(STATE_IDLE, NULL);
  replication_advance_applied(tau);
  replication_wake_turns();
  return true;
}

typedef enum FramesResult { FRAMES_OK, FRAMES_LOST, FRAMES_FAILED } FramesResult;

static FramesResult handle_frames(void) {
  size_t at = 0;
  FramesResult result = FRAMES_OK;
  while (result == FRAMES_OK) {
    wire_message m;
    size_t frame_bytes = 0;
    bool applied_here = false;
    wire_status st = wire_decode(in_buf + at, in_len - at, WIRE_FRAME_PAYLOAD_BYTES_MAX, &m,
                                 &frame_bytes);
    if (st == WIRE_TRUNCATED) break;
    if (st != WIRE_OK) {
      ereport(LOG, (errmsg("ordo applier: rejected a frame from the sidecar: %s",
                           wire_status_name(st))));
      return FRAMES_LOST;
    }
    MemoryContextReset(record_cxt);
    switch (m.type) {
      case WIRE_RECORD:
        if (!handle_record(&m, &applied_here)) result = FRAMES_FAILED;
        break;
      case WIRE_WATERMARK:
        replication_advance_applied(m.tau);
        replication_wake_turns();
        pg_atomic_write_u64(&replication_shared->lease_until_us, (uint64)m.lease_until_us);
        break;
      case WIRE_PING: {
        uint8 bytes[WIRE_FRAME_HEADER_BYTES + 8];
        wire_buf buf;
        wire_buf_init(&buf, NULL, NULL);
        buf.data = bytes;
        buf.cap = sizeof bytes;
        wire_encode_ping(&buf, WIRE_PONG, m.nonce);
        queue_frame(&buf);
        break;
      }
      case WIRE_PONG:
        break;
      case WIRE_ERROR:
        ereport(LOG, (errmsg("ordo applier: the sidecar answered with error %u: %.*s",
                             (unsigned)m.code, (int)m.text_len, m.text ? m.text : "")));
        result = FRAMES_LOST;
        break;
      default:
        ereport(LOG, (errmsg("ordo applier: unexpected frame of type %d from the sidecar",
                             (int)m.type)));
        result = FRAMES_LOST;
        break;
    }
    at += frame_bytes;
    /*
     * A commit applied here may be what another QP's WAIT_VISIBLE waits on:
     * report it with this batch (flushed at its end, or before any wait for
     * a turn or a lock). A commit of this QP made in its turn needs no
     * report: its backend's WAIT_VISIBLE (or the reply's flag) tells the
     * sidecar itself.
     */
    if (result == FRAMES_OK) maybe_report(m.type == WIRE_RECORD && applied_here);
  }
  if (at > 0) {
    memmove(in_buf, in_buf + at, in_len - at);
    in_len -= at;
  }
  return result;
}

/* One subscription, until the connection is lost (false: the applier failed). */
static bool follow(void) {
  uint8 bytes[64];
  wire_buf buf;
  int64 from_tau = replication_applied_tau();

  wire_buf_init(&buf, NULL, NULL);
  buf.data = bytes;
  buf.cap = sizeof bytes;
  wire_encode_subscribe_all(&buf, my_system_id, from_tau);
  queue_frame(&buf);
  reported_tau = -1;
  maybe_report(true);
  if (!flush_out()) return true;
  ereport(LOG, (errmsg("ordo applier: subscribed at \"%s\" from tau " INT64_FORMAT,
                       ordo_sidecar_socket, from_tau)));
  for (;;) {
    int events = WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH;
    int rc;
    FramesResult fr;
    if (out_buf.len > 0) events |= WL_SOCKET_WRITEABLE;
    rc = socket_wait(&sock_wait, events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE),
                     applier_poll_ms);
    if (rc & WL_LATCH_SET) {
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
    }
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    if ((rc & WL_SOCKET_READABLE) && !read_available()) return true;
    fr = handle_frames();
    if (fr == FRAMES_FAILED) return false;
    if (fr == FRAMES_LOST) return true;
    maybe_report(false); /* applied_tau moved by watermarks: at most every report interval */
    if (!flush_out()) return true;
  }
}

static void wait_for_extension(void) {
  bool logged = false;
  for (;;) {
    bool installed;
    StartTransactionCommand();
    installed = OidIsValid(get_extension_oid("ordo", true));
    CommitTransactionCommand();
    MemoryContextSwitchTo(TopMemoryContext);
    if (installed) return;
    if (!logged)
      ereport(LOG, (errmsg("ordo applier: waiting for CREATE EXTENSION ordo in database \"%s\"",
                           ordo_database)));
    logged = true;
    applier_sleep(applier_extension_poll_ms);
  }
}

static int64 setup_origin(void) {
  XLogRecPtr progress;
  StartTransactionCommand();
  origin = replorigin_by_name("ordo", true);
  if (origin == InvalidRepOriginId) origin = replorigin_create("ordo");
  CommitTransactionCommand();
  progress = replorigin_get_progress(origin, false);
  SpinLockAcquire(&replication_shared->mutex);
  replication_shared->origin = origin;
  SpinLockRelease(&replication_shared->mutex);
  return (int64)progress;
}

void ordo_applier_main(Datum main_arg) {
  long backoff_ms = applier_reconnect_min_ms;
  int64 from_tau;
  bool warned_connect = false;

  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(ordo_database, NULL, 0);
  pgstat_report_appname("ordo applier");

  SetConfigOption("session_replication_role", "replica", PGC_SUSET, PGC_S_OVERRIDE);
  SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
  my_system_id = GetSystemIdentifier();
  record_cxt = AllocSetContextCreate(TopMemoryContext, "ordo applier record",
                                     ALLOCSET_DEFAULT_SIZES);
  {
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    initStringInfo(&out_buf);
    MemoryContextSwitchTo(old);
  }

  SpinLockAcquire(&replication_shared->mutex);
  replication_shared->applier_latch = MyLatch;
  replication_shared->applier_pid = MyProcPid;
  replication_shared->failed = false; /* a restarted applier tries again */
  replication_shared->failure[0] = '\0';
  SpinLockRelease(&replication_shared->mutex);
  before_shmem_exit(applier_on_exit, (Datum)0);

  wait_for_extension();
  from_tau = setup_origin();
  replication_advance_applied(from_tau);
  ereport(LOG, (errmsg("ordo applier: started in database \"%s\", origin progress tau " INT64_FORMAT,
                       ordo_database, from_tau)));

  MemoryContextSwitchTo(record_cxt);
  for (;;) {
    if (!connect_sidecar()) {
      if (!warned_connect)
        ereport(LOG, (errmsg("ordo applier: cannot connect to the sidecar at \"%s\"; retrying",
                             ordo_sidecar_socket ? ordo_sidecar_socket : "")));
      warned_connect = true;
      applier_sleep(backoff_ms);
      backoff_ms = Min(backoff_ms * 2, applier_reconnect_max_ms);
      continue;
    }
    warned_connect = false;
    backoff_ms = applier_reconnect_min_ms;
    if (!follow()) break;
    disconnect();
    applier_sleep(applier_reconnect_min_ms);
  }

  /* Failed: stay up (so the failure stays visible) but apply nothing; the lease runs out. */
  disconnect();
  pgstat_report_activity(STATE_IDLE, "failed: see the server log");
  for (;;) applier_sleep(1000);
}
