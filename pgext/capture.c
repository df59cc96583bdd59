/*
 * capture.c - the write set of a transaction: every row it writes or locks.
 *
 * Rows reach the write set two ways:
 *  - ordo.capture(), an AFTER ... FOR EACH ROW trigger on every captured
 *    table, sees INSERT, UPDATE, DELETE, INSERT ... ON CONFLICT and COPY;
 *  - an ExecutorStart hook wraps every LockRows node so rows locked FOR
 *    UPDATE / FOR NO KEY UPDATE (kind 4) and FOR SHARE / FOR KEY SHARE
 *    (kind 6; foreign-key checks) enter it too.
 * Writes are encoded straight into the COMMIT_REQUEST frame (wire.h), in a
 * memory context under TopTransactionContext. A subtransaction's writes are
 * exactly those appended since it started, so its abort cuts the frame back
 * to the length saved at its start. Keys carry names and text values, never
 * OIDs, so every QP builds the same key for the same row.
 */
#include "ordo.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_index.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "replication.h"
#include "wire.h"

#define capture_unique_indexes_max 32
#define capture_log_writes_max 50
#define capture_log_statement_bytes_max 200
#define capture_relinfo_initial_entries 64

/* ---- per-relation key layout, cached until the relation or a schema changes ---- */

typedef struct UniqueIndexLayout {
  NameData name;
  int16 natts;
  bool nulls_not_distinct;
  AttrNumber attnums[INDEX_MAX_KEYS];
} UniqueIndexLayout;

typedef struct RelLayout {
  Oid relid; /* hash key */
  bool valid;
  NameData schema;
  NameData table;
  bool has_pk;
  int16 pk_natts;
  AttrNumber pk_attnums[INDEX_MAX_KEYS];
  int16 n_unique;
  UniqueIndexLayout unique[capture_unique_indexes_max];
} RelLayout;

static HTAB *layouts = NULL;

static void layouts_invalidate_rel(Datum arg, Oid relid) {
  HASH_SEQ_STATUS seq;
  RelLayout *layout;
  if (layouts == NULL) return;
  if (OidIsValid(relid)) {
    layout = hash_search(layouts, &relid, HASH_FIND, NULL);
    if (layout) layout->valid = false;
    return;
  }
  hash_seq_init(&seq, layouts);
  while ((layout = hash_seq_search(&seq)) != NULL) layout->valid = false;
}

static void layouts_invalidate_all(Datum arg, int cacheid, uint32 hashvalue) {
  layouts_invalidate_rel(arg, InvalidOid);
}

static void layout_fill(RelLayout *layout, Relation rel) {
  List *indexes = RelationGetIndexList(rel);
  ListCell *lc;
  char *schema = get_namespace_name(RelationGetNamespace(rel));

  namestrcpy(&layout->schema, schema ? schema : "");
  namestrcpy(&layout->table, RelationGetRelationName(rel));
  layout->has_pk = false;
  layout->pk_natts = 0;
  layout->n_unique = 0;
  foreach (lc, indexes) {
    Relation index = index_open(lfirst_oid(lc), AccessShareLock);
    Form_pg_index form = index->rd_index;
    int natts = form->indnkeyatts;
    bool plain = true;
    int i;
    for (i = 0; i < natts; i++)
      if (form->indkey.values[i] == 0) plain = false; /* an expression column */
    if (form->indisprimary && plain) {
      layout->has_pk = true;
      layout->pk_natts = (int16)natts;
      for (i = 0; i < natts; i++) layout->pk_attnums[i] = form->indkey.values[i];
    } else if (form->indisunique && plain) {
      UniqueIndexLayout *u;
      if (layout->n_unique >= capture_unique_indexes_max)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("ordo: table \"%s.%s\" has more than %d unique indexes",
                               NameStr(layout->schema), NameStr(layout->table),
                               capture_unique_indexes_max)));
      u = &layout->unique[layout->n_unique++];
      namestrcpy(&u->name, RelationGetRelationName(index));
      u->natts = (int16)natts;
      u->nulls_not_distinct = form->indnullsnotdistinct;
      for (i = 0; i < natts; i++) u->attnums[i] = form->indkey.values[i];
    }
    index_close(index, AccessShareLock);
  }
  list_free(indexes);
  layout->valid = true;
}

