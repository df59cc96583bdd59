/*
 * wire_test.c - command-line face of pgext/wire.c for the golden vectors.
 *
 *   wire_test decode <HEX>   one JSON line describing the frame, or {"error":"<reason>"}
 *   wire_test encode <NAME>  lowercase hex of a built-in message (docs/protocol.md): ping, pong,
 *                            commit_request_empty, commit_request_basic, subscribe_all,
 *                            applied, wait_visible
 *
 * The mocha suite runs this binary and compares its answers with the
 * TypeScript codec and test/protocol/vectors.json, so the C codec the
 * extension links is held to the same bytes. Built without PostgreSQL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../wire.h"

static void *grow_realloc(void *ctx, void *old, size_t new_cap) {
  (void)ctx;
  return realloc(old, new_cap);
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void print_hex(const uint8_t *data, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) printf("%02x", data[i]);
}

static void print_json_string(const char *s, size_t len) {
  size_t i;
  putchar('"');
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c == '\n')
      printf("\\n");
    else if (c == '\r')
      printf("\\r");
    else if (c == '\t')
      printf("\\t");
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

/* The fields of a commit body (txn_id, tau_start, writes), after an opening brace and fields. */
static void print_commit_body(const wire_message *m) {
  const uint8_t *cursor = m->writes;
  const uint8_t *end = m->writes + m->writes_len;
  wire_write w;
  int first = 1;
  printf("\"txn_id\":\"");
  print_hex(m->txn_id, WIRE_TXN_ID_BYTES);
  printf("\",\"tau_start\":\"%" PRId64 "\",\"writes\":[", m->tau_start);
  while (wire_next_write(&cursor, end, &w)) {
    printf("%s{\"kind\":%u,\"key\":\"", first ? "" : ",", (unsigned)w.kind);
    print_hex(w.key, w.key_len);
    printf("\",\"image\":\"");
    print_hex(w.image, w.image_len);
    printf("\"}");
    first = 0;
  }
  printf("]}\n");
}

static void print_commit_request(const wire_message *m) {
  printf("{\"type\":\"COMMIT_REQUEST\",\"request_id\":\"%" PRIu64 "\",", m->request_id);
  print_commit_body(m);
}

static void print_record(const wire_message *m) {
  printf("{\"type\":\"RECORD\",\"tau_commit\":\"%" PRId64 "\",\"journal_id\":%" PRIu32 ",",
         m->tau_commit, m->journal_id);
  print_commit_body(m);
}

static void print_subscribe(const wire_message *m) {
  const uint8_t *cursor = m->ranges;
  const uint8_t *end = m->ranges + m->ranges_len;
  const uint8_t *lo;
  const uint8_t *hi;
  uint32_t lo_len;
  uint32_t hi_len;
  int first = 1;
  printf("{\"type\":\"SUBSCRIBE\",\"qp_id\":\"%" PRIu64 "\",\"from_tau\":\"%" PRId64
         "\",\"ranges\":[",
         m->qp_id, m->from_tau);
  while (wire_next_range(&cursor, end, &lo, &lo_len, &hi, &hi_len)) {
    printf("%s{\"lo\":\"", first ? "" : ",");
    print_hex(lo, lo_len);
    printf("\",\"hi\":\"");
    print_hex(hi, hi_len);
    printf("\"}");
    first = 0;
  }
  printf("]}\n");
}

