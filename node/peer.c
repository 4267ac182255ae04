/* Peer sessions: libuv TCP + TLS (memory BIOs) + frames + Hello, request
 * matching, timeouts, keep-alive, reconnect and back-pressure.
 * spec/protocol.md "Sessions". */
#include "peer.h"

#include <assert.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "frame.h"

#define PEER_STR_(name, str) str,
static const char *const peer_errstr[] = {PEER_ERRORS(PEER_STR_)};
#undef PEER_STR_

const char *peer_strerror(int err) {
  if (err < 0) err = -err;
  if (err >= PEER_ERR_COUNT_) return "unknown peer error";
  return peer_errstr[err];
}

#define NODE_MAX 64
#define READ_BUF_BYTES 65536u
#define PLAIN_BUF_BYTES 16384u

typedef struct session session_t;
typedef struct link link_t;

/* An outbound request waiting to be sent or answered. */
typedef struct pending {
  int used;
  int sent;              /* on the current session */
  uint64_t request_id;
  uint64_t deadline_ms;
  uint8_t *frame;        /* encoded, until sent */
  size_t frame_len;
  peer_response_cb cb;
  void *arg;
} pending_t;

struct link {
  peer_net_t *net;
  link_t *next;
  char node_id[NODE_MAX];
  struct sockaddr_storage addr;
  session_t *session;    /* NULL while waiting to reconnect */
  int up;
  unsigned attempt;
  uint64_t next_request_id;
  uint64_t reconnect_at_ms; /* 0: none scheduled */
  uv_timer_t timer;      /* reconnect and request deadlines */
  int removed;           /* peer_net_remove_link: never reconnect */
  char last_down[200];   /* why the last session closed, for "no session" errors */
  pending_t *pending;    /* limits.max_in_flight slots */
  size_t npending;
};

struct session {
  peer_net_t *net;
  session_t *next, *prev;
  link_t *link;          /* outbound: its link; inbound: NULL */
  tls_ctx_t *ctx;        /* the context this session was made from */
  uint64_t id;
  uv_tcp_t tcp;
  uv_timer_t timer;      /* handshake, idle, keep-alive */
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  int open_handles;
  int closing;
  tls_session_t *tls;
  frame_reader_t fr;
  int hello_received;
  char peer_node[NODE_MAX];
  uint64_t started_ms, last_rx_ms;
  uint64_t last_write_ms; /* last completed write: progress while paused */
  int ping_outstanding;
  uint64_t ping_counter;
  size_t queued_bytes;
  int paused;            /* back-pressure: not reading */
  size_t serving;        /* requests handed to on_request, not yet answered */
  uint8_t rbuf[READ_BUF_BYTES];
  uint8_t pbuf[PLAIN_BUF_BYTES];
  size_t poff, plen;     /* plaintext in pbuf not yet given to the frame reader */
};

struct peer_net {
  peer_config_t cfg;
  char node_id[NODE_MAX];
  uv_tcp_t listener;
  int listening;
  int open_handles;      /* net-level: listener + link timers */
  session_t *sessions;
  link_t *links;
  uint64_t next_session_id;
  peer_stats_t stats;
  int closing;
  void (*done)(void *);
  void *done_arg;
};

typedef struct write_req {
  uv_write_t req;
  session_t *s;
  size_t len;
  uint8_t data[];
} write_req_t;

