/*
 * fuzz_wire.c - libFuzzer harness for the extension's wire codec (pgext/wire.c).
 *
 * Everything the sidecar sends the extension is untrusted: frames of every
 * type, the commit bodies inside COMMIT_REQUEST and RECORD, the conflict keys
 * and row images inside their writes, DDL images and SUBSCRIBE ranges. Any
 * byte string must be rejected or accepted without a crash or an
 * out-of-bounds read (ASan and UBSan are on). Whatever decodes must also
 * hold together: the iterators walk exactly the counted items to exactly the
 * end of their region, and re-encoding the decoded fields with wire.c's
 * encoders gives back the same bytes. Built and run by scripts/native-fuzz.sh.
 *
 * The first byte picks a mode. Raw frames almost never carry a valid CRC32C,
 * so one mode wraps the rest of the input in a correct header first, which
 * lets the fuzzer reach every payload decoder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../wire.h"

enum fuzz_mode {
  FUZZ_MODE_RAW_STREAM = 0,       /* wire_decode over the input as a byte stream */
  FUZZ_MODE_RAW_STREAM_SMALL = 1, /* same, with a small receiver bound */
  FUZZ_MODE_FRAMED = 2,           /* next byte picks the type; the rest is a payload */
  FUZZ_MODE_COMMIT_BODY = 3,      /* wire_decode_commit_body */
  FUZZ_MODE_KEY = 4,              /* wire_decode_key */
  FUZZ_MODE_IMAGE = 5,            /* wire_decode_image */
  FUZZ_MODE_DDL_IMAGE = 6,        /* wire_decode_ddl_image */
  FUZZ_MODE_ITERATORS = 7,        /* every iterator over raw bytes */
  FUZZ_MODE_COUNT = 8
};

#define FUZZ_SMALL_PAYLOAD_BYTES_MAX 64u
/* Offset of the commit body (txn_id ..) inside a COMMIT_REQUEST payload: after request_id. */
#define FUZZ_COMMIT_REQUEST_BODY_OFFSET_BYTES 8u

static void require(int condition) {
  if (!condition) abort();
}

static void *grow_realloc(void *ctx, void *old, size_t new_cap) {
  (void)ctx;
  return realloc(old, new_cap);
}

/* One scratch buffer for re-encoding, reused across inputs (reset by len = 0). */
static wire_buf scratch;
static int scratch_ready = 0;

static wire_buf *scratch_reset(void) {
  if (!scratch_ready) {
    wire_buf_init(&scratch, grow_realloc, NULL);
    scratch_ready = 1;
  }
  scratch.len = 0;
  require(!scratch.failed);
  return &scratch;
}

static void require_encoded(const wire_buf *buf, const uint8_t *expected, size_t len) {
  require(!buf->failed);
  require(buf->len == len);
  require(len == 0 || memcmp(buf->data, expected, len) == 0);
}

/* A pointer range [p, p + n) lies inside [lo, hi). */
static int inside(const void *p, size_t n, const uint8_t *lo, const uint8_t *hi) {
  const uint8_t *q = (const uint8_t *)p;
  return q >= lo && q <= hi && n <= (size_t)(hi - q);
}

static void put_value(wire_buf *buf, const wire_value *v) {
  if (v->is_null) {
    require(v->data == NULL && v->len == 0);
    wire_put_null(buf);
  } else {
    require(v->len <= 0x7FFFFFFFu);
    wire_put_value(buf, v->data, v->len);
  }
}

/* A conflict key: its values are exactly ncols, to the end, and it re-encodes to itself. */
static void check_key(const uint8_t *bytes, uint32_t len) {
  wire_key key;
  const uint8_t *cursor;
  const uint8_t *end;
  wire_value v;
  uint32_t n = 0;
  wire_buf *buf;
  if (!wire_decode_key(bytes, len, &key)) return;
  require(key.tag >= WIRE_KEY_TAG_PRIMARY && key.tag <= WIRE_KEY_TAG_TABLE);
  require((key.index != NULL) == (key.tag == WIRE_KEY_TAG_UNIQUE));
  require(inside(key.values, key.values_len, bytes, bytes + len));
  require(key.values + key.values_len == bytes + len);

  buf = scratch_reset();
  wire_put_u8(buf, key.tag);
  wire_put_name(buf, key.schema, key.schema_len);
  wire_put_name(buf, key.table, key.table_len);
  if (key.tag == WIRE_KEY_TAG_UNIQUE) wire_put_name(buf, key.index, key.index_len);
  wire_put_u16(buf, key.ncols);
  cursor = key.values;
  end = key.values + key.values_len;
  while (wire_next_value(&cursor, end, &v)) {
    require(v.is_null || inside(v.data, v.len, key.values, end));
    put_value(buf, &v);
    n++;
  }
  require(n == key.ncols);
  require(cursor == end);
  require_encoded(buf, bytes, len);
}