static RelLayout *layout_get(Relation rel) {
  Oid relid = RelationGetRelid(rel);
  RelLayout *layout;
  bool found;
  if (layouts == NULL) {
    HASHCTL ctl;
    memset(&ctl, 0, sizeof ctl);
    ctl.keysize = sizeof(Oid);
    ctl.entrysize = sizeof(RelLayout);
    ctl.hcxt = CacheMemoryContext;
    layouts = hash_create("ordo relation layouts", capture_relinfo_initial_entries, &ctl,
                          HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  }
  layout = hash_search(layouts, &relid, HASH_ENTER, &found);
  if (!found) layout->valid = false;
  if (!layout->valid) layout_fill(layout, rel);
  return layout;
}

/* ---- the write set ---- */

typedef struct SubxactMark {
  SubTransactionId subid;
  size_t len;
  OrdoWriteSetStats stats;
} SubxactMark;

static MemoryContext ws_cxt = NULL; /* child of TopTransactionContext; NULL when no writes yet */
static wire_buf ws_buf;
static OrdoWriteSetStats ws_stats;
static SubxactMark *marks = NULL; /* in TopTransactionContext */
static int marks_len = 0;
static int marks_cap = 0;
static MemoryContext scratch_cxt = NULL; /* reset per captured row */
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecProcNodeMtd lockrows_real = NULL;

static void *grow_in_context(void *ctx, void *old, size_t new_cap) {
  if (new_cap > MaxAllocSize) return NULL;
  if (old == NULL) return MemoryContextAlloc((MemoryContext)ctx, new_cap);
  return repalloc(old, new_cap);
}

static void ws_ensure(void) {
  if (ws_cxt != NULL) return;
  ws_cxt = AllocSetContextCreate(TopTransactionContext, "ordo write set", ALLOCSET_DEFAULT_SIZES);
  wire_buf_init(&ws_buf, grow_in_context, ws_cxt);
  wire_commit_request_begin(&ws_buf);
  if (ws_buf.failed) elog(ERROR, "ordo: out of memory for the write set");
}

OrdoWriteSetStats capture_stats(void) { return ws_stats; }

wire_buf *capture_request_buffer(void) {
  Assert(ws_cxt != NULL && ws_stats.writes > 0);
  return &ws_buf;
}

void capture_forget(void) {
  ws_cxt = NULL; /* freed with TopTransactionContext */
  memset(&ws_stats, 0, sizeof ws_stats);
  marks = NULL;
  marks_len = 0;
  marks_cap = 0;
}

/*
 * With replication on, a transaction's write set is either DDL or rows: the
 * other QPs' appliers run DDL as statement text and rows as row changes, and
 * a mix would need both to happen atomically (docs/replication.md section 7).
 */
static void check_no_mix(uint8 kind) {
  bool is_ddl = kind == WIRE_KIND_DDL;
  bool has_dml = ws_stats.writes > ws_stats.ddl;
  if ((is_ddl ? !has_dml : ws_stats.ddl == 0) || !replication_enabled()) return;
  ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                  errmsg("ordo: a transaction cannot mix DDL and DML"),
                  errdetail("This transaction %s.",
                            is_ddl ? "already wrote or locked rows and now changes a schema"
                                   : "already changed a schema and now writes or locks rows"),
                  errhint("Run DDL statements in a transaction of their own.")));
}

