/* Peer sessions over real loopback TCP in one process (node/peer.h): two
 * peer_nets on one libuv loop, plus a raw TLS client in a thread for the
 * hostile cases (bad frames, no reading, connection floods). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_keys.h"

#include "frame.h"
#include "peer.h"
#include "registry.h"
#include "sigstmt.h"
#include "tls.h"

/* ---- fixture: sh (server B), js (client A), zj (raw client) --------------- */

typedef struct node {
  EVP_PKEY *key;
  tls_ctx_t *srv, *cli;
  peer_net_t *net;
  int closed;
} node_t;

typedef struct fx {
  uv_loop_t loop;
  registry_t *reg;
  node_t sh, js;
  EVP_PKEY *zj_key;
  uint16_t sh_port;
  /* sh's request handler behaviour */
  int hold;                 /* collect requests, answer in reverse when 'hold' reached */
  uint64_t held_sess[64], held_rid[64];
  char *held_body[64];
  size_t held_len[64];
  int nheld;
  int ignore_marked;        /* do not answer bodies starting with "ignore" */
  size_t reply_pad;         /* extra bytes added to each answer */
  uint64_t idle_ms;         /* sh's idle timeout when set */
  int answered;
} fx_t;

static fx_t *G;

static tls_ctx_t *mkctx(fx_t *f, tls_mode_t mode, EVP_PKEY *key, const char *name) {
  tls_config_t c = {.mode = mode, .key = key, .cert_name = name, .registry = f->reg};
  tls_ctx_t *ctx;
  char err[256];
  if (tls_ctx_new(&c, &ctx, err, sizeof err)) fail_msg("%s", err);
  return ctx;
}

static void reply_statement(fx_t *f, uint64_t sess, uint64_t rid, const uint8_t *body, size_t len) {
  size_t total = len + f->reply_pad;
  uint8_t *buf = malloc(total ? total : 1);
  if (len) memcpy(buf, body, len);
  memset(buf + len, 'p', f->reply_pad);
  Cb__SignedStatement st;
  cb__signed_statement__init(&st);
  st.signer = "sh";
  st.body.data = buf;
  st.body.len = total;
  Cb__LookupResponse lr;
  cb__lookup_response__init(&lr);
  lr.response = &st;
  Cb__Envelope env;
  cb__envelope__init(&env);
  env.msg_case = CB__ENVELOPE__MSG_LOOKUP_RESPONSE;
  env.lookup_response = &lr;
  peer_reply(G->sh.net, sess, rid, &env);
  free(buf);
  f->answered++;
}

static void on_request(peer_net_t *net, uint64_t sess, const char *peer, const Cb__Envelope *env,
                       void *arg) {
  fx_t *f = arg;
  (void)net;
  assert_int_equal(env->msg_case, CB__ENVELOPE__MSG_LOOKUP_REQUEST);
  const Cb__SignedStatement *st = env->lookup_request->request;
  if (f->ignore_marked && st->body.len >= 6 && memcmp(st->body.data, "ignore", 6) == 0) return;
  if (f->hold) {
    int i = f->nheld++;
    f->held_sess[i] = sess;
    f->held_rid[i] = env->request_id;
    f->held_body[i] = malloc(st->body.len + 1);
    memcpy(f->held_body[i], st->body.data, st->body.len);
    f->held_len[i] = st->body.len;
    if (f->nheld == f->hold) { /* answer all, in reverse order */
      for (int j = f->nheld - 1; j >= 0; j--) {
        reply_statement(f, f->held_sess[j], f->held_rid[j], (uint8_t *)f->held_body[j],
                        f->held_len[j]);
        free(f->held_body[j]);
      }
      f->nheld = 0;
    }
    return;
  }
  reply_statement(f, sess, env->request_id, st->body.data, st->body.len);
}

static void limits(peer_limits_t *l) {
  peer_limits_default(l);
  l->handshake_timeout_ms = 300;
  l->idle_timeout_ms = 3000;
  l->keepalive_ms = 1000;
  l->request_timeout_ms = 2000;
  l->max_sessions = 16;
  l->write_high_bytes = 256 * 1024;
  l->backoff_base_ms = 40;
  l->backoff_max_ms = 400;
  l->max_frame_bytes = 1024 * 1024;
}

static uint32_t zero_rand(void *arg) {
  (void)arg;
  return 0;
}

