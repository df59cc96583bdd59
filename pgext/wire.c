/*
 * wire.c - encoder and decoder for the ordo wire protocol (docs/protocol.md).
 *
 * Pure C99 on purpose: no PostgreSQL headers, no global state except the
 * CRC32C table, so the same file links into the backend module and into the
 * standalone golden-vector test (pgext/test/wire_test.c). Decoding never
 * trusts its input: every length is checked against what is left.
 */
#include "wire.h"

#include <string.h>

#define WIRE_CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc32c_table[256];
static int crc32c_table_ready = 0;

static void crc32c_table_build(void) {
  uint32_t i;
  for (i = 0; i < 256; i++) {
    uint32_t crc = i;
    int bit;
    for (bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ ((crc & 1u) ? WIRE_CRC32C_POLY_REFLECTED : 0u);
    crc32c_table[i] = crc;
  }
  crc32c_table_ready = 1;
}

uint32_t wire_crc32c(uint32_t crc, const void *data, size_t len) {
  const uint8_t *p = (const uint8_t *)data;
  size_t i;
  if (!crc32c_table_ready) crc32c_table_build();
  for (i = 0; i < len; i++) crc = (crc >> 8) ^ crc32c_table[(crc ^ p[i]) & 0xFFu];
  return crc;
}

const char *wire_status_name(wire_status status) {
  switch (status) {
    case WIRE_OK:
      return "ok";
    case WIRE_TRUNCATED:
      return "truncated";
    case WIRE_OVERSIZE:
      return "oversize";
    case WIRE_UNSUPPORTED_VERSION:
      return "unsupported_version";
    case WIRE_MALFORMED:
      return "malformed";
    case WIRE_CHECKSUM:
      return "checksum";
  }
  return "malformed";
}

/* ---- encoding ---- */

void wire_buf_init(wire_buf *buf, wire_grow_fn grow, void *grow_ctx) {
  buf->data = NULL;
  buf->len = 0;
  buf->cap = 0;
  buf->grow = grow;
  buf->grow_ctx = grow_ctx;
  buf->failed = 0;
}

static int wire_reserve(wire_buf *buf, size_t extra) {
  size_t need;
  size_t cap;
  void *grown;
  if (buf->failed) return 0;
  if (extra > SIZE_MAX - buf->len) {
    buf->failed = 1;
    return 0;
  }
  need = buf->len + extra;
  if (need <= buf->cap) return 1;
  cap = buf->cap ? buf->cap : 256;
  while (cap < need) cap = (cap > SIZE_MAX / 2) ? need : cap * 2;
  grown = buf->grow(buf->grow_ctx, buf->data, cap);
  if (grown == NULL) {
    buf->failed = 1;
    return 0;
  }
  buf->data = (uint8_t *)grown;
  buf->cap = cap;
  return 1;
}

static void store_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static void store_u32(uint8_t *p, uint32_t v) {
  int i;
  for (i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void store_u64(uint8_t *p, uint64_t v) {
  int i;
  for (i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t load_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t load_u64(const uint8_t *p) {
  return (uint64_t)load_u32(p) | ((uint64_t)load_u32(p + 4) << 32);
}

void wire_put_raw(wire_buf *buf, const void *data, size_t len) {
  if (len == 0 || !wire_reserve(buf, len)) return;
  memcpy(buf->data + buf->len, data, len);
  buf->len += len;
}

void wire_put_u8(wire_buf *buf, uint8_t value) { wire_put_raw(buf, &value, 1); }

void wire_put_u16(wire_buf *buf, uint16_t value) {
  uint8_t b[2];
  store_u16(b, value);
  wire_put_raw(buf, b, 2);
}

void wire_put_u32(wire_buf *buf, uint32_t value) {
  uint8_t b[4];
  store_u32(b, value);
  wire_put_raw(buf, b, 4);
}

void wire_put_u64(wire_buf *buf, uint64_t value) {
  uint8_t b[8];
  store_u64(b, value);
  wire_put_raw(buf, b, 8);
}

void wire_put_bytes(wire_buf *buf, const void *data, uint32_t len) {
  wire_put_u32(buf, len);
  wire_put_raw(buf, data, len);
}

void wire_put_name(wire_buf *buf, const char *name, uint16_t len) {
  wire_put_u16(buf, len);
  wire_put_raw(buf, name, len);
}

void wire_put_value(wire_buf *buf, const char *data, uint32_t len) {
  wire_put_u32(buf, len);
  wire_put_raw(buf, data, len);
}

void wire_put_null(wire_buf *buf) { wire_put_u32(buf, 0xFFFFFFFFu); }

size_t wire_len32_begin(wire_buf *buf) {
  size_t mark = buf->len;
  wire_put_u32(buf, 0);
  return mark;
}

void wire_len32_end(wire_buf *buf, size_t mark) {
  if (buf->failed || mark + 4 > buf->len) return;
  store_u32(buf->data + mark, (uint32_t)(buf->len - mark - 4));
}

void wire_patch_u16(wire_buf *buf, size_t offset, uint16_t value) {
  if (buf->failed || offset + 2 > buf->len) return;
  store_u16(buf->data + offset, value);
}

size_t wire_frame_begin(wire_buf *buf) {
  static const uint8_t zero[WIRE_FRAME_HEADER_BYTES] = {0};
  size_t start = buf->len;
  wire_put_raw(buf, zero, sizeof zero);
  return start;
}

void wire_frame_end(wire_buf *buf, size_t frame_start, wire_type type) {
  uint8_t *h;
  uint32_t crc;
  size_t payload;
  if (buf->failed || frame_start + WIRE_FRAME_HEADER_BYTES > buf->len) return;
  h = buf->data + frame_start;
  payload = buf->len - frame_start - WIRE_FRAME_HEADER_BYTES;
  store_u32(h, (uint32_t)payload);
  h[4] = WIRE_VERSION;
  h[5] = (uint8_t)type;
  store_u16(h + 6, 0);
  crc = wire_crc32c(WIRE_CRC32C_INIT, h + 4, 4);
  crc = wire_crc32c(crc, h + WIRE_FRAME_HEADER_BYTES, payload);
  store_u32(h + 8, WIRE_CRC32C_FINISH(crc));
}

void wire_commit_request_begin(wire_buf *buf) {
  static const uint8_t zero[WIRE_COMMIT_REQUEST_PREFIX_BYTES] = {0};
  buf->len = 0;
  wire_put_raw(buf, zero, sizeof zero);
}

void wire_commit_request_add(wire_buf *buf, uint8_t kind, const void *key, uint32_t key_len,
                             const void *image, uint32_t image_len) {
  wire_put_u8(buf, kind);
  wire_put_bytes(buf, key, key_len);
  wire_put_bytes(buf, image, image_len);
}

void wire_commit_request_finish(wire_buf *buf, uint64_t request_id,
                                const uint8_t txn_id[WIRE_TXN_ID_BYTES], int64_t tau_start,
                                uint32_t write_count) {
  uint8_t *p;
  if (buf->failed || buf->len < WIRE_COMMIT_REQUEST_PREFIX_BYTES) return;
  p = buf->data + WIRE_FRAME_HEADER_BYTES;
  store_u64(p, request_id);
  memcpy(p + 8, txn_id, WIRE_TXN_ID_BYTES);
  store_u64(p + 24, (uint64_t)tau_start);
  store_u32(p + 32, write_count);
  wire_frame_end(buf, 0, WIRE_COMMIT_REQUEST);
}

void wire_encode_ping(wire_buf *buf, wire_type type, uint64_t nonce) {
  size_t start = wire_frame_begin(buf);
  wire_put_u64(buf, nonce);
  wire_frame_end(buf, start, type);
}

void wire_encode_subscribe_all(wire_buf *buf, uint64_t qp_id, int64_t from_tau) {
  size_t start = wire_frame_begin(buf);
  wire_put_u64(buf, qp_id);
  wire_put_u64(buf, (uint64_t)from_tau);
  wire_put_u32(buf, 1);
  wire_put_bytes(buf, "", 0); /* lo: from the first key */
  wire_put_bytes(buf, "", 0); /* hi: no upper bound */
  wire_frame_end(buf, start, WIRE_SUBSCRIBE);
}

void wire_encode_applied(wire_buf *buf, int64_t tau) {
  size_t start = wire_frame_begin(buf);
  wire_put_u64(buf, (uint64_t)tau);
  wire_frame_end(buf, start, WIRE_APPLIED);
}

void wire_encode_wait_visible(wire_buf *buf, uint64_t request_id, int64_t tau) {
  size_t start = wire_frame_begin(buf);
  wire_put_u64(buf, request_id);
  wire_put_u64(buf, (uint64_t)tau);
  wire_frame_end(buf, start, WIRE_WAIT_VISIBLE);
}

/* ---- decoding ---- */

typedef struct reader {
  const uint8_t *p;
  const uint8_t *end;
  int bad;
} reader;

static const uint8_t *take(reader *r, size_t n) {
  const uint8_t *at = r->p;
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    return NULL;
  }
  r->p += n;
  return at;
}

static uint8_t read_u8(reader *r) {
  const uint8_t *p = take(r, 1);
  return p ? p[0] : 0;
}

static uint16_t read_u16(reader *r) {
  const uint8_t *p = take(r, 2);
  return p ? load_u16(p) : 0;
}

static uint32_t read_u32(reader *r) {
  const uint8_t *p = take(r, 4);
  return p ? load_u32(p) : 0;
}

static uint64_t read_u64(reader *r) {
  const uint8_t *p = take(r, 8);
  return p ? load_u64(p) : 0;
}

static const uint8_t *read_bytes(reader *r, uint32_t *len) {
  *len = read_u32(r);
  return take(r, *len);
}

/* txn_id, tau_start, write_count, writes: a COMMIT_REQUEST after its request_id, or a RECORD body. */
static void decode_commit_body(reader *r, wire_message *out) {
  const uint8_t *id;
  uint32_t len = 0;
  uint32_t i;
  id = take(r, WIRE_TXN_ID_BYTES);
  if (id) memcpy(out->txn_id, id, WIRE_TXN_ID_BYTES);
  out->tau_start = (int64_t)read_u64(r);
  out->write_count = read_u32(r);
  out->writes = r->p;
  for (i = 0; i < out->write_count && !r->bad; i++) {
    uint8_t kind = read_u8(r);
    if (kind < WIRE_KIND_INSERT || kind > WIRE_KIND_DDL) r->bad = 1;
    read_bytes(r, &len);
    if (len == 0) r->bad = 1; /* keys are at least one byte */
    read_bytes(r, &len);
  }
  out->writes_len = (size_t)(r->p - out->writes);
}

static int decode_payload(wire_type type, reader *r, wire_message *out) {
  uint32_t len = 0;
  uint32_t i;
  switch (type) {
    case WIRE_COMMIT_REQUEST:
      out->request_id = read_u64(r);
      decode_commit_body(r, out);
      break;
    case WIRE_SUBSCRIBE:
      out->qp_id = read_u64(r);
      out->from_tau = (int64_t)read_u64(r);
      out->range_count = read_u32(r);
      if (out->range_count == 0) r->bad = 1; /* at least one range */
      out->ranges = r->p;
      for (i = 0; i < out->range_count && !r->bad; i++) {
        read_bytes(r, &len);
        read_bytes(r, &len);
      }
      out->ranges_len = (size_t)(r->p - out->ranges);
      break;
    case WIRE_RECORD:
      out->tau_commit = (int64_t)read_u64(r);
      out->journal_id = read_u32(r);
      out->body = r->p;
      decode_commit_body(r, out);
      out->body_len = (size_t)(r->p - out->body);
      break;
    case WIRE_WATERMARK:
      out->tau = (int64_t)read_u64(r);
      out->lease_until_us = (int64_t)read_u64(r);
      break;
    case WIRE_APPLIED:
      out->tau = (int64_t)read_u64(r);
      break;
    case WIRE_WAIT_VISIBLE:
    case WIRE_VISIBLE:
      out->request_id = read_u64(r);
      out->tau = (int64_t)read_u64(r);
      break;
    case WIRE_COMMIT_REPLY:
      out->request_id = read_u64(r);
      out->verdict = read_u8(r);
      if (out->verdict > WIRE_VERDICT_SCHEMA_CONFLICT) r->bad = 1;
      out->reply_flags = read_u8(r);
      if (out->reply_flags & ~WIRE_REPLY_FLAGS_KNOWN) r->bad = 1;
      out->tau_commit = (int64_t)read_u64(r);
      out->prev_tau = (int64_t)read_u64(r);
      out->text = (const char *)read_bytes(r, &out->text_len);
      break;
    case WIRE_ERROR:
      out->code = read_u16(r);
      out->request_id = read_u64(r);
      out->text = (const char *)read_bytes(r, &out->text_len);
      break;
    case WIRE_PING:
    case WIRE_PONG:
      out->nonce = read_u64(r);
      break;
  }
  return !r->bad && r->p == r->end;
}

wire_status wire_decode(const uint8_t *data, size_t len, uint32_t payload_max, wire_message *out,
                        size_t *frame_bytes) {
  uint32_t payload_len;
  uint8_t version;
  uint8_t type;
  uint16_t flags;
  uint32_t crc;
  reader r;

  memset(out, 0, sizeof *out);
  *frame_bytes = 0;
  if (payload_max > WIRE_FRAME_PAYLOAD_BYTES_MAX) payload_max = WIRE_FRAME_PAYLOAD_BYTES_MAX;
  if (len < 4) return WIRE_TRUNCATED;
  payload_len = load_u32(data);
  if (payload_len > payload_max) return WIRE_OVERSIZE;
  if (len < WIRE_FRAME_HEADER_BYTES) return WIRE_TRUNCATED;
  version = data[4];
  type = data[5];
  flags = load_u16(data + 6);
  if (version != WIRE_VERSION) return WIRE_UNSUPPORTED_VERSION;
  if (flags != 0 || type < WIRE_COMMIT_REQUEST || type > WIRE_TYPE_MAX) return WIRE_MALFORMED;
  if (len - WIRE_FRAME_HEADER_BYTES < payload_len) return WIRE_TRUNCATED;
  crc = wire_crc32c(WIRE_CRC32C_INIT, data + 4, 4);
  crc = wire_crc32c(crc, data + WIRE_FRAME_HEADER_BYTES, payload_len);
  if (WIRE_CRC32C_FINISH(crc) != load_u32(data + 8)) return WIRE_CHECKSUM;

  r.p = data + WIRE_FRAME_HEADER_BYTES;
  r.end = r.p + payload_len;
  r.bad = 0;
  out->type = (wire_type)type;
  if (!decode_payload(out->type, &r, out)) {
    memset(out, 0, sizeof *out);
    return WIRE_MALFORMED;
  }
  *frame_bytes = WIRE_FRAME_HEADER_BYTES + (size_t)payload_len;
  return WIRE_OK;
}

int wire_next_write(const uint8_t **cursor, const uint8_t *end, wire_write *out) {
  reader r;
  r.p = *cursor;
  r.end = end;
  r.bad = 0;
  if (r.p >= r.end) return 0;
  out->kind = read_u8(&r);
  out->key = read_bytes(&r, &out->key_len);
  out->image = read_bytes(&r, &out->image_len);
  if (r.bad) return 0;
  *cursor = r.p;
  return 1;
}

int wire_next_range(const uint8_t **cursor, const uint8_t *end, const uint8_t **lo,
                    uint32_t *lo_len, const uint8_t **hi, uint32_t *hi_len) {
  reader r;
  r.p = *cursor;
  r.end = end;
  r.bad = 0;
  if (r.p >= r.end) return 0;
  *lo = read_bytes(&r, lo_len);
  *hi = read_bytes(&r, hi_len);
  if (r.bad) return 0;
  *cursor = r.p;
  return 1;
}

int wire_decode_commit_body(const uint8_t *body, size_t len, wire_message *out) {
  reader r;
  r.p = body;
  r.end = body + len;
  r.bad = 0;
  decode_commit_body(&r, out);
  return !r.bad && r.p == r.end;
}

static const char *read_name(reader *r, uint16_t *len) {
  *len = read_u16(r);
  return (const char *)take(r, *len);
}

/* A value: i32 length (-1 for NULL) then the bytes. */
static void read_value(reader *r, wire_value *out) {
  uint32_t len = read_u32(r);
  if (len == 0xFFFFFFFFu) {
    out->data = NULL;
    out->len = 0;
    out->is_null = 1;
    return;
  }
  if (len > 0x7FFFFFFFu) r->bad = 1;
  out->data = (const char *)take(r, len);
  out->len = len;
  out->is_null = 0;
}

int wire_decode_key(const uint8_t *key, uint32_t len, wire_key *out) {
  reader r;
  uint16_t i;
  wire_value v;
  r.p = key;
  r.end = key + len;
  r.bad = 0;
  memset(out, 0, sizeof *out);
  out->tag = read_u8(&r);
  if (out->tag < WIRE_KEY_TAG_PRIMARY || out->tag > WIRE_KEY_TAG_TABLE) return 0;
  out->schema = read_name(&r, &out->schema_len);
  out->table = read_name(&r, &out->table_len);
  if (out->tag == WIRE_KEY_TAG_UNIQUE) out->index = read_name(&r, &out->index_len);
  out->ncols = read_u16(&r);
  out->values = r.p;
  for (i = 0; i < out->ncols && !r.bad; i++) read_value(&r, &v);
  out->values_len = (size_t)(r.p - out->values);
  return !r.bad && r.p == r.end;
}

int wire_next_value(const uint8_t **cursor, const uint8_t *end, wire_value *out) {
  reader r;
  r.p = *cursor;
  r.end = end;
  r.bad = 0;
  if (r.p >= r.end) return 0;
  read_value(&r, out);
  if (r.bad) return 0;
  *cursor = r.p;
  return 1;
}

int wire_decode_image(const uint8_t *image, uint32_t len, wire_image *out) {
  reader r;
  uint16_t i;
  uint16_t name_len;
  wire_value v;
  r.p = image;
  r.end = image + len;
  r.bad = 0;
  out->natts = read_u16(&r);
  out->columns = r.p;
  for (i = 0; i < out->natts && !r.bad; i++) {
    read_name(&r, &name_len);
    read_value(&r, &v);
  }
  out->columns_len = (size_t)(r.p - out->columns);
  return !r.bad && r.p == r.end;
}

int wire_next_column(const uint8_t **cursor, const uint8_t *end, const char **name,
                     uint16_t *name_len, wire_value *value) {
  reader r;
  r.p = *cursor;
  r.end = end;
  r.bad = 0;
  if (r.p >= r.end) return 0;
  *name = read_name(&r, name_len);
  read_value(&r, value);
  if (r.bad) return 0;
  *cursor = r.p;
  return 1;
}

int wire_decode_ddl_image(const uint8_t *image, uint32_t len, wire_ddl_image *out) {
  reader r;
  r.p = image;
  r.end = image + len;
  r.bad = 0;
  out->search_path = (const char *)read_bytes(&r, &out->search_path_len);
  out->role = (const char *)read_bytes(&r, &out->role_len);
  out->statement = (const char *)read_bytes(&r, &out->statement_len);
  return !r.bad && r.p == r.end;
}