static void ws_append(uint8 kind, const wire_buf *key, const wire_buf *image) {
  uint32 image_len = image ? (uint32)image->len : 0;
  Assert(((kind >= WIRE_KIND_INSERT && kind <= WIRE_KIND_SHARED_LOCK) ||
          kind == WIRE_KIND_DDL) &&
         key->len > 0);
  if (key->failed || (image && image->failed)) elog(ERROR, "ordo: out of memory building a key");
  check_no_mix(kind);
  ws_ensure();
  wire_commit_request_add(&ws_buf, kind, key->data, (uint32)key->len,
                          image ? image->data : NULL, image_len);
  if (ws_buf.failed) elog(ERROR, "ordo: out of memory for the write set");
  ws_stats.writes++;
  if (kind <= WIRE_KIND_LOCK) ws_stats.rows++;
  if (kind == WIRE_KIND_DDL) ws_stats.ddl++;
  ws_stats.bytes += key->len + image_len;
  limits_check_write_set(&ws_stats, ws_buf.len - WIRE_FRAME_HEADER_BYTES);
}

static void capture_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
                                     SubTransactionId parentSubid, void *arg) {
  int i;
  switch (event) {
    case SUBXACT_EVENT_START_SUB:
      if (marks_len == marks_cap) {
        int cap = marks_cap ? marks_cap * 2 : 8;
        marks = marks ? repalloc(marks, sizeof(SubxactMark) * cap)
                      : MemoryContextAlloc(TopTransactionContext, sizeof(SubxactMark) * cap);
        marks_cap = cap;
      }
      marks[marks_len].subid = mySubid;
      marks[marks_len].len = ws_cxt ? ws_buf.len : WIRE_COMMIT_REQUEST_PREFIX_BYTES;
      marks[marks_len].stats = ws_stats;
      marks_len++;
      break;
    case SUBXACT_EVENT_COMMIT_SUB:
    case SUBXACT_EVENT_ABORT_SUB:
      for (i = marks_len - 1; i >= 0; i--)
        if (marks[i].subid == mySubid) break;
      if (i < 0) break;
      if (event == SUBXACT_EVENT_ABORT_SUB) {
        if (ws_cxt) ws_buf.len = marks[i].len;
        ws_stats = marks[i].stats;
      }
      marks_len = i;
      break;
    default:
      break;
  }
}

/* ---- keys and images ---- */

static void scratch_buf(wire_buf *buf) {
  wire_buf_init(buf, grow_in_context, scratch_cxt);
}

static void put_name(wire_buf *buf, const char *name) {
  size_t len = strlen(name);
  Assert(len <= PG_UINT16_MAX);
  wire_put_name(buf, name, (uint16)len);
}

static void put_column_value(wire_buf *buf, TupleTableSlot *slot, AttrNumber attnum,
                             bool *is_null) {
  Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor, attnum - 1);
  bool null;
  Datum value = slot_getattr(slot, attnum, &null);
  if (is_null) *is_null = null;
  if (null) {
    wire_put_null(buf);
  } else {
    Oid output_fn;
    bool varlena;
    char *text;
    getTypeOutputInfo(att->atttypid, &output_fn, &varlena);
    text = OidOutputFunctionCall(output_fn, value);
    wire_put_value(buf, text, (uint32)strlen(text));
  }
}

/* key = u8 tag, name schema, name table, [name index,] u16 ncols, ncols x value. */
static bool build_key(wire_buf *buf, const RelLayout *layout, const UniqueIndexLayout *unique,
                      TupleTableSlot *slot) {
  const AttrNumber *attnums = unique ? unique->attnums : layout->pk_attnums;
  int natts = unique ? unique->natts : layout->pk_natts;
  bool any_null = false;
  int i;
  scratch_buf(buf);
  wire_put_u8(buf, unique ? WIRE_KEY_TAG_UNIQUE : WIRE_KEY_TAG_PRIMARY);
  put_name(buf, NameStr(layout->schema));
  put_name(buf, NameStr(layout->table));
  if (unique) put_name(buf, NameStr(unique->name));
  wire_put_u16(buf, (uint16)natts);
  for (i = 0; i < natts; i++) {
    bool null = false;
    put_column_value(buf, slot, attnums[i], &null);
    any_null |= null;
  }
  return !any_null;
}

