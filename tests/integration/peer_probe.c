/* peer_probe: a misbehaving (or merely scripted) federation member for the
 * integration tests (test_federation*.py). Speaks the real peer protocol
 * (TLS 1.3 via node/tls.h, frames, Hello) over blocking sockets, and lets a
 * test choose what an honest node never does: replay a nonce, date a
 * request outside the clock skew, sign with a key the registry does not
 * know or no longer accepts, claim another requester, or, as a server,
 * answer with a tampered or wrongly signed statement. One JSON object per
 * line on stdout says what came back.
 *
 *   peer_probe client --connect HOST:PORT --registry FILE --tls-key PEM --node ID
 *                     --target ID [--sign-key PEM] [--requester ID]
 *                     [--time-offset-ms N] [--send N] [--ref HEX64]
 *   peer_probe serve  --listen HOST:PORT --registry FILE --tls-key PEM --node ID
 *                     [--sign-key PEM --signer ID] [--tamper body|sig|stall]
 *                     [--count N] [--max-seconds S] [--only ID]
 * Exit: 0 ran to the end (whatever the peer answered), 1 could not run. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "frame.h"
#include "peer.h"
#include "peer_lookup.h"
#include "tls.h"

typedef struct conn {
  int fd;
  tls_session_t *tls;
  uint8_t buf[1 << 20];
  size_t have;
} conn_t;

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void out(json_t *j)
{
  char *s = json_dumps(j, JSON_COMPACT);
  printf("%s\n", s);
  fflush(stdout);
  free(s);
  json_decref(j);
}

static int flush_out(conn_t *c)
{
  uint8_t b[16384];
  while (tls_session_out_pending(c->tls)) {
    size_t n = tls_session_out_take(c->tls, b, sizeof b);
    size_t off = 0;
    while (off < n) {
      ssize_t w = write(c->fd, b + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return -1;
      off += (size_t)w;
    }
  }
  return 0;
}

/* Reads ciphertext within timeout_ms: 1 got some, 0 timeout, -1 closed. */
static int read_in(conn_t *c, int timeout_ms)
{
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  int r = poll(&p, 1, timeout_ms);
  if (r == 0) return 0;
  uint8_t b[16384];
  ssize_t n = read(c->fd, b, sizeof b);
  if (n <= 0) return -1;
  tls_session_feed(c->tls, b, (size_t)n);
  return 1;
}

static int handshake(conn_t *c, char *err, size_t errlen)
{
  for (int rounds = 0; rounds < 200; rounds++) {
    int rc = tls_session_handshake(c->tls);
    if (flush_out(c) != 0) {
      snprintf(err, errlen, "write failed");
      return -1;
    }
    if (rc == 1) return 0;
    if (rc < 0) {
      snprintf(err, errlen, "%s", tls_session_error(c->tls));
      return -1;
    }
    int r = read_in(c, 5000);
    if (r <= 0) {
      snprintf(err, errlen, "%s", r == 0 ? "handshake timeout" : "connection closed during handshake");
      return -1;
    }
  }
  snprintf(err, errlen, "handshake did not finish");
  return -1;
}

static int send_env(conn_t *c, Cb__Envelope *env)
{
  env->version = 1;
  uint8_t *b;
  size_t n;
  if (frame_encode(env, 8u << 20, &b, &n) != 0) return -1;
  int rc = tls_session_write(c->tls, b, n);
  free(b);
  return rc == 0 ? flush_out(c) : -1;
}

/* Next Envelope (caller frees), NULL on close/timeout with why in err. */
static Cb__Envelope *recv_env(conn_t *c, int timeout_ms, char *err, size_t errlen)
{
  for (;;) {
    if (c->have >= 4) {
      uint32_t n = (uint32_t)c->buf[0] << 24 | (uint32_t)c->buf[1] << 16 | (uint32_t)c->buf[2] << 8 | c->buf[3];
      if (n > sizeof c->buf - 4) {
        snprintf(err, errlen, "frame of %u bytes", n);
        return NULL;
      }
      if (c->have >= 4 + n) {
        Cb__Envelope *e = cb__envelope__unpack(NULL, n, c->buf + 4);
        memmove(c->buf, c->buf + 4 + n, c->have - 4 - n);
        c->have -= 4 + n;
        if (!e) snprintf(err, errlen, "malformed envelope");
        return e;
      }
    }
    size_t got = 0;
    int rc = tls_session_read(c->tls, c->buf + c->have, sizeof c->buf - c->have, &got);
    if (rc < 0) {
      snprintf(err, errlen, "%s", tls_session_error(c->tls));
      return NULL;
    }
    if (got) {
      c->have += got;
      continue;
    }
    flush_out(c);
    int r = read_in(c, timeout_ms);
    if (r <= 0) {
      snprintf(err, errlen, "%s", r == 0 ? "timeout" : "connection closed");
      return NULL;
    }
  }
}