static int cmd_decode(const char *hex) {
  size_t hex_len = strlen(hex);
  size_t len = hex_len / 2;
  size_t i;
  size_t frame_bytes = 0;
  uint8_t *data;
  wire_message m;
  wire_status status;

  if (hex_len % 2 != 0) {
    printf("{\"error\":\"malformed\"}\n");
    return 0;
  }
  data = (uint8_t *)malloc(len ? len : 1);
  if (data == NULL) return 2;
  for (i = 0; i < len; i++) {
    int hi = hex_digit(hex[2 * i]);
    int lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      printf("{\"error\":\"malformed\"}\n");
      free(data);
      return 0;
    }
    data[i] = (uint8_t)(hi * 16 + lo);
  }
  status = wire_decode(data, len, WIRE_FRAME_PAYLOAD_BYTES_MAX, &m, &frame_bytes);
  if (status == WIRE_OK && frame_bytes != len) status = WIRE_MALFORMED; /* one frame, nothing after */
  if (status != WIRE_OK) {
    printf("{\"error\":\"%s\"}\n", wire_status_name(status));
    free(data);
    return 0;
  }
  switch (m.type) {
    case WIRE_COMMIT_REPLY:
      printf("{\"type\":\"COMMIT_REPLY\",\"request_id\":\"%" PRIu64
             "\",\"verdict\":%u,\"flags\":%u,\"tau_commit\":\"%" PRId64
             "\",\"prev_tau\":\"%" PRId64 "\",\"detail\":",
             m.request_id, (unsigned)m.verdict, (unsigned)m.reply_flags, m.tau_commit,
             m.prev_tau);
      print_json_string(m.text, m.text_len);
      printf("}\n");
      break;
    case WIRE_ERROR:
      printf("{\"type\":\"ERROR\",\"code\":%u,\"request_id\":\"%" PRIu64 "\",\"message\":",
             (unsigned)m.code, m.request_id);
      print_json_string(m.text, m.text_len);
      printf("}\n");
      break;
    case WIRE_PING:
    case WIRE_PONG:
      printf("{\"type\":\"%s\",\"nonce\":\"%" PRIu64 "\"}\n", m.type == WIRE_PING ? "PING" : "PONG",
             m.nonce);
      break;
    case WIRE_COMMIT_REQUEST:
      print_commit_request(&m);
      break;
    case WIRE_SUBSCRIBE:
      print_subscribe(&m);
      break;
    case WIRE_RECORD:
      print_record(&m);
      break;
    case WIRE_WATERMARK:
      printf("{\"type\":\"WATERMARK\",\"tau\":\"%" PRId64 "\",\"lease_until_us\":\"%" PRId64
             "\"}\n",
             m.tau, m.lease_until_us);
      break;
    case WIRE_APPLIED:
      printf("{\"type\":\"APPLIED\",\"tau\":\"%" PRId64 "\"}\n", m.tau);
      break;
    case WIRE_WAIT_VISIBLE:
    case WIRE_VISIBLE:
      printf("{\"type\":\"%s\",\"request_id\":\"%" PRIu64 "\",\"tau\":\"%" PRId64 "\"}\n",
             m.type == WIRE_VISIBLE ? "VISIBLE" : "WAIT_VISIBLE", m.request_id, m.tau);
      break;
  }
  free(data);
  return 0;
}

static int cmd_encode(const char *name) {
  wire_buf buf;
  int known = 1;
  wire_buf_init(&buf, grow_realloc, NULL);
  if (strcmp(name, "ping") == 0) {
    wire_encode_ping(&buf, WIRE_PING, UINT64_C(0x0102030405060708));
  } else if (strcmp(name, "pong") == 0) {
    wire_encode_ping(&buf, WIRE_PONG, UINT64_C(0x0102030405060708));
  } else if (strcmp(name, "commit_request_empty") == 0) {
    uint8_t txn_id[WIRE_TXN_ID_BYTES];
    int i;
    for (i = 0; i < WIRE_TXN_ID_BYTES; i++) txn_id[i] = (uint8_t)i;
    wire_commit_request_begin(&buf);
    wire_commit_request_finish(&buf, 1, txn_id, INT64_C(1700000000000000), 0);
  } else if (strcmp(name, "commit_request_basic") == 0) {
    uint8_t txn_id[WIRE_TXN_ID_BYTES];
    uint64_t system_id = UINT64_C(0x1122334455667788);
    uint64_t xid = 1000;
    int i;
    for (i = 0; i < 8; i++) {
      txn_id[i] = (uint8_t)(system_id >> (8 * i));
      txn_id[8 + i] = (uint8_t)(xid >> (8 * i));
    }
    wire_commit_request_begin(&buf);
    wire_commit_request_add(&buf, WIRE_KIND_INSERT, "k1", 2, "row1", 4);
    wire_commit_request_add(&buf, WIRE_KIND_DELETE, "k2", 2, "", 0);
    wire_commit_request_add(&buf, WIRE_KIND_SHARED_LOCK, "k3", 2, "", 0);
    wire_commit_request_finish(&buf, 42, txn_id, INT64_C(1700000000123456), 3);
  } else if (strcmp(name, "subscribe_all") == 0) {
    wire_encode_subscribe_all(&buf, UINT64_C(0x1122334455667788), INT64_C(1700000000000000));
  } else if (strcmp(name, "applied") == 0) {
    wire_encode_applied(&buf, INT64_C(1700000000123457));
  } else if (strcmp(name, "wait_visible") == 0) {
    wire_encode_wait_visible(&buf, 42, INT64_C(1700000000123457));
  } else {
    known = 0;
  }
  if (!known) {
    fprintf(stderr, "wire_test: unknown message name \"%s\"\n", name);
    free(buf.data);
    return 2;
  }
  if (buf.failed) {
    fprintf(stderr, "wire_test: out of memory\n");
    free(buf.data);
    return 2;
  }
  print_hex(buf.data, buf.len);
  putchar('\n');
  free(buf.data);
  return 0;
}

static int cmd_crc(const char *text) {
  uint32_t crc = wire_crc32c(WIRE_CRC32C_INIT, text, strlen(text));
  printf("%08x\n", WIRE_CRC32C_FINISH(crc));
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "decode") == 0) return cmd_decode(argv[2]);
  if (argc == 3 && strcmp(argv[1], "encode") == 0) return cmd_encode(argv[2]);
  if (argc == 3 && strcmp(argv[1], "crc32c") == 0) return cmd_crc(argv[2]);
  fprintf(stderr, "usage: wire_test decode <HEX> | encode <NAME> | crc32c <TEXT>\n");
  return 2;
}
