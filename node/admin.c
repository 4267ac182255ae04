/* Admin socket server: listener, connections, framing, dispatch.
 * spec/admin.md "Connections". A connection's transport is the Unix socket
 * or the operator TLS port (admin_tls.c: its bytes pass through TLS), and it
 * has a caller (admin_roles.h) that the dispatch checks. */
#include "admin.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin_roles.h"
#include "admin_tls.h"

typedef struct admin_conn admin_conn_t;

struct admin_server {
  node_t *node;
  uv_pipe_t listener;
  int listening;
  int closing;
  int listener_closed;
  admin_conn_t *conns;      /* doubly linked list of open connections */
  uint32_t nconns;
  uint64_t next_conn_id;
  int bound;                /* the socket file is ours to unlink */
  admin_tls_t *tls;         /* the operator TLS port; NULL if not configured */
  char readbuf[ADMIN_READ_CHUNK_BYTES]; /* shared: read_cb consumes it fully */
};

struct admin_conn {
  union {                   /* first: the handle's memory is the conn's */
    uv_pipe_t pipe;         /* the Unix socket */
    uv_tcp_t tcp;           /* the operator TLS port (admin_tls.c) */
  } h;
  admin_server_t *srv;
  admin_conn_t *prev, *next;
  uint64_t id;
  frame_reader_t fr;
  size_t queued_bytes;      /* replies written but not yet flushed */
  int reading;
  int closing;
  int close_after_flush;    /* a framing error: close once the Error is out */
  admin_pending_t *pending; /* deferred replies still owed (admin_reply_defer) */
  admin_caller_t caller;    /* who asks: zero = the Unix socket's admin */
  admin_tls_conn_t *tls;    /* TLS state on the operator port; NULL on the socket */
};

struct admin_pending {
  admin_reply_t reply;
  admin_conn_t *conn;       /* NULL once the connection has closed */
  admin_pending_t *prev, *next;
};

typedef struct admin_write {
  uv_write_t req;
  admin_conn_t *conn;
  uint8_t *buf;
  size_t len;
} admin_write_t;

/* Stop reading while this much reply data is waiting for the client. */
#define ADMIN_MAX_QUEUED_BYTES(n) (2u * (size_t)(n)->cfg.max_frame_bytes + ADMIN_READ_CHUNK_BYTES)

static void bad_input(admin_conn_t *c, const char *what, const char *reason)
{
  node_t *n = c->srv->node;
  log_emit_limited(&n->bad_input_rl, uv_now(&n->loop), LOG_WARN, "admin_bad_input",
                   json_pack("{s:I, s:s, s:s}", "conn", (json_int_t)c->id, "error", what, "reason", reason));
}

/* ---- connection lifecycle --------------------------------------------- */

static void conn_closed_cb(uv_handle_t *h)
{
  admin_conn_t *c = (admin_conn_t *)h;
  admin_server_t *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  /* Deferred replies still owed to this client are dropped on completion. */
  for (admin_pending_t *p = c->pending; p; p = p->next) p->conn = NULL;
  frame_reader_free(&c->fr);
  admin_tls_conn_free(c->tls);
  free(c);
}

static void conn_close(admin_conn_t *c)
{
  if (c->closing) return;
  c->closing = 1;
  if (c->reading) uv_read_stop((uv_stream_t *)&c->h);
  c->reading = 0;
  uv_close((uv_handle_t *)&c->h, conn_closed_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void conn_update_reading(admin_conn_t *c)
{
  if (c->closing) return;
  int want = !c->close_after_flush && c->queued_bytes < ADMIN_MAX_QUEUED_BYTES(c->srv->node);
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->h, alloc_cb, read_cb) == 0) c->reading = 1;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->h);
    c->reading = 0;
  }
}

static void write_cb(uv_write_t *req, int status)
{
  admin_write_t *w = (admin_write_t *)req;
  admin_conn_t *c = w->conn;
  c->queued_bytes -= w->len;
  free(w->buf);
  free(w);
  if (c->closing) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (c->close_after_flush && c->queued_bytes == 0) {
    conn_close(c);
    return;
  }
  conn_update_reading(c);
}