static void start_node(fx_t *f, node_t *n, const char *id, int listen) {
  n->srv = mkctx(f, TLS_MODE_PEER_SERVER, n->key, id);
  n->cli = mkctx(f, TLS_MODE_PEER_CLIENT, n->key, id);
  peer_config_t c = {.loop = &f->loop, .node_id = id, .server_tls = n->srv, .client_tls = n->cli,
                     .rand = zero_rand, .on_request = on_request, .arg = f};
  limits(&c.limits);
  if (f->idle_ms) {
    c.limits.idle_timeout_ms = f->idle_ms;
    c.limits.keepalive_ms = f->idle_ms / 3;
  }
  char err[256];
  if (peer_net_new(&c, &n->net, err, sizeof err)) fail_msg("%s", err);
  if (listen && peer_net_listen(n->net, "127.0.0.1", 0, &f->sh_port, err, sizeof err))
    fail_msg("%s", err);
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  G = f;
  uv_loop_init(&f->loop);
  f->sh.key = test_key_seeded(1);
  f->js.key = test_key_seeded(2);
  f->zj_key = test_key_seeded(3);
  char a[65], b[65], c[65], json[2048];
  test_key_hex(f->sh.key, a);
  test_key_hex(f->js.key, b);
  test_key_hex(f->zj_key, c);
  snprintf(json, sizeof json,
           "{\"version\":1,\"federation_key\":\"%064d\",\"members\":["
           "{\"node_id\":\"sh\",\"region\":\"sh\",\"endpoint\":\"127.0.0.1:1\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]},"
           "{\"node_id\":\"js\",\"region\":\"js\",\"endpoint\":\"127.0.0.1:2\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]},"
           "{\"node_id\":\"zj\",\"region\":\"zj\",\"endpoint\":\"127.0.0.1:3\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]}]}",
           0, a, b, c);
  char err[256];
  if (registry_parse(json, strlen(json), &f->reg, err, sizeof err)) fail_msg("%s", err);
  *state = f;
  return 0;
}

