/*
 * ddl.c - captures schema changes as writes of kind 7 (docs/replication.md
 * section 7), so that every other QP's applier runs the same statement.
 *
 * A ProcessUtility hook (chained) sees CREATE TABLE, CREATE TABLE AS ... WITH
 * NO DATA, ALTER TABLE, ALTER TABLE ... RENAME / SET SCHEMA, DROP TABLE,
 * CREATE INDEX and DROP INDEX (and ALTER INDEX ... RENAME) run by a client
 * session. For every permanent or unlogged table the statement creates,
 * alters or drops in a captured schema (not temporary, not pg_catalog,
 * information_schema, pg_toast or ordo), including the partitions and
 * children it reaches, it records
 *   key   = tag 3, schema, table, no columns
 *   image = search_path, role, the statement's text
 * after the statement succeeded. Names are resolved before the statement
 * runs (a DROP removes them) except for what it creates. The writes go to
 * the adjudicator at commit like any other, so two concurrent DDLs on one
 * table conflict, and a write to a table whose schema changed after the
 * writer's tau_start loses with OC001.
 *
 * A statement that names several tables (DROP TABLE a, b; an ALTER of a
 * partitioned table) records one write per table, and only the first
 * carries the statement's text: appliers run it once, the others are keys.
 *
 * DDL on other objects of the database (schemas, sequences, views,
 * functions, types, triggers, policies, comments, grants, roles, extensions)
 * is recorded the same way under one catalog key (table key with an empty
 * schema and name), so such statements conflict with each other. DROP
 * SCHEMA also names every table in the schema, DDL on a type (ALTER DOMAIN,
 * ALTER TYPE, DROP TYPE / DOMAIN) every table using it. Not recorded: what belongs
 * to one server (databases, tablespaces, ALTER SYSTEM, subscriptions,
 * publications, event triggers, security labels), ordo's own extension and
 * capture triggers, and statements on temporary objects.
 *
 * Not captured: sub-commands PostgreSQL runs on its own (an index made by a
 * PRIMARY KEY clause is part of its CREATE TABLE), statements run while a
 * captured statement runs (event triggers: every QP's own run them too), the
 * scripts of CREATE EXTENSION, and the applier's own statements (a
 * background worker). With replication on, a transaction may not mix DDL
 * with row writes (capture.c) and CREATE TABLE AS must be WITH NO DATA: its
 * rows would have no primary key, and its query could produce other rows on
 * another QP.
 */
#include "ordo.h"

#include <ctype.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "catalog/pg_inherits.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "replication.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

typedef struct DdlTarget {
  char *schema;
  char *table;
} DdlTarget;

/* What a statement will have changed, gathered before it runs. */
typedef struct DdlPlan {
  List *targets;         /* DdlTarget * resolved before the statement runs */
  RangeVar *created;     /* a table the statement creates, resolved after it ran */
  bool created_has_data; /* CREATE TABLE AS without WITH NO DATA */
  bool object;           /* DDL on another database object: replicated under the catalog key */
  bool temp_before;      /* the transaction had used temporary objects before the statement */
} DdlPlan;

/*
 * The key of DDL on objects other than tables (schemas, sequences, views,
 * functions, types, roles, grants, ...): table key with an empty schema and
 * name, so all such statements conflict with each other like writes of one
 * row. DDL is rare; this keeps two QPs from creating one object at once.
 */
#define CATALOG_KEY_SCHEMA ""
#define CATALOG_KEY_TABLE ""

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * An advisory lock tag no SQL function makes (their last field is 1 or 2).
 * A transaction that records DDL under the catalog key holds it shared until
 * it ends, so that an applier running such DDL from another QP finds it and
 * dooms it (its catalog rows may block the applier).
 */
void ddl_catalog_locktag(LOCKTAG *tag) {
  SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x6f72646f, 0, 0x4f52);
}

/* Statements run while a captured one runs (event triggers) are part of it. */
static int captured_depth = 0;

/* ddl_seen_tau of the transaction with local id seen_lxid; -1 once it changed other objects. */
static int64 seen_tau = -1;
static LocalTransactionId seen_lxid = InvalidLocalTransactionId;

int64 ddl_seen_tau(void) { return seen_lxid == MyProc->lxid ? seen_tau : -1; }

/*
 * After a recorded schema change: what its checks of the data saw. They ran
 * with the newest snapshot (a rewrite, a new constraint's or unique index's
 * validation), not the transaction's, and the statement's locks on its tables
 * keep commits of those tables from becoming visible here until it ends. So
 * every commit at or below the bound of a snapshot taken now was seen by the
 * statement — the tau_start the adjudicator checks the schema change against
 * ("no write to its tables after tau_start", schema.ts). The first schema
 * change of the transaction sets it: later ones saw at least as much.
 */