/* A row image: exactly natts columns, to the end, and it re-encodes to itself. */
static void check_image(const uint8_t *bytes, uint32_t len) {
  wire_image image;
  const uint8_t *cursor;
  const uint8_t *end;
  const char *name;
  uint16_t name_len;
  wire_value v;
  uint32_t n = 0;
  wire_buf *buf;
  if (!wire_decode_image(bytes, len, &image)) return;
  require(inside(image.columns, image.columns_len, bytes, bytes + len));
  require(image.columns + image.columns_len == bytes + len);

  buf = scratch_reset();
  wire_put_u16(buf, image.natts);
  cursor = image.columns;
  end = image.columns + image.columns_len;
  while (wire_next_column(&cursor, end, &name, &name_len, &v)) {
    require(inside(name, name_len, image.columns, end));
    require(v.is_null || inside(v.data, v.len, image.columns, end));
    wire_put_name(buf, name, name_len);
    put_value(buf, &v);
    n++;
  }
  require(n == image.natts);
  require(cursor == end);
  require_encoded(buf, bytes, len);
}

/* A DDL image: three strings inside it that re-encode to it. */
static void check_ddl_image(const uint8_t *bytes, uint32_t len) {
  wire_ddl_image ddl;
  wire_buf *buf;
  if (!wire_decode_ddl_image(bytes, len, &ddl)) return;
  require(inside(ddl.search_path, ddl.search_path_len, bytes, bytes + len));
  require(inside(ddl.role, ddl.role_len, bytes, bytes + len));
  require(inside(ddl.statement, ddl.statement_len, bytes, bytes + len));
  buf = scratch_reset();
  wire_put_bytes(buf, ddl.search_path, ddl.search_path_len);
  wire_put_bytes(buf, ddl.role, ddl.role_len);
  wire_put_bytes(buf, ddl.statement, ddl.statement_len);
  require_encoded(buf, bytes, len);
}

/*
 * The writes of a decoded commit body: exactly write_count of them, ending at
 * writes + writes_len, each key and image decoded the way the applier does.
 * Re-encodes them as a COMMIT_REQUEST (request_id) and requires that frame
 * equal `frame` when given, else that its body equal `body`.
 */
static void check_commit_body(const wire_message *m, uint64_t request_id, const uint8_t *frame,
                              size_t frame_len, const uint8_t *body, size_t body_len) {
  const uint8_t *cursor = m->writes;
  const uint8_t *end = m->writes + m->writes_len;
  wire_write w;
  uint32_t n = 0;
  wire_buf *buf;

  /* Check every key and image before the scratch buffer holds the request. */
  while (wire_next_write(&cursor, end, &w)) {
    require(w.kind >= WIRE_KIND_INSERT && w.kind <= WIRE_KIND_DDL);
    require(w.key_len > 0);
    require(inside(w.key, w.key_len, m->writes, end));
    require(inside(w.image, w.image_len, m->writes, end));
    check_key(w.key, w.key_len);
    if (w.kind == WIRE_KIND_DDL)
      check_ddl_image(w.image, w.image_len);
    else
      check_image(w.image, w.image_len);
    n++;
  }
  require(n == m->write_count);
  require(cursor == end);

  buf = scratch_reset();
  wire_commit_request_begin(buf);
  cursor = m->writes;
  while (wire_next_write(&cursor, end, &w))
    wire_commit_request_add(buf, w.kind, w.key, w.key_len, w.image, w.image_len);
  wire_commit_request_finish(buf, request_id, m->txn_id, m->tau_start, m->write_count);
  require(!buf->failed);
  if (frame != NULL) {
    require_encoded(buf, frame, frame_len);
  } else {
    const size_t at = WIRE_FRAME_HEADER_BYTES + FUZZ_COMMIT_REQUEST_BODY_OFFSET_BYTES;
    require(buf->len == at + body_len);
    require(body_len == 0 || memcmp(buf->data + at, body, body_len) == 0);
  }
}

