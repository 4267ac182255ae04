/* Federation wiring of the daemon: see node_peer.h and spec/protocol.md
 * "The node's wiring". Runs on the node's loop thread. */
#include "node_peer.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "identity.h"

/* An answer signed and waiting for its access-log entry to commit. */
typedef struct answer {
  uint64_t session, rid;
  char peer[REGISTRY_NODE_ID_MAX + 1];
  Cb__SignedStatement resp;
  uint8_t *entry;               /* packed AccessLogEntry */
  size_t len;
  uint8_t ref[STORE_REF_LEN];
  uint8_t id[32];               /* SHA-256 of the request body; the key uses 8 bytes */
  int64_t now;
  char operator_id[PEER_LOOKUP_TEXT_MAX + 1];
  char purpose[PEER_LOOKUP_TEXT_MAX + 1];
  int found;
  size_t n;
} answer_t;

struct node_peer {
  node_t *n;
  registry_t *reg;
  tls_ctx_t *server_tls;
  tls_ctx_t *client_tls;
  peer_net_t *net;
  replay_cache_t *replay;
  store_access *access;
  uv_signal_t sighup;
  int sighup_ready;
  uv_check_t flush;             /* group commit of the access log (flush_answers) */
  int flush_ready;
  answer_t *queue;              /* NODE_PEER_BATCH_MAX answers */
  size_t nq;
  int closing;
  uint8_t pub[IDENTITY_PUBKEY_BYTES];
  uint64_t answered;
  uint64_t refused;
  uint64_t commits;             /* access-log transactions (answered / commits = batch) */
  /* Last state logged per peer, so a peer that stays down while we retry
   * is logged once, not at every reconnect attempt. */
  struct {
    char node_id[REGISTRY_NODE_ID_MAX + 1];
    int up;
  } seen[REGISTRY_MAX_MEMBERS];
  size_t nseen;
};

/* ---- registry checks ------------------------------------------------------ */