static void on_closed(void *arg) { ((node_t *)arg)->closed = 1; }

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static int teardown(void **state) {
  fx_t *f = *state;
  if (f->sh.net) peer_net_close(f->sh.net, on_closed, &f->sh);
  if (f->js.net) peer_net_close(f->js.net, on_closed, &f->js);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  uv_walk(&f->loop, walk_close, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  node_t *ns[] = {&f->sh, &f->js};
  for (int i = 0; i < 2; i++) {
    tls_ctx_free(ns[i]->srv);
    tls_ctx_free(ns[i]->cli);
    EVP_PKEY_free(ns[i]->key);
  }
  EVP_PKEY_free(f->zj_key);
  registry_release(f->reg);
  free(f);
  return 0;
}

/* Runs the loop until cond(arg) or timeout_ms; returns cond's last value. */
typedef int (*cond_fn)(void *);
typedef struct waiter {
  cond_fn cond;
  void *arg;
  int met;
} waiter_t;
static void poll_cb(uv_timer_t *t) {
  waiter_t *w = t->data;
  if (w->cond(w->arg)) {
    w->met = 1;
    uv_stop(t->loop);
  }
}
static void deadline_cb(uv_timer_t *t) { uv_stop(t->loop); }
static int run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t timeout_ms) {
  waiter_t w = {cond, arg, 0};
  if (cond(arg)) return 1;
  uv_timer_t poll, dl;
  uv_timer_init(loop, &poll);
  uv_timer_init(loop, &dl);
  poll.data = &w;
  uv_timer_start(&poll, poll_cb, 2, 2);
  uv_timer_start(&dl, deadline_cb, timeout_ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&poll, NULL);
  uv_close((uv_handle_t *)&dl, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return w.met || cond(arg);
}

static int js_link_up(void *arg) { return peer_net_link_up(((fx_t *)arg)->js.net, "sh"); }

static void two_nodes(fx_t *f) {
  start_node(f, &f->sh, "sh", 1);
  start_node(f, &f->js, "js", 0);
  char err[256];
  assert_int_equal(peer_net_add_link(f->js.net, "sh", "127.0.0.1", f->sh_port, err, sizeof err), 0);
  assert_true(run_until(&f->loop, js_link_up, f, 3000));
}

/* ---- requests from js to sh ------------------------------------------------- */

typedef struct call {
  int done, status;
  char expect[64];
  int matched;
  char detail[256];
} call_t;

static void on_response(int status, const Cb__Envelope *reply, const char *detail, void *arg) {
  call_t *c = arg;
  c->done = 1;
  c->status = status;
  snprintf(c->detail, sizeof c->detail, "%s", detail);
  if (status == 0 && reply->msg_case == CB__ENVELOPE__MSG_LOOKUP_RESPONSE) {
    const Cb__SignedStatement *st = reply->lookup_response->response;
    size_t n = strlen(c->expect);
    c->matched = st->body.len >= n && memcmp(st->body.data, c->expect, n) == 0;
  }
}

static int send_lookup(fx_t *f, const char *body, uint64_t timeout_ms, call_t *c) {
  snprintf(c->expect, sizeof c->expect, "%s", body);
  Cb__SignedStatement st;
  cb__signed_statement__init(&st);
  st.signer = "js";
  st.body.data = (uint8_t *)body;
  st.body.len = strlen(body);
  Cb__LookupRequest lr;
  cb__lookup_request__init(&lr);
  lr.request = &st;
  Cb__Envelope env;
  cb__envelope__init(&env);
  env.msg_case = CB__ENVELOPE__MSG_LOOKUP_REQUEST;
  env.lookup_request = &lr;
  return peer_net_request(f->js.net, "sh", &env, timeout_ms, on_response, c);
}

typedef struct calls {
  call_t *c;
  int n;
} calls_t;
static int all_done(void *arg) {
  calls_t *cs = arg;
  for (int i = 0; i < cs->n; i++)
    if (!cs->c[i].done) return 0;
  return 1;
}

static void test_many_in_flight_matched(void **state) {
  fx_t *f = *state;
  two_nodes(f);
  f->hold = 32; /* sh answers the 32 in reverse order */
  call_t c[32] = {0};
  for (int i = 0; i < 32; i++) {
    char body[32];
    snprintf(body, sizeof body, "request-%02d", i);
    assert_int_equal(send_lookup(f, body, 0, &c[i]), 0);
    assert_false(c[i].done); /* never called back from inside the call */
  }
  calls_t cs = {c, 32};
  assert_true(run_until(&f->loop, all_done, &cs, 3000));
  for (int i = 0; i < 32; i++) {
    assert_int_equal(c[i].status, 0);
    assert_true(c[i].matched);
  }
  peer_stats_t st;
  peer_net_stats(f->sh.net, &st);
  assert_int_equal(st.sessions, 1);
  assert_int_equal(st.frames_refused, 0);
}

static int is_done(void *arg) { return ((call_t *)arg)->done; }
static int late_seen(void *arg) {
  peer_stats_t st;
  peer_net_stats(((fx_t *)arg)->js.net, &st);
  return st.late_replies > 0;
}
static void late_answer_cb(uv_timer_t *t) {
  fx_t *f = t->data;
  reply_statement(f, f->held_sess[0], f->held_rid[0], (const uint8_t *)"late", 4);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_request_timeout_and_late_reply(void **state) {
  fx_t *f = *state;
  two_nodes(f);
  f->hold = 1000; /* hold everything */
  call_t c = {0};
  uint64_t t0 = uv_now(&f->loop);
  assert_int_equal(send_lookup(f, "slow", 150, &c), 0);
  assert_true(run_until(&f->loop, is_done, &c, 2000));
  uint64_t took = uv_now(&f->loop) - t0;
  assert_int_equal(c.status, -PEER_E_TIMEOUT);
  assert_true(took >= 150 && took < 1000);
  assert_non_null(strstr(c.detail, "sh"));
  /* The late answer is dropped, and the session still works. */
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  t.data = f;
  uv_timer_start(&t, late_answer_cb, 10, 0);
  assert_true(run_until(&f->loop, late_seen, f, 2000));
  for (int i = 0; i < f->nheld; i++) free(f->held_body[i]);
  f->nheld = 0;
  f->hold = 0;
  call_t ok = {0};
  assert_int_equal(send_lookup(f, "fast", 0, &ok), 0);
  assert_true(run_until(&f->loop, is_done, &ok, 2000));
  assert_int_equal(ok.status, 0);
  assert_true(ok.matched);
  peer_stats_t st;
  peer_net_stats(f->js.net, &st);
  assert_int_equal(st.requests_timed_out, 1);
}

/* ---- reconnect ------------------------------------------------------------ */

static uint16_t free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

typedef struct late_listen {
  fx_t *f;
  uint16_t port;
} late_listen_t;
static void listen_later_cb(uv_timer_t *t) {
  late_listen_t *ll = t->data;
  char err[256];
  uint16_t bound;
  if (peer_net_listen(ll->f->sh.net, "127.0.0.1", ll->port, &bound, err, sizeof err))
    fail_msg("%s", err);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_reconnect_with_backoff(void **state) {
  fx_t *f = *state;
  uint16_t port = free_port();
  start_node(f, &f->sh, "sh", 0);
  start_node(f, &f->js, "js", 0);
  char err[256];
  /* A request made before the link is up waits for it. */
  call_t c = {0};
  assert_int_equal(peer_net_add_link(f->js.net, "sh", "127.0.0.1", port, err, sizeof err), 0);
  assert_int_equal(send_lookup(f, "early", 3000, &c), 0);
  late_listen_t ll = {f, port};
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  t.data = &ll;
  uv_timer_start(&t, listen_later_cb, 500, 0);
  assert_true(run_until(&f->loop, is_done, &c, 4000));
  assert_int_equal(c.status, 0);
  assert_true(c.matched);
  peer_stats_t st;
  peer_net_stats(f->js.net, &st);
  /* With rand = 0 the delays are 20, 40, 80, 160, 200, 200... (base 40,
   * cap 400, half fixed): some attempts failed before sh listened, but
   * not one per millisecond. */
  assert_true(st.reconnects >= 3);
  assert_true(st.reconnects <= 8);
}

static void test_backoff_pure(void **state) {
  (void)state;
  assert_int_equal(peer_backoff_ms(0, 100, 10000, 0), 50);
  assert_int_equal(peer_backoff_ms(0, 100, 10000, UINT32_MAX), 50 + UINT32_MAX % 51);
  assert_int_equal(peer_backoff_ms(3, 100, 10000, 0), 400);
  assert_int_equal(peer_backoff_ms(3, 100, 10000, 400), 800);
  assert_int_equal(peer_backoff_ms(20, 100, 10000, 0), 5000);
  assert_int_equal(peer_backoff_ms(1000, 100, 10000, 5000), 10000);
  for (unsigned a = 0; a < 40; a++)
    for (uint32_t r = 0; r < 2000; r += 97) {
      uint64_t d = peer_backoff_ms(a, 100, 10000, r);
      assert_true(d >= 50 && d <= 10000);
    }
}

/* ---- raw TLS client in a thread ----------------------------------------- */

typedef struct raw {
  fx_t *f;
  tls_ctx_t *ctx;
  int fd;
  tls_session_t *tls;
  /* script */
  const uint8_t *hostile;   /* plaintext bytes sent after Hello */
  size_t hostile_len;
  int close_after_send;     /* truncated frame: close right after sending */
  int lookups;              /* send this many lookups before reading anything */
  int read_delay_ms;
  int flood;                /* open and drop this many plain TCP connections */
  /* results */
  atomic_int done;
  int closed_by_server;
  int replies;
  int error_frames;
  char error_reason[256];
} raw_t;

static int raw_io_out(raw_t *r) {
  uint8_t buf[65536];
  size_t n;
  while ((n = tls_session_out_take(r->tls, buf, sizeof buf)) > 0)
    for (size_t off = 0; off < n;) {
      ssize_t w = send(r->fd, buf + off, n - off, MSG_NOSIGNAL);
      if (w <= 0) return -1;
      off += (size_t)w;
    }
  return 0;
}

static int raw_io_in(raw_t *r) {
  uint8_t buf[65536];
  ssize_t n = recv(r->fd, buf, sizeof buf, 0);
  if (n <= 0) return -1;
  tls_session_feed(r->tls, buf, (size_t)n);
  return 0;
}

static int raw_send_env(raw_t *r, Cb__Envelope *env) {
  uint8_t *fr;
  size_t len;
  env->version = 1;
  if (frame_encode(env, 1 << 20, &fr, &len)) return -1;
  int rc = tls_session_write(r->tls, fr, len);
  free(fr);
  return rc ? -1 : raw_io_out(r);
}

/* Reads frames until EOF or error; counts replies and errors. */
static void raw_drain(raw_t *r) {
  frame_reader_t fr;
  frame_reader_init(&fr, 16 << 20);
  uint8_t plain[65536];
  for (;;) {
    size_t got = 0;
    int rc = tls_session_read(r->tls, plain, sizeof plain, &got);
    if (rc < 0) break;
    if (got == 0) {
      if (raw_io_in(r) < 0) break;
      continue;
    }
    size_t off = 0;
    while (off < got) {
      size_t used;
      int k = frame_reader_feed(&fr, plain + off, got - off, &used);
      off += used;
      if (k < 0) goto out;
      if (k == 0) break;
      Cb__Envelope *env = cb__envelope__unpack(NULL, fr.body_len, fr.body);
      frame_reader_next(&fr);
      if (!env) goto out;
      if (env->msg_case == CB__ENVELOPE__MSG_LOOKUP_RESPONSE) r->replies++;
      if (env->msg_case == CB__ENVELOPE__MSG_PEER_ERROR) {
        r->error_frames++;
        snprintf(r->error_reason, sizeof r->error_reason, "%s", env->peer_error->reason);
      }
      cb__envelope__free_unpacked(env, NULL);
      if (r->lookups && r->replies == r->lookups) goto out;
    }
  }
  r->closed_by_server = 1;
out:
  frame_reader_free(&fr);
}

static int tcp_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void *raw_thread(void *arg) {
  raw_t *r = arg;
  for (int i = 0; i < r->flood; i++) {
    int fd = tcp_connect(r->f->sh_port);
    if (fd >= 0) close(fd);
  }
  if (r->flood) goto done;
  r->fd = tcp_connect(r->f->sh_port);
  if (r->fd < 0 || tls_session_new(r->ctx, &r->tls)) goto done;
  int hs;
  while ((hs = tls_session_handshake(r->tls)) == 0) {
    if (raw_io_out(r) < 0 || raw_io_in(r) < 0) goto done;
  }
  if (hs < 0 || raw_io_out(r) < 0) goto done;
  Cb__PeerHello h;
  cb__peer_hello__init(&h);
  h.node_id = "zj";
  h.protocol_version = 1;
  Cb__Envelope env;
  cb__envelope__init(&env);
  env.msg_case = CB__ENVELOPE__MSG_PEER_HELLO;
  env.peer_hello = &h;
  if (raw_send_env(r, &env) < 0) goto done;
  if (r->hostile_len) {
    if (tls_session_write(r->tls, r->hostile, r->hostile_len) || raw_io_out(r) < 0) goto done;
    if (r->close_after_send) goto done;
  }
  uint8_t pad[64] = {0};
  for (int i = 0; i < r->lookups; i++) {
    Cb__SignedStatement st;
    cb__signed_statement__init(&st);
    st.signer = "zj";
    st.body.data = pad;
    st.body.len = sizeof pad;
    Cb__LookupRequest lr;
    cb__lookup_request__init(&lr);
    lr.request = &st;
    cb__envelope__init(&env);
    env.msg_case = CB__ENVELOPE__MSG_LOOKUP_REQUEST;
    env.lookup_request = &lr;
    env.request_id = (uint64_t)i + 1;
    /* The kernel buffers fill when sh stops reading: send without blocking
     * forever (SO_SNDTIMEO) and stop sending when it refuses. */
    struct timeval tv = {0, 300000};
    setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (raw_send_env(r, &env) < 0) {
      r->lookups = i; /* those fully sent before the stall, roughly */
      break;
    }
  }
  if (r->read_delay_ms) usleep((useconds_t)r->read_delay_ms * 1000);
  raw_drain(r);
done:
  if (r->fd > 0) close(r->fd);
  tls_session_free(r->tls);
  atomic_store(&r->done, 1);
  return NULL;
}

static int raw_done(void *arg) { return atomic_load(&((raw_t *)arg)->done); }

static void run_raw(fx_t *f, raw_t *r) {
  r->f = f;
  r->ctx = mkctx(f, TLS_MODE_PEER_CLIENT, f->zj_key, "zj");
  pthread_t th;
  pthread_create(&th, NULL, raw_thread, r);
  int ok = run_until(&f->loop, raw_done, r, 15000);
  pthread_join(th, NULL);
  tls_ctx_free(r->ctx);
  assert_true(ok);
}

/* After each hostile session, js's session to sh still answers. */
static void js_still_served(fx_t *f) {
  call_t c = {0};
  assert_int_equal(send_lookup(f, "still-there", 0, &c), 0);
  assert_true(run_until(&f->loop, is_done, &c, 2000));
  assert_int_equal(c.status, 0);
  assert_true(c.matched);
}

static uint64_t refused(fx_t *f) {
  peer_stats_t st;
  peer_net_stats(f->sh.net, &st);
  return st.frames_refused;
}

static void hostile(fx_t *f, const uint8_t *bytes, size_t len, int close_after, int expect_error) {
  uint64_t before = refused(f);
  raw_t r = {.hostile = bytes, .hostile_len = len, .close_after_send = close_after};
  run_raw(f, &r);
  if (!close_after) {
    assert_true(r.closed_by_server);
    assert_int_equal(refused(f), before + 1);
  }
  if (expect_error) {
    assert_int_equal(r.error_frames, 1);
    assert_true(strlen(r.error_reason) > 0);
  }
  js_still_served(f);
}

static void test_hostile_frames(void **state) {
  fx_t *f = *state;
  two_nodes(f);
  /* oversized frame length */
  const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3};
  hostile(f, big, sizeof big, 0, 0);
  /* malformed protobuf */
  const uint8_t junk[] = {0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff};
  hostile(f, junk, sizeof junk, 0, 1);
  /* unknown message type: version 1, field 99 (varint) */
  const uint8_t unknown[] = {0, 0, 0, 5, 0x08, 0x01, 0x98, 0x06, 0x01};
  hostile(f, unknown, sizeof unknown, 0, 1);
  /* an operator message on a peer session */
  Cb__HelloRequest hr;
  cb__hello_request__init(&hr);
  hr.client = "cbctl";
  Cb__Envelope env;
  cb__envelope__init(&env);
  env.version = 1;
  env.msg_case = CB__ENVELOPE__MSG_HELLO_REQUEST;
  env.hello_request = &hr;
  uint8_t *fr;
  size_t len;
  assert_int_equal(frame_encode(&env, 1 << 20, &fr, &len), 0);
  hostile(f, fr, len, 0, 1);
  free(fr);
  /* truncated frame: announces 100 bytes, sends 10, hangs up */
  const uint8_t trunc[] = {0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  hostile(f, trunc, sizeof trunc, 1, 0);
  /* wrong version */
  const uint8_t v2[] = {0, 0, 0, 2, 0x08, 0x02};
  hostile(f, v2, sizeof v2, 0, 1);
}

static int sh_no_inbound_left(void *arg) {
  fx_t *f = arg;
  peer_stats_t st;
  peer_net_stats(f->sh.net, &st);
  return st.sessions == 1; /* only js's */
}

static int sh_handshake_timed_out(void *arg) {
  peer_stats_t st;
  peer_net_stats(((fx_t *)arg)->sh.net, &st);
  return st.handshake_timeouts == 1;
}

static void test_silent_client_and_flood(void **state) {
  fx_t *f = *state;
  two_nodes(f);
  /* A client that opens TCP and never speaks: closed after the handshake
   * timeout (300 ms here). */
  int fd = tcp_connect(f->sh_port);
  assert_true(fd >= 0);
  uint64_t t0 = uv_now(&f->loop);
  peer_stats_t st;
  assert_true(run_until(&f->loop, sh_handshake_timed_out, f, 3000));
  assert_true(uv_now(&f->loop) - t0 >= 250);
  char b;
  assert_int_equal(recv(fd, &b, 1, 0), 0); /* EOF from sh */
  close(fd);
  /* 1,000 connections opened and dropped. */
  raw_t r = {.flood = 1000};
  run_raw(f, &r);
  assert_true(run_until(&f->loop, sh_no_inbound_left, f, 5000));
  peer_net_stats(f->sh.net, &st);
  assert_true(st.accepted + st.refused_over_limit >= 1000);
  js_still_served(f);
}

static void test_back_pressure(void **state) {
  fx_t *f = *state;
  two_nodes(f);
  f->reply_pad = 60000; /* each answer ~60 KB */
  raw_t r = {.lookups = 400, .read_delay_ms = 800};
  run_raw(f, &r);
  peer_stats_t st;
  peer_net_stats(f->sh.net, &st);
  print_message("back-pressure: %d lookups sent, %d answered, %llu pauses, max queue %zu bytes\n",
                r.lookups, r.replies, (unsigned long long)st.reads_paused, st.max_queued_bytes);
  /* sh stopped reading from zj while zj did not drain its answers, so its
   * queue stayed near the bound (256 KB + one answer), not 400 * 60 KB. */
  assert_true(st.reads_paused >= 1);
  assert_true(st.max_queued_bytes <= 256 * 1024 + 70000);
  /* and once zj read, everything it had sent was answered */
  assert_true(r.lookups > 0);
  assert_int_equal(r.replies, r.lookups);
  f->reply_pad = 0;
  js_still_served(f);
}

static void test_peer_not_reading_is_dropped(void **state) {
  fx_t *f = *state;
  f->idle_ms = 600;
  two_nodes(f);
  f->reply_pad = 60000;
  raw_t r = {.lookups = 400, .read_delay_ms = 2500};
  run_raw(f, &r);
  peer_stats_t st;
  peer_net_stats(f->sh.net, &st);
  /* sh paused, saw no write progress for a whole idle period, and closed
   * the session rather than hold its slot and queue forever. */
  assert_true(st.reads_paused >= 1);
  assert_true(st.idle_timeouts >= 1);
  assert_true(r.closed_by_server);
  assert_true(r.replies < r.lookups);
  assert_true(st.max_queued_bytes <= 256 * 1024 + 70000);
  f->reply_pad = 0;
  js_still_served(f); /* js answers pings, so its session stayed */
}

/* ---- registry reload: links removed and moved, sessions rechecked, TLS switched */

static int nheld_is_1(void *arg) { return ((fx_t *)arg)->nheld == 1; }
static int no_sessions_sh(void *arg) {
  peer_stats_t st;
  peer_net_stats(((fx_t *)arg)->sh.net, &st);
  return st.sessions == 0;
}
static int js_link_down(void *arg) { return !peer_net_link_up(((fx_t *)arg)->js.net, "sh"); }

static void test_remove_link(void **state) {
  fx_t *f = *state;
  two_nodes(f);
  f->hold = 1000;
  call_t sent = {0}, queued = {0};
  assert_int_equal(send_lookup(f, "held", 3000, &sent), 0);
  assert_true(run_until(&f->loop, nheld_is_1, f, 2000)); /* on the wire, unanswered */
  assert_int_equal(peer_net_remove_link(f->js.net, "sh", "no longer a member"), 0);
  /* Pending requests fail at once, with the node and reason named. */
  assert_true(sent.done);
  assert_int_equal(sent.status, -PEER_E_REMOVED);
  assert_non_null(strstr(sent.detail, "link to sh removed: no longer a member"));
  assert_false(peer_net_link_up(f->js.net, "sh"));
  assert_int_equal(send_lookup(f, "after", 100, &queued), -PEER_E_NO_LINK);
  assert_int_equal(peer_net_remove_link(f->js.net, "sh", NULL), -PEER_E_NO_LINK);
  /* The session is closed at both ends and js does not reconnect. */
  assert_true(run_until(&f->loop, no_sessions_sh, f, 2000));
  assert_false(run_until(&f->loop, js_link_up, f, 300)); /* would come up if js reconnected */
  peer_stats_t st;
  peer_net_stats(f->js.net, &st);
  assert_int_equal(st.sessions, 0);
  assert_int_equal(st.links_up, 0);
  peer_net_stats(f->sh.net, &st);
  assert_int_equal(st.sessions, 0);
  for (int i = 0; i < f->nheld; i++) free(f->held_body[i]);
  f->nheld = 0;
  f->hold = 0;
  /* Member back: a new link works again. */
  char err[256];
  assert_int_equal(peer_net_add_link(f->js.net, "sh", "127.0.0.1", f->sh_port, err, sizeof err), 0);
  assert_true(run_until(&f->loop, js_link_up, f, 3000));
  call_t ok = {0};
  assert_int_equal(send_lookup(f, "again", 0, &ok), 0);
  assert_true(run_until(&f->loop, is_done, &ok, 2000));
  assert_int_equal(ok.status, 0);
  assert_true(ok.matched);
}

static void test_update_link(void **state) {
  fx_t *f = *state;
  uint16_t wrong = free_port();
  start_node(f, &f->sh, "sh", 1);
  start_node(f, &f->js, "js", 0);
  char err[256];
  assert_int_equal(peer_net_add_link(f->js.net, "sh", "127.0.0.1", wrong, err, sizeof err), 0);
  call_t c = {0};
  assert_int_equal(send_lookup(f, "waits", 3000, &c), 0);
  assert_false(run_until(&f->loop, js_link_up, f, 150)); /* nobody listens there */
  /* Moved to where sh listens: connects at once, the waiting request goes. */
  uint64_t t0 = uv_now(&f->loop);
  assert_int_equal(peer_net_update_link(f->js.net, "sh", "127.0.0.1", f->sh_port, err, sizeof err), 1);
  assert_true(run_until(&f->loop, is_done, &c, 2000));
  assert_true(uv_now(&f->loop) - t0 < 1000);
  assert_int_equal(c.status, 0);
  assert_true(c.matched);
  /* Same endpoint: nothing happens. */
  assert_int_equal(peer_net_update_link(f->js.net, "sh", "127.0.0.1", f->sh_port, err, sizeof err), 0);
  assert_true(peer_net_link_up(f->js.net, "sh"));
  /* Moved away: the live session to the old endpoint closes. */
  assert_int_equal(peer_net_update_link(f->js.net, "sh", "127.0.0.1", wrong, err, sizeof err), 1);
  assert_true(run_until(&f->loop, js_link_down, f, 1000));
  assert_true(run_until(&f->loop, no_sessions_sh, f, 2000));
  /* Bad arguments and unknown links name what is wrong and change nothing. */
  assert_int_equal(peer_net_update_link(f->js.net, "sh", "", 1, err, sizeof err), -PEER_E_ARG);
  assert_int_equal(peer_net_update_link(f->js.net, "zj", "127.0.0.1", 1, err, sizeof err),
                   -PEER_E_NO_LINK);
  assert_non_null(strstr(err, "no link to zj"));
  assert_int_equal(peer_net_update_link(f->js.net, "sh", "127.0.0.1", f->sh_port, err, sizeof err), 1);
  assert_true(run_until(&f->loop, js_link_up, f, 2000));
}

static int keep_none_js(const char *node, const uint8_t key[32], void *arg) {
  (void)key;
  (void)arg;
  return strcmp(node, "js") != 0;
}
static int keep_all(const char *node, const uint8_t key[32], void *arg) {
  (void)node;
  (void)key;
  (void)arg;
  return 1;
}

static void test_recheck_sessions(void **state) {
  fx_t *f = *state;
  two_nodes(f);
  assert_int_equal(peer_net_recheck_sessions(f->sh.net, keep_all, NULL, "x"), 0);
  assert_true(peer_net_link_up(f->js.net, "sh"));
  /* sh drops js's inbound session; js's link sees it go down. */
  assert_int_equal(peer_net_recheck_sessions(f->sh.net, keep_none_js, NULL, "js no longer valid"), 1);
  assert_true(run_until(&f->loop, js_link_down, f, 1000));
  /* js keeps its link and reconnects (this keep() is a one-time check). */
  assert_true(run_until(&f->loop, js_link_up, f, 3000));
}

typedef struct in_use_arg {
  fx_t *f;
  tls_ctx_t *ctx;
} in_use_arg_t;
static int ctx_unused(void *arg) {
  in_use_arg_t *a = arg;
  return !peer_net_tls_in_use(a->f->sh.net, a->ctx);
}

static void test_switch_tls(void **state) {
  fx_t *f = *state;
  two_nodes(f);
  /* sh gets a second key (seed 4), listed next to the first. */
  EVP_PKEY *k4 = test_key_seeded(4);
  char a[65], b[65], d[65], json[2048], err[256];
  test_key_hex(f->sh.key, a);
  test_key_hex(f->js.key, b);
  test_key_hex(k4, d);
  snprintf(json, sizeof json,
           "{\"version\":1,\"federation_key\":\"%064d\",\"members\":["
           "{\"node_id\":\"sh\",\"region\":\"sh\",\"endpoint\":\"127.0.0.1:1\",\"keys\":["
           "{\"public_key\":\"%s\",\"not_before\":0},{\"public_key\":\"%s\",\"not_before\":1}]},"
           "{\"node_id\":\"js\",\"region\":\"js\",\"endpoint\":\"127.0.0.1:2\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]}]}",
           0, a, d, b);
  registry_t *reg2;
  if (registry_parse(json, strlen(json), &reg2, err, sizeof err)) fail_msg("%s", err);
  tls_ctx_set_registry(f->js.cli, reg2);
  registry_t *keep_reg = f->reg;
  f->reg = reg2;
  tls_ctx_t *old_srv = f->sh.srv, *old_cli = f->sh.cli;
  f->sh.srv = mkctx(f, TLS_MODE_PEER_SERVER, k4, "sh");
  f->sh.cli = mkctx(f, TLS_MODE_PEER_CLIENT, k4, "sh");
  peer_net_set_tls(f->sh.net, f->sh.srv, f->sh.cli);
  /* The open session continues on the old context. */
  assert_true(peer_net_tls_in_use(f->sh.net, old_srv));
  assert_false(peer_net_tls_in_use(f->sh.net, old_cli));
  call_t c = {0};
  assert_int_equal(send_lookup(f, "still", 0, &c), 0);
  assert_true(run_until(&f->loop, is_done, &c, 2000));
  assert_int_equal(c.status, 0);
  /* A new session uses key 4, which js verifies against the new registry. */
  assert_int_equal(peer_net_recheck_sessions(f->sh.net, keep_none_js, NULL, "rotate"), 1);
  in_use_arg_t ua = {f, old_srv};
  assert_true(run_until(&f->loop, ctx_unused, &ua, 2000));
  assert_true(run_until(&f->loop, js_link_up, f, 3000));
  assert_false(peer_net_tls_in_use(f->sh.net, old_srv));
  call_t c2 = {0};
  assert_int_equal(send_lookup(f, "rotated", 0, &c2), 0);
  assert_true(run_until(&f->loop, is_done, &c2, 2000));
  assert_int_equal(c2.status, 0);
  assert_true(c2.matched);
  tls_ctx_free(old_srv);
  tls_ctx_free(old_cli);
  EVP_PKEY_free(k4);
  registry_release(keep_reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backoff_pure),
      cmocka_unit_test_setup_teardown(test_many_in_flight_matched, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_timeout_and_late_reply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reconnect_with_backoff, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hostile_frames, setup, teardown),
      cmocka_unit_test_setup_teardown(test_silent_client_and_flood, setup, teardown),
      cmocka_unit_test_setup_teardown(test_back_pressure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_peer_not_reading_is_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remove_link, setup, teardown),
      cmocka_unit_test_setup_teardown(test_update_link, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recheck_sessions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_switch_tls, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