static void note_seen(bool catalog) {
  if (seen_lxid != MyProc->lxid) {
    seen_tau = visibility_bound(GetLatestSnapshot());
    seen_lxid = MyProc->lxid;
  }
  /*
   * Not for DDL on other objects: nothing like a table lock keeps a commit
   * that changed what such a statement used (a function a view calls, a
   * type) from becoming visible right after it, so it keeps the
   * transaction's own tau_start.
   */
  if (catalog) seen_tau = -1;
}

static void add_target(DdlPlan *plan, const char *schema, const char *table) {
  ListCell *lc;
  DdlTarget *t;
  foreach (lc, plan->targets) {
    t = (DdlTarget *)lfirst(lc);
    if (strcmp(t->schema, schema) == 0 && strcmp(t->table, table) == 0) return;
  }
  t = palloc(sizeof(DdlTarget));
  t->schema = pstrdup(schema);
  t->table = pstrdup(table);
  plan->targets = lappend(plan->targets, t);
}

static bool is_table_kind(char relkind) {
  return relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE;
}

/* A table by OID, with its partitions and children when inherit is set. */
static void add_table(DdlPlan *plan, Oid relid, bool inherit) {
  List *rels;
  ListCell *lc;
  if (!OidIsValid(relid) || !is_table_kind(get_rel_relkind(relid))) return;
  rels = inherit ? find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
  foreach (lc, rels) {
    Oid rel = lfirst_oid(lc);
    Oid nsp = get_rel_namespace(rel);
    char *name = get_rel_name(rel);
    char *schema;
    if (!is_table_kind(get_rel_relkind(rel)) || !ordo_namespace_is_captured(nsp) || !name)
      continue;
    if (get_rel_persistence(rel) == RELPERSISTENCE_TEMP) continue;
    schema = get_namespace_name(nsp);
    if (schema) add_target(plan, schema, name);
  }
}

static void add_rangevar(DdlPlan *plan, RangeVar *rv) {
  if (rv == NULL) return;
  add_table(plan, RangeVarGetRelid(rv, NoLock, true), rv->inh);
}

/* The table an index belongs to. */
static void add_index_table(DdlPlan *plan, RangeVar *index_rv) {
  Oid index = RangeVarGetRelid(index_rv, NoLock, true);
  if (!OidIsValid(index)) return;
  add_table(plan, IndexGetRelation(index, true), true);
}

/* The same table under another name (RENAME, SET SCHEMA): both names are keys. */
static void add_new_name(DdlPlan *plan, RangeVar *rv, const char *new_schema,
                         const char *new_name) {
  Oid relid = RangeVarGetRelid(rv, NoLock, true);
  Oid nsp;
  char *schema;
  if (!OidIsValid(relid) || !is_table_kind(get_rel_relkind(relid))) return;
  if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP) return;
  nsp = new_schema ? get_namespace_oid(new_schema, true) : get_rel_namespace(relid);
  if (!ordo_namespace_is_captured(nsp)) return;
  schema = get_namespace_name(nsp);
  if (schema) add_target(plan, schema, new_name ? new_name : get_rel_name(relid));
}

static void add_type_tables(DdlPlan *plan, Oid typid);

static bool plan_alter_table(DdlPlan *plan, AlterTableStmt *stmt) {
  ListCell *lc;
  if (stmt->objtype == OBJECT_TYPE) {
    /* ALTER TYPE of a composite type: its attributes, so the tables using it. */
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (OidIsValid(relid)) add_type_tables(plan, get_rel_type_id(relid));
    return false;
  }
  if (stmt->objtype != OBJECT_TABLE) return false;
  add_rangevar(plan, stmt->relation);
  {
    /* Its row type may be another table's column type: a new or dropped column changes
     * what that table's rows hold too. */
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (OidIsValid(relid)) add_type_tables(plan, get_rel_type_id(relid));
  }
  foreach (lc, stmt->cmds) {
    AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
    if (cmd->subtype == AT_AttachPartition || cmd->subtype == AT_DetachPartition ||
        cmd->subtype == AT_DetachPartitionFinalize)
      add_rangevar(plan, ((PartitionCmd *)cmd->def)->name);
  }
  return true;
}

/* Every table in a schema (DROP SCHEMA ... CASCADE drops them). */
static void add_schema_tables(DdlPlan *plan, const char *schema) {
  Oid nsp = get_namespace_oid(schema, true);
  Relation pg_class;
  ScanKeyData key;
  SysScanDesc scan;
  HeapTuple tuple;
  if (!OidIsValid(nsp) || !ordo_namespace_is_captured(nsp)) return;
  pg_class = table_open(RelationRelationId, AccessShareLock);
  ScanKeyInit(&key, Anum_pg_class_relnamespace, BTEqualStrategyNumber, F_OIDEQ,
              ObjectIdGetDatum(nsp));
  scan = systable_beginscan(pg_class, InvalidOid, false, NULL, 1, &key);
  while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
    Form_pg_class form = (Form_pg_class)GETSTRUCT(tuple);
    if (is_table_kind(form->relkind)) add_table(plan, form->oid, false);
  }
  systable_endscan(scan);
  table_close(pg_class, AccessShareLock);
}

