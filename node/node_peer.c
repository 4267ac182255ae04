/* Federation wiring of the daemon: see node_peer.h and spec/protocol.md
 * "The node's wiring". Runs on the node's loop thread. */
#include "node_peer.h"

#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "identity.h"

/* The node's identity keys: identity_key_file plus extra_identity_key_files. */
#define NODE_PEER_MAX_KEYS (1 + CONFIG_MAX_EXTRA_KEYS)
/* The key choice is re-evaluated at least this often (and exactly when a
 * key's period starts or ends); retired TLS contexts are freed then too. */
#define NODE_PEER_KEY_CHECK_MS 60000u

/* The node's identity keys, each with one reference owned here. */
typedef struct keyset {
  EVP_PKEY *keys[NODE_PEER_MAX_KEYS];
  uint8_t pubs[NODE_PEER_MAX_KEYS][IDENTITY_PUBKEY_BYTES];
  char files[NODE_PEER_MAX_KEYS][PATH_MAX];
  size_t n;
} keyset_t;

/* An answer waiting for its access-log entry to commit (signed while the
 * commit runs; failed != 0: signing failed, an error goes out instead). */
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
  int failed;
  char err[160];
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
  /* Group commit of the access log on a writer thread (see kick()). Loop
   * thread only: pending/npend (answers waiting for the next commit), busy
   * (a batch is with the writer). While busy the writer owns inflight/nin,
   * items and results; job/done/quit/wrc/wgrow are under wmu. */
  answer_t *pending, *inflight; /* NODE_PEER_BATCH_MAX answers each */
  size_t npend, nin;
  int busy;
  store_access_item items[NODE_PEER_BATCH_MAX];
  int results[NODE_PEER_BATCH_MAX];
  pthread_mutex_t wmu;
  pthread_cond_t wcv;
  int job, done, quit, wrc, wgrow;
  uint64_t commit_us, commit_us_max; /* writer's time in commits (stats) */
  int sync_ready, writer_ready, wake_ready;
  pthread_t writer;
  uv_async_t wake;              /* the writer finished a batch */
  int closing;
  /* Own keys (spec/protocol.md §10): [0] is n->identity, the others
   * loaded from extra_identity_key_files (reread on SIGHUP). Signatures and new TLS
   * sessions use the newest one the registry lists as valid now. */
  keyset_t ks;
  int tls_key;                  /* the key the TLS contexts present */
  int logged_key;               /* the key last logged as in use; -1 none, -2 never */
  /* TLS contexts of keys used before, kept while a session made from them
   * lives (freed by retire_gc; at most one pair per live session). */
  struct retired_tls {
    tls_ctx_t *server, *client;
  } *retired;
  size_t nretired;
  uv_timer_t key_timer;
  int key_timer_ready;
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
static int check_self(node_t *n, const keyset_t *ks, const registry_t *reg, int64_t now_ms,
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
  /* One valid key is enough: with several (rotation), the others may be
   * not yet listed, not yet valid or expired. */
  if (identity_choose(self, (const uint8_t(*)[IDENTITY_PUBKEY_BYTES])ks->pubs, ks->n, now_ms) >= 0)
    return 0;
  size_t off = (size_t)snprintf(err, errlen, "%s:", n->cfg.registry_file);
  for (size_t i = 0; i < ks->n && off < errlen; i++) {
    char hex[65];
    hex32(ks->pubs[i], hex);
    off += (size_t)snprintf(err + off, errlen - off, "%s identity key %s (%s) of '%s': %s",
                            i ? ";" : "", hex, ks->files[i], n->cfg.id,
                            registry_strerror(registry_key_valid_at(self, ks->pubs[i], now_ms)));
  }
  return -1;
}

static void keyset_free(keyset_t *ks)
{
  for (size_t i = 0; i < ks->n; i++) EVP_PKEY_free(ks->keys[i]);
  ks->n = 0;
}

/* identity_key_file's key (already loaded: n->identity) and the extra
 * files; each an Ed25519 key, none twice. On error nothing is kept. */
