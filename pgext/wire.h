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
  WIRE_PONG = 5
} wire_type;

typedef enum wire_write_kind {
  WIRE_KIND_INSERT = 1,
  WIRE_KIND_UPDATE = 2,
  WIRE_KIND_DELETE = 3,
  WIRE_KIND_LOCK = 4,
  WIRE_KIND_UNIQUE = 5,
  WIRE_KIND_SHARED_LOCK = 6
} wire_write_kind;

typedef enum wire_verdict {
  WIRE_VERDICT_COMMITTED = 0,
  WIRE_VERDICT_CONFLICT = 1,
  WIRE_VERDICT_LIMIT = 2,
  WIRE_VERDICT_SCHEMA_CONFLICT = 3
} wire_verdict;

#define WIRE_KEY_TAG_PRIMARY 1
#define WIRE_KEY_TAG_UNIQUE 2

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

/* A decoded message; strings point into the frame that was decoded. */
typedef struct wire_message {
  wire_type type;
  uint64_t request_id; /* COMMIT_REQUEST, COMMIT_REPLY, ERROR */
  /* COMMIT_REPLY */
  uint8_t verdict;
  int64_t tau_commit;
  /* COMMIT_REPLY detail or ERROR message */
  const char *text;
  uint32_t text_len;
  /* ERROR */
  uint16_t code;
  /* PING and PONG */
  uint64_t nonce;
  /* COMMIT_REQUEST */
  uint8_t txn_id[WIRE_TXN_ID_BYTES];
  int64_t tau_start;
  uint32_t write_count;
  const uint8_t *writes; /* the encoded writes, for wire_next_write */
  size_t writes_len;
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

#endif /* ORDO_WIRE_H */