/* image = u16 natts, natts x (name column, value); dropped columns left out. */
static void build_image(wire_buf *buf, TupleTableSlot *slot) {
  TupleDesc desc = slot->tts_tupleDescriptor;
  size_t count_at;
  uint16 count = 0;
  int i;
  scratch_buf(buf);
  count_at = buf->len;
  wire_put_u16(buf, 0);
  for (i = 0; i < desc->natts; i++) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (att->attisdropped) continue;
    put_name(buf, NameStr(att->attname));
    put_column_value(buf, slot, att->attnum, NULL);
    count++;
  }
  wire_patch_u16(buf, count_at, count);
}

static bool same_bytes(const wire_buf *a, const wire_buf *b) {
  return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void append_unique_keys(const RelLayout *layout, TupleTableSlot *old_slot,
                               TupleTableSlot *new_slot) {
  int i;
  for (i = 0; i < layout->n_unique; i++) {
    const UniqueIndexLayout *u = &layout->unique[i];
    wire_buf old_key, new_key;
    bool old_counts = false, new_counts = false;
    if (old_slot) old_counts = build_key(&old_key, layout, u, old_slot) || u->nulls_not_distinct;
    if (new_slot) new_counts = build_key(&new_key, layout, u, new_slot) || u->nulls_not_distinct;
    if (old_slot && new_slot && same_bytes(&old_key, &new_key)) continue; /* stays in place */
    if (old_counts) ws_append(WIRE_KIND_UNIQUE, &old_key, NULL);
    if (new_counts) ws_append(WIRE_KIND_UNIQUE, &new_key, NULL);
  }
}

static void require_primary_key(const RelLayout *layout) {
  if (!layout->has_pk)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("ordo: table \"%s.%s\" needs a primary key", NameStr(layout->schema),
                           NameStr(layout->table)),
                    errdetail("ordo identifies every written row by its primary key."),
                    errhint("Add a primary key to the table.")));
}

static void capture_row(Relation rel, TupleTableSlot *old_slot, TupleTableSlot *new_slot) {
  MemoryContext old_cxt;
  RelLayout *layout;
  wire_buf old_key, new_key, image;

  if (MyBackendType != B_BACKEND)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("ordo: writes from background processes are not captured"),
                    errdetail("Only client sessions send their writes to the commit service.")));
  guard_require_write_isolation();
  layout = layout_get(rel);
  require_primary_key(layout);

  MemoryContextReset(scratch_cxt);
  old_cxt = MemoryContextSwitchTo(scratch_cxt);
  if (old_slot && new_slot) {
    build_key(&old_key, layout, NULL, old_slot);
    build_key(&new_key, layout, NULL, new_slot);
    build_image(&image, new_slot);
    if (same_bytes(&old_key, &new_key)) {
      ws_append(WIRE_KIND_UPDATE, &new_key, &image);
    } else { /* the primary key moved: the old row goes, a new one comes */
      ws_append(WIRE_KIND_DELETE, &old_key, NULL);
      ws_append(WIRE_KIND_INSERT, &new_key, &image);
    }
  } else if (new_slot) {
    build_key(&new_key, layout, NULL, new_slot);
    build_image(&image, new_slot);
    ws_append(WIRE_KIND_INSERT, &new_key, &image);
  } else {
    build_key(&old_key, layout, NULL, old_slot);
    ws_append(WIRE_KIND_DELETE, &old_key, NULL);
  }
  append_unique_keys(layout, old_slot, new_slot);
  MemoryContextSwitchTo(old_cxt);
  MemoryContextReset(scratch_cxt);
}

/*
 * A DDL write (kind 7) for one table: key = tag 3, schema, table, no
 * columns; image = search_path, role and statement text, each a u32-length
 * string (docs/protocol.md "DDL images").
 */