/* A commit body decoded on its own agrees with the same body decoded inside a frame. */
static void check_body_agrees(const wire_message *m, const uint8_t *body, size_t body_len) {
  wire_message alone;
  memset(&alone, 0, sizeof alone);
  require(wire_decode_commit_body(body, body_len, &alone));
  require(memcmp(alone.txn_id, m->txn_id, WIRE_TXN_ID_BYTES) == 0);
  require(alone.tau_start == m->tau_start);
  require(alone.write_count == m->write_count);
  require(alone.writes == m->writes && alone.writes_len == m->writes_len);
}

/* A frame that decoded: every field re-encodes to the same bytes. */
static void check_message(const wire_message *m, const uint8_t *frame, size_t frame_len) {
  const uint8_t *payload = frame + WIRE_FRAME_HEADER_BYTES;
  const uint8_t *end = frame + frame_len;
  wire_buf *buf;
  size_t start;
  require(frame_len >= WIRE_FRAME_HEADER_BYTES);
  require(m->type == (wire_type)frame[5]);
  switch (m->type) {
    case WIRE_COMMIT_REQUEST:
      check_body_agrees(m, payload + FUZZ_COMMIT_REQUEST_BODY_OFFSET_BYTES,
                        (size_t)(end - payload) - FUZZ_COMMIT_REQUEST_BODY_OFFSET_BYTES);
      check_commit_body(m, m->request_id, frame, frame_len, NULL, 0);
      return;
    case WIRE_RECORD:
      require(inside(m->body, m->body_len, payload, end));
      require(m->body + m->body_len == end);
      check_body_agrees(m, m->body, m->body_len);
      check_commit_body(m, 0, NULL, 0, m->body, m->body_len);
      buf = scratch_reset();
      start = wire_frame_begin(buf);
      wire_put_u64(buf, (uint64_t)m->tau_commit);
      wire_put_u32(buf, m->journal_id);
      wire_put_raw(buf, m->body, m->body_len);
      wire_frame_end(buf, start, WIRE_RECORD);
      require_encoded(buf, frame, frame_len);
      return;
    case WIRE_SUBSCRIBE: {
      const uint8_t *cursor = m->ranges;
      const uint8_t *ranges_end = m->ranges + m->ranges_len;
      const uint8_t *lo;
      const uint8_t *hi;
      uint32_t lo_len;
      uint32_t hi_len;
      uint32_t n = 0;
      int all = 0;
      require(m->range_count >= 1);
      require(inside(m->ranges, m->ranges_len, payload, end));
      buf = scratch_reset();
      start = wire_frame_begin(buf);
      wire_put_u64(buf, m->qp_id);
      wire_put_u64(buf, (uint64_t)m->from_tau);
      wire_put_u32(buf, m->range_count);
      while (wire_next_range(&cursor, ranges_end, &lo, &lo_len, &hi, &hi_len)) {
        require(inside(lo, lo_len, m->ranges, ranges_end));
        require(inside(hi, hi_len, m->ranges, ranges_end));
        wire_put_bytes(buf, lo, lo_len);
        wire_put_bytes(buf, hi, hi_len);
        all = n == 0 && lo_len == 0 && hi_len == 0;
        n++;
      }
      require(n == m->range_count);
      require(cursor == ranges_end && ranges_end == end);
      wire_frame_end(buf, start, WIRE_SUBSCRIBE);
      require_encoded(buf, frame, frame_len);
      if (all && n == 1) {
        buf = scratch_reset();
        wire_encode_subscribe_all(buf, m->qp_id, m->from_tau);
        require_encoded(buf, frame, frame_len);
      }
      return;
    }
    case WIRE_PING:
    case WIRE_PONG:
      buf = scratch_reset();
      wire_encode_ping(buf, m->type, m->nonce);
      require_encoded(buf, frame, frame_len);
      return;
    case WIRE_APPLIED:
      buf = scratch_reset();
      wire_encode_applied(buf, m->tau);
      require_encoded(buf, frame, frame_len);
      return;
    case WIRE_WAIT_VISIBLE:
      buf = scratch_reset();
      wire_encode_wait_visible(buf, m->request_id, m->tau);
      require_encoded(buf, frame, frame_len);
      return;
    case WIRE_VISIBLE:
      buf = scratch_reset();
      start = wire_frame_begin(buf);
      wire_put_u64(buf, m->request_id);
      wire_put_u64(buf, (uint64_t)m->tau);
      wire_frame_end(buf, start, WIRE_VISIBLE);
      require_encoded(buf, frame, frame_len);
      return;
    case WIRE_WATERMARK:
      buf = scratch_reset();
      start = wire_frame_begin(buf);
      wire_put_u64(buf, (uint64_t)m->tau);
      wire_put_u64(buf, (uint64_t)m->lease_until_us);
      wire_frame_end(buf, start, WIRE_WATERMARK);
      require_encoded(buf, frame, frame_len);
      return;
    case WIRE_COMMIT_REPLY:
      require(m->verdict <= WIRE_VERDICT_SCHEMA_CONFLICT);
      require((m->reply_flags & ~WIRE_REPLY_FLAGS_KNOWN) == 0);
      require(inside(m->text, m->text_len, payload, end));
      buf = scratch_reset();
      start = wire_frame_begin(buf);
      wire_put_u64(buf, m->request_id);
      wire_put_u8(buf, m->verdict);
      wire_put_u8(buf, m->reply_flags);
      wire_put_u64(buf, (uint64_t)m->tau_commit);
      wire_put_u64(buf, (uint64_t)m->prev_tau);
      wire_put_bytes(buf, m->text, m->text_len);
      wire_frame_end(buf, start, WIRE_COMMIT_REPLY);
      require_encoded(buf, frame, frame_len);
      return;
    case WIRE_ERROR:
      require(inside(m->text, m->text_len, payload, end));
      buf = scratch_reset();
      start = wire_frame_begin(buf);
      wire_put_u16(buf, m->code);
      wire_put_u64(buf, m->request_id);
      wire_put_bytes(buf, m->text, m->text_len);
      wire_frame_end(buf, start, WIRE_ERROR);
      require_encoded(buf, frame, frame_len);
      return;
  }
  abort(); /* wire_decode returned a type outside the protocol */
}

