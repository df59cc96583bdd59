/*
 * transport.c - the backend's connection to the sidecar's Unix socket.
 *
 * One persistent connection per backend, opened lazily within
 * ordo.connect_timeout. A commit is one COMMIT_REQUEST frame out and one
 * COMMIT_REPLY back within ordo.commit_timeout. The outcome says what the
 * caller may tell the client: a reply, "nothing was delivered" (safe to
 * report as not committed), or "unknown". A connection that saw any error is
 * closed, so a late reply can never be read as the answer to a later request.
 * All waits watch the latch too, so the backend stays interruptible; they
 * use one wait event set per connection (made when it opens), not a new
 * epoll set per wait as WaitLatchOrSocket would.
 *
 * After a replicated commit the same connection carries WAIT_VISIBLE and
 * its VISIBLE (docs/replication.md section 6). That wait runs after the
 * local commit, where an ERROR would PANIC, so its path never throws: no
 * palloc, problems go to a static buffer, interrupts are held and a cancel
 * or a termination request ends the wait instead of raising.
 */
#include "ordo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "wire.h"

#define transport_reply_payload_bytes_max (1024 * 1024)
#define transport_connect_retry_ms 10
#define transport_recv_chunk_bytes 8192
#define transport_problem_bytes 256

static pgsocket sidecar_fd = PGINVALID_SOCKET;
/* Open exactly while sidecar_fd is. */
static OrdoSocketWait sidecar_wait = {NULL, -1, 0};
static char connected_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static uint64 next_request_id = 1;
static uint8 *recv_buf = NULL;
static size_t recv_len = 0;
static size_t recv_cap = 0;
/* Why the last connect, send or wait failed; static so that failing paths need no memory. */
static char problem_buf[transport_problem_bytes];

static void set_problem(const char *fmt, ...) pg_attribute_printf(1, 2);
static void set_problem(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(problem_buf, sizeof problem_buf, fmt, args);
  va_end(args);
}

void transport_init(void) {}

void socket_wait_open(OrdoSocketWait *wait, pgsocket fd) {
  Assert(wait->set == NULL);
  wait->set = CreateWaitEventSet(TopMemoryContext, 3);
  AddWaitEventToSet(wait->set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
  AddWaitEventToSet(wait->set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
  wait->socket_events = WL_SOCKET_READABLE;
  wait->socket_pos = AddWaitEventToSet(wait->set, wait->socket_events, fd, NULL, NULL);
}

void socket_wait_close(OrdoSocketWait *wait) {
  if (wait->set != NULL) FreeWaitEventSet(wait->set);
  wait->set = NULL;
  wait->socket_pos = -1;
}

int socket_wait(OrdoSocketWait *wait, int socket_events, long timeout_ms) {
  WaitEvent event;
  Assert(wait->set != NULL);
  if (socket_events != wait->socket_events) {
    ModifyWaitEvent(wait->set, wait->socket_pos, socket_events, NULL);
    wait->socket_events = socket_events;
  }
  if (WaitEventSetWait(wait->set, timeout_ms, &event, 1, PG_WAIT_EXTENSION) != 1) return 0;
  return event.events;
}

uint64 transport_next_request_id(void) { return next_request_id++; }

void transport_disconnect(void) {
  socket_wait_close(&sidecar_wait);
  if (sidecar_fd != PGINVALID_SOCKET) close(sidecar_fd);
  sidecar_fd = PGINVALID_SOCKET;
  recv_len = 0;
}

static long ms_left(TimestampTz deadline) {
  long secs;
  int usecs;
  TimestampTz now = GetCurrentTimestamp();
  if (now >= deadline) return 0;
  TimestampDifference(now, deadline, &secs, &usecs);
  return secs * 1000 + (usecs + 999) / 1000;
}

/* Wait for the socket (or a timeout); returns false on timeout. Interrupts other than cancel are served. */
static bool wait_socket(int events, TimestampTz deadline, bool *cancelled) {
  for (;;) {
    long left = ms_left(deadline);
    int rc;
    if (left <= 0) return false;
    rc = socket_wait(&sidecar_wait, events, left);
    if (rc & WL_LATCH_SET) {
      ResetLatch(MyLatch);
      if (QueryCancelPending && cancelled != NULL) {
        /* A cancel while a commit is in flight leaves its outcome unknown; the caller says so. */
        QueryCancelPending = false;
        *cancelled = true;
        return false;
      }
      /* With interrupts held (after a local commit) a termination cannot be served: stop. */
      if (ProcDiePending && cancelled != NULL && InterruptHoldoffCount > 0) {
        *cancelled = true;
        return false;
      }
      CHECK_FOR_INTERRUPTS();
    }
    if (rc & events) return true;
  }
}

/* Never throws except on an interrupt it serves; on failure problem_buf says why. */
static bool connect_sidecar(void) {
  struct sockaddr_un addr;
  TimestampTz deadline;
  int fd;

  if (ordo_sidecar_socket == NULL || ordo_sidecar_socket[0] == '\0') {
    set_problem("ordo.sidecar_socket is not set.");
    return false;
  }
  if (strlen(ordo_sidecar_socket) >= sizeof(addr.sun_path)) {
    set_problem("The socket path \"%s\" is too long.", ordo_sidecar_socket);
    return false;
  }
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  strlcpy(addr.sun_path, ordo_sidecar_socket, sizeof addr.sun_path);
  deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ordo_connect_timeout_ms);

  for (;;) {
    int err;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      set_problem("Could not create a socket: %s.", strerror(errno));
      return false;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) break;
    err = errno;
    close(fd);
    /* A full listen backlog answers EAGAIN on a Unix socket: retry until the deadline. */
    if ((err == EAGAIN || err == EINPROGRESS || err == EINTR) && ms_left(deadline) > 0) {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                      Min(transport_connect_retry_ms, ms_left(deadline)), PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
      continue;
    }
    set_problem("Could not connect to the sidecar at \"%s\": %s.", ordo_sidecar_socket,
                strerror(err));
    return false;
  }
  sidecar_fd = fd;
  socket_wait_open(&sidecar_wait, fd);
  strlcpy(connected_path, ordo_sidecar_socket, sizeof connected_path);
  recv_len = 0;
  return true;
}

