/*
 * ordo.h - declarations shared by the files of the ordo extension.
 *
 * Each file owns one concern (capture, commit, transport, visibility, guard,
 * limits) and exposes an xxx_init() that _PG_init calls, plus the few
 * functions the others need. GUC variables live in ordo.c.
 */
#ifndef ORDO_H
#define ORDO_H

#include "postgres.h"

#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

#define ORDO_VERSION_TEXT "0.1"
#define ORDO_TRIGGER_NAME "zzz_ordo_capture"

/* GUCs (ordo.c). */
extern char *ordo_sidecar_socket;
extern int ordo_max_write_rows;
extern int ordo_max_write_bytes;
extern int ordo_max_transaction_age_s;
extern int ordo_commit_timeout_ms;
extern int ordo_connect_timeout_ms;
extern int ordo_visibility_slots;
extern int ordo_visible_timeout_ms;

/* capture.c: the write set of the current transaction. */
typedef struct OrdoWriteSetStats {
  uint32 writes; /* all kinds */
  uint32 rows;   /* kinds 1-4, what ordo.max_write_rows limits */
  uint64 bytes;  /* keys + images, what ordo.max_write_bytes limits */
  uint32 ddl;    /* kind 7 (DDL) writes, a subset of writes */
} OrdoWriteSetStats;

extern void capture_init(void);
extern OrdoWriteSetStats capture_stats(void);
/* The write set encoded as a COMMIT_REQUEST whose front is not yet filled (wire.h). */
extern struct wire_buf *capture_request_buffer(void);
extern void capture_forget(void); /* at transaction end */
extern void capture_log_write_set(int elevel);
/* A DDL write (kind 7) for schema.table; refuses a mix with row writes when replicating. */
extern void capture_append_ddl(const char *schema, const char *table, const char *search_path,
                               const char *role, const char *statement, size_t statement_len);

/* ddl.c: captures CREATE/ALTER/DROP TABLE and CREATE/DROP INDEX as kind-7 writes. */
extern void ddl_init(void);
/* The lock a transaction holds (shared) once it changed objects other than tables (ddl.c). */
extern void ddl_catalog_locktag(LOCKTAG *tag);
/*
 * For a transaction that changed schemas: a tau_start its first schema
 * change saw everything at or below (taken right after that statement, whose
 * locks keep later commits of its tables out); -1 when it made none.
 */
extern int64 ddl_seen_tau(void);

/* commit.c */
extern void commit_init(void);
extern int64 commit_last_tau(void);

/* transport.c */
typedef enum OrdoSendOutcome {
  ORDO_REPLY_RECEIVED,  /* reply holds a COMMIT_REPLY for our request */
  ORDO_NOT_DELIVERED,   /* nothing can have reached the sidecar */
  ORDO_OUTCOME_UNKNOWN, /* sent; no verdict (timeout, lost connection, ERROR frame, cancel) */
} OrdoSendOutcome;

typedef struct OrdoReply {
  uint8 verdict;
  uint8 flags; /* WIRE_REPLY_* */
  int64 tau_commit;
  int64 prev_tau; /* the tau just before tau_commit in the total order; 0: unknown */
  char *detail;  /* palloc'd, never NULL */
  char *problem; /* why there is no reply, for errdetail; palloc'd or NULL */
} OrdoReply;

extern void transport_init(void);
extern uint64 transport_next_request_id(void);
extern OrdoSendOutcome transport_commit(const uint8 *frame, size_t frame_len, uint64 request_id,
                                        OrdoReply *reply);
extern void transport_disconnect(void);

/*
 * A wait on this process's latch, postmaster death and one socket, made
 * once per connection instead of an epoll set per wait (WaitLatchOrSocket).
 * Used by the backend's connection (transport.c) and the applier's.
 */
typedef struct OrdoSocketWait {
  WaitEventSet *set; /* NULL while closed */
  int socket_pos;
  int socket_events; /* WL_SOCKET_* the set waits for now */
} OrdoSocketWait;
extern void socket_wait_open(OrdoSocketWait *wait, pgsocket fd);
extern void socket_wait_close(OrdoSocketWait *wait);
/* Waits at most timeout_ms for the latch or socket_events; the WL_* bits that happened, 0 if none. */
extern int socket_wait(OrdoSocketWait *wait, int socket_events, long timeout_ms);
/* WAIT_VISIBLE(tau), then wait for VISIBLE; never throws; on false *problem says why. */
extern bool transport_wait_visible(int64 tau, int timeout_ms, const char **problem);

/* visibility.c */
extern void visibility_init(void);
extern int64 visibility_now_us(void);
/* snapshot_bound_us: a clock reading taken before the transaction's snapshot. */
extern int64 visibility_begin(TransactionId xid, Snapshot snapshot, int64 snapshot_bound_us);
/* The same bound for a snapshot, without entering a transaction (ddl.c). */
extern int64 visibility_bound(Snapshot snapshot);
/* Random per server start; with the xid it makes txn ids unique across crashes (commit.c). */
extern uint32 visibility_boot_nonce(void);
extern void visibility_mark_committed(TransactionId xid, int64 tau_commit);
extern void visibility_remove(TransactionId xid);
/* The applier, before committing xid that applies the journal's commit at tau_commit. */
extern void visibility_register_applied(TransactionId xid, int64 tau_commit);

/* guard.c */
extern void guard_init(void);
extern bool ordo_extension_installed(void);
extern bool ordo_relation_is_captured(Relation rel);
/* Not temporary, not pg_catalog, pg_toast, information_schema or ordo. */
extern bool ordo_namespace_is_captured(Oid nsp);
/* At a transaction's first statement: ERROR unless this QP holds a live lease (replication on). */
extern void guard_check_live(void);
extern void guard_enforce_isolation(void);
extern void guard_require_write_isolation(void);

/* limits.c */
extern void limits_check_write_set(const OrdoWriteSetStats *stats, size_t payload_bytes);
extern void limits_check_age(void);

#endif /* ORDO_H */