static int status_known(wire_status st) {
  return st == WIRE_OK || st == WIRE_TRUNCATED || st == WIRE_OVERSIZE ||
         st == WIRE_UNSUPPORTED_VERSION || st == WIRE_MALFORMED || st == WIRE_CHECKSUM;
}

/* Decode frames one after another, as transport.c and applier.c do with their receive buffers. */
static void fuzz_stream(const uint8_t *data, size_t size, uint32_t payload_max) {
  size_t at = 0;
  for (;;) {
    wire_message m;
    size_t frame_bytes = 1;
    wire_status st = wire_decode(data + at, size - at, payload_max, &m, &frame_bytes);
    require(status_known(st));
    require(wire_status_name(st) != NULL);
    if (st != WIRE_OK) {
      require(frame_bytes == 0);
      return;
    }
    require(frame_bytes >= WIRE_FRAME_HEADER_BYTES && frame_bytes <= size - at);
    require(frame_bytes - WIRE_FRAME_HEADER_BYTES <= payload_max);
    check_message(&m, data + at, frame_bytes);
    at += frame_bytes;
  }
}

/* Wrap payload in a correct header of the given type, in a block of exactly its size. */
static void fuzz_framed(uint8_t type, const uint8_t *payload, size_t payload_len) {
  wire_buf *buf = scratch_reset();
  size_t start = wire_frame_begin(buf);
  uint8_t *frame;
  size_t frame_len;
  wire_message m;
  size_t frame_bytes = 0;
  wire_status st;
  wire_put_raw(buf, payload, payload_len);
  wire_frame_end(buf, start, (wire_type)type);
  require(!buf->failed);
  frame_len = buf->len;
  frame = (uint8_t *)malloc(frame_len);
  require(frame != NULL);
  memcpy(frame, buf->data, frame_len);

  st = wire_decode(frame, frame_len, WIRE_FRAME_PAYLOAD_BYTES_MAX, &m, &frame_bytes);
  require(st == WIRE_OK || st == WIRE_MALFORMED);
  if (st == WIRE_OK) {
    require(frame_bytes == frame_len);
    check_message(&m, frame, frame_len);
  } else {
    require(frame_bytes == 0);
  }
  /* One byte short is never a whole frame (an unknown type is rejected before that). */
  st = wire_decode(frame, frame_len - 1, WIRE_FRAME_PAYLOAD_BYTES_MAX, &m, &frame_bytes);
  require(frame_bytes == 0);
  require(st == WIRE_TRUNCATED ||
          (st == WIRE_MALFORMED && (type < WIRE_COMMIT_REQUEST || type > WIRE_TYPE_MAX)));
  free(frame);
}