/*
 * Every captured table with a column whose type is typid or is built on it:
 * a domain over it, an array or a range of it, a composite type with an
 * attribute of it (and so on, through pg_depend). A change of the type
 * changes what those tables' rows may hold (a domain's new constraint, an
 * attribute dropped, an enum label renamed), so it is a schema change of
 * each of them: their concurrent writers lose with OC001.
 */
static void add_type_tables(DdlPlan *plan, Oid typid) {
  List *todo;
  List *seen = NIL;
  Relation pg_depend;
  if (!OidIsValid(typid)) return;
  todo = list_make1_oid(typid);
  pg_depend = table_open(DependRelationId, AccessShareLock);
  while (todo != NIL) {
    Oid type = linitial_oid(todo);
    ScanKeyData keys[2];
    SysScanDesc scan;
    HeapTuple tuple;
    todo = list_delete_first(todo);
    if (list_member_oid(seen, type)) continue;
    seen = lappend_oid(seen, type);
    ScanKeyInit(&keys[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(TypeRelationId));
    ScanKeyInit(&keys[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(type));
    scan = systable_beginscan(pg_depend, DependReferenceIndexId, true, NULL, 2, keys);
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
      Form_pg_depend dep = (Form_pg_depend)GETSTRUCT(tuple);
      if (dep->classid == TypeRelationId) {
        todo = lappend_oid(todo, dep->objid); /* a domain, array or range built on it */
      } else if (dep->classid == RelationRelationId && dep->objsubid > 0) {
        char relkind = get_rel_relkind(dep->objid);
        if (relkind == RELKIND_COMPOSITE_TYPE)
          todo = lappend_oid(todo, get_rel_type_id(dep->objid)); /* an attribute of it */
        else
          add_table(plan, dep->objid, false); /* a column of it */
      }
    }
    systable_endscan(scan);
  }
  table_close(pg_depend, AccessShareLock);
  list_free(seen);
}

/*
 * The table that the catalog row objid of catalog classid belongs to
 * (column attno of it for a column default), InvalidOid if none: a column
 * default, a constraint, a trigger, a policy, an index.
 */
/* Column `column` (an OID) of the row objid of a catalog, found by its OID index; or InvalidOid. */
static Oid catalog_oid_column(Oid catalog_id, Oid oid_index, AttrNumber oid_column, Oid objid,
                              AttrNumber column) {
  Relation catalog = table_open(catalog_id, AccessShareLock);
  ScanKeyData key;
  SysScanDesc scan;
  HeapTuple tuple;
  Oid value = InvalidOid;
  ScanKeyInit(&key, oid_column, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(objid));
  scan = systable_beginscan(catalog, oid_index, true, NULL, 1, &key);
  tuple = systable_getnext(scan);
  if (HeapTupleIsValid(tuple)) {
    bool isnull;
    Datum d = heap_getattr(tuple, column, RelationGetDescr(catalog), &isnull);
    if (!isnull) value = DatumGetObjectId(d);
  }
  systable_endscan(scan);
  table_close(catalog, AccessShareLock);
  return value;
}

static Oid owning_table(Oid classid, Oid objid) {
  if (classid == RelationRelationId)
    return get_rel_relkind(objid) == RELKIND_INDEX ? IndexGetRelation(objid, true) : objid;
  if (classid == AttrDefaultRelationId)
    return catalog_oid_column(classid, AttrDefaultOidIndexId, Anum_pg_attrdef_oid, objid,
                              Anum_pg_attrdef_adrelid);
  if (classid == ConstraintRelationId)
    return catalog_oid_column(classid, ConstraintOidIndexId, Anum_pg_constraint_oid, objid,
                              Anum_pg_constraint_conrelid);
  if (classid == TriggerRelationId)
    return catalog_oid_column(classid, TriggerOidIndexId, Anum_pg_trigger_oid, objid,
                              Anum_pg_trigger_tgrelid);
  if (classid == PolicyRelationId)
    return catalog_oid_column(classid, PolicyOidIndexId, Anum_pg_policy_oid, objid,
                              Anum_pg_policy_polrelid);
  return InvalidOid;
}

/* The domain a constraint belongs to, InvalidOid for a table's. */
static Oid constraint_domain(Oid constraint) {
  return catalog_oid_column(ConstraintRelationId, ConstraintOidIndexId, Anum_pg_constraint_oid,
                            constraint, Anum_pg_constraint_contypid);
}

/*
 * Every captured table that an object of refclassid/refobjid (a function,
 * an extension) reaches through pg_depend: the tables of the column
 * defaults and generated columns, constraints, triggers, policies and
 * indexes that use it, the tables with a column of a type that depends on
 * it (a base type over its I/O functions, a domain whose constraint calls
 * it), and tables that depend on it directly (an extension's). Dropping it
 * with CASCADE drops those (a generated column goes with its expression),
 * so it is a schema change of each of those tables.
 */
static void add_dependent_tables(DdlPlan *plan, Oid refclassid, Oid refobjid) {
  Relation pg_depend;
  ScanKeyData keys[2];
  SysScanDesc scan;
  HeapTuple tuple;
  List *types = NIL;
  List *functions = NIL;
  ListCell *lc;
  pg_depend = table_open(DependRelationId, AccessShareLock);
  ScanKeyInit(&keys[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
              ObjectIdGetDatum(refclassid));
  ScanKeyInit(&keys[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
              ObjectIdGetDatum(refobjid));
  scan = systable_beginscan(pg_depend, DependReferenceIndexId, true, NULL, 2, keys);
  while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
    Form_pg_depend dep = (Form_pg_depend)GETSTRUCT(tuple);
    if (dep->classid == TypeRelationId) {
      types = lappend_oid(types, dep->objid);
    } else if (dep->classid == ProcedureRelationId) {
      /* An extension's functions (a function does not drop the functions using it). */
      if (refclassid == ExtensionRelationId) functions = lappend_oid(functions, dep->objid);
    } else if (dep->classid == ConstraintRelationId && OidIsValid(constraint_domain(dep->objid))) {
      types = lappend_oid(types, constraint_domain(dep->objid));
    } else if (dep->classid == RelationRelationId &&
               get_rel_relkind(dep->objid) == RELKIND_COMPOSITE_TYPE) {
      types = lappend_oid(types, get_rel_type_id(dep->objid));
    } else {
      add_table(plan, owning_table(dep->classid, dep->objid), false);
    }
  }
  systable_endscan(scan);
  table_close(pg_depend, AccessShareLock);
  foreach (lc, types) add_type_tables(plan, lfirst_oid(lc));
  foreach (lc, functions) add_dependent_tables(plan, ProcedureRelationId, lfirst_oid(lc));
  list_free(types);
  list_free(functions);
}

/* The OIDs of the rows of a catalog whose owner column is role (a scan: no index on owners). */
static List *owned_by(Oid catalog_id, AttrNumber oid_column, AttrNumber owner_column, Oid role) {
  Relation catalog = table_open(catalog_id, AccessShareLock);
  ScanKeyData key;
  SysScanDesc scan;
  HeapTuple tuple;
  List *oids = NIL;
  ScanKeyInit(&key, owner_column, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(role));
  scan = systable_beginscan(catalog, InvalidOid, false, NULL, 1, &key);
  while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
    bool isnull;
    Datum d = heap_getattr(tuple, oid_column, RelationGetDescr(catalog), &isnull);
    if (!isnull) oids = lappend_oid(oids, DatumGetObjectId(d));
  }
  systable_endscan(scan);
  table_close(catalog, AccessShareLock);
  return oids;
}

/*
 * DROP OWNED drops every object the roles own, REASSIGN OWNED gives them to
 * another: their tables, and the tables that use their types and functions.
 */
static void add_owned_tables(DdlPlan *plan, List *roles) {
  ListCell *lc;
  foreach (lc, roles) {
    Oid role = get_rolespec_oid(lfirst_node(RoleSpec, lc), true);
    List *oids;
    ListCell *oid;
    if (!OidIsValid(role)) continue;
    oids = owned_by(RelationRelationId, Anum_pg_class_oid, Anum_pg_class_relowner, role);
    foreach (oid, oids) add_table(plan, lfirst_oid(oid), false);
    list_free(oids);
    oids = owned_by(TypeRelationId, Anum_pg_type_oid, Anum_pg_type_typowner, role);
    foreach (oid, oids) add_type_tables(plan, lfirst_oid(oid));
    list_free(oids);
    oids = owned_by(ProcedureRelationId, Anum_pg_proc_oid, Anum_pg_proc_proowner, role);
    foreach (oid, oids) add_dependent_tables(plan, ProcedureRelationId, lfirst_oid(oid));
    list_free(oids);
  }
}

static void add_type_name(DdlPlan *plan, List *names) {
  add_type_tables(plan, LookupTypeNameOid(NULL, makeTypeNameFromNameList(names), true));
}

/*
 * DROP SCHEMA also names its tables, DROP TYPE and DROP DOMAIN the tables
 * using them (CASCADE drops those columns), DROP FUNCTION (and procedure,
 * routine, aggregate) and DROP EXTENSION the tables whose columns,
 * constraints, triggers, policies or indexes use them; all are DDL on other
 * objects (not table statements).
 */
static bool plan_drop(DdlPlan *plan, DropStmt *stmt) {
  ListCell *lc;
  if (stmt->removeType == OBJECT_SCHEMA) {
    foreach (lc, stmt->objects) add_schema_tables(plan, strVal(lfirst(lc)));
    return false;
  }
  if (stmt->removeType == OBJECT_FUNCTION || stmt->removeType == OBJECT_PROCEDURE ||
      stmt->removeType == OBJECT_ROUTINE || stmt->removeType == OBJECT_AGGREGATE) {
    foreach (lc, stmt->objects) {
      Oid func = LookupFuncWithArgs(stmt->removeType, lfirst_node(ObjectWithArgs, lc), true);
      if (OidIsValid(func)) add_dependent_tables(plan, ProcedureRelationId, func);
    }
    return false;
  }
  if (stmt->removeType == OBJECT_EXTENSION) {
    foreach (lc, stmt->objects) {
      Oid extension = get_extension_oid(strVal(lfirst(lc)), true);
      if (OidIsValid(extension)) add_dependent_tables(plan, ExtensionRelationId, extension);
    }
    return false;
  }
  if (stmt->removeType == OBJECT_TYPE || stmt->removeType == OBJECT_DOMAIN) {
    foreach (lc, stmt->objects)
      add_type_tables(plan, LookupTypeNameOid(NULL, lfirst_node(TypeName, lc), true));
    return false;
  }
  if (stmt->removeType == OBJECT_TRIGGER || stmt->removeType == OBJECT_POLICY ||
      stmt->removeType == OBJECT_RULE) {
    /* Named table, then object: the table is every name but the last. */
    foreach (lc, stmt->objects) {
      List *names = (List *)lfirst(lc);
      if (list_length(names) < 2) continue;
      add_rangevar(plan, makeRangeVarFromNameList(list_copy_head(names, list_length(names) - 1)));
    }
    return false;
  }
  if (stmt->removeType != OBJECT_TABLE && stmt->removeType != OBJECT_INDEX) return false;
  foreach (lc, stmt->objects) {
    RangeVar *rv = makeRangeVarFromNameList((List *)lfirst(lc));
    if (stmt->removeType == OBJECT_TABLE)
      add_table(plan, RangeVarGetRelid(rv, NoLock, true), true);
    else
      add_index_table(plan, rv);
  }
  return true;
}

static bool plan_rename(DdlPlan *plan, RenameStmt *stmt) {
  switch (stmt->renameType) {
    case OBJECT_TABLE:
      add_new_name(plan, stmt->relation, NULL, NULL); /* the old name, before it runs */
      add_new_name(plan, stmt->relation, NULL, stmt->newname);
      return true;
    case OBJECT_COLUMN:
    case OBJECT_TABCONSTRAINT:
      if (stmt->relationType != OBJECT_TABLE) return false;
      add_rangevar(plan, stmt->relation);
      return true;
    case OBJECT_INDEX: /* unique-key writes name their index */
      add_index_table(plan, stmt->relation);
      return true;
    case OBJECT_TRIGGER:
    case OBJECT_POLICY:
    case OBJECT_RULE:
      /* DDL on other objects that locks its table (see plan_statement). */
      add_rangevar(plan, stmt->relation);
      return false;
    default:
      return false;
  }
}

/*
 * CREATE / DROP INDEX CONCURRENTLY commit several transactions of their own
 * and cannot run inside one, which is how every other QP's applier runs a
 * schema change: refused with replication on, before anything happens.
 */
static void refuse_concurrently(const char *what) {
  ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                  errmsg("ordo: %s CONCURRENTLY is not supported", what),
                  errdetail("Every query processor applies a schema change inside one "
                            "transaction, in the commit order."),
                  errhint("Use %s without CONCURRENTLY.", what)));
}