static void session_close(session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void session_arm(session_t *s);
static void link_arm(link_t *l);
static void link_flush(link_t *l);
static void session_process(session_t *s);
static void maybe_finish_close(peer_net_t *net);
static void start_reading(session_t *s);

static uint64_t now_ms(peer_net_t *net) { return uv_now(net->cfg.loop); }

static void event(peer_net_t *net, const char *node, peer_event_t ev, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void event(peer_net_t *net, const char *node, peer_event_t ev, const char *fmt, ...) {
  if (!net->cfg.on_event) return;
  char detail[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  net->cfg.on_event(net, node && node[0] ? node : "?", ev, detail, net->cfg.arg);
}

static uint32_t default_rand(void *arg) {
  (void)arg;
  uint32_t r = 0;
  if (RAND_bytes((unsigned char *)&r, sizeof r) != 1) r = 0x9e3779b9u;
  return r;
}

uint64_t peer_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint32_t rnd) {
  uint64_t d = base_ms ? base_ms : 1;
  for (unsigned i = 0; i < attempt && d < max_ms; i++) d *= 2;
  if (d > max_ms) d = max_ms;
  uint64_t half = d / 2;
  return d - half + (uint64_t)rnd % (half + 1);
}

void peer_limits_default(peer_limits_t *l) {
  l->max_frame_bytes = 8u * 1024 * 1024;
  l->handshake_timeout_ms = 5000;
  l->idle_timeout_ms = 30000;
  l->keepalive_ms = 10000;
  l->request_timeout_ms = 5000;
  l->max_in_flight = 256;
  l->write_high_bytes = 4u * 1024 * 1024;
  l->max_sessions = 256;
  l->backoff_base_ms = 200;
  l->backoff_max_ms = 30000;
}

/* ---- message types and their checks -------------------------------------- */

static int v_hello(const Cb__Envelope *env, char *err, size_t errlen) {
  const Cb__PeerHello *h = env->peer_hello;
  if (!h->node_id[0] || strlen(h->node_id) >= NODE_MAX) {
    snprintf(err, errlen, "node_id missing or too long");
    return -FRAME_E_INVALID;
  }
  if (h->n_capabilities > 64) {
    snprintf(err, errlen, "more than 64 capabilities");
    return -FRAME_E_INVALID;
  }
  return 0;
}

static int v_statement(const Cb__SignedStatement *st, const char *what, char *err, size_t errlen) {
  if (!st) {
    snprintf(err, errlen, "%s: statement missing", what);
    return -FRAME_E_INVALID;
  }
  return 0;
}

static int v_lookup_request(const Cb__Envelope *env, char *err, size_t errlen) {
  return v_statement(env->lookup_request->request, "request", err, errlen);
}

static int v_lookup_response(const Cb__Envelope *env, char *err, size_t errlen) {
  return v_statement(env->lookup_response->response, "response", err, errlen);
}

static const frame_type_t peer_types[] = {
    {CB__ENVELOPE__MSG_PEER_HELLO, "peer_hello", v_hello},
    {CB__ENVELOPE__MSG_PEER_PING, "peer_ping", NULL},
    {CB__ENVELOPE__MSG_PEER_PONG, "peer_pong", NULL},
    {CB__ENVELOPE__MSG_PEER_ERROR, "peer_error", NULL},
    {CB__ENVELOPE__MSG_LOOKUP_REQUEST, "lookup_request", v_lookup_request},
    {CB__ENVELOPE__MSG_LOOKUP_RESPONSE, "lookup_response", v_lookup_response},
};

const frame_type_t *peer_frame_types(size_t *n) {
  *n = sizeof peer_types / sizeof *peer_types;
  return peer_types;
}

static int is_reply(Cb__Envelope__MsgCase c) {
  return c == CB__ENVELOPE__MSG_LOOKUP_RESPONSE || c == CB__ENVELOPE__MSG_PEER_ERROR;
}

/* ---- writing --------------------------------------------------------------- */

static void set_paused(session_t *s, int paused) {
  if (s->closing || s->paused == paused) return;
  s->paused = paused;
  if (paused) {
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->net->stats.reads_paused++;
  } else {
    session_process(s); /* what was received but left undecoded */
    if (!s->closing && !s->paused) {
      s->last_rx_ms = now_ms(s->net); /* our own pause is not the peer's idleness */
      start_reading(s);
    }
  }
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  session_t *s = w->s;
  s->queued_bytes -= w->len;
  s->last_write_ms = now_ms(s->net);
  free(w);
  if (status < 0) {
    session_close(s, "write: %s", uv_strerror(status));
    return;
  }
  if (s->paused && s->queued_bytes <= s->net->cfg.limits.write_high_bytes / 2) set_paused(s, 0);
}

/* Moves TLS output to the socket. */
static int session_flush(session_t *s) {
  size_t n = tls_session_out_pending(s->tls);
  if (n == 0 || s->closing) return 0;
  write_req_t *w = malloc(sizeof *w + n);
  if (!w) return -PEER_E_NOMEM;
  w->s = s;
  w->len = tls_session_out_take(s->tls, w->data, n);
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
  int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_write);
  if (rc < 0) {
    free(w);
    return -PEER_E_NET;
  }
  s->queued_bytes += w->len;
  if (s->queued_bytes > s->net->stats.max_queued_bytes)
    s->net->stats.max_queued_bytes = s->queued_bytes;
  if (s->queued_bytes > s->net->cfg.limits.write_high_bytes && !s->paused) {
    s->last_write_ms = now_ms(s->net);
    set_paused(s, 1);
  }
  return 0;
}

static int session_send_frame(session_t *s, const uint8_t *frame, size_t len) {
  if (tls_session_write(s->tls, frame, len) < 0) return -PEER_E_NET;
  return session_flush(s);
}

static int session_send(session_t *s, Cb__Envelope *env) {
  env->version = FRAME_VERSION;
  uint8_t *frame;
  size_t len;
  int rc = frame_encode(env, s->net->cfg.limits.max_frame_bytes, &frame, &len);
  if (rc < 0) return rc == -FRAME_E_TOO_LARGE ? -PEER_E_TOO_LARGE : -PEER_E_NOMEM;
  rc = session_send_frame(s, frame, len);
  free(frame);
  return rc;
}

static void send_error(session_t *s, uint64_t rid, Cb__PeerErrorCode code, const char *reason) {
  Cb__PeerError pe;
  cb__peer_error__init(&pe);
  pe.code = code;
  pe.reason = (char *)reason;
  Cb__Envelope env;
  cb__envelope__init(&env);
  env.request_id = rid;
  env.msg_case = CB__ENVELOPE__MSG_PEER_ERROR;
  env.peer_error = &pe;
  session_send(s, &env);
}

static void send_hello(session_t *s) {
  static char *caps[] = {PEER_CAP_LOOKUP};
  Cb__PeerHello h;
  cb__peer_hello__init(&h);
  h.node_id = s->net->node_id;
  h.protocol_version = PEER_PROTOCOL_VERSION;
  h.n_capabilities = 1;
  h.capabilities = caps;
  h.time_ms = (int64_t)time(NULL) * 1000;
  Cb__Envelope env;
  cb__envelope__init(&env);
  env.msg_case = CB__ENVELOPE__MSG_PEER_HELLO;
  env.peer_hello = &h;
  if (session_send(s, &env) < 0) session_close(s, "cannot send Hello");
}

/* ---- pending requests (outbound links) ------------------------------------- */

static void pending_finish(pending_t *p, int status, const Cb__Envelope *reply, const char *detail) {
  peer_response_cb cb = p->cb;
  void *arg = p->arg;
  free(p->frame);
  memset(p, 0, sizeof *p);
  cb(status, reply, detail, arg);
}

static void link_fail_pending(link_t *l, int only_sent, int status, const char *detail) {
  for (size_t i = 0; i < l->net->cfg.limits.max_in_flight; i++) {
    pending_t *p = &l->pending[i];
    if (!p->used || (only_sent && !p->sent)) continue;
    l->npending--;
    pending_finish(p, status, NULL, detail);
  }
}

static void link_flush(link_t *l) {
  if (!l->up || !l->session) return;
  for (size_t i = 0; i < l->net->cfg.limits.max_in_flight; i++) {
    pending_t *p = &l->pending[i];
    if (!p->used || p->sent) continue;
    if (session_send_frame(l->session, p->frame, p->frame_len) < 0) {
      session_close(l->session, "write failed");
      return;
    }
    p->sent = 1;
    free(p->frame);
    p->frame = NULL;
    if (!l->session || l->session->closing) return;
  }
}

static void link_on_reply(link_t *l, const Cb__Envelope *env) {
  for (size_t i = 0; i < l->net->cfg.limits.max_in_flight; i++) {
    pending_t *p = &l->pending[i];
    if (p->used && p->sent && p->request_id == env->request_id) {
      l->npending--;
      pending_finish(p, 0, env, "");
      link_arm(l);
      return;
    }
  }
  l->net->stats.late_replies++;
}

/* ---- sessions ---------------------------------------------------------------- */

static void session_free_if_closed(session_t *s) {
  if (s->open_handles > 0) return;
  peer_net_t *net = s->net;
  if (s->prev) s->prev->next = s->next;
  else net->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  net->stats.sessions--;
  tls_session_free(s->tls);
  frame_reader_free(&s->fr);
  free(s);
  maybe_finish_close(net);
}

static void on_session_handle_closed(uv_handle_t *h) {
  session_t *s = h->data;
  s->open_handles--;
  session_free_if_closed(s);
}

static void link_schedule(link_t *l);

static void session_release_handles(session_t *s) {
  uv_timer_stop(&s->timer);
  if (!uv_is_closing((uv_handle_t *)&s->tcp))
    uv_close((uv_handle_t *)&s->tcp, on_session_handle_closed);
  if (!uv_is_closing((uv_handle_t *)&s->timer))
    uv_close((uv_handle_t *)&s->timer, on_session_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  session_release_handles(req->data);
}

static void linger_timer_cb(uv_timer_t *t) { session_release_handles(t->data); }

static void session_close(session_t *s, const char *fmt, ...) {
  if (s->closing) return;
  s->closing = 1;
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  peer_net_t *net = s->net;
  event(net, s->peer_node[0] ? s->peer_node : (s->link ? s->link->node_id : "?"),
        PEER_EV_DOWN, "%s", why);
  link_t *l = s->link;
  if (l) {
    if (l->up) net->stats.links_up--;
    l->up = 0;
    l->session = NULL;
    snprintf(l->last_down, sizeof l->last_down, "%.199s", why);
    char d[512];
    snprintf(d, sizeof d, "session to %s closed: %s", l->node_id, why);
    link_fail_pending(l, 1, -PEER_E_DISCONNECTED, d);
    if (!net->closing && !l->removed) link_schedule(l);
  }
  uv_read_stop((uv_stream_t *)&s->tcp);
  /* Let a last error frame reach the peer: shut down the write side after
   * what is queued, then close; the timer forces the close if the peer
   * does not take it. */
  if (s->queued_bytes > 0 && s->queued_bytes <= 65536 && !net->closing &&
      uv_is_writable((uv_stream_t *)&s->tcp)) {
    s->shutdown_req.data = s;
    if (uv_shutdown(&s->shutdown_req, (uv_stream_t *)&s->tcp, on_shutdown) == 0) {
      uv_timer_start(&s->timer, linger_timer_cb, 1000, 0);
      return;
    }
  }
  session_release_handles(s);
}

static void session_on_hello(session_t *s, const Cb__PeerHello *h) {
  const char *pinned = tls_session_peer_node(s->tls);
  if (!pinned || strcmp(pinned, h->node_id) != 0) {
    s->net->stats.frames_refused++;
    event(s->net, pinned, PEER_EV_REFUSED, "Hello names %.63s but TLS pinned %s", h->node_id,
          pinned ? pinned : "nobody");
    session_close(s, "Hello does not match the pinned key");
    return;
  }
  if (h->protocol_version != PEER_PROTOCOL_VERSION) {
    s->net->stats.frames_refused++;
    event(s->net, pinned, PEER_EV_REFUSED, "protocol version %u, this node speaks %u",
          h->protocol_version, PEER_PROTOCOL_VERSION);
    session_close(s, "unsupported protocol version");
    return;
  }
  s->hello_received = 1;
  snprintf(s->peer_node, sizeof s->peer_node, "%s", h->node_id);
  event(s->net, s->peer_node, PEER_EV_UP, "%s", s->link ? "outbound" : "inbound");
  if (s->link) {
    s->link->up = 1;
    s->link->attempt = 0;
    s->net->stats.links_up++;
    link_flush(s->link);
  }
}

static void session_dispatch(session_t *s, const Cb__Envelope *env) {
  peer_net_t *net = s->net;
  if (!s->hello_received) {
    if (env->msg_case != CB__ENVELOPE__MSG_PEER_HELLO) {
      net->stats.frames_refused++;
      session_close(s, "first message is not Hello");
      return;
    }
    session_on_hello(s, env->peer_hello);
    return;
  }
  switch (env->msg_case) {
  case CB__ENVELOPE__MSG_PEER_HELLO:
    net->stats.frames_refused++;
    session_close(s, "second Hello");
    return;
  case CB__ENVELOPE__MSG_PEER_PING: {
    Cb__PeerPong pong;
    cb__peer_pong__init(&pong);
    pong.nonce = env->peer_ping->nonce;
    Cb__Envelope r;
    cb__envelope__init(&r);
    r.request_id = env->request_id;
    r.msg_case = CB__ENVELOPE__MSG_PEER_PONG;
    r.peer_pong = &pong;
    session_send(s, &r);
    return;
  }
  case CB__ENVELOPE__MSG_PEER_PONG:
    s->ping_outstanding = 0;
    return;
  default:
    break;
  }
  if (is_reply(env->msg_case)) {
    if (s->link) link_on_reply(s->link, env);
    else net->stats.late_replies++; /* nothing was asked on an inbound session */
    return;
  }
  /* A request. */
  if (!net->cfg.on_request) {
    send_error(s, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_NOT_SERVED, "not served");
    return;
  }
  if (s->serving >= net->cfg.limits.max_in_flight) {
    send_error(s, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_BUSY,
               "too many requests in flight on this session");
    return;
  }
  s->serving++;
  net->cfg.on_request(net, s->id, s->peer_node, env, net->cfg.arg);
}

/* Decodes and dispatches whatever plaintext is ready, unless paused. A
 * pause (our queue to this peer is full) takes effect between two frames:
 * the rest stays in pbuf and in the TLS buffers until the queue drains. */
static void session_process(session_t *s) {
  while (!s->closing && !s->paused) {
    if (s->poff == s->plen) {
      size_t got = 0;
      int rc = tls_session_read(s->tls, s->pbuf, sizeof s->pbuf, &got);
      if (rc < 0) {
        session_close(s, "tls: %s", tls_session_error(s->tls));
        return;
      }
      if (got == 0) break;
      s->poff = 0;
      s->plen = got;
    }
    size_t used = 0;
    int fr = frame_reader_feed(&s->fr, s->pbuf + s->poff, s->plen - s->poff, &used);
    s->poff += used;
    if (fr < 0) {
      s->net->stats.frames_refused++;
      event(s->net, s->peer_node, PEER_EV_REFUSED, "frame: %s", frame_strerror(fr));
      session_close(s, "frame: %s", frame_strerror(fr));
      return;
    }
    if (fr == 0) continue;
    frame_msg_t *m = NULL;
    uint64_t rid = 0;
    char why[256];
    int dr = frame_decode(s->fr.body, s->fr.body_len, peer_types,
                          sizeof peer_types / sizeof *peer_types, &m, &rid, why, sizeof why);
    frame_reader_next(&s->fr);
    if (dr < 0) {
      s->net->stats.frames_refused++;
      event(s->net, s->peer_node, PEER_EV_REFUSED, "%s", why);
      if (s->hello_received)
        send_error(s, rid,
                   dr == -FRAME_E_UNKNOWN_TYPE ? CB__PEER_ERROR_CODE__PEER_ERROR_NOT_SERVED
                                               : CB__PEER_ERROR_CODE__PEER_ERROR_MALFORMED,
                   why);
      session_close(s, "%s", why);
      return;
    }
    session_dispatch(s, frame_msg_envelope(m));
    frame_msg_free(m);
  }
  if (!s->closing) session_arm(s);
}

static void session_on_tls_ready(session_t *s) { send_hello(s); }

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  session_t *s = h->data;
  *buf = uv_buf_init((char *)s->rbuf, sizeof s->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  session_t *s = st->data;
  if (n == 0) return;
  if (n < 0) {
    session_close(s, "%s", n == UV_EOF ? "peer closed the connection" : uv_strerror((int)n));
    return;
  }
  s->last_rx_ms = now_ms(s->net);
  tls_session_feed(s->tls, s->rbuf, (size_t)n);
  if (!tls_session_established(s->tls)) {
    int rc = tls_session_handshake(s->tls);
    session_flush(s);
    if (rc < 0) {
      s->net->stats.frames_refused++;
      event(s->net, s->link ? s->link->node_id : "?", PEER_EV_REFUSED, "%s",
            tls_session_error(s->tls));
      session_close(s, "%s", tls_session_error(s->tls));
      return;
    }
    if (rc == 0) return;
    session_on_tls_ready(s);
    if (s->closing) return;
  }
  session_process(s);
}

static void start_reading(session_t *s) {
  uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, on_read);
}

static void session_timer_cb(uv_timer_t *t) {
  session_t *s = t->data;
  peer_net_t *net = s->net;
  const peer_limits_t *lim = &net->cfg.limits;
  uint64_t now = now_ms(net);
  if (!s->hello_received) {
    if (now - s->started_ms >= lim->handshake_timeout_ms) {
      net->stats.handshake_timeouts++;
      session_close(s, "handshake timeout (%llu ms)", (unsigned long long)lim->handshake_timeout_ms);
      return;
    }
  } else if (s->paused) {
    /* A peer that takes none of our answers for a whole idle period is
     * gone or hostile: free its slot. */
    if (now - s->last_write_ms >= lim->idle_timeout_ms) {
      net->stats.idle_timeouts++;
      session_close(s, "peer not reading for %llu ms", (unsigned long long)lim->idle_timeout_ms);
      return;
    }
  } else {
    if (now - s->last_rx_ms >= lim->idle_timeout_ms) {
      net->stats.idle_timeouts++;
      session_close(s, "idle timeout (%llu ms)", (unsigned long long)lim->idle_timeout_ms);
      return;
    }
    if (now - s->last_rx_ms >= lim->keepalive_ms && !s->ping_outstanding) {
      Cb__PeerPing ping;
      cb__peer_ping__init(&ping);
      ping.nonce = ++s->ping_counter;
      Cb__Envelope env;
      cb__envelope__init(&env);
      env.request_id = UINT64_MAX - s->ping_counter; /* apart from request ids */
      env.msg_case = CB__ENVELOPE__MSG_PEER_PING;
      env.peer_ping = &ping;
      s->ping_outstanding = 1;
      if (session_send(s, &env) < 0) {
        session_close(s, "cannot send ping");
        return;
      }
    }
  }
  session_arm(s);
}

static void session_arm(session_t *s) {
  if (s->closing) return;
  const peer_limits_t *lim = &s->net->cfg.limits;
  uint64_t now = now_ms(s->net), at;
  if (!s->hello_received) {
    at = s->started_ms + lim->handshake_timeout_ms;
  } else if (s->paused) {
    at = s->last_write_ms + lim->idle_timeout_ms;
  } else {
    at = s->last_rx_ms + lim->idle_timeout_ms;
    if (!s->ping_outstanding && s->last_rx_ms + lim->keepalive_ms < at)
      at = s->last_rx_ms + lim->keepalive_ms;
  }
  uv_timer_start(&s->timer, session_timer_cb, at > now ? at - now : 0, 0);
}

static session_t *session_new(peer_net_t *net, link_t *link) {
  session_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  tls_ctx_t *ctx = link ? net->cfg.client_tls : net->cfg.server_tls;
  if (tls_session_new(ctx, &s->tls) < 0) {
    free(s);
    return NULL;
  }
  if (link) tls_session_expect_peer(s->tls, link->node_id);
  s->ctx = ctx;
  s->net = net;
  s->link = link;
  s->id = ++net->next_session_id;
  frame_reader_init(&s->fr, net->cfg.limits.max_frame_bytes);
  uv_tcp_init(net->cfg.loop, &s->tcp);
  uv_timer_init(net->cfg.loop, &s->timer);
  s->tcp.data = s->timer.data = s;
  s->open_handles = 2;
  s->started_ms = s->last_rx_ms = now_ms(net);
  s->next = net->sessions;
  if (net->sessions) net->sessions->prev = s;
  net->sessions = s;
  net->stats.sessions++;
  return s;
}

/* ---- inbound ---------------------------------------------------------------- */

static void on_reject_closed(uv_handle_t *h) {
  peer_net_t *net = h->data;
  free(h);
  net->open_handles--;
  maybe_finish_close(net);
}

static void on_connection(uv_stream_t *server, int status) {
  peer_net_t *net = server->data;
  if (status < 0 || net->closing) return;
  size_t inbound = 0;
  for (session_t *s = net->sessions; s; s = s->next)
    if (!s->link) inbound++;
  if (inbound >= net->cfg.limits.max_sessions) {
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) return;
    uv_tcp_init(net->cfg.loop, t);
    t->data = net;
    net->open_handles++;
    uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_reject_closed);
    net->stats.refused_over_limit++;
    return;
  }
  session_t *s = session_new(net, NULL);
  if (!s) return;
  if (uv_accept(server, (uv_stream_t *)&s->tcp) < 0) {
    session_close(s, "accept failed");
    return;
  }
  net->stats.accepted++;
  uv_tcp_nodelay(&s->tcp, 1);
  start_reading(s);
  session_arm(s);
}