static void hex32(const uint8_t *p, char out[65])
{
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* This node must be in reg as itself, with its region, the federation key
 * it derives learner_ref from, and its identity key. */
static int check_self(node_t *n, const uint8_t pub[32], const registry_t *reg, int64_t now_ms,
                      char *err, size_t errlen)
{
  const registry_member_t *self = registry_find_member(reg, n->cfg.id);
  if (!self) {
    snprintf(err, errlen, "%s: node id '%s' is not a member of the registry", n->cfg.registry_file,
             n->cfg.id);
    return -1;
  }
  if (strcmp(self->region, n->cfg.region) != 0) {
    snprintf(err, errlen, "%s: member '%s' has region '%s', the config says '%s'",
             n->cfg.registry_file, n->cfg.id, self->region, n->cfg.region);
    return -1;
  }
  if (CRYPTO_memcmp(registry_federation_key(reg), n->fedkey, sizeof n->fedkey) != 0) {
    snprintf(err, errlen, "%s: federation_key differs from %s (learner_ref would not agree)",
             n->cfg.registry_file, n->cfg.federation_key_file);
    return -1;
  }
  int rc = registry_key_valid_at(self, pub, now_ms);
  if (rc) {
    char hex[65];
    hex32(pub, hex);
    snprintf(err, errlen, "%s: identity key %s (%s) of '%s': %s", n->cfg.registry_file, hex,
             n->cfg.identity_key_file, n->cfg.id, registry_strerror(rc));
    return -1;
  }
  return 0;
}

static int split_endpoint(const char *ep, char *host, size_t hostcap, uint16_t *port)
{
  const char *colon = strrchr(ep, ':');
  if (!colon || (size_t)(colon - ep) >= hostcap) return -1;
  memcpy(host, ep, (size_t)(colon - ep));
  host[colon - ep] = '\0';
  long p = strtol(colon + 1, NULL, 10);
  if (p < 1 || p > 65535) return -1;
  *port = (uint16_t)p;
  return 0;
}

/* Links to every other member not linked yet (peer.h keeps no way to drop
 * or move a link: a removed member or a changed endpoint needs a restart,
 * which the reload log line says). */
static void add_links(node_peer_t *p, const registry_t *old)
{
  node_t *n = p->n;
  for (size_t i = 0; i < registry_member_count(p->reg); i++) {
    const registry_member_t *m = registry_member_at(p->reg, i);
    if (strcmp(m->node_id, n->cfg.id) == 0) continue;
    const registry_member_t *was = old ? registry_find_member(old, m->node_id) : NULL;
    if (was) {
      if (strcmp(was->host, m->host) != 0 || was->port != m->port)
        log_pack(LOG_WARN, "peer_endpoint_changed", "{s:s, s:s, s:i, s:s}", "peer", m->node_id,
                 "host", m->host, "port", (int)m->port, "note",
                 "the running link keeps the old endpoint until restart");
      continue;
    }
    char err[256];
    if (peer_net_add_link(p->net, m->node_id, m->host, m->port, err, sizeof err) != 0)
      log_pack(LOG_ERROR, "peer_link_failed", "{s:s, s:s}", "peer", m->node_id, "error", err);
    else
      log_pack(LOG_INFO, "peer_link", "{s:s, s:s, s:s, s:i}", "peer", m->node_id, "region",
               m->region, "host", m->host, "port", (int)m->port);
  }
  if (!old) return;
  for (size_t i = 0; i < registry_member_count(old); i++) {
    const registry_member_t *m = registry_member_at(old, i);
    if (!registry_find_member(p->reg, m->node_id))
      log_pack(LOG_WARN, "peer_member_removed", "{s:s, s:s}", "peer", m->node_id, "note",
               "no longer trusted (TLS and signatures refuse it); its link closes at restart");
  }
}

int node_peer_reload(node_t *n, char *err, size_t errlen)
{
  node_peer_t *p = n->peer;
  if (!p || p->closing) {
    snprintf(err, errlen, "no federation registry configured");
    return -1;
  }
  registry_t *reg = NULL;
  if (registry_load(n->cfg.registry_file, &reg, err, errlen) != 0) return -1;
  if (check_self(n, p->pub, reg, node_now_ms(), err, errlen) != 0) {
    registry_release(reg);
    return -1;
  }
  registry_t *old = p->reg;
  p->reg = reg;
  tls_ctx_set_registry(p->server_tls, reg);
  tls_ctx_set_registry(p->client_tls, reg);
  add_links(p, old);
  registry_release(old);
  log_pack(LOG_INFO, "registry_loaded", "{s:s, s:I}", "path", n->cfg.registry_file, "members",
           (json_int_t)registry_member_count(reg));
  return 0;
}

static void sighup_cb(uv_signal_t *h, int signum)
{
  (void)signum;
  node_t *n = h->data;
  char err[1024];
  if (node_peer_reload(n, err, sizeof err) != 0)
    log_pack(LOG_ERROR, "registry_reload_failed", "{s:s, s:s}", "error", err, "kept",
             "the registry loaded before");
}

/* ---- answering peers -------------------------------------------------------- */

typedef struct collect_ctx {
  admin_arena_t *arena;
  Cb__Achievement **items;
  size_t n;
  int oom, too_many;
} collect_ctx_t;

static int collect_cb(const store_achievement *a, void *arg)
{
  collect_ctx_t *c = arg;
  if (c->n == NODE_PEER_MAX_ACHIEVEMENTS) {
    c->too_many = 1;
    return 1;
  }
  Cb__Achievement *p = admin_achievement_to_proto(c->arena, a);
  if (!p) {
    c->oom = 1;
    return 1;
  }
  c->items[c->n++] = p;
  return 0;
}

static void reply_peer_error(node_peer_t *p, uint64_t session, uint64_t rid, Cb__PeerErrorCode code,
                             const char *reason)
{
  Cb__Envelope e = CB__ENVELOPE__INIT;
  Cb__PeerError pe = CB__PEER_ERROR__INIT;
  pe.code = code;
  pe.reason = (char *)reason;
  e.msg_case = CB__ENVELOPE__MSG_PEER_ERROR;
  e.peer_error = &pe;
  peer_reply(p->net, session, rid, &e);
}

static void refuse(node_peer_t *p, uint64_t session, const char *peer, uint64_t rid,
                   Cb__PeerErrorCode code, const char *reason)
{
  node_t *n = p->n;
  p->refused++;
  log_emit_limited(&n->bad_input_rl, uv_now(&n->loop), LOG_WARN, "peer_request_refused",
                   json_pack("{s:s, s:i, s:s}", "peer", peer, "code", (int)code, "reason", reason));
  reply_peer_error(p, session, rid, code, reason);
}

/* Group commit: every answer made in one loop iteration waits here; after
 * the iteration's I/O (a uv_check handle) their access-log entries commit
 * in ONE durable transaction, and only then do the answers go out. One
 * fsync per burst instead of one per lookup; no added wait when alone. */
static void flush_answers(node_peer_t *p)
{
  node_t *n = p->n;
  size_t nq = p->nq;
  if (nq == 0) return;
  store_access_item items[NODE_PEER_BATCH_MAX];
  int results[NODE_PEER_BATCH_MAX];
  for (size_t i = 0; i < nq; i++) {
    answer_t *a = &p->queue[i];
    items[i] = (store_access_item){a->ref, a->now, a->id, a->entry, a->len};
    results[i] = STORE_EIO;
  }
  int rc = store_access_append_many(p->access, items, nq, results);
  p->commits++;
  if (rc != 0) node_store_fatal(n, rc, "access log");
  for (size_t i = 0; i < nq; i++) {
    answer_t *a = &p->queue[i];
    int r = rc ? rc : results[i];
    if (r == 0) {
      Cb__Envelope out = CB__ENVELOPE__INIT;
      Cb__LookupResponse lr = CB__LOOKUP_RESPONSE__INIT;
      lr.response = &a->resp;
      out.msg_case = CB__ENVELOPE__MSG_LOOKUP_RESPONSE;
      out.lookup_response = &lr;
      if (p->net) peer_reply(p->net, a->session, a->rid, &out);
      p->answered++;
      log_pack(LOG_INFO, "peer_lookup_answered", "{s:s, s:s, s:s, s:b, s:I}", "peer", a->peer, "operator",
               a->operator_id, "purpose", a->purpose, "found", a->found, "achievements", (json_int_t)a->n);
    } else {
      char err[256];
      snprintf(err, sizeof err, "access log could not be written (%s); nothing disclosed", store_strerror(r));
      log_pack(LOG_ERROR, "access_log_failed", "{s:s, s:s}", "peer", a->peer, "error", err);
      if (p->net) reply_peer_error(p, a->session, a->rid, CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL, err);
    }
    sigstmt_statement_clear(&a->resp);
    free(a->entry);
  }
  p->nq = 0;
  if (p->flush_ready) uv_check_stop(&p->flush);
}

static void flush_cb(uv_check_t *h)
{
  flush_answers(h->data);
}

/* The whole answer to one lookup: check, read, sign, queue for the log. */
static void answer_lookup(node_peer_t *p, uint64_t session, const char *peer, const Cb__Envelope *env)
{
  node_t *n = p->n;
  const Cb__SignedStatement *req = env->lookup_request->request;
  int64_t now = node_now_ms();
  Cb__LookupRequestBody *b = NULL;
  Cb__PeerErrorCode code;
  char err[512];
  /* The session's pinned member must be the one that signed: a member may
   * not relay another's request. Checked first, so such a request leaves
   * no trace in the replay cache either (sigstmt then ties the signer field
   * to the key and to the body's requester). */
  if (!req->signer || strcmp(req->signer, peer) != 0) {
    snprintf(err, sizeof err, "request signed by %.63s arrived on %s's session", req->signer ? req->signer : "nobody",
             peer);
    refuse(p, session, peer, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_UNAUTHENTIC, err);
    return;
  }
  if (peer_lookup_check_request(p->reg, p->replay, n->cfg.id, req, now, &b, &code, err, sizeof err)) {
    refuse(p, session, peer, env->request_id, code, err);
    return;
  }
  if (strcmp(b->requester, peer) != 0) { /* cannot happen after the checks above; kept as a guard */
    snprintf(err, sizeof err, "request signed by %.63s arrived on %s's session", b->requester, peer);
    cb__lookup_request_body__free_unpacked(b, NULL);
    refuse(p, session, peer, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_UNAUTHENTIC, err);
    return;
  }
  admin_arena_t arena;
  memset(&arena, 0, sizeof arena);
  collect_ctx_t c = {.arena = &arena};
  c.items = admin_arena_alloc(&arena, NODE_PEER_MAX_ACHIEVEMENTS * sizeof *c.items);
  /* Zeroed, not CB__SIGNED_STATEMENT__INIT: sigstmt_statement_clear frees
   * the fields, and INIT points signer at protobuf-c's static "". */
  Cb__SignedStatement resp;
  memset(&resp, 0, sizeof resp);
  uint8_t *packed = NULL;
  int found = 0, rc = c.items ? 0 : STORE_ENOMEM;
  store_learner l;
  if (rc == 0) rc = store_learner_get_by_ref(n->st, b->learner_ref.data, &l);
  if (rc == 0) {
    found = 1;
    rc = store_transcript(n->st, b->learner_ref.data, collect_cb, &c, NULL);
    if (c.too_many) rc = 0; /* cut below: refused as a whole */
  } else if (rc == STORE_ENOTFOUND) {
    rc = 0;
  }
  if (rc != 0 || c.oom || c.too_many) {
    if (rc) node_store_fatal(n, rc, "peer lookup");
    snprintf(err, sizeof err, "%s", c.too_many ? "learner has more achievements than one answer carries"
                                    : c.oom    ? "out of memory"
                                               : store_strerror(rc));
    reply_peer_error(p, session, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL, err);
    goto out;
  }
  sigstmt_signer_t signer;
  if (node_peer_signer(n, &signer, err, sizeof err) != 0 ||
      peer_lookup_make_response(&signer, req, b->learner_ref.data, found, c.items, c.n, now, &resp,
                                err, sizeof err) != 0) {
    log_pack(LOG_ERROR, "peer_answer_failed", "{s:s, s:s}", "peer", peer, "error", err);
    reply_peer_error(p, session, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL, err);
    goto out;
  }
  /* Disclose only what is logged: the answer waits in the queue until its
   * access-log entry has committed (flush_answers, this loop iteration). */
  Cb__AccessLogEntry entry;
  peer_lookup_access_entry(req, found, c.n, now, &entry);
  size_t len = cb__access_log_entry__get_packed_size(&entry);
  packed = malloc(len ? len : 1);
  if (!packed) {
    reply_peer_error(p, session, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL, "out of memory");
    goto out;
  }
  cb__access_log_entry__pack(&entry, packed);
  if (p->nq == NODE_PEER_BATCH_MAX) flush_answers(p);
  answer_t *a = &p->queue[p->nq++];
  memset(a, 0, sizeof *a);
  a->session = session;
  a->rid = env->request_id;
  snprintf(a->peer, sizeof a->peer, "%s", peer);
  a->resp = resp; /* moved: the queue owns it now */
  memset(&resp, 0, sizeof resp);
  a->entry = packed;
  packed = NULL;
  a->len = len;
  memcpy(a->ref, b->learner_ref.data, sizeof a->ref);
  sigstmt_body_hash(req, a->id);
  a->now = now;
  snprintf(a->operator_id, sizeof a->operator_id, "%s", b->operator_id);
  snprintf(a->purpose, sizeof a->purpose, "%s", b->purpose);
  a->found = found;
  a->n = c.n;
  if (!uv_is_active((uv_handle_t *)&p->flush)) uv_check_start(&p->flush, flush_cb);
out:
  free(packed);
  sigstmt_statement_clear(&resp);
  admin_arena_free(&arena);
  cb__lookup_request_body__free_unpacked(b, NULL);
}

static void on_request(peer_net_t *net, uint64_t session, const char *peer, const Cb__Envelope *env,
                       void *arg)
{
  (void)net;
  node_peer_t *p = arg;
  if (p->closing || p->n->stopping) {
    reply_peer_error(p, session, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_BUSY,
                     "node is shutting down");
    return;
  }
  if (env->msg_case != CB__ENVELOPE__MSG_LOOKUP_REQUEST) {
    refuse(p, session, peer, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_NOT_SERVED,
           "this node serves lookup_request only");
    return;
  }
  answer_lookup(p, session, peer, env);
}

/* The logged state of peer (-1: never logged); NULL if the table is full. */
static int *peer_state(node_peer_t *p, const char *peer)
{
  for (size_t i = 0; i < p->nseen; i++)
    if (strcmp(p->seen[i].node_id, peer) == 0) return &p->seen[i].up;
  /* Only members are tracked: names from unauthenticated connections never
   * take a slot. */
  if (p->nseen == REGISTRY_MAX_MEMBERS || !registry_find_member(p->reg, peer)) return NULL;
  snprintf(p->seen[p->nseen].node_id, sizeof p->seen[p->nseen].node_id, "%s", peer);
  p->seen[p->nseen].up = -1;
  return &p->seen[p->nseen++].up;
}

static void on_event(peer_net_t *net, const char *peer, peer_event_t ev, const char *detail, void *arg)
{
  (void)net;
  node_peer_t *p = arg;
  node_t *n = p->n;
  const char *peer_s = peer ? peer : "";
  const char *detail_s = detail ? detail : "";
  switch (ev) {
  case PEER_EV_UP: {
    int *up = peer_state(p, peer_s);
    if (up) *up = 1;
    log_pack(LOG_INFO, "peer_up", "{s:s, s:s}", "peer", peer_s, "detail", detail_s);
    break;
  }
  case PEER_EV_DOWN: {
    int *up = peer_state(p, peer_s);
    log_pack(up && *up == 0 ? LOG_DEBUG : LOG_INFO, "peer_down", "{s:s, s:s}", "peer", peer_s, "detail", detail_s);
    if (up) *up = 0;
    break;
  }
  case PEER_EV_REFUSED:
    log_emit_limited(&n->bad_input_rl, uv_now(&n->loop), LOG_WARN, "peer_refused",
                     json_pack("{s:s, s:s}", "peer", peer_s, "detail", detail_s));
    break;
  }
}

/* ---- lifecycle ------------------------------------------------------------------ */

int node_peer_signer(node_t *n, sigstmt_signer_t *out, char *err, size_t errlen)
{
  node_peer_t *p = n->peer;
  const registry_member_t *self = p ? registry_find_member(p->reg, n->cfg.id) : NULL;
  int rc = self ? registry_key_valid_at(self, p->pub, node_now_ms()) : -REGISTRY_E_UNKNOWN_MEMBER;
  if (rc) {
    snprintf(err, errlen, "this node's identity key cannot sign now: %s", registry_strerror(rc));
    return -1;
  }
  out->node_id = n->cfg.id;
  out->key = n->identity;
  return 0;
}

registry_t *node_peer_registry(node_t *n) { return n->peer && !n->peer->closing ? n->peer->reg : NULL; }
peer_net_t *node_peer_net(node_t *n) { return n->peer && !n->peer->closing ? n->peer->net : NULL; }
store_access *node_peer_access(node_t *n) { return n->peer ? n->peer->access : NULL; }

int node_peer_start(node_t *n, char *err, size_t errlen)
{
  if (!n->cfg.registry_file[0]) return 0;
  node_peer_t *p = calloc(1, sizeof *p);
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  p->n = n;
  n->peer = p;
  if (identity_public_raw(n->identity, p->pub) != 0) {
    snprintf(err, errlen, "%s: not an Ed25519 key", n->cfg.identity_key_file);
    return -1;
  }
  if (registry_load(n->cfg.registry_file, &p->reg, err, errlen) != 0) return -1;
  if (check_self(n, p->pub, p->reg, node_now_ms(), err, errlen) != 0) return -1;
  int rc = store_access_open(n->st, &p->access);
  if (rc) {
    snprintf(err, errlen, "access log: %s: %s", store_strerror(rc), store_errmsg(n->st));
    return -1;
  }
  p->queue = calloc(NODE_PEER_BATCH_MAX, sizeof *p->queue);
  if (!p->queue || replay_init(&p->replay, NODE_PEER_SKEW_MS, NODE_PEER_REPLAY_MAX) != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  tls_config_t sc = {.mode = TLS_MODE_PEER_SERVER, .key = n->identity, .cert_name = n->cfg.id,
                     .registry = p->reg};
  tls_config_t cc = sc;
  cc.mode = TLS_MODE_PEER_CLIENT;
  if (tls_ctx_new(&sc, &p->server_tls, err, errlen) != 0) return -1;
  if (tls_ctx_new(&cc, &p->client_tls, err, errlen) != 0) return -1;
  peer_config_t pc = {.loop = &n->loop, .node_id = n->cfg.id, .server_tls = p->server_tls,
                      .client_tls = p->client_tls, .on_request = on_request, .on_event = on_event,
                      .arg = p};
  peer_limits_default(&pc.limits);
  if (peer_net_new(&pc, &p->net, err, errlen) != 0) return -1;
  const registry_member_t *self = registry_find_member(p->reg, n->cfg.id);
  char host[REGISTRY_HOST_MAX + 1];
  uint16_t port = self->port, bound = 0;
  snprintf(host, sizeof host, "%s", self->host);
  if (n->cfg.peer_listen[0] && split_endpoint(n->cfg.peer_listen, host, sizeof host, &port) != 0) {
    snprintf(err, errlen, "peer_listen '%s': expected host:port", n->cfg.peer_listen);
    return -1;
  }
  if (peer_net_listen(p->net, host, port, &bound, err, errlen) != 0) return -1;
  add_links(p, NULL);
  uv_check_init(&n->loop, &p->flush);
  p->flush.data = p;
  p->flush_ready = 1;
  uv_signal_init(&n->loop, &p->sighup);
  p->sighup.data = n;
  p->sighup_ready = 1;
  uv_signal_start(&p->sighup, sighup_cb, SIGHUP);
  uv_unref((uv_handle_t *)&p->sighup);
  char hex[65];
  hex32(p->pub, hex);
  log_pack(LOG_INFO, "peer_listening", "{s:s, s:i, s:s, s:I, s:s}", "host", host, "port", (int)bound,
           "registry", n->cfg.registry_file, "members", (json_int_t)registry_member_count(p->reg),
           "identity_public_key", hex);
  return 0;
}

static void net_closed_cb(void *arg)
{
  node_peer_t *p = arg;
  p->net = NULL;
}

void node_peer_stop(node_t *n)
{
  node_peer_t *p = n->peer;
  if (!p || p->closing) return;
  p->closing = 1;
  flush_answers(p);
  log_pack(LOG_INFO, "peer_stats", "{s:I, s:I, s:I}", "answered", (json_int_t)p->answered, "refused",
           (json_int_t)p->refused, "access_log_commits", (json_int_t)p->commits); /* answers already signed: log them and send what still can go */
  if (p->flush_ready && !uv_is_closing((uv_handle_t *)&p->flush)) uv_close((uv_handle_t *)&p->flush, NULL);
  if (p->sighup_ready && !uv_is_closing((uv_handle_t *)&p->sighup)) uv_close((uv_handle_t *)&p->sighup, NULL);
  if (p->net) peer_net_close(p->net, net_closed_cb, p);
}

void node_peer_free(node_t *n)
{
  node_peer_t *p = n->peer;
  if (!p) return;
  assert(p->net == NULL); /* node_peer_stop ran and the loop finished the closes */
  assert(p->nq == 0);
  free(p->queue);
  tls_ctx_free(p->server_tls);
  tls_ctx_free(p->client_tls);
  replay_free(p->replay);
  store_access_close(p->access);
  registry_release(p->reg);
  free(p);
  n->peer = NULL;
}