/*
 * CREATE OR REPLACE of a function that exists: a new body changes what the
 * rows of the tables whose constraints, defaults, generated columns or
 * indexes call it may hold, as DROP FUNCTION ... CASCADE would.
 */
static void add_replaced_function_tables(DdlPlan *plan, CreateFunctionStmt *stmt) {
  Oid argtypes[FUNC_MAX_ARGS];
  int nargs = 0;
  ListCell *lc;
  Oid func;
  if (!stmt->replace) return;
  foreach (lc, stmt->parameters) {
    FunctionParameter *param = lfirst_node(FunctionParameter, lc);
    Oid type;
    if (param->mode == FUNC_PARAM_OUT || param->mode == FUNC_PARAM_TABLE) continue;
    if (nargs >= FUNC_MAX_ARGS) return; /* CREATE FUNCTION itself refuses it */
    type = LookupTypeNameOid(NULL, param->argType, true);
    if (!OidIsValid(type)) return; /* then no such function exists yet */
    argtypes[nargs++] = type;
  }
  func = LookupFuncName(stmt->funcname, nargs, argtypes, true);
  if (OidIsValid(func)) add_dependent_tables(plan, ProcedureRelationId, func);
}

/*
 * Gathers what a statement changes of tables. True: a table statement, which
 * these rules handle whether or not it named a captured table; false: any
 * other (DROP SCHEMA may still have named its tables).
 */
