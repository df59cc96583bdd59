/*
 * wire.h - the ordo wire protocol (docs/protocol.md), version 1, in plain C99.
 *
 * The extension speaks to the sidecar in checksummed frames. This codec holds
 * no PostgreSQL includes so that pgext/test/wire_test.c can check it byte for
 * byte against the golden vectors without a server. Memory comes from a grow
 * callback supplied by the caller (palloc in the backend, realloc in tests).
 */
#ifndef ORDO_WIRE_H
#define ORDO_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
#define WIRE_FRAME_HEADER_BYTES 12
#define WIRE_FRAME_PAYLOAD_BYTES_MAX (16u * 1024u * 1024u)
/* header + request_id + txn_id + tau_start + write_count */
#define WIRE_COMMIT_REQUEST_PREFIX_BYTES (WIRE_FRAME_HEADER_BYTES + 8 + 16 + 8 + 4)
#define WIRE_TXN_ID_BYTES 16

typedef enum wire_type {
  WIRE_COMMIT_REQUEST = 1,
  WIRE_COMMIT_REPLY = 2,
  WIRE_ERROR = 3,
  WIRE_PING = 4,
  WIRE_PONG = 5,
  WIRE_SUBSCRIBE = 6,
  WIRE_RECORD = 7,
  WIRE_WATERMARK = 8,
  WIRE_APPLIED = 9,
  WIRE_WAIT_VISIBLE = 10,
  WIRE_VISIBLE = 11
} wire_type;

#define WIRE_TYPE_MAX WIRE_VISIBLE

typedef enum wire_write_kind {
  WIRE_KIND_INSERT = 1,
  WIRE_KIND_UPDATE = 2,
  WIRE_KIND_DELETE = 3,
  WIRE_KIND_LOCK = 4,
  WIRE_KIND_UNIQUE = 5,
  WIRE_KIND_SHARED_LOCK = 6,
  WIRE_KIND_DDL = 7
} wire_write_kind;

typedef enum wire_verdict {
  WIRE_VERDICT_COMMITTED = 0,
  WIRE_VERDICT_CONFLICT = 1,
  WIRE_VERDICT_LIMIT = 2,
  WIRE_VERDICT_SCHEMA_CONFLICT = 3
} wire_verdict;

/* COMMIT_REPLY flags: no QP but the committing one counts for WAIT_VISIBLE. */
#define WIRE_REPLY_VISIBLE_WHEN_APPLIED_HERE 0x01
#define WIRE_REPLY_FLAGS_KNOWN WIRE_REPLY_VISIBLE_WHEN_APPLIED_HERE

#define WIRE_KEY_TAG_PRIMARY 1
#define WIRE_KEY_TAG_UNIQUE 2
#define WIRE_KEY_TAG_TABLE 3

/* Outcome of decoding one frame; the order matches the protocol's rejection order. */
typedef enum wire_status {
  WIRE_OK = 0,
  WIRE_TRUNCATED = 1, /* not a whole frame yet: read more */
  WIRE_OVERSIZE = 2,
  WIRE_UNSUPPORTED_VERSION = 3,
  WIRE_MALFORMED = 4,
  WIRE_CHECKSUM = 5
} wire_status;

const char *wire_status_name(wire_status status);

/* A growable byte buffer. grow(ctx, old, new_cap) returns the new block or NULL. */
typedef void *(*wire_grow_fn)(void *ctx, void *old, size_t new_cap);

typedef struct wire_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
  wire_grow_fn grow;
  void *grow_ctx;
  int failed; /* sticky: set when grow returned NULL; later writes are dropped */
} wire_buf;

void wire_buf_init(wire_buf *buf, wire_grow_fn grow, void *grow_ctx);
void wire_put_u8(wire_buf *buf, uint8_t value);
void wire_put_u16(wire_buf *buf, uint16_t value);
void wire_put_u32(wire_buf *buf, uint32_t value);
void wire_put_u64(wire_buf *buf, uint64_t value);
void wire_put_raw(wire_buf *buf, const void *data, size_t len);
/* u32 length then bytes (protocol "bytes" and "string"). */
void wire_put_bytes(wire_buf *buf, const void *data, uint32_t len);
/* u16 length then bytes (key and image "name"). */
void wire_put_name(wire_buf *buf, const char *name, uint16_t len);
/* i32 length then bytes (key and image "value"); wire_put_null writes -1. */
void wire_put_value(wire_buf *buf, const char *data, uint32_t len);
void wire_put_null(wire_buf *buf);

/* Reserve a u32 length at the current end; wire_len32_end patches it with the bytes since. */
size_t wire_len32_begin(wire_buf *buf);
void wire_len32_end(wire_buf *buf, size_t mark);
void wire_patch_u16(wire_buf *buf, size_t offset, uint16_t value);

uint32_t wire_crc32c(uint32_t crc, const void *data, size_t len);
#define WIRE_CRC32C_INIT 0xFFFFFFFFu
#define WIRE_CRC32C_FINISH(crc) ((crc) ^ 0xFFFFFFFFu)

/* Frames: begin reserves the header, end fills length, version, type, flags and CRC. */
size_t wire_frame_begin(wire_buf *buf);
void wire_frame_end(wire_buf *buf, size_t frame_start, wire_type type);

/*
 * COMMIT_REQUEST is built in place: the buffer starts with the frame header
 * and the fixed fields, the writes are appended as they are captured (so a
 * subtransaction abort can cut the buffer back), and finish fills the front.
 */