/* ---- outbound ---------------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status) {
  session_t *s = req->data;
  if (s->closing) return;
  if (status < 0) {
    session_close(s, "connect: %s", uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&s->tcp, 1);
  start_reading(s);
  tls_session_handshake(s->tls); /* ClientHello */
  session_flush(s);
}

static void link_connect(link_t *l) {
  peer_net_t *net = l->net;
  session_t *s = session_new(net, l);
  if (!s) {
    link_schedule(l);
    return;
  }
  l->session = s;
  s->connect_req.data = s;
  int rc = uv_tcp_connect(&s->connect_req, &s->tcp, (const struct sockaddr *)&l->addr, on_connect);
  if (rc < 0) {
    session_close(s, "connect: %s", uv_strerror(rc));
    return;
  }
  session_arm(s);
}

static void link_schedule(link_t *l) {
  peer_net_t *net = l->net;
  uint64_t d = peer_backoff_ms(l->attempt, net->cfg.limits.backoff_base_ms,
                               net->cfg.limits.backoff_max_ms, net->cfg.rand(net->cfg.rand_arg));
  if (l->attempt < 64) l->attempt++;
  l->reconnect_at_ms = now_ms(net) + d;
  link_arm(l);
}

static void link_timer_cb(uv_timer_t *t) {
  link_t *l = t->data;
  peer_net_t *net = l->net;
  uint64_t now = now_ms(net);
  for (size_t i = 0; i < net->cfg.limits.max_in_flight; i++) {
    pending_t *p = &l->pending[i];
    if (!p->used || p->deadline_ms > now) continue;
    l->npending--;
    if (p->sent) net->stats.requests_timed_out++;
    char d[320];
    if (p->sent || !l->last_down[0])
      snprintf(d, sizeof d, "no answer from %s in time%s", l->node_id, p->sent ? "" : " (no session)");
    else
      snprintf(d, sizeof d, "no answer from %s in time (no session; last: %s)", l->node_id, l->last_down);
    pending_finish(p, -PEER_E_TIMEOUT, NULL, d);
  }
  if (net->closing) return;
  if (l->reconnect_at_ms && l->reconnect_at_ms <= now && !l->session) {
    l->reconnect_at_ms = 0;
    net->stats.reconnects++;
    link_connect(l);
  }
  link_arm(l);
}