static int send_hello(conn_t *c, const char *node)
{
  Cb__Envelope e = CB__ENVELOPE__INIT;
  Cb__PeerHello h = CB__PEER_HELLO__INIT;
  char *caps[] = {(char *)PEER_CAP_LOOKUP};
  h.node_id = (char *)node;
  h.protocol_version = PEER_PROTOCOL_VERSION;
  h.capabilities = caps;
  h.n_capabilities = 1;
  h.time_ms = wall_ms();
  e.msg_case = CB__ENVELOPE__MSG_PEER_HELLO;
  e.peer_hello = &h;
  return send_env(c, &e);
}

/* Waits for the peer's Hello, answering pings. */
static int await_hello(conn_t *c, char *err, size_t errlen)
{
  Cb__Envelope *e = recv_env(c, 5000, err, errlen);
  if (!e) return -1;
  int ok = e->msg_case == CB__ENVELOPE__MSG_PEER_HELLO;
  if (!ok) snprintf(err, errlen, "first message is not Hello");
  cb__envelope__free_unpacked(e, NULL);
  return ok ? 0 : -1;
}

static int split_hp(const char *s, struct sockaddr_in *sa)
{
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)atoi(colon + 1));
  return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

typedef struct opts {
  const char *mode, *addr, *registry, *tls_key, *node, *target, *sign_key, *signer, *tamper, *ref_hex, *only;
  int64_t time_offset_ms;
  int send, count, max_seconds;
} opts_t;

static int parse_hex32(const char *h, uint8_t out[32])
{
  if (strlen(h) != 64) return -1;
  for (int i = 0; i < 32; i++) {
    unsigned v;
    if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  return 0;
}

static json_t *describe_reply(const Cb__Envelope *e, const registry_t *reg, const Cb__SignedStatement *req,
                              const char *target)
{
  if (e->msg_case == CB__ENVELOPE__MSG_PEER_ERROR) {
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&cb__peer_error_code__descriptor, (int)e->peer_error->code);
    return json_pack("{s:s, s:i, s:s, s:s}", "reply", "peer_error", "code", (int)e->peer_error->code, "name",
                     v ? v->name : "?", "reason", e->peer_error->reason ? e->peer_error->reason : "");
  }
  if (e->msg_case == CB__ENVELOPE__MSG_LOOKUP_RESPONSE && e->lookup_response->response) {
    Cb__LookupResponseBody *b = NULL;
    char err[512] = "";
    int rc = peer_lookup_check_response(reg, req, target, e->lookup_response->response, &b, err, sizeof err);
    json_t *j = json_pack("{s:s, s:b, s:s}", "reply", "lookup_response", "verified", rc == 0, "error", err);
    if (b) {
      json_object_set_new(j, "found", json_boolean(b->found));
      json_object_set_new(j, "achievements", json_integer((json_int_t)b->n_achievements));
      cb__lookup_response_body__free_unpacked(b, NULL);
    }
    return j;
  }
  return json_pack("{s:s, s:i}", "reply", "other", "msg_case", (int)e->msg_case);
}