/* Encodes and queues one reply. */
static void conn_send(admin_conn_t *c, const Cb__Envelope *env)
{
  if (c->closing) return;
  node_t *n = c->srv->node;
  uint8_t *buf;
  size_t len;
  int rc = frame_encode(env, n->cfg.max_frame_bytes, &buf, &len);
  if (rc != 0) {
    /* Our own reply did not fit (transcripts are bounded below the limit,
     * so this is a bug) or memory ran out: tell the client briefly. */
    Cb__Envelope e = CB__ENVELOPE__INIT;
    Cb__Error err = CB__ERROR__INIT;
    e.version = FRAME_VERSION;
    e.request_id = env->request_id;
    e.msg_case = CB__ENVELOPE__MSG_ERROR;
    err.code = CB__ERROR_CODE__ERROR_INTERNAL;
    err.reason = (char *)"reply could not be encoded";
    e.error = &err;
    log_pack(LOG_ERROR, "admin_reply_failed", "{s:s}", "error", frame_strerror(rc));
    if (frame_encode(&e, n->cfg.max_frame_bytes, &buf, &len) != 0) {
      conn_close(c);
      return;
    }
  }
  if (c->tls) {
    /* The operator port: the frame leaves as TLS records. */
    uint8_t *plain = buf;
    rc = admin_tls_conn_seal(c->tls, plain, len, &buf, &len);
    free(plain);
    if (rc != 0) {
      conn_close(c);
      return;
    }
  }
  admin_conn_write_raw(c, buf, len);
}

void admin_conn_write_raw(admin_conn_t *c, uint8_t *buf, size_t len)
{
  if (c->closing) {
    free(buf);
    return;
  }
  admin_write_t *w = malloc(sizeof *w);
  if (!w) {
    free(buf);
    conn_close(c);
    return;
  }
  w->conn = c;
  w->buf = buf;
  w->len = len;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1, write_cb) != 0) {
    free(buf);
    free(w);
    conn_close(c);
    return;
  }
  c->queued_bytes += len;
  conn_update_reading(c);
}

static void conn_send_error(admin_conn_t *c, uint64_t request_id, Cb__ErrorCode code, const char *reason)
{
  Cb__Envelope e = CB__ENVELOPE__INIT;
  Cb__Error err = CB__ERROR__INIT;
  e.version = FRAME_VERSION;
  e.request_id = request_id;
  e.msg_case = CB__ENVELOPE__MSG_ERROR;
  err.code = code;
  err.reason = (char *)reason;
  e.error = &err;
  conn_send(c, &e);
}

/* A framing error leaves the byte stream unusable: answer, then close. */
static void conn_fail(admin_conn_t *c, uint64_t request_id, Cb__ErrorCode code, const char *what,
                      const char *reason)
{
  bad_input(c, what, reason);
  conn_send_error(c, request_id, code, reason);
  c->close_after_flush = 1;
  if (c->queued_bytes == 0) conn_close(c);
  else conn_update_reading(c);
}

/* ---- requests ------------------------------------------------------------ */

static void conn_handle_frame(admin_conn_t *c)
{
  node_t *n = c->srv->node;
  frame_msg_t *m = NULL;
  uint64_t rid = 0;
  char err[512];
  int rc = frame_decode(c->fr.body, c->fr.body_len, admin_types, admin_ntypes, &m, &rid, err, sizeof err);
  if (rc != 0) {
    Cb__ErrorCode code = admin_error_code_for_frame(rc);
    if (rc == -FRAME_E_INVALID || rc == -FRAME_E_UNKNOWN_TYPE) {
      /* The frame boundary is intact: refuse this request, keep serving. */
      bad_input(c, frame_strerror(rc), err);
      conn_send_error(c, rid, code, err);
    } else {
      conn_fail(c, rid, code, frame_strerror(rc), err);
    }
    return;
  }
  const Cb__Envelope *req = frame_msg_envelope(m);
  admin_handle_fn handle = admin_handler_for(req->msg_case);
  assert(handle); /* every type in admin_types has a route */
  admin_reply_t reply;
  memset(&reply, 0, sizeof reply);
  cb__envelope__init(&reply.env);
  reply.env.version = FRAME_VERSION;
  reply.env.request_id = req->request_id;
  reply.conn = c;
  /* Roles (admin_roles.h): a refused request gets its Error, no handler. */
  if (admin_roles_authorize(&c->caller, req, &reply) == 0 && handle(n, req, &reply) == ADMIN_PENDING) {
    admin_arena_free(&reply.arena);
    frame_msg_free(m);
    return;
  }
  assert(reply.env.msg_case != CB__ENVELOPE__MSG__NOT_SET);
  conn_send(c, &reply.env);
  admin_arena_free(&reply.arena);
  frame_msg_free(m);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)suggested;
  admin_conn_t *c = (admin_conn_t *)h;
  admin_server_t *s = c->srv;
  /* One shared buffer: libuv calls read_cb right after alloc_cb on the same
   * thread and read_cb consumes all of it before returning. */
  *buf = uv_buf_init(s->readbuf, sizeof s->readbuf);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
  admin_conn_t *c = (admin_conn_t *)st;
  if (nread == 0) return;
  if (nread < 0) {
    if (nread != UV_EOF) bad_input(c, "read", uv_strerror((int)nread));
    else if (frame_reader_partial(&c->fr)) bad_input(c, "truncated", "connection closed inside a frame");
    conn_close(c);
    return;
  }
  if (c->tls) admin_tls_conn_on_cipher(c, c->tls, (const uint8_t *)buf->base, (size_t)nread);
  else admin_conn_consume(c, (const uint8_t *)buf->base, (size_t)nread);
}

