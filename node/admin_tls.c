/* The operator port: TCP listener, TLS sessions, timeouts and cap in front
 * of admin.c's connections. See admin_tls.h and spec/admin.md "Operators
 * over TLS". */
#include "admin_tls.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tls.h"

#define ADMIN_TLS_PLAIN_CHUNK 16384u

struct admin_tls {
  node_t *node;
  admin_server_t *srv;
  tls_ctx_t *ctx;
  uv_tcp_t listener;
  uv_timer_t timer;          /* handshake and idle deadlines, swept */
  int handles_init;
  int closing;
  admin_tls_conn_t *conns;   /* every TLS connection not yet freed */
  uint32_t nconns;
  uint16_t port;             /* the port actually bound */
  uint8_t plain[ADMIN_TLS_PLAIN_CHUNK]; /* decrypted bytes, consumed at once */
};

struct admin_tls_conn {
  admin_tls_t *t;
  admin_conn_t *conn;        /* NULL until accepted */
  admin_tls_conn_t *prev, *next;
  tls_session_t *s;
  uint64_t started_ms;
  uint64_t last_activity_ms; /* bytes received or a reply sent */
  int established;
  char addr[64];
};

static uint64_t now_ms(const admin_tls_t *t)
{
  return uv_now(&t->node->loop);
}

static void refused(admin_tls_t *t, const char *event, const char *addr, const char *reason)
{
  node_t *n = t->node;
  log_emit_limited(&n->bad_input_rl, uv_now(&n->loop), LOG_WARN, event,
                   json_pack("{s:s, s:s}", "addr", addr, "reason", reason));
}

/* Moves whatever the TLS session has to send onto the connection. */
static void flush_out(admin_conn_t *c, admin_tls_conn_t *tc)
{
  size_t n = tls_session_out_pending(tc->s);
  if (n == 0) return;
  uint8_t *b = malloc(n);
  if (!b) {
    admin_conn_drop(c);
    return;
  }
  size_t got = tls_session_out_take(tc->s, b, n);
  admin_conn_write_raw(c, b, got);
}

/* ---- per connection ---------------------------------------------------- */

static int finish_handshake(admin_conn_t *c, admin_tls_conn_t *tc)
{
  const tls_operator_t *op = tls_session_operator(tc->s);
  if (!op) { /* tls.c verified a role; never established without one */
    refused(tc->t, "operator_tls_refused", tc->addr, "no operator identity after the handshake");
    admin_conn_finish(c);
    return -1;
  }
  tc->established = 1;
  admin_caller_t who;
  memset(&who, 0, sizeof who);
  who.remote = 1;
  who.op = *op;
  snprintf(who.addr, sizeof who.addr, "%s", tc->addr);
  admin_conn_set_caller(c, &who);
  log_pack(LOG_INFO, "operator_connected", "{s:s, s:s, s:s, s:s}", "operator", op->name, "role",
           tls_role_name(op->role), "institution", op->institution, "addr", tc->addr);
  return 0;
}

void admin_tls_conn_on_cipher(admin_conn_t *c, admin_tls_conn_t *tc, const uint8_t *p, size_t len)
{
  admin_tls_t *t = tc->t;
  tc->last_activity_ms = now_ms(t);
  if (tls_session_feed(tc->s, p, len) != 0) {
    admin_conn_drop(c);
    return;
  }
  if (!tc->established) {
    int rc = tls_session_handshake(tc->s);
    flush_out(c, tc); /* the server's flight, or the alert of a refusal */
    if (rc < 0) {
      refused(t, "operator_tls_refused", tc->addr, tls_session_error(tc->s));
      admin_conn_finish(c);
      return;
    }
    if (rc == 0 || finish_handshake(c, tc) != 0) return;
  }
  for (;;) {
    size_t got = 0;
    int rc = tls_session_read(tc->s, t->plain, sizeof t->plain, &got);
    if (rc == -TLS_E_CLOSED) { /* close_notify: answer it, then close */
      tls_session_close(tc->s);
      flush_out(c, tc);
      admin_conn_finish(c);
      return;
    }
    if (rc < 0) {
      refused(t, "operator_tls_error", tc->addr, tls_session_error(tc->s));
      admin_conn_drop(c);
      return;
    }
    if (got == 0) break;
    admin_conn_consume(c, t->plain, got);
    if (admin_conn_closing(c)) return;
  }
  flush_out(c, tc);
}