static int keyset_load(node_t *n, char (*extra)[PATH_MAX], size_t nextra, keyset_t *ks, char *err,
                       size_t errlen)
{
  memset(ks, 0, sizeof *ks);
  if (EVP_PKEY_up_ref(n->identity) != 1) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  ks->keys[0] = n->identity;
  snprintf(ks->files[0], sizeof ks->files[0], "%s", n->cfg.identity_key_file);
  ks->n = 1;
  for (size_t i = 0; i < nextra && ks->n < NODE_PEER_MAX_KEYS; i++) {
    snprintf(ks->files[ks->n], sizeof ks->files[ks->n], "%s", extra[i]);
    if (identity_load(extra[i], &ks->keys[ks->n], err, errlen) != 0) goto fail;
    ks->n++;
  }
  for (size_t i = 0; i < ks->n; i++) {
    if (identity_public_raw(ks->keys[i], ks->pubs[i]) != 0) {
      snprintf(err, errlen, "%s: not an Ed25519 key", ks->files[i]);
      goto fail;
    }
    for (size_t j = 0; j < i; j++)
      if (memcmp(ks->pubs[i], ks->pubs[j], IDENTITY_PUBKEY_BYTES) == 0) {
        snprintf(err, errlen, "%s holds the same key as %s (each identity key once)", ks->files[i],
                 ks->files[j]);
        goto fail;
      }
  }
  return 0;
fail:
  keyset_free(ks);
  return -1;
}

/* The index of pub in ks, or -1. */
static int keyset_find(const keyset_t *ks, const uint8_t *pub)
{
  for (size_t i = 0; i < ks->n; i++)
    if (memcmp(ks->pubs[i], pub, IDENTITY_PUBKEY_BYTES) == 0) return (int)i;
  return -1;
}

/* ---- own key rotation (spec/protocol.md §10) -------------------------------- */

static int make_tls(node_peer_t *p, int k, tls_ctx_t **srv, tls_ctx_t **cli, char *err, size_t errlen)
{
  node_t *n = p->n;
  tls_config_t sc = {.mode = TLS_MODE_PEER_SERVER, .key = p->ks.keys[k], .cert_name = n->cfg.id,
                     .registry = p->reg};
  tls_config_t cc = sc;
  cc.mode = TLS_MODE_PEER_CLIENT;
  *srv = *cli = NULL;
  if (tls_ctx_new(&sc, srv, err, errlen) != 0) return -1;
  if (tls_ctx_new(&cc, cli, err, errlen) != 0) {
    tls_ctx_free(*srv);
    *srv = NULL;
    return -1;
  }
  return 0;
}

/* Frees the retired contexts no session uses any more. */
static void retire_gc(node_peer_t *p)
{
  size_t j = 0;
  for (size_t i = 0; i < p->nretired; i++) {
    struct retired_tls *r = &p->retired[i];
    if (p->net && (peer_net_tls_in_use(p->net, r->server) || peer_net_tls_in_use(p->net, r->client))) {
      p->retired[j++] = *r;
      continue;
    }
    tls_ctx_free(r->server);
    tls_ctx_free(r->client);
  }
  p->nretired = j;
}

/* New sessions present key k from now on; open ones keep their key. */
static void switch_tls(node_peer_t *p, int k)
{
  char err[256], hex[65];
  hex32(p->ks.pubs[k], hex);
  tls_ctx_t *srv, *cli;
  struct retired_tls *r = realloc(p->retired, (p->nretired + 1) * sizeof *r);
  if (r) p->retired = r;
  if (!r || make_tls(p, k, &srv, &cli, err, sizeof err) != 0) {
    if (!r) snprintf(err, sizeof err, "out of memory");
    log_pack(LOG_ERROR, "identity_key_switch_failed", "{s:s, s:s, s:s}", "public_key", hex, "error", err,
             "kept", "TLS goes on presenting the key used so far");
    return;
  }
  p->retired[p->nretired++] = (struct retired_tls){p->server_tls, p->client_tls};
  p->server_tls = srv;
  p->client_tls = cli;
  p->tls_key = k;
  peer_net_set_tls(p->net, srv, cli);
  retire_gc(p);
  log_pack(LOG_INFO, "identity_key_tls", "{s:s, s:s}", "public_key", hex, "note",
           "new peer sessions present this key; open ones keep theirs");
}

/* Which own key to use now; logs when that changes, and moves new TLS
 * sessions to it. Called at each signature, at each reload and when a
 * key's period starts or ends (key_timer). Loop thread only. */