void admin_conn_consume(admin_conn_t *c, const uint8_t *p, size_t left)
{
  admin_server_t *s = c->srv;
  while (left > 0 && !c->closing && !c->close_after_flush && !s->node->stopping) {
    size_t used = 0;
    int rc = frame_reader_feed(&c->fr, p, left, &used);
    p += used;
    left -= used;
    if (rc < 0) {
      char reason[160];
      if (rc == -FRAME_E_TOO_LARGE)
        snprintf(reason, sizeof reason, "frame of %u bytes is over the limit of %u bytes",
                 (unsigned)((uint32_t)c->fr.hdr[0] << 24 | (uint32_t)c->fr.hdr[1] << 16 |
                            (uint32_t)c->fr.hdr[2] << 8 | c->fr.hdr[3]),
                 s->node->cfg.max_frame_bytes);
      else
        snprintf(reason, sizeof reason, "%s", frame_strerror(rc));
      conn_fail(c, 0, admin_error_code_for_frame(rc), frame_strerror(rc), reason);
      return;
    }
    if (rc == 1) {
      conn_handle_frame(c);
      frame_reader_next(&c->fr);
    }
  }
}

const admin_caller_t *admin_reply_caller(const admin_reply_t *r)
{
  return r && r->conn ? &r->conn->caller : NULL;
}

/* ---- deferred replies ------------------------------------------------------ */

admin_pending_t *admin_reply_defer(admin_reply_t *reply)
{
  admin_conn_t *c = reply->conn;
  if (!c || c->closing) return NULL;
  admin_pending_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  cb__envelope__init(&p->reply.env);
  p->reply.env.version = reply->env.version;
  p->reply.env.request_id = reply->env.request_id;
  p->conn = c;
  p->next = c->pending;
  if (c->pending) c->pending->prev = p;
  c->pending = p;
  return p;
}

admin_reply_t *admin_pending_reply(admin_pending_t *p)
{
  return &p->reply;
}

int admin_pending_connected(const admin_pending_t *p)
{
  return p->conn != NULL && !p->conn->closing;
}

void admin_pending_complete(admin_pending_t *p)
{
  admin_conn_t *c = p->conn;
  if (c) {
    if (p->prev) p->prev->next = p->next;
    else c->pending = p->next;
    if (p->next) p->next->prev = p->prev;
    assert(p->reply.env.msg_case != CB__ENVELOPE__MSG__NOT_SET);
    conn_send(c, &p->reply.env);
  }
  admin_arena_free(&p->reply.arena);
  free(p);
}

/* ---- listener ------------------------------------------------------------- */

static void connection_cb(uv_stream_t *l, int status)
{
  admin_server_t *s = l->data;
  node_t *n = s->node;
  if (status < 0 || s->closing) return;
  admin_conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = s;
  c->id = ++s->next_conn_id;
  frame_reader_init(&c->fr, n->cfg.max_frame_bytes);
  uv_pipe_init(&n->loop, &c->h.pipe, 0);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_accept(l, (uv_stream_t *)&c->h) != 0) {
    conn_close(c);
    return;
  }
  if (s->nconns - admin_tls_conn_count(s->tls) > n->cfg.max_admin_connections) {
    char reason[96];
    snprintf(reason, sizeof reason, "too many admin connections (limit %u)", n->cfg.max_admin_connections);
    conn_fail(c, 0, CB__ERROR_CODE__ERROR_BUSY, "busy", reason);
    return;
  }
  conn_update_reading(c);
}

/* ---- the operator TLS port's connections (admin_tls.h) -------------------- */