static void link_arm(link_t *l) {
  peer_net_t *net = l->net;
  if (net->closing) return;
  uint64_t at = UINT64_MAX;
  if (l->reconnect_at_ms && !l->session) at = l->reconnect_at_ms;
  for (size_t i = 0; i < net->cfg.limits.max_in_flight; i++)
    if (l->pending[i].used && l->pending[i].deadline_ms < at) at = l->pending[i].deadline_ms;
  if (at == UINT64_MAX) {
    uv_timer_stop(&l->timer);
    return;
  }
  uint64_t now = now_ms(net);
  uv_timer_start(&l->timer, link_timer_cb, at > now ? at - now : 0, 0);
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *out) {
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%u", port);
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res) return -1;
  memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

/* ---- public ---------------------------------------------------------------- */

int peer_net_new(const peer_config_t *cfg, peer_net_t **out, char *err, size_t errlen) {
  if (!cfg || !out || !cfg->loop || !cfg->node_id || !cfg->node_id[0] ||
      strlen(cfg->node_id) >= NODE_MAX) {
    snprintf(err, errlen, "peer: loop and node id are required");
    return -PEER_E_ARG;
  }
  const peer_limits_t *l = &cfg->limits;
  if (l->max_frame_bytes < 1024 || l->max_frame_bytes > FRAME_MAX_CEILING_BYTES ||
      !l->handshake_timeout_ms || !l->idle_timeout_ms || !l->keepalive_ms ||
      l->keepalive_ms >= l->idle_timeout_ms || !l->request_timeout_ms || !l->max_in_flight ||
      l->max_in_flight > 65536 || l->write_high_bytes < 65536 || !l->max_sessions ||
      !l->backoff_base_ms || l->backoff_max_ms < l->backoff_base_ms) {
    snprintf(err, errlen,
             "peer: limits out of range (keep-alive must be shorter than the idle timeout)");
    return -PEER_E_ARG;
  }
  peer_net_t *net = calloc(1, sizeof *net);
  if (!net) return -PEER_E_NOMEM;
  net->cfg = *cfg;
  if (!net->cfg.rand) net->cfg.rand = default_rand;
  snprintf(net->node_id, sizeof net->node_id, "%s", cfg->node_id);
  net->cfg.node_id = net->node_id;
  *out = net;
  return 0;
}