static bool plan_statement(DdlPlan *plan, Node *parsetree) {
  if (replication_enabled()) {
    if (IsA(parsetree, IndexStmt) && ((IndexStmt *)parsetree)->concurrent)
      refuse_concurrently("CREATE INDEX");
    if (IsA(parsetree, DropStmt) && ((DropStmt *)parsetree)->concurrent)
      refuse_concurrently("DROP INDEX");
  }
  switch (nodeTag(parsetree)) {
    case T_CreateStmt: {
      CreateStmt *stmt = (CreateStmt *)parsetree;
      if (stmt->relation->relpersistence != RELPERSISTENCE_TEMP)
        plan->created = copyObject(stmt->relation);
      return true;
    }
    case T_CreateTableAsStmt: {
      CreateTableAsStmt *stmt = (CreateTableAsStmt *)parsetree;
      if (stmt->objtype != OBJECT_TABLE) return false;
      if (stmt->into->rel->relpersistence != RELPERSISTENCE_TEMP) {
        plan->created = copyObject(stmt->into->rel);
        plan->created_has_data = !stmt->into->skipData;
      }
      return true;
    }
    case T_AlterTableStmt:
      return plan_alter_table(plan, (AlterTableStmt *)parsetree);
    case T_AlterDomainStmt:
      add_type_name(plan, ((AlterDomainStmt *)parsetree)->typeName);
      return false;
    case T_AlterEnumStmt:
      add_type_name(plan, ((AlterEnumStmt *)parsetree)->typeName);
      return false;
    case T_DropStmt:
      return plan_drop(plan, (DropStmt *)parsetree);
    case T_DropOwnedStmt:
      add_owned_tables(plan, ((DropOwnedStmt *)parsetree)->roles);
      return false;
    /*
     * DDL on other objects that locks a table against its writers (a
     * trigger, a policy or a rule on it, or its new owner): a schema change
     * of that table too. Without its key a writer of the table on another
     * QP would hold the lock that QP's applier needs to run the statement,
     * not be doomed for it, and commit behind it.
     */
    case T_CreateTrigStmt:
      add_rangevar(plan, ((CreateTrigStmt *)parsetree)->relation);
      return false;
    case T_CreatePolicyStmt:
      add_rangevar(plan, ((CreatePolicyStmt *)parsetree)->table);
      return false;
    case T_AlterPolicyStmt:
      add_rangevar(plan, ((AlterPolicyStmt *)parsetree)->table);
      return false;
    case T_RuleStmt:
      add_rangevar(plan, ((RuleStmt *)parsetree)->relation);
      return false;
    case T_ReassignOwnedStmt:
      add_owned_tables(plan, ((ReassignOwnedStmt *)parsetree)->roles);
      return false;
    case T_CreateFunctionStmt:
      add_replaced_function_tables(plan, (CreateFunctionStmt *)parsetree);
      return false;
    case T_AlterFunctionStmt: {
      /* Its settings (a search_path) or its volatility can change what it returns too. */
      AlterFunctionStmt *stmt = (AlterFunctionStmt *)parsetree;
      Oid func = LookupFuncWithArgs(stmt->objtype, stmt->func, true);
      if (OidIsValid(func)) add_dependent_tables(plan, ProcedureRelationId, func);
      return false;
    }
    case T_IndexStmt:
      add_rangevar(plan, ((IndexStmt *)parsetree)->relation);
      return true;
    case T_RenameStmt:
      return plan_rename(plan, (RenameStmt *)parsetree);
    case T_AlterObjectSchemaStmt: {
      AlterObjectSchemaStmt *stmt = (AlterObjectSchemaStmt *)parsetree;
      if (stmt->objectType != OBJECT_TABLE) return false;
      if (stmt->relation) {
        add_new_name(plan, stmt->relation, NULL, NULL);
        add_new_name(plan, stmt->relation, stmt->newschema, NULL);
      }
      return true;
    }
    default:
      return false;
  }
}