static int use_key(node_peer_t *p, int64_t now)
{
  const registry_member_t *self = registry_find_member(p->reg, p->n->cfg.id);
  int k = identity_choose(self, (const uint8_t(*)[IDENTITY_PUBKEY_BYTES])p->ks.pubs, p->ks.n, now);
  if (k != p->logged_key) {
    if (k >= 0) {
      char hex[65];
      hex32(p->ks.pubs[k], hex);
      log_pack(LOG_INFO, "identity_key_in_use", "{s:s, s:s, s:I}", "public_key", hex, "file",
               p->ks.files[k], "keys_held", (json_int_t)p->ks.n);
    } else {
      log_pack(LOG_ERROR, "identity_key_none_valid", "{s:s, s:I}", "error",
               "the registry lists none of this node's identity keys as valid now: it cannot sign, "
               "and peers refuse its TLS key", "keys_held", (json_int_t)p->ks.n);
    }
    p->logged_key = k;
  }
  if (k >= 0 && k != p->tls_key && p->net && !p->closing) switch_tls(p, k);
  return k;
}

static void arm_key_timer(node_peer_t *p);

static void key_timer_cb(uv_timer_t *t)
{
  node_peer_t *p = t->data;
  if (p->closing) return;
  use_key(p, node_now_ms());
  retire_gc(p);
  arm_key_timer(p);
}