int peer_net_listen(peer_net_t *net, const char *host, uint16_t port, uint16_t *bound, char *err,
                    size_t errlen) {
  if (!net || !host || !net->cfg.server_tls || net->listening) {
    snprintf(err, errlen, "peer: listen needs a server TLS context (and only once)");
    return -PEER_E_ARG;
  }
  struct sockaddr_storage ss;
  if (resolve(host, port, &ss)) {
    snprintf(err, errlen, "peer: cannot resolve %s", host);
    return -PEER_E_NET;
  }
  uv_tcp_init(net->cfg.loop, &net->listener);
  net->listener.data = net;
  net->open_handles++;
  net->listening = 1;
  int rc = uv_tcp_bind(&net->listener, (const struct sockaddr *)&ss, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&net->listener, 128, on_connection);
  if (rc < 0) {
    snprintf(err, errlen, "peer: listen on %s:%u: %s", host, port, uv_strerror(rc));
    return -PEER_E_NET; /* the handle is closed by peer_net_close */
  }
  if (bound) {
    struct sockaddr_storage name;
    int len = sizeof name;
    uv_tcp_getsockname(&net->listener, (struct sockaddr *)&name, &len);
    *bound = ntohs(name.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&name)->sin6_port
                                             : ((struct sockaddr_in *)&name)->sin_port);
  }
  return 0;
}