/* Objects of the server rather than of the database, or of one server only. */
static bool is_server_object(ObjectType type) {
  return type == OBJECT_DATABASE || type == OBJECT_TABLESPACE || type == OBJECT_SUBSCRIPTION ||
         type == OBJECT_PUBLICATION || type == OBJECT_PUBLICATION_NAMESPACE ||
         type == OBJECT_PUBLICATION_REL || type == OBJECT_EVENT_TRIGGER;
}

static bool names_ordo_extension(const char *name) { return name && strcmp(name, "ordo") == 0; }

/*
 * DDL on other objects of the database (not a table statement, see
 * plan_statement) that every QP runs too: everything
 * PostgreSQL logs as DDL except what belongs to one server (databases,
 * tablespaces, ALTER SYSTEM, subscriptions, publications, event triggers,
 * security labels) and ordo's own extension and capture triggers, which
 * every QP sets up for itself.
 */
static bool is_replicated_object_statement(Node *parsetree) {
  if (GetCommandLogLevel(parsetree) != LOGSTMT_DDL) return false;
  switch (nodeTag(parsetree)) {
    case T_CreatedbStmt:
    case T_AlterDatabaseStmt:
    case T_AlterDatabaseRefreshCollStmt:
    case T_AlterDatabaseSetStmt:
    case T_DropdbStmt:
    case T_CreateTableSpaceStmt:
    case T_DropTableSpaceStmt:
    case T_AlterTableSpaceOptionsStmt:
    case T_AlterTableMoveAllStmt:
    case T_AlterSystemStmt:
    case T_CreateSubscriptionStmt:
    case T_AlterSubscriptionStmt:
    case T_DropSubscriptionStmt:
    case T_CreatePublicationStmt:
    case T_AlterPublicationStmt:
    case T_CreateEventTrigStmt:
    case T_AlterEventTrigStmt:
    case T_SecLabelStmt:
      return false;
    case T_CreateExtensionStmt:
      return !names_ordo_extension(((CreateExtensionStmt *)parsetree)->extname);
    case T_AlterExtensionStmt:
      return !names_ordo_extension(((AlterExtensionStmt *)parsetree)->extname);
    case T_AlterExtensionContentsStmt:
      return !names_ordo_extension(((AlterExtensionContentsStmt *)parsetree)->extname);
    case T_CreateTrigStmt:
      return strcmp(((CreateTrigStmt *)parsetree)->trigname, "zzz_ordo_capture") != 0;
    case T_DropStmt: {
      DropStmt *stmt = (DropStmt *)parsetree;
      ListCell *lc;
      if (is_server_object(stmt->removeType)) return false;
      /* Dropping ordo (or its schema, which takes it along) is this QP's business. */
      if (stmt->removeType == OBJECT_EXTENSION || stmt->removeType == OBJECT_SCHEMA)
        foreach (lc, stmt->objects)
          if (names_ordo_extension(strVal(lfirst(lc)))) return false;
      return true;
    }
    case T_RenameStmt:
      return !is_server_object(((RenameStmt *)parsetree)->renameType);
    case T_AlterOwnerStmt:
      return !is_server_object(((AlterOwnerStmt *)parsetree)->objectType);
    case T_CommentStmt:
      return !is_server_object(((CommentStmt *)parsetree)->objtype);
    case T_GrantStmt:
      return !is_server_object(((GrantStmt *)parsetree)->objtype);
    default:
      return true;
  }
}