void capture_append_ddl(const char *schema, const char *table, const char *search_path,
                        const char *role, const char *statement, size_t statement_len) {
  MemoryContext old_cxt;
  wire_buf key, image;
  Assert(schema != NULL && table != NULL && statement != NULL);
  if (statement_len > PG_UINT32_MAX)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("ordo: transaction exceeds the frame limit: a statement of %zu bytes",
                           statement_len)));
  MemoryContextReset(scratch_cxt);
  old_cxt = MemoryContextSwitchTo(scratch_cxt);
  scratch_buf(&key);
  wire_put_u8(&key, WIRE_KEY_TAG_TABLE);
  put_name(&key, schema);
  put_name(&key, table);
  wire_put_u16(&key, 0);
  scratch_buf(&image);
  wire_put_bytes(&image, search_path ? search_path : "", (uint32)strlen(search_path ? search_path : ""));
  wire_put_bytes(&image, role ? role : "", (uint32)strlen(role ? role : ""));
  wire_put_bytes(&image, statement, (uint32)statement_len);
  ws_append(WIRE_KIND_DDL, &key, &image);
  MemoryContextSwitchTo(old_cxt);
  MemoryContextReset(scratch_cxt);
}

PG_FUNCTION_INFO_V1(ordo_capture);
Datum ordo_capture(PG_FUNCTION_ARGS) {
  TriggerData *td;
  TriggerEvent ev;
  if (!CALLED_AS_TRIGGER(fcinfo))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("ordo.capture() must be called as a trigger")));
  td = (TriggerData *)fcinfo->context;
  ev = td->tg_event;
  if (!TRIGGER_FIRED_AFTER(ev) || !TRIGGER_FIRED_FOR_ROW(ev))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("ordo.capture() must fire AFTER ... FOR EACH ROW")));
  if (TRIGGER_FIRED_BY_INSERT(ev))
    capture_row(td->tg_relation, NULL, td->tg_trigslot);
  else if (TRIGGER_FIRED_BY_UPDATE(ev))
    capture_row(td->tg_relation, td->tg_trigslot, td->tg_newslot);
  else if (TRIGGER_FIRED_BY_DELETE(ev))
    capture_row(td->tg_relation, td->tg_trigslot, NULL);
  return PointerGetDatum(NULL);
}

/*
 * ordo.capture_existing(regclass): rows already in a table created in this
 * transaction (CREATE TABLE AS, SELECT INTO) are captured as inserts; the
 * capture trigger is attached only after such a table is filled.
 */
PG_FUNCTION_INFO_V1(ordo_capture_existing);
Datum ordo_capture_existing(PG_FUNCTION_ARGS) {
  Oid relid = PG_GETARG_OID(0);
  Relation rel = table_open(relid, AccessShareLock);
  TableScanDesc scan;
  TupleTableSlot *slot;
  int64 rows = 0;

  if (rel->rd_createSubid == InvalidSubTransactionId &&
      rel->rd_firstRelfilenodeSubid == InvalidSubTransactionId)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("ordo: table \"%s\" was not created in this transaction",
                           RelationGetRelationName(rel))));
  if (ordo_relation_is_captured(rel) && rel->rd_rel->relkind == RELKIND_RELATION) {
    slot = table_slot_create(rel, NULL);
    scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
    while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
      capture_row(rel, NULL, slot);
      rows++;
    }
    table_endscan(scan);
    ExecDropSingleTupleTableSlot(slot);
  }
  table_close(rel, AccessShareLock);
  PG_RETURN_INT64(rows);
}

/* ---- rows locked by SELECT ... FOR UPDATE / FOR SHARE ---- */