int admin_tls_conn_seal(admin_tls_conn_t *tc, const uint8_t *plain, size_t len, uint8_t **out,
                        size_t *outlen)
{
  if (tls_session_write(tc->s, plain, len) != 0) return -1;
  size_t n = tls_session_out_pending(tc->s);
  uint8_t *b = malloc(n ? n : 1);
  if (!b) return -1;
  *outlen = tls_session_out_take(tc->s, b, n);
  *out = b;
  tc->last_activity_ms = now_ms(tc->t);
  return 0;
}

void admin_tls_conn_free(admin_tls_conn_t *tc)
{
  if (!tc) return;
  admin_tls_t *t = tc->t;
  if (tc->prev) tc->prev->next = tc->next;
  else t->conns = tc->next;
  if (tc->next) tc->next->prev = tc->prev;
  t->nconns--;
  tls_session_free(tc->s);
  free(tc);
}

/* ---- listener and timer ------------------------------------------------ */

static void peer_addr(uv_tcp_t *h, char *buf, size_t cap)
{
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[48] = "?";
  int port = 0;
  if (uv_tcp_getpeername(h, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) {
      const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
      uv_ip4_name(a, ip, sizeof ip);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
      uv_ip6_name(a, ip, sizeof ip);
      port = ntohs(a->sin6_port);
    }
  }
  snprintf(buf, cap, "%s:%d", ip, port);
}

static void reject_closed_cb(uv_handle_t *h)
{
  free(h);
}

/* Over the cap: accepted only to be closed (no TLS spent on it). */
static void reject(admin_tls_t *t, uv_stream_t *l)
{
  uv_tcp_t *h = malloc(sizeof *h);
  if (!h) return;
  uv_tcp_init(&t->node->loop, h);
  char addr[64] = "?";
  if (uv_accept(l, (uv_stream_t *)h) == 0) peer_addr(h, addr, sizeof addr);
  uv_close((uv_handle_t *)h, reject_closed_cb);
  char reason[96];
  snprintf(reason, sizeof reason, "too many operator connections (limit %u)",
           t->node->cfg.operators_max_connections);
  refused(t, "operator_busy", addr, reason);
}

static void connection_cb(uv_stream_t *l, int status)
{
  admin_tls_t *t = l->data;
  if (status < 0 || t->closing) return;
  tls_session_t *s = NULL;
  if (t->nconns >= t->node->cfg.operators_max_connections || tls_session_new(t->ctx, &s) != 0) {
    reject(t, l);
    return;
  }
  admin_tls_conn_t *tc = calloc(1, sizeof *tc);
  if (!tc) {
    tls_session_free(s);
    reject(t, l);
    return;
  }
  tc->t = t;
  tc->s = s;
  tc->started_ms = tc->last_activity_ms = now_ms(t);
  snprintf(tc->addr, sizeof tc->addr, "?");
  tc->next = t->conns;
  if (t->conns) t->conns->prev = tc;
  t->conns = tc;
  t->nconns++;
  admin_conn_t *c = admin_conn_accept_tcp(t->srv, l, tc); /* owns tc from here */
  if (!c) return;
  tc->conn = c;
  peer_addr((uv_tcp_t *)admin_conn_stream(c), tc->addr, sizeof tc->addr);
}