static void arm_key_timer(node_peer_t *p)
{
  if (!p->key_timer_ready || p->closing) return;
  const registry_member_t *self = registry_find_member(p->reg, p->n->cfg.id);
  int64_t now = node_now_ms();
  int64_t next = identity_next_change(self, (const uint8_t(*)[IDENTITY_PUBKEY_BYTES])p->ks.pubs, p->ks.n, now);
  uint64_t delay = NODE_PEER_KEY_CHECK_MS;
  if (next != REGISTRY_TIME_OPEN && (uint64_t)(next - now) < delay) delay = (uint64_t)(next - now) + 1;
  uv_timer_start(&p->key_timer, key_timer_cb, delay, 0);
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

/* Links follow the registry: one to every other member; on reload a
 * removed member's link is dropped (its pending lookups fail naming it), a
 * moved member's link reconnects to the new endpoint. */
static void add_links(node_peer_t *p, const registry_t *old)
{
  node_t *n = p->n;
  for (size_t i = 0; i < registry_member_count(p->reg); i++) {
    const registry_member_t *m = registry_member_at(p->reg, i);
    if (strcmp(m->node_id, n->cfg.id) == 0) continue;
    const registry_member_t *was = old ? registry_find_member(old, m->node_id) : NULL;
    char err[256];
    if (was) {
      if (strcmp(was->host, m->host) == 0 && was->port == m->port) continue;
      int rc = peer_net_update_link(p->net, m->node_id, m->host, m->port, err, sizeof err);
      if (rc < 0)
        log_pack(LOG_ERROR, "peer_link_move_failed", "{s:s, s:s}", "peer", m->node_id, "error", err);
      else
        log_pack(LOG_INFO, "peer_link_moved", "{s:s, s:s, s:i, s:s, s:i}", "peer", m->node_id, "from_host",
                 was->host, "from_port", (int)was->port, "host", m->host, "port", (int)m->port);
      continue;
    }
    if (peer_net_add_link(p->net, m->node_id, m->host, m->port, err, sizeof err) != 0)
      log_pack(LOG_ERROR, "peer_link_failed", "{s:s, s:s}", "peer", m->node_id, "error", err);
    else
      log_pack(LOG_INFO, "peer_link", "{s:s, s:s, s:s, s:i}", "peer", m->node_id, "region",
               m->region, "host", m->host, "port", (int)m->port);
  }
  if (!old) return;
  for (size_t i = 0; i < registry_member_count(old); i++) {
    const registry_member_t *m = registry_member_at(old, i);
    if (strcmp(m->node_id, n->cfg.id) == 0 || registry_find_member(p->reg, m->node_id)) continue;
    int rc = peer_net_remove_link(p->net, m->node_id, "member removed from the registry");
    log_pack(LOG_WARN, "peer_link_removed", "{s:s, s:s, s:s}", "peer", m->node_id, "note",
             "no longer a member: its link is closed and its lookups fail; TLS and signatures refuse it",
             "link", rc == 0 ? "closed" : peer_strerror(rc));
  }
}

/* Reload: sessions (either direction) whose pinned key the new registry
 * no longer lists as valid for its member are closed. */
static int key_still_valid(const char *node_id, const uint8_t key[32], void *arg)
{
  node_peer_t *p = arg;
  const registry_member_t *m = registry_find_member(p->reg, node_id);
  return m && registry_key_valid_at(m, key, node_now_ms()) == 0;
}

int node_peer_reload(node_t *n, char *err, size_t errlen)
{
  node_peer_t *p = n->peer;
  if (!p || p->closing) {
    snprintf(err, errlen, "no federation registry configured");
    return -1;
  }
  /* The config is reread for extra_identity_key_files only (a key added or
   * retired without a restart); its other keys take effect at restart. */
  config_t *cfg = malloc(sizeof *cfg);
  keyset_t *ks = malloc(sizeof *ks);
  registry_t *reg = NULL;
  int rc = -1;
  if (!cfg || !ks) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  if (config_load(n->cfg.path, cfg, err, errlen) != 0) goto out;
  if (keyset_load(n, cfg->extra_identity_key_files, cfg->n_extra_identity_keys, ks, err, errlen) != 0) goto out;
  if (registry_load(n->cfg.registry_file, &reg, err, errlen) != 0 ||
      check_self(n, ks, reg, node_now_ms(), err, errlen) != 0) {
    keyset_free(ks);
    goto out;
  }
  int changed = ks->n != p->ks.n;
  for (size_t i = 0; i < ks->n && !changed; i++) changed = keyset_find(&p->ks, ks->pubs[i]) < 0;
  /* Indices into the new set: the key the TLS contexts present and the
   * one last logged keep their meaning (-1: no longer held, so use_key
   * makes new contexts). */
  int tls_key = p->tls_key >= 0 ? keyset_find(ks, p->ks.pubs[p->tls_key]) : -1;
  int logged = p->logged_key >= 0 ? keyset_find(ks, p->ks.pubs[p->logged_key]) : p->logged_key;
  keyset_free(&p->ks);
  p->ks = *ks; /* the contexts hold their own reference to their key */
  p->tls_key = tls_key;
  p->logged_key = logged;
  if (changed) {
    json_t *files = json_array();
    for (size_t i = 0; i < p->ks.n; i++) json_array_append_new(files, json_string(p->ks.files[i]));
    log_pack(LOG_INFO, "identity_keys_loaded", "{s:I, s:o}", "keys_held", (json_int_t)p->ks.n, "files", files);
  }
  rc = 0;
out:
  free(cfg);
  free(ks);
  if (rc != 0) {
    registry_release(reg);
    return -1;
  }
  registry_t *old = p->reg;
  p->reg = reg;
  tls_ctx_set_registry(p->server_tls, reg);
  tls_ctx_set_registry(p->client_tls, reg);
  for (size_t i = 0; i < p->nretired; i++) {
    tls_ctx_set_registry(p->retired[i].server, reg);
    tls_ctx_set_registry(p->retired[i].client, reg);
  }
  add_links(p, old);
  size_t dropped = p->net ? peer_net_recheck_sessions(p->net, key_still_valid, p,
                                                      "peer's key no longer valid in the reloaded registry")
                          : 0;
  registry_release(old);
  log_pack(LOG_INFO, "registry_loaded", "{s:s, s:I, s:I}", "path", n->cfg.registry_file, "members",
           (json_int_t)registry_member_count(reg), "sessions_dropped", (json_int_t)dropped);
  use_key(p, node_now_ms());
  retire_gc(p);
  arm_key_timer(p);
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

/* ---- the access log's group commit ---------------------------------------
 *
 * Disclose only what is logged: an answer leaves only after its
 * access-log entry has committed durably. The commit (LMDB write txn, two
 * fsyncs) runs on a writer thread, so the loop keeps verifying and signing
 * the next requests meanwhile; every answer made while a commit is in
 * flight waits in `pending` and goes into the NEXT commit, all together
 * (one transaction per commit, however many answers). The writer never
 * grows the map (store_write_nogrow): when the map is full the batch is
 * committed again on the loop thread with store_access_append_many, which
 * grows it (store.h "Threads"). */

static void *writer_main(void *arg)
{
  node_peer_t *p = arg;
  pthread_mutex_lock(&p->wmu);
  for (;;) {
    while (!p->job && !p->quit) pthread_cond_wait(&p->wcv, &p->wmu);
    if (!p->job) break; /* quit, nothing left */
    size_t n = p->nin;
    pthread_mutex_unlock(&p->wmu);
    int grow = 0;
    uint64_t t0 = uv_hrtime();
    int rc = store_access_append_many_nogrow(p->access, p->items, n, p->results, &grow);
    uint64_t us = (uv_hrtime() - t0) / 1000;
    pthread_mutex_lock(&p->wmu);
    p->commit_us += us;
    if (us > p->commit_us_max) p->commit_us_max = us;
    p->wrc = rc;
    p->wgrow = grow;
    p->job = 0;
    p->done = 1;
    pthread_cond_broadcast(&p->wcv); /* node_peer_stop may wait for it */
    uv_async_send(&p->wake);
  }
  pthread_mutex_unlock(&p->wmu);
  return NULL;
}

/* Hands every pending answer to the writer as one commit, if it is idle. */
static void kick(node_peer_t *p)
{
  if (p->busy || p->npend == 0) return;
  answer_t *t = p->inflight;
  p->inflight = p->pending;
  p->pending = t;
  p->nin = p->npend;
  p->npend = 0;
  for (size_t i = 0; i < p->nin; i++) {
    answer_t *a = &p->inflight[i];
    p->items[i] = (store_access_item){a->ref, a->now, a->id, a->entry, a->len};
    p->results[i] = STORE_EIO;
  }
  p->busy = 1;
  pthread_mutex_lock(&p->wmu);
  p->job = 1;
  pthread_cond_signal(&p->wcv);
  pthread_mutex_unlock(&p->wmu);
}

/* The in-flight batch committed (rc 0, results per answer) or failed (rc):
 * send the answers or, for each one not logged, an error; never both. */
static void deliver(node_peer_t *p, int rc)
{
  for (size_t i = 0; i < p->nin; i++) {
    answer_t *a = &p->inflight[i];
    int r = rc ? rc : p->results[i];
    if (r == 0 && !a->failed) {
      Cb__Envelope out = CB__ENVELOPE__INIT;
      Cb__LookupResponse lr = CB__LOOKUP_RESPONSE__INIT;
      lr.response = &a->resp;
      out.msg_case = CB__ENVELOPE__MSG_LOOKUP_RESPONSE;
      out.lookup_response = &lr;
      if (p->net) peer_reply(p->net, a->session, a->rid, &out);
      p->answered++;
      log_pack(LOG_INFO, "peer_lookup_answered", "{s:s, s:s, s:s, s:b, s:I}", "peer", a->peer, "operator",
               a->operator_id, "purpose", a->purpose, "found", a->found, "achievements", (json_int_t)a->n);
    } else if (r == 0) {
      /* Logged, then signing failed (out of memory): the entry stays, the
       * requester gets an error; never the reverse. */
      log_pack(LOG_ERROR, "peer_answer_failed", "{s:s, s:s}", "peer", a->peer, "error", a->err);
      if (p->net) reply_peer_error(p, a->session, a->rid, CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL, a->err);
    } else {
      char err[256];
      snprintf(err, sizeof err, "access log could not be written (%s); nothing disclosed", store_strerror(r));
      log_pack(LOG_ERROR, "access_log_failed", "{s:s, s:s}", "peer", a->peer, "error", err);
      if (p->net) reply_peer_error(p, a->session, a->rid, CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL, err);
    }
    sigstmt_statement_clear(&a->resp);
    free(a->entry);
  }
  p->nin = 0;
}

/* Loop thread: takes the writer's result if it finished, delivers, and
 * starts the next commit with everything that arrived meanwhile. */
static void collect(node_peer_t *p)
{
  pthread_mutex_lock(&p->wmu);
  int done = p->done, rc = p->wrc, grow = p->wgrow;
  p->done = 0;
  pthread_mutex_unlock(&p->wmu);
  if (!done) return;
  p->busy = 0;
  p->commits++;
  if (grow) { /* map full: nothing was written; again here, growing it */
    for (size_t i = 0; i < p->nin; i++) p->results[i] = STORE_EIO;
    rc = store_access_append_many(p->access, p->items, p->nin, p->results);
  }
  deliver(p, rc);
  if (!p->closing) kick(p);
  if (rc) node_store_fatal(p->n, rc, "access log"); /* may stop the node: last */
}

static void wake_cb(uv_async_t *h)
{
  collect(h->data);
}

/* At stop: waits for the writer's commit in flight and commits what is
 * still pending, sending every answer that could be logged. */
static void drain(node_peer_t *p)
{
  while (p->busy || p->npend) {
    if (!p->busy) kick(p);
    pthread_mutex_lock(&p->wmu);
    while (!p->done) pthread_cond_wait(&p->wcv, &p->wmu);
    pthread_mutex_unlock(&p->wmu);
    collect(p);
  }
}

/* The whole answer to one lookup: check, read, queue for the log, sign. */
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
  if (node_peer_signer(n, &signer, err, sizeof err) != 0) {
    log_pack(LOG_ERROR, "peer_answer_failed", "{s:s, s:s}", "peer", peer, "error", err);
    reply_peer_error(p, session, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL, err);
    goto out;
  }
  if (p->npend == NODE_PEER_BATCH_MAX) { /* only while a commit is in flight */
    reply_peer_error(p, session, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_BUSY,
                     "too many answers waiting for the access log; retry");
    goto out;
  }
  /* Disclose only what is logged: the entry goes to the writer now (kick)
   * and the answer is signed while it commits; deliver() sends it after
   * the commit. */
  Cb__AccessLogEntry entry;
  peer_lookup_access_entry(req, found, c.n, now, &entry);
  size_t len = cb__access_log_entry__get_packed_size(&entry);
  packed = malloc(len ? len : 1);
  if (!packed) {
    reply_peer_error(p, session, env->request_id, CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL, "out of memory");
    goto out;
  }
  cb__access_log_entry__pack(&entry, packed);
  /* The slot stays put while the writer commits (kick swaps the arrays,
   * not the slots); the writer reads only items[], which kick filled from
   * the fields below before handing over, and the loop thread writes only
   * resp/failed/err afterwards. */
  answer_t *a = &p->pending[p->npend++];
  memset(a, 0, sizeof *a);
  a->session = session;
  a->rid = env->request_id;
  snprintf(a->peer, sizeof a->peer, "%s", peer);
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
  kick(p); /* the commit starts now if the writer is idle; signing overlaps it */
  if (peer_lookup_make_response(&signer, req, b->learner_ref.data, found, c.items, c.n, now, &a->resp, err,
                                sizeof err) != 0) {
    a->failed = 1;
    snprintf(a->err, sizeof a->err, "%.159s", err);
  }
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
  if (!p || !p->reg || !registry_find_member(p->reg, n->cfg.id)) {
    snprintf(err, errlen, "this node's identity key cannot sign now: %s",
             registry_strerror(-REGISTRY_E_UNKNOWN_MEMBER));
    return -1;
  }
  int k = use_key(p, node_now_ms());
  if (k < 0) {
    snprintf(err, errlen, "this node's identity key cannot sign now: the registry lists none of its "
             "%zu key(s) as valid now", p->ks.n);
    return -1;
  }
  out->node_id = n->cfg.id;
  out->key = p->ks.keys[k];
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
  p->tls_key = -1;
  p->logged_key = -2;
  if (keyset_load(n, n->cfg.extra_identity_key_files, n->cfg.n_extra_identity_keys, &p->ks, err, errlen) != 0)
    return -1;
  if (registry_load(n->cfg.registry_file, &p->reg, err, errlen) != 0) return -1;
  if (check_self(n, &p->ks, p->reg, node_now_ms(), err, errlen) != 0) return -1;
  int rc = store_access_open(n->st, &p->access);
  if (rc) {
    snprintf(err, errlen, "access log: %s: %s", store_strerror(rc), store_errmsg(n->st));
    return -1;
  }
  p->pending = calloc(NODE_PEER_BATCH_MAX, sizeof *p->pending);
  p->inflight = calloc(NODE_PEER_BATCH_MAX, sizeof *p->inflight);
  if (!p->pending || !p->inflight || replay_init(&p->replay, NODE_PEER_SKEW_MS, NODE_PEER_REPLAY_MAX) != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (pthread_mutex_init(&p->wmu, NULL) != 0) {
    snprintf(err, errlen, "access-log writer: cannot create a mutex");
    return -1;
  }
  if (pthread_cond_init(&p->wcv, NULL) != 0) {
    pthread_mutex_destroy(&p->wmu);
    snprintf(err, errlen, "access-log writer: cannot create a condition variable");
    return -1;
  }
  p->sync_ready = 1;
  if (uv_async_init(&n->loop, &p->wake, wake_cb) != 0) {
    snprintf(err, errlen, "access-log writer: uv_async_init failed");
    return -1;
  }
  p->wake.data = p;
  p->wake_ready = 1;
  if (pthread_create(&p->writer, NULL, writer_main, p) != 0) {
    snprintf(err, errlen, "access-log writer: cannot start its thread");
    return -1;
  }
  p->writer_ready = 1;
  int k = use_key(p, node_now_ms()); /* >= 0: check_self passed */
  if (make_tls(p, k, &p->server_tls, &p->client_tls, err, errlen) != 0) return -1;
  p->tls_key = k;
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
  uv_signal_init(&n->loop, &p->sighup);
  p->sighup.data = n;
  p->sighup_ready = 1;
  uv_signal_start(&p->sighup, sighup_cb, SIGHUP);
  uv_unref((uv_handle_t *)&p->sighup);
  uv_timer_init(&n->loop, &p->key_timer);
  p->key_timer.data = p;
  p->key_timer_ready = 1;
  uv_unref((uv_handle_t *)&p->key_timer);
  arm_key_timer(p);
  char hex[65];
  hex32(p->ks.pubs[k], hex);
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
  drain(p); /* answers already signed: log them and send what still can go */
  if (p->writer_ready) {
    pthread_mutex_lock(&p->wmu);
    p->quit = 1;
    pthread_cond_signal(&p->wcv);
    pthread_mutex_unlock(&p->wmu);
    pthread_join(p->writer, NULL);
    p->writer_ready = 0;
  }
  /* The writer has stopped (joined above): its counters are ours now. */
  log_pack(LOG_INFO, "peer_stats", "{s:I, s:I, s:I, s:I, s:I}", "answered", (json_int_t)p->answered, "refused",
           (json_int_t)p->refused, "access_log_commits", (json_int_t)p->commits, "access_log_commit_us",
           (json_int_t)p->commit_us, "access_log_commit_us_max", (json_int_t)p->commit_us_max);
  if (p->wake_ready && !uv_is_closing((uv_handle_t *)&p->wake)) uv_close((uv_handle_t *)&p->wake, NULL);
  if (p->sighup_ready && !uv_is_closing((uv_handle_t *)&p->sighup)) uv_close((uv_handle_t *)&p->sighup, NULL);
  if (p->key_timer_ready && !uv_is_closing((uv_handle_t *)&p->key_timer))
    uv_close((uv_handle_t *)&p->key_timer, NULL);
  if (p->net) peer_net_close(p->net, net_closed_cb, p);
}

void node_peer_free(node_t *n)
{
  node_peer_t *p = n->peer;
  if (!p) return;
  assert(p->net == NULL); /* node_peer_stop ran and the loop finished the closes */
  assert(p->npend == 0 && !p->busy && !p->writer_ready);
  free(p->pending);
  free(p->inflight);
  if (p->sync_ready) {
    pthread_cond_destroy(&p->wcv);
    pthread_mutex_destroy(&p->wmu);
  }
  tls_ctx_free(p->server_tls);
  tls_ctx_free(p->client_tls);
  for (size_t i = 0; i < p->nretired; i++) {
    tls_ctx_free(p->retired[i].server);
    tls_ctx_free(p->retired[i].client);
  }
  free(p->retired);
  keyset_free(&p->ks);
  replay_free(p->replay);
  store_access_close(p->access);
  registry_release(p->reg);
  free(p);
  n->peer = NULL;
}