static void capture_locked_rows(LockRowsState *node) {
  ListCell *lc;
  foreach (lc, node->lr_arowMarks) {
    ExecAuxRowMark *aerm = (ExecAuxRowMark *)lfirst(lc);
    ExecRowMark *erm = aerm->rowmark;
    Relation rel = erm->relation;
    RelLayout *layout;
    TupleTableSlot *slot;
    uint8 kind;
    if (!erm->ermActive || rel == NULL || !ItemPointerIsValid(&erm->curCtid)) continue;
    if (!ordo_relation_is_captured(rel)) continue;
    layout = layout_get(rel);
    if (!layout->has_pk) continue; /* nothing to key it by; writes to it fail anyway */
    kind = (erm->markType == ROW_MARK_EXCLUSIVE || erm->markType == ROW_MARK_NOKEYEXCLUSIVE)
               ? WIRE_KIND_LOCK
               : WIRE_KIND_SHARED_LOCK;
    slot = table_slot_create(rel, NULL);
    if (table_tuple_fetch_row_version(rel, &erm->curCtid, SnapshotAny, slot)) {
      MemoryContext old_cxt;
      wire_buf key;
      MemoryContextReset(scratch_cxt);
      old_cxt = MemoryContextSwitchTo(scratch_cxt);
      build_key(&key, layout, NULL, slot);
      ws_append(kind, &key, NULL);
      MemoryContextSwitchTo(old_cxt);
      MemoryContextReset(scratch_cxt);
    }
    ExecDropSingleTupleTableSlot(slot);
  }
}

static TupleTableSlot *capture_exec_lockrows(PlanState *ps) {
  TupleTableSlot *slot = lockrows_real(ps);
  if (!TupIsNull(slot)) capture_locked_rows(castNode(LockRowsState, ps));
  return slot;
}

static bool wrap_lockrows(PlanState *ps, void *context) {
  if (ps == NULL) return false;
  if (IsA(ps, LockRowsState)) {
    if (lockrows_real == NULL) lockrows_real = ps->ExecProcNodeReal;
    if (ps->ExecProcNodeReal == lockrows_real) ps->ExecProcNodeReal = capture_exec_lockrows;
  }
  return planstate_tree_walker(ps, wrap_lockrows, context);
}

static void capture_ExecutorStart(QueryDesc *query, int eflags) {
  ListCell *lc;
  /* A transaction's first statement needs a live lease (docs/replication.md section 6). */
  if (MyBackendType == B_BACKEND && ordo_extension_installed()) guard_check_live();
  if (prev_ExecutorStart)
    prev_ExecutorStart(query, eflags);
  else
    standard_ExecutorStart(query, eflags);
  if (MyBackendType != B_BACKEND || !ordo_extension_installed()) return;
  guard_enforce_isolation();
  if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA) return;
  if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) || query->plannedstmt->rowMarks == NIL) return;
  wrap_lockrows(query->planstate, NULL);
  foreach (lc, query->estate->es_subplanstates) wrap_lockrows((PlanState *)lfirst(lc), NULL);
}

/* ---- inspection ---- */

static const char *kind_name(uint8 kind) {
  static const char *const names[] = {"?",    "insert", "update",      "delete",
                                      "lock", "unique", "shared_lock", "ddl"};
  return kind <= WIRE_KIND_DDL ? names[kind] : "?";
}