/* An idle connection must have nothing to read; EOF or stray bytes mean it is stale. */
static bool connection_looks_alive(void) {
  char probe;
  ssize_t n = recv(sidecar_fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
  return false;
}

typedef enum SendResult { SEND_OK, SEND_NOTHING_WRITTEN, SEND_PARTIAL } SendResult;

static SendResult send_all(const uint8 *data, size_t len, TimestampTz deadline) {
  size_t sent = 0;
  while (sent < len) {
    ssize_t n = send(sidecar_fd, data + sent, len - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_socket(WL_SOCKET_WRITEABLE, deadline, NULL)) continue;
      set_problem("Timed out sending to the sidecar.");
      return sent == 0 ? SEND_NOTHING_WRITTEN : SEND_PARTIAL;
    }
    set_problem("Could not send to the sidecar: %s.", strerror(errno));
    return sent == 0 ? SEND_NOTHING_WRITTEN : SEND_PARTIAL;
  }
  return SEND_OK;
}

/* Send one frame, reconnecting once when an old connection turns out dead before any byte left. */
static OrdoSendOutcome send_frame(const uint8 *frame, size_t len, TimestampTz deadline) {
  int attempt;
  for (attempt = 0; attempt < 2; attempt++) {
    bool fresh = false;
    SendResult r;
    /* A reloaded ordo.sidecar_socket, or a sidecar that restarted, needs a new connection. */
    if (sidecar_fd != PGINVALID_SOCKET &&
        (strcmp(connected_path, ordo_sidecar_socket ? ordo_sidecar_socket : "") != 0 ||
         !connection_looks_alive()))
      transport_disconnect();
    if (sidecar_fd == PGINVALID_SOCKET) {
      if (!connect_sidecar()) return ORDO_NOT_DELIVERED;
      fresh = true;
    }
    r = send_all(frame, len, deadline);
    if (r == SEND_OK) return ORDO_REPLY_RECEIVED; /* caller goes on to read */
    transport_disconnect();
    /*
     * A frame cut short is never acted on (the sidecar needs the whole frame
     * and its CRC), so even a partial send delivered nothing that can commit.
     * Resend only when the failed write was the first on a reused connection.
     */
    if (r == SEND_PARTIAL || fresh) return ORDO_NOT_DELIVERED;
  }
  return ORDO_NOT_DELIVERED;
}