static int run_client(const opts_t *o, registry_t *reg, EVP_PKEY *tkey, EVP_PKEY *skey)
{
  struct sockaddr_in sa;
  uint8_t ref[32] = {0}, nonce[16];
  if (split_hp(o->addr, &sa) != 0) return fprintf(stderr, "peer_probe: bad --connect\n"), 1;
  if (o->ref_hex && parse_hex32(o->ref_hex, ref) != 0) return fprintf(stderr, "peer_probe: bad --ref\n"), 1;
  tls_config_t tc = {.mode = TLS_MODE_PEER_CLIENT, .key = tkey, .cert_name = o->node, .registry = reg};
  tls_ctx_t *ctx;
  char err[512];
  if (tls_ctx_new(&tc, &ctx, err, sizeof err) != 0) return fprintf(stderr, "peer_probe: %s\n", err), 1;
  int rc = 0;
  Cb__SignedStatement st; /* zeroed: sigstmt_statement_clear frees its fields */
  memset(&st, 0, sizeof st);
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return 1;
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    out(json_pack("{s:s}", "connect_error", strerror(errno)));
    goto done;
  }
  tls_session_new(ctx, &c->tls);
  tls_session_expect_peer(c->tls, o->target);
  if (handshake(c, err, sizeof err) != 0 || send_hello(c, o->node) != 0 || await_hello(c, err, sizeof err) != 0) {
    out(json_pack("{s:s}", "session_error", err));
    goto done;
  }
  out(json_pack("{s:b}", "session", 1));
  RAND_bytes(nonce, sizeof nonce);
  sigstmt_signer_t signer = {o->signer ? o->signer : o->node, skey};
  if (peer_lookup_make_request(&signer, o->target, "probe-operator", "integration test", ref, nonce,
                               wall_ms() + o->time_offset_ms, &st, err, sizeof err) != 0) {
    fprintf(stderr, "peer_probe: %s\n", err);
    rc = 1;
    goto done;
  }
  for (int i = 0; i < o->send; i++) {
    Cb__Envelope e = CB__ENVELOPE__INIT;
    Cb__LookupRequest lr = CB__LOOKUP_REQUEST__INIT;
    lr.request = &st;
    e.request_id = (uint64_t)i + 1;
    e.msg_case = CB__ENVELOPE__MSG_LOOKUP_REQUEST;
    e.lookup_request = &lr;
    if (send_env(c, &e) != 0) {
      out(json_pack("{s:s}", "send_error", "write failed"));
      break;
    }
    Cb__Envelope *r;
    while ((r = recv_env(c, 5000, err, sizeof err)) && r->msg_case == CB__ENVELOPE__MSG_PEER_PING)
      cb__envelope__free_unpacked(r, NULL);
    if (!r) {
      out(json_pack("{s:s}", "recv_error", err));
      break;
    }
    out(describe_reply(r, reg, &st, o->target));
    cb__envelope__free_unpacked(r, NULL);
  }
done:
  sigstmt_statement_clear(&st);
  tls_session_free(c->tls);
  close(c->fd);
  free(c);
  tls_ctx_free(ctx);
  return rc;
}

/* Answers lookups with a synthetic achievement, tampered as asked. */
static void serve_lookup(conn_t *c, const opts_t *o, EVP_PKEY *skey, const Cb__Envelope *e)
{
  const Cb__SignedStatement *req = e->lookup_request->request;
  if (o->tamper && !strcmp(o->tamper, "stall")) return; /* a slow peer: never answers */
  Cb__LookupRequestBody *q = cb__lookup_request_body__unpack(NULL, req->body.len, req->body.data);
  if (!q || q->learner_ref.len != 32) return;
  Cb__Achievement a = CB__ACHIEVEMENT__INIT;
  Cb__Depositor d = CB__DEPOSITOR__INIT;
  a.id = 1;
  a.learner_ref = q->learner_ref;
  a.kind = CB__ACHIEVEMENT_KIND__ACADEMIC_COURSE;
  a.issuer = "10335";
  a.code = "PROBE1";
  a.title = "probe course";
  a.level = "";
  a.score = "90";
  a.credits_milli = 3000;
  a.awarded_on = 20240630;
  d.role = CB__DEPOSITOR_ROLE__OUTLET;
  d.code = "X";
  d.name = "X";
  a.depositor = &d;
  Cb__Achievement *list[] = {&a};
  sigstmt_signer_t signer = {o->signer ? o->signer : o->node, skey};
  Cb__SignedStatement st; /* zeroed: sigstmt_statement_clear frees its fields */
  memset(&st, 0, sizeof st);
  char err[256];
  if (peer_lookup_make_response(&signer, req, q->learner_ref.data, 1, list, 1, wall_ms(), &st, err, sizeof err) == 0) {
    if (o->tamper && !strcmp(o->tamper, "body")) st.body.data[st.body.len / 2] ^= 0x01;
    if (o->tamper && !strcmp(o->tamper, "sig")) st.signature.data[10] ^= 0x80;
    Cb__Envelope r = CB__ENVELOPE__INIT;
    Cb__LookupResponse lr = CB__LOOKUP_RESPONSE__INIT;
    lr.response = &st;
    r.request_id = e->request_id;
    r.msg_case = CB__ENVELOPE__MSG_LOOKUP_RESPONSE;
    r.lookup_response = &lr;
    send_env(c, &r);
  }
  sigstmt_statement_clear(&st);
  cb__lookup_request_body__free_unpacked(q, NULL);
}