/* A relation the statement created (or would have) is temporary. */
static bool created_temporary(RangeVar *rv) {
  Oid relid;
  if (rv == NULL) return false;
  if (rv->relpersistence == RELPERSISTENCE_TEMP) return true;
  relid = RangeVarGetRelid(rv, NoLock, true);
  return OidIsValid(relid) && get_rel_persistence(relid) == RELPERSISTENCE_TEMP;
}

/*
 * Statements PostgreSQL lets act on temporary objects (drop, alter, comment
 * on, grant on them; a view or sequence that uses one is temporary itself):
 * when one used the temporary schema, it is left local.
 */
static bool acts_on_temporary_objects(Node *parsetree) {
  switch (nodeTag(parsetree)) {
    case T_DropStmt:
    case T_ViewStmt:
    case T_CreateSeqStmt:
    case T_AlterSeqStmt:
    case T_AlterTableStmt:
    case T_CommentStmt:
    case T_GrantStmt:
    case T_RenameStmt:
    case T_AlterOwnerStmt:
    case T_AlterObjectSchemaStmt:
    case T_CreateTrigStmt:
    case T_RuleStmt:
    case T_CreatePolicyStmt:
    case T_AlterPolicyStmt:
    case T_CreateStatsStmt:
      return true;
    default:
      return false;
  }
}

/* A schema change every QP would run, built on this session's temporary objects. */
static void refuse_temporary(void) {
  ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                  errmsg("ordo: a replicated schema change cannot use temporary objects"),
                  errdetail("Every query processor runs the statement again, and this "
                            "session's temporary objects exist only here."),
                  errhint("Refer to regular tables, types and functions instead.")));
}

/*
 * Temporary objects are this session's alone. PostgreSQL flags a
 * transaction that used its temporary schema; when a statement raised the
 * flag, it is left local if it acted on temporary objects and refused if it
 * built a persistent object (a table, a function, a type) on them. Once the
 * transaction had used the temporary schema before, only views and
 * sequences can be told apart, by name. True: not replicated.
 */
static bool object_statement_is_temporary(const DdlPlan *plan, Node *parsetree) {
  if (!plan->temp_before && (MyXactFlags & XACT_FLAGS_ACCESSEDTEMPNAMESPACE)) {
    if (!acts_on_temporary_objects(parsetree)) refuse_temporary();
    return true;
  }
  switch (nodeTag(parsetree)) {
    case T_ViewStmt:
      return created_temporary(((ViewStmt *)parsetree)->view);
    case T_CreateSeqStmt:
      return created_temporary(((CreateSeqStmt *)parsetree)->sequence);
    default:
      return false;
  }
}

