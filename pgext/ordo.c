/*
 * ordo.c - entry point of the ordo extension.
 *
 * _PG_init only declares the bounded GUCs and calls each concern's init
 * (capture, commit, transport, visibility, guard). ordo needs shared memory
 * for its visibility ring, so it must be in shared_preload_libraries.
 */
#include "ordo.h"
#include "replication.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

#define ordo_max_write_rows_default 3000
#define ordo_max_write_rows_max 1000000
#define ordo_max_write_bytes_default (10 * 1024 * 1024)
#define ordo_max_write_bytes_min 1024
#define ordo_max_write_bytes_max (14 * 1024 * 1024) /* leaves room in a 16 MiB frame */
#define ordo_max_transaction_age_s_default 300
#define ordo_max_transaction_age_s_max 86400
#define ordo_commit_timeout_ms_default 10000
#define ordo_commit_timeout_ms_max 600000
#define ordo_connect_timeout_ms_default 2000
#define ordo_connect_timeout_ms_max 60000
#define ordo_visibility_slots_default 65536
#define ordo_visibility_slots_min 64
#define ordo_visibility_slots_max (4 * 1024 * 1024)
#define ordo_visible_timeout_ms_default 5000
#define ordo_visible_timeout_ms_max 600000

char *ordo_sidecar_socket = NULL;
int ordo_max_write_rows = ordo_max_write_rows_default;
int ordo_max_write_bytes = ordo_max_write_bytes_default;
int ordo_max_transaction_age_s = ordo_max_transaction_age_s_default;
int ordo_commit_timeout_ms = ordo_commit_timeout_ms_default;
int ordo_connect_timeout_ms = ordo_connect_timeout_ms_default;
int ordo_visibility_slots = ordo_visibility_slots_default;
int ordo_visible_timeout_ms = ordo_visible_timeout_ms_default;
/* Deliberate bugs for tests of the history checker (docs/extension.md); '' means none. */
char *ordo_planted_bugs = NULL;

void _PG_init(void);

static void define_gucs(void) {
  DefineCustomStringVariable("ordo.sidecar_socket", "Path of the sidecar's Unix socket.",
                             "Commits that wrote rows are sent there at PRE_COMMIT.",
                             &ordo_sidecar_socket, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
  DefineCustomIntVariable("ordo.max_write_rows",
                          "Most rows a transaction may insert, update, delete or lock.", NULL,
                          &ordo_max_write_rows, ordo_max_write_rows_default, 1,
                          ordo_max_write_rows_max, PGC_SUSET, 0, NULL, NULL, NULL);
  DefineCustomIntVariable("ordo.max_write_bytes",
                          "Most bytes of conflict keys and row images a transaction may write.",
                          NULL, &ordo_max_write_bytes, ordo_max_write_bytes_default,
                          ordo_max_write_bytes_min, ordo_max_write_bytes_max, PGC_SUSET, 0, NULL,
                          NULL, NULL);
  DefineCustomIntVariable("ordo.max_transaction_age",
                          "Oldest a writing transaction may be at commit.", NULL,
                          &ordo_max_transaction_age_s, ordo_max_transaction_age_s_default, 1,
                          ordo_max_transaction_age_s_max, PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
  DefineCustomIntVariable("ordo.commit_timeout",
                          "How long a commit waits for the sidecar's verdict.",
                          "After this the outcome is unknown (SQLSTATE 40003).",
                          &ordo_commit_timeout_ms, ordo_commit_timeout_ms_default, 1,
                          ordo_commit_timeout_ms_max, PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
  DefineCustomIntVariable("ordo.connect_timeout", "How long to wait to connect to the sidecar.",
                          NULL, &ordo_connect_timeout_ms, ordo_connect_timeout_ms_default, 1,
                          ordo_connect_timeout_ms_max, PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
  DefineCustomIntVariable("ordo.visibility_slots",
                          "Entries of the shared ring that orders commit visibility.",
                          "Bounds how many recent ordo commits can be tracked at once.",
                          &ordo_visibility_slots, ordo_visibility_slots_default,
                          ordo_visibility_slots_min, ordo_visibility_slots_max, PGC_POSTMASTER, 0,
                          NULL, NULL, NULL);
  DefineCustomIntVariable("ordo.visible_timeout",
                          "How long a replicated commit waits until every live QP shows it.",
                          "After this the commit stands and a WARNING says it was not confirmed.",
                          &ordo_visible_timeout_ms, ordo_visible_timeout_ms_default, 1,
                          ordo_visible_timeout_ms_max, PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
  DefineCustomStringVariable("ordo.planted_bugs",
                             "Deliberate bugs, for tests of the history checker only.",
                             "Comma-separated names (skip-visible-wait); empty in production.",
                             &ordo_planted_bugs, "", PGC_SUSET,
                             GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
  MarkGUCPrefixReserved("ordo");
}

void _PG_init(void) {
  if (!process_shared_preload_libraries_in_progress)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("ordo must be loaded via shared_preload_libraries"),
                    errhint("Add ordo to shared_preload_libraries and restart the server.")));
  replication_init(); /* before define_gucs: its GUCs must exist when the prefix is reserved */
  define_gucs();
  visibility_init();
  transport_init();
  capture_init();
  commit_init();
  guard_init();
  ddl_init();
}

PG_FUNCTION_INFO_V1(ordo_version);
Datum ordo_version(PG_FUNCTION_ARGS) { PG_RETURN_TEXT_P(cstring_to_text(ORDO_VERSION_TEXT)); }