static int run_serve(const opts_t *o, registry_t *reg, EVP_PKEY *tkey, EVP_PKEY *skey)
{
  struct sockaddr_in sa;
  if (split_hp(o->addr, &sa) != 0) return fprintf(stderr, "peer_probe: bad --listen\n"), 1;
  tls_config_t tc = {.mode = TLS_MODE_PEER_SERVER, .key = tkey, .cert_name = o->node, .registry = reg};
  tls_ctx_t *ctx;
  char err[512];
  if (tls_ctx_new(&tc, &ctx, err, sizeof err) != 0) return fprintf(stderr, "peer_probe: %s\n", err), 1;
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 8) != 0)
    return fprintf(stderr, "peer_probe: listen: %s\n", strerror(errno)), 1;
  out(json_pack("{s:b}", "listening", 1));
  int64_t end = wall_ms() + (int64_t)o->max_seconds * 1000;
  int served = 0;
  conn_t *c = calloc(1, sizeof *c);
  while (served < o->count && wall_ms() < end) {
    struct pollfd p = {.fd = l, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0) continue;
    c->fd = accept(l, NULL, NULL);
    c->have = 0;
    if (c->fd < 0) continue;
    tls_session_new(ctx, &c->tls);
    /* Other members' links reach this port too: with --only, anyone else is
     * turned away at once so that the one client we want gets in. */
    int wanted = handshake(c, err, sizeof err) == 0 &&
                 (!o->only || !strcmp(tls_session_peer_node(c->tls) ? tls_session_peer_node(c->tls) : "", o->only));
    if (wanted && send_hello(c, o->node) == 0 && await_hello(c, err, sizeof err) == 0) {
      while (served < o->count && wall_ms() < end) {
        Cb__Envelope *e = recv_env(c, 1000, err, sizeof err);
        if (!e && !strcmp(err, "timeout")) continue; /* quiet is fine: keep the session */
        if (!e) break;
        if (e->msg_case == CB__ENVELOPE__MSG_PEER_PING) {
          Cb__Envelope r = CB__ENVELOPE__INIT;
          Cb__PeerPong pong = CB__PEER_PONG__INIT;
          pong.nonce = e->peer_ping->nonce;
          r.request_id = e->request_id;
          r.msg_case = CB__ENVELOPE__MSG_PEER_PONG;
          r.peer_pong = &pong;
          send_env(c, &r);
        } else if (e->msg_case == CB__ENVELOPE__MSG_LOOKUP_REQUEST && e->lookup_request->request) {
          serve_lookup(c, o, skey, e);
          served++;
        }
        cb__envelope__free_unpacked(e, NULL);
      }
    }
    /* Give the last answer time to leave before closing. */
    if (wanted) usleep(200000);
    tls_session_free(c->tls);
    close(c->fd);
  }
  out(json_pack("{s:i}", "served", served));
  free(c);
  close(l);
  tls_ctx_free(ctx);
  return 0;
}

int main(int argc, char **argv)
{
  opts_t o = {.send = 1, .count = 1, .max_seconds = 20};
  if (argc < 2) goto usage;
  o.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--connect") || !strcmp(k, "--listen")) o.addr = v;
    else if (!strcmp(k, "--registry")) o.registry = v;
    else if (!strcmp(k, "--tls-key")) o.tls_key = v;
    else if (!strcmp(k, "--node")) o.node = v;
    else if (!strcmp(k, "--target")) o.target = v;
    else if (!strcmp(k, "--sign-key")) o.sign_key = v;
    else if (!strcmp(k, "--signer") || !strcmp(k, "--requester")) o.signer = v;
    else if (!strcmp(k, "--tamper")) o.tamper = v;
    else if (!strcmp(k, "--only")) o.only = v;
    else if (!strcmp(k, "--ref")) o.ref_hex = v;
    else if (!strcmp(k, "--time-offset-ms")) o.time_offset_ms = strtoll(v, NULL, 10);
    else if (!strcmp(k, "--send")) o.send = atoi(v);
    else if (!strcmp(k, "--count")) o.count = atoi(v);
    else if (!strcmp(k, "--max-seconds")) o.max_seconds = atoi(v);
    else goto usage;
  }
  if (!o.addr || !o.registry || !o.tls_key || !o.node) goto usage;
  char err[512];
  registry_t *reg;
  EVP_PKEY *tkey, *skey;
  if (registry_load(o.registry, &reg, err, sizeof err) != 0 || sigstmt_key_load(o.tls_key, &tkey, err, sizeof err) != 0 ||
      sigstmt_key_load(o.sign_key ? o.sign_key : o.tls_key, &skey, err, sizeof err) != 0) {
    fprintf(stderr, "peer_probe: %s\n", err);
    return 1;
  }
  int rc;
  if (!strcmp(o.mode, "client") && o.target) rc = run_client(&o, reg, tkey, skey);
  else if (!strcmp(o.mode, "serve")) rc = run_serve(&o, reg, tkey, skey);
  else goto usage;
  EVP_PKEY_free(tkey);
  EVP_PKEY_free(skey);
  registry_release(reg);
  return rc;
usage:
  fprintf(stderr, "usage: see the comment at the top of tests/integration/peer_probe.c\n");
  return 2;
}