int peer_net_add_link(peer_net_t *net, const char *node_id, const char *host, uint16_t port,
                      char *err, size_t errlen) {
  if (!net || !node_id || !node_id[0] || strlen(node_id) >= NODE_MAX || !host ||
      !net->cfg.client_tls || net->closing) {
    snprintf(err, errlen, "peer: link needs a node id, a host and a client TLS context");
    return -PEER_E_ARG;
  }
  for (link_t *o = net->links; o; o = o->next)
    if (strcmp(o->node_id, node_id) == 0) {
      snprintf(err, errlen, "peer: link to %s exists", node_id);
      return -PEER_E_ARG;
    }
  link_t *l = calloc(1, sizeof *l);
  if (!l) return -PEER_E_NOMEM;
  l->pending = calloc(net->cfg.limits.max_in_flight, sizeof *l->pending);
  int rc = !l->pending ? -PEER_E_NOMEM : resolve(host, port, &l->addr) ? -PEER_E_NET : 0;
  if (rc) {
    snprintf(err, errlen, "peer: cannot resolve %s for %s", host, node_id);
    free(l->pending);
    free(l);
    return rc;
  }
  l->net = net;
  snprintf(l->node_id, sizeof l->node_id, "%s", node_id);
  uv_timer_init(net->cfg.loop, &l->timer);
  l->timer.data = l;
  net->open_handles++;
  l->next = net->links;
  net->links = l;
  link_connect(l);
  return 0;
}