admin_conn_t *admin_conn_accept_tcp(admin_server_t *s, uv_stream_t *listener, admin_tls_conn_t *tc)
{
  node_t *n = s->node;
  admin_conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    admin_tls_conn_free(tc);
    return NULL;
  }
  c->srv = s;
  c->id = ++s->next_conn_id;
  c->tls = tc;
  c->caller.remote = 1; /* no role until the certificate is verified */
  frame_reader_init(&c->fr, n->cfg.max_frame_bytes);
  uv_tcp_init(&n->loop, &c->h.tcp);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_accept(listener, (uv_stream_t *)&c->h) != 0) {
    conn_close(c);
    return NULL;
  }
  uv_tcp_nodelay(&c->h.tcp, 1); /* small request/answer frames: no Nagle delay */
  conn_update_reading(c);
  return c;
}

void admin_conn_set_caller(admin_conn_t *c, const admin_caller_t *who)
{
  c->caller = *who;
}

void admin_conn_finish(admin_conn_t *c)
{
  c->close_after_flush = 1;
  if (c->queued_bytes == 0) conn_close(c);
  else conn_update_reading(c);
}

void admin_conn_drop(admin_conn_t *c)
{
  conn_close(c);
}

int admin_conn_closing(const admin_conn_t *c)
{
  return c->closing || c->close_after_flush;
}

uv_stream_t *admin_conn_stream(admin_conn_t *c)
{
  return (uv_stream_t *)&c->h;
}

/* A socket file left by a previous run is removed; one a live node still
 * serves is not. */
static int prepare_socket_path(const char *path, char *err, size_t errlen)
{
  struct stat st;
  if (lstat(path, &st) != 0) return 0;
  if (!S_ISSOCK(st.st_mode)) {
    snprintf(err, errlen, "%s: exists and is not a socket; refusing to replace it", path);
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t plen = strlen(path);
  if (plen >= sizeof sa.sun_path) {
    close(fd);
    snprintf(err, errlen, "admin socket path is %zu bytes; the limit is %zu", plen,
             sizeof sa.sun_path - 1);
    return -1;
  }
  memcpy(sa.sun_path, path, plen);
  int live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  if (live) {
    snprintf(err, errlen, "%s: another process is serving this admin socket", path);
    return -1;
  }
  if (unlink(path) != 0) {
    snprintf(err, errlen, "%s: cannot remove stale socket: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

static void listener_closed_cb(uv_handle_t *h)
{
  admin_server_t *s = h->data;
  s->listener_closed = 1;
}

int admin_server_start(node_t *n, admin_server_t **out, char *err, size_t errlen)
{
  *out = NULL;
  const char *path = n->cfg.admin_socket;
  if (prepare_socket_path(path, err, errlen) != 0) return -1;
  admin_server_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->node = n;
  uv_pipe_init(&n->loop, &s->listener, 0);
  s->listener.data = s;
  /* Create the socket file without world access from the start; then set
   * the documented mode 0660 (owner and the operators' group). */
  mode_t old = umask(0117);
  int rc = uv_pipe_bind(&s->listener, path);
  umask(old);
  if (rc == 0) s->bound = 1;
  if (rc == 0 && chmod(path, 0660) != 0) rc = -errno;
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 64, connection_cb);
  if (rc != 0) {
    snprintf(err, errlen, "%s: cannot listen: %s", path, rc < 0 && rc > -4096 ? uv_strerror(rc) : "error");
    s->listening = 1; /* the handle is initialised: close it */
    *out = s;
    return -1;
  }
  s->listening = 1;
  *out = s;
  log_pack(LOG_INFO, "admin_listening", "{s:s, s:i, s:i}", "path", path, "max_frame_bytes",
           (int)n->cfg.max_frame_bytes, "max_connections", (int)n->cfg.max_admin_connections);
  if (admin_tls_start(n, s, &s->tls, err, errlen) != 0) return -1; /* s is closed by the caller */
  return 0;
}

void admin_server_close(admin_server_t *s)
{
  if (!s || s->closing) return;
  s->closing = 1;
  if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener)) {
    uv_close((uv_handle_t *)&s->listener, listener_closed_cb);
    if (s->bound) unlink(s->node->cfg.admin_socket);
  }
  admin_tls_close(s->tls);
  for (admin_conn_t *c = s->conns; c; c = c->next) conn_close(c);
}

void admin_server_free(admin_server_t *s)
{
  if (!s) return;
  assert(s->conns == NULL);
  admin_tls_free(s->tls);
  free(s);
}