static void recv_reserve(size_t need) {
  if (recv_cap >= need) return;
  if (recv_buf == NULL) {
    recv_cap = Max(need, (size_t)transport_recv_chunk_bytes * 2);
    recv_buf = MemoryContextAlloc(TopMemoryContext, recv_cap);
  } else {
    while (recv_cap < need) recv_cap *= 2;
    recv_buf = repalloc(recv_buf, recv_cap);
  }
}

static void send_pong(uint64 nonce, TimestampTz deadline) {
  uint8 frame[WIRE_FRAME_HEADER_BYTES + 8];
  wire_buf buf;
  wire_buf_init(&buf, NULL, NULL);
  buf.data = frame;
  buf.cap = sizeof frame;
  wire_encode_ping(&buf, WIRE_PONG, nonce);
  Assert(!buf.failed && buf.len == sizeof frame);
  (void)send_all(frame, sizeof frame, deadline);
}

/* Read frames until the reply to request_id arrives. */
static OrdoSendOutcome read_reply(uint64 request_id, TimestampTz deadline, OrdoReply *reply) {
  for (;;) {
    wire_message m;
    size_t frame_bytes = 0;
    wire_status st = wire_decode(recv_buf ? recv_buf : (const uint8 *)"", recv_len,
                                 transport_reply_payload_bytes_max, &m, &frame_bytes);
    if (st == WIRE_OK) {
      if (m.type == WIRE_COMMIT_REPLY && m.request_id == request_id) {
        reply->verdict = m.verdict;
        reply->flags = m.reply_flags;
        reply->tau_commit = m.tau_commit;
        reply->prev_tau = m.prev_tau;
        reply->detail = pnstrdup(m.text ? m.text : "", m.text_len);
        memmove(recv_buf, recv_buf + frame_bytes, recv_len - frame_bytes);
        recv_len -= frame_bytes;
        return ORDO_REPLY_RECEIVED;
      }
      if (m.type == WIRE_ERROR) {
        reply->problem = psprintf("The sidecar answered with error %u: %.*s", (unsigned)m.code,
                                  (int)m.text_len, m.text ? m.text : "");
        return ORDO_OUTCOME_UNKNOWN;
      }
      if (m.type == WIRE_PING) {
        uint64 nonce = m.nonce;
        memmove(recv_buf, recv_buf + frame_bytes, recv_len - frame_bytes);
        recv_len -= frame_bytes;
        send_pong(nonce, deadline);
        continue;
      }
      if (m.type == WIRE_PONG) {
        memmove(recv_buf, recv_buf + frame_bytes, recv_len - frame_bytes);
        recv_len -= frame_bytes;
        continue;
      }
      reply->problem = psprintf("The sidecar sent an unexpected frame of type %d.", (int)m.type);
      return ORDO_OUTCOME_UNKNOWN;
    }
    if (st != WIRE_TRUNCATED) {
      reply->problem = psprintf("The sidecar's reply was rejected: %s.", wire_status_name(st));
      return ORDO_OUTCOME_UNKNOWN;
    }
    {
      bool cancelled = false;
      ssize_t n;
      recv_reserve(recv_len + transport_recv_chunk_bytes);
      n = recv(sidecar_fd, recv_buf + recv_len, recv_cap - recv_len, MSG_DONTWAIT);
      if (n > 0) {
        recv_len += (size_t)n;
        continue;
      }
      if (n == 0) {
        reply->problem = pstrdup("The sidecar closed the connection before answering.");
        return ORDO_OUTCOME_UNKNOWN;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        reply->problem = psprintf("Could not read the sidecar's reply: %m.");
        return ORDO_OUTCOME_UNKNOWN;
      }
      if (!wait_socket(WL_SOCKET_READABLE, deadline, &cancelled)) {
        reply->problem = cancelled ? pstrdup("The commit was cancelled while waiting for its verdict.")
                                   : psprintf("No verdict arrived within %d ms (ordo.commit_timeout).",
                                              ordo_commit_timeout_ms);
        return ORDO_OUTCOME_UNKNOWN;
      }
    }
  }
}