static link_t *find_link(const peer_net_t *net, const char *node_id) {
  for (link_t *l = net->links; l; l = l->next)
    if (strcmp(l->node_id, node_id) == 0) return l;
  return NULL;
}

int peer_net_link_up(const peer_net_t *net, const char *node_id) {
  link_t *l = net && node_id ? find_link(net, node_id) : NULL;
  return l && l->up;
}

int peer_net_request(peer_net_t *net, const char *node_id, Cb__Envelope *env, uint64_t timeout_ms,
                     peer_response_cb cb, void *arg) {
  if (!net || !node_id || !env || !cb || env->msg_case == CB__ENVELOPE__MSG__NOT_SET)
    return -PEER_E_ARG;
  if (net->closing) return -PEER_E_CLOSING;
  link_t *l = find_link(net, node_id);
  if (!l) return -PEER_E_NO_LINK;
  if (l->npending >= net->cfg.limits.max_in_flight) return -PEER_E_TOO_MANY;
  pending_t *p = NULL;
  for (size_t i = 0; i < net->cfg.limits.max_in_flight && !p; i++)
    if (!l->pending[i].used) p = &l->pending[i];
  assert(p);
  env->version = FRAME_VERSION;
  env->request_id = ++l->next_request_id;
  int rc = frame_encode(env, net->cfg.limits.max_frame_bytes, &p->frame, &p->frame_len);
  if (rc < 0) return rc == -FRAME_E_TOO_LARGE ? -PEER_E_TOO_LARGE : -PEER_E_NOMEM;
  p->used = 1;
  p->request_id = env->request_id;
  p->deadline_ms = now_ms(net) + (timeout_ms ? timeout_ms : net->cfg.limits.request_timeout_ms);
  p->cb = cb;
  p->arg = arg;
  l->npending++;
  link_flush(l);
  link_arm(l);
  return 0;
}

int peer_reply(peer_net_t *net, uint64_t session_id, uint64_t request_id, Cb__Envelope *env) {
  if (!net || !env) return -PEER_E_ARG;
  for (session_t *s = net->sessions; s; s = s->next) {
    if (s->id != session_id) continue;
    if (s->closing) return -PEER_E_DISCONNECTED;
    if (s->serving) s->serving--;
    env->request_id = request_id;
    int rc = session_send(s, env);
    if (rc == -PEER_E_TOO_LARGE) {
      send_error(s, request_id, CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL,
                 "answer over the frame limit");
    } else if (rc < 0) {
      session_close(s, "cannot send reply");
    }
    return rc;
  }
  return -PEER_E_DISCONNECTED;
}

void peer_net_stats(const peer_net_t *net, peer_stats_t *out) { *out = net->stats; }

/* ---- registry reload: links removed or moved, sessions rechecked ------------ */

static void removed_link_closed(uv_handle_t *h) {
  link_t *l = h->data;
  peer_net_t *net = l->net;
  free(l->pending);
  free(l);
  net->open_handles--;
  maybe_finish_close(net);
}