static void sweep_cb(uv_timer_t *h)
{
  admin_tls_t *t = h->data;
  const config_t *cfg = &t->node->cfg;
  uint64_t now = now_ms(t);
  for (admin_tls_conn_t *tc = t->conns; tc; tc = tc->next) {
    if (!tc->conn || admin_conn_closing(tc->conn)) continue;
    char reason[96];
    if (!tc->established && now - tc->started_ms >= cfg->operators_handshake_timeout_ms) {
      snprintf(reason, sizeof reason, "no TLS handshake within %u ms",
               cfg->operators_handshake_timeout_ms);
      refused(t, "operator_tls_timeout", tc->addr, reason);
      admin_conn_drop(tc->conn); /* freed later, in the close callback */
    } else if (tc->established && now - tc->last_activity_ms >= cfg->operators_idle_timeout_ms) {
      const tls_operator_t *op = tls_session_operator(tc->s);
      log_pack(LOG_INFO, "operator_idle_timeout", "{s:s, s:s, s:i}", "addr", tc->addr, "operator",
               op ? op->name : "", "idle_timeout_ms", (int)cfg->operators_idle_timeout_ms);
      admin_conn_drop(tc->conn);
    }
  }
}

int admin_tls_start(node_t *n, admin_server_t *srv, admin_tls_t **out, char *err, size_t errlen)
{
  *out = NULL;
  const config_t *cfg = &n->cfg;
  if (!cfg->operators_host[0]) return 0;
  admin_tls_t *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  t->node = n;
  t->srv = srv;
  tls_config_t tc;
  memset(&tc, 0, sizeof tc);
  tc.mode = TLS_MODE_OPERATOR_SERVER;
  tc.key = n->identity; /* cbctl pins this key */
  tc.cert_name = cfg->id;
  tc.operator_ca_path = cfg->operators_ca_file;
  char why[512];
  if (tls_ctx_new(&tc, &t->ctx, why, sizeof why) != 0) {
    snprintf(err, errlen, "[operators] %s", why);
    free(t);
    return -1;
  }
  uv_tcp_init(&n->loop, &t->listener);
  uv_timer_init(&n->loop, &t->timer);
  t->listener.data = t->timer.data = t;
  t->handles_init = 1;
  *out = t;
  struct sockaddr_storage ss;
  int rc = strchr(cfg->operators_host, ':')
               ? uv_ip6_addr(cfg->operators_host, cfg->operators_port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(cfg->operators_host, cfg->operators_port, (struct sockaddr_in *)&ss);
  if (rc == 0) rc = uv_tcp_bind(&t->listener, (const struct sockaddr *)&ss, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&t->listener, 64, connection_cb);
  if (rc != 0) {
    snprintf(err, errlen, "[operators] listen %s port %u: %s", cfg->operators_host,
             (unsigned)cfg->operators_port, uv_strerror(rc));
    return -1;
  }
  int len = sizeof ss;
  if (uv_tcp_getsockname(&t->listener, (struct sockaddr *)&ss, &len) == 0)
    t->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  uint64_t tick = cfg->operators_handshake_timeout_ms < cfg->operators_idle_timeout_ms
                      ? cfg->operators_handshake_timeout_ms
                      : cfg->operators_idle_timeout_ms;
  tick /= 4;
  if (tick > 1000) tick = 1000;
  if (tick < 25) tick = 25;
  uv_timer_start(&t->timer, sweep_cb, tick, tick);
  uv_unref((uv_handle_t *)&t->timer);
  log_pack(LOG_INFO, "operators_listening", "{s:s, s:i, s:s, s:i, s:i, s:i}", "host",
           cfg->operators_host, "port", (int)t->port, "ca_file", cfg->operators_ca_file,
           "max_connections", (int)cfg->operators_max_connections, "handshake_timeout_ms",
           (int)cfg->operators_handshake_timeout_ms, "idle_timeout_ms",
           (int)cfg->operators_idle_timeout_ms);
  return 0;
}

void admin_tls_close(admin_tls_t *t)
{
  if (!t || t->closing) return;
  t->closing = 1;
  if (!t->handles_init) return;
  uv_timer_stop(&t->timer);
  if (!uv_is_closing((uv_handle_t *)&t->timer)) uv_close((uv_handle_t *)&t->timer, NULL);
  if (!uv_is_closing((uv_handle_t *)&t->listener)) uv_close((uv_handle_t *)&t->listener, NULL);
}

void admin_tls_free(admin_tls_t *t)
{
  if (!t) return;
  assert(t->conns == NULL);
  tls_ctx_free(t->ctx);
  free(t);
}

uint32_t admin_tls_conn_count(const admin_tls_t *t)
{
  return t ? t->nconns : 0;
}