OrdoSendOutcome transport_commit(const uint8 *frame, size_t frame_len, uint64 request_id,
                                 OrdoReply *reply) {
  TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ordo_commit_timeout_ms);
  OrdoSendOutcome outcome;

  reply->verdict = 0;
  reply->flags = 0;
  reply->tau_commit = 0;
  reply->prev_tau = 0;
  reply->detail = pstrdup("");
  reply->problem = NULL;
  outcome = send_frame(frame, frame_len, deadline);
  if (outcome != ORDO_REPLY_RECEIVED) {
    reply->problem = pstrdup(problem_buf);
    return outcome;
  }
  outcome = read_reply(request_id, deadline, reply);
  if (outcome != ORDO_REPLY_RECEIVED) transport_disconnect();
  return outcome;
}

/* Drop the first frame_bytes of the receive buffer. */
static void recv_consume(size_t frame_bytes) {
  memmove(recv_buf, recv_buf + frame_bytes, recv_len - frame_bytes);
  recv_len -= frame_bytes;
}

/*
 * WAIT_VISIBLE(tau) and wait up to timeout_ms for its VISIBLE. Never throws
 * (the caller's transaction is already committed) and allocates nothing:
 * the receive buffer exists since the commit's reply was read into it. On
 * false, *problem (static) says why and the connection is closed, so a late
 * VISIBLE is never read as an answer to a later request.
 */
bool transport_wait_visible(int64 tau, int timeout_ms, const char **problem) {
  TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
  uint8 frame[WIRE_FRAME_HEADER_BYTES + 16];
  uint64 request_id = transport_next_request_id();
  wire_buf buf;
  bool ok = false;

  *problem = problem_buf;
  problem_buf[0] = '\0';
  HOLD_INTERRUPTS();
  wire_buf_init(&buf, NULL, NULL);
  buf.data = frame;
  buf.cap = sizeof frame;
  wire_encode_wait_visible(&buf, request_id, tau);
  Assert(!buf.failed && buf.len == sizeof frame);

  if (recv_buf == NULL || recv_cap < transport_recv_chunk_bytes) {
    set_problem("No receive buffer (no commit was sent on this connection).");
  } else if (send_frame(frame, sizeof frame, deadline) == ORDO_REPLY_RECEIVED) {
    for (;;) {
      wire_message m;
      size_t frame_bytes = 0;
      wire_status st = wire_decode(recv_buf, recv_len, transport_reply_payload_bytes_max, &m,
                                   &frame_bytes);
      if (st == WIRE_OK) {
        if (m.type == WIRE_VISIBLE && m.request_id == request_id) {
          recv_consume(frame_bytes);
          ok = true;
          break;
        }
        if (m.type == WIRE_PING || m.type == WIRE_PONG) {
          uint64 nonce = m.nonce;
          bool ping = m.type == WIRE_PING;
          recv_consume(frame_bytes);
          if (ping) send_pong(nonce, deadline);
          continue;
        }
        if (m.type == WIRE_ERROR)
          set_problem("The sidecar answered with error %u: %.*s", (unsigned)m.code,
                      (int)Min(m.text_len, 160), m.text ? m.text : "");
        else
          set_problem("The sidecar sent an unexpected frame of type %d.", (int)m.type);
        break;
      }
      if (st != WIRE_TRUNCATED) {
        set_problem("The sidecar's answer was rejected: %s.", wire_status_name(st));
        break;
      }
      if (recv_cap - recv_len < transport_recv_chunk_bytes / 2) {
        set_problem("The sidecar's answer is too large.");
        break;
      }
      {
        bool stopped = false;
        ssize_t n = recv(sidecar_fd, recv_buf + recv_len, recv_cap - recv_len, MSG_DONTWAIT);
        if (n > 0) {
          recv_len += (size_t)n;
          continue;
        }
        if (n == 0) {
          set_problem("The sidecar closed the connection before answering.");
          break;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          set_problem("Could not read the sidecar's answer: %s.", strerror(errno));
          break;
        }
        if (!wait_socket(WL_SOCKET_READABLE, deadline, &stopped)) {
          if (stopped)
            set_problem("The wait was cancelled, or the session is ending.");
          else
            set_problem("No answer within %d ms (ordo.visible_timeout).", timeout_ms);
          break;
        }
      }
    }
  }
  if (!ok) transport_disconnect();
  RESUME_INTERRUPTS();
  return ok;
}