/* Every iterator over arbitrary bytes: each step moves forward and stays inside. */
static void fuzz_iterators(const uint8_t *data, size_t size) {
  const uint8_t *end = data + size;
  const uint8_t *cursor;
  const uint8_t *before;
  wire_write w;
  wire_value v;
  const char *name;
  uint16_t name_len;
  const uint8_t *lo;
  const uint8_t *hi;
  uint32_t lo_len;
  uint32_t hi_len;

  cursor = data;
  before = cursor;
  while (wire_next_write(&cursor, end, &w)) {
    require(cursor > before && cursor <= end);
    require(inside(w.key, w.key_len, before, cursor));
    require(inside(w.image, w.image_len, before, cursor));
    before = cursor;
  }
  require(cursor == before);

  cursor = data;
  before = cursor;
  while (wire_next_value(&cursor, end, &v)) {
    require(cursor > before && cursor <= end);
    require(v.is_null || inside(v.data, v.len, before, cursor));
    before = cursor;
  }
  require(cursor == before);

  cursor = data;
  before = cursor;
  while (wire_next_column(&cursor, end, &name, &name_len, &v)) {
    require(cursor > before && cursor <= end);
    require(inside(name, name_len, before, cursor));
    require(v.is_null || inside(v.data, v.len, before, cursor));
    before = cursor;
  }
  require(cursor == before);

  cursor = data;
  before = cursor;
  while (wire_next_range(&cursor, end, &lo, &lo_len, &hi, &hi_len)) {
    require(cursor > before && cursor <= end);
    require(inside(lo, lo_len, before, cursor));
    require(inside(hi, hi_len, before, cursor));
    before = cursor;
  }
  require(cursor == before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *rest;
  size_t rest_len;
  wire_message m;
  if (size == 0) return 0;
  rest = data + 1;
  rest_len = size - 1;
  if (rest_len > UINT32_MAX) return 0; /* key and image lengths are u32 */
  switch (data[0] % FUZZ_MODE_COUNT) {
    case FUZZ_MODE_RAW_STREAM:
      fuzz_stream(rest, rest_len, WIRE_FRAME_PAYLOAD_BYTES_MAX);
      break;
    case FUZZ_MODE_RAW_STREAM_SMALL:
      fuzz_stream(rest, rest_len, FUZZ_SMALL_PAYLOAD_BYTES_MAX);
      break;
    case FUZZ_MODE_FRAMED:
      if (rest_len == 0) return 0;
      /* Types 0 and past the last stay in reach so rejection of unknown types is covered. */
      fuzz_framed((uint8_t)(rest[0] % (WIRE_TYPE_MAX + 2)), rest + 1, rest_len - 1);
      break;
    case FUZZ_MODE_COMMIT_BODY:
      memset(&m, 0, sizeof m);
      if (wire_decode_commit_body(rest, rest_len, &m)) {
        require(m.writes + m.writes_len == rest + rest_len);
        check_commit_body(&m, 0, NULL, 0, rest, rest_len);
      }
      break;
    case FUZZ_MODE_KEY:
      check_key(rest, (uint32_t)rest_len);
      break;
    case FUZZ_MODE_IMAGE:
      check_image(rest, (uint32_t)rest_len);
      break;
    case FUZZ_MODE_DDL_IMAGE:
      check_ddl_image(rest, (uint32_t)rest_len);
      break;
    case FUZZ_MODE_ITERATORS:
      fuzz_iterators(rest, rest_len);
      break;
  }
  return 0;
}