void wire_commit_request_begin(wire_buf *buf);
void wire_commit_request_add(wire_buf *buf, uint8_t kind, const void *key, uint32_t key_len,
                             const void *image, uint32_t image_len);
void wire_commit_request_finish(wire_buf *buf, uint64_t request_id,
                                const uint8_t txn_id[WIRE_TXN_ID_BYTES], int64_t tau_start,
                                uint32_t write_count);

void wire_encode_ping(wire_buf *buf, wire_type type, uint64_t nonce); /* PING or PONG */

/* SUBSCRIBE with one range, both bounds empty: every key (what a QP's applier asks for). */
void wire_encode_subscribe_all(wire_buf *buf, uint64_t qp_id, int64_t from_tau);
void wire_encode_applied(wire_buf *buf, int64_t tau);
void wire_encode_wait_visible(wire_buf *buf, uint64_t request_id, int64_t tau);

/* A decoded message; strings point into the frame that was decoded. */
typedef struct wire_message {
  wire_type type;
  uint64_t request_id; /* COMMIT_REQUEST, COMMIT_REPLY, ERROR */
  /* COMMIT_REPLY */
  uint8_t verdict;
  uint8_t reply_flags; /* WIRE_REPLY_* bits */
  int64_t tau_commit;
  int64_t prev_tau; /* the tau just before tau_commit (no commit between); 0: unknown */
  /* COMMIT_REPLY detail or ERROR message */
  const char *text;
  uint32_t text_len;
  /* ERROR */
  uint16_t code;
  /* PING and PONG */
  uint64_t nonce;
  /* COMMIT_REQUEST, and the body of a RECORD (tau_commit above is the RECORD's) */
  uint8_t txn_id[WIRE_TXN_ID_BYTES];
  int64_t tau_start;
  uint32_t write_count;
  const uint8_t *writes; /* the encoded writes, for wire_next_write */
  size_t writes_len;
  /* RECORD */
  uint32_t journal_id;
  const uint8_t *body; /* txn_id .. writes, as journaled */
  size_t body_len;
  /* SUBSCRIBE */
  uint64_t qp_id;
  int64_t from_tau;
  uint32_t range_count;
  const uint8_t *ranges; /* range_count x (bytes lo, bytes hi), for wire_next_range */
  size_t ranges_len;
  /* WATERMARK, APPLIED, WAIT_VISIBLE, VISIBLE (request_id above for the last two) */
  int64_t tau;
  int64_t lease_until_us; /* WATERMARK */
} wire_message;

/*
 * Decode the frame at the start of data. On WIRE_OK *frame_bytes is the size
 * of the frame consumed. payload_max must not exceed WIRE_FRAME_PAYLOAD_BYTES_MAX.
 */
wire_status wire_decode(const uint8_t *data, size_t len, uint32_t payload_max, wire_message *out,
                        size_t *frame_bytes);

/* Iterate the writes of a decoded COMMIT_REQUEST; returns 0 at the end. */
typedef struct wire_write {
  uint8_t kind;
  const uint8_t *key;
  uint32_t key_len;
  const uint8_t *image;
  uint32_t image_len;
} wire_write;
int wire_next_write(const uint8_t **cursor, const uint8_t *end, wire_write *out);

/* Iterate the ranges of a decoded SUBSCRIBE; returns 0 at the end. */
int wire_next_range(const uint8_t **cursor, const uint8_t *end, const uint8_t **lo,
                    uint32_t *lo_len, const uint8_t **hi, uint32_t *hi_len);

/*
 * A commit body (docs/sidecar.md "Journal body"): txn_id, tau_start,
 * write_count, writes. Fills txn_id, tau_start, write_count, writes and
 * writes_len of out; returns 1 when the body decodes exactly.
 */
int wire_decode_commit_body(const uint8_t *body, size_t len, wire_message *out);

/* Conflict keys and row images (docs/protocol.md "Conflict keys and row images"). */
typedef struct wire_key {
  uint8_t tag; /* WIRE_KEY_TAG_* */
  const char *schema;
  uint16_t schema_len;
  const char *table;
  uint16_t table_len;
  const char *index; /* tag 2 only, else NULL */
  uint16_t index_len;
  uint16_t ncols;
  const uint8_t *values; /* ncols values, for wire_next_value */
  size_t values_len;
} wire_key;

typedef struct wire_value {
  const char *data; /* NULL for SQL NULL */
  uint32_t len;
  int is_null;
} wire_value;

/* Returns 1 when key decodes exactly (all ncols values present, nothing left over). */
int wire_decode_key(const uint8_t *key, uint32_t len, wire_key *out);
/* Next value (i32 length, -1 NULL) of a key; returns 0 at the end or on bad input. */
int wire_next_value(const uint8_t **cursor, const uint8_t *end, wire_value *out);

/* A row image: u16 natts, then natts x (name, value). */
typedef struct wire_image {
  uint16_t natts;
  const uint8_t *columns; /* for wire_next_column */
  size_t columns_len;
} wire_image;

int wire_decode_image(const uint8_t *image, uint32_t len, wire_image *out);
int wire_next_column(const uint8_t **cursor, const uint8_t *end, const char **name,
                     uint16_t *name_len, wire_value *value);

/* A DDL image (kind 7): string search_path, string role, string statement. */
typedef struct wire_ddl_image {
  const char *search_path;
  uint32_t search_path_len;
  const char *role;
  uint32_t role_len;
  const char *statement;
  uint32_t statement_len;
} wire_ddl_image;

int wire_decode_ddl_image(const uint8_t *image, uint32_t len, wire_ddl_image *out);

#endif /* ORDO_WIRE_H */