/* Render a key as schema.table[index](v1,v2) for logs. */
static void describe_key(StringInfo out, const uint8 *key, uint32 len) {
  const uint8 *p = key;
  const uint8 *end = key + len;
  uint8 tag;
  int part;
  uint16 ncols;
  int i;
#define NEED(n)                            \
  do {                                     \
    if ((size_t)(end - p) < (size_t)(n)) { \
      appendStringInfoString(out, "<bad key>"); \
      return;                              \
    }                                      \
  } while (0)
  NEED(1);
  tag = *p++;
  for (part = 0; part < (tag == WIRE_KEY_TAG_UNIQUE ? 3 : 2); part++) {
    uint16 n;
    NEED(2);
    n = (uint16)(p[0] | (p[1] << 8));
    p += 2;
    NEED(n);
    appendStringInfo(out, part == 0 ? "%.*s" : part == 1 ? ".%.*s" : "[%.*s]", (int)n, p);
    p += n;
  }
  NEED(2);
  ncols = (uint16)(p[0] | (p[1] << 8));
  p += 2;
  appendStringInfoChar(out, '(');
  for (i = 0; i < ncols; i++) {
    int32 n;
    NEED(4);
    n = (int32)((uint32)p[0] | ((uint32)p[1] << 8) | ((uint32)p[2] << 16) | ((uint32)p[3] << 24));
    p += 4;
    if (i > 0) appendStringInfoChar(out, ',');
    if (n < 0) {
      appendStringInfoString(out, "NULL");
      continue;
    }
    NEED(n);
    appendStringInfo(out, "%.*s", (int)n, p);
    p += n;
  }
  appendStringInfoChar(out, ')');
#undef NEED
}

/* Render the statement of a DDL image (search_path, role, statement) for logs. */
static void describe_ddl_image(StringInfo out, const uint8 *image, uint32 len) {
  wire_ddl_image ddl;
  if (!wire_decode_ddl_image(image, len, &ddl)) {
    appendStringInfoString(out, " <bad ddl image>");
    return;
  }
  appendStringInfo(out, " \"%.*s\"", (int)Min(ddl.statement_len, capture_log_statement_bytes_max),
                   ddl.statement);
}

void capture_log_write_set(int elevel) {
  StringInfoData out;
  const uint8 *cursor;
  const uint8 *end;
  wire_write w;
  int shown = 0;
  if (ws_cxt == NULL || !message_level_is_interesting(elevel)) return;
  initStringInfo(&out);
  cursor = ws_buf.data + WIRE_COMMIT_REQUEST_PREFIX_BYTES;
  end = ws_buf.data + ws_buf.len;
  while (shown < capture_log_writes_max && wire_next_write(&cursor, end, &w)) {
    appendStringInfo(&out, "%s%s ", shown ? "; " : "", kind_name(w.kind));
    describe_key(&out, w.key, w.key_len);
    if (w.kind == WIRE_KIND_DDL)
      describe_ddl_image(&out, w.image, w.image_len);
    else if (w.image_len > 0)
      appendStringInfo(&out, " image %u bytes", w.image_len);
    shown++;
  }
  ereport(elevel, (errmsg_internal("ordo: write set of %u writes (%u rows, %llu bytes): %s",
                                   ws_stats.writes, ws_stats.rows,
                                   (unsigned long long)ws_stats.bytes, out.data)));
  pfree(out.data);
}

PG_FUNCTION_INFO_V1(ordo_status);
Datum ordo_status(PG_FUNCTION_ARGS) {
  TupleDesc desc;
  Datum values[4];
  bool nulls[4] = {false, false, false, false};
  int64 last = commit_last_tau();
  if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
    elog(ERROR, "ordo.status() must return a record");
  desc = BlessTupleDesc(desc);
  values[0] = Int32GetDatum((int32)ws_stats.writes);
  values[1] = Int32GetDatum((int32)ws_stats.rows);
  values[2] = Int64GetDatum((int64)ws_stats.bytes);
  values[3] = Int64GetDatum(last);
  nulls[3] = last == 0;
  PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

void capture_init(void) {
  scratch_cxt = AllocSetContextCreate(TopMemoryContext, "ordo capture scratch",
                                      ALLOCSET_DEFAULT_SIZES);
  RegisterSubXactCallback(capture_subxact_callback, NULL);
  CacheRegisterRelcacheCallback(layouts_invalidate_rel, (Datum)0);
  CacheRegisterSyscacheCallback(NAMESPACEOID, layouts_invalidate_all, (Datum)0);
  prev_ExecutorStart = ExecutorStart_hook;
  ExecutorStart_hook = capture_ExecutorStart;
}