/* After the statement ran: the table it created, where it was created. */
static void resolve_created(DdlPlan *plan) {
  Oid nsp;
  Oid relid;
  if (plan->created == NULL) return;
  nsp = RangeVarGetCreationNamespace(plan->created);
  relid = get_relname_relid(plan->created->relname, nsp);
  if (!OidIsValid(relid) || !is_table_kind(get_rel_relkind(relid)) ||
      get_rel_persistence(relid) == RELPERSISTENCE_TEMP || !ordo_namespace_is_captured(nsp))
    return;
  if (plan->created_has_data) {
    if (!replication_enabled()) return; /* as before replication: rows are refused by capture */
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("ordo: CREATE TABLE AS needs WITH NO DATA"),
                    errdetail("Other query processors run the statement again, and its query "
                              "could produce other rows there."),
                    errhint("Create the table WITH NO DATA, add a primary key, then fill it "
                            "with INSERT ... SELECT in a transaction of its own.")));
  }
  add_table(plan, relid, false);
}

/* The part of the query string that is this statement. */
static void statement_text(PlannedStmt *pstmt, const char *query, const char **text, size_t *len) {
  size_t total = strlen(query);
  int location = pstmt->stmt_location;
  int length = pstmt->stmt_len;
  if (location < 0 || (size_t)location > total) {
    *text = query;
    *len = total;
    return;
  }
  *text = query + location;
  *len = length > 0 && (size_t)location + (size_t)length <= total ? (size_t)length
                                                                  : total - (size_t)location;
  /* A statement after the first of a query string starts with the whitespace before it. */
  while (*len > 0 && isspace((unsigned char)**text)) {
    (*text)++;
    (*len)--;
  }
}

/*
 * One write per target; only the first carries the statement, so that an
 * applier runs it once (DROP TABLE a, b names two tables, an ALTER of a
 * partitioned table every partition). The others are keys for the
 * adjudicator and have an empty statement.
 */
static void record_plan(DdlPlan *plan, PlannedStmt *pstmt, const char *query,
                        const char *search_path, const char *role) {
  const char *text;
  size_t len;
  ListCell *lc;
  if (plan->targets == NIL) return;
  statement_text(pstmt, query, &text, &len);
  foreach (lc, plan->targets) {
    DdlTarget *t = (DdlTarget *)lfirst(lc);
    capture_append_ddl(t->schema, t->table, search_path, role, text, len);
    len = 0;
  }
}

static void ddl_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
                               ProcessUtilityContext context, ParamListInfo params,
                               QueryEnvironment *queryEnv, DestReceiver *dest,
                               QueryCompletion *qc) {
  DdlPlan plan = {NIL, NULL, false, false, false};
  bool active = MyBackendType == B_BACKEND && context != PROCESS_UTILITY_SUBCOMMAND &&
                captured_depth == 0 && !creating_extension && queryString != NULL &&
                IsTransactionState() && ordo_extension_installed();
  char *search_path = NULL;
  char *role = NULL;

  if (active) {
    plan.object = !plan_statement(&plan, pstmt->utilityStmt) &&
                  is_replicated_object_statement(pstmt->utilityStmt);
    plan.temp_before = (MyXactFlags & XACT_FLAGS_ACCESSEDTEMPNAMESPACE) != 0;
    active = plan.targets != NIL || plan.created != NULL || plan.object;
  }
  if (active) {
    const char *path = GetConfigOption("search_path", false, false);
    search_path = pstrdup(path ? path : "");
    role = pstrdup(GetUserNameFromId(GetUserId(), false));
    captured_depth++;
  }

  PG_TRY();
  {
    if (prev_ProcessUtility)
      prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
    else
      standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest,
                              qc);
  }
  PG_FINALLY();
  {
    if (active) captured_depth--;
  }
  PG_END_TRY();

  if (active && IsTransactionState()) {
    bool catalog = false;
    resolve_created(&plan);
    /* A table every QP changes, defined with this session's temporary objects (LIKE, a default). */
    if (plan.targets != NIL && !plan.temp_before &&
        (MyXactFlags & XACT_FLAGS_ACCESSEDTEMPNAMESPACE))
      refuse_temporary();
    if (plan.object && !object_statement_is_temporary(&plan, pstmt->utilityStmt)) {
      LOCKTAG tag;
      ddl_catalog_locktag(&tag);
      (void)LockAcquire(&tag, ShareLock, false, false);
      add_target(&plan, CATALOG_KEY_SCHEMA, CATALOG_KEY_TABLE);
      catalog = true;
    }
    record_plan(&plan, pstmt, queryString, search_path, role);
    if (plan.targets != NIL) note_seen(catalog);
  }
}

void ddl_init(void) {
  prev_ProcessUtility = ProcessUtility_hook;
  ProcessUtility_hook = ddl_ProcessUtility;
}