int peer_net_remove_link(peer_net_t *net, const char *node_id, const char *reason) {
  if (!net || !node_id) return -PEER_E_ARG;
  if (net->closing) return -PEER_E_CLOSING;
  link_t **pp = &net->links;
  while (*pp && strcmp((*pp)->node_id, node_id) != 0) pp = &(*pp)->next;
  link_t *l = *pp;
  if (!l) return -PEER_E_NO_LINK;
  /* Unlinked first: a request made from a failing request's callback gets
   * -PEER_E_NO_LINK instead of landing on a link about to go. */
  *pp = l->next;
  l->next = NULL;
  l->removed = 1;
  uv_timer_stop(&l->timer);
  char d[400];
  snprintf(d, sizeof d, "link to %s removed: %s", l->node_id, reason ? reason : "removed");
  link_fail_pending(l, 0, -PEER_E_REMOVED, d);
  session_t *s = l->session;
  if (s) {
    session_close(s, "%s", d);
    s->link = NULL; /* the link's memory goes below; the session finishes closing alone */
  }
  l->session = NULL;
  uv_close((uv_handle_t *)&l->timer, removed_link_closed);
  return 0;
}

int peer_net_update_link(peer_net_t *net, const char *node_id, const char *host, uint16_t port,
                         char *err, size_t errlen) {
  if (!net || !node_id || !host || !host[0] || !port) {
    snprintf(err, errlen, "peer: moving a link needs a node id, a host and a port");
    return -PEER_E_ARG;
  }
  if (net->closing) {
    snprintf(err, errlen, "peer: closing");
    return -PEER_E_CLOSING;
  }
  link_t *l = net->links;
  while (l && strcmp(l->node_id, node_id) != 0) l = l->next;
  if (!l) {
    snprintf(err, errlen, "peer: no link to %s", node_id);
    return -PEER_E_NO_LINK;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (resolve(host, port, &ss)) {
    snprintf(err, errlen, "peer: cannot resolve %s for %s (link keeps its old endpoint)", host,
             node_id);
    return -PEER_E_NET;
  }
  if (memcmp(&ss, &l->addr, sizeof ss) == 0) return 0;
  l->addr = ss;
  l->attempt = 0;
  if (l->session) session_close(l->session, "endpoint moved to %s:%u", host, (unsigned)port);
  /* No backoff for a move: connect to the new endpoint now. */
  l->reconnect_at_ms = 0;
  if (!l->session) link_connect(l);
  link_arm(l);
  return 1;
}

void peer_net_set_tls(peer_net_t *net, tls_ctx_t *server_tls, tls_ctx_t *client_tls) {
  if (!net) return;
  if (server_tls) net->cfg.server_tls = server_tls;
  if (client_tls) net->cfg.client_tls = client_tls;
}

int peer_net_tls_in_use(const peer_net_t *net, const tls_ctx_t *ctx) {
  if (!net || !ctx) return 0;
  if (net->cfg.server_tls == ctx || net->cfg.client_tls == ctx) return 1;
  for (const session_t *s = net->sessions; s; s = s->next)
    if (s->ctx == ctx) return 1;
  return 0;
}

size_t peer_net_recheck_sessions(peer_net_t *net, peer_keep_fn keep, void *arg, const char *why) {
  if (!net || !keep || net->closing) return 0;
  size_t closed = 0;
  for (session_t *s = net->sessions, *next; s; s = next) {
    next = s->next;
    if (s->closing) continue;
    const char *node = tls_session_peer_node(s->tls);
    const uint8_t *key = tls_session_peer_key(s->tls);
    if (!node || !key || keep(node, key, arg)) continue;
    closed++;
    session_close(s, "%s", why ? why : "peer no longer trusted");
  }
  return closed;
}

static void on_listener_closed(uv_handle_t *h) {
  peer_net_t *net = h->data;
  net->open_handles--;
  maybe_finish_close(net);
}

static void link_timer_closed(uv_handle_t *h) {
  link_t *l = h->data;
  peer_net_t *net = l->net;
  net->open_handles--;
  maybe_finish_close(net);
}

static void maybe_finish_close(peer_net_t *net) {
  if (!net->closing || net->open_handles > 0 || net->sessions) return;
  link_t *l = net->links;
  while (l) {
    link_t *n = l->next;
    free(l->pending);
    free(l);
    l = n;
  }
  void (*done)(void *) = net->done;
  void *arg = net->done_arg;
  free(net);
  if (done) done(arg);
}

void peer_net_close(peer_net_t *net, void (*done)(void *arg), void *arg) {
  if (!net || net->closing) return;
  net->closing = 1;
  net->done = done;
  net->done_arg = arg;
  for (link_t *l = net->links; l; l = l->next) {
    link_fail_pending(l, 0, -PEER_E_CLOSING, "peer layer closing");
    uv_close((uv_handle_t *)&l->timer, link_timer_closed);
  }
  for (session_t *s = net->sessions, *n; s; s = n) {
    n = s->next;
    session_close(s, "node closing");
  }
  if (net->listening) {
    net->listener.data = net;
    uv_close((uv_handle_t *)&net->listener, on_listener_closed);
  }
  maybe_finish_close(net);
}
